//! Sync connections end to end on the local stack: a local fake provider
//! serves 1,000 customer records over 10 pages; the real integrations
//! worker (the local server's poller on the FIFO sync queue) reads them
//! into customers, page by page, handing the run on when its local 2 s
//! budget is spent. A page that fails once is read again from the
//! checkpoint (never the pages before it), a second incremental run reads
//! only what changed, conflicts resolve per the connection's rule, and
//! everything is private to its tenant.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    routing::get as get_route,
};
use platform_tests::*;
use serde_json::{Value, json};

use crate::integrations::create_provider;

/// The sync tests take about 80 s on their own (all three runs of the
/// 1,000-record test included); beside the whole suite on the
/// one-call-at-a-time emulator, its first run took over 120 s (CI run 30).
const RUN_DEADLINE: Duration = Duration::from_secs(360);
const PAGE_SIZE: usize = 100;

/// The fake provider's records and what it was asked.
#[derive(Default)]
struct Source {
    /// id -> record; served sorted by (updated_at, id).
    records: Vec<Value>,
    /// Page offsets that fail once (the first request for them).
    fail_once: Vec<usize>,
    /// Every request fails (503) while set.
    down: bool,
    /// Each request's (cursor, updated_since).
    calls: Vec<(Option<String>, Option<String>)>,
    /// Each request's `X-API-Key`.
    api_keys: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Source>>;

fn record(n: usize, minute: u32, name: &str) -> Value {
    json!({
        "id": format!("c-{n:04}"),
        "email": format!("shopper{n}@example.com"),
        "full_name": name,
        "plan": if n.is_multiple_of(2) { "gold" } else { "basic" },
        "updated_at": format!("2026-01-01T{:02}:{:02}:{:02}Z", minute / 60, minute % 60, n % 60),
    })
}

/// A provider API: `GET /customers?cursor=<offset>&updated_since=<time>`,
/// 100 records a page, `next_cursor` until the last.
async fn fake_provider(source: Shared) -> String {
    async fn customers(
        State(source): State<Shared>,
        headers: axum::http::HeaderMap,
        Query(query): Query<HashMap<String, String>>,
    ) -> (StatusCode, Json<Value>) {
        let mut source = source.lock().expect("source");
        source.api_keys.push(headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned));
        let cursor = query.get("cursor").cloned();
        let since = query.get("updated_since").cloned();
        source.calls.push((cursor.clone(), since.clone()));
        if source.down {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": "maintenance"})));
        }
        let offset: usize = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        if let Some(at) = source.fail_once.iter().position(|o| *o == offset) {
            source.fail_once.remove(at);
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "database is busy"})));
        }
        let mut matching: Vec<&Value> = source
            .records
            .iter()
            .filter(|r| since.as_deref().is_none_or(|s| r["updated_at"].as_str().unwrap_or_default() > s))
            .collect();
        matching.sort_by_key(|r| (r["updated_at"].as_str().unwrap_or_default().to_owned(), r["id"].to_string()));
        let page: Vec<Value> = matching.iter().skip(offset).take(PAGE_SIZE).map(|r| (*r).clone()).collect();
        let next = (offset + PAGE_SIZE < matching.len()).then(|| (offset + PAGE_SIZE).to_string());
        (StatusCode::OK, Json(json!({"data": page, "next_cursor": next})))
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/customers", get_route(customers)).with_state(source);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn provider_for(owner: &Member, api_base_url: &str) -> String {
    let name = format!("crm_{}", &unique()[..8]);
    create_provider(owner, &json!({"name": name, "api_base_url": api_base_url})).await.id
}

async fn connection(owner: &Member, provider_id: &str, rule: &str) -> Value {
    post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&json!({
            "name": "CRM customers",
            "source_type": "api",
            "target_type": "customers",
            "sync_mode": "incremental_sync",
            "conflict_resolution": rule,
            "source": {"provider_id": provider_id, "path": "/customers", "cursor_field": "updated_at"},
            "field_mapping": {"email": "email", "name": "full_name", "metadata.plan": "plan"}
        }))
        .send()
        .await
        .expect(201)
        .body
}

/// Starts a run and waits for it to end; the finished run.
async fn run_to_end(owner: &Member, connection_id: &str) -> Value {
    let started = post(&format!("/v1/integrations/sync-connections/{connection_id}/runs"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(202);
    assert_eq!(started.body["status"], "queued");
    let run_id = started.body["id"].as_str().expect("id").to_owned();
    // Watched in the table: polling the API would spend the owner's rate
    // limit (100 a minute) in a few seconds.
    let item = format!("SYNCRUN#{connection_id}#{run_id}");
    let started_at = std::time::Instant::now();
    loop {
        let items = tenant_items(&owner.tenant_id, &item).await;
        let stored = items.first().map(|i| json_of(&aws_sdk_dynamodb::types::AttributeValue::M(i.clone())));
        let status = stored.as_ref().and_then(|s| s["status"].as_str().map(str::to_owned));
        if matches!(status.as_deref(), Some("succeeded" | "failed")) {
            break;
        }
        assert!(started_at.elapsed() < RUN_DEADLINE, "the run did not end within {RUN_DEADLINE:?}: {stored:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let path = format!("/v1/integrations/sync-connections/{connection_id}/runs/{run_id}");
    let run = get(&path).token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(run["progress"]["done"], true, "{run}");
    run
}

/// The customer holding `external_id`, found by its claim item (the list's
/// `external_id` filter pages through a thousand customers) and read
/// through the API.
async fn customer_by_external_id(owner: &Member, external_id: &str) -> Value {
    let claims = tenant_items(&owner.tenant_id, &format!("CUSTOMEREXT#{external_id}")).await;
    let claim = claims
        .iter()
        .find(|c| c.get("SK").and_then(|sk| sk.as_s().ok()) == Some(&format!("CUSTOMEREXT#{external_id}")));
    let id = claim.and_then(|c| c.get("customer_id")).and_then(|v| v.as_s().ok()).expect("a claim for the external id");
    get(&format!("/v1/customers/{id}")).token(&owner.access_token).send().await.expect(200).body
}

#[tokio::test]
async fn an_incremental_sync_lands_a_thousand_records_resumes_at_its_checkpoint_and_then_reads_only_changes() {
    let owner = register_owner().await;
    let source: Shared = Arc::default();
    {
        let mut s = source.lock().expect("source");
        s.records = (1..=1000).map(|n| record(n, (n / 100) as u32, &format!("Shopper {n}"))).collect();
        // The seventh page fails once: the worker dies on it, the message
        // comes back, and the run goes on from the sixth page's checkpoint.
        s.fail_once = vec![600];
    }
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let connection = connection(&owner, &provider_id, "source_wins").await;
    let id = connection["id"].as_str().expect("id");
    assert_eq!(connection["sync_mode"], "incremental");
    assert_eq!(connection["checkpoint"], Value::Null);

    let first = run_to_end(&owner, id).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["counts"]["pages"], 10);
    assert_eq!(first["counts"]["records_read"], 1000);
    assert_eq!(first["counts"]["records_created"], 1000);
    assert_eq!(first["counts"]["errors"], 0);
    assert!(first["invocations"].as_i64().unwrap_or(0) >= 2, "a retry at least: {first}");
    // Every page was asked for once, but the failed one twice: the retry
    // resumed at the checkpoint instead of starting over.
    let calls = source.lock().expect("source").calls.clone();
    let mut asked: HashMap<Option<String>, usize> = HashMap::new();
    for (cursor, since) in &calls {
        assert_eq!(since, &None, "a first incremental run reads everything");
        *asked.entry(cursor.clone()).or_default() += 1;
    }
    assert_eq!(asked.len(), 10, "{calls:?}");
    for (cursor, times) in &asked {
        let expected = if cursor.as_deref() == Some("600") { 2 } else { 1 };
        assert_eq!(*times, expected, "page {cursor:?} in {calls:?}");
    }
    // 1,000 customers, one per record: no duplicates.
    let claims = tenant_items(&owner.tenant_id, "CUSTOMEREXT#").await;
    assert_eq!(claims.len(), 1000);
    let one = customer_by_external_id(&owner, "c-0042").await;
    assert_eq!(one["name"], "Shopper 42");
    assert_eq!(one["email"], "shopper42@example.com");
    assert_eq!(one["metadata"]["plan"], "gold");
    let after_first = get(&format!("/v1/integrations/sync-connections/{id}")).token(&owner.access_token).send().await;
    let checkpoint = after_first.expect(200).body["checkpoint"].clone();
    assert_eq!(checkpoint, json!("2026-01-01T00:10:40Z"), "the largest updated_at seen");

    // Five records change at the source; one customer also changed here.
    {
        let mut s = source.lock().expect("source");
        s.calls.clear();
        for n in [5, 250, 500, 750, 999] {
            s.records[n - 1] = record(n, 24 * 60 - 1, &format!("Renamed {n}"));
        }
    }
    post("/v1/customers")
        .token(&owner.access_token)
        .json(&json!({"external_id": "c-0250", "name": "Edited here"}))
        .send()
        .await
        .expect(200);
    let second = run_to_end(&owner, id).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["started_after"], checkpoint);
    assert_eq!(second["counts"]["records_read"], 5, "only the changes: {second}");
    assert_eq!(second["counts"]["records_updated"], 5);
    assert_eq!(second["counts"]["records_created"], 0);
    assert_eq!(second["counts"]["conflicts"], 1, "c-0250 changed on both sides");
    let calls = source.lock().expect("source").calls.clone();
    assert_eq!(calls, vec![(None, Some("2026-01-01T00:10:40Z".to_owned()))]);
    assert_eq!(customer_by_external_id(&owner, "c-0250").await["name"], "Renamed 250", "source_wins");
    assert_eq!(customer_by_external_id(&owner, "c-0999").await["name"], "Renamed 999");
    assert_eq!(tenant_items(&owner.tenant_id, "CUSTOMEREXT#").await.len(), 1000);

    let runs = get(&format!("/v1/integrations/sync-connections/{id}/runs")).token(&owner.access_token).send().await;
    let runs = runs.expect(200).body["data"].as_array().expect("data").clone();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], second["id"], "newest first");

    // A reset reads everything again; nothing changed, so nothing is written.
    let reset = post(&format!("/v1/integrations/sync-connections/{id}/reset")).token(&owner.access_token).send().await;
    assert_eq!(reset.expect(200).body["checkpoint"], Value::Null);
    let third = run_to_end(&owner, id).await;
    assert_eq!(third["counts"]["records_read"], 1000);
    assert_eq!(third["counts"]["records_unchanged"], 1000, "{third}");
    assert_eq!(third["counts"]["records_updated"], 0);
}

#[tokio::test]
async fn target_wins_keeps_an_edited_customer_and_manual_holds_it_for_a_person() {
    let owner = register_owner().await;
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=3).map(|n| record(n, 1, &format!("Shopper {n}"))).collect();
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let keep = connection(&owner, &provider_id, "target_wins").await;
    let keep_id = keep["id"].as_str().expect("id");
    assert_eq!(run_to_end(&owner, keep_id).await["counts"]["records_created"], 3);

    post("/v1/customers")
        .token(&owner.access_token)
        .json(&json!({"external_id": "c-0002", "name": "Edited here"}))
        .send()
        .await
        .expect(200);
    {
        let mut s = source.lock().expect("source");
        s.records[1] = record(2, 30, "Renamed at the source");
        s.records[2] = record(3, 30, "Also renamed");
    }
    let kept = run_to_end(&owner, keep_id).await;
    assert_eq!(kept["counts"]["conflicts"], 1, "{kept}");
    assert_eq!(kept["counts"]["records_updated"], 1, "c-0003 had no conflict");
    assert_eq!(customer_by_external_id(&owner, "c-0002").await["name"], "Edited here");
    assert_eq!(customer_by_external_id(&owner, "c-0003").await["name"], "Also renamed");

    // A manual connection over the same customers: it never wrote them, so
    // each is a conflict, held with both versions.
    let hold = connection(&owner, &provider_id, "manual").await;
    let hold_id = hold["id"].as_str().expect("id");
    let held = run_to_end(&owner, hold_id).await;
    assert_eq!(held["counts"]["conflicts"], 3, "{held}");
    assert_eq!(held["counts"]["records_unchanged"], 3);
    let conflicts =
        get(&format!("/v1/integrations/sync-connections/{hold_id}/conflicts")).token(&owner.access_token).send().await;
    let conflicts = conflicts.expect(200).body["data"].as_array().expect("data").clone();
    assert_eq!(conflicts.len(), 3);
    let second = conflicts.iter().find(|c| c["key"] == "c-0002").expect("c-0002");
    assert_eq!(second["source_fields"]["name"], "Renamed at the source");
    assert_eq!(second["target_fields"]["name"], "Edited here");
    assert_eq!(customer_by_external_id(&owner, "c-0002").await["name"], "Edited here");

    // A person settles them: the source's version for one, the customer's
    // for another; both leave the list, and the next run holds neither.
    let resolve = format!("/v1/integrations/sync-connections/{hold_id}/conflicts/resolve");
    let settled =
        post(&resolve).token(&owner.access_token).json(&json!({"key": "c-0002", "keep": "source"})).send().await;
    assert_eq!(settled.expect(200).body["target"]["name"], "Renamed at the source");
    assert_eq!(customer_by_external_id(&owner, "c-0002").await["name"], "Renamed at the source");
    let kept = post(&resolve).token(&owner.access_token).json(&json!({"key": "c-0003", "keep": "target"})).send().await;
    assert_eq!(kept.expect(200).body["target"]["name"], "Also renamed");
    post(&resolve)
        .token(&owner.access_token)
        .json(&json!({"key": "c-0002", "keep": "source"}))
        .send()
        .await
        .expect_error(404, "not_found");
    let refused =
        post(&resolve).token(&owner.access_token).json(&json!({"key": "c-0001", "keep": "both"})).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["keep"]);
    let left =
        get(&format!("/v1/integrations/sync-connections/{hold_id}/conflicts")).token(&owner.access_token).send().await;
    let left: Vec<Value> = left.expect(200).body["data"].as_array().expect("data").clone();
    assert_eq!(left.iter().map(|c| c["key"].as_str().unwrap_or_default()).collect::<Vec<_>>(), ["c-0001"]);
    // Read everything again (the checkpoint is past these records).
    post(&format!("/v1/integrations/sync-connections/{hold_id}/reset"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    let again = run_to_end(&owner, hold_id).await;
    assert_eq!(again["counts"]["records_read"], 3, "{again}");
    assert_eq!(again["counts"]["conflicts"], 1, "only c-0001, never settled: {again}");
}

#[tokio::test]
async fn connections_are_checked_private_to_their_tenant_and_run_one_at_a_time() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=2).map(|n| record(n, 1, "x")).collect();
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let others_provider = provider_for(&other, &url).await;

    let refused = post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&json!({
            "name": "bad",
            "sync_mode": "sometimes",
            "source": {"provider_id": provider_id, "path": "customers"},
            "field_mapping": {"photo_count": "n"}
        }))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let mut fields = refused.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["field_mapping.photo_count", "source.path", "sync_mode"]);
    let incremental_without_cursor = post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&json!({"name": "x", "sync_mode": "incremental", "source": {"provider_id": provider_id, "path": "/c"}}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(incremental_without_cursor.invalid_fields(), ["source.cursor_field"]);
    // Another tenant's provider is not one this tenant can read from.
    let foreign = post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&json!({"name": "x", "sync_mode": "full", "source": {"provider_id": others_provider, "path": "/c"}}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(foreign.invalid_fields(), ["source.provider_id"]);

    let made = connection(&owner, &provider_id, "source_wins").await;
    let id = made["id"].as_str().expect("id");
    for path in [
        format!("/v1/integrations/sync-connections/{id}"),
        format!("/v1/integrations/sync-connections/{id}/runs"),
        format!("/v1/integrations/sync-connections/{id}/conflicts"),
    ] {
        get(&path).token(&other.access_token).send().await.expect_error(404, "not_found");
    }
    post(&format!("/v1/integrations/sync-connections/{id}/runs"))
        .token(&other.access_token)
        .send()
        .await
        .expect_error(404, "not_found");
    patch(&format!("/v1/integrations/sync-connections/{id}"))
        .token(&other.access_token)
        .json(&json!({"name": "taken"}))
        .send()
        .await
        .expect_error(404, "not_found");
    delete(&format!("/v1/integrations/sync-connections/{id}"))
        .token(&other.access_token)
        .send()
        .await
        .expect_error(404, "not_found");
    let listed = get("/v1/integrations/sync-connections").token(&other.access_token).send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]));
    let developer = member_with_role(&owner, "developer").await;
    get("/v1/integrations/sync-connections")
        .token(&developer.access_token)
        .send()
        .await
        .expect_error(403, "insufficient_permissions");

    // One run at a time: a second start while the first is queued or running.
    let first = post(&format!("/v1/integrations/sync-connections/{id}/runs")).token(&owner.access_token).send().await;
    let first = first.expect(202).body;
    let busy = post(&format!("/v1/integrations/sync-connections/{id}/runs"))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");
    assert_eq!(busy.body["details"]["reason"], "run_in_progress");
    assert_eq!(busy.body["details"]["run_id"], first["id"]);
    let updated = patch(&format!("/v1/integrations/sync-connections/{id}"))
        .token(&owner.access_token)
        .json(&json!({"conflict_resolution": "latest_timestamp", "sync_mode": "delta_sync"}))
        .send()
        .await
        .expect(200);
    assert_eq!(updated.body["sync_mode"], "delta");
    assert_eq!(updated.body["conflict_resolution"], "latest_timestamp");
    let audit = audit_entries(&owner.tenant_id).await;
    assert!(
        audit.iter().any(|(action, new)| action == "update" && new["conflict_resolution"] == "latest_timestamp"),
        "{audit:?}"
    );
}

/// The connection's runs as stored, oldest first (the table, not the API:
/// the API's rate limit would count every poll).
async fn stored_runs(owner: &Member, connection_id: &str) -> Vec<Value> {
    let items = tenant_items(&owner.tenant_id, &format!("SYNCRUN#{connection_id}#")).await;
    items.iter().map(|i| json_of(&aws_sdk_dynamodb::types::AttributeValue::M(i.clone()))).collect()
}

#[tokio::test]
async fn a_scheduled_connection_runs_on_its_schedule_reads_only_changes_and_its_schedule_follows_it() {
    let owner = register_owner().await;
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=3).map(|n| record(n, 1, "first")).collect();
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let base = json!({
        "name": "Nightly CRM", "sync_mode": "incremental",
        "source": {"provider_id": provider_id, "path": "/customers", "cursor_field": "updated_at"},
        "field_mapping": {"email": "email", "name": "full_name"}
    });
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    for (extra, field) in [
        (json!({"frequency": "scheduled"}), "schedule"),
        (json!({"schedule": "rate(30 seconds)"}), "schedule"),
        (json!({"schedule": "cron(0 2 ? * ? *)"}), "schedule"),
        (json!({"schedule": "every night"}), "schedule"),
        (json!({"frequency": "manual", "schedule": "rate(1 hour)"}), "schedule"),
        (json!({"frequency": "hourly"}), "frequency"),
    ] {
        let refused = post("/v1/integrations/sync-connections")
            .token(&owner.access_token)
            .json(&with(extra.clone()))
            .send()
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(refused.invalid_fields(), [field], "{extra}");
    }

    // Seed 001's `frequency` with Scheduler's expression: the schedule is
    // made in EventBridge Scheduler, firing into the integration jobs queue.
    let made = post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&with(json!({"frequency": "scheduled", "schedule": "rate(1 minute)"})))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!((made["frequency"].as_str(), made["schedule"].as_str()), (Some("scheduled"), Some("rate(1 minute)")));
    let id = made["id"].as_str().expect("id").to_owned();
    let name = schedule_name("sync", &id);
    let schedule = tenant_schedule(&name).await.expect("the connection's schedule");
    assert_eq!(schedule["expression"], "rate(1 minute)");
    assert_eq!(schedule["state"], "ENABLED");
    assert!(schedule["target_arn"].as_str().is_some_and(|a| a.ends_with("integration-jobs-queue")), "{schedule}");
    let input: Value = serde_json::from_str(schedule["input"].as_str().expect("input")).expect("json input");
    assert_eq!(input["scheduled"]["id"], id.as_str());
    assert_eq!(input["scheduled"]["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(input["scheduled"]["scheduled_time"], "<aws.scheduler.scheduled-time>");

    // The local server fires it (every 2 s in the suite); the first run
    // lands the three records.
    let first = eventually("a scheduled run that succeeded", RUN_DEADLINE, || async {
        let runs = stored_runs(&owner, &id).await;
        runs.into_iter().find(|r| r["trigger"] == "schedule" && r["status"] == "succeeded")
    })
    .await;
    assert_eq!(first["counts"]["records_created"].as_f64(), Some(3.0), "{first}");
    assert_eq!(customer_by_external_id(&owner, "c-0002").await["name"], "first");

    // A changed record: a later firing's run reads only it.
    source.lock().expect("source").records[1] = record(2, 90, "changed");
    let changed = eventually("a scheduled run that read the change", RUN_DEADLINE, || async {
        let runs = stored_runs(&owner, &id).await;
        runs.into_iter().find(|r| r["status"] == "succeeded" && r["counts"]["records_updated"].as_f64() == Some(1.0))
    })
    .await;
    assert_eq!(changed["counts"]["records_read"].as_f64(), Some(1.0), "{changed}");
    assert_eq!(changed["trigger"], "schedule");
    assert_eq!(customer_by_external_id(&owner, "c-0002").await["name"], "changed");
    // Runs never overlap: at most one run was ever active at a time, and
    // each firing made at most one run (ids derive from the firing time).
    let runs = stored_runs(&owner, &id).await;
    assert!(runs.iter().all(|r| r["status"] != "failed"), "{runs:?}");

    // Inactive: the schedule stays, disabled. Another expression: changed.
    let path = format!("/v1/integrations/sync-connections/{id}");
    let paused = patch(&path).token(&owner.access_token).json(&json!({"is_active": false})).send().await.expect(200);
    assert_eq!(paused.body["schedule"], "rate(1 minute)");
    assert_eq!(tenant_schedule(&name).await.expect("kept")["state"], "DISABLED");
    let nightly = json!({"is_active": true, "schedule": "cron(0 2 * * ? *)"});
    patch(&path).token(&owner.access_token).json(&nightly).send().await.expect(200);
    let schedule = tenant_schedule(&name).await.expect("kept");
    assert_eq!(
        (schedule["expression"].as_str(), schedule["state"].as_str()),
        (Some("cron(0 2 * * ? *)"), Some("ENABLED"))
    );
    // Manual again: the schedule is deleted.
    let manual = patch(&path).token(&owner.access_token).json(&json!({"schedule": null})).send().await.expect(200);
    assert_eq!((manual.body["frequency"].as_str(), manual.body["schedule"].as_str()), (Some("manual"), None));
    assert!(tenant_schedule(&name).await.is_none(), "a manual connection has no schedule");
    // Scheduled again, then deleted: the schedule goes with it.
    let hourly = json!({"schedule": "rate(1 hour)"});
    patch(&path).token(&owner.access_token).json(&hourly).send().await.expect(200);
    assert!(tenant_schedule(&name).await.is_some());
    delete(&path).token(&owner.access_token).send().await.expect(204);
    assert!(tenant_schedule(&name).await.is_none(), "a deleted connection has no schedule");
}

#[tokio::test]
async fn a_schedule_left_behind_by_its_connection_is_removed_at_its_next_firing() {
    // What a crash between the store write and the Scheduler call leaves: a
    // schedule whose connection does not exist. Its firing starts nothing
    // and the worker deletes it.
    let owner = register_owner().await;
    let (state, _) = test_state().await;
    let ghost = uuid::Uuid::now_v7();
    let tenant_id = owner.tenant_id.parse().expect("tenant uuid");
    let wanted = shared::schedules::WantedSchedule {
        target: shared::domain::schedule::ScheduleTarget::SyncConnection,
        tenant_id,
        id: ghost,
        expression: "rate(1 minute)",
        enabled: true,
    };
    state.schedules.put(&wanted, false).await.expect("schedule made");
    let name = schedule_name("sync", &ghost.to_string());
    assert!(tenant_schedule(&name).await.is_some());
    eventually("the stale schedule deleted", RUN_DEADLINE, || async {
        tenant_schedule(&name).await.is_none().then_some(())
    })
    .await;
    assert!(stored_runs(&owner, &ghost.to_string()).await.is_empty(), "a firing without its connection starts nothing");
}

#[tokio::test]
async fn three_failed_runs_in_a_row_raise_one_alert_a_success_resolves_it_and_the_dashboard_counts_them() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=4).map(|n| record(n, 1, "x")).collect();
    source.lock().expect("source").down = true;
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let made = connection(&owner, &provider_id, "source_wins").await;
    let id = made["id"].as_str().expect("id").to_owned();

    // Each run fails on its last receive (locally the 2nd): three in a row.
    for n in 1..=3 {
        let run = run_to_end(&owner, &id).await;
        assert_eq!(run["status"], "failed", "run {n}: {run}");
        assert!(run["last_error"].as_str().is_some_and(|e| e.contains("503")), "{run}");
    }
    let open = get("/v1/integrations/alerts?status=open").token(&owner.access_token).send().await.expect(200);
    let alerts = open.body["data"].as_array().expect("data").clone();
    assert_eq!(alerts.len(), 1, "one alert, not one per failure: {alerts:?}");
    let alert = &alerts[0];
    assert_eq!((alert["kind"].as_str(), alert["status"].as_str()), (Some("sync_failing"), Some("open")));
    assert_eq!(alert["subject_id"], id.as_str());
    assert_eq!(alert["provider_id"], provider_id.as_str());
    assert_eq!(alert["consecutive_failures"], 3);
    let raised: Vec<Value> =
        outbox_events(&owner.tenant_id).await.into_iter().filter(|e| e["type"] == "integration.sync.failing").collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["data"]["connection_id"], id.as_str());
    assert_eq!(raised[0]["data"]["alert_id"], alert["id"]);

    // One probe, answered (404 at the base URL is an answer).
    post(&format!("/v1/integrations/providers/{provider_id}/probe"))
        .token(&owner.access_token)
        .send()
        .await
        .expect(200);
    let dashboard_path = format!("/v1/integrations/{provider_id}/dashboard");
    let board = get(&dashboard_path).token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(board["integration_info"]["id"], provider_id.as_str());
    let metrics = &board["health_metrics"];
    assert_eq!(metrics["error_rate"], 1.0, "3 failed runs of 3 settled, no events: {metrics:#}");
    assert_eq!(metrics["availability"], 1.0, "{metrics:#}");
    // This probe, and one of the platform's 5-minute probe schedule if it
    // fired meanwhile (it probes every provider with an api_base_url).
    assert!(metrics["probes"].as_i64().is_some_and(|p| (1..=2).contains(&p)), "{metrics:#}");
    assert_eq!(metrics["throughput"]["records_synced_per_hour"], 0.0);
    assert_eq!(metrics["last_successful_sync"], Value::Null);
    assert_eq!(board["sync_history"].as_array().map(Vec::len), Some(3));
    assert_eq!(board["error_analysis"][0]["class"], "provider_server_error", "{:#}", board["error_analysis"]);
    assert_eq!(board["error_analysis"][0]["count"], 3);
    assert_eq!(board["error_analysis"][0]["sources"], json!(["sync_runs"]));
    assert_eq!(board["alerts"].as_array().map(Vec::len), Some(1));
    let trends = board["performance_trends"].as_array().expect("trends");
    assert_eq!(trends.len(), 24);
    assert_eq!(trends.iter().map(|h| h["runs_failed"].as_i64().unwrap_or(0)).sum::<i64>(), 3);
    let overview = get("/v1/integrations/overview").token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(overview["syncs"]["connections"], 1);
    assert_eq!(overview["syncs"]["failing"], 1);
    assert_eq!(overview["open_alerts"]["sync_failing"], 1);
    assert_eq!(overview["providers"][0]["open_alerts"], 1);

    // Another tenant sees none of it.
    get(&dashboard_path).token(&other.access_token).send().await.expect_error(404, "not_found");
    let alert_id = alert["id"].as_str().expect("alert id");
    post(&format!("/v1/integrations/alerts/{alert_id}/resolve"))
        .token(&other.access_token)
        .send()
        .await
        .expect_error(404, "not_found");
    let theirs = get("/v1/integrations/alerts").token(&other.access_token).send().await.expect(200);
    assert_eq!(theirs.body["data"], json!([]));
    let developer = member_with_role(&owner, "developer").await;
    get(&dashboard_path).token(&developer.access_token).send().await.expect_error(403, "insufficient_permissions");

    // The provider is back: the next run succeeds and resolves the alert.
    source.lock().expect("source").down = false;
    let run = run_to_end(&owner, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let resolved = get("/v1/integrations/alerts?status=resolved").token(&owner.access_token).send().await.expect(200);
    assert_eq!(resolved.body["data"][0]["id"], alert["id"]);
    assert_eq!(resolved.body["data"][0]["resolved_by"], "auto");
    let open = get("/v1/integrations/alerts?status=open").token(&owner.access_token).send().await.expect(200);
    assert_eq!(open.body["data"], json!([]));
    // Resolving it again answers it as it is.
    let again = post(&format!("/v1/integrations/alerts/{alert_id}/resolve")).token(&owner.access_token).send().await;
    assert_eq!(again.expect(200).body["resolved_by"], "auto");
    let board = get(&dashboard_path).token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(board["health_metrics"]["error_rate"], 0.75, "3 failed of 4 finished runs");
    assert!(board["health_metrics"]["last_successful_sync"].is_string());
    assert_eq!(board["sync_history"][0]["status"], "succeeded", "newest first");
}

#[tokio::test]
async fn a_real_time_connection_applies_each_inbound_event_of_its_provider_once() {
    use crate::integrations::{create_provider, deliver, generic_headers};
    let owner = register_owner().await;
    let secret = "real-time-secret-123";
    let name = format!("live_{}", &unique()[..8]);
    let provider = create_provider(&owner, &json!({"name": name, "secret_key": secret})).await;
    let body = |extra: Value| {
        let mut body = json!({"name": "Live CRM", "sync_mode": "full",
            "source": {"provider_id": provider.id, "path": "/customers", "records_field": "customers"},
            "field_mapping": {"email": "email", "name": "full_name"}});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    let mixed = body(json!({"frequency": "real_time", "schedule": "rate(1 hour)"}));
    let refused = post("/v1/integrations/sync-connections").token(&owner.access_token).json(&mixed).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["schedule"]);
    // A provider without an API is enough: its events bring the records.
    let made = post("/v1/integrations/sync-connections")
        .token(&owner.access_token)
        .json(&body(json!({"frequency": "real_time"})))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(made["frequency"], "real_time");
    let id = made["id"].as_str().expect("id").to_owned();
    let event_runs = |wanted: usize| {
        let id = id.clone();
        let tenant = owner.clone();
        async move {
            let runs: Vec<Value> = stored_runs(&tenant, &id)
                .await
                .into_iter()
                .filter(|r| r["trigger"] == "event" && r["status"] == "succeeded")
                .collect();
            (runs.len() >= wanted).then_some(runs)
        }
    };

    // One record as the whole body.
    let one = json!({"event_id": "evt-1", "event_type": "customer.updated", "id": "rt-1",
        "email": "rt1@example.com", "full_name": "Real Time"})
    .to_string();
    deliver(&provider.path, &generic_headers(secret, &one), &one).await.expect(202);
    let runs = eventually("the event's run", RUN_DEADLINE, || event_runs(1)).await;
    assert_eq!(runs[0]["counts"]["records_created"].as_f64(), Some(1.0), "{:?}", runs[0]);
    assert_eq!(customer_by_external_id(&owner, "rt-1").await["name"], "Real Time");

    // A batch in `records_field`: one updated, one created.
    let batch = json!({"event_id": "evt-2", "event_type": "customers.changed", "customers": [
        {"id": "rt-1", "email": "rt1@example.com", "full_name": "Renamed"},
        {"id": "rt-2", "email": "rt2@example.com", "full_name": "Second"}]})
    .to_string();
    deliver(&provider.path, &generic_headers(secret, &batch), &batch).await.expect(202);
    let runs = eventually("the batch's run", RUN_DEADLINE, || event_runs(2)).await;
    let second = runs.iter().find(|r| r["counts"]["records_read"].as_f64() == Some(2.0)).expect("the batch's run");
    assert_eq!(second["counts"]["records_updated"].as_f64(), Some(1.0), "{second}");
    assert_eq!(second["counts"]["records_created"].as_f64(), Some(1.0), "{second}");
    assert_eq!(customer_by_external_id(&owner, "rt-1").await["name"], "Renamed");
    assert_eq!(customer_by_external_id(&owner, "rt-2").await["name"], "Second");
    // A batch over 64 KiB rides the bus as its S3 key only: the run reads
    // the body from S3.
    let note = "n".repeat(150);
    let records: Vec<Value> = (100..500)
        .map(|n| json!({"id": format!("rt-{n}"), "email": format!("rt{n}@example.com"), "full_name": note}))
        .collect();
    let large = json!({"event_id": "evt-3", "event_type": "customers.changed", "customers": records}).to_string();
    assert!(large.len() > 64 * 1024, "{} bytes", large.len());
    deliver(&provider.path, &generic_headers(secret, &large), &large).await.expect(202);
    let runs = eventually("the large batch's run", RUN_DEADLINE, || event_runs(3)).await;
    let third = runs.iter().find(|r| r["counts"]["records_read"].as_f64() == Some(400.0)).expect("the large run");
    assert_eq!(third["counts"]["records_created"].as_f64(), Some(400.0), "{third}");
    assert_eq!(customer_by_external_id(&owner, "rt-499").await["email"], "rt499@example.com");
    // The same event again is the inbound endpoint's duplicate: no run.
    deliver(&provider.path, &generic_headers(secret, &batch), &batch).await.expect(200);
    let connection = get(&format!("/v1/integrations/sync-connections/{id}")).token(&owner.access_token).send().await;
    let connection = connection.expect(200).body;
    assert_eq!(connection["active_run_id"], Value::Null, "no run holds the connection: {connection}");
    assert!(connection["last_successful_sync_at"].is_string());
    assert_eq!(connection["checkpoint"], Value::Null, "event runs leave the checkpoint to the API reads");
    // Manual again: nothing listens any more.
    let path = format!("/v1/integrations/sync-connections/{id}");
    let manual = patch(&path).token(&owner.access_token).json(&json!({"frequency": "manual"})).send().await;
    assert_eq!(
        manual.expect_error(400, "validation_failed").invalid_fields(),
        ["source.provider_id"],
        "no API to read"
    );
}

// ---------------------------------------------------------------- targets --

async fn create_connection(owner: &Member, body: &Value) -> Value {
    post("/v1/integrations/sync-connections").token(&owner.access_token).json(body).send().await.expect(201).body
}

fn ticket(n: usize, minute: u32, state: &str) -> Value {
    json!({
        "id": format!("T-{n}"),
        "summary": format!("Ticket {n}"),
        "state": state,
        "due": "2026-03-01",
        "updated_at": format!("2026-01-01T00:{minute:02}:{:02}Z", n % 60),
    })
}

async fn project_tasks(owner: &Member, project_id: &str) -> Vec<Value> {
    let path = format!("/v1/projects/{project_id}/tasks?limit=100");
    get(&path).token(&owner.access_token).send().await.expect(200).body["data"].as_array().expect("data").clone()
}

fn titled<'a>(tasks: &'a [Value], title: &str) -> &'a Value {
    tasks.iter().find(|t| t["title"] == title).unwrap_or_else(|| panic!("no task {title} in {tasks:?}"))
}

#[tokio::test]
async fn a_sync_writes_tasks_into_a_project_once_each_and_a_delta_run_removes_one() {
    let owner = register_owner().await;
    let project = post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Support desk"})).send().await;
    let project_id = project.expect(201).body["id"].as_str().expect("id").to_owned();
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=30).map(|n| ticket(n, 1, "todo")).collect();
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let connection = create_connection(
        &owner,
        &json!({
            "name": "Helpdesk tickets",
            "target_type": "tasks",
            "target": {"project_id": project_id},
            "sync_mode": "delta_sync",
            "source": {"provider_id": provider_id, "path": "/customers", "cursor_field": "updated_at"},
            "field_mapping": {"title": "summary", "status": "state", "due_date": "due"}
        }),
    )
    .await;
    assert_eq!(connection["target_type"], "tasks");
    assert_eq!(connection["target"], json!({"project_id": project_id}));
    let id = connection["id"].as_str().expect("id");
    let first = run_to_end(&owner, id).await;
    assert_eq!((first["status"].as_str(), first["counts"]["records_created"].as_i64()), (Some("succeeded"), Some(30)));
    let tasks = project_tasks(&owner, &project_id).await;
    assert_eq!(tasks.len(), 30);
    assert_eq!(titled(&tasks, "Ticket 7")["due_date"], "2026-03-01T00:00:00Z");
    assert_eq!(titled(&tasks, "Ticket 7")["status"], "todo");

    // A change, a value the task refuses (named by its field), a person's
    // edit the source then overrides (`source_wins`), and a deletion.
    let ticket_3 = titled(&tasks, "Ticket 3")["id"].as_str().expect("id").to_owned();
    patch(&format!("/v1/projects/{project_id}/tasks/{ticket_3}"))
        .token(&owner.access_token)
        .json(&json!({"status": "in_progress"}))
        .send()
        .await
        .expect(200);
    {
        let mut s = source.lock().expect("source");
        s.records[6] = ticket(7, 5, "done");
        s.records[7] = ticket(8, 5, "blocked");
        s.records[2] = ticket(3, 5, "done");
        s.records[8] = json!({"id": "T-9", "deleted": true, "updated_at": "2026-01-01T00:05:09Z"});
    }
    let second = run_to_end(&owner, id).await;
    let counts = &second["counts"];
    assert_eq!(counts["records_read"], 4, "only what changed: {second}");
    assert_eq!((counts["records_updated"].as_i64(), counts["conflicts"].as_i64()), (Some(2), Some(1)), "{second}");
    assert_eq!((counts["records_deleted"].as_i64(), counts["errors"].as_i64()), (Some(1), Some(1)), "{second}");
    assert!(second["last_error"].as_str().is_some_and(|e| e.contains("T-8") && e.contains("status:")), "{second}");
    let tasks = project_tasks(&owner, &project_id).await;
    assert_eq!(tasks.len(), 29);
    assert!(tasks.iter().all(|t| t["title"] != "Ticket 9"));
    assert_eq!(titled(&tasks, "Ticket 7")["status"], "done");
    assert_eq!(titled(&tasks, "Ticket 3")["status"], "done", "the source wins");
    let project = get(&format!("/v1/projects/{project_id}")).token(&owner.access_token).send().await;
    assert_eq!(project.expect(200).body["task_count"], 29);

    // Everything read again finds every task it made: none twice.
    post(&format!("/v1/integrations/sync-connections/{id}/reset")).token(&owner.access_token).send().await.expect(200);
    let again = run_to_end(&owner, id).await;
    assert_eq!(again["counts"]["records_read"], 30, "{again}");
    assert_eq!(again["counts"]["records_created"], 0, "{again}");
    assert_eq!(again["counts"]["records_unchanged"], 29, "28 as they were and the deleted one: {again}");
    assert_eq!(project_tasks(&owner, &project_id).await.len(), 29);
}

#[tokio::test]
async fn a_sync_provisions_users_with_the_connections_role_and_never_changes_their_email() {
    let owner = register_owner().await;
    let tag = &unique()[..8];
    let person = |n: usize, minute: u32, given: &str, email: &str| {
        json!({"id": format!("e-{n}"), "work_email": email, "given": given, "family": "Lee",
               "updated_at": format!("2026-01-01T00:{minute:02}:0{n}Z")})
    };
    let email = |n: usize| format!("staff{n}-{tag}@example.com");
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=3).map(|n| person(n, 1, "Ann", &email(n))).collect();
    let url = fake_provider(source.clone()).await;
    let provider_id = provider_for(&owner, &url).await;
    let mut body = json!({
        "name": "HR directory",
        "target_type": "users",
        "target": {"role": "owner"},
        "sync_mode": "incremental",
        "source": {"provider_id": provider_id, "path": "/customers", "cursor_field": "updated_at"},
        "field_mapping": {"email": "work_email", "first_name": "given", "last_name": "family"}
    });
    let refused = post("/v1/integrations/sync-connections").token(&owner.access_token).json(&body).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["target.role"]);
    body["target"]["role"] = json!("developer");
    let id = create_connection(&owner, &body).await["id"].as_str().expect("id").to_owned();
    assert_eq!(run_to_end(&owner, &id).await["counts"]["records_created"], 3);
    let listed = get(&format!("/v1/users?search={tag}")).token(&owner.access_token).send().await.expect(200).body;
    let users = listed["data"].as_array().expect("data");
    assert_eq!(users.len(), 3, "{listed}");
    assert!(users.iter().all(|u| u["role"] == "developer" && u["first_name"] == "Ann"), "{listed}");
    // No password: a synced member cannot sign in with one.
    let login =
        post("/v1/auth/login").json(&json!({"email": email(1), "password": "Any-Passw0rd-at-all"})).send().await;
    assert_eq!(login.status, 401, "{:?}", login.body);

    {
        let mut s = source.lock().expect("source");
        s.records[0] = person(1, 9, "Anna", &email(1));
        s.records[1] = person(2, 9, "Ann", &format!("moved-{tag}@example.com"));
    }
    let second = run_to_end(&owner, &id).await;
    assert_eq!((second["counts"]["records_updated"].as_i64(), second["counts"]["errors"].as_i64()), (Some(1), Some(1)));
    assert!(second["last_error"].as_str().is_some_and(|e| e.contains("e-2") && e.contains("email:")), "{second}");
    let listed = get(&format!("/v1/users?search={tag}")).token(&owner.access_token).send().await.expect(200).body;
    let first = listed["data"].as_array().expect("data").iter().find(|u| u["email"] == email(1)).cloned();
    assert_eq!(first.expect("staff1")["first_name"], "Anna");
}

/// A provider API that takes records: `PUT`/`DELETE /contacts/{key}`,
/// recording each call; the first `fail` calls answer 500.
#[derive(Default)]
struct Receiver {
    calls: Vec<(String, String, Option<String>, Value)>,
    fail: usize,
}

async fn receiving_provider(receiver: Arc<Mutex<Receiver>>) -> String {
    async fn take(
        State(receiver): State<Arc<Mutex<Receiver>>>,
        method: axum::http::Method,
        axum::extract::Path(key): axum::extract::Path<String>,
        headers: axum::http::HeaderMap,
        body: String,
    ) -> StatusCode {
        let mut receiver = receiver.lock().expect("receiver");
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = serde_json::from_str(&body).unwrap_or(Value::Null);
        receiver.calls.push((method.to_string(), key, auth, body));
        if receiver.fail > 0 {
            receiver.fail -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
        StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let app = axum::Router::new().route("/contacts/{key}", axum::routing::put(take).delete(take)).with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_sync_writes_records_on_to_another_providers_api_once_each_with_its_credentials() {
    let owner = register_owner().await;
    let source: Shared = Arc::default();
    source.lock().expect("source").records = (1..=3).map(|n| record(n, 1, &format!("Shopper {n}"))).collect();
    let source_url = fake_provider(source.clone()).await;
    let source_key = format!("source-key-{}", unique());
    let name = format!("crm_{}", &unique()[..8]);
    let crm = create_provider(
        &owner,
        &json!({"name": name, "api_base_url": source_url, "auth_type": "api_key", "secret_key": source_key}),
    )
    .await;
    let receiver: Arc<Mutex<Receiver>> = Arc::default();
    let receiver_url = receiving_provider(receiver.clone()).await;
    let token = format!("mailer-token-{}", unique());
    let name = format!("mailer_{}", &unique()[..8]);
    let mailer = create_provider(
        &owner,
        &json!({"name": name, "api_base_url": receiver_url, "auth_type": "bearer", "secret_key": token}),
    )
    .await;
    let mut body = json!({
        "name": "CRM to mailer",
        "target_type": "provider",
        "target": {"provider_id": mailer.id, "path": "/contacts"},
        "sync_mode": "incremental",
        "conflict_resolution": "target_wins",
        "source": {"provider_id": crm.id, "path": "/customers", "cursor_field": "updated_at"},
        "field_mapping": {"email": "email", "profile.name": "full_name"}
    });
    let refused = post("/v1/integrations/sync-connections").token(&owner.access_token).json(&body).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["conflict_resolution"]);
    body.as_object_mut().expect("body").remove("conflict_resolution");
    let id = create_connection(&owner, &body).await["id"].as_str().expect("id").to_owned();

    let first = run_to_end(&owner, &id).await;
    assert_eq!(first["counts"]["records_created"], 3, "{first}");
    let bearer = format!("Bearer {token}");
    {
        let receiver = receiver.lock().expect("receiver");
        let mut keys: Vec<&str> = receiver.calls.iter().map(|c| c.1.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["c-0001", "c-0002", "c-0003"]);
        let one = receiver.calls.iter().find(|c| c.1 == "c-0001").expect("c-0001");
        assert_eq!((one.0.as_str(), one.2.as_deref()), ("PUT", Some(bearer.as_str())));
        assert_eq!(one.3, json!({"email": "shopper1@example.com", "profile": {"name": "Shopper 1"}}));
    }
    let keys = source.lock().expect("source").api_keys.clone();
    assert!(!keys.is_empty() && keys.iter().all(|k| k.as_deref() == Some(source_key.as_str())), "{keys:?}");

    // Read again from the start: nothing changed, so nothing is sent.
    post(&format!("/v1/integrations/sync-connections/{id}/reset")).token(&owner.access_token).send().await.expect(200);
    let again = run_to_end(&owner, &id).await;
    assert_eq!(again["counts"]["records_unchanged"], 3, "{again}");
    assert_eq!(receiver.lock().expect("receiver").calls.len(), 3);

    // A change the receiver fails once: the page is read again and the
    // record sent again, not lost.
    source.lock().expect("source").records[1] = record(2, 30, "Renamed");
    receiver.lock().expect("receiver").fail = 1;
    let third = run_to_end(&owner, &id).await;
    assert_eq!((third["status"].as_str(), third["counts"]["records_updated"].as_i64()), (Some("succeeded"), Some(1)));
    let receiver = receiver.lock().expect("receiver");
    let sent: Vec<&Value> = receiver.calls.iter().filter(|c| c.1 == "c-0002").map(|c| &c.3).collect();
    assert_eq!(sent.len(), 3, "created, failed once, sent again");
    assert_eq!(sent[2]["profile"]["name"], "Renamed");
}

#[tokio::test]
async fn a_connections_target_is_checked_field_by_field_and_stays_in_its_tenant() {
    let owner = register_owner().await;
    let other = register_owner().await;
    let theirs = post("/v1/projects").token(&other.access_token).json(&json!({"name": "Theirs"})).send().await;
    let their_project = theirs.expect(201).body["id"].as_str().expect("id").to_owned();
    let provider_id = provider_for(&owner, "http://127.0.0.1:9").await;
    let source = json!({"provider_id": provider_id, "path": "/customers"});
    let refused = |body: Value| {
        let token = owner.access_token.clone();
        async move {
            let reply = post("/v1/integrations/sync-connections").token(&token).json(&body).send().await;
            let mut fields = reply.expect_error(400, "validation_failed").invalid_fields();
            fields.sort();
            fields
        }
    };
    let base = |target_type: &str, target: Value, mapping: Option<Value>| {
        let mut body = json!({"name": "x", "target_type": target_type, "target": target, "sync_mode": "full",
                              "source": source});
        if let Some(mapping) = mapping {
            body["field_mapping"] = mapping;
        }
        body
    };
    assert_eq!(refused(base("tasks", json!({}), None)).await, ["target.project_id"]);
    assert_eq!(refused(base("tasks", json!({"project_id": their_project}), None)).await, ["target.project_id"]);
    assert_eq!(refused(base("customers", json!({"path": "/x"}), None)).await, ["target.path"]);
    let assignee = Some(json!({"title": "t", "assignee_id": "owner"}));
    let project = json!({"project_id": their_project});
    assert_eq!(refused(base("tasks", project, assignee)).await, ["field_mapping.assignee_id"]);
    assert_eq!(
        refused(base("provider", json!({}), None)).await,
        ["field_mapping", "target.path", "target.provider_id"]
    );
    assert_eq!(refused(base("spreadsheet", json!({}), None)).await, ["target_type"]);
    // A provider of another tenant is no target either.
    let their_provider = provider_for(&other, "http://127.0.0.1:9").await;
    let target = json!({"provider_id": their_provider, "path": "/contacts"});
    let body = base("provider", target, Some(json!({"email": "email"})));
    assert_eq!(refused(body).await, ["target.provider_id"]);
}
