//! A member of tenant A sees nothing of tenant B (404, as if it did not exist)
//! and is refused platform-admin routes with 403 insufficient_permissions.

use platform_tests::*;
use serde_json::json;

#[tokio::test]
async fn another_tenants_resources_answer_404_exactly_like_missing_ones() {
    let a = register_owner().await;
    let b = register_owner().await;
    let missing = uuid::Uuid::now_v7().to_string();
    for target in [&b.tenant_id, &missing] {
        let path = format!("/v1/tenants/{target}");
        let reads = [
            get(&path).token(&a.access_token).send().await,
            get(&format!("{path}/stats")).token(&a.access_token).send().await,
            put(&path).token(&a.access_token).json(&json!({"description": "pwned"})).send().await,
            patch(&path).token(&a.access_token).json(&json!({"description": "pwned"})).send().await,
        ];
        for reply in reads {
            let reply = reply.expect_error(404, "not_found");
            assert_eq!(reply.body["message"], "tenant not found");
            assert!(!reply.body.to_string().contains(&b.tenant_id) || target == &missing);
        }
    }
    let untouched = get(&format!("/v1/tenants/{}", b.tenant_id)).token(&b.access_token).send().await.expect(200);
    assert!(untouched.body["description"].is_null());
}

#[tokio::test]
async fn platform_admin_routes_are_403_for_tenant_members() {
    let a = register_owner().await;
    let b = register_owner().await;
    let replies = [
        get("/v1/tenants").token(&a.access_token).send().await,
        post("/v1/tenants").token(&a.access_token).json(&valid_tenant_body()).send().await,
        delete(&format!("/v1/tenants/{}", b.tenant_id)).token(&a.access_token).send().await,
        delete(&format!("/v1/tenants/{}", a.tenant_id)).token(&a.access_token).send().await,
    ];
    for reply in replies {
        let reply = reply.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required_role"], "platform_admin");
        assert_eq!(reply.body["details"]["current_role"], "owner");
        assert_eq!(reply.body["details"]["tenant_id"], a.tenant_id.as_str());
    }
    let b_now = get(&format!("/v1/tenants/{}", b.tenant_id)).token(&b.access_token).send().await.expect(200);
    assert_ne!(b_now.body["status"], "inactive");
}

#[tokio::test]
async fn a_platform_admin_reaches_every_tenant() {
    let a = register_owner().await;
    let token = platform_admin_token().await;
    let reply = get(&format!("/v1/tenants/{}", a.tenant_id)).token(&token).send().await.expect(200);
    assert_eq!(reply.body["id"], a.tenant_id.as_str());
    get(&format!("/v1/tenants/{}/stats", a.tenant_id)).token(&token).send().await.expect(200);
}
