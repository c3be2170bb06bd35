//! The `Idempotency-Key` layer on every authenticated POST: a retry replays
//! the first response, a reused key with another body is 422, a retry while
//! the first still runs waits for it or is 409, and a client that gave up
//! (timed out) and retried is charged once.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use platform_tests::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

fn idempotency_key() -> String {
    format!("idem-{}", uuid::Uuid::new_v4())
}

async fn project_names(token: &str) -> Vec<String> {
    let body = get("/v1/projects?limit=100").token(token).send().await.expect(200).body;
    body["data"].as_array().expect("data").iter().map(|p| p["name"].as_str().expect("name").to_owned()).collect()
}

#[tokio::test]
async fn a_retry_replays_the_first_response_and_creates_nothing_more() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let body = json!({"name": "Replayed"});
    let first =
        post("/v1/projects").token(&owner.access_token).header("idempotency-key", &key).json(&body).send().await;
    let first = first.expect(201);
    assert!(first.headers.get("idempotent-replayed").is_none());
    let again =
        post("/v1/projects").token(&owner.access_token).header("idempotency-key", &key).json(&body).send().await;
    let again = again.expect(201);
    assert_eq!(again.body, first.body, "the stored body, byte for byte the same resource");
    assert_eq!(again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(project_names(&owner.access_token).await, ["Replayed"]);

    // Errors below 500 are kept too: the same request gets the same answer.
    let bad = json!({"name": ""});
    let refused =
        post("/v1/projects").token(&owner.access_token).header("idempotency-key", "bad-1").json(&bad).send().await;
    let refused = refused.expect_error(400, "validation_failed");
    let replayed =
        post("/v1/projects").token(&owner.access_token).header("idempotency-key", "bad-1").json(&bad).send().await;
    assert_eq!(replayed.expect_error(400, "validation_failed").body["details"], refused.body["details"]);
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_422_and_changes_nothing() {
    let owner = register_owner().await;
    let key = idempotency_key();
    post("/v1/projects")
        .token(&owner.access_token)
        .header("idempotency-key", &key)
        .json(&json!({"name": "First"}))
        .send()
        .await
        .expect(201);
    post("/v1/projects")
        .token(&owner.access_token)
        .header("idempotency-key", &key)
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .expect_error(422, "idempotency_key_reused");
    assert_eq!(project_names(&owner.access_token).await, ["First"]);
    // Keys are per caller: another tenant's owner may use the same key.
    let other = register_owner().await;
    post("/v1/projects")
        .token(&other.access_token)
        .header("idempotency-key", &key)
        .json(&json!({"name": "Second"}))
        .send()
        .await
        .expect(201);
    // A malformed key is named.
    let reply = post("/v1/projects")
        .token(&owner.access_token)
        .header("idempotency-key", "has spaces")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["Idempotency-Key"]);
}

#[tokio::test]
async fn concurrent_duplicates_run_once_and_all_get_the_first_answer() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let replies = join_all((0..8).map(|_| {
        post("/v1/projects")
            .token(&owner.access_token)
            .header("idempotency-key", &key)
            .json(&json!({"name": "Once"}))
            .send()
    }))
    .await;
    let ids: Vec<&Value> = replies.iter().map(|r| &r.body["id"]).collect();
    assert!(replies.iter().all(|r| r.status == 201), "{:?}", replies.iter().map(|r| &r.body).collect::<Vec<_>>());
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(project_names(&owner.access_token).await, ["Once"]);
}

/// Plants the record of another request for `POST /v1/projects` with
/// `body` under `key`, as the layer writes it: its `state`, its lease
/// `lease_from_now` seconds away (negative: run out).
async fn plant_project_record(owner: &Member, key: &str, body: &[u8], state_name: &str, lease_from_now: i64) {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut fingerprint = Sha256::new();
    fingerprint.update(b"POST /v1/projects\n");
    fingerprint.update(body);
    let now = chrono::Utc::now().timestamp();
    let (state, clients) = test_state().await;
    clients
        .dynamodb
        .put_item()
        .table_name(state.store.table_name())
        .item("PK", AttributeValue::S(format!("T#{}#", owner.tenant_id)))
        .item("SK", AttributeValue::S(format!("IDEM#U#{}#{}", owner.user_id, hex(&Sha256::digest(key.as_bytes())))))
        .item("fingerprint", AttributeValue::S(hex(&fingerprint.finalize())))
        .item("state", AttributeValue::S(state_name.into()))
        .item("lock", AttributeValue::S("another-request".into()))
        .item("lease_until", AttributeValue::N((now + lease_from_now).to_string()))
        .item("expires_at", AttributeValue::N((now + 86_400).to_string()))
        .send()
        .await
        .expect("plant the record");
}

/// A request still running (its claim held, its lease not run out) makes a
/// retry wait, then 409. The claim is planted as the layer writes it.
#[tokio::test]
async fn a_retry_while_the_first_request_runs_is_409() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let body = json!({"name": "Slow"});
    let body_text = serde_json::to_vec(&body).expect("json");
    plant_project_record(&owner, &key, &body_text, "in_progress", 300).await;
    let started = std::time::Instant::now();
    let reply = post("/v1/projects")
        .token(&owner.access_token)
        .header("idempotency-key", &key)
        .raw_body(std::str::from_utf8(&body_text).expect("utf8"))
        .send()
        .await;
    reply.expect_error(409, "idempotency_key_in_use");
    assert!(started.elapsed() >= Duration::from_secs(4), "the retry waited for the first request");
    assert!(project_names(&owner.access_token).await.is_empty());
}

/// The claim of a request that died before its change (its lease ran out)
/// is taken over: the retry runs and creates the project once.
#[tokio::test]
async fn a_claim_whose_holder_died_is_taken_over() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let body_text = serde_json::to_vec(&json!({"name": "Taken over"})).expect("json");
    plant_project_record(&owner, &key, &body_text, "in_progress", -1).await;
    let send = || {
        post("/v1/projects")
            .token(&owner.access_token)
            .header("idempotency-key", &key)
            .raw_body(std::str::from_utf8(&body_text).expect("utf8"))
            .send()
    };
    let first = send().await.expect(201);
    let again = send().await.expect(201);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(project_names(&owner.access_token).await, ["Taken over"]);
}

/// On a route whose change carries its record (`POST /v1/projects`), a
/// record in `committed` state means the change happened and its answer
/// was lost (the process died between the two): a retry never runs the
/// change again, even after the lease, and says why.
#[tokio::test]
async fn a_committed_change_whose_answer_was_lost_is_never_run_again() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let body_text = serde_json::to_vec(&json!({"name": "Committed"})).expect("json");
    plant_project_record(&owner, &key, &body_text, "committed", -1).await;
    let reply = post("/v1/projects")
        .token(&owner.access_token)
        .header("idempotency-key", &key)
        .raw_body(std::str::from_utf8(&body_text).expect("utf8"))
        .send()
        .await
        .expect_error(409, "conflict");
    assert_eq!(reply.body["details"]["reason"], "response_not_kept");
    assert!(project_names(&owner.access_token).await.is_empty(), "the change did not run a second time");
}

/// `POST /v1/tenants` with a slug the caller chose: the retry's own change
/// would now fail (the slug is the first request's), yet it answers the
/// first request's 201, and one tenant exists. The record was written by
/// the tenant's transaction, with its answer.
#[tokio::test]
async fn a_retry_whose_change_would_now_fail_answers_the_first_201() {
    let admin = platform_admin_token().await;
    let key = idempotency_key();
    let slug = format!("riding-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"name": "Riding Co", "slug": slug, "plan": "professional"});
    let send = || post("/v1/tenants").token(&admin).header("idempotency-key", &key).json(&body).send();
    let first = send().await.expect(201);
    assert!(first.headers.get("location").is_some(), "the first answer has its Location");
    let again = send().await.expect(201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    // Another key with the same body is a new request: the slug is taken.
    post("/v1/tenants")
        .token(&admin)
        .header("idempotency-key", &idempotency_key())
        .json(&body)
        .send()
        .await
        .expect(409);

    // The record: completed, with the 201, as soon as the change was.
    let home = get("/v1/tenants/me").token(&admin).send().await.expect(200).body["id"].clone();
    let home = home.as_str().expect("the admin's tenant id").to_owned();
    let (state, clients) = test_state().await;
    let records = clients
        .dynamodb
        .query()
        .table_name(state.store.table_name())
        .key_condition_expression("PK = :pk AND begins_with(SK, :idem)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("T#{home}#")))
        .expression_attribute_values(":idem", AttributeValue::S("IDEM#".into()))
        .send()
        .await
        .expect("query");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let suffix = format!("#{}", hex(&Sha256::digest(key.as_bytes())));
    let record = records
        .items()
        .iter()
        .find(|item| item.get("SK").and_then(|v| v.as_s().ok()).is_some_and(|sk| sk.ends_with(&suffix)))
        .expect("the record");
    assert_eq!(record.get("state").and_then(|v| v.as_s().ok()).map(String::as_str), Some("completed"));
    assert_eq!(record.get("status").and_then(|v| v.as_n().ok()).map(String::as_str), Some("201"));
}

/// `POST /v1/billing/usage` prepares its answer for each commit attempt: a
/// retry gets the first answer (the event recorded, not a duplicate, which
/// running it again would say), and the period counts it once.
#[tokio::test]
async fn a_usage_retry_replays_the_first_answer_and_counts_once() {
    let owner = register_owner().await;
    let key = idempotency_key();
    let body = json!({"metric_type": "ai_requests", "quantity": 3});
    let send =
        || post("/v1/billing/usage").token(&owner.access_token).header("idempotency-key", &key).json(&body).send();
    let first = send().await.expect(201);
    assert_eq!(first.body["recorded"], 1);
    assert_eq!(first.body["records"][0]["duplicate"], false);
    let again = send().await.expect(201);
    assert_eq!(again.body, first.body, "the stored answer, not a re-run's `duplicate: true`");
    assert_eq!(again.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let usage = get("/v1/billing/usage").token(&owner.access_token).send().await.expect(200);
    assert_eq!(usage.body["current_period"]["ai_requests"], 3);
}

/// The client sends a charge and hangs up before the answer (its timeout);
/// the server finishes anyway. The retry with the same key gets the charge's
/// answer, and the tenant pays once.
#[tokio::test]
async fn a_retry_after_a_client_timeout_charges_once() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin)
        .json(&json!({"amount": 10, "reason": "prepaid"}))
        .send()
        .await
        .expect(201);
    let api_key = create_api_key(&owner.access_token, &["usage:write", "credits:read"]).await;
    let key = idempotency_key();
    let body = json!({"amount": 3, "reason": "render batch 42"}).to_string();

    // Send the whole request on a raw connection, then drop it unanswered.
    let address = app().base_url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let request = format!(
        "POST /v1/credits/charges HTTP/1.1\r\nHost: {address}\r\nX-API-Key: {}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        api_key.secret,
        body.len()
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    drop(socket);

    // The retry: 409 while the first still runs, then its stored answer.
    let retried = eventually("the retry to get the charge's answer", Duration::from_secs(30), || {
        let (secret, key, body) = (api_key.secret.clone(), key.clone(), body.clone());
        async move {
            let reply = post("/v1/credits/charges")
                .api_key(&secret)
                .header("idempotency-key", &key)
                .raw_body(&body)
                .send()
                .await;
            match reply.status.as_u16() {
                409 => None,
                _ => Some(reply),
            }
        }
    })
    .await
    .expect(201);
    assert_eq!(retried.body["balance"], 7);
    let balance = get("/v1/credits").api_key(&api_key.secret).send().await.expect(200);
    assert_eq!(balance.body["balance"], 7, "charged once");
    let spends = get("/v1/credits/ledger?kind=spend").token(&owner.access_token).send().await.expect(200);
    let spends = spends.body["data"].as_array().expect("data").clone();
    assert_eq!(spends.len(), 1);
    assert_eq!(spends[0]["id"], retried.body["entry"]["id"]);
    assert_eq!(spends[0]["actor"]["type"], "api_key");

    // One more retry, long after: still the same answer, still one charge.
    let again = post("/v1/credits/charges")
        .api_key(&api_key.secret)
        .header("idempotency-key", &key)
        .raw_body(&body)
        .send()
        .await;
    assert_eq!(again.expect(201).body, retried.body);
    assert_eq!(get("/v1/credits").api_key(&api_key.secret).send().await.expect(200).body["balance"], 7);
}

#[tokio::test]
async fn a_charge_beyond_the_balance_is_402_with_nothing_taken() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin)
        .json(&json!({"amount": 2, "reason": "prepaid"}))
        .send()
        .await
        .expect(201);
    let reply = post("/v1/credits/charges")
        .token(&owner.access_token)
        .json(&json!({"amount": 5, "reason": "4k render"}))
        .send()
        .await
        .expect_error(402, "insufficient_credits");
    assert_eq!(reply.body["details"], json!({"balance": 2, "cost": 5}));
    let charged = post("/v1/credits/charges")
        .token(&owner.access_token)
        .json(&json!({"amount": 2, "reason": "sd render", "reference": "job-7"}))
        .send()
        .await
        .expect(201);
    assert_eq!(charged.body["balance"], 0);
    assert_eq!(charged.body["entry"]["amount"], -2);
    assert_eq!(charged.body["entry"]["reference"], "job-7");
    // The same reference charges once, even without an Idempotency-Key.
    let repeat = post("/v1/credits/charges")
        .token(&owner.access_token)
        .json(&json!({"amount": 2, "reason": "sd render", "reference": "job-7"}))
        .send()
        .await
        .expect(201);
    assert_eq!(repeat.body["entry"]["id"], charged.body["entry"]["id"]);
}
