//! The inbound endpoint: `POST /v1/integrations/webhooks/{token}`, public.
//! The token names the tenant and provider (one read finds them); the
//! signature on the raw bytes is the sender's credential. In order:
//!
//! 1. the token: unknown, or an inactive provider: 404, nothing stored;
//! 2. the provider's rate limit: over it, 429 with `Retry-After`, nothing
//!    stored (a flood must not become a flood of rows);
//! 3. the source address against `allowed_ips`: 403 `ip_not_allowed`;
//! 4. the size: over 256 KiB, 413;
//! 5. the signature and its timestamp (`verify`), with the current secret
//!    and, during a rotation's grace, the previous one: 401
//!    `invalid_signature` with `details.reason`;
//! 6. the body: a JSON object with the event's id and type, else 400.
//!
//! Refusals from 3 on are recorded as `rejected` events (reason, address,
//! size; never the body). An accepted body goes to S3, then the event row,
//! its dedupe claim and its bus event commit together: 202 `received`. A
//! repeated `event_id` answers 200 `duplicate` with the first event's id,
//! and is counted on it.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    audit::ClientInfo,
    auth::{TenantScope, proofs::CredentialLookup},
    blobs::tenant_prefix,
    domain::{
        integration::{EventStatus, InboundEvent, MAX_INBOUND_BYTES, Provider, Rejection, Verification},
        now_rfc3339,
        tenant::IpRange,
    },
    error::FieldError,
    store::integrations::{ProviderSecrets, Receipt, sha256_hex},
};
use uuid::Uuid;

use crate::verify::{self, Refusal, SecretUsed};

pub const TOKEN_PREFIX: &str = "iwh_";
/// How far a signed timestamp may be from now (Stripe's and Standard
/// Webhooks' default).
pub const TOLERANCE_SECONDS: i64 = verify::DEFAULT_TOLERANCE_SECONDS;

/// The tenant and provider ids a token carries, if it is one of ours.
pub fn token_ids(token: &str) -> Option<(Uuid, Uuid)> {
    use base64::Engine;
    let encoded = token.strip_prefix(TOKEN_PREFIX)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).ok()?;
    if bytes.len() != 48 {
        return None;
    }
    let tenant = Uuid::from_slice(&bytes[..16]).ok()?;
    let provider = Uuid::from_slice(&bytes[16..32]).ok()?;
    Some((tenant, provider))
}

/// What the sender is told.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboundReceipt {
    /// The stored event (the first one, for a duplicate).
    pub id: Uuid,
    /// The sender's id for it.
    pub event_id: String,
    /// `received`, or `duplicate` when this `event_id` came before.
    pub status: String,
}

fn not_found() -> AppError {
    AppError::not_found("integration_webhook")
}

/// Receive a provider's webhook
///
/// Public: the token in the path names the provider, the signature proves
/// the sender. Send the body exactly as signed. Signature headers by the
/// provider's `verification`: `generic_hmac_sha256`: `X-Signature-256:
/// sha256=<hex HMAC-SHA256 of the body>` (optionally `X-Signature-Timestamp`,
/// then the HMAC covers `<timestamp>.<body>`); `standard_webhooks`:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature` (or the `svix-`
/// ones); `stripe`: `Stripe-Signature`; `github`: `X-Hub-Signature-256`,
/// `X-GitHub-Event`, `X-GitHub-Delivery`. Timestamps must be within 5
/// minutes. The body is seed 003's: `event_type`, `event_id`, `data`.
#[utoipa::path(post, path = "/v1/integrations/webhooks/{token}", tag = "integrations",
    params(("token" = String, Path, description = "The provider's inbound token (from its `inbound_url`)")),
    request_body(content = Object, example = json!({
        "event_type": "user.created",
        "event_id": "evt_123",
        "data": {"user_id": "123", "email": "user@example.com", "name": "John Doe"}
    })),
    responses(
        (status = 202, description = "Verified and stored: `received`", body = InboundReceipt),
        (status = 200, description = "This `event_id` was received before: `duplicate`, with the first event's id", body = InboundReceipt),
        (status = 400, description = "Bad request\n\n- `invalid_json`: the body is not a JSON object\n- `validation_failed`: the event's id or type is missing (`details.fields`)", body = shared::web::openapi::ApiError),
        (status = 401, description = "Not authenticated\n\n- `invalid_signature`: the signature is missing, malformed, wrong, or its timestamp is outside 5 minutes (`details.reason`: `missing_signature`, `malformed_signature`, `bad_signature`, `stale_timestamp`)", body = shared::web::openapi::ApiError),
        (status = 403, description = "Forbidden\n\n- `ip_not_allowed`: the provider accepts deliveries only from its `allowed_ips`", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no active provider has this token", body = shared::web::openapi::ApiError),
        (status = 413, description = "Payload too large\n\n- `payload_too_large`: the body is over 256 KiB", body = shared::web::openapi::ApiError),
        (status = 429, description = "Too many requests\n\n- `rate_limited`: the provider's `rate_limit_per_minute` is reached; wait `Retry-After` seconds", body = shared::web::openapi::ApiError),
    ))]
pub async fn receive(
    State(state): State<AppState>,
    client: ClientInfo,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<InboundReceipt>)> {
    let (tenant_id, provider_id) = token_ids(&token).ok_or_else(not_found)?;
    let lookup = CredentialLookup::named_by_credential(tenant_id);
    let (scope, provider, secrets) = state
        .store
        .inbound_provider(&lookup, provider_id, &sha256_hex(token.as_bytes()))
        .await?
        .ok_or_else(not_found)?;
    if !provider.is_active {
        return Err(not_found());
    }
    let now = chrono::Utc::now();
    let counted = state.store.record_provider_request(&scope, provider.id, provider.rate_limit_per_minute, now).await?;
    if !counted.allowed {
        return Err(counted.refusal());
    }
    let refusal = Refused { state: &state, scope: &scope, provider: &provider, client: &client, size: body.len() };
    if !address_allowed(&provider.allowed_ips, client.ip_address.as_deref()) {
        let err =
            AppError::forbidden("ip_not_allowed", "this provider accepts deliveries only from its allowed addresses");
        return Err(refusal.record("ip_not_allowed", err).await);
    }
    if body.len() > MAX_INBOUND_BYTES {
        let err = AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("an inbound webhook may have at most {MAX_INBOUND_BYTES} bytes"),
        );
        return Err(refusal.record("payload_too_large", err).await);
    }
    let verified = match verify_signature(&state, &scope, &provider, &secrets, &headers, &body, now.timestamp()) {
        Ok(verified) => verified,
        Err(refused) => return Err(refusal.record(refused.code(), answer(&refused)).await),
    };
    // verify() parsed it already; a second parse is cheaper than threading
    // the value through it.
    let payload: serde_json::Value = serde_json::from_slice(&body).map_err(AppError::internal)?;
    let event = InboundEvent {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        provider_id: provider.id,
        provider: provider.name.clone(),
        event_id: verified.event_id.clone(),
        event_type: verified.event_type,
        status: EventStatus::Received.as_str().to_owned(),
        rejection: None,
        source_ip: client.ip_address.clone(),
        size_bytes: body.len() as i64,
        secret_used: Some(
            match verified.secret_used {
                SecretUsed::Current => "current",
                SecretUsed::Previous => "previous",
            }
            .to_owned(),
        ),
        payload_key: None,
        duplicate_count: 0,
        last_duplicate_at: None,
        replay_count: 0,
        processed_at: None,
        processing_ms: None,
        attempts: 0,
        last_error: None,
        created_at: now_rfc3339(),
    };
    let key = format!("{}integrations/{}/{}.json", tenant_prefix(&scope), provider.id, event.id);
    state.blobs.put(&key, body.to_vec(), "application/json").await?;
    let event = InboundEvent { payload_key: Some(key.clone()), ..event };
    match state.store.receive_event(&scope, &event, &payload).await? {
        Receipt::New => Ok((
            StatusCode::ACCEPTED,
            Json(InboundReceipt { id: event.id, event_id: event.event_id, status: "received".into() }),
        )),
        Receipt::Duplicate(first) => {
            // Only the first delivery's body is kept.
            if let Err(err) = state.blobs.delete(&key).await {
                tracing::warn!(error = %err, key, "a duplicate's body was not deleted");
            }
            Ok((
                StatusCode::OK,
                Json(InboundReceipt { id: first, event_id: event.event_id, status: "duplicate".into() }),
            ))
        }
    }
}

/// True when the provider lists no address, or `address` is in a range.
fn address_allowed(allowed: &[String], address: Option<&str>) -> bool {
    if allowed.is_empty() {
        return true;
    }
    let Some(ip) = address.and_then(|a| a.parse::<std::net::IpAddr>().ok()) else { return false };
    allowed.iter().filter_map(|r| IpRange::parse(r).ok()).any(|range| range.contains(ip))
}

/// Checks the signature with the current secret and, while its grace
/// lasts, the previous one.
fn verify_signature(
    state: &AppState,
    scope: &TenantScope,
    provider: &Provider,
    secrets: &ProviderSecrets,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<verify::Verified, Refusal> {
    let opened = |sealed| crate::open(state, "secret", scope, provider.id, sealed);
    let Ok(current) = opened(&secrets.secret) else {
        tracing::error!(provider = %provider.id, "a provider's secret did not open");
        return Err(Refusal::BadSignature);
    };
    let previous_live = provider
        .previous_secret_expires_at
        .as_deref()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|until| until.timestamp() > now);
    let previous =
        if previous_live && !secrets.previous_secret.is_empty() { opened(&secrets.previous_secret).ok() } else { None };
    let mut candidates = vec![current.as_str()];
    candidates.extend(previous.as_deref());
    let verification = Verification::parse(&provider.verification).unwrap_or(Verification::GenericHmacSha256);
    verify::verify(crate::verify_scheme(verification), headers, body, &candidates, now, TOLERANCE_SECONDS)
}

/// The API's answer to a refusal of the signature or body.
fn answer(refused: &Refusal) -> AppError {
    match refused {
        Refusal::NotJson => AppError::new(StatusCode::BAD_REQUEST, "invalid_json", refused.message()),
        Refusal::MissingEventId => AppError::validation(vec![FieldError::new("event_id", refused.message())]),
        Refusal::MissingEventType => AppError::validation(vec![FieldError::new("event_type", refused.message())]),
        _ => AppError::new(StatusCode::UNAUTHORIZED, "invalid_signature", refused.message())
            .with_details(serde_json::json!({"reason": refused.code()})),
    }
}

/// Records a refusal as a `rejected` event, then answers it.
struct Refused<'a> {
    state: &'a AppState,
    scope: &'a TenantScope,
    provider: &'a Provider,
    client: &'a ClientInfo,
    size: usize,
}

impl Refused<'_> {
    async fn record(&self, reason: &str, err: AppError) -> AppError {
        let message = match &err {
            AppError::Api { message, .. } => message.clone(),
            AppError::Internal(_) => reason.to_owned(),
        };
        let event = InboundEvent {
            id: Uuid::now_v7(),
            tenant_id: self.scope.tenant_id(),
            provider_id: self.provider.id,
            provider: self.provider.name.clone(),
            event_id: String::new(),
            event_type: String::new(),
            status: EventStatus::Rejected.as_str().to_owned(),
            rejection: Some(Rejection { reason: reason.to_owned(), message }),
            source_ip: self.client.ip_address.clone(),
            size_bytes: self.size as i64,
            secret_used: None,
            payload_key: None,
            duplicate_count: 0,
            last_duplicate_at: None,
            replay_count: 0,
            processed_at: None,
            processing_ms: None,
            attempts: 0,
            last_error: None,
            created_at: now_rfc3339(),
        };
        if let Err(record_err) = self.state.store.record_rejection(self.scope, &event).await {
            // The sender still gets its refusal; the row is what is lost.
            tracing::error!(error = %record_err, provider = %self.provider.id, reason, "a rejection was not recorded");
        }
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_list_admits_only_its_ranges() {
        let ranges = vec!["203.0.113.0/24".to_owned(), "2001:db8::/32".to_owned()];
        assert!(address_allowed(&[], None), "no list: anyone");
        assert!(address_allowed(&ranges, Some("203.0.113.25")));
        assert!(address_allowed(&ranges, Some("::ffff:203.0.113.25")));
        assert!(address_allowed(&ranges, Some("2001:db8::1")));
        assert!(!address_allowed(&ranges, Some("198.51.100.1")));
        assert!(!address_allowed(&ranges, None), "no address: not in the list");
    }

    #[test]
    fn refusals_answer_by_kind() {
        let code = |r: Refusal| match answer(&r) {
            AppError::Api { code, status, .. } => (status.as_u16(), code),
            AppError::Internal(e) => panic!("{e}"),
        };
        assert_eq!(code(Refusal::BadSignature), (401, "invalid_signature"));
        assert_eq!(code(Refusal::StaleTimestamp), (401, "invalid_signature"));
        assert_eq!(code(Refusal::NotJson), (400, "invalid_json"));
        assert_eq!(code(Refusal::MissingEventId), (400, "validation_failed"));
    }
}
