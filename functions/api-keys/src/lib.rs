//! The api-keys route group (seed 004): keys for machines, managed by people.
//! A key's secret is shown once, on creation and on rotation; afterwards only
//! its prefix and last four characters are. Only admins (signed in: no key
//! manages keys, so a leaked key cannot mint itself a broader one) manage keys.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/api-keys` | [`create_key`] | admin |
//! | `GET /v1/api-keys` | [`list_keys`] | admin |
//! | `GET /v1/api-keys/{id}` | [`get_key`] | admin |
//! | `DELETE /v1/api-keys/{id}` | [`revoke_key`] | admin |
//! | `POST /v1/api-keys/{id}/rotate` | [`rotate_key`] | admin |

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{
        Principal, Role, Scope,
        api_key::{self, KeyEnvironment},
    },
    domain::{now, rfc3339},
    error::FieldError,
    http::{JsonObject, Page, QueryParams, path_uuid},
    store::api_keys::{API_KEY_RESOURCE, ApiKey},
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}", get(get_key).delete(revoke_key))
        .route("/v1/api-keys/{id}/rotate", post(rotate_key))
}

pub const MAX_NAME_CHARS: usize = 100;
/// Longest lifetime a key may be given, in days.
pub const MAX_LIFETIME_DAYS: i64 = 730;
/// Longest time an old secret keeps working after a rotation.
pub const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

fn key_id(raw: &str) -> AppResult<Uuid> {
    path_uuid(raw, "key_id")
}

/// What a create body asks for.
#[derive(Debug, PartialEq)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub environment: KeyEnvironment,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Body `{name, scopes: [...], environment?: live|test, expires_at? | expires_in_days?}`.
pub fn new_key_from(body: &Map<String, Value>, at: chrono::DateTime<chrono::Utc>) -> AppResult<NewKey> {
    let mut f = Fields::new(body);
    f.reject_unknown(&["name", "scopes", "environment", "expires_at", "expires_in_days"]);
    let name = f.text("name", Need::Required, 1, MAX_NAME_CHARS).map(|n| n.trim().to_owned());
    if name.as_deref().is_some_and(str::is_empty) {
        f.error("name", "must not be blank");
    }
    let scopes = scopes_field(&mut f);
    let environment = f
        .one_of("environment", Need::Optional, &["live", "test"])
        .and_then(KeyEnvironment::parse)
        .unwrap_or(KeyEnvironment::Live);
    let latest = at + chrono::Duration::days(MAX_LIFETIME_DAYS);
    let mut expires_at = None;
    if let Some(text) = f.text("expires_at", Need::Optional, 1, 64) {
        match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) if t.with_timezone(&chrono::Utc) <= at => f.error("expires_at", "must be in the future"),
            Ok(t) if t.with_timezone(&chrono::Utc) > latest => {
                f.error("expires_at", format!("must be at most {MAX_LIFETIME_DAYS} days away"));
            }
            Ok(t) => expires_at = Some(t.with_timezone(&chrono::Utc)),
            Err(_) => f.error("expires_at", "must be an RFC 3339 timestamp such as 2027-01-31T00:00:00Z"),
        }
    }
    if let Some(days) = f.integer("expires_in_days", Need::Optional, 1, MAX_LIFETIME_DAYS) {
        if body.get("expires_at").is_some_and(|v| !v.is_null()) {
            f.error("expires_in_days", "give expires_at or expires_in_days, not both");
        }
        expires_at = Some(at + chrono::Duration::days(days));
    }
    let key = name.zip(scopes).map(|(name, scopes)| NewKey { name, scopes, environment, expires_at });
    f.finish()?;
    // `Fields` names every required field it could not read, so a valid body
    // has both; this is the same 400 in case one is ever read as `None`.
    key.ok_or_else(|| {
        AppError::validation(vec![FieldError::new("name", "is required"), FieldError::new("scopes", "is required")])
    })
}

/// A non-empty list of known scopes; duplicates collapse.
fn scopes_field(f: &mut Fields<'_>) -> Option<Vec<Scope>> {
    let list = f.array("scopes", Need::Required, Scope::ALL.len() * 2)?;
    if list.is_empty() {
        f.error("scopes", "must name at least one scope");
        return None;
    }
    let mut scopes = Vec::new();
    for (i, value) in list.iter().enumerate() {
        match value.as_str().and_then(Scope::parse) {
            Some(scope) if !scopes.contains(&scope) => scopes.push(scope),
            Some(_) => {}
            None => {
                f.error(&format!("scopes[{i}]"), format!("must be one of: {}", Scope::names().join(", ")));
            }
        }
    }
    (!f.has_errors()).then_some(scopes)
}

/// The key with its secret: the one response that ever shows it.
fn with_secret(key: &ApiKey, secret: &str) -> Value {
    let mut body = key.to_body();
    body["secret"] = json!(secret);
    body["secret_notice"] = json!("store this secret now: it is shown only once");
    body
}

async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let at = now();
    let request = new_key_from(&body, at)?;
    let id = Uuid::now_v7();
    let secret = api_key::generate(scope.tenant_id(), id, request.environment);
    let created = rfc3339(at);
    let key = ApiKey {
        id,
        tenant_id: scope.tenant_id(),
        name: request.name,
        environment: request.environment,
        prefix: request.environment.prefix().to_owned(),
        last_four: secret.last_four.clone(),
        scopes: request.scopes,
        created_at: created.clone(),
        created_by: principal.user_id().to_string(),
        updated_at: created,
        expires_at: request.expires_at.map(rfc3339),
        revoked_at: None,
        rotated_at: None,
        last_used_at: None,
        usage_count: 0,
    };
    state.store.create_api_key(&scope, &key, &secret, &audit).await?;
    Ok((StatusCode::CREATED, Json(with_secret(&key, &secret.secret))).into_response())
}

/// Newest first; `?limit=`, `?cursor=`.
async fn list_keys(State(state): State<AppState>, principal: Principal, params: QueryParams) -> AppResult<Page<Value>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    params.allow_only(&["limit", "cursor"])?;
    let page = params.page()?;
    let (keys, next_cursor) = state.store.list_api_keys(&scope, &page).await?;
    Ok(Page { data: keys.iter().map(ApiKey::to_body).collect(), next_cursor })
}

async fn get_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let key = state.store.get_api_key(&scope, key_id(&id)?).await?;
    Ok(Json(key.ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?.to_body()))
}

/// Revokes at once and answers the key (`status: revoked`); the key stays
/// listed for the record. Revoking twice answers the same.
async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let key = state
        .store
        .revoke_api_key(&scope, key_id(&id)?, &audit)
        .await?
        .ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?;
    Ok(Json(key.to_body()))
}

/// A new secret for the same key (id, name, scopes stay). Body optional:
/// `{grace_period_seconds: 0..=604800}` keeps the old secret working that
/// long so deployments can switch over; default 0 (the old one dies now).
async fn rotate_key(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<Json<Value>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let id = key_id(&id)?;
    let grace = grace_from(&body)?;
    let old_valid_until = (grace > 0).then(|| now() + chrono::Duration::seconds(grace));
    let (key, secret) = state
        .store
        .rotate_api_key(&scope, id, old_valid_until, &audit)
        .await?
        .ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?;
    let mut body = with_secret(&key, &secret.secret);
    body["old_secret_valid_until"] = json!(old_valid_until.map(rfc3339));
    Ok(Json(body))
}

/// An empty body is allowed (no grace).
fn grace_from(body: &[u8]) -> AppResult<i64> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(0);
    }
    let map: Map<String, Value> = shared::http::parse_json(body)?;
    let mut f = Fields::new(&map);
    f.reject_unknown(&["grace_period_seconds"]);
    let grace = f.integer("grace_period_seconds", Need::Optional, 0, MAX_GRACE_SECONDS);
    f.finish()?;
    Ok(grace.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: Value) -> Vec<String> {
        match new_key_from(body.as_object().expect("object"), now()) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("internal: {e}"),
        }
    }

    #[test]
    fn a_valid_key_request_is_read_with_defaults() {
        let at = now();
        let key = new_key_from(
            json!({"name": " CI ", "scopes": ["tryons:write", "tryons:read", "tryons:write"], "expires_in_days": 30})
                .as_object()
                .expect("object"),
            at,
        )
        .expect("valid");
        assert_eq!(key.name, "CI");
        assert_eq!(key.scopes, [Scope::TryonsWrite, Scope::TryonsRead]);
        assert_eq!(key.environment, KeyEnvironment::Live);
        assert_eq!(key.expires_at, Some(at + chrono::Duration::days(30)));
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(problems(json!({"scopes": ["users:read"]})), ["name"]);
        assert_eq!(problems(json!({"name": "k"})), ["scopes"]);
        assert_eq!(problems(json!({"name": "k", "scopes": []})), ["scopes"]);
        assert_eq!(problems(json!({"name": "k", "scopes": ["users:read", "root"]})), ["scopes[1]"]);
        assert_eq!(problems(json!({"name": "k", "scopes": ["users:read"], "environment": "prod"})), ["environment"]);
        assert_eq!(
            problems(json!({"name": "k", "scopes": ["users:read"], "expires_at": "2001-01-01T00:00:00Z"})),
            ["expires_at"]
        );
        assert_eq!(problems(json!({"name": "k", "scopes": ["users:read"], "expires_at": "tomorrow"})), ["expires_at"]);
        assert_eq!(
            problems(json!({"name": "k", "scopes": ["users:read"], "expires_in_days": 731})),
            ["expires_in_days"]
        );
        assert_eq!(problems(json!({"name": " ", "scopes": ["users:read"], "owner": 1})), ["owner", "name"]);
    }

    #[test]
    fn the_grace_period_is_bounded() {
        assert_eq!(grace_from(b"").expect("empty"), 0);
        assert_eq!(grace_from(b"{\"grace_period_seconds\": 3600}").expect("grace"), 3600);
        assert!(grace_from(b"{\"grace_period_seconds\": 604801}").is_err());
        assert!(grace_from(b"{\"grace\": 1}").is_err());
    }
}
