//! Outbound webhooks against a real HTTP receiver on this machine: signed
//! (verified here with only the secret), filtered by event type, retried with
//! the same webhook-id on the endpoint's schedule, disabled after ten failed
//! deliveries (or one 410), logged attempt by attempt, replayable. An
//! endpoint subscribed to `*` also receives the tenant's audit trail
//! (`audit.entry.created`), so tests that script a receiver's answers or count
//! its deliveries subscribe to `webhook.*` (test sends reach their endpoint
//! whatever it subscribes to) or count by type.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post as post_route};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use platform_tests::*;
use serde_json::{Value, json};
use sha2::Sha256;

#[derive(Clone, Debug)]
pub(crate) struct Received {
    headers: HeaderMap,
    body: String,
    at: Instant,
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; then `otherwise`.
    next: VecDeque<u16>,
    otherwise: u16,
}

/// A webhook receiver on 127.0.0.1 that records what it gets.
#[derive(Clone)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub(crate) async fn start(first: &[u16], otherwise: u16) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script { next: first.iter().copied().collect(), otherwise }));
        let app = axum::Router::new().route("/hook", post_route(record)).with_state((received.clone(), script.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, received, script }
    }

    fn answer(&self, status: u16) {
        self.script.lock().expect("script").otherwise = status;
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| body_of(r)["type"] == event_type).collect()
    }

    async fn wait_for(&self, what: &str, count: usize, filter: impl Fn(&Received) -> bool) -> Vec<Received> {
        eventually(what, Duration::from_secs(60), || {
            let matching: Vec<Received> = self.all().into_iter().filter(|r| filter(r)).collect();
            async move { (matching.len() >= count).then_some(matching) }
        })
        .await
    }
}

type ReceiverState = (Arc<Mutex<Vec<Received>>>, Arc<Mutex<Script>>);

async fn record(
    State((received, script)): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::http::StatusCode {
    received.lock().expect("received").push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let mut script = script.lock().expect("script");
    let status = script.next.pop_front().unwrap_or(script.otherwise);
    axum::http::StatusCode::from_u16(status).expect("status")
}

fn body_of(received: &Received) -> Value {
    serde_json::from_str(&received.body).unwrap_or(Value::Null)
}

fn header(received: &Received, name: &str) -> String {
    received.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Standard Webhooks verification, written here from the specification with
/// nothing but the secret.
pub(crate) fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).expect("secret is base64");
    let (id, timestamp) = (header(received, "webhook-id"), header(received, "webhook-timestamp"));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.{}", received.body).as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
    fresh && header(received, "webhook-signature").split(' ').any(|sig| sig == format!("v1,{expected}"))
}

pub(crate) async fn endpoint(key: &str, url: &str, event_types: Value, schedule: Value) -> (String, String) {
    let reply = post("/v1/webhooks")
        .api_key(key)
        .json(
            &json!({"url": url, "event_types": event_types, "retry_schedule_seconds": schedule, "description": "test"}),
        )
        .send()
        .await
        .expect(201);
    let secret = reply.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    (reply.body["id"].as_str().expect("id").to_owned(), secret)
}

async fn deliveries(key: &str, endpoint_id: &str) -> Vec<Value> {
    let body =
        get(&format!("/v1/webhooks/{endpoint_id}/deliveries?limit=100")).api_key(key).send().await.expect(200).body;
    body["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn a_tryon_completion_and_a_user_creation_arrive_signed_and_filtered() {
    let shop = shop(10).await;
    let everything = Receiver::start(&[], 200).await;
    let tryons_only = Receiver::start(&[], 200).await;
    let (_, secret) = endpoint(&shop.key, &everything.url, json!(["tryon.*", "user.*"]), json!([5, 15, 45])).await;
    let (_, tryon_secret) = endpoint(&shop.key, &tryons_only.url, json!(["tryon.*"]), json!([5, 15, 45])).await;

    let email = format!("new-{}@example.com", unique());
    post("/v1/users")
        .token(&shop.owner.access_token)
        .json(&json!({"email": email, "password": PASSWORD, "first_name": "N", "last_name": "U"}))
        .send()
        .await
        .expect(201);
    let customer_id = customer(&shop.key, &format!("hooked-{}", unique())).await;
    let person = upload_photo(&shop.key, &customer_id, &png(40, 80, [1, 2, 3]), "person").await;
    let garment = upload_photo(&shop.key, &customer_id, &png(20, 20, [200, 0, 0]), "garment").await;
    let session = post("/v1/tryons")
        .api_key(&shop.key)
        .json(&json!({"customer_id": customer_id, "photo_id": person, "quality": "sd", "items": cart(&garment, 1)}))
        .send()
        .await
        .expect(201);

    let user = everything.wait_for("user.created", 1, |r| body_of(r)["type"] == "user.created").await;
    assert_eq!(body_of(&user[0])["data"]["email"], email.as_str());
    assert!(verify(&secret, &user[0]), "user.created verifies with the secret");
    let done =
        everything.wait_for("tryon.session.completed", 1, |r| body_of(r)["type"] == "tryon.session.completed").await;
    assert_eq!(body_of(&done[0])["data"]["session_id"], session.body["id"]);
    assert!(verify(&secret, &done[0]));
    assert!(!verify(&tryon_secret, &done[0]), "another endpoint's secret does not verify it");
    let theirs =
        tryons_only.wait_for("the tryons-only copy", 1, |r| body_of(r)["type"] == "tryon.session.completed").await;
    assert!(verify(&tryon_secret, &theirs[0]));
    assert_eq!(header(&theirs[0], "content-type"), "application/json");
    assert!(header(&theirs[0], "webhook-id").starts_with("msg_"));
    // tryon.* only: no user event ever, though the other endpoint got it first.
    assert!(tryons_only.all().iter().all(|r| body_of(r)["type"].as_str().is_some_and(|t| t.starts_with("tryon."))));
    assert!(tryons_only.of_type("user.created").is_empty());
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_same_id_three_times_on_the_schedule() {
    let shop = shop(0).await;
    let receiver = Receiver::start(&[500, 503], 200).await;
    // The schedule shortened through the endpoint's own setting (1 s, 2 s).
    let (id, secret) = endpoint(&shop.key, &receiver.url, json!(["webhook.*"]), json!([1, 2])).await;
    let sent = post(&format!("/v1/webhooks/{id}/test")).api_key(&shop.key).send().await.expect(202);
    let attempts = receiver.wait_for("three attempts", 3, |_| true).await;
    let ids: Vec<String> = attempts.iter().map(|r| header(r, "webhook-id")).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    assert!(attempts.iter().all(|r| verify(&secret, r)));
    assert_eq!(body_of(&attempts[0])["type"], "webhook.test");
    let first_gap = attempts[1].at - attempts[0].at;
    let second_gap = attempts[2].at - attempts[1].at;
    assert!(first_gap >= Duration::from_millis(900), "first retry after ~1 s, was {first_gap:?}");
    assert!(second_gap >= Duration::from_millis(1900), "second retry after ~2 s, was {second_gap:?}");

    let log = eventually("the delivery to be marked succeeded", Duration::from_secs(10), || {
        let (key, id) = (shop.key.clone(), id.clone());
        async move {
            let all = deliveries(&key, &id).await;
            (all.first().is_some_and(|d| d["status"] == "succeeded")).then_some(all)
        }
    })
    .await;
    assert_eq!(log[0]["id"], sent.body["delivery_id"]);
    assert_eq!(log[0]["webhook_id"], ids[0].as_str());
    let codes: Vec<&Value> =
        log[0]["attempts"].as_array().expect("attempts").iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert!(log[0]["attempts"][0]["latency_ms"].is_u64());
}

#[tokio::test]
async fn ten_failed_deliveries_disable_the_endpoint_and_one_success_resets_the_count() {
    let shop = shop(0).await;
    let failing = Receiver::start(&[], 500).await;
    let watcher = Receiver::start(&[], 200).await;
    let (id, _) = endpoint(&shop.key, &failing.url, json!(["webhook.*"]), json!([])).await;
    endpoint(&shop.key, &watcher.url, json!(["webhook_endpoint.*"]), json!([])).await;
    let path = format!("/v1/webhooks/{id}");
    let failures = |key: String, path: String| async move {
        get(&path).api_key(&key).send().await.expect(200).body["consecutive_failures"].as_i64().expect("count")
    };

    // Five failures, then a success: the count starts again.
    for n in 1..=5 {
        post(&format!("{path}/test")).api_key(&shop.key).send().await.expect(202);
        failing.wait_for("a failed attempt", n, |_| true).await;
    }
    eventually("five failures counted", Duration::from_secs(10), || {
        let (key, path) = (shop.key.clone(), path.clone());
        async move { (failures(key, path).await == 5).then_some(()) }
    })
    .await;
    failing.answer(200);
    post(&format!("{path}/test")).api_key(&shop.key).send().await.expect(202);
    eventually("the success to reset the count", Duration::from_secs(20), || {
        let (key, path) = (shop.key.clone(), path.clone());
        async move { (failures(key, path).await == 0).then_some(()) }
    })
    .await;

    failing.answer(500);
    for n in 1..=10 {
        post(&format!("{path}/test")).api_key(&shop.key).send().await.expect(202);
        failing.wait_for("a failed attempt", 6 + n, |_| true).await;
    }
    let disabled = eventually("the endpoint to be disabled", Duration::from_secs(20), || {
        let (key, path) = (shop.key.clone(), path.clone());
        async move {
            let body = get(&path).api_key(&key).send().await.expect(200).body;
            (body["status"] == "disabled").then_some(body)
        }
    })
    .await;
    assert!(disabled["disabled_reason"].as_str().expect("reason").contains("10"));
    let notice =
        watcher.wait_for("webhook_endpoint.disabled", 1, |r| body_of(r)["type"] == "webhook_endpoint.disabled").await;
    assert_eq!(body_of(&notice[0])["data"]["endpoint_id"], id.as_str());
    let log = deliveries(&shop.key, &id).await;
    assert_eq!(log.iter().filter(|d| d["status"] == "failed").count(), 15);
    // Disabled: nothing more is sent. The watcher's test event, published
    // after the disabled endpoint's, arriving shows the earlier one was handled.
    let before = failing.all().len();
    post(&format!("{path}/test")).api_key(&shop.key).send().await.expect(202);
    let watcher_id = get("/v1/webhooks").api_key(&shop.key).send().await.expect(200).body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|e| e["url"] == watcher.url.as_str())
        .and_then(|e| e["id"].as_str().map(str::to_owned))
        .expect("watcher");
    post(&format!("/v1/webhooks/{watcher_id}/test")).api_key(&shop.key).send().await.expect(202);
    watcher.wait_for("the watcher's test event", 1, |r| body_of(r)["type"] == "webhook.test").await;
    assert_eq!(failing.all().len(), before, "a disabled endpoint receives nothing");
}

#[tokio::test]
async fn a_410_disables_at_once_and_a_failed_delivery_replays_with_the_same_id() {
    let shop = shop(0).await;
    let receiver = Receiver::start(&[500], 200).await;
    let (id, secret) = endpoint(&shop.key, &receiver.url, json!(["webhook.*"]), json!([])).await;
    let sent = post(&format!("/v1/webhooks/{id}/test")).api_key(&shop.key).send().await.expect(202);
    let first = receiver.wait_for("the first attempt", 1, |_| true).await;
    let failed = eventually("the delivery to fail", Duration::from_secs(10), || {
        let (key, id) = (shop.key.clone(), id.clone());
        async move {
            let all = deliveries(&key, &id).await;
            (all.first().is_some_and(|d| d["status"] == "failed")).then_some(all)
        }
    })
    .await;
    assert_eq!(failed[0]["attempts"][0]["status_code"], 500);
    let delivery_id = sent.body["delivery_id"].as_str().expect("id");
    let replay =
        post(&format!("/v1/webhooks/{id}/deliveries/{delivery_id}/replay")).api_key(&shop.key).send().await.expect(202);
    assert_eq!(replay.body["webhook_id"], header(&first[0], "webhook-id").as_str());
    let both = receiver.wait_for("the replay", 2, |_| true).await;
    assert_eq!(header(&both[1], "webhook-id"), header(&both[0], "webhook-id"));
    assert!(verify(&secret, &both[1]));
    eventually("the replayed delivery to succeed", Duration::from_secs(10), || {
        let (key, id) = (shop.key.clone(), id.clone());
        async move {
            let all = deliveries(&key, &id).await;
            (all.first().is_some_and(|d| d["status"] == "succeeded" && d["attempt_count"] == 2)).then_some(())
        }
    })
    .await;
    // Replaying a delivered one is a conflict.
    post(&format!("/v1/webhooks/{id}/deliveries/{delivery_id}/replay"))
        .api_key(&shop.key)
        .send()
        .await
        .expect_error(409, "conflict");

    // 410 Gone: disabled after one attempt, no retries.
    let gone = Receiver::start(&[], 410).await;
    let (gone_id, _) = endpoint(&shop.key, &gone.url, json!(["webhook.*"]), json!([5, 15, 45])).await;
    post(&format!("/v1/webhooks/{gone_id}/test")).api_key(&shop.key).send().await.expect(202);
    let endpoint = eventually("410 to disable the endpoint", Duration::from_secs(20), || {
        let (key, id) = (shop.key.clone(), gone_id.clone());
        async move {
            let body = get(&format!("/v1/webhooks/{id}")).api_key(&key).send().await.expect(200).body;
            (body["status"] == "disabled").then_some(body)
        }
    })
    .await;
    assert!(endpoint["disabled_reason"].as_str().expect("reason").contains("410"));
    assert_eq!(gone.all().len(), 1);
    // Re-enabled by a user, it receives again.
    patch(&format!("/v1/webhooks/{gone_id}"))
        .api_key(&shop.key)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .expect(200);
}

/// Every event fans out to each endpoint, so a tenant has at most 20; the
/// count follows deletes (schemathesis made hundreds, and the dispatcher's
/// fan-out starved everything else).
#[tokio::test]
async fn a_tenant_has_at_most_twenty_endpoints_and_a_delete_frees_one() {
    let shop = shop(0).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (id, _) = endpoint(&shop.key, &format!("https://hooks.example.com/{i}"), json!(["*"]), json!([5])).await;
        ids.push(id);
    }
    let refused = post("/v1/webhooks")
        .api_key(&shop.key)
        .json(&json!({"url": "https://hooks.example.com/21"}))
        .send()
        .await
        .expect_error(409, "conflict");
    assert_eq!(refused.body["details"], json!({"reason": "too_many_endpoints", "max_endpoints": 20}));
    let listed = get("/v1/webhooks?limit=100").api_key(&shop.key).send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(20), "the refusal created nothing");

    delete(&format!("/v1/webhooks/{}", ids[0])).api_key(&shop.key).send().await.expect(204);
    delete(&format!("/v1/webhooks/{}", ids[0])).api_key(&shop.key).send().await.expect_error(404, "not_found");
    endpoint(&shop.key, "https://hooks.example.com/again", json!(["*"]), json!([5])).await;
    post("/v1/webhooks")
        .api_key(&shop.key)
        .json(&json!({"url": "https://hooks.example.com/22"}))
        .send()
        .await
        .expect_error(409, "conflict");
}

#[tokio::test]
async fn endpoints_are_private_to_their_tenant_and_secrets_are_shown_once() {
    let a = shop(0).await;
    let b = shop(0).await;
    let receiver = Receiver::start(&[], 200).await;
    let (id, secret) = endpoint(&a.key, &receiver.url, json!(["*"]), json!([5])).await;
    let shown = get(&format!("/v1/webhooks/{id}")).api_key(&a.key).send().await.expect(200);
    assert!(!shown.body.to_string().contains(&secret[6..]), "the secret is not shown again");
    let listed = get("/v1/webhooks").api_key(&a.key).send().await.expect(200);
    assert!(!listed.body.to_string().contains(&secret[6..]));
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/webhooks/{id}")),
        (reqwest::Method::PATCH, format!("/v1/webhooks/{id}")),
        (reqwest::Method::DELETE, format!("/v1/webhooks/{id}")),
        (reqwest::Method::POST, format!("/v1/webhooks/{id}/test")),
        (reqwest::Method::POST, format!("/v1/webhooks/{id}/rotate-secret")),
        (reqwest::Method::GET, format!("/v1/webhooks/{id}/deliveries")),
    ] {
        Call::new(method, &path).api_key(&b.key).json(&json!({})).send().await.expect_error(404, "not_found");
    }
    assert_eq!(get("/v1/webhooks").api_key(&b.key).send().await.expect(200).body["data"], json!([]));
    // Rotation: the new secret signs what follows.
    let rotated = post(&format!("/v1/webhooks/{id}/rotate-secret")).api_key(&a.key).send().await.expect(200);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    post(&format!("/v1/webhooks/{id}/test")).api_key(&a.key).send().await.expect(202);
    let got = receiver.wait_for("the test event", 1, |r| body_of(r)["type"] == "webhook.test").await;
    assert!(verify(&new_secret, &got[0]) && !verify(&secret, &got[0]));
    // Subscribed to `*`, the endpoint also receives the tenant's audit trail:
    // here the rotation's entry, emitted in the rotating transaction.
    let rotation = receiver
        .wait_for("the rotation's audit entry", 1, |r| {
            let body = body_of(r);
            body["type"] == "audit.entry.created"
                && body["data"]["resource_id"] == id.as_str()
                && body["data"]["action"] == "update"
        })
        .await;
    assert_eq!(body_of(&rotation[0])["data"]["resource_type"], "webhook_endpoint");
    assert!(verify(&new_secret, &rotation[0]));
    // Validation names the field.
    let reply = post("/v1/webhooks")
        .api_key(&a.key)
        .json(&json!({"url": "ftp://files.example.com", "event_types": ["Bad Type"]}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    // Every bad field at once, in the body's order (`json!` sorts the keys).
    assert_eq!(reply.invalid_fields(), ["event_types[0]", "url"]);
    // Keys need webhooks:manage.
    let other = create_api_key(&a.owner.access_token, &["tryons:read"]).await;
    let refused = get("/v1/webhooks").api_key(&other.secret).send().await.expect_error(403, "insufficient_scope");
    assert_eq!(refused.body["details"]["required_scope"], "webhooks:manage");
    delete(&format!("/v1/webhooks/{id}")).api_key(&a.key).send().await.expect(204);
    get(&format!("/v1/webhooks/{id}")).api_key(&a.key).send().await.expect_error(404, "not_found");
}

/// Not a test: the measurement behind docs/performance.md's webhook figure.
/// One dispatcher (this process) attempts `WEBHOOK_BENCH_DELIVERIES`
/// (default 500) deliveries to a local receiver that answers 200, in SQS-sized
/// batches of 10 handled concurrently, as the Lambda would. Run with
/// `make bench-webhooks`.
#[tokio::test]
#[ignore = "a measurement, run by make bench-webhooks"]
async fn webhook_delivery_throughput() {
    let total: usize = std::env::var("WEBHOOK_BENCH_DELIVERIES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let shop = shop(0).await;
    let receiver = Receiver::start(&[], 200).await;
    let (endpoint_id, _) = endpoint(&shop.key, &receiver.url, json!(["bench.*"]), json!([])).await;
    let (state, clients) = test_state().await;
    let dispatcher = webhook_dispatcher::Dispatcher {
        store: state.store.clone(),
        sqs: clients.sqs.clone(),
        deliveries_queue_url: std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES").expect("queue"),
        http: shared::outbound::Fetcher::new(true).expect("client"),
        sealing: state.keys.sealing.clone(),
    };
    let tenant = uuid::Uuid::parse_str(&shop.owner.tenant_id).expect("tenant");
    let endpoint = uuid::Uuid::parse_str(&endpoint_id).expect("endpoint");
    let scope = shared::auth::TenantScope::for_tests(tenant);
    let mut jobs = Vec::with_capacity(total);
    for i in 0..total {
        let event = shared::events::DomainEvent {
            id: uuid::Uuid::now_v7(),
            event_type: "bench.delivery".into(),
            version: 1,
            tenant_id: tenant,
            occurred_at: chrono::Utc::now(),
            data: json!({"n": i}),
        };
        let delivery = shared::store::webhooks::Delivery {
            id: event.id,
            endpoint_id: endpoint,
            tenant_id: tenant,
            event_type: event.event_type.clone(),
            payload: webhook_dispatcher::payload(&event),
            status: "pending".into(),
            attempts: Vec::new(),
            round_attempts: 0,
            next_attempt_at: None,
            created_at: shared::domain::now_rfc3339(),
            completed_at: None,
        };
        assert!(state.store.create_delivery(&scope, &delivery).await.expect("delivery"));
        jobs.push(webhook_dispatcher::DeliveryJob {
            tenant_id: tenant,
            endpoint_id: endpoint,
            delivery_id: event.id,
            not_before: 0,
        });
    }
    let started = Instant::now();
    for batch in jobs.chunks(10) {
        let outcomes = futures::future::join_all(batch.iter().map(|job| dispatcher.attempt(job))).await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(webhook_dispatcher::Outcome::Delivered))), "{outcomes:?}");
    }
    let elapsed = started.elapsed();
    assert_eq!(receiver.all().len(), total);
    println!(
        "webhook deliveries: {total} in {:.2} s = {:.1} deliveries/s (one dispatcher, batches of 10, local receiver, moto)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );
}
