//! Integrations end to end over HTTP: providers from seed 003's body,
//! inbound webhooks signed by independent signers (the `standardwebhooks`
//! and `svix` Python libraries, a hand-made Stripe header, GitHub's and the
//! generic HMAC), refusals recorded as rejections with nothing else kept,
//! dedupe under 50 concurrent deliveries, the bus path to a tenant's own
//! webhook receiver, secret rotation, the IP allow-list, health from probes
//! of real local servers, and tenant isolation.

use std::{
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, routing::post as post_route};
use hmac::{Hmac, Mac};
use platform_tests::*;
use serde_json::{Value, json};
use sha2::Sha256;

const SEED_PROVIDER: &str = r#"{
    "name": "new_service",
    "webhook_url": "https://webhook.newservice.com",
    "api_base_url": "https://api.newservice.com",
    "auth_type": "oauth2",
    "secret_key": "your_secret_key"
}"#;

/// Seed 003's user-service webhook body, as the sender would serialise it.
fn seed_body(event_id: &str) -> String {
    json!({
        "event_type": "user.created",
        "event_id": event_id,
        "data": {"user_id": "123", "email": "user@example.com", "name": "John Doe"}
    })
    .to_string()
}

pub(crate) struct Provider {
    pub(crate) id: String,
    /// The inbound path (`/v1/integrations/webhooks/<token>`).
    pub(crate) path: String,
    body: Value,
}

pub(crate) async fn create_provider(owner: &Member, body: &Value) -> Provider {
    let reply = post("/v1/integrations/providers").token(&owner.access_token).json(body).send().await.expect(201);
    let url = reply.body["inbound_url"].as_str().expect("inbound_url");
    let at = url.find("/v1/integrations/webhooks/").expect("inbound path");
    Provider { id: reply.body["id"].as_str().expect("id").to_owned(), path: url[at..].to_owned(), body: reply.body }
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("key");
    mac.update(message);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Headers from the provider's own library (tests/fixtures/sign_webhook.py).
fn library_headers(scheme: &str, secret: &str, msg_id: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sign_webhook.py");
    let mut child = Command::new(venv_python())
        .args([script, scheme, secret, msg_id, &ts.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python (infra/venv.sh)");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write");
    let output = child.wait_with_output().expect("signer");
    assert!(output.status.success(), "the {scheme} signer failed");
    let headers: Value = serde_json::from_slice(&output.stdout).expect("headers json");
    headers.as_object().expect("object").iter().map(|(k, v)| (k.clone(), v.as_str().expect("str").to_owned())).collect()
}

pub(crate) async fn deliver(path: &str, headers: &[(String, String)], body: &str) -> Reply {
    let mut call = post(path).raw_body(body);
    for (name, value) in headers {
        call = call.header(name, value);
    }
    call.send().await
}

pub(crate) fn generic_headers(secret: &str, body: &str) -> Vec<(String, String)> {
    vec![("x-signature-256".into(), format!("sha256={}", hmac_hex(secret.as_bytes(), body.as_bytes())))]
}

async fn events(owner: &Member, query: &str) -> Vec<Value> {
    let reply = get(&format!("/v1/integrations/events?limit=100&{query}")).token(&owner.access_token).send().await;
    reply.expect(200).body["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn seed_003s_body_makes_a_provider_whose_secret_is_never_shown() {
    let owner = register_owner().await;
    let body: Value = serde_json::from_str(SEED_PROVIDER).expect("seed body");
    let provider = create_provider(&owner, &body).await;
    assert_eq!(provider.body["name"], "new_service");
    assert_eq!(provider.body["auth_type"], "oauth2");
    assert_eq!(provider.body["verification"], "generic_hmac_sha256");
    assert_eq!(provider.body["is_active"], true);
    assert!(provider.body.get("secret_key").is_none(), "a given secret is not echoed: {}", provider.body);
    let listed = get("/v1/integrations/providers").token(&owner.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"][0]["id"], provider.body["id"].clone());
    assert_eq!(listed.body["data"][0]["inbound_url"], provider.body["inbound_url"].clone());
    let text = listed.body.to_string()
        + &audit_entries(&owner.tenant_id).await.iter().map(|(_, v)| v.to_string()).collect::<String>();
    assert!(!text.contains("your_secret_key"), "the secret leaked into a list or the audit trail");
    // Stored sealed: no attribute holds it in clear.
    let stored = tenant_items(&owner.tenant_id, "INTPROVIDER#").await;
    assert!(!format!("{stored:?}").contains("your_secret_key"));
    // Seed 003's sender: the generic HMAC of the body.
    let body = seed_body("evt_123");
    let reply = deliver(&provider.path, &generic_headers("your_secret_key", &body), &body).await.expect(202);
    assert_eq!((reply.body["status"].as_str(), reply.body["event_id"].as_str()), (Some("received"), Some("evt_123")));
    let listed = events(&owner, "").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["event_type"], "user.created");
    assert_eq!(listed[0]["provider"], "new_service");
    let detail = get(&format!("/v1/integrations/events/{}", reply.body["id"].as_str().expect("id")))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(detail.body["payload"], serde_json::from_str::<Value>(&body).expect("json"));
}

#[tokio::test]
async fn independent_signers_are_accepted_and_tampering_is_refused_and_recorded() {
    let owner = register_owner().await;
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let standard = create_provider(
        &owner,
        &json!({"name": "standard", "verification": "standard_webhooks", "secret_key": secret}),
    )
    .await;
    let stripe =
        create_provider(&owner, &json!({"name": "stripe", "verification": "stripe", "secret_key": secret})).await;
    let github =
        create_provider(&owner, &json!({"name": "github", "verification": "github", "secret_key": "gh-secret-123"}))
            .await;

    // The Standard Webhooks library, then Svix's (same scheme, svix-* headers).
    let body = json!({"type": "invoice.paid", "data": {"id": "inv_1"}}).to_string();
    let signed = library_headers("standard_webhooks", secret, "msg_std_1", now(), &body);
    deliver(&standard.path, &signed, &body).await.expect(202);
    let signed = library_headers("svix", secret, "msg_svix_1", now(), &body);
    deliver(&standard.path, &signed, &body).await.expect(202);
    // Stripe's header, made by hand: t=<ts>,v1=<hex HMAC of "<ts>.<body>">.
    let body = json!({"id": "evt_stripe_1", "type": "payment_intent.succeeded", "data": {"object": {}}}).to_string();
    let ts = now();
    let header = format!("t={ts},v1={}", hmac_hex(secret.as_bytes(), format!("{ts}.{body}").as_bytes()));
    deliver(&stripe.path, &[("stripe-signature".into(), header)], &body).await.expect(202);
    // GitHub: X-Hub-Signature-256 over the body, the event in headers.
    let body = json!({"action": "opened", "issue": {"number": 1}}).to_string();
    let gh = vec![
        ("x-hub-signature-256".into(), format!("sha256={}", hmac_hex(b"gh-secret-123", body.as_bytes()))),
        ("x-github-event".into(), "issues".into()),
        ("x-github-delivery".into(), "72d3162e-cc78-11e3-81ab-4c9367dc0958".into()),
    ];
    deliver(&github.path, &gh, &body).await.expect(202);
    // One read: the worker may move an event from received to processed
    // between two filtered reads, and it would be counted twice.
    let accepted = events(&owner, "").await;
    let accepted = accepted.iter().filter(|e| e["status"] == "received" || e["status"] == "processed").count();
    assert_eq!(accepted, 4);
    assert_eq!(events(&owner, &format!("provider_id={}", github.id)).await[0]["event_type"], "issues.opened");

    // Refusals: a tampered body, a wrong secret, a stale timestamp.
    let body = json!({"type": "invoice.paid", "data": {"id": "inv_2"}}).to_string();
    let signed = library_headers("standard_webhooks", secret, "msg_std_2", now(), &body);
    let tampered = body.replace("inv_2", "inv_9");
    let refused = deliver(&standard.path, &signed, &tampered).await.expect_error(401, "invalid_signature");
    assert_eq!(refused.body["details"]["reason"], "bad_signature");
    let other =
        library_headers("standard_webhooks", "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "msg_std_3", now(), &body);
    deliver(&standard.path, &other, &body).await.expect_error(401, "invalid_signature");
    let stale = library_headers("standard_webhooks", secret, "msg_std_4", now() - 600, &body);
    let refused = deliver(&standard.path, &stale, &body).await.expect_error(401, "invalid_signature");
    assert_eq!(refused.body["details"]["reason"], "stale_timestamp");
    deliver(&standard.path, &[], &body).await.expect_error(401, "invalid_signature");
    let rejected = events(&owner, "status=rejected").await;
    assert_eq!(rejected.len(), 4, "{rejected:#?}");
    assert!(rejected.iter().all(|e| e["event_id"] == "" && e["rejection"]["reason"].is_string()));
    // Nothing of a rejected delivery but the rejection: no payload kept.
    for event in rejected {
        let detail = get(&format!("/v1/integrations/events/{}", event["id"].as_str().expect("id")))
            .token(&owner.access_token)
            .send()
            .await
            .expect(200);
        assert_eq!(detail.body["payload"], Value::Null);
    }
    assert_eq!(
        outbox_events(&owner.tenant_id).await.iter().filter(|e| e["type"] == "integration.event.received").count(),
        4,
        "only accepted events reach the outbox"
    );
}

#[tokio::test]
async fn fifty_concurrent_deliveries_of_one_event_id_make_one_event() {
    let owner = register_owner().await;
    let provider = create_provider(&owner, &json!({"name": "user_service", "secret_key": "your_secret_key"})).await;
    let body = seed_body("evt_concurrent");
    let headers = generic_headers("your_secret_key", &body);
    let replies = futures::future::join_all((0..50).map(|_| deliver(&provider.path, &headers, &body))).await;
    let fresh: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 202).collect();
    let duplicates: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 200).collect();
    assert_eq!((fresh.len(), duplicates.len()), (1, 49), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let first = fresh[0].body["id"].clone();
    assert!(duplicates.iter().all(|r| r.body["id"] == first && r.body["status"] == "duplicate"));
    let stored = events(&owner, &format!("provider={}", "user_service")).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["duplicate_count"], 49);
    let on_bus = outbox_events(&owner.tenant_id).await;
    assert_eq!(on_bus.iter().filter(|e| e["type"] == "integration.event.received").count(), 1);
}

type Hits = Arc<Mutex<Vec<Value>>>;

async fn record_hit(State(hits): State<Hits>, body: Bytes) -> &'static str {
    hits.lock().expect("hits").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    "ok"
}

#[tokio::test]
async fn an_inbound_event_reaches_the_tenants_subscribed_webhook_and_is_processed() {
    let owner = register_owner().await;
    let hits: Hits = Arc::default();
    let app = axum::Router::new().route("/hook", post_route(record_hit)).with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    post("/v1/webhooks")
        .token(&owner.access_token)
        .json(&json!({"url": url, "event_types": ["integration.event.received"]}))
        .send()
        .await
        .expect(201);
    let provider = create_provider(&owner, &json!({"name": "payment_service", "secret_key": "your_secret_key"})).await;
    let body = json!({"event_type": "payment.succeeded", "event_id": "evt_456",
                      "data": {"payment_id": "pay_123", "amount": 1000, "currency": "usd"}})
    .to_string();
    let receipt = deliver(&provider.path, &generic_headers("your_secret_key", &body), &body).await.expect(202);
    let delivered = eventually("the tenant's webhook receiver got the event", Duration::from_secs(60), || {
        let hits = hits.lock().expect("hits").clone();
        async move { hits.into_iter().find(|h| h["type"] == "integration.event.received") }
    })
    .await;
    assert_eq!(delivered["data"]["provider"], "payment_service");
    assert_eq!(delivered["data"]["event_id"], "evt_456");
    assert_eq!(delivered["data"]["data"]["data"]["amount"], 1000);
    let id = receipt.body["id"].as_str().expect("id").to_owned();
    let processed = eventually("the worker processed the event", Duration::from_secs(60), || {
        let (owner, id) = (&owner, id.clone());
        async move {
            let reply = get(&format!("/v1/integrations/events/{id}")).token(&owner.access_token).send().await;
            (reply.body["status"] == "processed").then_some(reply.body)
        }
    })
    .await;
    assert!(processed["processing_ms"].as_i64().is_some_and(|ms| ms >= 0));
    // A replay puts it on the bus again, and it is processed again.
    let replay =
        post(&format!("/v1/integrations/events/{id}/replay")).token(&owner.access_token).send().await.expect(202);
    assert_eq!(replay.body["replay_count"], 1);
    eventually("the replay was processed", Duration::from_secs(60), || {
        let (owner, id) = (&owner, id.clone());
        async move {
            let reply = get(&format!("/v1/integrations/events/{id}")).token(&owner.access_token).send().await;
            (reply.body["status"] == "processed" && reply.body["replay_count"] == 1).then_some(())
        }
    })
    .await;
    // A window replay takes what was received in the window, and nothing else.
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let in_an_hour = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let before = post("/v1/integrations/events/replay")
        .token(&owner.access_token)
        .json(&json!({"date_from": "2026-01-01T00:00:00Z", "date_to": hour_ago}))
        .send()
        .await
        .expect(202);
    assert_eq!(before.body, json!({"replayed": 0, "event_ids": [], "next_cursor": null}));
    let window = post("/v1/integrations/events/replay")
        .token(&owner.access_token)
        .json(&json!({"date_from": hour_ago, "date_to": in_an_hour, "status": "processed",
                      "provider_id": provider.id}))
        .send()
        .await
        .expect(202);
    assert_eq!(window.body, json!({"replayed": 1, "event_ids": [id], "next_cursor": null}));
    eventually("the window replay was processed", Duration::from_secs(60), || {
        let (owner, id) = (&owner, id.clone());
        async move {
            let reply = get(&format!("/v1/integrations/events/{id}")).token(&owner.access_token).send().await;
            (reply.body["status"] == "processed" && reply.body["replay_count"] == 2).then_some(())
        }
    })
    .await;
    post("/v1/integrations/events/replay")
        .token(&owner.access_token)
        .json(&json!({"date_from": hour_ago, "date_to": in_an_hour, "status": "rejected"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
}

#[tokio::test]
async fn the_old_secret_verifies_during_the_rotation_grace_and_not_after() {
    let owner = register_owner().await;
    let provider = create_provider(&owner, &json!({"name": "rotating", "secret_key": "first_secret_key"})).await;
    let rotated = post(&format!("/v1/integrations/providers/{}/rotate-secret", provider.id))
        .token(&owner.access_token)
        .json(&json!({"secret_key": "second_secret_key", "grace_period_seconds": 3600}))
        .send()
        .await
        .expect(200);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    assert!(rotated.body.get("secret_key").is_none(), "a given secret is not echoed");
    for (n, secret) in ["first_secret_key", "second_secret_key"].iter().enumerate() {
        let body = seed_body(&format!("evt_grace_{n}"));
        deliver(&provider.path, &generic_headers(secret, &body), &body).await.expect(202);
    }
    // A rotation without grace: the secret before it stops at once.
    let rotated = post(&format!("/v1/integrations/providers/{}/rotate-secret", provider.id))
        .token(&owner.access_token)
        .json(&json!({"grace_period_seconds": 0}))
        .send()
        .await
        .expect(200);
    let generated = rotated.body["secret_key"].as_str().expect("a generated secret is shown once").to_owned();
    assert_eq!(rotated.body["previous_secret_expires_at"], Value::Null);
    for secret in ["first_secret_key", "second_secret_key"] {
        let body = seed_body("evt_after");
        deliver(&provider.path, &generic_headers(secret, &body), &body).await.expect_error(401, "invalid_signature");
    }
    let body = seed_body("evt_after");
    deliver(&provider.path, &generic_headers(&generated, &body), &body).await.expect(202);
    let shown = get(&format!("/v1/integrations/providers/{}", provider.id)).token(&owner.access_token).send().await;
    assert!(!shown.body.to_string().contains(&generated), "the secret is never shown again");
}

#[tokio::test]
async fn the_allow_list_and_the_rate_limit_guard_the_inbound_url() {
    let owner = register_owner().await;
    let provider = create_provider(
        &owner,
        &json!({"name": "guarded", "secret_key": "your_secret_key", "allowed_ips": ["203.0.113.0/24"], "rate_limit_per_minute": 3}),
    )
    .await;
    let body = seed_body("evt_ip");
    let headers = generic_headers("your_secret_key", &body);
    let from = |address: &str| {
        let mut all = headers.clone();
        all.push(("x-forwarded-for".into(), address.into()));
        all
    };
    // The limit is a fixed one-minute window and the four deliveries below
    // must share one: start them early in a minute (a run on CI crossed the
    // boundary between the third and the fourth).
    let second = chrono::Utc::now().timestamp().rem_euclid(60);
    if second > 45 {
        tokio::time::sleep(Duration::from_secs((61 - second) as u64)).await;
    }
    deliver(&provider.path, &from("198.51.100.7"), &body).await.expect_error(403, "ip_not_allowed");
    let rejected = events(&owner, "status=rejected").await;
    assert_eq!(
        (rejected[0]["source_ip"].as_str(), rejected[0]["rejection"]["reason"].as_str()),
        (Some("198.51.100.7"), Some("ip_not_allowed"))
    );
    deliver(&provider.path, &from("203.0.113.9"), &body).await.expect(202);
    deliver(&provider.path, &from("203.0.113.9"), &body).await.expect(200);
    let limited = deliver(&provider.path, &from("203.0.113.9"), &body).await.expect_error(429, "rate_limited");
    assert!(limited.headers.get("retry-after").is_some());
}

/// Answers after `delay`.
async fn slow_server(delay: Duration) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move {
            tokio::time::sleep(delay).await;
            "ok"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn health_is_degraded_for_a_slow_provider_and_down_for_a_refusing_one() {
    let owner = register_owner().await;
    let fast = slow_server(Duration::ZERO).await;
    let slow = slow_server(Duration::from_millis(1_500)).await;
    // A port that was just free: nothing listens there.
    let refusing = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/", listener.local_addr().expect("addr"))
    };
    for (name, url) in [("fast", &fast), ("slow", &slow), ("refusing", &refusing)] {
        let provider = create_provider(&owner, &json!({"name": name, "api_base_url": url})).await;
        let probe = post(&format!("/v1/integrations/providers/{}/probe", provider.id))
            .token(&owner.access_token)
            .send()
            .await
            .expect(200);
        assert!(probe.body["checked_at"].is_string());
    }
    let health = get("/v1/integrations/health").token(&owner.access_token).send().await.expect(200);
    let status = |name: &str| health.body["providers"][name]["status"].as_str().map(str::to_owned);
    assert_eq!(status("fast").as_deref(), Some("healthy"), "{:#}", health.body);
    assert_eq!(status("slow").as_deref(), Some("degraded"));
    assert_eq!(status("refusing").as_deref(), Some("down"));
    assert_eq!(health.body["status"], "down", "the worst active provider");
    assert!(health.body["providers"]["slow"]["response_time"].as_i64().is_some_and(|ms| ms >= 1_500));
    assert_eq!(health.body["providers"]["refusing"]["response_time"], Value::Null);
    assert_eq!(health.body["thresholds"]["probe_slow_ms"], 1000);

    // The schedule's job probes the same providers (here run in-process, as
    // the worker's function: the registry test checks its GSI1 grant on this
    // call, not on the local scheduler's 5-minute firing, which a short run
    // may never see).
    let (state, clients) = test_state().await;
    let worker = integrations_worker::IntegrationsWorker {
        store: state.store.clone(),
        sqs: clients.sqs.clone(),
        events_queue_url: String::new(),
        http: shared::outbound::Fetcher::new(true).expect("fetcher"),
        sync_runs_queue_url: String::new(),
        sync_budget: Duration::from_secs(1),
        sync_max_receives: 5,
        schedules: state.schedules.clone(),
        sealing: shared::sealing::KeyRing::single("sealing", "test", &[7; 32]),
        blobs: state.blobs.clone(),
    };
    let probed = shared::aws::call_log::in_function("IntegrationsWorkerFunction", worker.probe_all()).await;
    assert!(probed.expect("probe job") >= 3);
}

#[tokio::test]
async fn providers_and_events_are_private_to_their_tenant() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let provider = create_provider(&owner, &json!({"name": "private", "secret_key": "your_secret_key"})).await;
    let body = seed_body("evt_private");
    let receipt = deliver(&provider.path, &generic_headers("your_secret_key", &body), &body).await.expect(202);
    let event_id = receipt.body["id"].as_str().expect("id").to_owned();
    let t = &other.access_token;
    get(&format!("/v1/integrations/providers/{}", provider.id)).token(t).send().await.expect_error(404, "not_found");
    patch(&format!("/v1/integrations/providers/{}", provider.id))
        .token(t)
        .json(&json!({"is_active": false}))
        .send()
        .await
        .expect_error(404, "not_found");
    post(&format!("/v1/integrations/providers/{}/rotate-secret", provider.id))
        .token(t)
        .send()
        .await
        .expect_error(404, "not_found");
    delete(&format!("/v1/integrations/providers/{}", provider.id)).token(t).send().await.expect_error(404, "not_found");
    get(&format!("/v1/integrations/events/{event_id}")).token(t).send().await.expect_error(404, "not_found");
    post(&format!("/v1/integrations/events/{event_id}/replay")).token(t).send().await.expect_error(404, "not_found");
    assert!(events(&other, "").await.is_empty());

    // The token with the other tenant's id in it: no such provider there.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = provider.path.rsplit('/').next().expect("token");
    let mut bytes = engine.decode(token.trim_start_matches("iwh_")).expect("token bytes");
    bytes[..16].copy_from_slice(uuid::Uuid::parse_str(&other.tenant_id).expect("uuid").as_bytes());
    let forged = format!("/v1/integrations/webhooks/iwh_{}", engine.encode(&bytes));
    deliver(&forged, &generic_headers("your_secret_key", &body), &body).await.expect_error(404, "not_found");
    assert!(events(&other, "").await.is_empty(), "nothing stored under the other tenant");

    // Roles: a plain member may not manage integrations; a key needs its scope.
    let member = member_with_role(&owner, "user").await;
    get("/v1/integrations/providers")
        .token(&member.access_token)
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    let key = create_api_key(&owner.access_token, &["integrations:manage"]).await;
    get("/v1/integrations/providers").api_key(&key.secret).send().await.expect(200);
    let narrow = create_api_key(&owner.access_token, &["webhooks:manage"]).await;
    get("/v1/integrations/health").api_key(&narrow.secret).send().await.expect_error(403, "insufficient_scope");
}
