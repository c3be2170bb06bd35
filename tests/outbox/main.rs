//! The transactional outbox under a bus outage (issue 10's fault test), in a
//! test binary of its own: cargo runs test binaries one after another, so
//! the outage it causes delays no other test's events.
//!
//! With PutEvents failing for real (the relay's bus points at a closed
//! port), a tenant update, a user creation and a try-on completion all
//! commit and answer their callers; their events wait in the outbox; once
//! the bus is back, each reaches a subscribed webhook receiver exactly once.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post as post_route};
use platform_tests::*;
use serde_json::{Value, json};
use shared::auth::TenantScope;
use tryon_worker::{Outcome, TryonWorker, engine::LocalEngine, outbound::Fetcher};
use uuid::Uuid;

type Deliveries = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver on 127.0.0.1: (webhook-id, body) of every POST.
async fn receiver() -> (String, Deliveries) {
    let received: Deliveries = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            post_route(|State(received): State<Deliveries>, headers: HeaderMap, body: Bytes| async move {
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                received.lock().expect("lock").push((id, body));
                "ok"
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

const WATCHED: [&str; 3] = ["tenant.updated", "user.created", "tryon.session.completed"];

#[tokio::test]
async fn events_committed_while_the_bus_is_down_reach_webhooks_once_it_is_back() {
    // Arrange, with the bus up: a tenant with credits, a key, a customer with
    // photos, and an endpoint subscribed to the three events.
    let Shop { owner, key } = shop(5).await;
    let (url, received) = receiver().await;
    let endpoint = post("/v1/webhooks")
        .api_key(&key)
        .json(&json!({"url": url, "event_types": WATCHED}))
        .send()
        .await
        .expect(201)
        .body;
    let customer = customer(&key, &format!("fault-{}", unique())).await;
    let person = upload_photo(&key, &customer, &png(40, 80, [20, 40, 200]), "person").await;
    let garment = upload_photo(&key, &customer, &png(20, 20, [230, 30, 30]), "garment").await;

    // Act: the bus goes away; three changes are made.
    let relay = &app().relay;
    relay.set_bus_reachable(false);
    let updated = patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .json(&json!({"description": "changed during an outage"}))
        .send()
        .await;
    let user = post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({
            "email": format!("outage-{}@example.com", unique()), "password": PASSWORD,
            "first_name": "Olga", "last_name": "Outage", "role": "user",
        }))
        .send()
        .await;
    let tryon = post("/v1/tryons")
        .api_key(&key)
        .json(&json!({"customer_id": customer, "photo_id": person, "quality": "sd",
                       "items": [{"product_id": "sku-1", "garment_photo_id": garment}]}))
        .send()
        .await;
    // The item's event waits in the outbox too, so the worker is driven here
    // as its queue would drive it.
    let session_id = tryon.body["id"].as_str().map(str::to_owned);
    let rendered = match &session_id {
        Some(id) => {
            let (state, _) = test_state().await;
            let worker = TryonWorker {
                store: state.store.clone(),
                blobs: state.blobs.clone(),
                engine: LocalEngine,
                garments: Fetcher::new(true).expect("fetcher"),
            };
            let scope = TenantScope::for_tests(Uuid::parse_str(&owner.tenant_id).expect("tenant"));
            Some(worker.process(&scope, Uuid::parse_str(id).expect("session"), 0).await)
        }
        None => None,
    };
    let waiting: Vec<String> = outbox_events(&owner.tenant_id)
        .await
        .iter()
        .filter_map(|event| event["type"].as_str().map(str::to_owned))
        .collect();
    let before_recovery: Vec<String> = received.lock().expect("lock").iter().map(|(id, _)| id.clone()).collect();
    relay.set_bus_reachable(true);

    // Assert: every change committed and answered while the bus was down.
    updated.expect(200);
    user.expect(201);
    tryon.expect(201);
    assert!(matches!(rendered, Some(Ok(Outcome::Completed))), "the item rendered: {rendered:?}");
    for event_type in WATCHED {
        assert!(waiting.iter().any(|t| t == event_type), "{event_type} is in the outbox: {waiting:?}");
    }
    assert!(before_recovery.is_empty(), "nothing was delivered during the outage: {before_recovery:?}");
    let session = get(&format!("/v1/tryons/{}", session_id.as_deref().unwrap_or_default()))
        .api_key(&key)
        .send()
        .await
        .expect(200);
    assert_eq!(session.body["status"], "completed");

    // ... and once the bus is back, each event reaches the receiver once.
    let delivered = eventually("the three events at the receiver", Duration::from_secs(60), || {
        let received = received.clone();
        async move {
            let all = received.lock().expect("lock").clone();
            WATCHED.iter().all(|t| all.iter().any(|(_, body)| body["type"] == *t)).then_some(all)
        }
    })
    .await;
    let endpoint_id = endpoint["id"].as_str().expect("endpoint id");
    // The delivery log is the dispatcher's own record: one delivery per event.
    let log = eventually("three successful deliveries in the log", Duration::from_secs(30), || {
        let key = key.clone();
        let path = format!("/v1/webhooks/{endpoint_id}/deliveries?limit=100");
        async move {
            let body = get(&path).api_key(&key).send().await.expect(200).body;
            let data = body["data"].as_array().cloned().unwrap_or_default();
            (data.len() == 3 && data.iter().all(|d| d["status"] == "succeeded")).then_some(data)
        }
    })
    .await;
    for event_type in WATCHED {
        let of_type: Vec<&(String, Value)> = delivered.iter().filter(|(_, b)| b["type"] == event_type).collect();
        assert_eq!(of_type.len(), 1, "{event_type} delivered once: {of_type:?}");
        assert_eq!(of_type[0].1["tenant_id"], owner.tenant_id.as_str());
    }
    let mut ids: Vec<&str> = delivered.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), delivered.len(), "no webhook-id twice: {delivered:?}");
    assert_eq!(log.len(), 3, "one delivery per event: {log:?}");
}
