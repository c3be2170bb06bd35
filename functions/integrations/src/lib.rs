//! The integrations route group (seeds 003, 001): the providers a tenant
//! receives webhooks from, the public inbound endpoint that verifies and
//! stores them ([`inbound`]), the events list and replays, and provider
//! health ([`events`]). Processing is the integrations worker's
//! (functions/integrations-worker), fed by the bus. docs/integrations.md
//! has the design.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/integrations/providers` | [`create_provider`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/providers` | [`list_providers`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/providers/{id}` | [`get_provider`] | admin, or key `integrations:manage` |
//! | `PATCH /v1/integrations/providers/{id}` | [`update_provider`] | admin, or key `integrations:manage` |
//! | `DELETE /v1/integrations/providers/{id}` | [`delete_provider`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/providers/{id}/rotate-secret` | [`rotate_secret`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/providers/{id}/probe` | [`events::probe_provider`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/webhooks/{token}` | [`inbound::receive`] | public: the provider, by signature |
//! | `GET /v1/integrations/events` | [`events::list_events`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/events/{id}` | [`events::get_event`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/events/{id}/replay` | [`events::replay_event`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/events/replay` | [`events::replay_window`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/health` | [`events::health`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/sync-connections` | [`sync::create_connection`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/sync-connections` | [`sync::list_connections`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/sync-connections/{id}` | [`sync::get_connection`] | admin, or key `integrations:manage` |
//! | `PATCH /v1/integrations/sync-connections/{id}` | [`sync::update_connection`] | admin, or key `integrations:manage` |
//! | `DELETE /v1/integrations/sync-connections/{id}` | [`sync::delete_connection`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/sync-connections/{id}/runs` | [`sync::start_run`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/sync-connections/{id}/runs` | [`sync::list_runs`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/sync-connections/{id}/runs/{run_id}` | [`sync::get_run`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/sync-connections/{id}/reset` | [`sync::reset_checkpoint`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/sync-connections/{id}/conflicts` | [`sync::list_conflicts`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/sync-connections/{id}/conflicts/resolve` | [`sync::resolve_conflict`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/{id}/dashboard` | [`monitoring::dashboard`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/overview` | [`monitoring::overview`] | admin, or key `integrations:manage` |
//! | `GET /v1/integrations/alerts` | [`monitoring::list_alerts`] | admin, or key `integrations:manage` |
//! | `POST /v1/integrations/alerts/{id}/resolve` | [`monitoring::resolve_alert`] | admin, or key `integrations:manage` |

pub mod events;
pub mod inbound;
pub mod monitoring;
pub mod sync;
pub mod verify;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Serialize;
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope, TenantScope},
    domain::{
        ids::IntegrationProviderId,
        integration::{
            AuthType, DEFAULT_RATE_LIMIT_PER_MINUTE, DEFAULT_ROTATION_GRACE_SECONDS, MAX_RATE_LIMIT_PER_MINUTE,
            MAX_ROTATION_GRACE_SECONDS, Provider, ProviderView, Verification,
        },
        now_rfc3339,
        tenant::IpRange,
        values::{HttpUrl, Int, Settable, Text},
    },
    error::FieldError,
    http::Page,
    outbound::check_url,
    store::integrations::{PROVIDER_RESOURCE, ProviderSecrets, Sealed, provider_context, sha256_hex},
    web::{
        extract::{Body, ListQuery, OptionalBody, Patch, PathIds},
        principal::Fresh,
    },
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_provider, list_providers, get_provider, update_provider, delete_provider, rotate_secret,
        events::probe_provider, inbound::receive, events::list_events, events::get_event, events::replay_event,
        events::replay_window, events::health, sync::create_connection, sync::list_connections,
        sync::get_connection, sync::update_connection, sync::delete_connection, sync::start_run, sync::list_runs,
        sync::get_run, sync::reset_checkpoint, sync::list_conflicts, sync::resolve_conflict, monitoring::dashboard, monitoring::overview,
        monitoring::list_alerts, monitoring::resolve_alert
    ),
    tags((name = "integrations", description = "Integration providers (seed 003): the services a tenant receives webhooks from. Each has an inbound URL whose token names the tenant and provider; every delivery is verified on its raw bytes (Standard Webhooks, Stripe, GitHub or a generic HMAC-SHA256), deduplicated by the sender's `event_id`, kept in S3 and put on the platform's bus (source `saas.integrations.<provider>`), where the tenant's own webhooks can subscribe to `integration.event.received`. Health comes from an active probe of each provider's `api_base_url` and the stats of its recent events. Sync connections (seed 001) read a provider's paged JSON API into the tenant's customers, full, incremental or delta, one run at a time per connection, with a checkpoint after every page and a conflict rule, on demand or on an EventBridge Scheduler schedule. Monitoring: a dashboard per provider and a tenant overview computed from 24 hours of stored events, probes and runs, and alerts when a connection fails 3 runs in a row or a workflow execution fails."))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations/providers", get(list_providers).post(create_provider))
        .route("/v1/integrations/providers/{id}", get(get_provider).patch(update_provider).delete(delete_provider))
        .route("/v1/integrations/providers/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/integrations/providers/{id}/probe", post(events::probe_provider))
        .route("/v1/integrations/webhooks/{token}", post(inbound::receive))
        .route("/v1/integrations/events", get(events::list_events))
        .route("/v1/integrations/events/replay", post(events::replay_window))
        .route("/v1/integrations/events/{id}", get(events::get_event))
        .route("/v1/integrations/events/{id}/replay", post(events::replay_event))
        .route("/v1/integrations/health", get(events::health))
        .route("/v1/integrations/sync-connections", get(sync::list_connections).post(sync::create_connection))
        .route(
            "/v1/integrations/sync-connections/{id}",
            get(sync::get_connection).patch(sync::update_connection).delete(sync::delete_connection),
        )
        .route("/v1/integrations/sync-connections/{id}/runs", get(sync::list_runs).post(sync::start_run))
        .route("/v1/integrations/sync-connections/{id}/runs/{run_id}", get(sync::get_run))
        .route("/v1/integrations/sync-connections/{id}/reset", post(sync::reset_checkpoint))
        .route("/v1/integrations/sync-connections/{id}/conflicts", get(sync::list_conflicts))
        .route("/v1/integrations/sync-connections/{id}/conflicts/resolve", post(sync::resolve_conflict))
        .route("/v1/integrations/{id}/dashboard", get(monitoring::dashboard))
        .route("/v1/integrations/overview", get(monitoring::overview))
        .route("/v1/integrations/alerts", get(monitoring::list_alerts))
        .route("/v1/integrations/alerts/{id}/resolve", post(monitoring::resolve_alert))
}

/// A provider's name: lowercase letters, digits, `_` and `-` (seed 003's
/// `user_service`); it ends the bus `source` of the provider's events.
type ProviderName = Text<1, 64>;
/// A signing secret as the provider gave it (seed 003's `your_secret_key`
/// has 15 characters).
type SecretKey = Text<8, 512>;
type RateLimit = Int<1, MAX_RATE_LIMIT_PER_MINUTE>;
type GraceSeconds = Int<0, MAX_ROTATION_GRACE_SECONDS>;
/// The most address ranges one provider may list.
const MAX_ALLOWED_IPS: usize = 100;

/// A new provider: seed 003's body (`name`, `webhook_url`, `api_base_url`,
/// `auth_type`, `secret_key`) and how its webhooks are checked.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProvider {
    /// Unique in the tenant: `^[a-z0-9][a-z0-9_-]*$`, at most 64 characters.
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub name: ProviderName,
    /// The provider's own webhook settings or sender URL (informational).
    #[serde(default)]
    #[eserde(compat)]
    pub webhook_url: Option<HttpUrl>,
    /// The provider's API: probed for health (`GET`, 5 s), `https` to a
    /// public address (a local development server takes `http` and private
    /// addresses too).
    #[serde(default)]
    #[eserde(compat)]
    pub api_base_url: Option<HttpUrl>,
    /// `api_key` when left out.
    #[serde(default)]
    #[eserde(compat)]
    pub auth_type: Option<AuthType>,
    /// The secret the provider signs its webhooks with; one is generated
    /// (and shown once) when left out. Standard Webhooks secrets are
    /// `whsec_` + base64. Never shown again.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 8, max_length = 512)]
    pub secret_key: Option<SecretKey>,
    /// `generic_hmac_sha256` when left out.
    #[serde(default)]
    #[eserde(compat)]
    pub verification: Option<Verification>,
    /// Addresses or CIDR ranges deliveries may come from (at most 100);
    /// empty or left out: any.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(max_items = 100)]
    pub allowed_ips: Option<Vec<IpRange>>,
    /// Inbound requests per minute (600 when left out); more answer 429.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 100_000)]
    pub rate_limit_per_minute: Option<RateLimit>,
    #[serde(default)]
    #[eserde(compat)]
    pub is_active: Option<bool>,
}

/// A provider's partial update: every field optional; `null` clears
/// `webhook_url` and `api_base_url` and is refused on the others. The
/// secret changes only by rotation.
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderUpdate {
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[a-z0-9][a-z0-9_-]*$")]
    pub name: Settable<ProviderName>,
    #[serde(default)]
    #[eserde(compat)]
    pub webhook_url: Patch<HttpUrl>,
    #[serde(default)]
    #[eserde(compat)]
    pub api_base_url: Patch<HttpUrl>,
    #[serde(default)]
    #[eserde(compat)]
    pub auth_type: Settable<AuthType>,
    #[serde(default)]
    #[eserde(compat)]
    pub verification: Settable<Verification>,
    /// Replaces the list; `[]`: any address.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Vec<String>, max_items = 100)]
    pub allowed_ips: Settable<Vec<IpRange>>,
    #[serde(default)]
    #[eserde(compat)]
    pub rate_limit_per_minute: Settable<RateLimit>,
    #[serde(default)]
    #[eserde(compat)]
    pub is_active: Settable<bool>,
}

/// What a create or update sets, checked; `None` leaves a field as it is.
#[derive(Debug, Default)]
struct ProviderFields {
    name: Option<String>,
    webhook_url: Option<Option<String>>,
    api_base_url: Option<Option<String>>,
    auth_type: Option<AuthType>,
    verification: Option<Verification>,
    allowed_ips: Option<Vec<String>>,
    rate_limit_per_minute: Option<i64>,
    is_active: Option<bool>,
}

fn name_problem(name: &str) -> Option<&'static str> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (!(first_ok && rest_ok)).then_some("must match pattern '^[a-z0-9][a-z0-9_-]*$'")
}

impl ProviderUpdate {
    /// The rules parsing cannot state: the name's characters, a URL we may
    /// call, the list's length, and (a create's) secret's form for its scheme.
    fn into_fields(self, local_mode: bool, secret: Option<(Verification, &str)>) -> AppResult<ProviderFields> {
        let mut errors = Vec::new();
        if let Some(problem) = secret.and_then(|(verification, secret)| secret_problem(verification, secret)) {
            errors.push(FieldError::new("secret_key", problem));
        }
        let mut fields = ProviderFields::default();
        if let Settable::Value(name) = self.name {
            match name_problem(name.as_str()) {
                Some(problem) => errors.push(FieldError::new("name", problem)),
                None => fields.name = Some(name.into_inner()),
            }
        }
        fields.webhook_url = match self.webhook_url {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(url) => Some(Some(url.into_inner())),
        };
        fields.api_base_url = match self.api_base_url {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(url) => match check_url(url.as_str(), local_mode) {
                Ok(_) => Some(Some(url.into_inner())),
                Err(problem) => {
                    errors.push(FieldError::new("api_base_url", problem));
                    None
                }
            },
        };
        if let Settable::Value(auth_type) = self.auth_type {
            fields.auth_type = Some(auth_type);
        }
        if let Settable::Value(verification) = self.verification {
            fields.verification = Some(verification);
        }
        if let Settable::Value(ranges) = self.allowed_ips {
            if ranges.len() > MAX_ALLOWED_IPS {
                errors.push(FieldError::new("allowed_ips", format!("must have at most {MAX_ALLOWED_IPS} items")));
            }
            fields.allowed_ips = Some(ranges.iter().map(|r| r.as_str().to_owned()).collect());
        }
        if let Settable::Value(limit) = self.rate_limit_per_minute {
            fields.rate_limit_per_minute = Some(limit.get());
        }
        if let Settable::Value(active) = self.is_active {
            fields.is_active = Some(active);
        }
        if errors.is_empty() { Ok(fields) } else { Err(AppError::validation(errors)) }
    }
}

impl ProviderFields {
    fn apply_to(self, provider: &mut Provider) {
        if let Some(name) = self.name {
            provider.name = name;
        }
        if let Some(url) = self.webhook_url {
            provider.webhook_url = url;
        }
        if let Some(url) = self.api_base_url {
            provider.api_base_url = url;
        }
        if let Some(auth_type) = self.auth_type {
            provider.auth_type = auth_type.as_str().to_owned();
        }
        if let Some(verification) = self.verification {
            provider.verification = verification.as_str().to_owned();
        }
        if let Some(ranges) = self.allowed_ips {
            provider.allowed_ips = ranges;
        }
        if let Some(limit) = self.rate_limit_per_minute {
            provider.rate_limit_per_minute = limit;
        }
        if let Some(active) = self.is_active {
            provider.is_active = active;
        }
    }
}

impl From<NewProvider> for ProviderUpdate {
    fn from(body: NewProvider) -> Self {
        fn set<T>(value: Option<T>) -> Settable<T> {
            value.map_or(Settable::Absent, Settable::Value)
        }
        fn patch<T>(value: Option<T>) -> Patch<T> {
            value.map_or(Patch::Absent, Patch::Value)
        }
        ProviderUpdate {
            name: Settable::Value(body.name),
            webhook_url: patch(body.webhook_url),
            api_base_url: patch(body.api_base_url),
            auth_type: set(body.auth_type),
            verification: set(body.verification),
            allowed_ips: set(body.allowed_ips),
            rate_limit_per_minute: set(body.rate_limit_per_minute),
            is_active: set(body.is_active),
        }
    }
}

/// Why `secret` cannot sign under `verification`, if it cannot.
fn secret_problem(verification: Verification, secret: &str) -> Option<String> {
    use base64::Engine;
    if verification != Verification::StandardWebhooks {
        return None;
    }
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    match base64::engine::general_purpose::STANDARD.decode(encoded) {
        Ok(key) if key.len() >= 16 => None,
        _ => Some("a Standard Webhooks secret is whsec_ followed by base64 of at least 16 bytes".to_owned()),
    }
}

fn require(principal: &Principal) -> AppResult<TenantScope> {
    principal.require(Role::Admin, Scope::IntegrationsManage, PROVIDER_RESOURCE)
}

async fn load(
    state: &AppState,
    scope: &TenantScope,
    IntegrationProviderId(id): IntegrationProviderId,
) -> AppResult<Provider> {
    state.store.get_provider(scope, id).await?.ok_or_else(|| AppError::not_found(PROVIDER_RESOURCE))
}

/// The inbound URL's token: `iwh_` and, base64url, the tenant's and the
/// provider's ids (so a delivery costs one read) and 16 random bytes (so it
/// cannot be guessed from them).
pub fn new_token(tenant_id: Uuid, provider_id: Uuid) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(tenant_id.as_bytes());
    bytes.extend_from_slice(provider_id.as_bytes());
    let mut random = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut random);
    bytes.extend_from_slice(&random);
    format!("{}{}", inbound::TOKEN_PREFIX, base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn seal(state: &AppState, purpose: &str, scope: &TenantScope, provider_id: Uuid, value: &str) -> AppResult<Sealed> {
    let (nonce, ciphertext) =
        state.keys.sealing.seal(&provider_context(purpose, scope, provider_id), value.as_bytes())?;
    Ok(Sealed { nonce: nonce.to_vec(), ciphertext })
}

/// Opens one of a provider's sealed values.
pub fn open(
    state: &AppState,
    purpose: &str,
    scope: &TenantScope,
    provider_id: Uuid,
    sealed: &Sealed,
) -> AppResult<String> {
    let plain =
        state.keys.sealing.open(&provider_context(purpose, scope, provider_id), &sealed.nonce, &sealed.ciphertext)?;
    String::from_utf8(plain).map_err(AppError::internal)
}

/// The provider as the API shows it, with its inbound URL.
pub fn view(
    state: &AppState,
    scope: &TenantScope,
    provider: &Provider,
    secrets: &ProviderSecrets,
) -> AppResult<ProviderView> {
    let token = open(state, "token", scope, provider.id, &secrets.token)?;
    let base = state.config.public_api_url.as_deref().unwrap_or("").trim_end_matches('/');
    Ok(provider.view(format!("{base}/v1/integrations/webhooks/{token}")))
}

pub(crate) async fn load_view(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
) -> AppResult<(Provider, ProviderSecrets, ProviderView)> {
    let (provider, secrets) =
        state.store.provider_with_secrets(scope, id).await?.ok_or_else(|| AppError::not_found(PROVIDER_RESOURCE))?;
    let shown = view(state, scope, &provider, &secrets)?;
    Ok((provider, secrets, shown))
}

/// A new provider; `secret_key` is here only when the platform generated it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedProvider {
    #[serde(flatten)]
    pub provider: ProviderView,
    /// The generated signing secret, shown this once (absent when the body
    /// gave one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

/// Create an integration provider
///
/// Takes seed 003's body as it stands. 201 with the provider and its
/// `inbound_url`, the address to give the provider for its webhooks.
#[utoipa::path(post, path = "/v1/integrations/providers", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = NewProvider, example = json!({
        "name": "new_service",
        "webhook_url": "https://webhook.newservice.com",
        "api_base_url": "https://api.newservice.com",
        "auth_type": "oauth2",
        "secret_key": "your_secret_key"
    })),
    responses(
        (status = 201, description = "The provider", body = CreatedProvider),
        (status = 409, description = "Conflict\n\n- `conflict`: the name is taken in the tenant (`details.reason`: `name_taken`), or the tenant has 25 providers (`too_many_providers`)\n- `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running", body = shared::web::openapi::ApiError),
    ))]
pub async fn create_provider(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<NewProvider>, AppError>,
) -> AppResult<(StatusCode, Json<CreatedProvider>)> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let given_secret = body.secret_key.clone().map(Text::into_inner);
    let verification = body.verification.unwrap_or(Verification::GenericHmacSha256);
    let secret_check = given_secret.as_deref().map(|secret| (verification, secret));
    let fields = ProviderUpdate::from(body).into_fields(state.config.local_mode, secret_check)?;
    let now = now_rfc3339();
    let mut provider = Provider {
        id: Uuid::now_v7(),
        tenant_id: scope.tenant_id(),
        name: String::new(),
        webhook_url: None,
        api_base_url: None,
        auth_type: AuthType::ApiKey.as_str().to_owned(),
        verification: Verification::GenericHmacSha256.as_str().to_owned(),
        allowed_ips: Vec::new(),
        rate_limit_per_minute: DEFAULT_RATE_LIMIT_PER_MINUTE,
        is_active: true,
        previous_secret_expires_at: None,
        probe: None,
        created_at: now.clone(),
        updated_at: now,
    };
    fields.apply_to(&mut provider);
    let generated = given_secret.is_none().then(|| verify::new_secret(verify_scheme(verification)));
    let secret = given_secret.as_deref().or(generated.as_deref()).unwrap_or_default();
    let token = new_token(scope.tenant_id(), provider.id);
    let secrets = ProviderSecrets {
        secret: seal(&state, "secret", &scope, provider.id, secret)?,
        previous_secret: Sealed::default(),
        token: seal(&state, "token", &scope, provider.id, &token)?,
        token_hash: sha256_hex(token.as_bytes()),
    };
    state.store.create_provider(&scope, &provider, &secrets, &audit).await?;
    let shown = view(&state, &scope, &provider, &secrets)?;
    Ok((StatusCode::CREATED, Json(CreatedProvider { provider: shown, secret_key: generated })))
}

/// The verification module's scheme for a provider's setting.
pub fn verify_scheme(verification: Verification) -> verify::Scheme {
    match verification {
        Verification::GenericHmacSha256 => verify::Scheme::GenericHmacSha256,
        Verification::StandardWebhooks => verify::Scheme::StandardWebhooks,
        Verification::Stripe => verify::Scheme::Stripe,
        Verification::Github => verify::Scheme::Github,
    }
}

/// `GET /v1/integrations/providers` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderFilters {
    #[serde(default)]
    #[eserde(compat)]
    is_active: Option<bool>,
}

/// List integration providers
///
/// In creation order; `?is_active=`, `?limit=`, `?cursor=`.
#[utoipa::path(get, path = "/v1/integrations/providers", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    params(("is_active" = Option<bool>, Query, description = "Only active (or inactive) providers")),
    responses((status = 200, description = "A page of providers", body = Page<ProviderView>)))]
pub async fn list_providers(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<ProviderFilters>, AppError>,
) -> AppResult<Page<ProviderView>> {
    let scope = require(&principal)?;
    let ListQuery { page, filters } = query?;
    let (providers, next_cursor) = state.store.list_providers_page(&scope, filters.is_active, &page).await?;
    let data = providers
        .iter()
        .map(|(provider, secrets)| view(&state, &scope, provider, secrets))
        .collect::<AppResult<_>>()?;
    Ok(Page { data, next_cursor })
}

/// Read an integration provider
///
/// Its secret is never shown (rotate it for a new one).
#[utoipa::path(get, path = "/v1/integrations/providers/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 200, description = "The provider", body = ProviderView)))]
pub async fn get_provider(
    State(state): State<AppState>,
    principal: Principal,
    PathIds(IntegrationProviderId(id)): PathIds<IntegrationProviderId>,
) -> AppResult<Json<ProviderView>> {
    let scope = require(&principal)?;
    Ok(Json(load_view(&state, &scope, id).await?.2))
}

/// Update an integration provider
///
/// A partial update. Switching `verification` to `standard_webhooks`
/// needs a secret of that form (rotate first).
#[utoipa::path(patch, path = "/v1/integrations/providers/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = ProviderUpdate, example = json!({"allowed_ips": ["203.0.113.0/24"], "rate_limit_per_minute": 120, "is_active": true})),
    responses(
        (status = 200, description = "The provider as updated", body = ProviderView),
        (status = 409, description = "Conflict\n\n- `conflict`: the provider was changed meanwhile (read it again and retry), or the new name is taken (`details.reason`: `name_taken`)", body = shared::web::openapi::ApiError),
    ))]
pub async fn update_provider(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(IntegrationProviderId(id)): PathIds<IntegrationProviderId>,
    body: Result<Body<ProviderUpdate>, AppError>,
) -> AppResult<Json<ProviderView>> {
    let scope = require(&principal)?;
    let Body(body) = body?;
    let fields = body.into_fields(state.config.local_mode, None)?;
    let (old, secrets, _) = load_view(&state, &scope, id).await?;
    if let Some(verification) = fields.verification
        && verification.as_str() != old.verification
    {
        let secret = open(&state, "secret", &scope, old.id, &secrets.secret)?;
        if let Some(problem) = secret_problem(verification, &secret) {
            return Err(AppError::validation(vec![FieldError::new(
                "verification",
                format!("the provider's secret does not suit it ({problem}); rotate the secret first"),
            )]));
        }
    }
    let mut new = old.clone();
    fields.apply_to(&mut new);
    new.updated_at = now_rfc3339();
    if !state.store.update_provider(&scope, &old, &new, &secrets, &audit).await? {
        return Err(AppError::conflict("the provider was changed meanwhile; read it again and retry"));
    }
    Ok(Json(view(&state, &scope, &new, &secrets)?))
}

/// Delete an integration provider
///
/// Its inbound URL stops answering at once (404); its events stay readable
/// until their retention ends.
#[utoipa::path(delete, path = "/v1/integrations/providers/{id}", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_provider(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    PathIds(id): PathIds<IntegrationProviderId>,
) -> AppResult<StatusCode> {
    let scope = require(&principal)?;
    let provider = load(&state, &scope, id).await?;
    state.store.delete_provider(&scope, &provider, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/integrations/providers/{id}/rotate-secret`: optional.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The new secret as the provider issued it; generated (and shown
    /// once) when left out.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<String>, min_length = 8, max_length = 512)]
    pub secret_key: Option<SecretKey>,
    /// How long the old secret keeps verifying (the provider may sign with
    /// either meanwhile): 86400 when left out, 0 stops it at once, at most
    /// 604800.
    #[serde(default)]
    #[eserde(compat)]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 604_800)]
    pub grace_period_seconds: Option<GraceSeconds>,
}

/// A rotation's outcome.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RotatedProviderSecret {
    /// The provider's id.
    pub id: Uuid,
    /// The generated secret, shown this once (absent when the body gave one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    /// Until when the previous secret still verifies; null: it stopped.
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

/// Rotate a provider's signing secret
///
/// The new secret verifies at once; the old one keeps verifying for the
/// grace period (a day unless the body says), so the provider can switch
/// without losing a delivery.
#[utoipa::path(post, path = "/v1/integrations/providers/{id}/rotate-secret", tag = "integrations", security(("bearer" = ["admin"]), ("api_key" = ["integrations:manage"])),
    request_body(content = Rotation, description = "Optional: no body generates a secret and keeps the old one for a day", example = json!({"secret_key": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "grace_period_seconds": 3600})),
    responses(
        (status = 200, description = "Rotated", body = RotatedProviderSecret),
        (status = 409, description = "Conflict\n\n- `conflict`: the provider was changed meanwhile; retry", body = shared::web::openapi::ApiError),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Fresh(principal): Fresh,
    audit: AuditContext,
    PathIds(IntegrationProviderId(id)): PathIds<IntegrationProviderId>,
    body: Result<OptionalBody<Rotation>, AppError>,
) -> AppResult<Json<RotatedProviderSecret>> {
    let scope = require(&principal)?;
    let OptionalBody(rotation) = body?;
    let (provider, secrets, _) = load_view(&state, &scope, id).await?;
    let verification = Verification::parse(&provider.verification).unwrap_or(Verification::GenericHmacSha256);
    let given = rotation.as_ref().and_then(|r| r.secret_key.clone()).map(Text::into_inner);
    if let Some(problem) = given.as_deref().and_then(|s| secret_problem(verification, s)) {
        return Err(AppError::validation(vec![FieldError::new("secret_key", problem)]));
    }
    let grace = rotation.and_then(|r| r.grace_period_seconds).map_or(DEFAULT_ROTATION_GRACE_SECONDS, GraceSeconds::get);
    let generated = given.is_none().then(|| verify::new_secret(verify_scheme(verification)));
    let secret = given.as_deref().or(generated.as_deref()).unwrap_or_default();
    let sealed = seal(&state, "secret", &scope, provider.id, secret)?;
    let until = (grace > 0).then(|| shared::domain::rfc3339(chrono::Utc::now() + chrono::Duration::seconds(grace)));
    let previous = until.as_deref().map(|until| (&secrets.secret, until));
    if !state.store.rotate_provider_secret(&scope, &provider, &sealed, previous, &audit).await? {
        return Err(AppError::conflict("the provider was changed meanwhile; retry"));
    }
    Ok(Json(RotatedProviderSecret { id: provider.id, secret_key: generated, previous_secret_expires_at: until }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::web::extract::parse_body;

    use super::*;

    fn problems(body: Value, creating: bool) -> Vec<String> {
        let bytes = body.to_string();
        let result = if creating {
            parse_body::<NewProvider>(bytes.as_bytes()).map(ProviderUpdate::from)
        } else {
            parse_body::<ProviderUpdate>(bytes.as_bytes())
        };
        let secret = body.get("secret_key").and_then(Value::as_str).map(|s| (Verification::GenericHmacSha256, s));
        match result.and_then(|u| u.into_fields(false, secret)) {
            Ok(_) => Vec::new(),
            Err(err @ AppError::Api { .. }) => err.invalid_fields(),
            Err(AppError::Internal(e)) => panic!("{e}"),
        }
    }

    #[test]
    fn seed_003s_body_is_accepted_as_it_stands() {
        let seed = json!({
            "name": "new_service",
            "webhook_url": "https://webhook.newservice.com",
            "api_base_url": "https://api.newservice.com",
            "auth_type": "oauth2",
            "secret_key": "your_secret_key"
        });
        assert!(problems(seed, true).is_empty());
    }

    #[test]
    fn providers_are_validated_field_by_field() {
        assert_eq!(problems(json!({}), true), ["name"]);
        assert_eq!(problems(json!({"name": "User Service"}), true), ["name"]);
        assert_eq!(problems(json!({"name": "ok", "api_base_url": "https://10.0.0.1/"}), true), ["api_base_url"]);
        assert_eq!(problems(json!({"name": "ok", "secret_key": "short"}), true), ["secret_key"]);
        assert_eq!(problems(json!({"name": "ok", "verification": "md5"}), true), ["verification"]);
        assert_eq!(problems(json!({"name": "ok", "allowed_ips": ["10.0.0.0/8", "nope"]}), true), ["allowed_ips[1]"]);
        assert_eq!(problems(json!({"name": "ok", "rate_limit_per_minute": 0}), true), ["rate_limit_per_minute"]);
        assert_eq!(problems(json!({"name": "ok", "token": "x"}), true), ["token"]);
        assert!(problems(json!({"webhook_url": null, "is_active": false}), false).is_empty());
        let mut nulls = problems(json!({"name": null, "is_active": null}), false);
        nulls.sort();
        assert_eq!(nulls, ["is_active", "name"]);
    }

    #[test]
    fn a_standard_webhooks_secret_must_be_base64() {
        assert!(secret_problem(Verification::StandardWebhooks, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_none());
        assert!(secret_problem(Verification::StandardWebhooks, "your_secret_key").is_some());
        assert!(secret_problem(Verification::GenericHmacSha256, "your_secret_key").is_none());
    }

    #[test]
    fn a_token_names_its_tenant_and_provider() {
        let (tenant, provider) = (Uuid::now_v7(), Uuid::now_v7());
        let token = new_token(tenant, provider);
        assert_eq!(inbound::token_ids(&token), Some((tenant, provider)));
        assert_ne!(token, new_token(tenant, provider), "16 random bytes each");
        assert_eq!(inbound::token_ids("iwh_short"), None);
    }
}
