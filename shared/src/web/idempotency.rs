//! The `Idempotency-Key` layer: one place that makes every authenticated POST
//! (creating or spending) safe to retry.
//!
//! - Same key, same body (and path): the first response (status and body) is
//!   replayed for 24 hours, marked `Idempotent-Replayed: true`.
//! - Same key, different body or path: 422 `idempotency_key_reused`.
//! - Same key while the first request still runs: the retry waits for it up
//!   to [`WAIT_FOR_FIRST`], then 409 `idempotency_key_in_use`.
//! - Keys belong to the caller (user or API key) within the tenant.
//! - 5xx and 429 answers are not kept: nothing happened, a retry may run.
//!
//! The claim, the handler and the storing of the response run on their own
//! task, so a caller who hangs up (a client timeout) cannot cancel them
//! halfway: the request finishes and stores its response for the retry. If the process itself dies mid-request the claim's lease
//! ([`LEASE_SECONDS`], longer than any function timeout) lets a retry run it
//! again afterwards.
//!
//! On the routes of [`CHANGE_CARRIES_THE_RECORD`], whose change is one
//! transaction, the record is not claimed first: it rides in that
//! transaction (`store::idempotency::RidingClaim`), with the answer when the
//! handler prepared it ([`Answer::prepare`]). The change and its record then
//! commit together or not at all: a duplicate's transaction is cancelled by
//! the first's record and gets its answer, a crash after the commit can
//! never let a retry run the change twice, and the first request costs no
//! call more than the same write without a key (it saves the claim's
//! `PutItem`, and with a prepared answer the answer's `UpdateItem`). A
//! duplicate runs the handler's reads before its transaction is refused.
//!
//! Stored bodies are sealed with AES-256-GCM under a key derived from the
//! platform secret and the idempotency key itself: a response that showed a
//! secret once (a new API key, an invitation token) can be replayed to the
//! caller who holds the idempotency key, and reads as noise in the table.
//!
//! `/v1/auth/*` (register, login, refresh, logout, invitation acceptance) is
//! outside the layer: those are public or session endpoints with their own
//! protections (unique emails, rotating tokens, one-time invitations).

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    auth::Principal,
    error::{AppError, AppResult},
    sealing::{KeyRing, SealContext},
    store::idempotency::{ClaimOutcome, RidingClaim, STATE_COMMITTED, STATE_COMPLETED, SealedResponse, record_key},
};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a response is replayed.
pub const KEEP_SECONDS: i64 = 24 * 3600;
/// How long a claim holds before a retry may take it over: past every
/// function's timeout, so only a dead request loses its claim.
pub const LEASE_SECONDS: i64 = 300;
/// How long a retry waits for the first request to finish.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(5);
const MAX_KEY_CHARS: usize = 255;
/// API Gateway's own payload ceiling.
const MAX_REQUEST_BYTES: usize = 6 * 1024 * 1024;
/// Responses larger than this are answered but not kept (an item holds 400 KB).
const MAX_KEPT_RESPONSE_BYTES: usize = 300 * 1024;

/// The routes whose change is one transaction (`store::tx::Tx`) and that
/// write nothing else, so the idempotency record can ride in it (module
/// docs). A route belongs here only if its handler makes no other write
/// (table, bucket, queue, outbound call) before or after that commit; the
/// handler may commit again after a failed attempt (a retry on a taken
/// slug), never twice.
pub const CHANGE_CARRIES_THE_RECORD: &[&str] =
    &["POST /v1/api-keys", "POST /v1/billing/usage", "POST /v1/projects", "POST /v1/tenants"];

/// Middleware (see the module docs).
pub async fn idempotency(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || request.uri().path().starts_with("/v1/auth/") {
        return next.run(request).await;
    }
    let Some(raw) = request.headers().get(HEADER).cloned() else {
        return next.run(request).await;
    };
    // Everything from the claim to storing the response runs on its own
    // task: a caller who hangs up makes the server drop this future, and a
    // claim dropped halfway would block retries until its lease ran out.
    let task = tokio::spawn(crate::http::in_current_request(guarded(state, raw, request, next)));
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => err.into_response(),
        Err(err) => AppError::internal(anyhow::anyhow!("the request task failed: {err}")).into_response(),
    }
}

fn valid_key(raw: &HeaderValue) -> AppResult<String> {
    let key = raw.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.chars().count() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AppError::invalid_field(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_CHARS} visible ASCII characters (a UUID is a good choice)"),
        ));
    }
    Ok(key.to_owned())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What makes two requests "the same": method, path and exact body bytes.
fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(path.as_bytes());
    hash.update(b"\n");
    hash.update(body);
    hex(&hash.finalize())
}

/// What one record is sealed for: only a request presenting the same
/// idempotency key, for the same caller, can rebuild its key.
fn seal_context(tenant: &str, caller: &str, idempotency_key: &str) -> SealContext {
    SealContext::new("idempotency-response-v1", &[tenant, caller, idempotency_key])
}

fn reused() -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request; use a new key for a new request",
    )
}

fn in_use() -> AppError {
    AppError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
}

async fn guarded(state: AppState, raw: HeaderValue, request: Request, next: Next) -> AppResult<Response> {
    let idempotency_key = valid_key(&raw)?;
    let (mut parts, body) = request.into_parts();
    let principal = Principal::from_request_parts(&mut parts, &state).await?;
    let bytes = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await.map_err(|_| {
        AppError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
    })?;
    let fingerprint = fingerprint(&parts.method, parts.uri.path(), &bytes);
    let scope = principal.acting_scope();
    let caller = match principal.api_key_id() {
        Some(key_id) => format!("K#{key_id}"),
        None => format!("U#{}", principal.user_id()),
    };
    let key = record_key(&scope, &caller, &hex(&Sha256::digest(idempotency_key.as_bytes())));
    let body_key = seal_context(&scope.pk(), &caller, &idempotency_key);
    let lock = uuid::Uuid::new_v4().to_string();

    let route = parts.extensions.get::<MatchedPath>().map(|p| format!("{} {}", parts.method, p.as_str()));
    if route.is_some_and(|route| CHANGE_CARRIES_THE_RECORD.contains(&route.as_str())) {
        let now = chrono::Utc::now().timestamp();
        let keys = state.keys.clone();
        let sealing_key = seal_context(&scope.pk(), &caller, &idempotency_key);
        let sealer = Box::new(move |body: &[u8]| keys.idempotency.seal(&sealing_key, body));
        let claim = RidingClaim::new(key, &fingerprint, &lock, now, (LEASE_SECONDS, KEEP_SECONDS), sealer);
        let response = claim.scope(next.run(Request::from_parts(parts, Body::from(bytes)))).await;
        return settle_riding(&state, &claim, &fingerprint, &body_key, response).await;
    }

    let waited_since = tokio::time::Instant::now();
    loop {
        let now = chrono::Utc::now().timestamp();
        if state.store.claim_idempotency_key(key.clone(), &fingerprint, &lock, now, LEASE_SECONDS, KEEP_SECONDS).await?
        {
            break;
        }
        match state.store.get_idempotency_record(key.clone()).await? {
            // Expired and deleted between the two calls: claim again.
            None => continue,
            Some(record) if record.fingerprint != fingerprint => return Err(reused()),
            Some(record) if record.state == STATE_COMPLETED => {
                return replay(&record, &state.keys.idempotency, &body_key);
            }
            Some(_) if waited_since.elapsed() >= WAIT_FOR_FIRST => return Err(in_use()),
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    Ok(keep(&state, key, &lock, &body_key, response).await)
}

/// What a riding claim's request answers, by what its transaction did.
async fn settle_riding(
    state: &AppState,
    claim: &RidingClaim,
    fingerprint: &str,
    body_key: &SealContext,
    response: Response,
) -> AppResult<Response> {
    let outcome = claim.outcome();
    if outcome == ClaimOutcome::Taken {
        // The handler's answer is its refused change's: the first request's
        // is the one to give.
        return answer_of_the_holder(state, claim.key(), fingerprint, body_key, true).await?.ok_or_else(in_use);
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|err| AppError::internal(anyhow::anyhow!("reading a response body failed: {err}")))?;
    let status = parts.status;
    let kept = !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
        && bytes.len() <= MAX_KEPT_RESPONSE_BYTES;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match outcome {
        ClaimOutcome::Committed { answered: true } if claim.stored_answer_is(status.as_u16(), &bytes) => {}
        ClaimOutcome::Committed { answered } => {
            if answered {
                // A handler bug: it answered other than it prepared. What the
                // caller got is what a retry must get.
                tracing::error!(
                    status = status.as_u16(),
                    "the response differs from the answer stored with the change"
                );
            }
            // The change committed: the record stays (a retry must not run it
            // again); the answer joins it when it can be kept.
            if kept {
                let sealed = state.keys.idempotency.seal(body_key, &bytes);
                let stored = match &sealed {
                    Ok((nonce, sealed)) => {
                        let stored = SealedResponse { status: status.as_u16(), content_type, nonce, sealed };
                        state.store.complete_idempotency_key(claim.key().clone(), claim.lock(), stored).await
                    }
                    Err(err) => Err(AppError::internal(anyhow::anyhow!("sealing the answer: {err:?}"))),
                };
                if let Err(err) = stored {
                    tracing::error!(error = %err, "storing the idempotent response failed");
                }
            }
        }
        ClaimOutcome::Conflicted => {
            // If a duplicate was committing at the same moment, its answer;
            // if no request holds the key (the conflict was with another
            // change), this retryable conflict, nothing kept.
            if let Some(answer) = answer_of_the_holder(state, claim.key(), fingerprint, body_key, false).await? {
                return Ok(answer);
            }
        }
        ClaimOutcome::NotCommitted if kept => {
            // Answered without a change (a refusal): kept like any answer,
            // unless another request holds the key, whose answer wins.
            let (nonce, sealed) = state.keys.idempotency.seal(body_key, &bytes)?;
            let stored = SealedResponse { status: status.as_u16(), content_type, nonce: &nonce, sealed: &sealed };
            if !state.store.answer_riding_claim(claim, stored).await? {
                return answer_of_the_holder(state, claim.key(), fingerprint, body_key, true).await?.ok_or_else(in_use);
            }
        }
        ClaimOutcome::NotCommitted | ClaimOutcome::Taken => {}
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// The answer of the request that holds the key: its stored response, a
/// 422 for another body, or (while it runs) a wait and then a 409. With no
/// record: `None` at once unless `wait_if_absent` (a holder is known to
/// exist, its record may be a moment from readable).
async fn answer_of_the_holder(
    state: &AppState,
    key: &crate::store::Item,
    fingerprint: &str,
    body_key: &SealContext,
    wait_if_absent: bool,
) -> AppResult<Option<Response>> {
    let waited_since = tokio::time::Instant::now();
    loop {
        let record = state.store.get_idempotency_record(key.clone()).await?;
        if record.is_none() && !wait_if_absent {
            return Ok(None);
        }
        match record {
            Some(record) if record.fingerprint != fingerprint => return Err(reused()),
            Some(record) if record.state == STATE_COMPLETED => {
                return replay(&record, &state.keys.idempotency, body_key).map(Some);
            }
            Some(record) if record.state == STATE_COMMITTED && record.lease_until < chrono::Utc::now().timestamp() => {
                return Err(AppError::conflict(
                    "this request was completed, but its answer was not kept; read the resource instead of \
                     replaying the request",
                )
                .with_details(serde_json::json!({"reason": "response_not_kept"})));
            }
            // Gone (its 24 hours are over) or still running: retry shortly.
            _ if waited_since.elapsed() >= WAIT_FOR_FIRST => return Err(in_use()),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A handler's answer built before its change commits, so that on the
/// routes of [`CHANGE_CARRIES_THE_RECORD`] the transaction stores it with
/// the change ([`Answer::prepare`]). Sent as JSON.
#[derive(Debug, Clone)]
pub struct Answer {
    status: StatusCode,
    location: Option<HeaderValue>,
    body: Bytes,
}

impl Answer {
    pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> AppResult<Self> {
        let body = serde_json::to_vec(body).map_err(AppError::internal)?;
        Ok(Self { status, location: None, body: Bytes::from(body) })
    }

    /// With a `Location` header (not stored: a replay answers the body).
    pub fn at(mut self, location: &str) -> Self {
        self.location = HeaderValue::from_str(location).ok();
        self
    }

    /// Hands the answer to the request's riding claim, if it has one: the
    /// next commit stores it. Call it right before the commit whose success
    /// it describes (again before a retried commit, with its answer).
    pub fn prepare(&self) -> AppResult<()> {
        match RidingClaim::current() {
            // Too large to keep: the record rides without it, and the layer
            // settles it as it settles any answer it cannot keep.
            Some(_) if self.body.len() > MAX_KEPT_RESPONSE_BYTES => Ok(()),
            Some(claim) => claim.prepare_answer(self.status.as_u16(), "application/json", self.body.to_vec()),
            None => Ok(()),
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(location) = self.location {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }
}

/// Stores the response for replays (or gives the key back) and returns it.
async fn keep(
    state: &AppState,
    key: crate::store::Item,
    lock: &str,
    body_key: &SealContext,
    response: Response,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(err) => {
            tracing::error!(error = %err, "reading a response body failed");
            let _ = state.store.release_idempotency_key(key, lock).await;
            return AppError::internal(anyhow::anyhow!("response body")).into_response();
        }
    };
    let status = parts.status;
    let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
    let outcome = if retryable || bytes.len() > MAX_KEPT_RESPONSE_BYTES {
        state.store.release_idempotency_key(key, lock).await
    } else {
        match state.keys.idempotency.seal(body_key, &bytes) {
            Ok((nonce, sealed)) => {
                let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let stored = SealedResponse { status: status.as_u16(), content_type, nonce: &nonce, sealed: &sealed };
                state.store.complete_idempotency_key(key, lock, stored).await
            }
            Err(err) => Err(err),
        }
    };
    if let Err(err) = outcome {
        // The change itself happened; a retry within the lease gets 409, after
        // it runs again. Loud, because that is the case this layer exists for.
        tracing::error!(error = %err, "storing the idempotent response failed");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(
    record: &crate::store::idempotency::IdempotencyRecord,
    ring: &KeyRing,
    body_key: &SealContext,
) -> AppResult<Response> {
    let (Some(status), Some(nonce), Some(sealed)) = (record.status, &record.body_nonce, &record.body_sealed) else {
        // A compliance erasure removes stored answers (store::compliance):
        // the request's effect stands, so it is not run again either.
        if record.status.is_some() {
            return Err(AppError::conflict(
                "this request was completed, but its stored answer was erased (a compliance erasure); read the \
                 resource instead of replaying the request",
            )
            .with_details(serde_json::json!({"reason": "response_erased"})));
        }
        return Err(AppError::internal(anyhow::anyhow!("a completed idempotency record without its response")));
    };
    let body = ring.open(body_key, nonce, sealed)?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).map_err(AppError::internal)?;
    if let Some(content_type) = record.content_type.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let a = fingerprint(&Method::POST, "/v1/projects", b"{\"name\":\"a\"}");
        assert_eq!(a, fingerprint(&Method::POST, "/v1/projects", b"{\"name\":\"a\"}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/projects", b"{\"name\":\"b\"}"));
        assert_ne!(a, fingerprint(&Method::POST, "/v1/users", b"{\"name\":\"a\"}"));
    }

    /// A route named there that no longer exists (renamed, moved) would
    /// silently fall back to claiming first.
    #[test]
    fn every_route_whose_change_carries_the_record_exists() {
        let document: serde_json::Value =
            serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json")))
                .expect("docs/openapi.json");
        for route in CHANGE_CARRIES_THE_RECORD {
            let (method, path) = route.split_once(' ').expect("METHOD /path");
            assert_eq!(method, "POST", "{route}: the layer only takes POSTs");
            assert!(document["paths"][path]["post"].is_object(), "{route} is not in docs/openapi.json");
        }
    }

    #[test]
    fn keys_must_be_short_visible_ascii() {
        assert!(valid_key(&HeaderValue::from_static("6f1c0d9e-2b7a-4c1e-9f00-1a2b3c4d5e6f")).is_ok());
        assert!(valid_key(&HeaderValue::from_static("")).is_err());
        assert!(valid_key(&HeaderValue::from_static("two words")).is_err());
        assert!(valid_key(&HeaderValue::from_str(&"k".repeat(256)).expect("header")).is_err());
    }
}
