//! The platform operator's view: `GET /v1/admin/health` from real checks,
//! the request metrics every function emits (EMF lines, valid by the
//! specification's rules) and the daily rollups they feed.

use std::time::Duration;

use platform_tests::*;
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

async fn health(token: &str) -> Value {
    get("/v1/admin/health").token(token).send().await.expect(200).body
}

/// The tenant's rollup of today, as stored.
async fn tenant_rollup(tenant_id: &str) -> Option<Value> {
    let sk = format!("METRICS#{}", today());
    let items = tenant_items(tenant_id, &sk).await;
    items.into_iter().map(|i| json_of(&aws_sdk_dynamodb::types::AttributeValue::M(i))).find(|i| i["SK"] == sk)
}

#[tokio::test]
async fn platform_health_checks_every_dependency_and_its_figures_move_with_traffic() {
    let admin = platform_admin_token().await;
    let owner = register_owner().await;
    let refused = get("/v1/admin/health").token(&owner.access_token).send().await;
    refused.expect_error(403, "insufficient_permissions");

    let first = health(&admin).await;
    let services = &first["services"];
    for core in ["database", "blob_storage", "event_bus", "workflow_engine"] {
        assert_eq!(services[core]["status"], "healthy", "{core}: {first}");
        assert!(services[core]["response_time_ms"].as_f64().is_some(), "{core}: {first}");
    }
    assert_eq!(services["database"]["connection_pool"], "not_applicable");
    // The AI backend is judged by today's model calls (other tests' ones too).
    let ai = &services["ai_services"];
    assert_eq!(ai["backend"], "local");
    assert_eq!(ai["gpu_utilization"], "not_applicable");
    let ai_status = ai["status"].as_str().unwrap_or("");
    assert_eq!(ai_status == "not_applicable", ai["calls_today"] == 0, "{ai}");
    let queues = services["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), 27, "every queue and DLQ of the template");
    assert!(queues.iter().all(|q| q["status"] == "healthy" && q["messages"].as_f64().is_some()), "{queues:?}");
    assert!(queues.iter().any(|q| q["name"] == "TryonRequestsDlq" && q["kind"] == "dlq"));
    // Other tests park messages in DLQs on purpose: the status is what the
    // findings say, and the core is up.
    let findings = first["findings"].as_array().expect("findings");
    assert_eq!(first["status"] == "healthy", findings.is_empty(), "{first}");
    assert_ne!(first["status"], "unhealthy", "{first}");

    // Traffic moves today's figures (flushed every second locally; the
    // answer is cached 5 s).
    let before = first["performance_metrics"]["requests"].as_f64().expect("requests");
    for _ in 0..10 {
        get("/v1/users").token(&owner.access_token).send().await.expect(200);
    }
    let moved = eventually("the platform figures to count the traffic", DEADLINE, || {
        let admin = admin.clone();
        async move {
            let now = health(&admin).await;
            (now["performance_metrics"]["requests"].as_f64()? >= before + 10.0).then_some(now)
        }
    })
    .await;
    let figures = &moved["performance_metrics"];
    assert!(figures["requests_per_second"].as_f64().is_some_and(|r| r > 0.0), "{figures}");
    assert!(figures["average_response_time_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{figures}");
    assert!(figures["error_rate_percentage"].as_f64().is_some(), "{figures}");
    assert!(moved["timestamp"] != first["timestamp"], "a new check, not the cached one");

    // A generation's three model calls move the AI backend's figures.
    let calls_before = first["services"]["ai_services"]["calls_today"].as_i64().expect("calls_today");
    let admin_token = admin.clone();
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin_token)
        .json(&json!({"amount": 3, "reason": "prepaid"}))
        .send()
        .await
        .expect(201);
    let project =
        post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Health"})).send().await.expect(201);
    let project_id = project.body["id"].as_str().expect("project").to_owned();
    let task = post(&format!("/v1/projects/{project_id}/tasks"))
        .token(&owner.access_token)
        .json(&json!({"title": "Count me"}))
        .send()
        .await
        .expect(201);
    post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": task.body["id"], "components": ["documentation"]}))
        .send()
        .await
        .expect(202);
    let counted = eventually("the AI backend's figures to count the calls", Duration::from_secs(90), || {
        let admin = admin.clone();
        async move {
            let now = health(&admin).await;
            (now["services"]["ai_services"]["calls_today"].as_i64()? >= calls_before + 3).then_some(now)
        }
    })
    .await;
    let ai = &counted["services"]["ai_services"];
    assert_ne!(ai["status"], "not_applicable", "{ai}");
    assert!(ai["average_latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{ai}");
    assert!(ai["last_call_at"].is_string(), "{ai}");
}

/// A dependency stopped under a running server (its own process, as a
/// Lambda instance) shows in that server's health once its cache runs out.
#[tokio::test]
async fn a_queue_deleted_under_a_running_server_is_reported_by_its_health() {
    let (_, clients) = test_state().await;
    let created = clients.sqs.create_queue().queue_name(format!("health-live-{}", &unique()[..8])).send().await;
    let url = created.expect("queue").queue_url.expect("url");
    // The queue is this test's, not the template's: its calls stay out of
    // the IAM check's log.
    let targets = format!("LiveQueue={url}");
    let server = ServerProcess::start_with("warn", &[("HEALTH_QUEUES", &targets), ("AWS_CALL_LOG", "")]).await;
    let admin = platform_admin_token().await;
    let live = server.call(http::Method::GET, "/v1/admin/health").token(&admin).send().await.expect(200).body;
    assert_eq!(live["services"]["queues"].as_array().map(Vec::len), Some(1), "{live}");
    assert_eq!(live["services"]["queues"][0]["status"], "healthy", "{live}");

    clients.sqs.delete_queue().queue_url(&url).send().await.expect("deleted");
    let stopped = eventually("the running server to see the queue gone", DEADLINE, || {
        let (server, admin) = (&server, admin.clone());
        async move {
            let now = server.call(http::Method::GET, "/v1/admin/health").token(&admin).send().await.expect(200).body;
            (now["services"]["queues"][0]["status"] == "unhealthy").then_some(now)
        }
    })
    .await;
    assert_ne!(stopped["status"], "healthy", "{stopped}");
    let findings = stopped["findings"].as_array().expect("findings");
    assert!(findings.iter().any(|f| f.as_str().unwrap_or("").contains("queue LiveQueue is unreachable")), "{stopped}");
}

#[tokio::test]
async fn every_request_is_a_valid_emf_line_and_counts_in_its_tenants_rollup() {
    let owner = register_owner().await;
    let reply = get("/v1/users").token(&owner.access_token).send().await.expect(200);
    let request_id = reply.headers.get("x-request-id").and_then(|v| v.to_str().ok()).expect("request id").to_owned();
    let path = format!("{}/metrics.emf.jsonl", std::env::var("LOCAL_DIR").expect("LOCAL_DIR"));
    let line = eventually("the request's EMF line", DEADLINE, || {
        let (path, request_id) = (path.clone(), request_id.clone());
        async move {
            let text = std::fs::read_to_string(&path).ok()?;
            text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|l| l["request_id"] == request_id)
        }
    })
    .await;
    assert_eq!(shared::metrics::emf_problems(&line), Vec::<String>::new(), "{line}");
    assert_eq!(line["Route"], "GET /v1/users");
    assert_eq!(line["Service"], "UsersFunction");
    assert_eq!(line["tenant_id"], owner.tenant_id);
    assert_eq!((line["Requests"].as_f64(), line["ServerErrors"].as_f64()), (Some(1.0), Some(0.0)));
    let text = std::fs::read_to_string(&path).expect("metrics file");
    let invalid: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| !shared::metrics::emf_problems(l).is_empty())
        .map(|l| l.to_string())
        .take(3)
        .collect();
    assert!(invalid.is_empty(), "every line is valid EMF: {invalid:?}");

    // A wrong password and a few requests land in the tenant's day.
    post("/v1/auth/login").json(&json!({"email": owner.email, "password": "not-the-password-1A!"})).send().await;
    get("/v1/users").token(&owner.access_token).send().await.expect(200);
    let rollup = eventually("the tenant's rollup", DEADLINE, || {
        let tenant = owner.tenant_id.clone();
        async move {
            let rollup = tenant_rollup(&tenant).await?;
            (rollup["requests"].as_f64()? >= 2.0 && rollup["failed_sign_ins"].as_f64()? >= 1.0).then_some(rollup)
        }
    })
    .await;
    let buckets: f64 = (0..9).filter_map(|i| rollup[format!("lat_{i}")].as_f64()).sum();
    assert_eq!(Some(buckets), rollup["requests"].as_f64(), "every request in one latency bucket: {rollup}");
    // The people are a string set (which the JSON view above leaves out),
    // written after the counters.
    let users = eventually("the day's people", DEADLINE, || {
        let tenant = owner.tenant_id.clone();
        async move {
            let sk = format!("METRICS#{}", today());
            let items = tenant_items(&tenant, &sk).await;
            let item = items.into_iter().find(|i| i.get("SK").and_then(|v| v.as_s().ok()) == Some(&sk))?;
            item.get("active_users").and_then(|v| v.as_ss().ok()).cloned()
        }
    })
    .await;
    assert_eq!(users, std::slice::from_ref(&owner.user_id), "{rollup}");
}

#[tokio::test]
async fn a_stopped_dependency_is_reported_and_worsens_the_status() {
    let (state, clients) = test_state().await;
    // A DLQ with a message in it, and a queue that no longer exists.
    let dlq = clients.sqs.create_queue().queue_name(format!("health-dlq-{}", &unique()[..8])).send().await;
    let dlq = dlq.expect("queue").queue_url.expect("url");
    clients.sqs.send_message().queue_url(&dlq).message_body("poison").send().await.expect("sent");
    let gone = clients.sqs.create_queue().queue_name(format!("health-gone-{}", &unique()[..8])).send().await;
    let gone = gone.expect("queue").queue_url.expect("url");
    clients.sqs.delete_queue().queue_url(&gone).send().await.expect("deleted");
    let mut targets = admin::health::Targets::from_env(&state);
    targets.queues = vec![("ParkedDlq".into(), dlq), ("StoppedQueue".into(), gone)];
    let report = admin::health::report(&state, &targets).await;
    assert_eq!(report.status.as_str(), "degraded", "{:?}", report.findings);
    let stopped = report.services.queues.iter().find(|q| q.name == "StoppedQueue").expect("stopped");
    assert_eq!(stopped.check.status.as_str(), "unhealthy");
    assert!(stopped.check.error.is_some());
    let parked = report.services.queues.iter().find(|q| q.name == "ParkedDlq").expect("parked");
    assert_eq!(parked.messages, Some(1));
    assert!(report.findings.iter().any(|f| f.contains("ParkedDlq holds 1")), "{:?}", report.findings);
    assert!(report.findings.iter().any(|f| f.contains("StoppedQueue is unreachable")), "{:?}", report.findings);

    // An unreachable bus stops the outbox: unhealthy.
    targets.bus = format!("no-such-bus-{}", &unique()[..8]);
    let report = admin::health::report(&state, &targets).await;
    assert_eq!(report.status.as_str(), "unhealthy", "{:?}", report.findings);
    assert_eq!(report.services.event_bus.status.as_str(), "unhealthy");
    assert!(report.findings.iter().any(|f| f.starts_with("event_bus is unreachable")), "{:?}", report.findings);
}

#[tokio::test]
async fn a_tenants_health_scores_its_own_figures_and_names_what_needs_a_look() {
    let admin = platform_admin_token().await;
    let owner = register_owner().await;
    let path = format!("/v1/admin/tenants/{}/health", owner.tenant_id);
    get(&path).token(&owner.access_token).send().await.expect_error(403, "insufficient_permissions");
    let missing = format!("/v1/admin/tenants/{}/health", uuid::Uuid::now_v7());
    get(&missing).token(&admin).send().await.expect_error(404, "not_found");

    // A disabled endpoint, a wrong password and some traffic.
    let endpoint = post("/v1/webhooks")
        .token(&owner.access_token)
        .json(&json!({"url": "https://hooks.example.com/health", "event_types": ["user.created"]}))
        .send()
        .await
        .expect(201)
        .body;
    let endpoint_path = format!("/v1/webhooks/{}", endpoint["id"].as_str().expect("id"));
    patch(&endpoint_path).token(&owner.access_token).json(&json!({"status": "disabled"})).send().await.expect(200);
    post("/v1/auth/login").json(&json!({"email": owner.email, "password": "not-the-password-1A!"})).send().await;
    for _ in 0..5 {
        get("/v1/users").token(&owner.access_token).send().await.expect(200);
    }
    let health = eventually("the tenant's figures", DEADLINE, || {
        let (admin, path) = (admin.clone(), path.clone());
        async move {
            let body = get(&path).token(&admin).send().await.expect(200).body;
            let activity = &body["metrics"]["user_activity"];
            let counted = activity["api_requests_today"].as_f64()? >= 7.0
                && activity["active_users_today"].as_f64()? >= 1.0
                && body["metrics"]["security"]["failed_login_attempts_today"].as_f64()? >= 1.0;
            counted.then_some(body)
        }
    })
    .await;
    let metrics = &health["metrics"];
    assert_eq!(health["tenant_id"], owner.tenant_id);
    assert_eq!(metrics["user_activity"]["active_users_today"], 1.0, "{health}");
    assert_eq!(metrics["user_activity"]["ai_processing_requests_24h"], "not_applicable");
    assert_eq!(metrics["resource_utilization"]["cpu_usage"], "not_applicable");
    assert_eq!(metrics["resource_utilization"]["users"]["used"], 1.0, "{health}");
    assert_eq!(
        (metrics["webhooks"]["endpoints"].as_f64(), metrics["webhooks"]["disabled"].as_f64()),
        (Some(1.0), Some(1.0))
    );
    let rules: Vec<&str> =
        health["alerts"].as_array().expect("alerts").iter().filter_map(|a| a["rule"].as_str()).collect();
    assert_eq!(rules, ["webhook_endpoint_disabled"], "{health}");
    assert!(!health["recommendations"].as_array().expect("recommendations").is_empty());
    // The score is the weighted mean of the components that have one.
    let components = health["score_components"].as_array().expect("components");
    let scored: Vec<(f64, f64)> =
        components.iter().filter_map(|c| Some((c["weight"].as_f64()?, c["score"].as_f64()?))).collect();
    let mean = scored.iter().map(|(w, s)| w * s).sum::<f64>() / scored.iter().map(|(w, _)| w).sum::<f64>();
    assert_eq!(health["health_score"].as_f64(), Some((mean * 10.0).round() / 10.0), "{health}");
    let webhooks = components.iter().find(|c| c["name"] == "webhooks").expect("webhooks");
    assert_eq!(webhooks["score"], 0.0, "its only endpoint is disabled: {webhooks}");
    let security = components.iter().find(|c| c["name"] == "security").expect("security");
    assert!(security["score"].as_f64().is_some_and(|s| s < 10.0), "a failed sign-in costs: {security}");
}

#[tokio::test]
async fn the_enterprise_dashboard_computes_each_figure_from_the_tenants_own_data() {
    let admin = platform_admin_token().await;
    let owner = register_owner().await;
    let path = |query: &str| format!("/v1/admin/analytics/enterprise-dashboard?{query}");
    let tenant = format!("tenant_id={}", owner.tenant_id);
    get(&path(&tenant)).token(&owner.access_token).send().await.expect_error(403, "insufficient_permissions");
    let refused = get(&path(&format!("{tenant}&period=120d&colour=red"))).token(&admin).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["colour", "period"]);
    let refused = get(&path("period=7d")).token(&admin).send().await;
    assert_eq!(refused.expect_error(400, "validation_failed").invalid_fields(), ["tenant_id"]);
    let missing = format!("tenant_id={}", uuid::Uuid::now_v7());
    get(&path(&missing)).token(&admin).send().await.expect_error(404, "not_found");

    // A task done, and requests to two features.
    let project = post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Launch"})).send().await;
    let project_id = project.expect(201).body["id"].as_str().expect("id").to_owned();
    let task = post(&format!("/v1/projects/{project_id}/tasks"))
        .token(&owner.access_token)
        .json(&json!({"title": "Ship it"}))
        .send()
        .await
        .expect(201)
        .body;
    let task_path = format!("/v1/projects/{project_id}/tasks/{}", task["id"].as_str().expect("id"));
    patch(&task_path).token(&owner.access_token).json(&json!({"status": "done"})).send().await.expect(200);
    get("/v1/customers").token(&owner.access_token).send().await.expect(200);

    let query = path(&format!("{tenant}&period=7d"));
    let dashboard = eventually("the tenant's figures", DEADLINE, || {
        let (admin, query) = (admin.clone(), query.clone());
        async move {
            let body = get(&query).token(&admin).send().await.expect(200).body;
            let engagement = &body["tenant_analytics"]["business_metrics"]["user_engagement"];
            let adoption = &engagement["feature_adoption_rates"];
            // The people land in their own write after the counters.
            let counted = adoption["customers"].as_f64()? > 0.0
                && adoption["projects"].as_f64()? > 0.0
                && engagement["period_active_users"].as_f64()? >= 1.0;
            counted.then_some(body)
        }
    })
    .await;
    assert_eq!((dashboard["period"].as_str(), dashboard["from"].is_string()), (Some("7d"), true));
    let business = &dashboard["tenant_analytics"]["business_metrics"];
    let engagement = &business["user_engagement"];
    assert_eq!(engagement["period_active_users"], 1.0, "{dashboard}");
    assert_eq!(engagement["weekly_active_users"], 1.0);
    assert_eq!(engagement["daily_active_users"], 0.14, "one person on one of 7 days");
    assert_eq!(engagement["feature_adoption_rates"]["customers"], 1.0, "used on its only active day");
    assert_eq!(engagement["feature_adoption_rates"]["workflows"], 0.0);
    let productivity = &business["productivity_metrics"];
    assert_eq!(productivity["tasks_completed"], 1.0, "{dashboard}");
    assert!(productivity["average_completion_time_hours"].as_f64().is_some_and(|h| (0.0..1.0).contains(&h)));
    assert_eq!(productivity["developer_satisfaction"], "not_applicable");
    let financial = &business["financial_metrics"];
    assert_eq!(financial["revenue_in_period"], 0.0, "no invoice was paid");
    assert!(financial["monthly_recurring_revenue"].as_f64().is_some(), "the plan's price: {financial}");
    let performance = &dashboard["tenant_analytics"]["operational_metrics"]["system_performance"];
    assert!(performance["requests"].as_f64().is_some_and(|n| n >= 4.0), "{performance}");
    assert_eq!(performance["api_success_rate"], 100.0, "{performance}");
    assert_eq!(dashboard["benchmarks"]["internal_comparison"]["rank_among_same_plan_tenants"], Value::Null);
    assert_eq!(dashboard["benchmarks"]["industry_comparison"], "not_applicable");

    // Once a nightly aggregate ranked the tenant, the dashboard shows it.
    let (state, _) = test_state().await;
    let scope = shared::auth::TenantScope::for_tests(owner.tenant_id.parse().expect("tenant id"));
    let rank = shared::domain::metrics::TenantRank {
        as_of: today(),
        plan: "free".into(),
        rank: 3,
        of: 12,
        percentile: 82,
        active_users_30d: 1,
        requests_30d: 9,
    };
    state.store.put_tenant_rank(&scope, &rank).await.expect("rank");
    let ranked = get(&query).token(&admin).send().await.expect(200).body;
    let comparison = &ranked["benchmarks"]["internal_comparison"];
    assert_eq!(
        (comparison["rank_among_same_plan_tenants"].as_f64(), comparison["of"].as_f64()),
        (Some(3.0), Some(12.0))
    );
    assert_eq!((comparison["percentile"].as_f64(), comparison["as_of"].as_str()), (Some(82.0), Some(today().as_str())));
}
