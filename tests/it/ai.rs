//! AI jobs end to end on the local backend (`AI_BACKEND=local`, the
//! default): a task's analysis (`POST /v1/tasks`), a code generation run
//! phase by phase by the ai-worker through the real outbox, bus and queue,
//! its progress webhooks, files and zip; cancel and failure with their exact
//! refunds; tenant isolation and roles. The model backends themselves
//! (OpenAI-compatible, Bedrock) are tested against stub servers in
//! functions/ai-worker/tests.

use std::{
    io::Read,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, routing::post as post_route};
use platform_tests::*;
use serde_json::{Value, json};

/// A webhook receiver on 127.0.0.1 that keeps the bodies it gets.
#[derive(Clone)]
struct Hooks {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Hooks {
    async fn start() -> Self {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route(
                "/hook",
                post_route(|State(bodies): State<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
                    bodies.lock().expect("bodies").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    axum::http::StatusCode::OK
                }),
            )
            .with_state(bodies.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, bodies }
    }

    fn of(&self, event_type: &str, job_id: &str) -> Vec<Value> {
        let bodies = self.bodies.lock().expect("bodies").clone();
        bodies
            .into_iter()
            .filter(|b| b["type"] == event_type)
            .filter(|b| b["data"]["generation_id"] == job_id || b["data"]["job_id"] == job_id)
            .collect()
    }
}

async fn funded_owner(credits: i64) -> Member {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin)
        .json(&json!({"amount": credits, "reason": "prepaid"}))
        .send()
        .await
        .expect(201);
    owner
}

async fn seed_project(token: &str) -> String {
    let reply = post("/v1/projects")
        .token(token)
        .json(&json!({
            "name": "Enterprise Payment Processing System",
            "description": "Comprehensive payment processing system with fraud detection",
            "technology_stack": ["Python", "FastAPI", "PostgreSQL", "Redis", "Stripe", "Docker"],
            "compliance_requirements": ["PCI_DSS", "SOX", "GDPR", "SOC2"],
            "security_requirements": ["end_to_end_encryption", "audit_logging"]
        }))
        .send()
        .await
        .expect(201);
    reply.body["id"].as_str().expect("project id").to_owned()
}

/// Seed 000 scenario 5's task body, in `project_id`.
fn seed_task(project_id: &str) -> Value {
    json!({
        "title": "Multi-Currency Payment Processing with Fraud Detection",
        "description": "Implement comprehensive payment processing system supporting 20+ currencies with real-time fraud detection, PCI DSS compliance, and detailed audit logging",
        "priority": "high",
        "project_id": project_id,
        "requirements": {
            "functional": ["multi_currency_support", "real_time_fraud_detection", "3d_secure_authentication",
                "webhook_processing", "refund_management", "subscription_billing", "invoice_generation"],
            "non_functional": ["pci_dss_compliance", "sub_200ms_response_time", "99_99_availability",
                "end_to_end_encryption", "audit_trail_logging"],
            "integrations": ["stripe_api", "paypal_api", "bank_apis", "fraud_detection_service", "tax_calculation_service"],
            "testing": ["unit_tests_90_coverage", "integration_tests", "security_penetration_tests",
                "load_tests_10k_tps", "chaos_engineering"]
        },
        "acceptance_criteria": ["Process payments in 20+ currencies", "Detect fraud with <1% false positive rate",
            "Handle 10,000+ transactions per second", "Maintain PCI DSS Level 1 compliance",
            "Provide real-time transaction monitoring"]
    })
}

/// A plain task (no analysis) titled `title`: its id.
async fn task(token: &str, project_id: &str, title: &str) -> String {
    let reply = post(&format!("/v1/projects/{project_id}/tasks"))
        .token(token)
        .json(&json!({"title": title, "requirements": {"functional": ["ledger_posting", "refund_flow"]},
            "acceptance_criteria": ["refunds balance the ledger"]}))
        .send()
        .await
        .expect(201);
    reply.body["id"].as_str().expect("task id").to_owned()
}

async fn generate(token: &str, task_id: &str, components: Value) -> Value {
    post("/v1/ai/generate-code")
        .token(token)
        .json(&json!({"task_id": task_id, "generation_type": "comprehensive", "components": components,
            "code_standards": {"style_guide": "pep8", "test_coverage": 90}}))
        .send()
        .await
        .expect(202)
        .body
}

async fn status(token: &str, id: &str) -> Value {
    get(&format!("/v1/ai/generation-status/{id}")).token(token).send().await.expect(200).body
}

async fn until_status(token: &str, id: &str, wanted: &str) -> Value {
    eventually(&format!("job {id} {wanted}"), Duration::from_secs(120), || async {
        let body = status(token, id).await;
        (body["status"] == wanted).then_some(body)
    })
    .await
}

async fn ledger(token: &str) -> Vec<Value> {
    let body = get("/v1/credits/ledger?limit=100").token(token).send().await.expect(200).body;
    body["data"].as_array().expect("data").clone()
}

async fn balance(token: &str) -> i64 {
    get("/v1/credits").token(token).send().await.expect(200).body["balance"].as_i64().expect("balance")
}

#[tokio::test]
async fn a_seed_task_is_analysed_and_its_generation_runs_every_phase_to_a_zip() {
    let owner = funded_owner(20).await;
    let hooks = Hooks::start().await;
    post("/v1/webhooks")
        .token(&owner.access_token)
        .json(&json!({"url": hooks.url, "event_types": ["ai.*"], "description": "ai"}))
        .send()
        .await
        .expect(201);
    let project_id = seed_project(&owner.access_token).await;

    // Seed 000's POST /tasks: the task, analysing, one credit reserved.
    let created = post("/v1/tasks").token(&owner.access_token).json(&seed_task(&project_id)).send().await.expect(201);
    assert_eq!(created.body["status"], "analyzing");
    assert_eq!(created.body["ai_analysis"], Value::Null);
    assert_eq!(created.body["credits_reserved"], 1);
    let task_id = created.body["task_id"].as_str().expect("task_id").to_owned();
    let task_path = format!("/v1/projects/{project_id}/tasks/{task_id}");
    let analysed = eventually("the analysis", Duration::from_secs(60), || async {
        let task = get(&task_path).token(&owner.access_token).send().await.expect(200).body;
        (task["analysis_status"] == "completed").then_some(task)
    })
    .await;
    // The local backend's documented rules: 22 requirement lines + 5
    // acceptance criteria -> min(10, 2 + 0.3 x 27) and 8 + 4 x 27 hours.
    let analysis = &analysed["ai_analysis"];
    assert_eq!(analysis["complexity_score"], 10.0);
    assert_eq!(analysis["estimated_hours"], 116.0);
    assert_eq!(analysis["recommended_approach"], "microservices_architecture");
    assert_eq!(
        analysis["risk_factors"],
        json!(["high_security_requirements", "regulatory_compliance", "performance_targets", "external_integrations"])
    );
    assert_eq!(analysis["technology_recommendations"]["languages"], json!(["Python"]));
    assert_eq!(analysis["technology_recommendations"]["databases"], json!(["PostgreSQL", "Redis"]));
    assert_eq!(analysis["architecture_components"][0], "multi_currency_support_service");
    assert_eq!(analysis["backend"], "local");

    // Seed 000's generation of all seven components: 2 + 7 model calls.
    let components = json!([
        "api_endpoints",
        "data_models",
        "business_logic",
        "database_schemas",
        "test_suites",
        "documentation",
        "deployment_configs"
    ]);
    let queued = generate(&owner.access_token, &task_id, components).await;
    assert_eq!(queued["status"], "queued");
    assert_eq!(queued["credits"]["reserved"], 9);
    assert_eq!(queued["progress"]["overall_percentage"], 0);
    assert_eq!(queued["progress"]["phases_remaining"].as_array().map(Vec::len), Some(11));
    let id = queued["generation_id"].as_str().expect("generation_id").to_owned();
    let done = until_status(&owner.access_token, &id, "completed").await;
    assert_eq!(done["progress"]["overall_percentage"], 100);
    assert_eq!(done["progress"]["phases_completed"].as_array().map(Vec::len), Some(11));
    assert_eq!(done["model_usage"]["calls"], 9);
    assert_eq!(done["model_usage"]["backend"], "local");
    assert_eq!(done["credits"], json!({"reserved": 9, "refunded": 0, "charged": 9}));
    assert_eq!(done["quality_metrics"]["files"], 7);
    assert_eq!(done["quality_metrics"]["test_cases"], 12, "7 functional requirements + 5 acceptance criteria");
    assert_eq!(done["quality_metrics"]["test_coverage"], "not_applicable");

    // Progress was observed through every phase: one webhook per phase, in
    // order, each percentage floor(100 x n / 11).
    let progress = eventually("a progress event per phase", Duration::from_secs(60), || async {
        let events = hooks.of("ai.generation.progress", &id);
        (events.len() >= 11).then_some(events)
    })
    .await;
    let mut seen: Vec<(u64, String)> = progress
        .iter()
        .map(|e| {
            (e["data"]["phases_completed"].as_u64().unwrap_or(0), e["data"]["phase"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    seen.sort();
    let phases: Vec<String> = seen.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(
        phases,
        done["progress"]["phases_completed"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| p.as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    );
    for event in &progress {
        let n = event["data"]["phases_completed"].as_u64().expect("n");
        assert_eq!(event["data"]["overall_percentage"].as_u64(), Some(100 * n / 11));
    }
    eventually("ai.generation.completed", Duration::from_secs(60), || async {
        (hooks.of("ai.generation.completed", &id).len() == 1).then_some(())
    })
    .await;
    assert_eq!(hooks.of("ai.analysis.completed", created.body["analysis_job_id"].as_str().unwrap_or("")).len(), 1);

    // The files by component, measured, and the zip holding every one.
    let code = get(&format!("/v1/ai/generated-code/{id}")).token(&owner.access_token).send().await.expect(200).body;
    let files = code["generated_files"].as_object().expect("by component");
    assert_eq!(files.len(), 7);
    let tests_file = &code["generated_files"]["test_suites"]["tests/test_multi_currency_support.py"];
    assert_eq!(tests_file["test_cases"], 12);
    assert!(
        tests_file["content_preview"]
            .as_str()
            .unwrap_or("")
            .starts_with("from services.multi_currency_support_service import")
    );
    assert_eq!(code["deployment_ready"], "not_applicable");
    let zip_bytes = reqwest::get(code["download_url"].as_str().expect("url"))
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes.to_vec())).expect("a zip");
    let mut names: Vec<String> = archive.file_names().map(|n| n.expect("a name").into_owned()).collect();
    names.sort();
    assert_eq!(names.len(), 7);
    assert!(names.contains(&"api_endpoints/api/multi_currency_support_endpoints.py".to_owned()), "{names:?}");
    let mut sql = String::new();
    archive.by_name("database_schemas/db/schema.sql").expect("schema").read_to_string(&mut sql).expect("text");
    assert!(sql.contains("CREATE TABLE invoice_generation"));

    // Paid once each, nothing refunded: 20 - 1 - 9; metered as 10 AI requests.
    assert_eq!(balance(&owner.access_token).await, 10);
    let entries = ledger(&owner.access_token).await;
    assert!(entries.iter().all(|e| e["kind"] != "refund"), "{entries:?}");
    let period = tenant_items(&owner.tenant_id, "BILLING#PERIOD#").await;
    assert_eq!(period.first().and_then(|p| p.get("q_ai_requests")).map(json_of), Some(json!(10.0)));
}

#[tokio::test]
async fn a_cancelled_generation_refunds_its_unfinished_phases_exactly_once() {
    let owner = funded_owner(10).await;
    let project_id = seed_project(&owner.access_token).await;
    // Each local model call takes 1.5 s: the job can be caught mid-way.
    let task_id = task(&owner.access_token, &project_id, "Ledger [model:slow]").await;
    let queued = generate(&owner.access_token, &task_id, json!(["api_endpoints", "data_models", "test_suites"])).await;
    assert_eq!(queued["credits"]["reserved"], 5);
    let id = queued["generation_id"].as_str().expect("id").to_owned();
    // Polled gently: the per-user rate limit counts these reads too.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let body = status(&owner.access_token, &id).await;
        if body["progress"]["phases_completed"].as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no phase done within 60 s: {body}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    let cancelled =
        post(&format!("/v1/ai/generations/{id}/cancel")).token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(cancelled["status"], "cancelled");
    // Every phase before the security review calls the model: what is back
    // is the price less the phases done.
    let done = cancelled["progress"]["phases_completed"].as_array().expect("done").len() as i64;
    assert!((1..5).contains(&done), "{cancelled}");
    assert_eq!(cancelled["credits"]["refunded"].as_i64(), Some(5 - done));
    // Once: a second cancel changes nothing.
    post(&format!("/v1/ai/generations/{id}/cancel"))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");
    let refunds: Vec<Value> = ledger(&owner.access_token).await.into_iter().filter(|e| e["kind"] == "refund").collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"].as_i64(), Some(5 - done));
    assert_eq!(refunds[0]["reference"], format!("ai:{id}"));
    assert_eq!(balance(&owner.access_token).await, 10 - done);

    // The phase in flight when it was cancelled ends without moving the job
    // (watched for longer than one slow call).
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(3_500) {
        let now = status(&owner.access_token, &id).await;
        assert_eq!(now["status"], "cancelled");
        assert_eq!(now["progress"]["phases_completed"].as_array().map(Vec::len), Some(done as usize));
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert_eq!(balance(&owner.access_token).await, 10 - done);
    let code = get(&format!("/v1/ai/generated-code/{id}"))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(409, "conflict");
    assert!(code.body["message"].as_str().unwrap_or("").contains("cancelled"));
}

#[tokio::test]
async fn a_job_the_model_refuses_fails_and_gives_every_credit_back() {
    let owner = funded_owner(5).await;
    let project_id = seed_project(&owner.access_token).await;
    let task_id = task(&owner.access_token, &project_id, "Refused [model:refuse]").await;
    let queued = generate(&owner.access_token, &task_id, json!(["business_logic"])).await;
    assert_eq!(queued["credits"]["reserved"], 3);
    assert_eq!(balance(&owner.access_token).await, 2);
    let id = queued["generation_id"].as_str().expect("id").to_owned();
    let failed = until_status(&owner.access_token, &id, "failed").await;
    assert!(failed["error"].as_str().unwrap_or("").contains("refused"), "{failed}");
    assert_eq!(failed["credits"], json!({"reserved": 3, "refunded": 3, "charged": 0}));
    assert_eq!(failed["model_usage"]["calls"], 0);
    assert_eq!(balance(&owner.access_token).await, 5);
    let refunds = ledger(&owner.access_token).await.into_iter().filter(|e| e["kind"] == "refund").count();
    assert_eq!(refunds, 1);

    // A short balance creates nothing.
    let owner = funded_owner(2).await;
    let project_id = seed_project(&owner.access_token).await;
    let task_id = task(&owner.access_token, &project_id, "Too dear").await;
    let refused = post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": task_id, "components": ["api_endpoints", "data_models"]}))
        .send()
        .await
        .expect_error(402, "insufficient_credits");
    assert_eq!(refused.body["details"], json!({"balance": 2, "cost": 4}));
    let listed = get("/v1/ai/generations").token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(listed["data"], json!([]));
}

#[tokio::test]
async fn ai_jobs_are_private_to_their_tenant_and_bodies_and_roles_are_checked() {
    let owner = funded_owner(10).await;
    let project_id = seed_project(&owner.access_token).await;
    let task_id = task(&owner.access_token, &project_id, "Private").await;
    let queued = generate(&owner.access_token, &task_id, json!(["documentation"])).await;
    let id = queued["generation_id"].as_str().expect("id").to_owned();
    let listed = get("/v1/ai/generations").token(&owner.access_token).send().await.expect(200).body;
    assert_eq!(listed["data"][0]["generation_id"], id.as_str());

    let other = funded_owner(10).await;
    for path in [format!("/v1/ai/generation-status/{id}"), format!("/v1/ai/generated-code/{id}")] {
        get(&path).token(&other.access_token).send().await.expect_error(404, "not_found");
    }
    post(&format!("/v1/ai/generations/{id}/cancel")).token(&other.access_token).send().await.expect(404);
    // Another tenant's task cannot be generated for (and nothing is charged).
    post("/v1/ai/generate-code")
        .token(&other.access_token)
        .json(&json!({"task_id": task_id, "components": ["api_endpoints"]}))
        .send()
        .await
        .expect_error(404, "not_found");
    assert_eq!(balance(&other.access_token).await, 10);
    let other_list = get("/v1/ai/generations").token(&other.access_token).send().await.expect(200).body;
    assert_eq!(other_list["data"], json!([]));
    // POST /v1/tasks into another tenant's project: 404, nothing charged.
    post("/v1/tasks").token(&other.access_token).json(&seed_task(&project_id)).send().await.expect(404);
    assert_eq!(balance(&other.access_token).await, 10);

    // Roles and scopes: a `user` reads but does not generate; a read-only
    // key likewise.
    let user = member_with_role(&owner, "user").await;
    get(&format!("/v1/ai/generation-status/{id}")).token(&user.access_token).send().await.expect(200);
    post("/v1/ai/generate-code")
        .token(&user.access_token)
        .json(&json!({"task_id": task_id, "components": ["api_endpoints"]}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    let key = create_api_key(&owner.access_token, &["ai:read"]).await;
    get(&format!("/v1/ai/generation-status/{id}")).api_key(&key.secret).send().await.expect(200);
    post(&format!("/v1/ai/generations/{id}/cancel")).api_key(&key.secret).send().await.expect(403);

    // Bad bodies name their fields; POST /v1/tasks needs its project.
    let bad = post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": "nope", "components": ["api_endpoints", "api_endpoints", "frontend"]}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let mut fields = bad.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["components[2]", "task_id"]);
    let twice = post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": task_id, "components": ["api_endpoints", "api_endpoints"]}))
        .send()
        .await
        .expect(400);
    assert_eq!(twice.invalid_fields(), ["components[1]"]);
    let mut no_project = seed_task(&project_id);
    no_project.as_object_mut().expect("object").remove("project_id");
    let reply = post("/v1/tasks").token(&owner.access_token).json(&no_project).send().await.expect(400);
    assert_eq!(reply.invalid_fields(), ["project_id"]);
}

#[tokio::test]
async fn a_job_that_would_pass_ai_requests_monthly_is_refused_before_anything_is_charged() {
    let owner = funded_owner(20).await;
    let admin = platform_admin_token().await;
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&admin)
        .json(&json!({"plan": "enterprise_custom", "custom_limits": {"ai_requests_monthly": 4}}))
        .send()
        .await
        .expect(200);
    let project_id = seed_project(&owner.access_token).await;
    let task_id = task(&owner.access_token, &project_id, "Metered").await;
    // 5 model calls can never fit in 4.
    let refused = post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": task_id, "components": ["api_endpoints", "data_models", "test_suites"]}))
        .send()
        .await
        .expect_error(403, "quota_exceeded");
    assert_eq!(refused.body["details"]["plan_limit"], 4);
    assert_eq!(refused.body["details"]["requested_increase"], 5);
    // 3 fit; once they are metered, 3 more do not (3 + 3 > 4).
    let queued = generate(&owner.access_token, &task_id, json!(["documentation"])).await;
    until_status(&owner.access_token, queued["generation_id"].as_str().expect("id"), "completed").await;
    let again = post("/v1/ai/generate-code")
        .token(&owner.access_token)
        .json(&json!({"task_id": task_id, "components": ["documentation"]}))
        .send()
        .await
        .expect_error(403, "quota_exceeded");
    assert!(again.body["message"].as_str().unwrap_or("").contains("ai_requests_monthly"));
    assert_eq!(balance(&owner.access_token).await, 17, "only the job that ran was paid");
}
