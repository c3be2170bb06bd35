//! The async path: tenant.created goes through the real bus, rule, queue and
//! worker; the worker is idempotent; a poison message ends in the DLQ.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use platform_tests::*;
use serde_json::{Value, json};
use tenant_provisioner::{Outcome, Provisioner};

async fn wait_until_active(token: &str, id: &str) -> Value {
    eventually("the tenant to become active", Duration::from_secs(30), || async {
        let reply = get(&format!("/v1/tenants/{id}")).token(token).send().await.expect(200);
        (reply.body["status"] == "active").then_some(reply.body)
    })
    .await
}

async fn invitations(tenant_id: &str) -> Vec<String> {
    let items = tenant_items(tenant_id, "INVITATION#").await;
    items.iter().filter_map(|i| i.get("email").and_then(|e| e.as_s().ok()).cloned()).collect()
}

fn queue_url() -> String {
    std::env::var("QUEUE_URL_TENANT_PROVISIONER").expect("queue url")
}

/// The EventBridge envelope an SQS target receives for `tenant.created`.
fn envelope(tenant: &Value) -> String {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4(), "detail-type": "tenant.created", "source": "saas.platform",
        "account": "000000000000", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "id": uuid::Uuid::now_v7(), "type": "tenant.created", "tenant_id": tenant["id"],
            "occurred_at": "2026-01-01T00:00:00Z",
            "data": {
                "tenant_id": tenant["id"], "name": tenant["name"], "slug": tenant["slug"],
                "admin_email": tenant["admin_email"], "plan": tenant["plan"], "parent_id": null, "created_by": null
            }
        }
    })
    .to_string()
}

#[tokio::test]
async fn a_created_tenant_becomes_active_through_bus_queue_and_worker() {
    let token = platform_admin_token().await;
    let mut body = valid_tenant_body();
    body["admin_email"] = json!(format!("it-admin-{}@example.com", unique()));
    let created = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
    assert_eq!(created["status"], "provisioning");
    let id = created["id"].as_str().expect("id");

    let active = wait_until_active(&token, id).await;
    assert_eq!(active["is_active"], true);
    assert_eq!(active["onboarding"]["admin_invitation_sent"], true);
    assert!(active["onboarding"]["provisioned_at"].is_string());
    assert_eq!(invitations(id).await, [body["admin_email"].as_str().expect("email")]);
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing() {
    let token = platform_admin_token().await;
    let mut body = valid_tenant_body();
    body["admin_email"] = json!(format!("it-admin-{}@example.com", unique()));
    let created = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
    let id = created["id"].as_str().expect("id");
    let before = wait_until_active(&token, id).await;

    // Through the real queue: the poller picks the duplicate up and deletes it.
    let (state, clients) = test_state().await;
    let sent =
        clients.sqs.send_message().queue_url(queue_url()).message_body(envelope(&created)).send().await.expect("send");
    let sent_id = sent.message_id().expect("id").to_owned();
    // And directly, as Lambda would hand it over again.
    let provisioner = Provisioner { store: state.store.clone() };
    let mut message = SqsMessage::default();
    message.message_id = Some(sent_id);
    message.body = Some(envelope(&created));
    assert_eq!(shared::worker::Worker::handle(&provisioner, &message).await.expect("handled"), Outcome::AlreadyDone);

    eventually("the duplicate to be consumed", Duration::from_secs(30), || async {
        let attrs = clients
            .sqs
            .get_queue_attributes()
            .queue_url(queue_url())
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .expect("attributes");
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attrs.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        };
        (count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages) == 0
            && count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible) == 0)
            .then_some(())
    })
    .await;
    let after = get(&format!("/v1/tenants/{id}")).token(&token).send().await.expect(200).body;
    assert_eq!(after, before);
    assert_eq!(invitations(id).await.len(), 1);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_event_activate_once() {
    let (state, _clients) = test_state().await;
    let token = platform_admin_token().await;
    // A tenant in `provisioning` whose event we deliver by hand, twice at once.
    let created = post("/v1/tenants").token(&token).json(&valid_tenant_body()).send().await.expect(201).body;
    let provisioner = Provisioner { store: state.store.clone() };
    let mut event = SqsEvent::default();
    for n in 0..2 {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("dup-{n}"));
        m.body = Some(envelope(&created));
        event.records.push(m);
    }
    let response = shared::worker::handle_batch(&provisioner, event).await;
    assert!(response.batch_item_failures.is_empty());
    wait_until_active(&token, created["id"].as_str().expect("id")).await;
}

#[tokio::test]
async fn a_malformed_message_is_reported_as_a_batch_failure_and_ends_in_the_dlq() {
    let (state, clients) = test_state().await;
    let provisioner = Provisioner { store: state.store.clone() };
    let marker = format!("poison-{}", unique());
    let mut event = SqsEvent::default();
    let mut good = SqsMessage::default();
    let created = post("/v1/tenants")
        .token(&platform_admin_token().await)
        .json(&valid_tenant_body())
        .send()
        .await
        .expect(201)
        .body;
    good.message_id = Some("good".into());
    good.body = Some(envelope(&created));
    let mut bad = SqsMessage::default();
    bad.message_id = Some("bad".into());
    bad.body = Some(marker.clone());
    event.records = vec![good, bad];
    let response = shared::worker::handle_batch(&provisioner, event).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["bad"]);

    clients.sqs.send_message().queue_url(queue_url()).message_body(&marker).send().await.expect("send");
    let dlq = std::env::var("DLQ_URL_TENANT_PROVISIONER").expect("dlq url");
    eventually("the poison message in the DLQ", Duration::from_secs(60), || async {
        let output = clients
            .sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive");
        output.messages().iter().any(|m| m.body() == Some(marker.as_str())).then_some(())
    })
    .await;
}

/// The event comes from the committed transaction, not from the request: a
/// tenant written straight to the table (no handler, no PutEvents) is still
/// provisioned, by the outbox relay reading the table's stream.
#[tokio::test]
async fn a_tenant_committed_without_any_request_is_provisioned_through_the_outbox() {
    let (state, _clients) = test_state().await;
    let body = valid_tenant_body();
    let create: shared::domain::tenant::TenantCreate =
        shared::web::extract::parse_body(body.to_string().as_bytes()).expect("valid");
    let tenant = create.into_tenant(uuid::Uuid::now_v7()).expect("valid");
    let scope = shared::auth::TenantScope::for_tests(tenant.id);
    state
        .store
        .create_tenant(&scope, &tenant, None, None, &shared::audit::AuditContext::system("test"))
        .await
        .expect("created");
    let token = platform_admin_token().await;
    wait_until_active(&token, &tenant.id.to_string()).await;
}
