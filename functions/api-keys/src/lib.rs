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
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{
        Principal, Role, Scope,
        api_key::{self, KeyEnvironment},
    },
    domain::{
        api_key::{GraceSeconds, KeyName, LifetimeDays, MAX_LIFETIME_DAYS, Timestamp},
        ids::ApiKeyId,
        now, rfc3339,
    },
    error::FieldError,
    http::Page,
    idempotency::Answer,
    store::api_keys::{API_KEY_RESOURCE, ApiKey, ApiKeyView},
    web::extract::{Body, ListQuery, OptionalBody, PathIds},
    web::principal::Fresh,
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_key, list_keys, get_key, revoke_key, rotate_key, transfer_key),
    modifiers(&OptionalRotateBody),
    tags((name = "api-keys", description = "Keys for machines (seed 004), managed by the tenant's admins while signed in: no API key manages keys. A key's secret is shown once, on creation and on rotation; afterwards only its `prefix` and `last_four` are. A key acts with its owner's current role (at most `admin`) and only within its scopes"))
)]
pub struct ApiDoc;

/// The rotation's body may be left out (`OptionalBody`): utoipa marks a body
/// of `content = Rotate` required, and `content = Option<Rotate>` would admit
/// a `null` body, which is refused (400 `invalid_json`).
struct OptionalRotateBody;

impl utoipa::Modify for OptionalRotateBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        shared::web::openapi::optional_post_body(openapi, "/v1/api-keys/{id}/rotate");
    }
}

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}", get(get_key).delete(revoke_key))
        .route("/v1/api-keys/{id}/rotate", post(rotate_key))
        .route("/v1/api-keys/{id}/transfer", post(transfer_key))
}

/// The scopes a key is given: at least one, each known (`scopes[i]` names a
/// bad one), duplicates collapsed (first mention first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScopes(Vec<Scope>);

impl KeyScopes {
    /// At most every scope twice: a longer list is a mistake.
    pub const MAX_ITEMS: usize = Scope::ALL.len() * 2;

    pub fn new(scopes: Vec<Scope>) -> Result<Self, String> {
        if scopes.is_empty() {
            return Err("must name at least one scope".to_owned());
        }
        if scopes.len() > Self::MAX_ITEMS {
            return Err(format!("must have at most {} items", Self::MAX_ITEMS));
        }
        let mut unique = Vec::with_capacity(scopes.len());
        for scope in scopes {
            if !unique.contains(&scope) {
                unique.push(scope);
            }
        }
        Ok(Self(unique))
    }
}

shared::inline_schema!(
    KeyScopes,
    "KeyScopes",
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(
            utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .enum_values(Some(Scope::names())),
        )
        .min_items(Some(1))
        .max_items(Some(KeyScopes::MAX_ITEMS))
        .description(Some("What the key may do: at least one scope; a repeated one counts once"))
);

impl<'de> Deserialize<'de> for KeyScopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = shared::domain::project::array_of::<D, ScopeName>(deserializer)?;
        Self::new(names.into_iter().map(|ScopeName(scope)| scope).collect()).map_err(D::Error::custom)
    }
}

/// One scope by its name; an unknown name is refused with the list, at its
/// index (`scopes[1]`).
struct ScopeName(Scope);

impl<'de> Deserialize<'de> for ScopeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Scope::parse(&name)
            .map(ScopeName)
            .ok_or_else(|| D::Error::custom(format!("must be one of: {}", Scope::names().join(", "))))
    }
}

shared::string_enum!(
    /// A key's `environment` as a create body names it (serde's derive on
    /// `KeyEnvironment` would name the variant in the error's path).
    Environment {
        Live => "live",
        Test => "test",
    }
);

/// A key to create: its name, its scopes, its environment, and when it
/// expires (`expires_at` or `expires_in_days`, not both; neither: never,
/// unless the tenant requires an expiry).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// How people recognise the key.
    #[eserde(compat)]
    name: KeyName,
    #[eserde(compat)]
    scopes: KeyScopes,
    /// `live` (default) or `test` (any case): the secret starts `sk_live_`
    /// or `sk_test_`.
    #[serde(default)]
    #[eserde(compat)]
    environment: Option<Environment>,
    /// When the key stops working: in the future, at most 730 days away
    /// (or the tenant's `settings.api_keys.max_lifetime_days`).
    #[serde(default)]
    #[eserde(compat)]
    expires_at: Option<Timestamp>,
    /// The key's lifetime in days from now, instead of `expires_at`.
    #[serde(default)]
    #[eserde(compat)]
    expires_in_days: Option<LifetimeDays>,
}

/// What a create body asks for.
#[derive(Debug, PartialEq)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub environment: KeyEnvironment,
    pub expires_at: Option<DateTime<Utc>>,
}

impl CreateKey {
    /// The rules that need the clock or span fields: an expiry in the
    /// future, at most [`MAX_LIFETIME_DAYS`] away, given one way only.
    pub fn at(self, at: DateTime<Utc>) -> AppResult<NewKey> {
        let mut problems = Vec::new();
        let latest = at + chrono::Duration::days(MAX_LIFETIME_DAYS);
        let mut expires_at = match self.expires_at {
            Some(Timestamp(t)) if t <= at => {
                problems.push(FieldError::new("expires_at", "must be in the future"));
                None
            }
            Some(Timestamp(t)) if t > latest => {
                problems.push(FieldError::new("expires_at", format!("must be at most {MAX_LIFETIME_DAYS} days away")));
                None
            }
            other => other.map(|Timestamp(t)| t),
        };
        if let Some(days) = self.expires_in_days {
            if self.expires_at.is_some() {
                problems.push(FieldError::new("expires_in_days", "give expires_at or expires_in_days, not both"));
            }
            expires_at = Some(at + chrono::Duration::days(days.get()));
        }
        if !problems.is_empty() {
            return Err(AppError::validation(problems));
        }
        Ok(NewKey {
            name: self.name.into_inner(),
            scopes: self.scopes.0,
            environment: match self.environment {
                None | Some(Environment::Live) => KeyEnvironment::Live,
                Some(Environment::Test) => KeyEnvironment::Test,
            },
            expires_at,
        })
    }
}

/// The key with its secret: the one response that ever shows it (on
/// creation, and in [`RotatedKey`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyWithSecret {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// The whole key (`sk_live_...`), to send as the bearer token.
    pub secret: String,
    /// A reminder that `secret` is not shown again.
    pub secret_notice: String,
}

impl KeyWithSecret {
    fn new(key: &ApiKey, secret: &str) -> Self {
        Self {
            key: key.view(),
            secret: secret.to_owned(),
            secret_notice: "store this secret now: it is shown only once".to_owned(),
        }
    }
}

/// A rotated key with its new secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    #[serde(flatten)]
    pub key: KeyWithSecret,
    /// Until when the previous secret still works; `null` when it stopped
    /// at once (no grace period).
    #[schema(format = DateTime)]
    pub old_secret_valid_until: Option<String>,
}

/// Creates an API key; its secret is shown only in this answer.
///
/// The key acts with its creator's role (at most `admin`) and only within
/// its `scopes`. It never expires unless given `expires_at` (in the future,
/// at most 730 days away) or `expires_in_days` (1 to 730), not both; a
/// tenant whose `settings.api_keys.max_lifetime_days` is set requires one,
/// at most that many days away (400 otherwise). A platform admin acting in
/// another tenant cannot create keys there (403): a key belongs to a member.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = ["admin"])),
    request_body(content = CreateKey, example = json!({
        "name": "Storefront backend",
        "scopes": ["customers:write", "tryons:write", "tryons:read"],
        "environment": "live",
        "expires_in_days": 365
    })),
    responses((status = 201, description = "The key with its secret (shown once)", body = KeyWithSecret)))]
async fn create_key(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    body: Result<Body<CreateKey>, AppError>,
) -> AppResult<Answer> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    if !principal.acts_in_home_tenant() {
        // A key acts with its owner's standing in the key's tenant; a
        // platform admin has none there.
        return Err(AppError::forbidden(
            "insufficient_permissions",
            "an API key belongs to a member of its tenant; create it as one of them",
        ));
    }
    let at = now();
    let Body(request) = body?;
    let request = request.at(at)?;
    let id = Uuid::now_v7();
    let secret = api_key::generate(scope.tenant_id(), id, request.environment);
    let key = ApiKey {
        id,
        tenant_id: scope.tenant_id(),
        name: request.name,
        environment: request.environment,
        prefix: request.environment.prefix().to_owned(),
        last_four: secret.last_four.clone(),
        scopes: request.scopes,
        created_at: at,
        created_by: principal.user_id().to_string(),
        updated_at: at,
        expires_at: request.expires_at.map(rfc3339),
        revoked_at: None,
        rotated_at: None,
        last_used_at: None,
        usage_count: 0,
    };
    // Built before the commit so that an Idempotency-Key's record stores it
    // in the same transaction (shared::idempotency).
    let answer = Answer::json(StatusCode::CREATED, &KeyWithSecret::new(&key, &secret.secret))?;
    answer.prepare()?;
    state.store.create_api_key(&scope, &key, &secret, &audit).await?;
    Ok(answer)
}

/// The member a key is handed to.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Transfer {
    /// The new owner's user id: an active member of the tenant.
    #[eserde(compat)]
    owner_id: shared::domain::ids::UserId,
}

/// Hands an API key to another member.
///
/// From then on the key acts with the new owner's role (at most `admin`),
/// and `created_by` names them: transfer the keys of a member who is leaving
/// so that they keep working. The new owner must be an active member of the
/// tenant (400 otherwise).
#[utoipa::path(post, path = "/v1/api-keys/{id}/transfer", tag = "api-keys", security(("bearer" = ["admin"])),
    request_body(content = Transfer, example = json!({"owner_id": "0190f3a4-6b1e-7c2d-8e9f-0a1b2c3d4e5f"})),
    responses(
        (status = 200, description = "The key, now the new owner's", body = ApiKeyView),
        (status = 404, description = "Not found\n\n- `not_found`: no such key in the caller's tenant (another tenant's id answers this too), or it is revoked", body = shared::web::openapi::ApiError),
    ))]
async fn transfer_key(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    path: Result<PathIds<ApiKeyId>, AppError>,
    body: Result<Body<Transfer>, AppError>,
) -> AppResult<Json<ApiKeyView>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let PathIds(ApiKeyId(key_id)) = path?;
    let Body(Transfer { owner_id: shared::domain::ids::UserId(owner_id) }) = body?;
    match state.store.get_user(&scope, owner_id).await? {
        Some(user) if user.is_active => {}
        _ => return Err(AppError::invalid_field("owner_id", "must be an active member of this tenant")),
    }
    let key = state
        .store
        .transfer_api_key(&scope, key_id, owner_id, &audit)
        .await?
        .ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?;
    Ok(Json(key.view()))
}

/// Lists the tenant's API keys.
///
/// Newest first, revoked and expired ones included (see `status`);
/// paginated with `limit` and `cursor`. Secrets are never shown again: a
/// key is recognised by its `prefix` and `last_four`.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys", security(("bearer" = ["admin"])),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyView>)))]
async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<shared::web::extract::NoFilters>, AppError>,
) -> AppResult<Page<ApiKeyView>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let ListQuery { page, .. } = query?;
    let (keys, next_cursor) = state.store.list_api_keys(&scope, &page).await?;
    Ok(Page { data: keys.iter().map(ApiKey::view).collect(), next_cursor })
}

/// Gets an API key (never its secret).
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = ["admin"])),
    responses((status = 200, description = "The key", body = ApiKeyView)))]
async fn get_key(
    State(state): State<AppState>,
    principal: Principal,
    path: Result<PathIds<ApiKeyId>, AppError>,
) -> AppResult<Json<ApiKeyView>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let PathIds(ApiKeyId(id)) = path?;
    let key = state.store.get_api_key(&scope, id).await?;
    Ok(Json(key.ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?.view()))
}

/// Revokes an API key at once.
///
/// Every later request with it is 401. Answers the key (`status: revoked`),
/// which stays listed for the record; revoking it again answers the same.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys", security(("bearer" = ["admin"])),
    responses((status = 200, description = "The key, revoked", body = ApiKeyView)))]
async fn revoke_key(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    path: Result<PathIds<ApiKeyId>, AppError>,
) -> AppResult<Json<ApiKeyView>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let PathIds(ApiKeyId(id)) = path?;
    let key =
        state.store.revoke_api_key(&scope, id, &audit).await?.ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?;
    Ok(Json(key.view()))
}

/// A rotation's body (optional): how long the old secret keeps working.
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Seconds the old secret keeps working (at most a week); default 0:
    /// it stops at once.
    #[serde(default)]
    #[eserde(compat)]
    grace_period_seconds: Option<GraceSeconds>,
}

/// Gives an API key a new secret, shown only in this answer.
///
/// The id, name, scopes and environment stay. The body is optional:
/// `{"grace_period_seconds": 0..604800}` keeps the old secret working that
/// long so deployments can switch over; without it (or with 0) the old
/// secret stops at once. Only an active key can be rotated.
#[utoipa::path(post, path = "/v1/api-keys/{id}/rotate", tag = "api-keys", security(("bearer" = ["admin"])),
    request_body(content = Rotate, description = "Optional: sending no body is the same as `{}`", example = json!({"grace_period_seconds": 3600})),
    responses(
        (status = 200, description = "The key with its new secret (shown once)", body = RotatedKey),
        (status = 409, description = "Conflict\n\n- `conflict`: the key is revoked or expired (`details.status`), or another request rotated or revoked it meanwhile\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running: retry shortly", body = shared::web::openapi::ApiError),
    ))]
async fn rotate_key(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    path: Result<PathIds<ApiKeyId>, AppError>,
    body: Result<OptionalBody<Rotate>, AppError>,
) -> AppResult<Json<RotatedKey>> {
    let scope = principal.require_person(Role::Admin, API_KEY_RESOURCE)?;
    let PathIds(ApiKeyId(id)) = path?;
    let OptionalBody(rotate) = body?;
    // No body: no grace, the old secret stops at once.
    let grace = rotate.and_then(|r| r.grace_period_seconds).map_or(0, GraceSeconds::get);
    let old_valid_until = (grace > 0).then(|| now() + chrono::Duration::seconds(grace));
    let (key, secret) = state
        .store
        .rotate_api_key(&scope, id, old_valid_until, &audit)
        .await?
        .ok_or_else(|| AppError::not_found(API_KEY_RESOURCE))?;
    Ok(Json(RotatedKey {
        key: KeyWithSecret::new(&key, &secret.secret),
        old_secret_valid_until: old_valid_until.map(rfc3339),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::web::extract::parse_body;

    use super::*;

    fn parse(body: Value, at: DateTime<Utc>) -> AppResult<NewKey> {
        parse_body::<CreateKey>(body.to_string().as_bytes())?.at(at)
    }

    fn problems(body: Value) -> Vec<String> {
        match parse(body, now()) {
            Ok(_) => Vec::new(),
            Err(err @ AppError::Api { .. }) => err.invalid_fields(),
            Err(AppError::Internal(e)) => panic!("internal: {e}"),
        }
    }

    #[test]
    fn a_valid_key_request_is_read_with_defaults() {
        let at = now();
        let key = parse(
            json!({"name": " CI ", "scopes": ["tryons:write", "tryons:read", "tryons:write"], "expires_in_days": 30}),
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
        // Named by path: expires_in_days, name, scopes.
        assert_eq!(
            problems(json!({"name": "", "scopes": ["projects:read", "root:all"], "expires_in_days": 0})),
            ["expires_in_days", "name", "scopes[1]"]
        );
        assert_eq!(problems(json!({"name": " ", "scopes": ["users:read"], "owner": 1})), ["name", "owner"]);
    }

    #[test]
    fn the_grace_period_is_bounded() {
        let grace =
            |body: &[u8]| parse_body::<Rotate>(body).map(|r| r.grace_period_seconds.map_or(0, GraceSeconds::get));
        assert_eq!(grace(b"{}").expect("no grace"), 0);
        assert_eq!(grace(b"{\"grace_period_seconds\": 3600}").expect("grace"), 3600);
        assert!(grace(b"{\"grace_period_seconds\": 604801}").is_err());
        assert!(grace(b"{\"grace\": 1}").is_err());
    }
}
