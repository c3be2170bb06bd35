//! Test support: one local server per test binary (every route group plus the
//! SQS pollers, on 127.0.0.1:<random>), against the local AWS stack the test
//! command started, and an HTTP client with helpers that assert as they go.
//!
//! Each test makes its own tenants and users (unique slugs and emails), so
//! tests run in parallel and in any order.

use std::{sync::OnceLock, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{AppState, aws::AwsClients, config::Config, state::Signing};
use uuid::Uuid;

pub mod saml;

pub struct TestApp {
    pub base_url: String,
    pub admin_email: String,
    pub admin_password: String,
    /// The outbox relay's switch (the fault test makes the bus unreachable).
    pub relay: local::relay::RelayControl,
}

static APP: OnceLock<TestApp> = OnceLock::new();

/// The shared server, started on first use on its own runtime thread so it
/// outlives every test's runtime.
pub fn app() -> &'static TestApp {
    APP.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                shared::telemetry::init();
                let mut config = Config::from_env()
                    .expect("the local stack env is not loaded: run the tests with `make test` (see README)");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let base_url = format!("http://{}", listener.local_addr().expect("addr"));
                // As `local` does: the API's public URL is this server's (SAML's ACS).
                config.public_api_url.get_or_insert_with(|| base_url.clone());
                let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
                let state = AppState::load(config, &clients, Signing::Issue).await.expect("app state");
                let admin_email = format!("platform-admin-{}@tests.example", Uuid::new_v4().simple());
                let admin_password = format!("pw-{}", Uuid::new_v4().simple());
                local::seed_platform_admin(&state.store, &admin_email, &admin_password).await.expect("seed admin");
                let pollers = local::Pollers::start(&clients, &state).expect("pollers");
                let relay = pollers.relay().cloned().expect("the test server runs the outbox relay");
                tx.send(TestApp { base_url, admin_email, admin_password, relay }).expect("send app");
                axum::serve(listener, local::app(state)).await.expect("serve");
                pollers.abort();
            });
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("local server did not start")
    })
}

/// AWS clients and app state for a test's own direct calls. Built per test:
/// SDK connections belong to the runtime that opened them, so sharing the
/// server's clients with a test's short-lived runtime breaks both.
pub async fn test_state() -> (AppState, AwsClients) {
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let state = AppState::load(Config::from_env().expect("env"), &clients, Signing::Issue).await.expect("state");
    (state, clients)
}

/// The stack's key documents as Secrets Manager holds them now.
pub async fn key_documents() -> (shared::keys::PlatformKeysDoc, shared::keys::SigningKeysDoc) {
    let clients = AwsClients::new(&shared::aws::load_sdk_config().await);
    let platform = std::env::var(shared::keys::PLATFORM_KEYS_ENV).expect("PLATFORM_KEYS_SECRET_ID");
    let signing = std::env::var(shared::keys::SIGNING_KEYS_ENV).expect("SIGNING_KEYS_SECRET_ID");
    shared::keys::read_documents(clients.secrets.client(), &platform, &signing).await.expect("key documents")
}

/// The signing key the stack's secret names current (its `id` is the
/// token header's `kid`).
pub async fn current_signing_key() -> shared::keys::SigningKeyDoc {
    let (_, signing) = key_documents().await;
    signing.signing.keys.into_iter().find(|k| k.id == signing.signing.current).expect("the current key")
}

/// A response, decoded.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {:#}", self.body);
        self
    }

    /// Asserts an API.md error body with this status and code.
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let reply = self.expect(status);
        assert_eq!(reply.body["error"], code, "unexpected error body: {:#}", reply.body);
        assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()), "no message: {:#}", reply.body);
        assert!(reply.body["details"].is_object(), "no details object: {:#}", reply.body);
        assert!(reply.body["request_id"].as_str().is_some_and(|r| !r.is_empty()), "no request_id: {:#}", reply.body);
        reply
    }

    /// The fields named under `details.fields` of a validation error.
    pub fn invalid_fields(&self) -> Vec<String> {
        self.body["details"]["fields"]
            .as_array()
            .map(|fields| fields.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

/// No keep-alive: when a handler refuses a request before reading its body
/// (401 on a POST, say), hyper closes that connection after answering, and a
/// pooled client racing to reuse it fails with a transport error unrelated to
/// the behaviour under test.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder().timeout(Duration::from_secs(30)).pool_max_idle_per_host(0).build().expect("client")
    })
}

pub struct Call {
    request: reqwest::RequestBuilder,
}

impl Call {
    pub fn new(method: Method, path: &str) -> Self {
        Self::at(&app().base_url, method, path)
    }

    /// A call to another server (e.g. a [`ServerProcess`]).
    pub fn at(base_url: &str, method: Method, path: &str) -> Self {
        Self { request: client().request(method, format!("{base_url}{path}")) }
    }

    /// Waits up to two minutes instead of the client's 30 s: for a request
    /// made to wait behind many racing ones (twenty finalizations of one
    /// tenant retry their transactions in turn), where the local emulator,
    /// which runs one call at a time, is what takes the time.
    pub fn patient(mut self) -> Self {
        self.request = self.request.timeout(Duration::from_secs(120));
        self
    }

    /// Authenticates with an API key in `X-API-Key`.
    pub fn api_key(mut self, secret: &str) -> Self {
        self.request = self.request.header("x-api-key", secret);
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.request = self.request.bearer_auth(token);
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.request = self.request.json(body);
        self
    }

    pub fn raw_body(mut self, body: &str) -> Self {
        self.request = self.request.header("content-type", "application/json").body(body.to_owned());
        self
    }

    /// A body of any content type (what a form post or a careless client sends).
    pub fn typed_body(mut self, content_type: &str, body: &str) -> Self {
        self.request = self.request.header("content-type", content_type).body(body.to_owned());
        self
    }

    pub async fn send(self) -> Reply {
        let response = self.request.send().await.expect("request failed");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Reply { status, headers, body }
    }
}

pub fn get(path: &str) -> Call {
    Call::new(Method::GET, path)
}
pub fn post(path: &str) -> Call {
    Call::new(Method::POST, path)
}
pub fn put(path: &str) -> Call {
    Call::new(Method::PUT, path)
}
pub fn patch(path: &str) -> Call {
    Call::new(Method::PATCH, path)
}
pub fn delete(path: &str) -> Call {
    Call::new(Method::DELETE, path)
}

/// A unique lowercase suffix for slugs and emails.
pub fn unique() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A signed-in member of a fresh tenant.
#[derive(Debug, Clone)]
pub struct Member {
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub tenant_id: String,
}

pub const PASSWORD: &str = "correct horse battery staple";

/// Registers a new tenant through the API and returns its owner, signed in.
pub async fn register_owner() -> Member {
    let id = unique();
    let email = format!("owner-{id}@tenant-{id}.example");
    let reply = post("/v1/auth/register")
        .json(&json!({
            "email": email, "password": PASSWORD, "password_confirm": PASSWORD,
            "first_name": "Olive", "last_name": "Owner", "tenant_name": format!("Tenant {id}"),
        }))
        .send()
        .await
        .expect(201);
    member_from(&reply.body, &email)
}

pub fn member_from(body: &Value, email: &str) -> Member {
    Member {
        email: email.to_owned(),
        password: PASSWORD.to_owned(),
        access_token: body["access_token"].as_str().expect("access_token").to_owned(),
        refresh_token: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
        user_id: body["user"]["id"].as_str().expect("user id").to_owned(),
        tenant_id: body["user"]["tenant_id"].as_str().expect("tenant id").to_owned(),
    }
}

/// A real member of `owner`'s tenant with `role`, signed in with
/// [`PASSWORD`]. (A token minted for someone who does not exist is refused:
/// every request checks its holder's standing.)
pub async fn member_with_role(owner: &Member, role: &str) -> Member {
    let email = format!("{role}-{}@members.example", unique());
    post("/v1/users")
        .token(&owner.access_token)
        .json(&json!({"email": email, "password": PASSWORD, "first_name": "Ada", "last_name": role, "role": role}))
        .send()
        .await
        .expect(201);
    let login = post("/v1/auth/login").json(&json!({"email": email, "password": PASSWORD})).send().await.expect(200);
    member_from(&login.body, &email)
}

/// The seeded platform admin's access token.
pub async fn platform_admin_token() -> String {
    let app = app();
    let reply = post("/v1/auth/login")
        .json(&json!({"email": app.admin_email, "password": app.admin_password}))
        .send()
        .await
        .expect(200);
    reply.body["access_token"].as_str().expect("token").to_owned()
}

/// A create body that satisfies seed 002's table, with a unique slug.
pub fn valid_tenant_body() -> Value {
    json!({
        "name": "Université de Buea",
        "slug": format!("ub-{}", unique()),
        "type": "UNIVERSITY",
        "description": "University located in Buea",
        "logo_url": "https://ub.cm/logo.png",
        "contact_email": "info@ub.cm",
        "contact_phone": "+237 987 654 321",
        "legal_status": "PUBLIC",
        "registration_number": "REG-2024-002",
        "max_users": 150,
        "max_diplomas": 5000,
        "storage_quota_mb": 3000
    })
}

/// A key just created: its id and the secret shown once.
#[derive(Debug, Clone)]
pub struct MadeKey {
    pub id: String,
    pub secret: String,
    pub body: Value,
}

/// Creates an API key with `scopes` as the member holding `token`.
pub async fn create_api_key(token: &str, scopes: &[&str]) -> MadeKey {
    let reply = post("/v1/api-keys")
        .token(token)
        .json(&json!({"name": format!("key {}", unique()), "scopes": scopes}))
        .send()
        .await
        .expect(201);
    MadeKey {
        id: reply.body["id"].as_str().expect("id").to_owned(),
        secret: reply.body["secret"].as_str().expect("secret").to_owned(),
        body: reply.body,
    }
}

/// A second local server in its own OS process (the `local` binary, as
/// `make run` starts it), against the same local stack: for behaviour that
/// must hold across Lambda instances. Its stdout and stderr (the JSON log)
/// go to `log_path`; dropping it kills the process.
pub struct ServerProcess {
    pub base_url: String,
    pub log_path: std::path::PathBuf,
    child: std::process::Child,
}

impl ServerProcess {
    /// `rust_log` sets its log level (e.g. `debug` to see everything it says).
    pub async fn start(rust_log: &str) -> Self {
        Self::start_with(rust_log, &[]).await
    }

    /// [`Self::start`] with these environment variables set (or replaced).
    pub async fn start_with(rust_log: &str, env: &[(&str, &str)]) -> Self {
        let binary = std::env::var("LOCAL_SERVER_BIN").map(std::path::PathBuf::from).unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("test binary path");
            exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("local")
        });
        assert!(
            binary.exists(),
            "{} is missing: the test command builds it (scripts/test.sh); or set LOCAL_SERVER_BIN",
            binary.display()
        );
        let log_dir = std::path::PathBuf::from(std::env::var("LOCAL_DIR").unwrap_or_else(|_| ".local".into()));
        let log_path = log_dir.join(format!("server-process-{}.log", unique()));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = std::process::Command::new(&binary)
            .env("LOCAL_ADDR", "127.0.0.1:0")
            // One relay per stream, as in AWS: the test binary's server runs it.
            .env("LOCAL_OUTBOX_RELAY", "off")
            // HTTP only: killed with the test, a worker could die mid-message
            // holding a claim other tests wait on.
            .env("LOCAL_WORKERS", "off")
            .env("RUST_LOG", rust_log)
            .env("PLATFORM_ADMIN_EMAIL", format!("second-admin-{}@tests.example", unique()))
            .env("PLATFORM_ADMIN_PASSWORD", format!("pw-{}", Uuid::new_v4().simple()))
            .envs(env.iter().copied())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start the local server");
        let mut server = Self { base_url: String::new(), log_path, child };
        let path = server.log_path.clone();
        server.base_url = eventually("the second server to print its address", Duration::from_secs(60), || {
            let path = path.clone();
            async move {
                let text = std::fs::read_to_string(&path).ok()?;
                let line = text.lines().find(|l| l.contains("API:"))?;
                let url = line.split_whitespace().find(|w| w.starts_with("http://"))?;
                Some(url.to_owned())
            }
        })
        .await;
        server
    }

    pub fn call(&self, method: Method, path: &str) -> Call {
        Call::at(&self.base_url, method, path)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it returns Some or the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stored attribute as JSON (strings, numbers, booleans, maps, lists):
/// for assertions on items read with [`tenant_items`].
pub fn json_of(value: &aws_sdk_dynamodb::types::AttributeValue) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    match value {
        A::S(s) => json!(s),
        A::N(n) => n.parse::<f64>().map_or(Value::Null, |n| json!(n)),
        A::Bool(b) => json!(b),
        A::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json_of(v))).collect()),
        A::L(l) => Value::Array(l.iter().map(json_of).collect()),
        _ => Value::Null,
    }
}

/// A tenant's audit entries as stored: (action, new_values).
pub async fn audit_entries(tenant_id: &str) -> Vec<(String, Value)> {
    tenant_items(tenant_id, "AUDIT#")
        .await
        .iter()
        .map(|item| {
            let action = item.get("action").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let values = item.get("new_values").map(json_of).unwrap_or(Value::Null);
            (action, values)
        })
        .collect()
}

/// The emails of a tenant's members, sorted, as its owner lists them.
pub async fn member_emails(owner: &Member) -> Vec<String> {
    let users = get("/v1/users").token(&owner.access_token).send().await.expect(200);
    let mut emails: Vec<String> = users.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|u| u["email"].as_str().expect("email").into())
        .collect();
    emails.sort();
    emails
}

/// The items of a tenant's partition whose sort key starts with `prefix`,
/// read consistently: for assertions on what a change stored.
pub async fn tenant_items(
    tenant_id: &str,
    prefix: &str,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let (state, clients) = test_state().await;
    let output = clients
        .dynamodb
        .query()
        .table_name(state.store.table_name())
        .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("T#{tenant_id}#")))
        .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    output.items().to_vec()
}

/// A tenant schedule as EventBridge Scheduler (moto) holds it:
/// `{expression, state, target_arn, input}`; `None` when there is none.
pub async fn tenant_schedule(name: &str) -> Option<Value> {
    let (_, clients) = test_state().await;
    let group = std::env::var("TENANT_SCHEDULE_GROUP").expect("TENANT_SCHEDULE_GROUP (the env file)");
    match clients.scheduler.client().get_schedule().group_name(group).name(name).send().await {
        Ok(schedule) => Some(json!({
            "expression": schedule.schedule_expression(),
            "state": schedule.state().map(|s| s.as_str().to_owned()),
            "target_arn": schedule.target().map(|t| t.arn().to_owned()),
            "input": schedule.target().and_then(|t| t.input()).map(str::to_owned),
        })),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => None,
        Err(err) => panic!("GetSchedule {name}: {err:?}"),
    }
}

/// The schedule name of a sync connection or workflow id (`sync-<hex>`).
pub fn schedule_name(kind: &str, id: &str) -> String {
    format!("{kind}-{}", id.replace('-', ""))
}

/// The events a tenant's changes wrote to its outbox, oldest first, as their
/// envelopes (`{id, type, version, tenant_id, occurred_at, data}`): written
/// in the transaction of the change, whether or not the relay passed them on.
pub async fn outbox_events(tenant_id: &str) -> Vec<Value> {
    tenant_items(tenant_id, "EVENT#")
        .await
        .iter()
        .filter_map(|item| serde_json::from_str(item.get("event_detail")?.as_s().ok()?).ok())
        .collect()
}

// ---- Try-on fixtures (seed 004): a shop with credits and a key, its
// shoppers, their photos uploaded to S3 and confirmed.

/// What a shop's API key may do in the try-on tests.
pub const SHOP_SCOPES: &[&str] =
    &["customers:read", "customers:write", "tryons:read", "tryons:write", "credits:read", "webhooks:manage"];

/// A small PNG with some texture (a photo the pipeline can decode).
pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([rgb[0], rgb[1].wrapping_add((x % 7) as u8), rgb[2].wrapping_add((y % 5) as u8)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image).write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}

/// A tenant with credits and an API key holding the try-on scopes.
pub struct Shop {
    pub owner: Member,
    pub key: String,
}

pub async fn shop(credits: i64) -> Shop {
    let owner = register_owner().await;
    if credits > 0 {
        let admin = platform_admin_token().await;
        post(&format!("/v1/tenants/{}/credits", owner.tenant_id))
            .token(&admin)
            .json(&json!({"amount": credits, "reason": "prepaid"}))
            .send()
            .await
            .expect(201);
    }
    let key = create_api_key(&owner.access_token, SHOP_SCOPES).await.secret;
    Shop { owner, key }
}

/// A shopper of the shop (seed 004), upserted by `external_id`: its id.
pub async fn customer(key: &str, external_id: &str) -> String {
    let reply = post("/v1/customers")
        .api_key(key)
        .json(&json!({"external_id": external_id, "email": "shopper@example.com", "name": "Sam Shopper"}))
        .send()
        .await
        .expect(201);
    reply.body["id"].as_str().expect("id").to_owned()
}

/// Asks for an upload URL, PUTs the bytes there, confirms: the photo's id.
pub async fn upload_photo(key: &str, customer_id: &str, bytes: &[u8], kind: &str) -> String {
    let created = post(&format!("/v1/customers/{customer_id}/photos"))
        .api_key(key)
        .json(&json!({"content_type": "image/png", "size_bytes": bytes.len(), "kind": kind}))
        .send()
        .await
        .expect(201);
    assert_eq!(created.body["status"], "pending");
    assert!(created.body.get("object_key").is_none(), "the bucket key is not shown");
    let upload = &created.body["upload"];
    assert_eq!(upload["method"], "PUT");
    let url = upload["url"].as_str().expect("url");
    let stored = reqwest::Client::new()
        .put(url)
        .header("content-type", "image/png")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("upload");
    assert!(stored.status().is_success(), "upload answered {}", stored.status());
    let photo_id = created.body["id"].as_str().expect("id");
    let confirmed =
        post(&format!("/v1/customers/{customer_id}/photos/{photo_id}/confirm")).api_key(key).send().await.expect(200);
    assert_eq!(confirmed.body["status"], "ready");
    assert_eq!(confirmed.body["size_bytes"], bytes.len());
    photo_id.to_owned()
}

/// `items` cart lines that all wear `garment_photo_id`.
pub fn cart(garment_photo_id: &str, items: usize) -> Vec<Value> {
    (0..items)
        .map(|i| json!({"product_id": format!("sku-{i}"), "garment_photo_id": garment_photo_id, "size": "M"}))
        .collect()
}

// ---- Mail (issue 14): what SES accepted, read back from moto.

/// A mail SES accepted, as moto keeps it (`ses` backend, `sent_messages`).
/// moto keeps one body per mail: the HTML part when there is one.
#[derive(Debug, Clone)]
pub struct SentMail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

impl SentMail {
    /// The `token` of the link to `<APP_BASE_URL>/<page>` in the body.
    pub fn link_token(&self, page: &str) -> Option<String> {
        let marker = format!("/{page}?token=");
        let start = self.body.find(&marker)? + marker.len();
        let token: String = self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

/// Every mail moto accepted for `to`, oldest first. moto has no SES call
/// that reads mail back; its model dump (`/moto-api/data.json`) lists each
/// sent `Message` with its source, destinations, subject and body.
pub async fn mail_to(to: &str) -> Vec<SentMail> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (the local stack env) is not set");
    let dump: Value = client()
        .get(format!("{}/moto-api/data.json", endpoint.trim_end_matches('/')))
        .send()
        .await
        .expect("moto's model dump")
        .json()
        .await
        .expect("moto's model dump is JSON");
    let text = |m: &Value, field: &str| m[field].as_str().unwrap_or_default().to_owned();
    dump["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let to_list: Vec<String> = m["destinations"]["ToAddresses"]
                .as_array()?
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            to_list.iter().any(|a| a.eq_ignore_ascii_case(to)).then(|| SentMail {
                from: text(m, "source"),
                to: to_list,
                subject: text(m, "subject"),
                body: text(m, "body"),
            })
        })
        .collect()
}

/// The newest mail to `to` whose subject contains `subject`, waiting up to
/// ten seconds for it.
pub async fn latest_mail(to: &str, subject: &str) -> SentMail {
    eventually(&format!("a mail to {to} about {subject:?}"), Duration::from_secs(10), move || async move {
        mail_to(to).await.into_iter().rev().find(|m| m.subject.contains(subject))
    })
    .await
}

// ---- SSO: a real OpenID provider (npm `oidc-provider`, tests/idp/), one
// per test, on a port the system picks; killed when dropped.

/// A running OpenID provider with its development login and consent pages.
pub struct Idp {
    pub issuer: String,
    child: std::process::Child,
}

impl Idp {
    /// Starts the provider with `config` (`{"clients": [...], "accounts":
    /// {...}}`, see tests/idp/server.mjs). The provider itself is installed
    /// by `tests/idp/install.sh` (the test command runs it) at
    /// `SSO_IDP_MODULES`.
    pub async fn start(config: &Value) -> Self {
        use std::io::BufRead;
        let modules = std::env::var("SSO_IDP_MODULES").unwrap_or_else(|_| {
            format!("{}/.cache/saas-platform/idp/node_modules", std::env::var("HOME").unwrap_or_default())
        });
        assert!(
            std::path::Path::new(&modules).join("oidc-provider").exists(),
            "oidc-provider is not installed at {modules}: run tests/idp/install.sh (the test command does)"
        );
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/idp/server.mjs");
        let mut child = std::process::Command::new("node")
            .arg(script)
            .env("IDP_MODULES", &modules)
            .env("IDP_CONFIG", config.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node (Node 20.19+ is needed for the SSO tests)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keeps reading so the pipe never fills.
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("IDP_LISTENING ") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join")
            .expect("the OpenID provider did not start");
        Self { issuer, child }
    }

    /// Replaces the claims of the account `login`.
    pub async fn set_account(&self, login: &str, claims: &Value) {
        let reply =
            no_redirect_client().put(format!("{}/test/accounts/{login}", self.issuer)).json(claims).send().await;
        assert_eq!(reply.expect("idp").status().as_u16(), 204);
    }

    /// From now on, ID tokens for `client_id` are changed (`aud`, `nonce`,
    /// `exp_offset`) and re-signed with the provider's key.
    pub async fn tamper(&self, client_id: &str, change: &Value) {
        let reply =
            no_redirect_client().put(format!("{}/test/tamper/{client_id}", self.issuer)).json(change).send().await;
        assert_eq!(reply.expect("idp").status().as_u16(), 204);
    }

    /// What a browser does with `authorization_url`: follows it to the
    /// provider's login page, signs in as `login` (any password), consents,
    /// and stops at the redirect to our redirect URI, whose Location (with
    /// `code` and `state`) it answers; that last redirect is not followed.
    pub async fn sign_in(&self, authorization_url: &str, login: &str) -> reqwest::Url {
        let mut cookies: std::collections::BTreeMap<String, String> = Default::default();
        let mut url = reqwest::Url::parse(authorization_url).expect("authorization url");
        let mut form: Option<Vec<(&str, String)>> = None;
        for _ in 0..12 {
            let issuer = reqwest::Url::parse(&self.issuer).expect("issuer");
            if url.origin() != issuer.origin() {
                return url;
            }
            let cookie = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let request = match form.take() {
                Some(fields) => no_redirect_client().post(url.clone()).form(&fields),
                None => no_redirect_client().get(url.clone()),
            };
            let response = request.header("cookie", cookie).send().await.expect("idp request");
            for value in response.headers().get_all("set-cookie") {
                let pair = value.to_str().unwrap_or("").split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    if value.is_empty() {
                        cookies.remove(name);
                    } else {
                        cookies.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"].to_str().expect("location").to_owned();
                url = url.join(&location).expect("location url");
                continue;
            }
            let page = response.text().await.unwrap_or_default();
            assert!(status.is_success(), "the provider answered {status}: {page}");
            form = Some(if page.contains(r#"name="prompt" value="login""#) {
                vec![("prompt", "login".to_owned()), ("login", login.to_owned()), ("password", "any".to_owned())]
            } else {
                vec![("prompt", "consent".to_owned())]
            });
        }
        panic!("the provider's sign-in did not come back to the redirect URI");
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that shows redirects instead of following them (a browser's
/// next hop is what the tests assert).
pub fn no_redirect_client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(0)
            .build()
            .expect("client")
    })
}

/// The venv's python (infra/venv.sh, `VENV_DIR`): moto's, with the
/// independent implementations the tests check against (pyotp,
/// standardwebhooks, svix).
pub fn venv_python() -> std::path::PathBuf {
    let venv = std::env::var("VENV_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/saas-platform/venv")
    });
    venv.join("bin/python")
}
