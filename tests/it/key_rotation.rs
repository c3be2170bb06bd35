//! Key rotation (docs/runbook.md#rotating-secrets): what was made under the
//! old keys still works after `keys rotate all`, in a process that read the
//! rotated rings at its cold start, and what that process makes under the
//! new keys works in one that read them before the rotation.
//!
//! Rotating the stack's keys mid-suite is safe by the same design it tests:
//! every process already holds the staged key a rotation promotes.

use std::time::Duration;

use platform_tests::*;
use reqwest::Method;
use serde_json::json;
use shared::keys::{self, Rings};

use crate::webhooks::{Receiver, endpoint, verify};

fn kid(token: &str) -> String {
    jsonwebtoken::decode_header(token).expect("header").kid.expect("kid")
}

#[tokio::test]
async fn cursors_idempotent_answers_webhook_secrets_and_tokens_made_before_a_rotation_work_after_it() {
    let shop = shop(0).await;
    let owner = &shop.owner;
    let token = owner.access_token.clone();
    // The free plan holds three projects: two, and one made idempotently.
    for name in ["One", "Two"] {
        post("/v1/projects").token(&token).json(&json!({"name": name})).send().await.expect(201);
    }
    let idempotency_key = format!("idem-{}", uuid::Uuid::new_v4());
    let created = post("/v1/projects")
        .token(&token)
        .header("idempotency-key", &idempotency_key)
        .json(&json!({"name": "Three"}))
        .send()
        .await
        .expect(201);
    let first_page = get("/v1/projects?limit=1").token(&token).send().await.expect(200).body;
    let cursor = first_page["next_cursor"].as_str().expect("a cursor").to_owned();
    let receiver = Receiver::start(&[], 200).await;
    let (endpoint_id, secret) = endpoint(&shop.key, &receiver.url, json!(["rotation.*"]), json!([])).await;

    // `keys rotate all`, as the operator's tool does it.
    let (platform, signing) = key_documents().await;
    let old_signing_key = current_signing_key().await;
    let (rotated, rotated_signing) = keys::rotate(&platform, &signing, Rings::All).expect("rotate");
    let clients = shared::aws::AwsClients::new(&shared::aws::load_sdk_config().await);
    keys::write_documents(
        clients.secrets.client(),
        &std::env::var(keys::PLATFORM_KEYS_ENV).expect("platform keys secret"),
        &std::env::var(keys::SIGNING_KEYS_ENV).expect("signing keys secret"),
        &rotated,
        &rotated_signing,
    )
    .await
    .expect("write the rotated keys");
    assert_ne!(rotated.cursor.current, platform.cursor.current);
    assert_ne!(rotated.sealing.current, platform.sealing.current);

    // A cold start after the rotation.
    let after = ServerProcess::start("warn").await;

    // The token signed before (by the previous key) is still accepted, and
    // the cursor signed before still pages on.
    let second_page = after
        .call(Method::GET, &format!("/v1/projects?limit=1&cursor={cursor}"))
        .token(&token)
        .send()
        .await
        .expect(200)
        .body;
    assert_ne!(second_page["data"][0]["id"], first_page["data"][0]["id"], "the cursor moved on: {second_page}");
    assert!(second_page["next_cursor"].as_str().expect("a next cursor").starts_with(&rotated.cursor.current));

    // The stored idempotent answer opens: the same body, replayed.
    let replayed = after
        .call(Method::POST, "/v1/projects")
        .token(&token)
        .header("idempotency-key", &idempotency_key)
        .json(&json!({"name": "Three"}))
        .send()
        .await
        .expect(201);
    assert_eq!(replayed.body, created.body);
    assert_eq!(replayed.headers.get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));

    // Tokens: the new process signs with the promoted key; the process that
    // loaded the keys before the rotation (the suite's server) accepts them,
    // and the JWKS lists the previous, current and staged keys.
    let login = after
        .call(Method::POST, "/v1/auth/login")
        .json(&json!({"email": owner.email, "password": owner.password}))
        .send()
        .await
        .expect(200)
        .body;
    let new_token = login["access_token"].as_str().expect("token").to_owned();
    let new_kid = kid(&new_token);
    assert_eq!(new_kid, shared::auth::jwt::public_key_id(&rotated_signing_current(&rotated_signing)).expect("kid"));
    assert_ne!(new_kid, kid(&token));
    assert_eq!(kid(&token), shared::auth::jwt::public_key_id(&old_signing_key.public_pem).expect("kid"));
    let me = get("/v1/auth/me").token(&new_token).send().await.expect(200).body;
    assert_eq!(me["id"], owner.user_id.as_str());
    let jwks = after.call(Method::GET, "/.well-known/jwks.json").send().await.expect(200).body;
    let published: Vec<&str> =
        jwks["keys"].as_array().expect("keys").iter().filter_map(|k| k["kid"].as_str()).collect();
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(published.contains(&kid(&token).as_str()) && published.contains(&new_kid.as_str()));

    // The webhook secret sealed before opens with the rotated ring: a
    // dispatcher that read the keys after the rotation delivers, signed with
    // the secret the endpoint was created with.
    let (state, clients) = test_state().await;
    assert_eq!(state.keys.sealing.current_key().id, rotated.sealing.current);
    let dispatcher = webhook_dispatcher::Dispatcher {
        store: state.store.clone(),
        sqs: clients.sqs.clone(),
        deliveries_queue_url: std::env::var("QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES").expect("queue"),
        http: shared::outbound::Fetcher::new(true).expect("client"),
        sealing: state.keys.sealing.clone(),
    };
    let tenant = uuid::Uuid::parse_str(&owner.tenant_id).expect("tenant");
    let scope = shared::auth::TenantScope::for_tests(tenant);
    let event = shared::events::DomainEvent {
        id: uuid::Uuid::now_v7(),
        event_type: "rotation.checked".into(),
        version: 1,
        tenant_id: tenant,
        occurred_at: chrono::Utc::now(),
        data: json!({"after": "rotation"}),
    };
    let delivery = shared::store::webhooks::Delivery {
        id: event.id,
        endpoint_id: uuid::Uuid::parse_str(&endpoint_id).expect("endpoint"),
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
    let job = webhook_dispatcher::DeliveryJob {
        tenant_id: tenant,
        endpoint_id: delivery.endpoint_id,
        delivery_id: delivery.id,
        not_before: 0,
    };
    let outcome = dispatcher.attempt(&job).await.expect("attempt");
    assert!(matches!(outcome, webhook_dispatcher::Outcome::Delivered), "{outcome:?}");
    let received = eventually("the delivery", Duration::from_secs(10), || {
        let all = receiver.all();
        async move { (!all.is_empty()).then_some(all) }
    })
    .await;
    assert!(verify(&secret, &received[0]), "signed with the secret made before the rotation");
}

fn rotated_signing_current(doc: &keys::SigningKeysDoc) -> String {
    doc.signing.keys.iter().find(|k| k.id == doc.signing.current).expect("current").public_pem.clone()
}
