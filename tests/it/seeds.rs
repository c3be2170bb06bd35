//! The seeds' own examples work (issue 10, item 6). Every request body a seed
//! shows for a route we serve is kept verbatim in `tests/fixtures/seeds/`;
//! `index.json` there says where each comes from (seed, line, method, route)
//! and which fields a test may replace, and its README lists the examples of
//! routes not served yet. The tests here send each body as it stands and
//! expect success with the fields sent echoed back.
//!
//! Only two kinds of field are ever replaced, each listed in `index.json` and
//! checked by [`Example::set`]: a fixed slug or email that must be unique per
//! test run (the seeds' own values stay in the fixtures), and a placeholder
//! that stands for an id made earlier in the seed's flow (`<ministry-id>`,
//! `{{projectId}}`, `your_refresh_token`). Everything else is sent verbatim.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use platform_tests::*;
use serde::Deserialize;
use serde_json::{Value, json};

// ------------------------------------------------------------- fixtures --

#[derive(Debug, Deserialize)]
struct Entry {
    fixture: String,
    seed: String,
    line: usize,
    method: String,
    route: String,
    substituted: Vec<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seeds")
}

fn index() -> Vec<Entry> {
    let text = std::fs::read_to_string(fixtures_dir().join("index.json")).expect("tests/fixtures/seeds/index.json");
    serde_json::from_str(&text).expect("index.json is a list of entries")
}

/// One seed example: its body and the fields a test may replace.
struct Example {
    name: &'static str,
    body: Value,
    substituted: Vec<String>,
}

impl Example {
    /// Replaces one field the index lists as substituted.
    fn set(mut self, field: &str, value: impl Into<Value>) -> Self {
        assert!(
            self.substituted.iter().any(|f| f == field),
            "{}: `{field}` is not listed as substituted in index.json",
            self.name
        );
        assert!(self.body.get(field).is_some(), "{}: has no `{field}` to replace", self.name);
        self.body[field] = value.into();
        self
    }
}

fn example(name: &'static str) -> Example {
    let entry =
        index().into_iter().find(|e| e.fixture == name).unwrap_or_else(|| panic!("{name} is not in index.json"));
    let text = std::fs::read_to_string(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    Example { name, body, substituted: entry.substituted }
}

/// Asserts that `reply` carries every field of `sent` unchanged, except `skip`.
fn assert_echoes(reply: &Value, sent: &Value, skip: &[&str]) {
    let fields = sent.as_object().expect("an object body");
    for (field, value) in fields.iter().filter(|(f, _)| !skip.contains(&f.as_str())) {
        assert_eq!(&reply[field], value, "field {field} not echoed; reply: {reply:#}");
    }
}

/// A slug unique to this run, recognisably the seed's own.
fn unique_slug(seed_slug: &str) -> String {
    format!("{seed_slug}-{}", unique())
}

/// An email unique to this run, recognisably the seed's own (`local+id@domain`).
fn unique_email(seed_email: &str) -> String {
    let (local, domain) = seed_email.split_once('@').expect("an email");
    format!("{local}+{}@{domain}", unique())
}

/// Signs up a tenant owner with `password` (a seed's login example needs an
/// account with the seed's password); returns the email.
async fn account_with_password(password: &str) -> String {
    let id = unique();
    let email = format!("seed-login-{id}@tenant-{id}.example");
    post("/v1/auth/register")
        .json(&json!({
            "email": email, "password": password, "password_confirm": password,
            "first_name": "Seed", "last_name": "Login", "tenant_name": format!("Seed login {id}"),
        }))
        .send()
        .await
        .expect(201);
    email
}

// ---------------------------------------------- fixtures match the seeds --

/// Where the seeds live: `../shared/seeds` beside the repository (CI has it),
/// or `SEEDS_DIR`.
fn seeds_dir() -> PathBuf {
    std::env::var_os("SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds"))
}

/// Every JSON value in `text` that starts at a `{` or `[`, with the line it
/// starts on: seeds mix JSON with HTTP lines and comments, so each opening
/// bracket is tried on its own and whitespace never matters.
fn json_values_by_line(text: &str) -> Vec<(usize, Value)> {
    let mut values = Vec::new();
    for (offset, _) in text.char_indices().filter(|(_, c)| *c == '{' || *c == '[') {
        if let Some(Ok(value)) = serde_json::Deserializer::from_str(&text[offset..]).into_iter::<Value>().next() {
            values.push((text[..offset].matches('\n').count() + 1, value));
        }
    }
    values
}

#[test]
fn the_fixtures_index_and_readme_agree() {
    let entries = index();
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).expect("tests/fixtures/seeds/README.md");
    let this_file = include_str!("seeds.rs");
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != "index.json" && n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut indexed: Vec<String> = entries.iter().map(|e| e.fixture.clone()).collect();
    indexed.sort();
    assert_eq!(on_disk, indexed, "every fixture file is in index.json, and only those");
    for e in &entries {
        assert!(e.fixture.starts_with(&e.seed[..3]), "{} is named after its seed {}", e.fixture, e.seed);
        assert!(["POST", "PUT", "PATCH"].contains(&e.method.as_str()), "{}: method {}", e.fixture, e.method);
        assert!(e.route.starts_with("/v1/"), "{}: route {}", e.fixture, e.route);
        assert!(readme.contains(&e.fixture), "README.md does not list {}", e.fixture);
        assert!(this_file.contains(&format!("example(\"{}\")", e.fixture)), "no test sends {}", e.fixture);
    }
}

/// Each fixture is, as parsed JSON, a value that starts on its indexed line of
/// its seed. Without the seeds folder this says so loudly and passes.
#[test]
fn every_fixture_is_a_verbatim_copy_of_its_seed_example() {
    let dir = seeds_dir();
    if !dir.is_dir() {
        // Straight to stderr: libtest captures print!/eprint! of passing tests.
        let _ = writeln!(
            std::io::stderr().lock(),
            "\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
             !! SEED FIXTURES NOT CHECKED: {} is missing.\n\
             !! tests/fixtures/seeds/*.json could not be compared with the seeds.\n\
             !! Put the seeds beside the repository (../shared/seeds) or set SEEDS_DIR.\n\
             !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
            dir.display()
        );
        return;
    }
    let mut problems = Vec::new();
    for entry in index() {
        let seed_path = dir.join(&entry.seed);
        let Ok(text) = std::fs::read_to_string(&seed_path) else {
            problems.push(format!("{}: seed {} is missing", entry.fixture, seed_path.display()));
            continue;
        };
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures_dir().join(&entry.fixture)).expect("fixture"))
                .expect("fixture JSON");
        let lines: Vec<usize> =
            json_values_by_line(&text).into_iter().filter(|(_, v)| *v == fixture).map(|(l, _)| l).collect();
        if lines.is_empty() {
            problems.push(format!("{}: no longer appears in {}", entry.fixture, entry.seed));
        } else if !lines.contains(&entry.line) {
            problems.push(format!("{}: index says line {}, found at line(s) {lines:?}", entry.fixture, entry.line));
        }
    }
    assert!(problems.is_empty(), "fixtures out of step with the seeds:\n{}", problems.join("\n"));
}

// -------------------------------------------------------------- seed 002 --

/// Seed 002 line 19: login as the seed's administrator.
#[tokio::test]
async fn seed_002_login() {
    // The seed's password, on an account made for it (unique email).
    let email = account_with_password("minesup2024").await;
    let body = example("002-login-1.json").set("email", email.as_str()).body;
    let reply = post("/v1/auth/login").json(&body).send().await.expect(200);
    assert_eq!(reply.body["token_type"], "bearer");
    assert!(reply.body["access_token"].is_string());
    assert_eq!(reply.body["user"]["email"], email.as_str());
}

/// Seed 002's hierarchy (ministry > university > faculty), then its full
/// create under the ministry, get, update, delete and reactivation.
#[tokio::test]
async fn seed_002_hierarchy_create_get_update_delete_and_reactivate() {
    let token = platform_admin_token().await;
    let create = |body: Value| {
        let token = token.clone();
        async move {
            let reply = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
            assert_echoes(&reply, &body, &[]);
            assert_eq!(reply["status"], "provisioning");
            reply
        }
    };

    // Only name, slug and type (and the parent): the rest takes the defaults.
    let ministry = example("002-create-tenant-2.json").set("slug", unique_slug("minesup")).body;
    let ministry = create(ministry).await;
    assert_eq!((&ministry["max_users"], &ministry["max_diplomas"]), (&json!(10), &json!(100)));
    assert_eq!(ministry["storage_quota_mb"], 1_000);
    assert!(ministry["contact_email"].is_null() && ministry["legal_status"].is_null());
    let ministry_id = ministry["id"].as_str().expect("id").to_owned();
    // `<ministry-id>` and `<university-id>` stand for the tenants just made.
    let university =
        example("002-create-tenant-3.json").set("slug", unique_slug("uy1")).set("parent_id", ministry_id.as_str()).body;
    let university_id = create(university).await["id"].as_str().expect("id").to_owned();
    let faculty = example("002-create-tenant-4.json")
        .set("slug", unique_slug("fos-uy1"))
        .set("parent_id", university_id.as_str())
        .body;
    create(faculty).await;

    // The full create: 15,000 diplomas (its table said at most 10,000). Its
    // parent_id is a fixed example UUID; here, the ministry.
    let full =
        example("002-create-tenant-1.json").set("slug", unique_slug("ub")).set("parent_id", ministry_id.as_str()).body;
    let created = create(full.clone()).await;
    let id = created["id"].as_str().expect("id");
    let path = format!("/v1/tenants/{id}");
    let fetched = get(&path).token(&token).send().await.expect(200).body;
    assert_echoes(&fetched, &full, &[]);

    // Its update, by the platform admin (max_* are platform fields).
    let update = example("002-update-tenant-1.json").body;
    let updated = put(&path).token(&token).json(&update).send().await.expect(200).body;
    assert_echoes(&updated, &update, &["status"]);
    assert_eq!((&updated["status"], &updated["is_active"]), (&json!("active"), &json!(true)));
    assert_eq!(updated["slug"], full["slug"]);

    // Use case 3: a deleted (inactive) tenant is reactivated.
    delete(&path).token(&token).send().await.expect(204);
    let inactive = get(&path).token(&token).send().await.expect(200).body;
    assert_eq!(inactive["status"], "inactive");
    let reactivate = example("002-update-tenant-2.json").body;
    let reactivated = put(&path).token(&token).json(&reactivate).send().await.expect(200).body;
    assert_eq!((&reactivated["status"], &reactivated["is_active"]), (&json!("active"), &json!(true)));
}

// -------------------------------------------------------------- seed 003 --

/// Seed 003's sign-up, both logins and the refresh.
#[tokio::test]
async fn seed_003_register_login_token_and_refresh() {
    let register = example("003-register-1.json").set("email", unique_email("user@example.com")).body;
    let email = register["email"].as_str().expect("email").to_owned();
    let reply = post("/v1/auth/register").json(&register).send().await.expect(201).body;
    assert_echoes(&reply["user"], &register, &["password", "password_confirm", "tenant_name", "tenant_domain"]);
    assert_eq!(reply["tenant"]["name"], register["tenant_name"]);
    assert_eq!(reply["tenant"]["domain"], register["tenant_domain"]);
    assert_eq!(reply["user"]["role"], "owner");

    // `/api/auth/login/` with the account just made (same password).
    let login = example("003-login-2.json").set("email", email.as_str()).body;
    let session = post("/v1/auth/login").json(&login).send().await.expect(200).body;
    assert_eq!(session["user"]["email"], email.as_str());

    // `/api/auth/token/` sends a `username`; the seed's password is another.
    let username = account_with_password("your_password").await;
    let token = example("003-login-1.json").set("username", username.as_str()).body;
    let other = post("/v1/auth/login").json(&token).send().await.expect(200).body;
    assert_eq!(other["user"]["email"], username.as_str());

    // `your_refresh_token` stands for the refresh token just issued.
    let refresh = example("003-refresh-1.json").set("refresh", session["refresh_token"].clone()).body;
    let rotated = post("/v1/auth/refresh").json(&refresh).send().await.expect(200).body;
    assert!(rotated["access_token"].is_string());
    assert_ne!(rotated["refresh_token"], session["refresh_token"]);
}

/// Seed 003's tenant create sends no slug: one is derived from the name, with
/// a suffix when taken, so the very same body succeeds again.
#[tokio::test]
async fn seed_003_create_tenant_twice_and_update_it_as_its_admin() {
    let token = platform_admin_token().await;
    let body = example("003-create-tenant-1.json").body;
    let first = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
    let second = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
    for created in [&first, &second] {
        assert_echoes(created, &body, &[]);
        assert!(created["slug"].as_str().is_some_and(|s| s.starts_with("new-company")), "{created:#}");
        assert!(created["type"].is_null());
    }
    assert_ne!(first["slug"], second["slug"]);

    // The update (name and settings are profile fields: the tenant's owner).
    let owner = register_owner().await;
    let update = example("003-update-tenant-1.json").body;
    let updated = put(&format!("/v1/tenants/{}", owner.tenant_id))
        .token(&owner.access_token)
        .json(&update)
        .send()
        .await
        .expect(200)
        .body;
    assert_eq!(updated["name"], update["name"]);
    assert_eq!(updated["settings"]["timezone"], "America/New_York");
}

/// Seed 003's user create and update, by the tenant's owner.
#[tokio::test]
async fn seed_003_create_and_update_a_user() {
    let owner = register_owner().await;
    let body = example("003-create-user-1.json").set("email", unique_email("newuser@company.com")).body;
    let created = post("/v1/users").token(&owner.access_token).json(&body).send().await.expect(201).body;
    assert_echoes(&created, &body, &["password"]);
    let id = created["id"].as_str().expect("id");

    let update = example("003-update-user-1.json").body;
    let updated =
        put(&format!("/v1/users/{id}")).token(&owner.access_token).json(&update).send().await.expect(200).body;
    assert_echoes(&updated, &update, &[]);
    assert_eq!(updated["email"], body["email"]);
}

// -------------------------------------------------------------- seed 000 --

/// Seed 000's three tenant creates (scenarios 1 and 2); the enterprise one
/// is provisioned and its admin invited.
#[tokio::test]
async fn seed_000_create_tenants() {
    let token = platform_admin_token().await;
    let bodies = [
        example("000-create-tenant-1.json").set("slug", unique_slug("fortune500-corp")).body,
        example("000-create-tenant-2.json").set("slug", unique_slug("techstart")).body,
        example("000-create-tenant-3.json").set("slug", unique_slug("growthcorp")).body,
    ];
    let mut ids = Vec::new();
    for body in bodies {
        let created = post("/v1/tenants").token(&token).json(&body).send().await.expect(201).body;
        assert_echoes(&created, &body, &[]);
        assert_eq!(created["name"], body["organization_name"]);
        assert_eq!(created["status"], "provisioning");
        assert_eq!(created["contact_email"], body["admin_email"]);
        ids.push((created["id"].as_str().expect("id").to_owned(), body));
    }
    let (fortune, body) = &ids[0];
    let active = eventually("the enterprise tenant to be provisioned", std::time::Duration::from_secs(30), || {
        let token = token.clone();
        let path = format!("/v1/tenants/{fortune}");
        async move {
            let t = get(&path).token(&token).send().await.expect(200).body;
            (t["status"] == "active").then_some(t)
        }
    })
    .await;
    assert_eq!(active["onboarding"]["admin_invitation_sent"], true);
    assert_eq!(active["max_users"], 10_000, "enterprise: no users limit, the table's maximum");
    assert_echoes(&active, body, &[]);
}

/// Scenario 2: a project made in one tenant (with its `X-Tenant-ID`) is not
/// found from another.
#[tokio::test]
async fn seed_000_project_and_tenant_isolation() {
    let techstart = register_owner().await;
    let growthcorp = register_owner().await;
    let body = example("000-create-project-1.json").body;
    let created = post("/v1/projects")
        .token(&techstart.access_token)
        .header("x-tenant-id", &techstart.tenant_id)
        .json(&body)
        .send()
        .await
        .expect(201)
        .body;
    assert_echoes(&created, &body, &[]);
    let id = created["id"].as_str().expect("id");
    get(&format!("/v1/projects/{id}"))
        .token(&growthcorp.access_token)
        .header("x-tenant-id", &growthcorp.tenant_id)
        .send()
        .await
        .expect_error(404, "not_found");
}

/// Scenario 2 step 4's invitations (`/auth/users/invite` in the seed), in a
/// tenant with seats to spare.
#[tokio::test]
async fn seed_000_invite_users() {
    let owner = register_owner().await;
    let body = example("000-invite-users-1.json").body;
    let reply = post("/v1/users/invite").token(&owner.access_token).json(&body).send().await.expect(201).body;
    let invited: Vec<&Value> =
        reply["invitations"].as_array().expect("invitations").iter().map(|i| &i["email"]).collect();
    let sent: Vec<&Value> = body["emails"].as_array().expect("emails").iter().collect();
    assert_eq!(invited, sent);
    assert!(reply["invitations"].as_array().expect("list").iter().all(|i| i["role"] == body["role"]));
}

/// Scenario 5: the enterprise project, its task (`POST /tasks`, with
/// `project_id` in the body, and its AI analysis) and the code generation
/// for it (`{{taskId}}` is the task just made). The generation's outcome is
/// `tests/it/ai.rs`'s; here the bodies are accepted as they stand.
#[tokio::test]
async fn seed_000_enterprise_project_task_and_code_generation() {
    let owner = register_owner().await;
    let admin = platform_admin_token().await;
    post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
        .token(&admin)
        .json(&json!({"amount": 10, "reason": "prepaid"}))
        .send()
        .await
        .expect(201);
    let project = example("000-create-project-2.json").body;
    let created = post("/v1/projects").token(&owner.access_token).json(&project).send().await.expect(201).body;
    assert_echoes(&created, &project, &[]);
    let project_id = created["id"].as_str().expect("id");
    // `{{projectId}}` stands for the project just made.
    let task = example("000-create-task-1.json").set("project_id", project_id).body;
    let made = post("/v1/tasks").token(&owner.access_token).json(&task).send().await.expect(201).body;
    assert_eq!(made["status"], "analyzing");
    assert_echoes(&made["task"], &task, &[]);
    let task_id = made["task_id"].as_str().expect("task_id");
    let generation = example("000-generate-code-1.json").set("task_id", task_id).body;
    let queued =
        post("/v1/ai/generate-code").token(&owner.access_token).json(&generation).send().await.expect(202).body;
    assert_eq!(queued["task_id"], task_id);
    assert_eq!(queued["generation_type"], generation["generation_type"]);
    assert_eq!(queued["components"], generation["components"]);
    assert_eq!(queued["credits"]["reserved"], 9);
}

/// Seed 000's billing, step by step with its bodies (`{{tenantId}}` is the
/// tenant just made): scenario 1 steps 3-4 (the account and the enterprise
/// contract, whose limits the tenant's usage shows at once), scenario 3
/// step 4 (the owner reads `/tenants/{id}/billing`; the developer's denial
/// is in `billing.rs`), scenario 4 (components, usage, analytics, the
/// invoice). Amounts are computed from the seed's tiers
/// (`crate::billing::price`), never copied from its expected answers.
#[tokio::test]
async fn seed_000_billing_account_contract_components_usage_analytics_and_invoice() {
    use std::str::FromStr;

    use chrono::Datelike;
    use rust_decimal::Decimal;

    use crate::billing::{cents, dec, price};

    let owner = register_owner().await;
    let token = owner.access_token.as_str();
    let tenant_id = owner.tenant_id.as_str();

    // Scenario 1 step 3: the billing account.
    let account = example("000-create-billing-account-1.json").body;
    let created = post("/v1/billing/account").token(token).json(&account).send().await.expect(201).body;
    assert_echoes(&created, &account, &[]);
    assert_eq!((created["currency"].as_str(), created["tax_rate_percent"].as_str()), (Some("USD"), Some("0")));
    post("/v1/billing/account").token(token).json(&account).send().await.expect_error(409, "conflict");

    // Step 4: the custom enterprise subscription; its limits are the tenant's at once.
    let contract = example("000-create-enterprise-subscription-1.json").set("tenant_id", tenant_id).body;
    let subscription =
        post("/v1/billing/subscription/enterprise").token(token).json(&contract).send().await.expect(201).body;
    assert_eq!(
        (subscription["plan_type"].as_str(), subscription["status"].as_str()),
        (Some("enterprise_custom"), Some("active"))
    );
    assert_eq!(subscription["limits"], contract["custom_limits"]);
    assert_eq!(subscription["invoicing"]["frequency"], "quarterly");
    assert_eq!(subscription["contract"]["contract_term_months"], 36);
    let base_monthly = Decimal::from(500_000) / Decimal::from(12);
    assert_eq!(subscription["base_monthly_amount"], cents(base_monthly).as_str(), "a twelfth of the contract");
    let me = get("/v1/tenants/me/usage").token(token).send().await.expect(200).body;
    assert_eq!(me["plan"], "enterprise_custom");
    assert_eq!(
        me["plan_limits"],
        json!({"users": 2500, "projects": "unlimited", "ai_requests_monthly": 10_000_000,
               "api_calls_monthly": "unlimited", "storage_gb": 50_000})
    );
    // Scenario 3 step 4, as the tenant's admin.
    let billing = get(&format!("/v1/tenants/{tenant_id}/billing")).token(token).send().await.expect(200).body;
    assert_eq!(billing["account"]["company_name"], account["company_name"]);
    assert_eq!(billing["subscription"]["plan_type"], "enterprise_custom");

    // Scenario 4 step 1: the metered components (graduated by default).
    let components = example("000-create-metered-components-1.json").set("tenant_id", tenant_id).body;
    let stored = post("/v1/billing/metered-components").token(token).json(&components).send().await.expect(201).body;
    let stored_list = stored["components"].as_array().expect("components");
    assert_eq!(stored_list.len(), 3);
    for (answer, sent) in stored_list.iter().zip(components["components"].as_array().expect("sent")) {
        for field in ["name", "display_name", "unit"] {
            assert_eq!(answer[field], sent[field]);
        }
        assert_eq!(answer["tiers_mode"], "graduated");
        let tiers = answer["pricing_tiers"].as_array().expect("tiers");
        let sent_tiers = sent["pricing_tiers"].as_array().expect("sent tiers");
        assert_eq!(tiers.len(), sent_tiers.len());
        for (tier, sent_tier) in tiers.iter().zip(sent_tiers) {
            assert_eq!(dec(&tier["price_per_unit"]), dec(&sent_tier["price_per_unit"]));
        }
        assert!(tiers.last().expect("last")["up_to"].is_null(), "the `above` tier is open");
    }
    // Listed by name.
    let listed = get("/v1/billing/metered-components").token(token).send().await.expect(200).body;
    let mut by_name = stored_list.clone();
    by_name.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    assert_eq!(listed["components"], Value::Array(by_name));

    // Step 2: the seed's usage records, dated 2024-01-15: more than 35
    // days back, so they count now (its period may be invoiced already),
    // marked `late`, keeping what was reported.
    let before = get("/v1/billing/usage").token(token).send().await.expect(200).body;
    assert_eq!(before["current_period"]["ai_requests"], 0);
    for body in [example("000-record-usage-1.json").body, example("000-record-usage-2.json").body] {
        let recorded = post("/v1/billing/usage").token(token).json(&body).send().await.expect(201).body;
        assert_eq!((recorded["recorded"].as_u64(), recorded["duplicates"].as_u64()), (Some(1), Some(0)));
        let view = &recorded["records"][0];
        assert_eq!((&view["metric_type"], &view["quantity"]), (&body["metric_type"], &body["quantity"]));
        assert_eq!(
            (&view["reported_at"], &view["late"], &view["duplicate"]),
            (&body["timestamp"], &json!(true), &json!(false))
        );
        let counted_at = view["timestamp"].as_str().expect("timestamp");
        assert!(counted_at.starts_with(&chrono::Utc::now().date_naive().to_string()), "counted today: {view:#}");
    }
    let current = get("/v1/billing/usage").token(token).send().await.expect(200).body;
    assert_eq!(current["current_period"]["ai_requests"], 250);
    assert!(current["current_period"]["api_calls"].as_u64().is_some_and(|n| n >= 15_000), "{current:#}");
    let seed_component = |name: &str| {
        components["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|c| c["name"] == name)
            .expect("component")
            .clone()
    };

    // Step 3: analytics of the last 30 days, daily.
    let analytics = get("/v1/billing/analytics/comprehensive?period=30d&breakdown=daily")
        .token(token)
        .send()
        .await
        .expect(200)
        .body;
    let asked_at = chrono::Utc::now();
    for key in ["period", "summary", "usage_breakdown", "trends"] {
        assert!(analytics.get(key).is_some_and(|v| v.is_object()), "{key} missing: {analytics:#}");
    }
    assert_eq!(analytics["period"]["days"], 30);
    let breakdown = &analytics["usage_breakdown"];
    let ai = &breakdown["ai_requests"];
    assert_eq!(ai["total_quantity"], 250);
    assert_eq!(ai["total_cost"], price(&seed_component("ai_requests"), Decimal::from(250)).as_str());
    assert_eq!(ai["total_cost"], "12.50", "250 x 0.05");
    assert_eq!(dec(&ai["average_daily"]), (Decimal::from(250) / Decimal::from(30)).round_dp(2));
    assert_eq!(ai["peak_day"], chrono::Utc::now().date_naive().to_string());
    assert_eq!(ai["peak_usage"], 250);
    let api = &breakdown["api_calls"];
    assert!(api["total_quantity"].as_u64().is_some_and(|n| n >= 15_000));
    assert_eq!(api["total_cost"], price(&seed_component("api_calls"), dec(&api["total_quantity"])).as_str());
    assert_eq!(breakdown["storage"]["total_cost"], "0.00");
    let summary = &analytics["summary"];
    let usage_charges: Decimal =
        ["api_calls", "ai_requests", "storage"].iter().map(|m| dec(&breakdown[*m]["total_cost"])).sum();
    assert_eq!(summary["usage_charges"], cents(usage_charges).as_str());
    // The contract's monthly base for the share of each month the window covers.
    let start = asked_at - chrono::Duration::days(30);
    let mut expected_base = Decimal::ZERO;
    let mut cursor = start;
    while cursor < asked_at {
        let first = cursor.date_naive().with_day(1).expect("first").and_hms_opt(0, 0, 0).expect("t").and_utc();
        let next = first.checked_add_months(chrono::Months::new(1)).expect("next month");
        let until = asked_at.min(next);
        expected_base += Decimal::from_str(&cents(base_monthly)).expect("base")
            * Decimal::from((until - cursor).num_seconds())
            / Decimal::from((next - first).num_seconds());
        cursor = next;
    }
    let base = dec(&summary["base_subscription"]);
    assert!((base - expected_base).abs() <= Decimal::new(1, 2), "base {base}, computed {expected_base}");
    assert_eq!(dec(&summary["total_revenue"]), base + usage_charges);
    assert_eq!(summary["tax_amount"], "0.00", "the account's tax rate is 0");
    assert_eq!(summary["total_with_tax"], summary["total_revenue"]);
    assert_eq!(analytics["trends"]["usage_trend"], "increasing", "charges now, none before");
    assert!(analytics["trends"]["month_over_month_growth"].is_null());

    // Step 4: the enterprise invoice for January 2024, as sent: the base
    // price only (nothing was counted then).
    let request = example("000-generate-invoice-1.json").set("tenant_id", tenant_id).body;
    let invoice = post("/v1/billing/invoices/generate").token(token).json(&request).send().await.expect(201).body;
    let custom = &request["customization"];
    assert_eq!(invoice["status"], "draft");
    assert!(invoice["number"].is_null());
    assert_eq!(invoice["invoice_type"], "enterprise");
    assert_eq!(invoice["period"], request["billing_period"]);
    assert_eq!(invoice["purchase_order"], custom["purchase_order"]);
    assert_eq!(invoice["billing_address"], custom["billing_address"]);
    assert_eq!((&invoice["payment_terms"], &invoice["due_date"]), (&custom["payment_terms"], &custom["due_date"]));
    assert_eq!(invoice["currency"], "USD");
    let lines = invoice["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 1, "{invoice:#}");
    assert_eq!(lines[0]["kind"], "base");
    assert_eq!(lines[0]["description"], "Enterprise Custom plan - January 2024");
    assert_eq!(
        (lines[0]["quantity"].as_i64(), lines[0]["amount"].as_str()),
        (Some(1), Some(cents(base_monthly).as_str()))
    );
    assert_eq!(invoice["total_amount"], cents(base_monthly).as_str());

    // The same request for this month's days so far: the base prorated, a
    // line per component with usage (no storage was sampled).
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day(1).expect("first");
    let mut this_month = request.clone();
    this_month["billing_period"] = json!({"start": first.to_string(), "end": today.to_string()});
    this_month["customization"].as_object_mut().expect("customization").remove("due_date");
    let invoice = post("/v1/billing/invoices/generate").token(token).json(&this_month).send().await.expect(201).body;
    let lines = invoice["lines"].as_array().expect("lines");
    let line = |component: Option<&str>| {
        lines
            .iter()
            .find(|l| match component {
                Some(name) => l["component"] == name,
                None => l["kind"] == "base",
            })
            .unwrap_or_else(|| panic!("no line for {component:?}: {invoice:#}"))
    };
    let days_in_month = (first.checked_add_months(chrono::Months::new(1)).expect("next") - first).num_days();
    let months = Decimal::from(today.day()) / Decimal::from(days_in_month);
    assert_eq!(line(None)["amount"], cents(Decimal::from_str(&cents(base_monthly)).expect("base") * months).as_str());
    let ai_line = line(Some("ai_requests"));
    assert_eq!((ai_line["quantity"].as_i64(), ai_line["amount"].as_str()), (Some(250), Some("12.50")));
    let api_line = line(Some("api_calls"));
    assert!(api_line["quantity"].as_u64().is_some_and(|n| n >= 15_000));
    assert_eq!(api_line["amount"], price(&seed_component("api_calls"), dec(&api_line["quantity"])).as_str());
    assert!(lines.iter().all(|l| l["component"] != "storage"), "no storage line without storage");
    assert_eq!(lines.len(), 3);
    let subtotal: Decimal = lines.iter().map(|l| dec(&l["amount"])).sum();
    assert_eq!(
        (invoice["subtotal"].as_str(), invoice["total_amount"].as_str()),
        (Some(cents(subtotal).as_str()), Some(cents(subtotal).as_str()))
    );
}

/// Seed 000 scenario 3 steps 1-2: the three SSO connections as the seed
/// writes them, the seed's Google initiate (it starts offline: Google's
/// endpoints are known) and its callback body, which signs in through a
/// Google-type connection pointed at the local OpenID provider.
#[tokio::test]
async fn seed_000_sso_connections_initiate_and_callback() {
    let owner = register_owner().await;
    for sent in [
        example("000-create-sso-provider-1.json").body,
        example("000-create-sso-provider-2.json").body,
        example("000-create-sso-provider-3.json").body,
    ] {
        let name = sent["provider_name"].clone();
        let made = post("/v1/auth/sso/providers").token(&owner.access_token).json(&sent).send().await.expect(201);
        assert_echoes(&made.body, &sent, &["configuration", "auto_provision_users", "require_encrypted_assertions"]);
        let shown = made.body.to_string();
        for secret in ["GOCSPX-SecretKey123", "SecretKey456", "certificate_content"] {
            assert!(!shown.contains(secret), "{name}: a secret is shown: {shown}");
        }
    }
    let initiate = example("000-sso-initiate-1.json").set("tenant_id", owner.tenant_id.clone());
    let started = post("/v1/auth/sso/google/initiate").json(&initiate.body).send().await.expect(200);
    assert_eq!(started.body["expires_in"], 600);
    let url = reqwest::Url::parse(started.body["authorization_url"].as_str().expect("url")).expect("a URL");
    assert_eq!(url.as_str().split('?').next(), Some("https://accounts.google.com/o/oauth2/v2/auth"));
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "123456789-abcdef.apps.googleusercontent.com");
    assert_eq!(query["redirect_uri"], "https://app.enterprise.com/auth/callback");
    assert_eq!(query["hd"], "enterprise.com");
    assert_eq!(query["state"], started.body["state"].as_str().expect("state"));
    assert_eq!(query["code_challenge_method"], "S256");

    // The callback's body, with the code and state of a real sign-in.
    let tenant = register_owner().await;
    let client_id = format!("google-{}", unique());
    let email = format!("jane-{}@enterprise.com", unique());
    let idp = Idp::start(&json!({
        "clients": [{"client_id": client_id, "client_secret": "seed-secret",
                     "redirect_uris": ["https://app.enterprise.com/auth/callback"]}],
        "accounts": {"jane": {"email": email, "email_verified": true, "hd": "enterprise.com", "given_name": "Jane"}}
    }))
    .await;
    let mut google = example("000-create-sso-provider-2.json").body;
    google["configuration"]["issuer"] = json!(idp.issuer);
    google["configuration"]["client_id"] = json!(client_id);
    google["configuration"]["client_secret"] = json!("seed-secret");
    post("/v1/auth/sso/providers").token(&tenant.access_token).json(&google).send().await.expect(201);
    let initiate = example("000-sso-initiate-1.json").set("tenant_id", tenant.tenant_id.clone());
    let started = post("/v1/auth/sso/google/initiate").json(&initiate.body).send().await.expect(200);
    let back = idp.sign_in(started.body["authorization_url"].as_str().expect("url"), "jane").await;
    let returned: std::collections::HashMap<String, String> = back.query_pairs().into_owned().collect();
    let callback = example("000-sso-callback-1.json")
        .set("code", returned["code"].clone())
        .set("state", returned["state"].clone());
    let signed_in = post("/v1/auth/sso/google/callback").json(&callback.body).send().await.expect(200);
    assert_eq!(signed_in.body["user"]["email"], email.as_str());
    assert_eq!(signed_in.body["user"]["role"], "user", "the seed's default_role");
    assert!(signed_in.body["access_token"].as_str().is_some_and(|t| t.split('.').count() == 3));
}

/// Seed 000 scenario 3 step 3: TOTP setup with the seed's body as it
/// stands, in the seed's answer shape, then verify with the seed's body
/// and a real code (from pyotp, not our own implementation).
#[tokio::test]
async fn seed_000_mfa_setup_and_verify() {
    let owner = register_owner().await;
    let setup = example("000-mfa-setup-1.json");
    let reply = post("/v1/auth/mfa/setup").token(&owner.access_token).json(&setup.body).send().await.expect(200);
    assert_eq!(reply.body["verification_required"], true);
    let answer = &reply.body["mfa_setup"];
    let secret = answer["secret"].as_str().expect("secret");
    assert!(answer["qr_code"].as_str().is_some_and(|q| q.starts_with("data:image/png;base64,")));
    let codes = answer["backup_codes"].as_array().expect("backup codes");
    assert!(
        codes.len() >= 10 && codes.iter().all(|c| c.as_str().is_some_and(|c| c.len() == 11 && c.as_bytes()[5] == b'-'))
    );
    assert!(answer["recovery_instructions"].is_string());
    let verify = example("000-mfa-verify-1.json").set("code", crate::mfa::pyotp(secret, 0));
    let verified = post("/v1/auth/mfa/verify").token(&owner.access_token).json(&verify.body).send().await.expect(200);
    assert_eq!(verified.body["enabled"], true, "{:#}", verified.body);
    assert_eq!(verified.body["device_name"], setup.body["device_name"]);
}
