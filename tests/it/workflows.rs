//! Workflows end to end on the local stack: moto runs the interpreter state
//! machine, the local server's pollers run the real step worker. An inbound
//! integration event starts a workflow that creates a task, waits for an
//! approval, calls a local fake provider (failing twice, then answering),
//! evaluates a condition and sends a notification webhook; an approval
//! timeout, a cancel and a rerun end cleanly; definitions are checked whole
//! and versioned; everything is private to its tenant.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Json, body::Bytes, extract::State, http::HeaderMap, routing::post as post_route};
use platform_tests::*;
use serde_json::{Value, json};

use crate::integrations::{create_provider, deliver, generic_headers};

const RUN_DEADLINE: Duration = Duration::from_secs(60);

type Seen = Arc<Mutex<Vec<Value>>>;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A webhook receiver: every body it gets.
async fn receiver() -> (String, Seen) {
    async fn record(State(seen): State<Seen>, body: Bytes) -> &'static str {
        seen.lock().expect("seen").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        "ok"
    }
    let seen: Seen = Arc::default();
    let url = serve(axum::Router::new().route("/hook", post_route(record)).with_state(seen.clone())).await;
    (format!("{url}/hook"), seen)
}

/// A provider API that fails its first `failures` calls with 503, then
/// answers 200 with the amount it was sent; it records each call.
async fn fake_provider(failures: usize) -> (String, Seen) {
    async fn orders(
        State((seen, failures)): State<(Seen, usize)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (axum::http::StatusCode, Json<Value>) {
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let mut seen = seen.lock().expect("seen");
        seen.push(json!({"body": body, "authorization": header("authorization"), "idempotency_key": header("idempotency-key")}));
        if seen.len() <= failures {
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "busy"})));
        }
        (axum::http::StatusCode::OK, Json(json!({"status": "synced", "amount": body["amount"]})))
    }
    let seen: Seen = Arc::default();
    let url =
        serve(axum::Router::new().route("/orders", post_route(orders)).with_state((seen.clone(), failures))).await;
    (url, seen)
}

async fn create_workflow(owner: &Member, body: &Value) -> Value {
    post("/v1/workflows").token(&owner.access_token).json(body).send().await.expect(201).body
}

/// A manual run with `input`; its execution id.
async fn start(owner: &Member, workflow_id: &str, input: Value) -> String {
    let reply = post(&format!("/v1/workflows/{workflow_id}/executions"))
        .token(&owner.access_token)
        .json(&json!({"input": input}))
        .send()
        .await
        .expect(202);
    reply.body["id"].as_str().expect("execution id").to_owned()
}

async fn executions(owner: &Member, workflow_id: &str) -> Vec<Value> {
    let reply = get(&format!("/v1/workflows/{workflow_id}/executions")).token(&owner.access_token).send().await;
    reply.expect(200).body["data"].as_array().expect("data").clone()
}

async fn execution(owner: &Member, workflow_id: &str, execution_id: &str) -> Value {
    get(&format!("/v1/workflows/{workflow_id}/executions/{execution_id}"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200)
        .body
}

/// Polls the execution until it is in `status`, then reads it through the
/// API. The table is polled: the API's per-user rate limit would count
/// every poll.
async fn execution_when(owner: &Member, workflow_id: &str, execution_id: &str, what: &str, status: &str) -> Value {
    eventually(what, RUN_DEADLINE, || async {
        let items = tenant_items(&owner.tenant_id, &format!("WFEXEC#{execution_id}")).await;
        let stored = items.first().and_then(|item| item.get("status")?.as_s().ok().cloned());
        (stored.as_deref() == Some(status)).then_some(())
    })
    .await;
    let now = execution(owner, workflow_id, execution_id).await;
    assert_eq!(now["status"], status, "{now:#}");
    now
}

fn step_summary(detail: &Value) -> Vec<(String, String, i64)> {
    detail["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
                s["attempt"].as_i64().unwrap_or_default(),
            )
        })
        .collect()
}

fn owned(steps: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    steps.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), *c)).collect()
}

#[tokio::test]
async fn an_inbound_event_runs_a_task_an_approval_a_retried_call_a_condition_and_a_notification() {
    let owner = register_owner().await;
    let (hook, notifications) = receiver().await;
    post("/v1/webhooks")
        .token(&owner.access_token)
        .json(&json!({"url": hook, "event_types": ["workflow.notification"]}))
        .send()
        .await
        .expect(201);
    let project =
        post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Payments"})).send().await.expect(201);
    let project_id = project.body["id"].as_str().expect("project id").to_owned();
    let (crm_url, crm_calls) = fake_provider(2).await;
    let source = create_provider(&owner, &json!({"name": "payment_service", "secret_key": "your_secret_key"})).await;
    let crm = create_provider(
        &owner,
        &json!({"name": "crm", "api_base_url": crm_url, "auth_type": "bearer", "secret_key": "crm-secret-123"}),
    )
    .await;
    let workflow = create_workflow(
        &owner,
        &json!({
            "name": "Payment review",
            "trigger": {"type": "inbound_webhook", "provider_id": source.id,
                        "filter": {"data.event_type": "payment.succeeded"}},
            "steps": [
                {"name": "open_task", "type": "task", "project_id": project_id,
                 "title": "Review payment {{ trigger.data.data.payment_id }}"},
                {"name": "approve", "type": "approval", "approvers": [owner.user_id], "timeout_seconds": 600},
                {"name": "update_crm", "type": "integration", "provider_id": crm.id, "method": "POST", "path": "/orders",
                 "field_mapping": {"order_id": "trigger.data.data.payment_id", "amount": "trigger.data.data.amount"},
                 "retry_policy": {"max_attempts": 2, "interval_seconds": 1, "backoff_rate": 1.0}},
                {"name": "large", "type": "condition", "expression": "steps.update_crm.output.body.amount > 1000",
                 "if_false": "end"},
                {"name": "notify", "type": "notification",
                 "message": "Payment {{ trigger.data.data.payment_id }} synced",
                 "data": {"amount": "steps.update_crm.output.body.amount"}}
            ]
        }),
    )
    .await;
    let workflow_id = workflow["id"].as_str().expect("id").to_owned();
    assert_eq!(workflow["version"], 1);

    // Another event type of the same provider starts nothing.
    let other = json!({"event_type": "payment.failed", "event_id": "evt_other", "data": {}}).to_string();
    deliver(&source.path, &generic_headers("your_secret_key", &other), &other).await.expect(202);
    let body = json!({"event_type": "payment.succeeded", "event_id": "evt_pay_1",
                      "data": {"payment_id": "pay_123", "amount": 1500}})
    .to_string();
    deliver(&source.path, &generic_headers("your_secret_key", &body), &body).await.expect(202);

    let execution_id = eventually("the event started an execution", RUN_DEADLINE, || async {
        let items = tenant_items(&owner.tenant_id, "WFEXEC#").await;
        items.first().and_then(|item| item.get("id")?.as_s().ok().cloned())
    })
    .await;
    let waiting =
        execution_when(&owner, &workflow_id, &execution_id, "the execution waits for its approval", "waiting_approval")
            .await;
    assert_eq!(waiting["started_by"], "inbound_webhook");
    assert_eq!(waiting["approval"]["step"], "approve");
    assert_eq!(executions(&owner, &workflow_id).await.len(), 1, "the payment.failed event started nothing");
    let tasks = get(&format!("/v1/projects/{project_id}/tasks")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(tasks.body["data"][0]["title"], "Review payment pay_123");

    post(&format!("/v1/workflows/{workflow_id}/executions/{execution_id}/approvals/approve"))
        .token(&owner.access_token)
        .json(&json!({"decision": "approve", "comment": "looks right"}))
        .send()
        .await
        .expect(200);
    let done = execution_when(&owner, &workflow_id, &execution_id, "the execution succeeds", "succeeded").await;
    assert_eq!(
        step_summary(&done),
        owned(&[
            ("open_task", "succeeded", 1),
            ("approve", "approved", 1),
            ("update_crm", "failed", 1),
            ("update_crm", "failed", 2),
            ("update_crm", "succeeded", 3),
            ("large", "succeeded", 1),
            ("notify", "succeeded", 1),
        ])
    );
    let steps = done["steps"].as_array().expect("steps");
    assert_eq!(steps[1]["output"]["comment"], "looks right");
    assert_eq!(steps[2]["error"], "HTTP 503 from crm");
    assert_eq!(steps[5]["output"]["result"], true);
    assert!(steps.iter().all(|s| s["duration_ms"].as_i64().is_some_and(|ms| ms >= 0)));

    let calls = crm_calls.lock().expect("calls").clone();
    assert_eq!(calls.len(), 3, "two failures and the call that worked");
    for call in &calls {
        assert_eq!(call["body"], json!({"order_id": "pay_123", "amount": 1500}));
        assert_eq!(call["authorization"], "Bearer crm-secret-123");
    }
    let keys: std::collections::BTreeSet<&str> = calls.iter().filter_map(|c| c["idempotency_key"].as_str()).collect();
    assert_eq!(keys.len(), 3, "each try has its own idempotency key");

    let notification = eventually("the notification webhook arrived", RUN_DEADLINE, || {
        let seen = notifications.lock().expect("seen").clone();
        async move { seen.into_iter().find(|n| n["type"] == "workflow.notification") }
    })
    .await;
    assert_eq!(notification["data"]["message"], "Payment pay_123 synced");
    assert_eq!(notification["data"]["data"], json!({"amount": 1500}));
    assert_eq!(notification["data"]["execution_id"], execution_id.as_str());
}

#[tokio::test]
async fn an_approval_timeout_a_cancel_and_a_rerun_end_executions_cleanly() {
    let owner = register_owner().await;
    let workflow = create_workflow(
        &owner,
        &json!({
            "name": "Needs a yes",
            "trigger": {"type": "manual"},
            "steps": [
                {"name": "approve", "type": "approval", "timeout_seconds": 2},
                {"name": "notify", "type": "notification", "message": "approved: {{ trigger.data.order }}"}
            ]
        }),
    )
    .await;
    let workflow_id = workflow["id"].as_str().expect("id").to_owned();

    // Nobody decides: the approval's timeout ends the execution.
    let timed = start(&owner, &workflow_id, json!({"order": "o-1"})).await;
    let ended = execution_when(&owner, &workflow_id, &timed, "the approval times out", "timed_out").await;
    assert_eq!(ended["error"]["code"], "step_timed_out");
    assert_eq!(step_summary(&ended), owned(&[("approve", "timed_out", 1)]));
    let alerts = eventually("the failure alert is in the outbox", RUN_DEADLINE, || async {
        let events = outbox_events(&owner.tenant_id).await;
        events
            .into_iter()
            .find(|e| e["type"] == "workflow.execution.failed" && e["data"]["execution_id"] == timed.as_str())
    })
    .await;
    assert_eq!(alerts["data"]["status"], "timed_out");
    post(&format!("/v1/workflows/{workflow_id}/executions/{timed}/approvals/approve"))
        .token(&owner.access_token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect_error(409, "conflict");

    // A cancel while it waits (an approval that would wait 10 minutes):
    // ended at once, the approval closed.
    let patient = create_workflow(
        &owner,
        &json!({"name": "Patient", "trigger": {"type": "manual"},
                "steps": [{"name": "approve", "type": "approval", "timeout_seconds": 600},
                          {"name": "notify", "type": "notification", "message": "approved: {{ trigger.data.order }}"}]}),
    )
    .await;
    let patient_id = patient["id"].as_str().expect("id").to_owned();
    let cancelled = start(&owner, &patient_id, json!({"order": "o-2"})).await;
    execution_when(&owner, &patient_id, &cancelled, "it waits", "waiting_approval").await;
    let reply = post(&format!("/v1/workflows/{patient_id}/executions/{cancelled}/cancel"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(reply.body["status"], "cancelled");
    assert_eq!(reply.body["approval"], Value::Null);
    let detail = execution(&owner, &patient_id, &cancelled).await;
    assert_eq!(step_summary(&detail), owned(&[("approve", "cancelled", 1)]));
    post(&format!("/v1/workflows/{patient_id}/executions/{cancelled}/cancel"))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");

    // The cancelled one again, from its approval: approved this time.
    let rerun = post(&format!("/v1/workflows/{patient_id}/executions/{cancelled}/rerun"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(202);
    assert_eq!(rerun.body["rerun_of"], cancelled.as_str());
    let rerun_id = rerun.body["id"].as_str().expect("id").to_owned();
    execution_when(&owner, &patient_id, &rerun_id, "the rerun waits", "waiting_approval").await;
    post(&format!("/v1/workflows/{patient_id}/executions/{rerun_id}/approvals/approve"))
        .token(&owner.access_token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect(200);
    let done = execution_when(&owner, &patient_id, &rerun_id, "the rerun succeeds", "succeeded").await;
    assert_eq!(done["trigger"]["data"]["order"], "o-2", "a rerun keeps its trigger");
    assert_eq!(step_summary(&done), owned(&[("approve", "approved", 1), ("notify", "succeeded", 1)]));
    assert_eq!(done["steps"][1]["input"]["message"], "approved: o-2");
    // The cancelled one never went on to its notification.
    let detail = execution(&owner, &patient_id, &cancelled).await;
    assert_eq!(detail["status"], "cancelled");
    assert_eq!(step_summary(&detail).len(), 1);

    // A rejection ends it failed.
    let rejected = start(&owner, &patient_id, json!({"order": "o-3"})).await;
    execution_when(&owner, &patient_id, &rejected, "it waits", "waiting_approval").await;
    let reply = post(&format!("/v1/workflows/{patient_id}/executions/{rejected}/approvals/approve"))
        .token(&owner.access_token)
        .json(&json!({"decision": "reject"}))
        .send()
        .await
        .expect(200);
    assert_eq!(reply.body["status"], "failed");
    assert_eq!(reply.body["error"]["code"], "approval_rejected");
}

#[tokio::test]
async fn a_failing_step_follows_its_on_error_and_a_false_condition_ends_early() {
    let owner = register_owner().await;
    let (crm_url, _calls) = fake_provider(usize::MAX).await;
    let crm =
        create_provider(&owner, &json!({"name": "crm", "api_base_url": crm_url, "secret_key": "crm-secret-123"})).await;
    let workflow = create_workflow(
        &owner,
        &json!({
            "name": "Best effort",
            "trigger": {"type": "manual"},
            "steps": [
                {"name": "small", "type": "condition", "expression": "trigger.data.amount < 10", "if_true": "end"},
                {"name": "sync", "type": "integration", "provider_id": crm.id, "method": "POST", "path": "/orders",
                 "on_error": "goto", "error_step": "apologise"},
                {"name": "skipped", "type": "notification", "message": "never"},
                {"name": "apologise", "type": "notification", "message": "sync failed for {{ trigger.data.amount }}"},
                {"name": "strict", "type": "integration", "provider_id": crm.id, "method": "POST", "path": "/orders"}
            ]
        }),
    )
    .await;
    let workflow_id = workflow["id"].as_str().expect("id").to_owned();
    let small = start(&owner, &workflow_id, json!({"amount": 5})).await;
    let done = execution_when(&owner, &workflow_id, &small, "the small one ends", "succeeded").await;
    assert_eq!(step_summary(&done), owned(&[("small", "succeeded", 1)]));

    let large = start(&owner, &workflow_id, json!({"amount": 500})).await;
    let failed = execution_when(&owner, &workflow_id, &large, "the large one fails", "failed").await;
    assert_eq!(
        step_summary(&failed),
        owned(&[
            ("small", "succeeded", 1),
            ("sync", "failed", 1),
            ("apologise", "succeeded", 1),
            ("strict", "failed", 1)
        ])
    );
    assert_eq!(failed["error"]["code"], "step_failed");
    assert_eq!(failed["error"]["step"], "strict");
    // The failure is an open alert too (beside `workflow.execution.failed`).
    let alerts = get("/v1/integrations/alerts?status=open").token(&owner.access_token).send().await.expect(200).body;
    let alert = alerts["data"].as_array().and_then(|a| a.iter().find(|a| a["subject_id"] == large.as_str()).cloned());
    let alert = alert.expect("an alert for the failed execution");
    assert_eq!(
        (alert["kind"].as_str(), alert["workflow_id"].as_str()),
        (Some("workflow_failed"), Some(workflow_id.as_str()))
    );
    let resolved = post(&format!("/v1/integrations/alerts/{}/resolve", alert["id"].as_str().expect("id")))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    assert_eq!(resolved.body["status"], "resolved");
    assert_eq!(resolved.body["resolved_by"], owner.user_id.as_str());
    assert_eq!(failed["steps"][2]["input"]["message"], "sync failed for 500");
}

#[tokio::test]
async fn definitions_are_checked_whole_and_each_replace_is_a_new_version() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let foreign =
        post("/v1/projects").token(&other.access_token).json(&json!({"name": "Theirs"})).send().await.expect(201);
    let refused = post("/v1/workflows")
        .token(&owner.access_token)
        .json(&json!({
            "name": "Broken",
            "trigger": {"type": "event", "event_type": "workflow.notification"},
            "steps": [
                {"name": "task", "type": "task", "project_id": foreign.body["id"], "title": "x"},
                {"name": "check", "type": "condition", "expression": "trigger.data.amount >", "if_true": "nowhere"},
                {"name": "check", "type": "notification"},
                {"name": "end", "type": "approval", "message": "not mine"},
                {"name": "call", "type": "integration", "method": "POST", "path": "orders", "on_error": "goto"}
            ]
        }))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let fields: Vec<&str> = refused.body["details"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    for field in [
        "trigger.event_type",
        "steps[1].expression",
        "steps[2].message",
        "steps[3].name",
        "steps[3].message",
        "steps[4].provider_id",
        "steps[4].path",
        "steps[4].error_step",
    ] {
        assert!(fields.contains(&field), "{field} is named in {fields:?}");
    }
    // The store-side checks: another tenant's project reads as absent.
    let refused = post("/v1/workflows")
        .token(&owner.access_token)
        .json(&json!({"name": "Foreign", "trigger": {"type": "manual"},
                      "steps": [{"name": "task", "type": "task", "project_id": foreign.body["id"], "title": "x"}]}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(refused.body["details"]["fields"][0]["field"], "steps[0].project_id");

    let first = create_workflow(
        &owner,
        &json!({"name": "v", "trigger": {"type": "manual"},
                "steps": [{"name": "say", "type": "notification", "message": "one"}]}),
    )
    .await;
    let id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(first["steps"][0]["on_error"], "fail");
    assert_eq!(first["steps"][0]["timeout_seconds"], 300);
    let second = put(&format!("/v1/workflows/{id}"))
        .token(&owner.access_token)
        .json(&json!({"name": "v", "trigger": {"type": "manual"},
                      "steps": [{"name": "say", "type": "notification", "message": "two"}]}))
        .send()
        .await
        .expect(200);
    assert_eq!(second.body["version"], 2);
    assert_eq!(second.body["steps"][0]["message"], "two");
    let listed = get("/v1/workflows").token(&owner.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().expect("data").len(), 1);
    let inactive = put(&format!("/v1/workflows/{id}"))
        .token(&owner.access_token)
        .json(&json!({"name": "v", "trigger": {"type": "manual"}, "is_active": false,
                      "steps": [{"name": "say", "type": "notification", "message": "three"}]}))
        .send()
        .await
        .expect(200);
    assert_eq!(inactive.body["version"], 3);
    post(&format!("/v1/workflows/{id}/executions"))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");
    delete(&format!("/v1/workflows/{id}")).token(&owner.access_token).send().await.expect(204);
    get(&format!("/v1/workflows/{id}")).token(&owner.access_token).send().await.expect_error(404, "not_found");
}

#[tokio::test]
async fn workflows_and_executions_are_private_to_their_tenant_and_role() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let member = member_with_role(&owner, "user").await;
    let workflow = create_workflow(
        &owner,
        &json!({"name": "private", "trigger": {"type": "manual"},
                "steps": [{"name": "approve", "type": "approval", "approvers": [member.user_id], "timeout_seconds": 600}]}),
    )
    .await;
    let id = workflow["id"].as_str().expect("id").to_owned();
    let started = post(&format!("/v1/workflows/{id}/executions")).token(&owner.access_token).send().await.expect(202);
    let execution_id = started.body["id"].as_str().expect("id").to_owned();
    execution_when(&owner, &id, &execution_id, "it waits", "waiting_approval").await;

    let t = &other.access_token;
    let body = json!({"name": "x", "trigger": {"type": "manual"}, "steps": [{"name": "a", "type": "approval"}]});
    get(&format!("/v1/workflows/{id}")).token(t).send().await.expect_error(404, "not_found");
    put(&format!("/v1/workflows/{id}")).token(t).json(&body).send().await.expect_error(404, "not_found");
    delete(&format!("/v1/workflows/{id}")).token(t).send().await.expect_error(404, "not_found");
    post(&format!("/v1/workflows/{id}/executions")).token(t).send().await.expect_error(404, "not_found");
    get(&format!("/v1/workflows/{id}/executions")).token(t).send().await.expect_error(404, "not_found");
    let at = format!("/v1/workflows/{id}/executions/{execution_id}");
    get(&at).token(t).send().await.expect_error(404, "not_found");
    post(&format!("{at}/cancel")).token(t).send().await.expect_error(404, "not_found");
    post(&format!("{at}/rerun")).token(t).send().await.expect_error(404, "not_found");
    post(&format!("{at}/approvals/approve"))
        .token(t)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect_error(404, "not_found");
    assert!(get("/v1/workflows").token(t).send().await.expect(200).body["data"].as_array().expect("data").is_empty());

    // A plain member manages nothing, but decides the approval it is listed on.
    get("/v1/workflows").token(&member.access_token).send().await.expect_error(403, "insufficient_permissions");
    let bystander = member_with_role(&owner, "user").await;
    post(&format!("{at}/approvals/approve"))
        .token(&bystander.access_token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    let decided = post(&format!("{at}/approvals/approve"))
        .token(&member.access_token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .expect(200);
    assert_eq!(decided.body["status"], "succeeded");

    // A key needs its scope.
    let key = create_api_key(&owner.access_token, &["workflows:manage"]).await;
    get("/v1/workflows").api_key(&key.secret).send().await.expect(200);
    let narrow = create_api_key(&owner.access_token, &["integrations:manage"]).await;
    get("/v1/workflows").api_key(&narrow.secret).send().await.expect_error(403, "insufficient_scope");
}

#[tokio::test]
async fn a_schedule_trigger_starts_executions_on_its_schedule_until_the_trigger_changes() {
    let owner = register_owner().await;
    for (trigger, field) in [
        (json!({"type": "schedule"}), "trigger.schedule"),
        (json!({"type": "schedule", "schedule": "rate(10 seconds)"}), "trigger.schedule"),
        (json!({"type": "manual", "schedule": "rate(1 hour)"}), "trigger.schedule"),
        (json!({"type": "schedule", "schedule": "rate(1 hour)", "filter": {"data.x": 1}}), "trigger.filter"),
    ] {
        let body = json!({"name": "x", "trigger": trigger, "steps": [{"name": "n", "type": "condition", "expression": "true"}]});
        let refused = post("/v1/workflows").token(&owner.access_token).json(&body).send().await;
        assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), [field], "{trigger}");
    }
    let workflow = create_workflow(
        &owner,
        &json!({
            "name": "Every minute",
            "trigger": {"type": "schedule", "schedule": "rate(1 minute)"},
            "steps": [{"name": "scheduled", "type": "condition", "expression": "trigger.type == 'schedule'", "if_false": "end"}]
        }),
    )
    .await;
    assert_eq!(workflow["trigger"]["schedule"], "rate(1 minute)");
    let workflow_id = workflow["id"].as_str().expect("id").to_owned();
    let name = schedule_name("workflow", &workflow_id);
    let schedule = tenant_schedule(&name).await.expect("the workflow's schedule");
    assert!(schedule["target_arn"].as_str().is_some_and(|a| a.ends_with("workflow-triggers-queue")), "{schedule}");

    // The local server fires it every 2 s: executions start, each with the
    // firing's time in its trigger.
    let execution_id = eventually("a scheduled execution that succeeded", RUN_DEADLINE, || async {
        let items = tenant_items(&owner.tenant_id, "WFEXEC#").await;
        items.iter().find_map(|item| {
            let stored = json_of(&aws_sdk_dynamodb::types::AttributeValue::M(item.clone()));
            (stored["status"] == "succeeded").then(|| stored["id"].as_str().map(str::to_owned)).flatten()
        })
    })
    .await;
    let done = execution(&owner, &workflow_id, &execution_id).await;
    assert_eq!(done["trigger"]["type"], "schedule", "{done:#}");
    assert_eq!(done["trigger"]["schedule"], "rate(1 minute)");
    assert!(done["trigger"]["scheduled_time"].as_str().is_some_and(|t| t.starts_with("20")), "{done:#}");
    assert_eq!(step_summary(&done), owned(&[("scheduled", "succeeded", 1)]));

    // A manual trigger now: the schedule is deleted with the new version.
    let replaced = put(&format!("/v1/workflows/{workflow_id}"))
        .token(&owner.access_token)
        .json(&json!({
            "name": "Every minute",
            "trigger": {"type": "manual"},
            "steps": [{"name": "scheduled", "type": "condition", "expression": "true"}]
        }))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["version"], 2);
    assert!(tenant_schedule(&name).await.is_none(), "a manual workflow has no schedule");
    // Scheduled again and deleted: the schedule goes with the workflow.
    let scheduled_again = json!({
        "name": "Nightly",
        "trigger": {"type": "schedule", "schedule": "cron(0 2 * * ? *)"},
        "steps": [{"name": "scheduled", "type": "condition", "expression": "true"}]
    });
    put(&format!("/v1/workflows/{workflow_id}"))
        .token(&owner.access_token)
        .json(&scheduled_again)
        .send()
        .await
        .expect(200);
    assert_eq!(tenant_schedule(&name).await.expect("remade")["expression"], "cron(0 2 * * ? *)");
    delete(&format!("/v1/workflows/{workflow_id}")).token(&owner.access_token).send().await.expect(204);
    assert!(tenant_schedule(&name).await.is_none(), "a deleted workflow has no schedule");
}
