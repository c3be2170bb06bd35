//! Inputs an attacker would send (issue 11): nulls where strings belong,
//! free-form JSON that storage cannot hold; each answers 4xx naming the
//! field, and every read keeps working afterwards.

use platform_tests::*;
use serde_json::{Value, json};

/// What issue 11 stored or failed on: numbers DynamoDB cannot hold, an
/// empty key (top level and nested), 100 levels of nesting, and a value
/// larger than any free-form field takes (settings 8 KiB, metadata 4 KiB,
/// a performance target 500 characters).
fn unstorable_objects() -> Vec<(&'static str, Value)> {
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!({ "d": deep });
    }
    vec![
        ("1e300", json!({"n": 1e300})),
        ("1e-200", json!({"n": 1e-200})),
        ("an empty key", json!({"": 1})),
        ("a nested empty key", json!({"theme": {"": "dark"}})),
        ("100 levels of nesting", json!({ "deep": deep })),
        ("an oversized value", json!({"blob": "x".repeat(10_000)})),
    ]
}

/// The largest things each field takes: a float and a tiny number DynamoDB
/// can hold, 8 levels of nesting (`deep`'s value, six objects, an array,
/// its items), arrays, nulls, integers up to u64.
fn storable_object() -> Value {
    let mut deep = json!([1, null, true]);
    for _ in 0..6 {
        deep = json!({ "d": deep });
    }
    json!({"ratio": 1.5e100, "tiny": 2.5e-100, "big": u64::MAX, "negative": -7, "text": "ok", "deep": deep})
}

/// Asserts a 400 `validation_failed` whose fields all sit under `field`.
fn names(reply: Reply, field: &str, case: &str) {
    let reply = reply.expect_error(400, "validation_failed");
    let fields = reply.invalid_fields();
    assert!(
        !fields.is_empty() && fields.iter().all(|f| f == field || f.starts_with(&format!("{field}."))),
        "{case}: expected {field}, got {:#}",
        reply.body
    );
}

/// The reads issue 11 saw fail for good once a bad item was stored: the
/// tenant, its customers, its audit trail, and the platform admin's list of
/// every tenant (read to the end, so a bad item anywhere would show).
async fn reads_still_work(owner: &Member, admin: &str) {
    let tenant = get(&format!("/v1/tenants/{}", owner.tenant_id)).token(&owner.access_token).send().await.expect(200);
    assert_eq!(tenant.body["id"], owner.tenant_id.as_str());
    let customers = get("/v1/customers").token(&owner.access_token).send().await.expect(200);
    assert!(customers.body["data"].is_array(), "{:#}", customers.body);
    let audit = get("/v1/audit/logs").token(&owner.access_token).send().await.expect(200);
    assert!(audit.body["data"].is_array(), "{:#}", audit.body);
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=100&cursor={c}"),
            None => "/v1/tenants?limit=100".to_owned(),
        };
        let page = get(&path).token(admin).send().await.expect(200);
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            return;
        }
    }
    panic!("the tenant list did not end within 1,000 pages");
}

#[tokio::test]
async fn unstorable_tenant_settings_are_refused_and_reads_keep_working() {
    let (owner, admin) = (register_owner().await, platform_admin_token().await);
    let tenant_path = format!("/v1/tenants/{}", owner.tenant_id);
    for (case, settings) in unstorable_objects() {
        let mut body = valid_tenant_body();
        body["settings"] = settings.clone();
        names(post("/v1/tenants").token(&admin).json(&body).send().await, "settings", case);
        let update = json!({ "settings": settings });
        names(patch(&tenant_path).token(&owner.access_token).json(&update).send().await, "settings", case);
        names(put(&tenant_path).token(&admin).json(&update).send().await, "settings", case);
    }
    // Feature switches are free names too: an empty one cannot be stored.
    let mut body = valid_tenant_body();
    body["configuration"] = json!({"features": {"": true}});
    names(post("/v1/tenants").token(&admin).json(&body).send().await, "configuration.features", "empty feature");

    // What fits is stored and read back as sent, on create and update.
    let mut body = valid_tenant_body();
    body["settings"] = storable_object();
    let created = post("/v1/tenants").token(&admin).json(&body).send().await.expect(201);
    assert_eq!(created.body["settings"], storable_object());
    let id = created.body["id"].as_str().expect("id");
    let read = get(&format!("/v1/tenants/{id}")).token(&admin).send().await.expect(200);
    assert_eq!(read.body["settings"], storable_object());
    let updated = patch(&tenant_path)
        .token(&owner.access_token)
        .json(&json!({"settings": storable_object()}))
        .send()
        .await
        .expect(200);
    assert_eq!(updated.body["settings"], storable_object());
    reads_still_work(&owner, &admin).await;
}

#[tokio::test]
async fn unstorable_customer_metadata_is_refused_and_reads_keep_working() {
    let (owner, admin) = (register_owner().await, platform_admin_token().await);
    let external_id = format!("shopper-{}", unique());
    for (case, metadata) in unstorable_objects() {
        let body = json!({"external_id": external_id, "metadata": metadata});
        names(post("/v1/customers").token(&owner.access_token).json(&body).send().await, "metadata", case);
    }
    let body = json!({"external_id": external_id, "metadata": storable_object()});
    let created = post("/v1/customers").token(&owner.access_token).json(&body).send().await.expect(201);
    assert_eq!(created.body["metadata"], storable_object());
    // Refused on the update of a customer that exists, too.
    for (case, metadata) in unstorable_objects() {
        let body = json!({"external_id": external_id, "metadata": metadata});
        names(post("/v1/customers").token(&owner.access_token).json(&body).send().await, "metadata", case);
    }
    let list =
        get(&format!("/v1/customers?external_id={external_id}")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(list.body["data"][0]["metadata"], storable_object());
    reads_still_work(&owner, &admin).await;
}

#[tokio::test]
async fn unstorable_performance_targets_are_refused_and_reads_keep_working() {
    let (owner, admin) = (register_owner().await, platform_admin_token().await);
    let project =
        post("/v1/projects").token(&owner.access_token).json(&json!({"name": "Payments"})).send().await.expect(201);
    let project_path = format!("/v1/projects/{}", project.body["id"].as_str().expect("id"));
    for (case, targets) in unstorable_objects() {
        let body = json!({"name": "Payments", "performance_targets": targets});
        names(post("/v1/projects").token(&owner.access_token).json(&body).send().await, "performance_targets", case);
        let update = json!({ "performance_targets": targets });
        names(patch(&project_path).token(&owner.access_token).json(&update).send().await, "performance_targets", case);
    }
    // A target is at most 500 characters of JSON: the storable object is
    // split over keys.
    let targets = json!({"p95_ms": 199.5, "tiny": 2.5e-100, "big": u64::MAX, "deep": storable_object()["deep"]});
    let updated = patch(&project_path)
        .token(&owner.access_token)
        .json(&json!({ "performance_targets": targets }))
        .send()
        .await
        .expect(200);
    assert_eq!(updated.body["performance_targets"], targets);
    let read = get(&project_path).token(&owner.access_token).send().await.expect(200);
    assert_eq!(read.body["performance_targets"], targets);
    get("/v1/projects").token(&owner.access_token).send().await.expect(200);
    reads_still_work(&owner, &admin).await;
}

/// `null` where a required string (or value) belongs is a 400 naming the
/// field, in every body that has one (issue 11 saw 500s for a tenant's
/// `name` and login's `email`).
#[tokio::test]
async fn null_where_a_value_is_required_is_a_400_naming_it() {
    let (owner, admin) = (register_owner().await, platform_admin_token().await);
    let token = owner.access_token.as_str();
    let project = post("/v1/projects").token(token).json(&json!({"name": "Nulls"})).send().await.expect(201);
    let project_id = project.body["id"].as_str().expect("id").to_owned();
    let customer = post("/v1/customers")
        .token(token)
        .json(&json!({"external_id": format!("c-{}", unique())}))
        .send()
        .await
        .expect(201);
    let customer_id = customer.body["id"].as_str().expect("id").to_owned();
    let cases: Vec<(Call, Vec<&str>)> = vec![
        (post("/v1/tenants").token(&admin).json(&json!({"name": null})), vec!["name"]),
        (
            post("/v1/tenants").token(&admin).json(&{
                let mut body = valid_tenant_body();
                body["name"] = Value::Null;
                body
            }),
            vec!["name"],
        ),
        (put(&format!("/v1/tenants/{}", owner.tenant_id)).token(token).json(&json!({"name": null})), vec!["name"]),
        (post("/v1/auth/login").json(&json!({"email": null, "password": null})), vec!["email", "password"]),
        (
            post("/v1/auth/register").json(&json!({
                "email": null, "password": null, "password_confirm": null,
                "first_name": null, "last_name": null, "tenant_name": null
            })),
            vec!["email", "first_name", "last_name", "password", "password_confirm", "tenant_name"],
        ),
        (post("/v1/auth/refresh").json(&json!({"refresh_token": null})), vec!["refresh_token"]),
        (
            post("/v1/auth/invitations/accept")
                .json(&json!({"token": null, "password": null, "first_name": null, "last_name": null})),
            vec!["first_name", "last_name", "password", "token"],
        ),
        (
            post("/v1/users")
                .token(token)
                .json(&json!({"email": null, "password": null, "first_name": null, "last_name": null})),
            vec!["email", "first_name", "last_name", "password"],
        ),
        (post("/v1/users/invite").token(token).json(&json!({"emails": null})), vec!["emails"]),
        (post("/v1/users/invite").token(token).json(&json!({"emails": [null]})), vec!["emails[0]"]),
        (
            patch(&format!("/v1/users/{}", owner.user_id)).token(token).json(&json!({"first_name": null})),
            vec!["first_name"],
        ),
        (post("/v1/api-keys").token(token).json(&json!({"name": null, "scopes": null})), vec!["name", "scopes"]),
        (
            post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
                .token(&admin)
                .json(&json!({"amount": null, "reason": null})),
            vec!["amount", "reason"],
        ),
        (
            post("/v1/credits/charges").token(token).json(&json!({"amount": null, "reason": null})),
            vec!["amount", "reason"],
        ),
        (post("/v1/customers").token(token).json(&json!({"external_id": null})), vec!["external_id"]),
        (
            post(&format!("/v1/customers/{customer_id}/photos"))
                .token(token)
                .json(&json!({"content_type": null, "size_bytes": null})),
            vec!["content_type", "size_bytes"],
        ),
        (post("/v1/projects").token(token).json(&json!({"name": null})), vec!["name"]),
        (patch(&format!("/v1/projects/{project_id}")).token(token).json(&json!({"name": null})), vec!["name"]),
        (post(&format!("/v1/projects/{project_id}/tasks")).token(token).json(&json!({"title": null})), vec!["title"]),
        (
            post("/v1/tryons")
                .token(token)
                .json(&json!({"customer_id": null, "photo_id": null, "quality": null, "items": null})),
            vec!["customer_id", "items", "photo_id", "quality"],
        ),
        (
            post("/v1/tryons").token(token).json(&json!({
                "customer_id": customer_id, "photo_id": customer_id, "quality": "sd",
                "items": [{"product_id": null}]
            })),
            vec!["items[0].product_id"],
        ),
        (post("/v1/webhooks").token(token).json(&json!({"url": null})), vec!["url"]),
    ];
    for (call, expected) in cases {
        let reply = call.send().await.expect_error(400, "validation_failed");
        let mut fields = reply.invalid_fields();
        fields.sort();
        assert_eq!(fields, expected, "{:#}", reply.body);
    }
    reads_still_work(&owner, &admin).await;
}
