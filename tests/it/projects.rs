//! Seed 000's projects and tasks: CRUD, tenant isolation (another tenant's
//! project or task is a 404 that says nothing about it), the plan's projects
//! quota (also under a concurrent burst), roles, the audit trail, validation
//! and cursor pagination.

use std::time::Duration;

use futures::{StreamExt, stream};
use platform_tests::*;
use serde_json::{Value, json};
use shared::auth::Role;
use uuid::Uuid;

/// Seed 000 scenario 5's project.
fn enterprise_project() -> Value {
    json!({
        "name": "Enterprise Payment Processing System",
        "description": "Comprehensive payment processing system with fraud detection, compliance reporting, and multi-currency support",
        "technology_stack": ["Python", "FastAPI", "PostgreSQL", "Redis", "Stripe", "Docker"],
        "compliance_requirements": ["PCI_DSS", "SOX", "GDPR", "SOC2"],
        "performance_targets": {"response_time_p95": "< 200ms", "throughput": "10000 req/sec", "availability": "99.95%"},
        "security_requirements": ["end_to_end_encryption", "audit_logging", "fraud_detection", "3d_secure"]
    })
}

async fn create_project(token: &str, body: &Value) -> Value {
    post("/v1/projects").token(token).json(body).send().await.expect(201).body
}

async fn create_task(token: &str, project_id: &str, body: &Value) -> Value {
    post(&format!("/v1/projects/{project_id}/tasks")).token(token).json(body).send().await.expect(201).body
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("id").to_owned()
}

fn data(reply: &Reply) -> Vec<Value> {
    reply.body["data"].as_array().expect("data").clone()
}

fn ids(reply: &Reply) -> Vec<String> {
    data(reply).iter().map(id_of).collect()
}

/// An access token of another member of `member`'s tenant with `role`, and
/// their user id.
async fn token_with_role(member: &Member, role: Role) -> (String, String) {
    let other = member_with_role(member, role.as_str()).await;
    (other.access_token, other.user_id)
}

#[tokio::test]
async fn projects_are_created_read_updated_listed_and_deleted() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let reply = post("/v1/projects").token(token).json(&enterprise_project()).send().await.expect(201);
    let p = reply.body.clone();
    let id = id_of(&p);
    assert_eq!(reply.headers["location"], format!("/v1/projects/{id}").as_str());
    for field in [
        "name",
        "description",
        "technology_stack",
        "compliance_requirements",
        "performance_targets",
        "security_requirements",
    ] {
        assert_eq!(p[field], enterprise_project()[field], "field {field}");
    }
    assert_eq!(p["priority"], "medium");
    assert_eq!(p["status"], "active");
    assert_eq!(p["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(p["created_by"], owner.user_id.as_str());
    assert_eq!(p["task_count"], 0);
    assert!(p["created_at"].is_string() && p["created_at"] == p["updated_at"]);
    assert_eq!(Uuid::parse_str(&id).expect("uuid").get_version_num(), 7);

    let read = get(&format!("/v1/projects/{id}")).token(token).send().await.expect(200);
    assert_eq!(read.body, p);

    let patched = patch(&format!("/v1/projects/{id}"))
        .token(token)
        .json(&json!({"priority": "CRITICAL", "description": null, "technology_stack": ["Rust"]}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(patched["priority"], "critical");
    assert!(patched["description"].is_null());
    assert_eq!(patched["technology_stack"], json!(["Rust"]));
    assert_eq!(patched["name"], p["name"]);
    assert_eq!(patched["created_at"], p["created_at"]);
    assert_ne!(patched["updated_at"], p["updated_at"]);

    let put_reply = put(&format!("/v1/projects/{id}"))
        .token(token)
        .json(&json!({"name": "Payments v2", "status": "archived", "performance_targets": null}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(put_reply["name"], "Payments v2");
    assert_eq!(put_reply["status"], "archived");
    assert_eq!(put_reply["performance_targets"], json!({}));
    assert_eq!(put_reply["priority"], "critical");
    let unchanged = patch(&format!("/v1/projects/{id}")).token(token).json(&json!({})).send().await.expect(200);
    assert_eq!(unchanged.body, put_reply);
    assert_eq!(get(&format!("/v1/projects/{id}")).token(token).send().await.expect(200).body, put_reply);

    let list = get("/v1/projects").token(token).send().await.expect(200);
    assert_eq!(data(&list), std::slice::from_ref(&put_reply));
    assert!(list.body["next_cursor"].is_null());

    delete(&format!("/v1/projects/{id}")).token(token).send().await.expect(204);
    get(&format!("/v1/projects/{id}")).token(token).send().await.expect_error(404, "not_found");
    delete(&format!("/v1/projects/{id}")).token(token).send().await.expect_error(404, "not_found");
    assert!(data(&get("/v1/projects").token(token).send().await.expect(200)).is_empty());
}

#[tokio::test]
async fn tasks_are_created_read_updated_listed_and_deleted_and_counted_on_their_project() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let project = create_project(token, &json!({"name": "Mobile App MVP"})).await;
    let pid = id_of(&project);

    // Seed 000 scenario 5's task, project_id repeated in the body.
    let body = json!({
        "title": "Multi-Currency Payment Processing with Fraud Detection",
        "description": "Implement comprehensive payment processing system supporting 20+ currencies",
        "priority": "high",
        "project_id": pid,
        "requirements": {"functional": ["multi_currency_support", "refund_management"], "testing": ["integration_tests"]},
        "acceptance_criteria": ["Process payments in 20+ currencies", "Handle 10,000+ transactions per second"]
    });
    let reply = post(&format!("/v1/projects/{pid}/tasks")).token(token).json(&body).send().await.expect(201);
    let t = reply.body.clone();
    let tid = id_of(&t);
    assert_eq!(reply.headers["location"], format!("/v1/projects/{pid}/tasks/{tid}").as_str());
    for field in ["title", "description", "priority", "project_id", "requirements", "acceptance_criteria"] {
        assert_eq!(t[field], body[field], "field {field}");
    }
    assert_eq!(t["status"], "todo");
    assert_eq!(t["tenant_id"], owner.tenant_id.as_str());
    assert_eq!(t["created_by"], owner.user_id.as_str());
    assert!(t["assignee_id"].is_null() && t["due_date"].is_null());
    assert_eq!(get(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect(200).body, t);
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(token).send().await.expect(200).body["task_count"], 1);

    let updated = patch(&format!("/v1/projects/{pid}/tasks/{tid}"))
        .token(token)
        .json(&json!({"status": "in_progress", "assignee_id": owner.user_id, "due_date": "2030-03-01T18:30:00+01:00"}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(updated["status"], "in_progress");
    assert_eq!(updated["assignee_id"], owner.user_id.as_str());
    assert_eq!(updated["due_date"], "2030-03-01T17:30:00Z");
    assert_eq!(updated["title"], t["title"]);
    let cleared = put(&format!("/v1/projects/{pid}/tasks/{tid}"))
        .token(token)
        .json(&json!({"status": "done", "assignee_id": null, "due_date": "2030-04-01", "acceptance_criteria": null}))
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(cleared["status"], "done");
    assert!(cleared["assignee_id"].is_null());
    assert_eq!(cleared["due_date"], "2030-04-01T00:00:00Z");
    assert_eq!(cleared["acceptance_criteria"], json!([]));
    assert_eq!(get(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect(200).body, cleared);

    let second = create_task(token, &pid, &json!({"title": "Webhook processing"})).await;
    let list = get(&format!("/v1/projects/{pid}/tasks")).token(token).send().await.expect(200);
    assert_eq!(data(&list), [cleared.clone(), second.clone()]);
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(token).send().await.expect(200).body["task_count"], 2);

    delete(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect(204);
    get(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect_error(404, "not_found");
    delete(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect_error(404, "not_found");
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(token).send().await.expect(200).body["task_count"], 1);

    // Deleting the project takes its remaining task with it.
    delete(&format!("/v1/projects/{pid}")).token(token).send().await.expect(204);
    let second_id = id_of(&second);
    get(&format!("/v1/projects/{pid}/tasks/{second_id}")).token(token).send().await.expect_error(404, "not_found");
    get(&format!("/v1/projects/{pid}/tasks")).token(token).send().await.expect_error(404, "not_found");
    post(&format!("/v1/projects/{pid}/tasks"))
        .token(token)
        .json(&json!({"title": "orphan"}))
        .send()
        .await
        .expect_error(404, "not_found");
}

/// Seed 000 scenario 2, "Test Tenant Isolation": GrowthCorp cannot read,
/// change or delete TechStart's project or its tasks; the answer is the 404
/// of a missing resource and names nothing of TechStart.
#[tokio::test]
async fn another_tenants_projects_and_tasks_are_not_found() {
    let techstart = register_owner().await;
    let growthcorp = register_owner().await;
    let project = post("/v1/projects")
        .token(&techstart.access_token)
        .header("x-tenant-id", &techstart.tenant_id)
        .json(&json!({
            "name": "Mobile App MVP",
            "description": "React Native mobile application for startup launch",
            "technology_stack": ["React Native", "Node.js", "PostgreSQL"],
            "priority": "high"
        }))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(project["priority"], "high");
    let pid = id_of(&project);
    let task = create_task(&techstart.access_token, &pid, &json!({"title": "Secret task A"})).await;
    let tid = id_of(&task);

    let other = &growthcorp.access_token;
    let project_path = format!("/v1/projects/{pid}");
    let task_path = format!("/v1/projects/{pid}/tasks/{tid}");
    let replies = [
        ("project", get(&project_path).token(other).header("x-tenant-id", &growthcorp.tenant_id).send().await),
        ("project", put(&project_path).token(other).json(&json!({"name": "pwned"})).send().await),
        ("project", patch(&project_path).token(other).json(&json!({"name": "pwned"})).send().await),
        ("project", delete(&project_path).token(other).send().await),
        ("project", get(&format!("{project_path}/tasks")).token(other).send().await),
        ("project", post(&format!("{project_path}/tasks")).token(other).json(&json!({"title": "x"})).send().await),
        ("task", get(&task_path).token(other).send().await),
        ("task", put(&task_path).token(other).json(&json!({"title": "pwned"})).send().await),
        ("task", patch(&task_path).token(other).json(&json!({"status": "done"})).send().await),
        ("task", delete(&task_path).token(other).send().await),
    ];
    let missing = Uuid::now_v7();
    let missing_reply =
        get(&format!("/v1/projects/{missing}")).token(other).send().await.expect_error(404, "not_found");
    for (resource, reply) in replies {
        let reply = reply.expect_error(404, "not_found");
        assert_eq!(reply.body["message"], format!("{resource} not found"));
        assert_eq!(reply.body["details"], json!({"resource": resource}));
        let text = reply.body.to_string();
        for secret in [
            techstart.tenant_id.as_str(),
            techstart.user_id.as_str(),
            pid.as_str(),
            tid.as_str(),
            "Mobile App",
            "Secret task",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    assert_eq!(missing_reply.body["message"], "project not found");
    assert!(data(&get("/v1/projects").token(other).send().await.expect(200)).is_empty());
    get(&project_path)
        .token(other)
        .header("x-tenant-id", &techstart.tenant_id)
        .send()
        .await
        .expect_error(403, "tenant_mismatch");

    // Nothing changed for TechStart.
    let mut expected = project.clone();
    expected["task_count"] = json!(1);
    assert_eq!(get(&project_path).token(&techstart.access_token).send().await.expect(200).body, expected);
    assert_eq!(get(&task_path).token(&techstart.access_token).send().await.expect(200).body, task);
}

/// The free plan's 3 projects (seed 000's quota body), slot freed by delete.
#[tokio::test]
async fn the_fourth_project_on_the_free_plan_is_refused_and_a_delete_frees_a_slot() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let mut created = Vec::new();
    for i in 0..3 {
        created.push(id_of(&create_project(token, &json!({"name": format!("Project {i}")})).await));
    }
    let refused = post("/v1/projects")
        .token(token)
        .json(&json!({"name": "One too many"}))
        .send()
        .await
        .expect_error(403, "quota_exceeded");
    let d = &refused.body["details"];
    assert_eq!(d["quota_type"], "projects");
    assert_eq!(d["current_usage"], 3);
    assert_eq!(d["plan_limit"], 3);
    assert_eq!(d["available_slots"], 0);
    assert_eq!(d["requested_increase"], 1);
    assert_eq!(d["suggested_action"], "upgrade_plan");
    let listed = get("/v1/projects").token(token).send().await.expect(200);
    assert_eq!(ids(&listed), created);
    assert!(!listed.body.to_string().contains("One too many"));

    delete(&format!("/v1/projects/{}", created[0])).token(token).send().await.expect(204);
    let fourth = create_project(token, &json!({"name": "Now it fits"})).await;
    assert_eq!(fourth["name"], "Now it fits");
    post("/v1/projects")
        .token(token)
        .json(&json!({"name": "Full again"}))
        .send()
        .await
        .expect_error(403, "quota_exceeded");
    assert_eq!(data(&get("/v1/projects").token(token).send().await.expect(200)).len(), 3);
}

#[tokio::test]
async fn a_concurrent_burst_of_creates_gets_exactly_the_plans_projects() {
    let owner = register_owner().await;
    let replies =
        futures::future::join_all((0..6).map(|i| {
            post("/v1/projects").token(&owner.access_token).json(&json!({"name": format!("Burst {i}")})).send()
        }))
        .await;
    let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status.as_u16() == 403).collect();
    assert_eq!(created, 3, "{replies:#?}");
    assert_eq!(refused.len(), 3, "{replies:#?}");
    for reply in refused {
        assert_eq!(reply.body["error"], "quota_exceeded");
        assert_eq!(reply.body["details"]["plan_limit"], 3);
    }
    assert_eq!(data(&get("/v1/projects").token(&owner.access_token).send().await.expect(200)).len(), 3);
}

#[tokio::test]
async fn members_read_developers_write_and_admins_delete() {
    let owner = register_owner().await;
    let (user, _) = token_with_role(&owner, Role::User).await;
    let (developer, developer_id) = token_with_role(&owner, Role::Developer).await;
    let (admin, _) = token_with_role(&owner, Role::Admin).await;

    for reply in [
        post("/v1/projects").token(&user).json(&json!({"name": "x"})).send().await,
        patch(&format!("/v1/projects/{}", Uuid::now_v7())).token(&user).json(&json!({"name": "x"})).send().await,
    ] {
        let reply = reply.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required_role"], "developer");
        assert_eq!(reply.body["details"]["current_role"], "user");
    }
    let project = create_project(&developer, &json!({"name": "By a developer"})).await;
    assert_eq!(project["created_by"], developer_id.as_str());
    let pid = id_of(&project);
    patch(&format!("/v1/projects/{pid}")).token(&developer).json(&json!({"priority": "low"})).send().await.expect(200);
    let task = create_task(&developer, &pid, &json!({"title": "Developer task"})).await;
    let tid = id_of(&task);
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(&user).send().await.expect(200).body["priority"], "low");
    get(&format!("/v1/projects/{pid}/tasks/{tid}")).token(&user).send().await.expect(200);
    assert_eq!(ids(&get(&format!("/v1/projects/{pid}/tasks")).token(&user).send().await.expect(200)), [tid.as_str()]);
    post(&format!("/v1/projects/{pid}/tasks"))
        .token(&user)
        .json(&json!({"title": "x"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");

    for path in [format!("/v1/projects/{pid}/tasks/{tid}"), format!("/v1/projects/{pid}")] {
        let reply = delete(&path).token(&developer).send().await.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required_role"], "admin");
        assert_eq!(reply.body["details"]["current_role"], "developer");
    }
    delete(&format!("/v1/projects/{pid}/tasks/{tid}")).token(&admin).send().await.expect(204);
    delete(&format!("/v1/projects/{pid}")).token(&admin).send().await.expect(204);

    // A platform admin acts inside the tenant with X-Tenant-ID.
    let platform = platform_admin_token().await;
    let by_platform = post("/v1/projects")
        .token(&platform)
        .header("x-tenant-id", &owner.tenant_id)
        .json(&json!({"name": "Set up by support"}))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(by_platform["tenant_id"], owner.tenant_id.as_str());
    let listed = get("/v1/projects").token(&owner.access_token).send().await.expect(200);
    assert_eq!(ids(&listed), [id_of(&by_platform)]);
}

#[tokio::test]
async fn an_assignee_must_be_a_user_of_the_tenant() {
    let owner = register_owner().await;
    let stranger = register_owner().await;
    let token = &owner.access_token;
    let pid = id_of(&create_project(token, &json!({"name": "Assignments"})).await);
    let reply = post(&format!("/v1/projects/{pid}/tasks"))
        .token(token)
        .json(&json!({"title": "t", "assignee_id": stranger.user_id}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["assignee_id"]);
    assert!(!reply.body.to_string().contains(&stranger.tenant_id));
    let list = get(&format!("/v1/projects/{pid}/tasks")).token(token).send().await.expect(200);
    assert!(data(&list).is_empty(), "a refused task was stored");
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(token).send().await.expect(200).body["task_count"], 0);

    let task = create_task(token, &pid, &json!({"title": "t", "assignee_id": owner.user_id})).await;
    let tid = id_of(&task);
    let reply = patch(&format!("/v1/projects/{pid}/tasks/{tid}"))
        .token(token)
        .json(&json!({"assignee_id": stranger.user_id}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["assignee_id"]);
    let still = get(&format!("/v1/projects/{pid}/tasks/{tid}")).token(token).send().await.expect(200).body;
    assert_eq!(still["assignee_id"], owner.user_id.as_str());
}

#[tokio::test]
async fn the_audit_trail_records_project_and_task_changes_with_old_and_new_values() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let project = create_project(token, &json!({"name": "Audited", "priority": "low"})).await;
    let pid = id_of(&project);
    patch(&format!("/v1/projects/{pid}"))
        .token(token)
        .json(&json!({"priority": "high", "description": "Now described"}))
        .send()
        .await
        .expect(200);
    let task = create_task(token, &pid, &json!({"title": "Audited task"})).await;
    let tid = id_of(&task);
    delete(&format!("/v1/projects/{pid}")).token(token).send().await.expect(204);

    let reply = get("/v1/audit/logs?resource_type=project").token(token).send().await.expect(200);
    let entries = data(&reply);
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["delete", "update", "create"], "{entries:#?}");
    for entry in &entries {
        assert_eq!(entry["resource_id"], pid.as_str());
        assert_eq!(entry["user"]["id"], owner.user_id.as_str());
    }
    let (deleted, updated, created) = (&entries[0], &entries[1], &entries[2]);
    assert_eq!(created["old_values"], json!({}));
    assert_eq!(created["new_values"], project);
    assert_eq!(updated["old_values"], json!({"priority": "low", "description": null}));
    assert_eq!(updated["new_values"], json!({"priority": "high", "description": "Now described"}));
    assert_eq!(deleted["new_values"], json!({}));
    assert_eq!(deleted["old_values"]["name"], "Audited");
    assert_eq!(deleted["old_values"]["priority"], "high");
    assert_eq!(deleted["old_values"]["task_count"], 1);

    let reply = get("/v1/audit/logs?resource_type=task").token(token).send().await.expect(200);
    let entries = data(&reply);
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["delete", "create"], "{entries:#?}");
    assert!(entries.iter().all(|e| e["resource_id"] == tid.as_str()));
    assert_eq!(entries[1]["new_values"], task);
    assert_eq!(entries[0]["old_values"], task);
    // The cascade is one request: the project's and the task's delete entries share its id.
    assert_eq!(entries[0]["request_id"], deleted["request_id"]);
}

#[tokio::test]
async fn invalid_bodies_ids_and_filters_are_400s_naming_the_field() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let too_long = |n: usize| json!("x".repeat(n));
    let project_cases: Vec<(&str, Value)> = vec![
        ("name", json!("")),
        ("name", json!("   ")),
        ("name", too_long(201)),
        ("name", json!(null)),
        ("description", too_long(2001)),
        ("technology_stack", json!("Rust")),
        ("technology_stack", json!(vec!["Rust"; 31])),
        ("technology_stack[0]", json!([too_long(51)])),
        ("technology_stack[1]", json!(["Rust", 42])),
        ("priority", json!("urgent")),
        ("status", json!("deleted")),
        ("compliance_requirements", json!(vec!["SOX"; 21])),
        ("performance_targets", json!(["fast"])),
        ("security_requirements", json!({"tls": true})),
        ("task_count", json!(0)),
        ("colour", json!("blue")),
    ];
    for (field, bad) in project_cases {
        let mut body = json!({"name": "Valid"});
        let key = field.split('[').next().expect("key");
        body[key] = bad.clone();
        let reply = post("/v1/projects").token(token).json(&body).send().await.expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{field} = {bad}");
    }
    let reply = post("/v1/projects").token(token).json(&json!({})).send().await.expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["name"]);
    post("/v1/projects").token(token).raw_body("{not json").send().await.expect_error(400, "invalid_json");
    assert!(data(&get("/v1/projects").token(token).send().await.expect(200)).is_empty(), "an invalid body was stored");

    let pid = id_of(&create_project(token, &json!({"name": "Valid"})).await);
    let reply = patch(&format!("/v1/projects/{pid}"))
        .token(token)
        .json(&json!({"name": null, "status": null, "id": pid}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["id", "name", "status"]);

    let task_cases: Vec<(&str, Value)> = vec![
        ("title", json!("")),
        ("title", too_long(201)),
        ("description", too_long(5001)),
        ("status", json!("blocked")),
        ("priority", json!("p0")),
        ("assignee_id", json!("bob")),
        ("due_date", json!("tomorrow")),
        ("project_id", json!(Uuid::now_v7().to_string())),
        ("requirements", json!(["a"])),
        ("acceptance_criteria", json!("all")),
    ];
    for (field, bad) in task_cases {
        let mut body = json!({"title": "Valid"});
        body[field] = bad.clone();
        let reply = post(&format!("/v1/projects/{pid}/tasks"))
            .token(token)
            .json(&body)
            .send()
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{field} = {bad}");
    }

    let some = Uuid::now_v7();
    for (path, fields) in [
        ("/v1/projects/nope".to_owned(), vec!["project_id"]),
        ("/v1/projects/nope/tasks".to_owned(), vec!["project_id"]),
        (format!("/v1/projects/{some}/tasks/nope"), vec!["task_id"]),
        (format!("/v1/projects/nope/tasks/{some}"), vec!["project_id"]),
        ("/v1/projects/nope/tasks/nope".to_owned(), vec!["project_id", "task_id"]),
    ] {
        let reply = get(&path).token(token).send().await.expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), fields, "{path}");
    }
    delete("/v1/projects/nope").token(token).send().await.expect_error(400, "validation_failed");

    for (query, field) in [
        ("/v1/projects?status=deleted", "status"),
        ("/v1/projects?priority=p0", "priority"),
        ("/v1/projects?limit=0", "limit"),
        ("/v1/projects?limit=101", "limit"),
        ("/v1/projects?owner=me", "owner"),
        ("/v1/projects?cursor=forged", "cursor"),
    ] {
        let reply = get(query).token(token).send().await.expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{query}");
    }
    for (query, field) in [("status=blocked", "status"), ("assignee_id=bob", "assignee_id"), ("sort=asc", "sort")] {
        let reply = get(&format!("/v1/projects/{pid}/tasks?{query}"))
            .token(token)
            .send()
            .await
            .expect_error(400, "validation_failed");
        assert_eq!(reply.invalid_fields(), [field], "{query}");
    }
    get("/v1/projects").send().await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn lists_filter_and_page_with_cursors_bound_to_the_list() {
    let owner = register_owner().await;
    let token = &owner.access_token;
    let mut projects = Vec::new();
    for (name, priority) in [("A", "high"), ("B", "low"), ("C", "high")] {
        projects.push(id_of(&create_project(token, &json!({"name": name, "priority": priority})).await));
    }
    let first = get("/v1/projects?limit=2").token(token).send().await.expect(200);
    assert_eq!(ids(&first), projects[..2]);
    let cursor = first.body["next_cursor"].as_str().expect("cursor").to_owned();
    let second = get(&format!("/v1/projects?limit=2&cursor={cursor}")).token(token).send().await.expect(200);
    assert_eq!(ids(&second), projects[2..]);
    assert!(second.body["next_cursor"].is_null());
    let high = get("/v1/projects?priority=HIGH").token(token).send().await.expect(200);
    assert_eq!(ids(&high), [projects[0].clone(), projects[2].clone()]);
    let high_page = get("/v1/projects?priority=high&limit=1").token(token).send().await.expect(200);
    let high_cursor = high_page.body["next_cursor"].as_str().expect("cursor").to_owned();
    let high_next =
        get(&format!("/v1/projects?priority=high&limit=1&cursor={high_cursor}")).token(token).send().await.expect(200);
    assert_eq!(ids(&high_next), [projects[2].clone()]);
    assert!(data(&get("/v1/projects?status=archived").token(token).send().await.expect(200)).is_empty());
    // A cursor belongs to its list: other filters or another list refuse it.
    let reply = get(&format!("/v1/projects?priority=low&limit=1&cursor={high_cursor}"))
        .token(token)
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["cursor"]);

    let pid = &projects[0];
    let mut tasks = Vec::new();
    for i in 0..5 {
        let assignee = if i % 2 == 0 { json!(owner.user_id) } else { Value::Null };
        let status = if i < 2 { "done" } else { "todo" };
        let body = json!({"title": format!("Task {i}"), "status": status, "assignee_id": assignee});
        tasks.push(id_of(&create_task(token, pid, &body).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let path = match &cursor {
            Some(c) => format!("/v1/projects/{pid}/tasks?limit=2&cursor={c}"),
            None => format!("/v1/projects/{pid}/tasks?limit=2"),
        };
        let page = get(&path).token(token).send().await.expect(200);
        seen.extend(ids(&page));
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, tasks);
    let done = get(&format!("/v1/projects/{pid}/tasks?status=done")).token(token).send().await.expect(200);
    assert_eq!(ids(&done), tasks[..2]);
    let mine =
        get(&format!("/v1/projects/{pid}/tasks?assignee_id={}", owner.user_id)).token(token).send().await.expect(200);
    assert_eq!(ids(&mine), [tasks[0].clone(), tasks[2].clone(), tasks[4].clone()]);
    let mine_todo = get(&format!("/v1/projects/{pid}/tasks?assignee_id={}&status=todo", owner.user_id))
        .token(token)
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&mine_todo), [tasks[2].clone(), tasks[4].clone()]);
    // Another project's tasks are another list.
    assert!(
        data(&get(&format!("/v1/projects/{}/tasks", projects[1])).token(token).send().await.expect(200)).is_empty()
    );
    let task_page = get(&format!("/v1/projects/{pid}/tasks?limit=1")).token(token).send().await.expect(200);
    let task_cursor = task_page.body["next_cursor"].as_str().expect("cursor");
    let reply = get(&format!("/v1/projects/{}/tasks?cursor={task_cursor}", projects[1]))
        .token(token)
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["cursor"]);
    let reply = get(&format!("/v1/projects?cursor={task_cursor}"))
        .token(token)
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["cursor"]);
}

/// A project delete is one transaction; past 48 tasks it is refused (409)
/// until tasks are deleted, and at 48 it takes them all.
#[tokio::test]
async fn a_project_with_too_many_tasks_for_one_transaction_is_refused_until_tasks_go() {
    let owner = register_owner().await;
    let token = owner.access_token.clone();
    let pid = id_of(&create_project(&token, &json!({"name": "Big"})).await);
    let tasks: Vec<String> = stream::iter(0..49)
        .map(|i| {
            let (token, pid) = (token.clone(), pid.clone());
            async move { id_of(&create_task(&token, &pid, &json!({"title": format!("Task {i}")})).await) }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(get(&format!("/v1/projects/{pid}")).token(&token).send().await.expect(200).body["task_count"], 49);
    let refused = delete(&format!("/v1/projects/{pid}")).token(&token).send().await.expect_error(409, "conflict");
    assert_eq!(refused.body["details"]["reason"], "too_many_tasks");
    assert_eq!(refused.body["details"]["max_tasks_deleted_with_project"], 48);
    get(&format!("/v1/projects/{pid}")).token(&token).send().await.expect(200);

    delete(&format!("/v1/projects/{pid}/tasks/{}", tasks[0])).token(&token).send().await.expect(204);
    delete(&format!("/v1/projects/{pid}")).token(&token).send().await.expect(204);
    get(&format!("/v1/projects/{pid}")).token(&token).send().await.expect_error(404, "not_found");
    for task in &tasks[1..4] {
        get(&format!("/v1/projects/{pid}/tasks/{task}")).token(&token).send().await.expect_error(404, "not_found");
    }
    let trail = eventually("the cascade's audit entries", Duration::from_secs(5), || async {
        let reply = get("/v1/audit/logs?resource_type=task&action=delete&limit=100").token(&token).send().await;
        let n = data(&reply.expect(200)).len();
        (n == 49).then_some(n)
    })
    .await;
    assert_eq!(trail, 49);
}
