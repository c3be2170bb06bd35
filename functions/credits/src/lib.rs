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
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value, json};
use shared::{
    AppError, AppResult, AppState,
    audit::AuditContext,
    auth::{Principal, Role, Scope},
    error::FieldError,
    http::{JsonObject, Page, QueryParams},
    store::credits::{CREDIT_KINDS, CREDITS_RESOURCE, LedgerEntry},
    validate::{Fields, Need},
};
use uuid::Uuid;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/credits", get(balance))
        .route("/v1/credits/ledger", get(ledger))
        .route("/v1/credits/charges", post(charge_credits))
        .route("/v1/tenants/{id}/credits", post(grant_credits))
}

/// Largest single grant.
pub const MAX_GRANT: i64 = 1_000_000_000;
/// Longest `reason`, in characters.
pub const MAX_REASON_CHARS: usize = 200;

fn balance_body(tenant_id: Uuid, balance: i64) -> Value {
    json!({ "tenant_id": tenant_id, "balance": balance, "currency": "credits" })
}

async fn balance(State(state): State<AppState>, principal: Principal) -> AppResult<Json<Value>> {
    let scope = principal.require(Role::User, Scope::CreditsRead, CREDITS_RESOURCE)?;
    let balance = state.store.credit_balance(&scope).await?;
    Ok(Json(balance_body(scope.tenant_id(), balance)))
}

/// Newest first; `?kind=grant|spend|refund`, `?limit=`, `?cursor=`.
async fn ledger(State(state): State<AppState>, principal: Principal, params: QueryParams) -> AppResult<Page<Value>> {
    let scope = principal.require(Role::Admin, Scope::CreditsRead, CREDITS_RESOURCE)?;
    params.allow_only(&["limit", "cursor", "kind"])?;
    let page = params.page()?;
    let filters = params.as_object();
    let mut f = Fields::new(&filters);
    let kind = f.one_of("kind", Need::Optional, CREDIT_KINDS);
    f.finish()?;
    let (entries, next_cursor) = state.store.credit_ledger(&scope, kind, &page).await?;
    Ok(Page { data: entries.iter().map(LedgerEntry::to_body).collect(), next_cursor })
}

/// The balance after a change, with its ledger entry: 201.
fn created(tenant_id: Uuid, entry: &LedgerEntry) -> Response {
    let mut body = balance_body(tenant_id, entry.balance_after);
    body["entry"] = entry.to_body();
    (StatusCode::CREATED, Json(body)).into_response()
}

/// Body `{amount: 1..=1_000_000_000, reason: 1..=200 characters}`; 201 with
/// the ledger entry and the new balance. `credits.added` is emitted with the
/// change.
async fn grant_credits(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    Path(id): Path<String>,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    // Platform-admin-only: 403 whatever the id, so ids reveal nothing.
    let admin = principal.require_platform_admin(CREDITS_RESOURCE)?;
    let tenant_id = Uuid::parse_str(&id).map_err(|_| AppError::invalid_field("tenant_id", "must be a valid UUID"))?;
    let grant = Grant::parse(&body)?;
    let scope = admin.scope_of(tenant_id);
    let entry = state.store.grant_credits(&scope, grant.amount, &grant.reason, &audit).await?;
    Ok(created(tenant_id, &entry))
}

/// Longest caller `reference` of a charge.
pub const MAX_REFERENCE_CHARS: usize = 128;

/// A metered charge the integrator reports (seed 004's `usage:write`):
/// body `{amount, reason, reference?}`. 201 with the ledger entry and the new
/// balance; 402 `insufficient_credits` (balance and cost in details) when the
/// balance is short, with nothing taken. A `reference` makes the charge
/// happen once per reference; an `Idempotency-Key` makes the whole request
/// replayable. `credits.spent` is emitted with the change.
async fn charge_credits(
    State(state): State<AppState>,
    principal: Principal,
    audit: AuditContext,
    JsonObject(body): JsonObject,
) -> AppResult<Response> {
    let scope = principal.require(Role::Admin, Scope::UsageWrite, CREDITS_RESOURCE)?;
    let charge = Charge::parse(&body)?;
    let Charge { grant: Grant { amount, reason }, reference } = charge;
    let entry = state.store.spend_credits(&scope, amount, &reason, reference.as_deref(), &audit).await?;
    Ok(created(scope.tenant_id(), &entry))
}

/// A grant's body: `amount` (1 to [`MAX_GRANT`]) and a non-blank `reason`,
/// trimmed.
#[derive(Debug, PartialEq)]
struct Grant {
    amount: i64,
    reason: String,
}

impl Grant {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["amount", "reason"]);
        let grant = Grant::read(&mut f);
        f.finish()?;
        grant.ok_or_else(missing)
    }

    /// Reads both fields, naming each problem in `f`; `None` when either is
    /// bad or missing.
    fn read(f: &mut Fields<'_>) -> Option<Self> {
        let amount = f.integer("amount", Need::Required, 1, MAX_GRANT);
        let reason = f.text("reason", Need::Required, 1, MAX_REASON_CHARS);
        let reason = match reason {
            Some(r) if r.trim().is_empty() => {
                f.error("reason", "must not be blank");
                None
            }
            other => other.map(|r| r.trim().to_owned()),
        };
        Some(Grant { amount: amount?, reason: reason? })
    }
}

/// A charge's body: a grant's fields and an optional `reference`.
#[derive(Debug, PartialEq)]
struct Charge {
    grant: Grant,
    reference: Option<String>,
}

impl Charge {
    fn parse(body: &Map<String, Value>) -> AppResult<Self> {
        let mut f = Fields::new(body);
        f.reject_unknown(&["amount", "reason", "reference"]);
        let grant = Grant::read(&mut f);
        let reference = f.check_text(
            "reference",
            Need::Optional,
            MAX_REFERENCE_CHARS,
            |r| r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b)),
            "must be letters, digits and - _ . : /",
        );
        f.finish()?;
        Ok(Charge { grant: grant.ok_or_else(missing)?, reference })
    }
}

/// `Fields` names every required field it could not read, so a valid body
/// has them all; this is the same 400 in case one is ever read as `None`.
fn missing() -> AppError {
    AppError::validation(vec![FieldError::new("amount", "is required"), FieldError::new("reason", "is required")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(body: Value) -> Vec<String> {
        let map = body.as_object().cloned().unwrap_or_default();
        match Grant::parse(&map) {
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
        assert!(fields_of(json!({"amount": 37, "reason": "onboarding"})).is_empty());
        assert!(fields_of(json!({"amount": MAX_GRANT, "reason": "x"})).is_empty());
        assert_eq!(fields_of(json!({"amount": 0, "reason": "x"})), ["amount"]);
        assert_eq!(fields_of(json!({"amount": MAX_GRANT + 1, "reason": "x"})), ["amount"]);
        assert_eq!(fields_of(json!({"amount": 1.5, "reason": "x"})), ["amount"]);
        assert_eq!(fields_of(json!({"amount": 1})), ["reason"]);
        assert_eq!(fields_of(json!({"amount": 1, "reason": "   "})), ["reason"]);
        assert_eq!(fields_of(json!({"amount": 1, "reason": "r".repeat(MAX_REASON_CHARS + 1)})), ["reason"]);
        assert_eq!(fields_of(json!({"amount": 1, "reason": "x", "note": 1})), ["note"]);
    }

    #[test]
    fn a_charge_names_every_bad_field_at_once() {
        let problems = |body: Value| match Charge::parse(body.as_object().expect("object")) {
            Ok(_) => Vec::new(),
            Err(AppError::Api { details, .. }) => details["fields"]
                .as_array()
                .map(|fs| fs.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            Err(AppError::Internal(e)) => panic!("internal: {e}"),
        };
        assert!(problems(json!({"amount": 3, "reason": "render", "reference": "job-1:a/b"})).is_empty());
        assert_eq!(
            problems(json!({"amount": 0, "reason": " ", "reference": "no spaces"})),
            ["amount", "reason", "reference"]
        );
        assert_eq!(problems(json!({"amount": 1, "reason": "x", "reference": "r".repeat(129)})), ["reference"]);
    }
}
