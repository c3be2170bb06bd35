//! TOTP MFA end to end (seed 000 scenario 3 step 3): setup, verify, the
//! sign-in challenge, each code once, backup codes, disable; and the
//! tenant's sign-in policies (`mfa_required`, `sso_required`,
//! `ip_whitelisting`). Codes come from pyotp (infra/venv.sh installs it), a
//! TOTP implementation we did not write.
//!
//! Each TOTP code is taken at an offset from the test's own clock (0 or
//! +30 s, never -30 s): the server reads its clock later, so a code the
//! test computed just before a step boundary is still inside the server's
//! window. A test that needs a third code uses a backup code instead of
//! waiting for the next step.

use std::process::Command;

use platform_tests::*;
use serde_json::{Value, json};

/// pyotp's code for `secret` (base32) or an `otpauth://` URI, at the
/// test's clock plus `offset` seconds.
pub(crate) fn pyotp(secret_or_uri: &str, offset: i64) -> String {
    let script = "import pyotp, sys, time\n\
                  s = sys.argv[1]\n\
                  t = pyotp.parse_uri(s) if s.startswith('otpauth://') else pyotp.TOTP(s)\n\
                  print(t.at(int(time.time()) + int(sys.argv[2])))";
    let output = Command::new(venv_python())
        .args(["-c", script, secret_or_uri, &offset.to_string()])
        .output()
        .expect("run the venv's python (infra/venv.sh)");
    assert!(output.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

/// A six-digit code that is none of the window's.
fn wrong_code(secret: &str) -> String {
    let near: Vec<String> = [-30, 0, 30, 60].iter().map(|o| pyotp(secret, *o)).collect();
    (0..).map(|n| format!("{:06}", 100_000 + n * 7)).find(|c| !near.contains(c)).expect("a code")
}

fn is_backup_code(code: &str) -> bool {
    code.len() == 11
        && code.as_bytes()[5] == b'-'
        && code.bytes().enumerate().all(|(i, b)| i == 5 || b.is_ascii_digit())
}

struct Enrolled {
    secret: String,
    backup_codes: Vec<String>,
    /// The code verify spent.
    first_code: String,
}

async fn setup(token: &str) -> Reply {
    post("/v1/auth/mfa/setup")
        .token(token)
        .json(&json!({"method": "totp", "device_name": "iPhone 15 Pro - John Smith"}))
        .send()
        .await
}

/// Sets up and verifies MFA (the verify spends the current step's code).
async fn enrol(member: &Member) -> Enrolled {
    let reply = setup(&member.access_token).await.expect(200);
    let secret = reply.body["mfa_setup"]["secret"].as_str().expect("secret").to_owned();
    let backup_codes: Vec<String> = reply.body["mfa_setup"]["backup_codes"]
        .as_array()
        .expect("backup codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    let first_code = pyotp(&secret, 0);
    let verified = post("/v1/auth/mfa/verify")
        .token(&member.access_token)
        .json(&json!({"code": first_code, "method": "totp"}))
        .send()
        .await
        .expect(200);
    assert_eq!(verified.body["enabled"], true);
    Enrolled { secret, backup_codes, first_code }
}

async fn login(email: &str) -> Reply {
    post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD})).send().await
}

/// A login that must answer an MFA challenge: its `mfa_token`.
async fn challenged(email: &str) -> String {
    let reply = login(email).await.expect(200);
    assert_eq!(reply.body["mfa_required"], true, "{:#}", reply.body);
    assert!(reply.body.get("access_token").is_none(), "no tokens before the second factor");
    reply.body["mfa_token"].as_str().expect("mfa_token").to_owned()
}

async fn challenge(mfa_token: &str, code: &str) -> Reply {
    post("/v1/auth/mfa/challenge").json(&json!({"mfa_token": mfa_token, "code": code})).send().await
}

async fn audit_entries(token: &str, action: &str) -> Vec<Value> {
    let reply = get(&format!("/v1/audit/logs?action={action}&limit=100")).token(token).send().await.expect(200);
    reply.body["data"].as_array().expect("data").clone()
}

async fn set_security(owner: &Member, security: Value, from: &str) {
    patch(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .header("x-forwarded-for", from)
        .json(&json!({"configuration": {"security": security}}))
        .send()
        .await
        .expect(200);
}

#[tokio::test]
async fn mfa_setup_verify_and_a_challenged_sign_in_take_each_code_once() {
    let owner = register_owner().await;
    let status = get("/v1/auth/mfa").token(&owner.access_token).send().await.expect(200);
    assert_eq!(
        status.body,
        json!({"enabled": false, "pending_setup": false, "method": null, "device_name": null,
               "backup_codes_remaining": 0, "enabled_at": null})
    );

    // Seed 000's setup answer.
    let reply = setup(&owner.access_token).await.expect(200);
    let body = &reply.body;
    assert_eq!(body["verification_required"], true);
    let setup = &body["mfa_setup"];
    let secret = setup["secret"].as_str().expect("secret");
    assert_eq!(secret.len(), 32, "160 bits in base32");
    assert!(secret.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)), "{secret}");
    let uri = setup["otpauth_uri"].as_str().expect("otpauth_uri");
    let account = owner.email.replace('@', "%40");
    assert!(uri.starts_with(&format!("otpauth://totp/SaaS%20Platform:{account}?secret={secret}")), "{uri}");
    assert!(uri.contains("&issuer=SaaS%20Platform"), "{uri}");
    assert!(setup["qr_code"].as_str().is_some_and(|q| q.starts_with("data:image/png;base64,iVBORw0KGgo")));
    let codes: Vec<&str> = setup["backup_codes"].as_array().expect("codes").iter().filter_map(Value::as_str).collect();
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| is_backup_code(c)), "{codes:?}");
    assert_eq!(codes.iter().collect::<std::collections::BTreeSet<_>>().len(), 10, "distinct");
    assert!(setup["recovery_instructions"].as_str().is_some_and(|r| r.contains("Store backup codes")));
    assert_eq!(setup["device_name"], "iPhone 15 Pro - John Smith");
    let pending = get("/v1/auth/mfa").token(&owner.access_token).send().await.expect(200);
    assert_eq!((&pending.body["enabled"], &pending.body["pending_setup"]), (&json!(false), &json!(true)));
    // Not on until verified: a login still answers tokens.
    assert!(login(&owner.email).await.expect(200).body["access_token"].is_string());

    let wrong = post("/v1/auth/mfa/verify")
        .token(&owner.access_token)
        .json(&json!({"code": wrong_code(secret), "method": "totp"}))
        .send()
        .await
        .expect_error(400, "invalid_mfa_code");
    assert_eq!(wrong.body["details"]["field"], "code");
    // The code pyotp derives from the URI an app would scan.
    let verified = post("/v1/auth/mfa/verify")
        .token(&owner.access_token)
        .json(&json!({"code": pyotp(uri, 0), "method": "totp"}))
        .send()
        .await
        .expect(200);
    assert_eq!(verified.body["enabled"], true);
    assert_eq!(verified.body["method"], "totp");
    assert_eq!(verified.body["device_name"], "iPhone 15 Pro - John Smith");
    assert_eq!(verified.body["backup_codes_remaining"], 10);
    assert!(verified.body["enabled_at"].is_string());
    let again = setup_again(&owner.access_token).await;
    assert_eq!(again.body["details"]["reason"], "mfa_already_enabled");

    // The login answers a challenge; the challenge answers the tokens.
    let reply = login(&owner.email).await.expect(200);
    assert_eq!(reply.body["mfa_required"], true);
    assert_eq!(reply.body["mfa_enrollment_required"], false);
    assert_eq!(reply.body["methods"], json!(["totp", "backup_code"]));
    assert!(reply.body["expires_in"].as_i64().is_some_and(|s| (290..=300).contains(&s)), "{:#}", reply.body);
    assert!(reply.body.get("access_token").is_none() && reply.body.get("refresh_token").is_none());
    let mfa_token = reply.body["mfa_token"].as_str().expect("mfa_token");
    assert!(mfa_token.starts_with(&format!("mfa.{}.", owner.tenant_id)), "{mfa_token}");
    let code = pyotp(secret, 30);
    let signed_in = challenge(mfa_token, &code).await.expect(200);
    assert_eq!(signed_in.body["user"]["id"], owner.user_id.as_str());
    assert_eq!(signed_in.body["token_type"], "bearer");
    let access = signed_in.body["access_token"].as_str().expect("access_token").to_owned();
    assert!(signed_in.body["refresh_token"].as_str().is_some_and(|t| t.starts_with("rt.")));
    get("/v1/auth/me").token(&access).send().await.expect(200);
    // The token is spent with its code.
    challenge(mfa_token, codes[0]).await.expect_error(401, "invalid_token");

    // The same code again, within its window: refused.
    let mfa_token = challenged(&owner.email).await;
    let replayed = challenge(&mfa_token, &code).await.expect_error(401, "invalid_mfa_code");
    assert_eq!(replayed.body["details"]["attempts_remaining"], 4);
    // A backup code works once (with or without its dash).
    challenge(&mfa_token, codes[0]).await.expect(200);
    let mfa_token = challenged(&owner.email).await;
    challenge(&mfa_token, codes[0]).await.expect_error(401, "invalid_mfa_code");
    challenge(&mfa_token, &codes[1].replace('-', "")).await.expect(200);
    let status = get("/v1/auth/mfa").token(&access).send().await.expect(200);
    assert_eq!(status.body["backup_codes_remaining"], 8);

    // Every step is on the record, without a secret.
    assert_eq!(audit_entries(&access, "mfa_setup").await.len(), 1);
    assert_eq!(audit_entries(&access, "mfa_enabled").await.len(), 1);
    assert_eq!(audit_entries(&access, "mfa_challenge_issued").await.len(), 3);
    let passed = audit_entries(&access, "mfa_challenge_passed").await;
    let methods: Vec<&str> = passed.iter().filter_map(|e| e["new_values"]["method"].as_str()).collect();
    assert_eq!(methods.len(), 3);
    assert_eq!(methods.iter().filter(|m| **m == "backup_code").count(), 2, "{methods:?}");
    let used = audit_entries(&access, "backup_code_used").await;
    let mut remaining: Vec<i64> =
        used.iter().filter_map(|e| e["new_values"]["backup_codes_remaining"].as_i64()).collect();
    remaining.sort();
    assert_eq!(remaining, [8, 9]);
    let failed = audit_entries(&access, "mfa_challenge_failed").await;
    assert_eq!(failed.len(), 2);
    assert!(failed.iter().all(|e| e["user"]["id"] == owner.user_id.as_str()));
    let trail = get("/v1/audit/logs?limit=100").token(&access).send().await.expect(200).body.to_string();
    assert!(!trail.contains(secret) && !codes.iter().any(|c| trail.contains(c)), "a secret leaked into the trail");
    let status = get("/v1/auth/mfa").token(&access).send().await.expect(200).body.to_string();
    assert!(!status.contains(secret), "the secret is shown once");
}

async fn setup_again(token: &str) -> Reply {
    setup(token).await.expect_error(409, "conflict")
}

#[tokio::test]
async fn five_wrong_codes_burn_the_mfa_token() {
    let owner = register_owner().await;
    let enrolled = enrol(&owner).await;
    let mfa_token = challenged(&owner.email).await;
    for left in (0..5).rev() {
        let reply = challenge(&mfa_token, "00000-00000").await.expect_error(401, "invalid_mfa_code");
        assert_eq!(reply.body["details"]["attempts_remaining"], left);
    }
    let burnt = challenge(&mfa_token, &enrolled.backup_codes[0]).await.expect_error(401, "invalid_token");
    assert!(burnt.body["message"].as_str().is_some_and(|m| m.contains("sign in again")));
    // The right code tried on the burnt token was not spent.
    let status = get("/v1/auth/mfa").token(&owner.access_token).send().await.expect(200);
    assert_eq!(status.body["backup_codes_remaining"], 10);
    let failed = audit_entries(&owner.access_token, "mfa_challenge_failed").await;
    assert_eq!(failed.len(), 5);
    assert_eq!(failed.iter().filter(|e| e["new_values"]["challenge_burnt"] == true).count(), 1);
}

#[tokio::test]
async fn another_tenants_or_a_forged_mfa_token_is_refused() {
    let (a, b) = (register_owner().await, register_owner().await);
    let a_codes = enrol(&a).await.backup_codes;
    enrol(&b).await;
    let token = challenged(&a.email).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4);
    let in_b = format!("mfa.{}.{}.{}", b.tenant_id, parts[2], parts[3]);
    challenge(&in_b, &a_codes[0]).await.expect_error(401, "invalid_token");
    let other_secret = format!("mfa.{}.{}.{}", parts[1], parts[2], "A".repeat(43));
    challenge(&other_secret, &a_codes[0]).await.expect_error(401, "invalid_token");
    challenge("rt.x.y.z", &a_codes[0]).await.expect_error(401, "invalid_token");
    // Accepted by the challenge only: not an access token, not an enrolment.
    get("/v1/auth/me").token(&token).send().await.expect(401);
    setup(&token).await.expect_error(401, "invalid_token");
    // None of that spent it.
    let signed_in = challenge(&token, &a_codes[0]).await.expect(200);
    assert_eq!(signed_in.body["user"]["id"], a.user_id.as_str());
    assert_eq!(signed_in.body["user"]["tenant_id"], a.tenant_id.as_str());
}

#[tokio::test]
async fn disable_and_new_backup_codes_need_a_fresh_code() {
    let owner = register_owner().await;
    let key = create_api_key(&owner.access_token, &["tenant:read"]).await;
    get("/v1/auth/mfa").api_key(&key.secret).send().await.expect_error(403, "insufficient_permissions");
    let Enrolled { secret, backup_codes: old, first_code } = enrol(&owner).await;
    let token = owner.access_token.as_str();
    let disable = |code: String| post("/v1/auth/mfa/disable").token(token).json(&json!({"code": code}));
    // The code that turned MFA on is spent.
    let replayed = disable(first_code).send().await.expect_error(400, "invalid_mfa_code");
    assert_eq!(replayed.body["details"]["field"], "code");
    post("/v1/auth/mfa/disable").token(token).json(&json!({})).send().await.expect_error(400, "validation_failed");

    let fresh = post("/v1/auth/mfa/backup-codes")
        .token(token)
        .json(&json!({"code": pyotp(&secret, 30)}))
        .send()
        .await
        .expect(200);
    let new: Vec<String> = fresh.body["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").into())
        .collect();
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| is_backup_code(c) && !old.contains(c)));
    // The old set is gone.
    disable(old[0].clone()).send().await.expect_error(400, "invalid_mfa_code");
    let status = get("/v1/auth/mfa").token(token).send().await.expect(200);
    assert_eq!(status.body["backup_codes_remaining"], 10);

    let off = disable(new[0].clone()).send().await.expect(200);
    assert_eq!(off.body["enabled"], false);
    let status = get("/v1/auth/mfa").token(token).send().await.expect(200);
    assert_eq!(status.body["enabled"], false);
    disable(new[1].clone()).send().await.expect_error(409, "conflict");
    // A login answers tokens again.
    assert!(login(&owner.email).await.expect(200).body["access_token"].is_string());
    assert_eq!(audit_entries(token, "backup_codes_regenerated").await.len(), 1);
    let disabled = audit_entries(token, "mfa_disabled").await;
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["old_values"]["enabled"], true);
    assert_eq!(disabled[0]["new_values"]["method"], "backup_code");
}

#[tokio::test]
async fn a_tenant_that_requires_mfa_enrols_its_members_at_sign_in() {
    let owner = register_owner().await;
    let member = member_with_role(&owner, "developer").await;
    set_security(&owner, json!({"mfa_required": true}), "192.0.2.10").await;

    let reply = login(&member.email).await.expect(200);
    assert_eq!(reply.body["mfa_required"], true);
    assert_eq!(reply.body["mfa_enrollment_required"], true);
    assert_eq!(reply.body["methods"], json!(["totp"]));
    assert!(reply.body["expires_in"].as_i64().is_some_and(|s| (590..=600).contains(&s)));
    assert!(reply.body.get("access_token").is_none());
    let enrolment = reply.body["mfa_token"].as_str().expect("mfa_token");
    // It opens setup and verify only.
    get("/v1/auth/me").token(enrolment).send().await.expect(401);
    challenge(enrolment, "123456").await.expect_error(401, "invalid_token");

    let setup = setup(enrolment).await.expect(200);
    let secret = setup.body["mfa_setup"]["secret"].as_str().expect("secret");
    let codes = setup.body["mfa_setup"]["backup_codes"].clone();
    let signed_in = post("/v1/auth/mfa/verify")
        .token(enrolment)
        .json(&json!({"code": pyotp(secret, 0), "method": "totp"}))
        .send()
        .await
        .expect(200);
    assert_eq!(signed_in.body["user"]["id"], member.user_id.as_str());
    let access = signed_in.body["access_token"].as_str().expect("access_token").to_owned();
    let status = get("/v1/auth/mfa").token(&access).send().await.expect(200);
    assert_eq!(status.body["enabled"], true);
    // The enrolment token is spent.
    post("/v1/auth/mfa/verify")
        .token(enrolment)
        .json(&json!({"code": pyotp(secret, 30)}))
        .send()
        .await
        .expect_error(401, "invalid_token");

    // From now on a sign-in is challenged, and MFA cannot be turned off.
    let mfa_token = challenged(&member.email).await;
    challenge(&mfa_token, &pyotp(secret, 30)).await.expect(200);
    let refused = post("/v1/auth/mfa/disable")
        .token(&access)
        .json(&json!({"code": codes[0]}))
        .send()
        .await
        .expect_error(403, "mfa_required");
    assert_eq!(refused.body["details"]["policy"], "configuration.security.mfa_required");
}

#[tokio::test]
async fn sso_required_refuses_members_passwords_but_not_the_owners() {
    let owner = register_owner().await;
    let member = member_with_role(&owner, "admin").await;
    set_security(&owner, json!({"sso_required": true}), "192.0.2.11").await;

    let refused = login(&member.email).await.expect_error(403, "sso_required");
    assert_eq!(refused.body["details"]["initiate"], "POST /v1/auth/sso/{provider}/initiate");
    assert_eq!(refused.body["details"]["tenant_id"], owner.tenant_id.as_str());
    // A wrong password learns nothing of the policy.
    post("/v1/auth/login")
        .json(&json!({"email": member.email, "password": "not the password"}))
        .send()
        .await
        .expect_error(401, "unauthorized");

    // The owner is the break glass, on the record.
    let signed_in = login(&owner.email).await.expect(200);
    let access = signed_in.body["access_token"].as_str().expect("access_token");
    let glass = audit_entries(access, "break_glass_login").await;
    assert_eq!(glass.len(), 1);
    assert_eq!(glass[0]["resource_id"], owner.user_id.as_str());
    let refusals = audit_entries(access, "login_refused").await;
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0]["resource_id"], member.user_id.as_str());
    assert_eq!(refusals[0]["new_values"]["reason"], "sso_required");
}

#[tokio::test]
async fn an_ip_allow_list_refuses_sign_in_from_other_addresses() {
    let owner = register_owner().await;
    let inside = "203.0.113.141";
    set_security(&owner, json!({"ip_whitelisting": ["203.0.113.0/24"]}), inside).await;
    let from = |address: &'static str, password: &str| {
        post("/v1/auth/login")
            .header("x-forwarded-for", address)
            .json(&json!({"email": owner.email, "password": password}))
    };
    let refused = from("198.51.100.141", PASSWORD).send().await.expect_error(403, "ip_not_allowed");
    assert_eq!(refused.body["details"]["ip_address"], "198.51.100.141");
    assert!(refused.body["message"].as_str().is_some_and(|m| m.contains("allow-list")));
    login(&owner.email).await.expect_error(403, "ip_not_allowed");
    // Only once the password matched: a guess learns nothing.
    from("198.51.100.141", "not the password").send().await.expect_error(401, "unauthorized");
    let signed_in = from(inside, PASSWORD).send().await.expect(200);
    let access = signed_in.body["access_token"].as_str().expect("access_token");
    let reply = get("/v1/audit/logs?action=login_refused")
        .token(access)
        .header("x-forwarded-for", inside)
        .send()
        .await
        .expect(200);
    let entries = reply.body["data"].as_array().expect("data");
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert!(entries.iter().all(|e| e["new_values"]["reason"] == "ip_not_allowed"));
}

/// A password reset voids a sign-in that passed the old password and waits
/// for its second factor, as it revokes sessions: the open `mfa_token`
/// takes no code afterwards, and a sign-in with the new password does.
#[tokio::test]
async fn a_password_reset_voids_an_open_mfa_token() {
    let owner = register_owner().await;
    let enrolled = enrol(&owner).await;
    let open = challenged(&owner.email).await;

    post("/v1/auth/password/forgot").json(&json!({"email": owner.email})).send().await.expect(202);
    let token = latest_mail(&owner.email, "Reset your").await.link_token("reset-password").expect("the reset link");
    let new_password = "a fresh passphrase after the reset";
    post("/v1/auth/password/reset").json(&json!({"token": token, "password": new_password})).send().await.expect(200);

    challenge(&open, &enrolled.backup_codes[0]).await.expect_error(401, "invalid_token");
    let signed_in = post("/v1/auth/login").json(&json!({"email": owner.email, "password": new_password})).send().await;
    let fresh = signed_in.expect(200).body["mfa_token"].as_str().expect("mfa_token").to_owned();
    let tokens = challenge(&fresh, &enrolled.backup_codes[0]).await.expect(200);
    assert!(tokens.body["access_token"].is_string(), "{:#}", tokens.body);
}

/// A member who lost their authenticator: an admin removes their MFA,
/// which ends their sessions, is audited and mailed; they sign in with the
/// password alone next. Only a person with the role over them may, never on
/// themself, never across tenants.
#[tokio::test]
async fn an_admin_resets_a_members_lost_mfa_and_ends_their_sessions() {
    let owner = register_owner().await;
    let admin = member_with_role(&owner, "admin").await;
    let member = member_with_role(&owner, "developer").await;
    enrol(&member).await;
    let path = format!("/v1/users/{}/mfa", member.user_id);

    let stranger = register_owner().await;
    delete(&path).token(&stranger.access_token).send().await.expect_error(404, "not_found");
    let peer = member_with_role(&owner, "developer").await;
    delete(&path).token(&peer.access_token).send().await.expect_error(403, "insufficient_permissions");
    let own = delete(&format!("/v1/users/{}/mfa", admin.user_id)).token(&admin.access_token).send().await;
    assert_eq!(own.expect_error(403, "cannot_reset_own_mfa").body["details"]["user_id"], admin.user_id.as_str());
    let above = delete(&format!("/v1/users/{}/mfa", owner.user_id)).token(&admin.access_token).send().await;
    above.expect_error(403, "insufficient_permissions");
    challenged(&member.email).await;

    let reset = delete(&path).token(&admin.access_token).send().await.expect(200);
    assert_eq!(reset.body, json!({"user_id": member.user_id, "mfa_enabled": false, "sessions_revoked": 1}));
    post("/v1/auth/refresh")
        .json(&json!({"refresh_token": member.refresh_token}))
        .send()
        .await
        .expect_error(401, "invalid_token");
    let signed_in = login(&member.email).await.expect(200);
    assert!(signed_in.body["access_token"].is_string(), "the password alone now: {:#}", signed_in.body);
    let status = get("/v1/auth/mfa").token(signed_in.body["access_token"].as_str().expect("token")).send().await;
    assert_eq!(status.expect(200).body["enabled"], false);
    delete(&path).token(&admin.access_token).send().await.expect_error(404, "not_found");

    let resets = audit_entries(&owner.access_token, "mfa_reset").await;
    assert_eq!(resets.len(), 1, "{resets:#?}");
    assert_eq!(resets[0]["resource_id"], member.user_id.as_str());
    let mail = latest_mail(&member.email, "reset by an administrator").await;
    assert!(mail.body.contains("turned off by an administrator"), "{}", mail.body);
}
