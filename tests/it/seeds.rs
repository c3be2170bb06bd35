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

/// Scenario 5: the enterprise project and its task (`POST /tasks` in the
/// seed, with `project_id` in the body: here under the project's path).
#[tokio::test]
async fn seed_000_enterprise_project_and_task() {
    let owner = register_owner().await;
    let project = example("000-create-project-2.json").body;
    let created = post("/v1/projects").token(&owner.access_token).json(&project).send().await.expect(201).body;
    assert_echoes(&created, &project, &[]);
    let project_id = created["id"].as_str().expect("id");
    // `{{projectId}}` stands for the project just made.
    let task = example("000-create-task-1.json").set("project_id", project_id).body;
    let made = post(&format!("/v1/projects/{project_id}/tasks"))
        .token(&owner.access_token)
        .json(&task)
        .send()
        .await
        .expect(201)
        .body;
    assert_echoes(&made, &task, &[]);
}
