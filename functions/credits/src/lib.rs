//! The credits route group (seed 004): a tenant's prepaid credit balance, its
//! ledger, grants by a platform admin and metered charges. The try-on
//! pipeline spends and refunds through `shared::store::credits` directly; a
//! refused spend becomes 402 `insufficient_credits` through
//! `From<CreditError> for AppError`. A grant's `credits.added` and a charge's
//! `credits.spent` are written in the change's own transaction (outbox).
//!
//! | route | handler | who |
//! |---|---|---|
//! | `GET /v1/credits` | [`balance`] | any member |
//! | `GET /v1/credits/ledger` | [`ledger`] | admin or above |
//! | `POST /v1/tenants/{id}/credits` | [`grant_credits`] | platform admin |
//! | `POST /v1/credits/charges` | [`charge_credits`] | admin, or a key with `usage:write` |
//!
//! A platform admin reads a tenant's balance and ledger with `X-Tenant-ID`.

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
    auth::{Principal, Role, Scope},
    domain::{
        credit::{ChargeReference, CreditAmount, CreditKind, CreditKindFilter, LedgerEntryView, Reason},
        ids::TenantId,
    },
    http::Page,
    store::credits::{CREDITS_RESOURCE, LedgerEntry},
    web::extract::{Body, ListQuery, PathIds},
};
use uuid::Uuid;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(balance, ledger, grant_credits, charge_credits),
    // Query parameter types: utoipa does not collect them from `params`.
    components(schemas(CreditKindFilter)),
    tags((name = "credits", description = "A tenant's prepaid credit balance (seed 004), its ledger, grants by a platform admin and metered charges"))
)]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/credits", get(balance))
        .route("/v1/credits/ledger", get(ledger))
        .route("/v1/credits/charges", post(charge_credits))
        .route("/v1/tenants/{id}/credits", post(grant_credits))
}

/// A tenant's credit balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub tenant_id: Uuid,
    pub balance: i64,
    /// Always `credits`: balances are counted in credits, not money.
    pub currency: &'static str,
}

impl Balance {
    fn of(tenant_id: Uuid, balance: i64) -> Self {
        Self { tenant_id, balance, currency: "credits" }
    }
}

/// The balance after a grant or a charge, with the ledger entry that made it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BalanceWithEntry {
    #[serde(flatten)]
    pub balance: Balance,
    pub entry: LedgerEntryView,
}

/// The tenant's credit balance.
///
/// Credits are prepaid: a platform admin grants them, try-ons and metered
/// charges spend them. A platform admin reads another tenant's balance with
/// `X-Tenant-ID`.
#[utoipa::path(get, path = "/v1/credits", tag = "credits", security(("bearer" = ["user"]), ("api_key" = ["credits:read"])),
    responses(
        (status = 200, description = "The balance", body = Balance),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (a platform admin's `X-Tenant-ID` names none)", body = shared::web::openapi::ApiError),
    ))]
async fn balance(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Balance>> {
    let scope = principal.require(Role::User, Scope::CreditsRead, CREDITS_RESOURCE)?;
    let balance = state.store.credit_balance(&scope).await?;
    Ok(Json(Balance::of(scope.tenant_id(), balance)))
}

/// `GET /v1/credits/ledger` filters.
#[derive(Debug, eserde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFilters {
    #[serde(default)]
    #[eserde(compat)]
    kind: Option<CreditKind>,
}

/// The tenant's ledger: every change of its balance, newest first.
///
/// `?kind=grant|spend|refund` keeps one kind; `?limit=`, `?cursor=` page.
#[utoipa::path(get, path = "/v1/credits/ledger", tag = "credits", security(("bearer" = ["admin"]), ("api_key" = ["credits:read"])),
    params(("kind" = Option<CreditKindFilter>, Query, description = "Only entries of this kind: `grant`, `spend` or `refund`")),
    responses((status = 200, description = "A page of ledger entries, newest first", body = Page<LedgerEntryView>)))]
async fn ledger(
    State(state): State<AppState>,
    principal: Principal,
    query: Result<ListQuery<LedgerFilters>, AppError>,
) -> AppResult<Page<LedgerEntryView>> {
    let scope = principal.require(Role::Admin, Scope::CreditsRead, CREDITS_RESOURCE)?;
    let ListQuery { page, filters } = query?;
    let (entries, next_cursor) = state.store.credit_ledger(&scope, filters.kind, &page).await?;
    Ok(Page { data: entries.iter().map(LedgerEntry::view).collect(), next_cursor })
}

/// The balance after a change, with its ledger entry: 201.
fn created(tenant_id: Uuid, entry: &LedgerEntry) -> (StatusCode, Json<BalanceWithEntry>) {
    let answer = BalanceWithEntry { balance: Balance::of(tenant_id, entry.balance_after), entry: entry.view() };
    (StatusCode::CREATED, Json(answer))
}

/// A grant's body: `amount` (1 to 1,000,000,000) and a non-blank `reason`
/// (at most 200 characters, trimmed).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Grant {
    #[eserde(compat)]
    amount: CreditAmount,
    #[eserde(compat)]
    reason: Reason,
}

/// Grants credits to a tenant (platform admin).
///
/// Body [`Grant`]; 201 with the ledger entry and the new balance.
/// `credits.added` is emitted with the change.
#[utoipa::path(post, path = "/v1/tenants/{id}/credits", tag = "credits", security(("bearer" = ["platform_admin"])),
    request_body(content = Grant, example = json!({"amount": 1000, "reason": "onboarding"})),
    responses(
        (status = 201, description = "The ledger entry and the new balance", body = BalanceWithEntry),
        (status = 409, description = "Conflict\n\n- `conflict`: the balance is being changed by many requests at once: retry\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn grant_credits(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    path: Result<PathIds<TenantId>, AppError>,
    body: Result<Body<Grant>, AppError>,
) -> AppResult<(StatusCode, Json<BalanceWithEntry>)> {
    // Platform-admin-only: 403 whatever the id or body, so ids reveal nothing.
    let admin = principal.require_platform_admin(CREDITS_RESOURCE)?;
    let PathIds(TenantId(tenant_id)) = path?;
    let Body(grant) = body?;
    let scope = admin.scope_of(tenant_id);
    let entry = state.store.grant_credits(&scope, grant.amount.get(), grant.reason.as_str(), &audit).await?;
    Ok(created(tenant_id, &entry))
}

/// A metered charge's body: a grant's fields and an optional `reference`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Charge {
    #[eserde(compat)]
    amount: CreditAmount,
    #[eserde(compat)]
    reason: Reason,
    #[serde(default)]
    #[eserde(compat)]
    reference: Option<ChargeReference>,
}

/// Charges credits for usage the integrator metered.
///
/// Seed 004's `usage:write`: body [`Charge`]. 201 with the ledger entry and
/// the new balance; 402 `insufficient_credits` (balance and cost in
/// details) when the balance is short, with nothing taken. A `reference`
/// makes the charge happen once per reference: a repeat takes nothing and
/// answers the first charge's entry (with the balance right after it). An
/// `Idempotency-Key` makes the whole request replayable. `credits.spent` is
/// emitted with the change.
#[utoipa::path(post, path = "/v1/credits/charges", tag = "credits", security(("bearer" = ["admin"]), ("api_key" = ["usage:write"])),
    request_body(content = Charge, example = json!({"amount": 3, "reason": "render", "reference": "job-1"})),
    responses(
        (status = 201, description = "The ledger entry and the new balance (for a known `reference`, the first charge's)", body = BalanceWithEntry),
        (status = 402, description = "Payment required\n\n- `insufficient_credits`: the balance is below `amount`; nothing was taken (`details.balance`, `details.cost`)", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: no such tenant (a platform admin's `X-Tenant-ID` names none)", body = shared::web::openapi::ApiError),
        (status = 409, description = "Conflict\n\n- `conflict`: the balance is being changed by many requests at once: retry\n- `idempotency_key_in_use`", body = shared::web::openapi::ApiError),
    ))]
async fn charge_credits(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    body: Result<Body<Charge>, AppError>,
) -> AppResult<(StatusCode, Json<BalanceWithEntry>)> {
    let scope = principal.require(Role::Admin, Scope::UsageWrite, CREDITS_RESOURCE)?;
    let Body(Charge { amount, reason, reference }) = body?;
    let reference = reference.as_ref().map(ChargeReference::as_str);
    let entry = state.store.spend_credits(&scope, amount.get(), reason.as_str(), reference, &audit).await?;
    Ok(created(scope.tenant_id(), &entry))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use shared::web::extract::parse_body;

    use super::*;

    #[test]
    fn a_change_answers_the_balance_with_its_entry() {
        let tenant = Uuid::now_v7();
        let entry = LedgerEntry {
            id: Uuid::now_v7(),
            tenant_id: TenantId(tenant),
            amount: -3,
            kind: CreditKind::Spend,
            reason: "render".into(),
            reference: None,
            balance_after: 7,
            actor: AuditContext::system("test").actor,
            created_at: shared::domain::now(),
        };
        let (status, Json(answer)) = created(tenant, &entry);
        assert_eq!(status, StatusCode::CREATED);
        let body = serde_json::to_value(answer).expect("json");
        // The entry is shown as it is stored, the `reference` null included.
        let stored = serde_json::to_value(&entry).expect("json");
        assert_eq!(body, json!({"tenant_id": tenant, "balance": 7, "currency": "credits", "entry": stored}));
    }

    fn fields_of<T: for<'de> eserde::EDeserialize<'de>>(body: Value) -> Vec<String> {
        match parse_body::<T>(body.to_string().as_bytes()) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("internal: {e}"),
        }
    }

    #[test]
    fn a_grant_needs_a_bounded_amount_and_a_reason() {
        let grant = |body| fields_of::<Grant>(body);
        assert!(grant(json!({"amount": 37, "reason": "onboarding"})).is_empty());
        assert!(grant(json!({"amount": 1_000_000_000, "reason": "x"})).is_empty());
        assert_eq!(grant(json!({"amount": 0, "reason": "x"})), ["amount"]);
        assert_eq!(grant(json!({"amount": 1_000_000_001_i64, "reason": "x"})), ["amount"]);
        assert_eq!(grant(json!({"amount": 1.5, "reason": "x"})), ["amount"]);
        assert_eq!(grant(json!({"amount": 1})), ["reason"]);
        assert_eq!(grant(json!({"amount": 1, "reason": "   "})), ["reason"]);
        assert_eq!(grant(json!({"amount": 1, "reason": "r".repeat(201)})), ["reason"]);
        assert_eq!(grant(json!({"amount": 1, "reason": "x", "note": 1})), ["note"]);
    }

    #[test]
    fn a_charge_names_every_bad_field_at_once() {
        let charge = |body| fields_of::<Charge>(body);
        assert!(charge(json!({"amount": 3, "reason": "render", "reference": "job-1:a/b"})).is_empty());
        assert!(charge(json!({"amount": 3, "reason": "render"})).is_empty());
        assert_eq!(
            charge(json!({"amount": 0, "reason": " ", "reference": "no spaces"})),
            ["amount", "reason", "reference"]
        );
        assert_eq!(charge(json!({"amount": 1, "reason": "x", "reference": "r".repeat(129)})), ["reference"]);
    }
}
