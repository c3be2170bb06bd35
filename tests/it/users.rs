//! Users of a tenant: CRUD, the role rules, invitations, the users quota
//! (refused whole, safe under concurrency), usage figures, isolation, audit.

use platform_tests::*;
use serde_json::{Value, json};

async fn invite(token: &str, emails: &[String], role: &str) -> Reply {
    post("/v1/users/invite").token(token).json(&json!({"emails": emails, "role": role})).send().await
}

fn emails(n: usize) -> Vec<String> {
    (0..n).map(|_| format!("invitee-{}@members.example", unique())).collect()
}

async fn usage(member: &Member) -> Value {
    get("/v1/tenants/me/usage").token(&member.access_token).send().await.expect(200).body
}

#[tokio::test]
async fn an_admin_creates_lists_filters_and_reads_users() {
    let owner = register_owner().await;
    let dev = member_with_role(&owner, "developer").await;
    let plain = member_with_role(&owner, "user").await;
    let all = get("/v1/users").token(&owner.access_token).send().await.expect(200);
    assert_eq!(all.body["data"].as_array().expect("data").len(), 3);
    let devs = get("/v1/users?role=developer").token(&owner.access_token).send().await.expect(200);
    let ids: Vec<&str> = devs.body["data"].as_array().expect("data").iter().filter_map(|u| u["id"].as_str()).collect();
    assert_eq!(ids, [dev.user_id.as_str()]);
    let found =
        get(&format!("/v1/users?search={}", &plain.email[..12])).token(&owner.access_token).send().await.expect(200);
    assert_eq!(found.body["data"][0]["id"], plain.user_id.as_str());
    let page = get("/v1/users?limit=2").token(&owner.access_token).send().await.expect(200);
    let cursor = page.body["next_cursor"].as_str().expect("cursor");
    let rest = get(&format!("/v1/users?limit=2&cursor={cursor}")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(rest.body["data"].as_array().expect("data").len(), 1);
    let one = get(&format!("/v1/users/{}", dev.user_id)).token(&owner.access_token).send().await.expect(200);
    assert_eq!(one.body["role"], "developer");
    assert_eq!(one.body["full_name"], "Ada developer");
    assert!(one.body.get("password_hash").is_none() && one.body.get("search_text").is_none());
    // A user reads themself but nobody else.
    get(&format!("/v1/users/{}", plain.user_id)).token(&plain.access_token).send().await.expect(200);
    let denied = get(&format!("/v1/users/{}", dev.user_id))
        .token(&plain.access_token)
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    assert_eq!(denied.body["details"]["required_role"], "admin");
}

#[tokio::test]
async fn only_admins_manage_users_and_the_refusal_is_seed_000s_rbac_body() {
    let owner = register_owner().await;
    let dev = member_with_role(&owner, "developer").await;
    for reply in [
        get("/v1/users").token(&dev.access_token).send().await,
        post("/v1/users")
            .token(&dev.access_token)
            .json(&json!({"email": "x@y.example", "password": PASSWORD, "first_name": "a", "last_name": "b"}))
            .send()
            .await,
        invite(&dev.access_token, &emails(1), "user").await,
        delete(&format!("/v1/users/{}", owner.user_id)).token(&dev.access_token).send().await,
    ] {
        let reply = reply.expect_error(403, "insufficient_permissions");
        assert_eq!(reply.body["details"]["required_role"], "admin");
        assert_eq!(reply.body["details"]["current_role"], "developer");
        assert_eq!(reply.body["details"]["resource"], "users");
        assert_eq!(reply.body["details"]["tenant_id"], owner.tenant_id.as_str());
    }
}

#[tokio::test]
async fn nobody_grants_or_touches_a_role_above_their_own() {
    let owner = register_owner().await;
    let admin = member_with_role(&owner, "admin").await;
    let dev = member_with_role(&owner, "developer").await;
    let reply = post("/v1/users")
        .token(&admin.access_token)
        .json(&json!({"email": format!("o-{}@x.example", unique()), "password": PASSWORD, "first_name": "a", "last_name": "b", "role": "owner"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    assert_eq!(reply.body["details"]["required_role"], "owner");
    assert_eq!(reply.body["details"]["current_role"], "admin");
    invite(&admin.access_token, &emails(1), "owner").await.expect_error(403, "insufficient_permissions");
    put(&format!("/v1/users/{}", dev.user_id))
        .token(&admin.access_token)
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    put(&format!("/v1/users/{}", owner.user_id))
        .token(&admin.access_token)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    delete(&format!("/v1/users/{}", owner.user_id))
        .token(&admin.access_token)
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
    // Within their own rank an admin may act.
    let promoted = put(&format!("/v1/users/{}", dev.user_id))
        .token(&admin.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect(200);
    assert_eq!(promoted.body["role"], "admin");
    // A user may rename themself, not promote themself.
    let plain = member_with_role(&owner, "user").await;
    let renamed = patch(&format!("/v1/users/{}", plain.user_id))
        .token(&plain.access_token)
        .json(&json!({"first_name": "Grace"}))
        .send()
        .await
        .expect(200);
    assert_eq!(renamed.body["first_name"], "Grace");
    patch(&format!("/v1/users/{}", plain.user_id))
        .token(&plain.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect_error(403, "insufficient_permissions");
}

#[tokio::test]
async fn the_last_owner_stays_and_nobody_deletes_themself() {
    let owner = register_owner().await;
    let path = format!("/v1/users/{}", owner.user_id);
    let reply = put(&path)
        .token(&owner.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect_error(409, "conflict");
    assert_eq!(reply.body["details"]["reason"], "last_owner");
    put(&path).token(&owner.access_token).json(&json!({"is_active": false})).send().await.expect_error(409, "conflict");
    delete(&path).token(&owner.access_token).send().await.expect_error(403, "cannot_delete_self");
    let still = get(&path).token(&owner.access_token).send().await.expect(200);
    assert_eq!(still.body["role"], "owner");
    assert_eq!(still.body["is_active"], true);
    // With a second owner, the first may step down, and may then be removed.
    let second = member_with_role(&owner, "owner").await;
    put(&path).token(&owner.access_token).json(&json!({"role": "admin"})).send().await.expect(200);
    delete(&path).token(&second.access_token).send().await.expect(204);
    get(&path).token(&second.access_token).send().await.expect_error(404, "not_found");
    let stats =
        get(&format!("/v1/tenants/{}/stats", owner.tenant_id)).token(&second.access_token).send().await.expect(200);
    assert_eq!(stats.body["user_count_by_role"]["owner"], 1);
    assert_eq!(stats.body["user_count_by_role"]["admin"], 0);
    assert_eq!(stats.body["total_users"], 1);
    // The last owner again: the second cannot step down now.
    put(&format!("/v1/users/{}", second.user_id))
        .token(&second.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect_error(409, "conflict");
}

#[tokio::test]
async fn an_invitation_is_accepted_once_and_makes_an_active_member() {
    let owner = register_owner().await;
    let address = emails(1);
    let reply = invite(&owner.access_token, &address, "developer").await.expect(201);
    let invitation = &reply.body["invitations"][0];
    assert_eq!(invitation["email"], address[0].as_str());
    assert_eq!(invitation["status"], "pending");
    let token = invitation["token"].as_str().expect("token").to_owned();
    let listed = get("/v1/users/invitations").token(&owner.access_token).send().await.expect(200);
    assert!(listed.body["data"][0].get("token").is_none(), "tokens are shown once");
    let accept = json!({"token": token, "password": PASSWORD, "first_name": "In", "last_name": "Vitee"});
    let accepted = post("/v1/auth/invitations/accept").json(&accept).send().await.expect(201);
    assert_eq!(accepted.body["user"]["role"], "developer");
    assert_eq!(accepted.body["user"]["tenant_id"], owner.tenant_id.as_str());
    post("/v1/auth/invitations/accept").json(&accept).send().await.expect_error(401, "invalid_token");
    post("/v1/auth/login").json(&json!({"email": address[0], "password": PASSWORD})).send().await.expect(200);
    let u = usage(&owner).await;
    assert_eq!(u["current_usage"]["users"], 2);
    assert_eq!(u["current_usage"]["pending_invitations"], 0);
    let reply = invite(&owner.access_token, &emails(1), "user").await.expect(201);
    let other = reply.body["invitations"][0]["token"].as_str().expect("token");
    let forged = format!("{}.{}", other.rsplit_once('.').expect("parts").0, "A".repeat(43));
    let wrong = json!({"token": forged, "password": PASSWORD, "first_name": "a", "last_name": "b"});
    post("/v1/auth/invitations/accept").json(&wrong).send().await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn invites_that_do_not_fit_are_refused_whole_with_the_quota_body() {
    let owner = register_owner().await; // free plan: 10 seats, the owner holds one
    invite(&owner.access_token, &emails(7), "user").await.expect(201);
    let before = usage(&owner).await;
    assert_eq!(before["current_usage"]["users"], 8);
    let three = emails(3);
    let reply = invite(&owner.access_token, &three, "developer").await.expect_error(403, "quota_exceeded");
    let d = &reply.body["details"];
    assert_eq!(d["quota_type"], "users");
    assert_eq!(d["current_usage"], 8);
    assert_eq!(d["plan_limit"], 10);
    assert_eq!(d["requested_increase"], 3);
    assert_eq!(d["available_slots"], 2);
    assert_eq!(d["suggested_action"], "upgrade_plan");
    assert!(d["upgrade_options"].as_array().is_some_and(|o| !o.is_empty()));
    // Nothing of the refused request exists.
    // (Seats and projects: the monthly API calls grow with these very reads.)
    let after = usage(&owner).await;
    for counter in ["users", "pending_invitations", "projects"] {
        assert_eq!(after["current_usage"][counter], before["current_usage"][counter], "{counter}");
    }
    let pending = get("/v1/users/invitations").token(&owner.access_token).send().await.expect(200);
    let listed: Vec<&str> =
        pending.body["data"].as_array().expect("data").iter().filter_map(|i| i["email"].as_str()).collect();
    assert!(three.iter().all(|e| !listed.contains(&e.as_str())));
    // Two fit exactly; then even a direct creation is refused.
    invite(&owner.access_token, &three[..2], "developer").await.expect(201);
    let full = post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": three[2], "password": PASSWORD, "first_name": "a", "last_name": "b"}))
        .send()
        .await
        .expect_error(403, "quota_exceeded");
    assert_eq!(full.body["details"]["available_slots"], 0);
    let u = usage(&owner).await;
    assert_eq!(u["quota_status"]["users"]["status"], "critical");
    assert_eq!(u["quota_status"]["users"]["available"], 0);
}

#[tokio::test]
async fn a_concurrent_burst_of_invites_never_passes_the_limit() {
    let owner = register_owner().await;
    let lists: Vec<Vec<String>> = (0..15).map(|_| emails(1)).collect();
    let calls = lists.iter().map(|list| invite(&owner.access_token, list, "user"));
    let replies = futures::future::join_all(calls).await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused = replies.iter().filter(|r| r.status == 403 && r.body["error"] == "quota_exceeded").count();
    assert_eq!(created, 9, "statuses {:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    assert_eq!(refused, 6);
    assert_eq!(usage(&owner).await["current_usage"]["users"], 10);
}

#[tokio::test]
async fn usage_matches_what_was_created() {
    let owner = register_owner().await;
    member_with_role(&owner, "developer").await;
    member_with_role(&owner, "admin").await;
    invite(&owner.access_token, &emails(1), "user").await.expect(201);
    let u = usage(&owner).await;
    assert_eq!(u["plan"], "free");
    assert_eq!(u["current_usage"]["users"], 4);
    assert_eq!(u["current_usage"]["pending_invitations"], 1);
    assert_eq!(u["plan_limits"]["users"], 10);
    assert_eq!(
        u["quota_status"]["users"],
        json!({"usage_percentage": 40.0, "status": "healthy", "available": 6, "limit": 10})
    );
    let stats =
        get(&format!("/v1/tenants/{}/stats", owner.tenant_id)).token(&owner.access_token).send().await.expect(200);
    assert_eq!(stats.body["total_users"], 3);
    assert_eq!(stats.body["pending_invitations"], 1);
    assert_eq!(stats.body["user_count_by_role"], json!({"owner": 1, "admin": 1, "developer": 1, "user": 0}));
}

#[tokio::test]
async fn another_tenants_users_answer_404() {
    let a = register_owner().await;
    let b = register_owner().await;
    let path = format!("/v1/users/{}", a.user_id);
    get(&path).token(&b.access_token).send().await.expect_error(404, "not_found");
    put(&path).token(&b.access_token).json(&json!({"first_name": "pwned"})).send().await.expect_error(404, "not_found");
    delete(&path).token(&b.access_token).send().await.expect_error(404, "not_found");
    let list = get("/v1/users").token(&b.access_token).send().await.expect(200);
    assert!(list.body["data"].as_array().expect("data").iter().all(|u| u["tenant_id"] == b.tenant_id.as_str()));
    let me = get(&path).token(&a.access_token).send().await.expect(200);
    assert_eq!(me.body["first_name"], "Olive");
}

#[tokio::test]
async fn user_changes_leave_audit_entries_with_old_and_new_values() {
    let owner = register_owner().await;
    let dev = member_with_role(&owner, "developer").await;
    put(&format!("/v1/users/{}", dev.user_id))
        .token(&owner.access_token)
        .json(&json!({"role": "admin", "last_name": "Lovelace"}))
        .send()
        .await
        .expect(200);
    delete(&format!("/v1/users/{}", dev.user_id)).token(&owner.access_token).send().await.expect(204);
    let trail = get("/v1/audit/logs?resource_type=user").token(&owner.access_token).send().await.expect(200);
    let entries: Vec<&Value> = trail.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["resource_id"] == dev.user_id.as_str())
        .collect();
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    assert_eq!(
        entries[1]["old_values"],
        json!({"role": "developer", "last_name": "developer", "full_name": "Ada developer"})
    );
    assert_eq!(
        entries[1]["new_values"],
        json!({"role": "admin", "last_name": "Lovelace", "full_name": "Ada Lovelace"})
    );
    assert_eq!(entries[0]["old_values"]["email"], dev.email.as_str());
    assert_eq!(entries[2]["new_values"]["role"], "developer");
    assert!(!trail.body.to_string().contains(PASSWORD));
    let invites = get("/v1/audit/logs?resource_type=invitation").token(&owner.access_token).send().await.expect(200);
    assert!(invites.body["data"].as_array().expect("data").is_empty());
}

#[tokio::test]
async fn user_bodies_are_validated_field_by_field() {
    let owner = register_owner().await;
    let reply = post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": "nope", "password": "short", "role": "boss"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    let mut fields = reply.invalid_fields();
    fields.sort();
    assert_eq!(fields, ["email", "first_name", "last_name", "password", "role"]);
    // An unknown field is named beside every other problem of the body.
    let reply = post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": "nope", "extra": true, "password": "short", "role": "boss"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["email", "extra", "first_name", "last_name", "password", "role"]);
    let reply = invite(&owner.access_token, &["ok@x.example".into(), "bad".into()], "user")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["emails[1]"]);
    // Listed twice: a rule over the parsed list.
    let reply = invite(&owner.access_token, &["ok@x.example".into(), "OK@x.example".into()], "user")
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["emails[1]"]);
    invite(&owner.access_token, &[], "user").await.expect_error(400, "validation_failed");
    let dev = member_with_role(&owner, "developer").await;
    let reply = put(&format!("/v1/users/{}", dev.user_id))
        .token(&owner.access_token)
        .json(&json!({"email": "new@x.example"}))
        .send()
        .await
        .expect_error(400, "validation_failed");
    assert_eq!(reply.invalid_fields(), ["email"]);
    get("/v1/users/not-a-uuid").token(&owner.access_token).send().await.expect_error(400, "validation_failed");
}

/// The provisioner records the `admin_email` invitation; a platform admin
/// issues its token and the new tenant's first owner signs up with it.
#[tokio::test]
async fn the_admin_invitation_of_a_provisioned_tenant_can_be_issued_and_accepted() {
    let token = platform_admin_token().await;
    let admin_email = format!("first-owner-{}@example.com", unique());
    let mut body = valid_tenant_body();
    body["admin_email"] = json!(admin_email);
    let tenant = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
    let id = tenant["id"].as_str().expect("id").to_owned();
    let pending = eventually("the admin invitation", std::time::Duration::from_secs(30), || async {
        let reply = get("/v1/users/invitations").token(&token).header("x-tenant-id", &id).send().await.expect(200);
        reply.body["data"].as_array().and_then(|d| d.first().cloned())
    })
    .await;
    assert_eq!(pending["email"], admin_email.as_str());
    assert_eq!(pending["role"], "owner");
    let issued = post(&format!("/v1/users/invitations/{admin_email}/resend"))
        .token(&token)
        .header("x-tenant-id", &id)
        .send()
        .await
        .expect(200);
    let invite_token = issued.body["token"].as_str().expect("token");
    let accepted = post("/v1/auth/invitations/accept")
        .json(&json!({"token": invite_token, "password": PASSWORD, "first_name": "First", "last_name": "Owner"}))
        .send()
        .await
        .expect(201);
    assert_eq!(accepted.body["user"]["role"], "owner");
    assert_eq!(accepted.body["user"]["tenant_id"], id.as_str());
    let owner = member_from(&accepted.body, &admin_email);
    let stats = get(&format!("/v1/tenants/{id}/stats")).token(&owner.access_token).send().await.expect(200);
    assert_eq!(stats.body["total_users"], 1);
    assert_eq!(stats.body["pending_invitations"], 0);
}

#[tokio::test]
async fn revoking_an_invitation_frees_its_seat_and_kills_its_token() {
    let owner = register_owner().await;
    let address = emails(1);
    let reply = invite(&owner.access_token, &address, "user").await.expect(201);
    let token = reply.body["invitations"][0]["token"].as_str().expect("token").to_owned();
    assert_eq!(usage(&owner).await["current_usage"]["users"], 2);
    delete(&format!("/v1/users/invitations/{}", address[0])).token(&owner.access_token).send().await.expect(204);
    assert_eq!(usage(&owner).await["current_usage"]["users"], 1);
    post("/v1/auth/invitations/accept")
        .json(&json!({"token": token, "password": PASSWORD, "first_name": "a", "last_name": "b"}))
        .send()
        .await
        .expect_error(401, "invalid_token");
    delete(&format!("/v1/users/invitations/{}", address[0]))
        .token(&owner.access_token)
        .send()
        .await
        .expect_error(404, "not_found");
}

/// The `user.*` events a tenant's changes wrote to its outbox, oldest
/// first, as `(type, data)`.
async fn outbox(tenant_id: &str) -> Vec<(String, Value)> {
    outbox_events(tenant_id)
        .await
        .into_iter()
        .filter_map(|event| Some((event["type"].as_str()?.to_owned(), event["data"].clone())))
        .filter(|(kind, _)| kind.starts_with("user."))
        .collect()
}

#[tokio::test]
async fn every_change_to_users_writes_its_event_with_the_change() {
    let owner = register_owner().await;
    let dev = member_with_role(&owner, "developer").await;
    let address = emails(1);
    let invited = invite(&owner.access_token, &address, "user").await.expect(201);
    let invitation_id = invited.body["invitations"][0]["id"].as_str().expect("id").to_owned();
    let token = invited.body["invitations"][0]["token"].as_str().expect("token").to_owned();
    let path = format!("/v1/users/{}", dev.user_id);
    put(&path).token(&owner.access_token).json(&json!({"role": "admin"})).send().await.expect(200);
    delete(&path).token(&owner.access_token).send().await.expect(204);
    let accept = json!({"token": token, "password": PASSWORD, "first_name": "In", "last_name": "Vitee"});
    let accepted = post("/v1/auth/invitations/accept").json(&accept).send().await.expect(201);
    let invitee = accepted.body["user"]["id"].as_str().expect("id").to_owned();
    // Refusals write nothing.
    put(&format!("/v1/users/{}", owner.user_id))
        .token(&owner.access_token)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .expect_error(409, "conflict");

    let events = outbox(&owner.tenant_id).await;
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["user.created", "user.created", "user.invited", "user.updated", "user.deleted", "user.created"],
        "{events:#?}"
    );
    assert_eq!(
        events[0].1,
        json!({"user_id": owner.user_id, "email": owner.email, "role": "owner", "via": "registration"})
    );
    assert_eq!(events[1].1, json!({"user_id": dev.user_id, "email": dev.email, "role": "developer", "via": "api"}));
    assert_eq!(events[2].1, json!({"invitation_id": invitation_id, "email": address[0], "role": "user"}));
    assert_eq!(events[3].1, json!({"user_id": dev.user_id, "role": "admin", "is_active": true}));
    assert_eq!(events[4].1, json!({"user_id": dev.user_id}));
    assert_eq!(events[5].1, json!({"user_id": invitee, "email": address[0], "role": "user", "via": "invitation"}));
}

#[tokio::test]
async fn an_invitation_into_a_deactivated_tenant_cannot_be_accepted() {
    let owner = register_owner().await;
    let address = emails(1);
    let reply = invite(&owner.access_token, &address, "user").await.expect(201);
    let token = reply.body["invitations"][0]["token"].as_str().expect("token").to_owned();
    let admin = platform_admin_token().await;
    delete(&format!("/v1/tenants/{}", owner.tenant_id)).token(&admin).send().await.expect(204);
    let accept = json!({"token": token, "password": PASSWORD, "first_name": "In", "last_name": "Vitee"});
    post("/v1/auth/invitations/accept").json(&accept).send().await.expect_error(401, "invalid_token");
    post("/v1/auth/login")
        .json(&json!({"email": address[0], "password": PASSWORD}))
        .send()
        .await
        .expect_error(401, "unauthorized");
    assert!(!outbox(&owner.tenant_id).await.iter().any(|(_, data)| data["via"] == "invitation"));
}

#[tokio::test]
async fn an_invite_naming_a_member_or_a_pending_invitee_is_refused_whole_and_names_that_address() {
    let owner = register_owner().await;
    let pending = emails(1);
    invite(&owner.access_token, &pending, "user").await.expect(201);
    let fresh = emails(2);

    let reply = invite(&owner.access_token, &[fresh[0].clone(), pending[0].clone()], "user").await;
    let reply = reply.expect_error(409, "conflict");
    assert_eq!(reply.body["details"], json!({"field": "emails", "email": pending[0]}));
    let reply = invite(&owner.access_token, &[fresh[1].clone(), owner.email.clone(), pending[0].clone()], "user").await;
    let reply = reply.expect_error(409, "conflict");
    assert_eq!(reply.body["details"], json!({"field": "email", "email": owner.email}));
    assert_eq!(reply.body["message"], format!("{} already has an account", owner.email));

    let listed = get("/v1/users/invitations").token(&owner.access_token).send().await.expect(200);
    let invited: Vec<&str> =
        listed.body["data"].as_array().expect("data").iter().filter_map(|i| i["email"].as_str()).collect();
    assert_eq!(invited, [pending[0].as_str()]);
    assert_eq!(usage(&owner).await["current_usage"]["users"], 2);
}
