//! Seed 004's prepaid credits: grants by a platform admin over HTTP, the
//! balance and the ledger, spends and refunds through the shared store API the
//! try-on pipeline calls (atomic, never negative, idempotent per reference),
//! the 402 `insufficient_credits` mapping, permissions and tenant isolation.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, builders::ConditionCheckBuilder};
use futures::future::join_all;
use platform_tests::*;
use serde_json::{Value, json};
use shared::{
    AppError, AppState,
    audit::AuditContext,
    auth::{Role, TenantScope},
    store::{
        credits::CreditError,
        tx::{Cond, Tx},
    },
};
use uuid::Uuid;

async fn grant(admin: &str, tenant_id: &str, amount: i64, reason: &str) -> Value {
    post(&format!("/v1/tenants/{tenant_id}/credits"))
        .token(admin)
        .json(&json!({"amount": amount, "reason": reason}))
        .send()
        .await
        .expect(201)
        .body
}

async fn balance_of(member: &Member) -> i64 {
    let body = get("/v1/credits").token(&member.access_token).send().await.expect(200).body;
    assert_eq!(body["tenant_id"], member.tenant_id.as_str());
    assert_eq!(body["currency"], "credits");
    body["balance"].as_i64().expect("balance")
}

/// Every ledger entry of `kind` (all kinds when empty), newest first.
async fn ledger(token: &str, kind: &str) -> Vec<Value> {
    let mut entries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/credits/ledger?limit=100&kind={kind}");
        if kind.is_empty() {
            path = "/v1/credits/ledger?limit=100".to_owned();
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let body = get(&path).token(token).send().await.expect(200).body;
        entries.extend(body["data"].as_array().expect("data").iter().cloned());
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return entries,
        }
    }
}

fn scope_of(member: &Member) -> TenantScope {
    TenantScope::for_tests(member.tenant_id.parse().expect("tenant id"))
}

fn pipeline() -> AuditContext {
    AuditContext::system("tryon-pipeline")
}

/// A new tenant's owner, granted `credits`, and the state whose store the
/// try-on pipeline uses.
async fn funded(credits: i64) -> (Member, AppState) {
    let owner = register_owner().await;
    grant(&platform_admin_token().await, &owner.tenant_id, credits, "top-up").await;
    (owner, test_state().await.0)
}

/// An access token for another member of `member`'s tenant with `role`.
async fn token_with_role(member: &Member, role: Role) -> String {
    member_with_role(member, role.as_str()).await.access_token
}

/// The issue's acceptance test.
#[tokio::test]
async fn a_hundred_concurrent_spends_against_37_credits_give_exactly_37() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    let granted = grant(&admin, &owner.tenant_id, 37, "acceptance test").await;
    assert_eq!(granted["balance"], 37);

    let (state, _) = test_state().await;
    let scope = scope_of(&owner);
    let audit = pipeline();
    let spends = (0..100).map(|i| {
        let (store, audit) = (&state.store, &audit);
        async move { store.spend_credits(&scope, 1, &format!("try-on {i}"), None, audit).await.map(|e| e.balance_after) }
    });
    let results = join_all(spends).await;
    let mut after = Vec::new();
    let mut refused = 0;
    for result in results {
        match result {
            Ok(balance) => after.push(balance),
            Err(CreditError::Insufficient { balance, cost }) => {
                assert_eq!((balance, cost), (0, 1));
                refused += 1;
            }
            Err(other) => panic!("unexpected failure: {other:?}"),
        }
    }
    assert_eq!(after.len(), 37, "successes");
    assert_eq!(refused, 63, "insufficient");
    after.sort_unstable();
    assert_eq!(after, (0..=36).collect::<Vec<i64>>(), "each balance after exactly once");
    assert_eq!(balance_of(&owner).await, 0);

    let spent = ledger(&owner.access_token, "spend").await;
    assert_eq!(spent.len(), 37);
    let mut balances: Vec<i64> = spent.iter().map(|e| e["balance_after"].as_i64().expect("balance_after")).collect();
    balances.sort_unstable();
    assert_eq!(balances, (0..=36).collect::<Vec<i64>>());
    assert!(spent.iter().all(|e| e["amount"] == -1 && e["kind"] == "spend" && e["actor"]["type"] == "system"));
    assert_eq!(ledger(&owner.access_token, "").await.len(), 38, "37 spends and the grant");
}

#[tokio::test]
async fn spending_more_than_the_balance_is_a_402_with_balance_and_cost() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    grant(&admin, &owner.tenant_id, 2, "small top-up").await;
    let (state, _) = test_state().await;
    let err =
        state.store.spend_credits(&scope_of(&owner), 5, "4k try-on", None, &pipeline()).await.expect_err("refused");
    assert!(matches!(err, CreditError::Insufficient { balance: 2, cost: 5 }), "{err:?}");

    let response = axum::response::IntoResponse::into_response(AppError::from(err));
    assert_eq!(response.status().as_u16(), 402);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes).expect("json");
    assert_eq!(body["error"], "insufficient_credits");
    assert_eq!(body["details"], json!({"balance": 2, "cost": 5}));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body.get("request_id").is_some());

    assert_eq!(balance_of(&owner).await, 2, "a refused spend changes nothing");
    assert!(ledger(&owner.access_token, "spend").await.is_empty());
    // A tenant that never had credits has a balance of 0 and cannot spend.
    let empty = register_owner().await;
    assert_eq!(balance_of(&empty).await, 0);
    let err = state.store.spend_credits(&scope_of(&empty), 1, "try-on", None, &pipeline()).await.expect_err("none");
    assert!(matches!(err, CreditError::Insufficient { balance: 0, cost: 1 }), "{err:?}");
}

#[tokio::test]
async fn a_grant_shows_in_the_balance_the_ledger_and_the_audit_trail() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    let first = grant(&admin, &owner.tenant_id, 100, "welcome credits").await;
    assert_eq!(first["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(first["balance"], 100);
    assert_eq!(first["currency"], "credits");
    let entry = &first["entry"];
    assert_eq!(entry["amount"], 100);
    assert_eq!(entry["kind"], "grant");
    assert_eq!(entry["reason"], "welcome credits");
    assert_eq!(entry["balance_after"], 100);
    assert_eq!(entry["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(entry["actor"]["type"], "user");
    assert_eq!(entry["actor"]["email"], app().admin_email.as_str());
    assert!(entry["reference"].is_null());
    assert!(entry["created_at"].is_string());
    assert_eq!(Uuid::parse_str(entry["id"].as_str().expect("id")).expect("uuid").get_version_num(), 7);

    let second = grant(&admin, &owner.tenant_id, 23, "  promo  ").await;
    assert_eq!(second["balance"], 123);
    assert_eq!(second["entry"]["reason"], "promo");
    assert_eq!(balance_of(&owner).await, 123);

    // Newest first, paginated.
    let page = get("/v1/credits/ledger?limit=1").token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(page["data"].as_array().expect("data").len(), 1);
    assert_eq!(page["data"][0], second["entry"]);
    let cursor = page["next_cursor"].as_str().expect("next_cursor");
    let next =
        get(&format!("/v1/credits/ledger?limit=1&cursor={cursor}")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(next.body["data"][0], *entry);
    let grants = ledger(&owner.access_token, "grant").await;
    assert_eq!(grants, vec![second["entry"].clone(), entry.clone()]);
    assert!(ledger(&owner.access_token, "refund").await.is_empty());

    let trail = get("/v1/audit/logs?resource_type=credits").token(&owner.access_token).send().await.expect(200).body;
    let trail = trail["data"].as_array().expect("data");
    assert_eq!(trail.len(), 2, "one audit entry per grant: {trail:#?}");
    let ids: HashSet<&str> = trail.iter().filter_map(|e| e["resource_id"].as_str()).collect();
    assert!(ids.contains(entry["id"].as_str().expect("id")));
    assert!(ids.contains(second["entry"]["id"].as_str().expect("id")));
    assert!(trail.iter().all(|e| e["action"] == "grant" && e["actor"]["email"] == app().admin_email.as_str()));
    assert_eq!(trail[1]["old_values"]["balance"], 0);
    assert_eq!(trail[1]["new_values"]["balance"], 100);
}

#[tokio::test]
async fn grants_are_validated_and_unknown_tenants_are_404() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    let path = format!("/v1/tenants/{}/credits", owner.tenant_id);
    for (body, field) in [
        (json!({"reason": "x"}), "amount"),
        (json!({"amount": 0, "reason": "x"}), "amount"),
        (json!({"amount": -5, "reason": "x"}), "amount"),
        (json!({"amount": 1_000_000_001_i64, "reason": "x"}), "amount"),
        (json!({"amount": "10", "reason": "x"}), "amount"),
        (json!({"amount": 1}), "reason"),
        (json!({"amount": 1, "reason": ""}), "reason"),
        (json!({"amount": 1, "reason": "r".repeat(201)}), "reason"),
        (json!({"amount": 1, "reason": "x", "currency": "usd"}), "currency"),
    ] {
        let reply = post(&path).token(&admin).json(&body).send().await.expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{body}");
    }
    grant(&admin, &owner.tenant_id, 1_000_000_000, &"r".repeat(200)).await;
    let reply = post("/v1/tenants/not-a-uuid/credits")
        .token(&admin)
        .json(&json!({"amount": 1, "reason": "x"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["tenant_id"]);
    post(&format!("/v1/tenants/{}/credits", Uuid::now_v7()))
        .token(&admin)
        .json(&json!({"amount": 1, "reason": "x"}))
        .send()
        .await
        .expect_error(404, "not_found");
    get("/v1/credits/ledger?kind=bogus").token(&owner.access_token).send().await.expect_error(400, "validation_failed");
    get("/v1/credits").send().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn a_refund_with_a_reference_credits_once_even_when_repeated_concurrently() {
    let (owner, state) = funded(10).await;
    let (scope, audit) = (scope_of(&owner), pipeline());
    let session = format!("session-{}", unique());

    let first = state.store.refund_credits(&scope, 3, "render failed", &session, &audit).await.expect("refund");
    assert_eq!((first.amount, first.balance_after), (3, 13));
    assert_eq!(first.reference.as_deref(), Some(session.as_str()));
    let again = state.store.refund_credits(&scope, 3, "render failed", &session, &audit).await.expect("repeat");
    assert_eq!(again, first, "a repeat answers the first refund");
    assert_eq!(balance_of(&owner).await, 13);

    let concurrent = format!("session-{}", unique());
    let results =
        join_all((0..10).map(|_| state.store.refund_credits(&scope, 4, "cancelled", &concurrent, &audit))).await;
    let ids: HashSet<Uuid> = results.into_iter().map(|r| r.expect("refund").id).collect();
    assert_eq!(ids.len(), 1, "ten concurrent refunds of one reference are one refund");
    assert_eq!(balance_of(&owner).await, 17);
    let refunds = ledger(&owner.access_token, "refund").await;
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["reference"], concurrent.as_str());
    assert_eq!(refunds[0]["balance_after"], 17);
}

#[tokio::test]
async fn a_spend_with_a_reference_charges_once() {
    let (owner, state) = funded(5).await;
    let (scope, audit) = (scope_of(&owner), pipeline());
    let session = format!("session-{}", unique());

    assert_eq!(
        state.store.spend_credits(&scope, 2, "hd try-on", Some(&session), &audit).await.expect("spend").balance_after,
        3
    );
    assert_eq!(
        state.store.spend_credits(&scope, 2, "hd try-on", Some(&session), &audit).await.expect("repeat").balance_after,
        3
    );
    assert_eq!(balance_of(&owner).await, 3);

    let concurrent = format!("session-{}", unique());
    let results =
        join_all((0..10).map(|_| state.store.spend_credits(&scope, 2, "hd try-on", Some(&concurrent), &audit))).await;
    assert!(results.iter().all(|r| matches!(r, Ok(e) if e.balance_after == 1)), "{results:?}");
    assert_eq!(balance_of(&owner).await, 1);
    // Even once the balance could no longer pay for it, a repeat answers the
    // first spend instead of a refusal.
    assert_eq!(
        state.store.spend_credits(&scope, 1, "sd try-on", None, &audit).await.expect("last credit").balance_after,
        0
    );
    assert_eq!(
        state
            .store
            .spend_credits(&scope, 2, "hd try-on", Some(&concurrent), &audit)
            .await
            .expect("repeat")
            .balance_after,
        1
    );
    assert_eq!(balance_of(&owner).await, 0);
    assert_eq!(ledger(&owner.access_token, "spend").await.len(), 3);
}

#[tokio::test]
async fn members_cannot_grant_and_only_admins_read_the_ledger() {
    let owner = register_owner().await;
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&owner.access_token)
        .json(&json!({"amount": 1000, "reason": "free money"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    assert_eq!(balance_of(&owner).await, 0);

    let user = token_with_role(&owner, Role::User).await;
    let developer = token_with_role(&owner, Role::Developer).await;
    let admin = token_with_role(&owner, Role::Admin).await;
    for token in [&user, &developer] {
        let reply = get("/v1/credits/ledger").token(token).send().await.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required_role"], "admin");
        get("/v1/credits").token(token).send().await.expect(200);
    }
    get("/v1/credits/ledger").token(&admin).send().await.expect(200);
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin)
        .json(&json!({"amount": 1, "reason": "x"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
}

#[tokio::test]
async fn another_tenants_credits_are_invisible() {
    let a = register_owner().await;
    let b = register_owner().await;
    let admin = platform_admin_token().await;
    grant(&admin, &a.tenant_id, 5, "for a").await;
    let b_entry = grant(&admin, &b.tenant_id, 9, "for b").await["entry"].clone();

    assert_eq!(balance_of(&a).await, 5);
    assert_eq!(balance_of(&b).await, 9);
    let a_ledger = ledger(&a.access_token, "").await;
    assert_eq!(a_ledger.len(), 1);
    assert!(a_ledger.iter().all(|e| e["tenant_id"] == a.tenant_id.as_str() && e["id"] != b_entry["id"]));
    get("/v1/credits")
        .token(&a.access_token)
        .header("X-Tenant-ID", &b.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
    get("/v1/credits/ledger")
        .token(&a.access_token)
        .header("X-Tenant-ID", &b.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");
    // A member cannot grant to another tenant either (403, revealing nothing).
    post(&format!("/v1/tenants/{}/credits", b.tenant_id))
        .token(&a.access_token)
        .json(&json!({"amount": 1, "reason": "x"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    assert_eq!(balance_of(&b).await, 9);

    // The platform admin acts inside a tenant with X-Tenant-ID.
    let seen = get("/v1/credits").token(&admin).header("X-Tenant-ID", &b.tenant_id).send().await.expect(200).body;
    assert_eq!(seen, json!({"tenant_id": b.tenant_id, "balance": 9, "currency": "credits"}));
}

/// The outbox events (envelopes) of `tenant_id` whose type starts with
/// `prefix`, oldest first.
pub(crate) async fn events_of(tenant_id: &str, prefix: &str) -> Vec<Value> {
    let mut events = outbox_events(tenant_id).await;
    events.retain(|event| event["type"].as_str().is_some_and(|kind| kind.starts_with(prefix)));
    events
}

#[tokio::test]
async fn a_grant_and_a_charge_write_their_events_with_the_change_and_a_pipeline_spend_writes_none() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    let granted = grant(&admin, &owner.tenant_id, 10, "top-up").await;
    let charged = post("/v1/credits/charges")
        .token(&owner.access_token)
        .json(&json!({"amount": 3, "reason": "render minutes", "reference": "job-7"}))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(charged["balance"], 7);
    // A refused charge changes nothing and announces nothing.
    post("/v1/credits/charges")
        .token(&owner.access_token)
        .json(&json!({"amount": 8, "reason": "too much"}))
        .send()
        .await
        .expect_error(402, "insufficient_credits");
    // The try-on pipeline's spends are told by the try-on's own events.
    let (state, _) = test_state().await;
    let reference = format!("tryon:{}", unique());
    state
        .store
        .spend_credits_with(&scope_of(&owner), 2, "try-on", &reference, &pipeline(), Tx::new())
        .await
        .expect("pipeline spend");

    let events = events_of(&owner.tenant_id, "credits.").await;
    let kinds: Vec<&str> = events.iter().filter_map(|event| event["type"].as_str()).collect();
    assert_eq!(kinds, ["credits.added", "credits.spent"], "{events:#?}");
    let (added, spent) = (&events[0]["data"], &events[1]["data"]);
    assert_eq!(added["entry_id"], granted["entry"]["id"]);
    assert_eq!((added["amount"].as_i64(), added["balance"].as_i64()), (Some(10), Some(10)));
    assert_eq!(added["reason"], "top-up");
    assert_eq!(added["actor"]["email"], app().admin_email.as_str());
    assert_eq!(spent["entry_id"], charged["entry"]["id"]);
    assert_eq!((spent["amount"].as_i64(), spent["balance"].as_i64()), (Some(3), Some(7)));
    assert_eq!((spent["reason"].as_str(), spent["reference"].as_str()), (Some("render minutes"), Some("job-7")));
    assert_eq!(spent["actor"]["type"], "user");
}

#[tokio::test]
async fn a_spend_with_the_callers_writes_answers_their_failed_condition_by_name_and_changes_nothing() {
    let (owner, state) = funded(5).await;
    let (scope, audit) = (scope_of(&owner), pipeline());
    const SESSION_GONE: Cond = Cond("session_gone");
    let absent = ConditionCheckBuilder::default()
        .key("PK", AttributeValue::S(scope.pk()))
        .key("SK", AttributeValue::S(format!("TRYON#{}", Uuid::now_v7())))
        .condition_expression("attribute_exists(PK)");
    let mut with = Tx::new();
    with.check(absent, SESSION_GONE);
    let reference = format!("tryon:{}", unique());

    let err = state.store.spend_credits_with(&scope, 2, "try-on", &reference, &audit, with).await.expect_err("refused");
    assert!(matches!(err, CreditError::PreconditionFailed(SESSION_GONE)), "{err:?}");
    assert_eq!(AppError::from(err).code(), "conflict");
    assert_eq!(balance_of(&owner).await, 5, "nothing was taken");
    assert!(ledger(&owner.access_token, "spend").await.is_empty());
    // The reference was not used up: the same spend goes through once the
    // caller's writes can.
    let entry =
        state.store.spend_credits_with(&scope, 2, "try-on", &reference, &audit, Tx::new()).await.expect("spend");
    assert_eq!(entry.balance_after, 3);
}
