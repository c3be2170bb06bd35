//! The events the bench sends, built from the samples in `events/` so they are
//! what API Gateway and SQS really deliver, with the parts that must be live
//! (credentials, tokens, tenant ids, unique slugs) filled in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct Samples {
    dir: PathBuf,
}

impl Samples {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn load(&self, name: &str) -> Result<Value> {
        let path = self.dir.join(name);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// `GET /.well-known/jwks.json`, as sampled.
    pub fn jwks(&self) -> Result<Value> {
        fresh_request_id(self.load("auth-jwks.json")?)
    }

    /// `POST /v1/auth/login` with these credentials.
    pub fn login(&self, email: &str, password: &str) -> Result<Value> {
        let event = self.load("auth-login.json")?;
        with_body(event, &json!({"email": email, "password": password}))
    }

    /// `POST /v1/auth/register` (no sample of its own: login's, on another path).
    pub fn register(&self, email: &str, password: &str, tenant_name: &str) -> Result<Value> {
        let event = on_path(self.load("auth-login.json")?, "/v1/auth/register", "ANY /v1/auth/{proxy+}", "register")?;
        let body = json!({
            "email": email,
            "password": password,
            "password_confirm": password,
            "first_name": "Bench",
            "last_name": "User",
            "tenant_name": tenant_name,
        });
        with_body(event, &body)
    }

    /// `GET /v1/tenants/me` (the list sample, on another path and without a query).
    pub fn my_tenant(&self, token: &str) -> Result<Value> {
        let mut event = on_path(self.load("tenants-list.json")?, "/v1/tenants/me", "ANY /v1/tenants/{proxy+}", "me")?;
        if let Some(object) = event.as_object_mut() {
            object.remove("queryStringParameters");
        }
        set(&mut event, &["rawQueryString"], json!(""))?;
        with_bearer(fresh_request_id(event)?, token)
    }

    /// `POST /v1/tenants`, the sample's body with a unique slug and name.
    pub fn create_tenant(&self, token: &str, slug: &str) -> Result<Value> {
        let mut event = self.load("tenants-create.json")?;
        let mut body: Value = serde_json::from_str(event["body"].as_str().context("tenants-create.json has no body")?)
            .context("tenants-create.json's body is not JSON")?;
        set(&mut body, &["slug"], json!(slug))?;
        set(&mut body, &["name"], json!(format!("Bench University {slug}")))?;
        // A real client sends a new key for every new tenant.
        set(&mut event, &["headers", "idempotency-key"], json!(Uuid::new_v4().to_string()))?;
        with_bearer(with_body(event, &body)?, token)
    }

    /// `PATCH /v1/tenants/{id}` with `body` (the list sample, on another path).
    pub fn patch_tenant(&self, token: &str, tenant_id: &str, body: &Value) -> Result<Value> {
        let path = format!("/v1/tenants/{tenant_id}");
        let mut event = on_path(self.load("tenants-list.json")?, &path, "ANY /v1/tenants/{proxy+}", tenant_id)?;
        if let Some(object) = event.as_object_mut() {
            object.remove("queryStringParameters");
        }
        set(&mut event, &["rawQueryString"], json!(""))?;
        set(&mut event, &["requestContext", "http", "method"], json!("PATCH"))?;
        set(&mut event, &["headers", "content-type"], json!("application/json"))?;
        with_bearer(with_body(event, body)?, token)
    }

    /// `GET <path>` with an access token (the list sample on another path).
    pub fn get(&self, token: &str, path: &str) -> Result<Value> {
        let proxy = path.trim_start_matches("/v1/");
        let mut event = on_path(self.load("tenants-list.json")?, path, &format!("ANY {path}"), proxy)?;
        if let Some(object) = event.as_object_mut() {
            object.remove("queryStringParameters");
        }
        set(&mut event, &["rawQueryString"], json!(""))?;
        with_bearer(fresh_request_id(event)?, token)
    }

    /// `GET <path>` without credentials (the floor's hello world, the docs).
    pub fn unauthenticated_get(&self, path: &str) -> Result<Value> {
        let mut event = self.get("", path)?;
        if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
            headers.remove("authorization");
        }
        Ok(event)
    }

    /// [`Self::unauthenticated_get`] with an `Accept-Encoding` header.
    pub fn unauthenticated_get_accepting(&self, path: &str, encodings: &str) -> Result<Value> {
        let mut event = self.unauthenticated_get(path)?;
        if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
            headers.insert("accept-encoding".into(), Value::String(encodings.into()));
        }
        Ok(event)
    }

    /// The SAML ACS's sample: a response posted with a RelayState that names
    /// no sign-in (answered 401 `invalid_state`).
    pub fn saml_acs(&self) -> Result<Value> {
        fresh_request_id(self.load("saml-acs.json")?)
    }

    /// An SQS batch of one `tryon.item.requested` for an item that does not exist.
    pub fn tryon_job(&self) -> Result<Value> {
        let mut event = self.load("tryon-worker-sqs.json")?;
        let record =
            event.get_mut("Records").and_then(|r| r.get_mut(0)).context("tryon-worker-sqs.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("no body")?).context("body")?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(&mut body, &["detail", "data", "session_id"], json!(Uuid::now_v7().to_string()))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// An SQS batch of one `ai.phase.requested` for a job that does not exist.
    pub fn ai_job(&self) -> Result<Value> {
        let mut event = self.load("ai-worker-sqs.json")?;
        let record = event.get_mut("Records").and_then(|r| r.get_mut(0)).context("ai-worker-sqs.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("no body")?).context("body")?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(&mut body, &["detail", "data", "job_id"], json!(Uuid::now_v7().to_string()))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// An SQS batch of one `compliance.export.requested` for an export that
    /// does not exist.
    pub fn compliance_job(&self) -> Result<Value> {
        let mut event = self.load("compliance-worker-sqs.json")?;
        let record =
            event.get_mut("Records").and_then(|r| r.get_mut(0)).context("compliance-worker-sqs.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("no body")?).context("body")?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(&mut body, &["detail", "data", "export_id"], json!(Uuid::now_v7().to_string()))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// An SQS batch of one delivery job for a delivery that does not exist.
    pub fn webhook_job(&self) -> Result<Value> {
        let mut event = self.load("webhook-dispatcher-sqs.json")?;
        let record =
            event.get_mut("Records").and_then(|r| r.get_mut(0)).context("webhook-dispatcher-sqs.json has no record")?;
        let body = json!({
            "tenant_id": Uuid::now_v7(), "endpoint_id": Uuid::now_v7(), "delivery_id": Uuid::now_v7(), "not_before": 0,
        });
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// `POST /v1/webhooks` for an endpoint at `url` (the bench's receiver),
    /// as the bench user.
    pub fn create_webhook(&self, token: &str, url: &str) -> Result<Value> {
        let mut event = self.load("webhooks-create.json")?;
        if let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) {
            headers.remove("x-api-key");
            headers.remove("content-length");
        }
        set(&mut event, &["headers", "idempotency-key"], json!(Uuid::new_v4().to_string()))?;
        let body = json!({"url": url, "event_types": ["tryon.*"], "description": "bench receiver"});
        set(&mut event, &["body"], json!(body.to_string()))?;
        with_bearer(fresh_request_id(event)?, token)
    }

    /// An SQS batch (the events queue) of one `webhook.test` event per id for
    /// `endpoint`: the dispatcher's fan-out records one pending delivery each
    /// (delivery id = event id) and queues its job.
    pub fn webhook_test_events(&self, tenant: Uuid, endpoint: Uuid, ids: &[Uuid]) -> Result<Value> {
        let bodies = ids.iter().map(|id| {
            let now = chrono::Utc::now();
            json!({
                "version": "0", "id": Uuid::new_v4(), "detail-type": "webhook.test", "source": "saas.platform",
                "account": "000000000000", "time": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                "region": "us-east-1", "resources": [],
                "detail": {
                    "id": id, "type": "webhook.test", "tenant_id": tenant, "version": 1,
                    "occurred_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "data": {"endpoint_id": endpoint, "message": "a test event from the platform"},
                },
            })
        });
        self.sqs_batch("webhook-dispatcher-sqs.json", bodies)
    }

    /// An SQS batch (the deliveries queue) of one delivery job per delivery id.
    pub fn delivery_jobs(&self, tenant: Uuid, endpoint: Uuid, deliveries: &[Uuid]) -> Result<Value> {
        let bodies = deliveries
            .iter()
            .map(|id| json!({"tenant_id": tenant, "endpoint_id": endpoint, "delivery_id": id, "not_before": 0}));
        self.sqs_batch("webhook-dispatcher-sqs.json", bodies)
    }

    /// The sample's first record once per body, each with its own message id.
    fn sqs_batch(&self, sample: &str, bodies: impl Iterator<Item = Value>) -> Result<Value> {
        let mut event = self.load(sample)?;
        let template =
            event.get("Records").and_then(|r| r.get(0)).cloned().with_context(|| format!("{sample} has no record"))?;
        let records = bodies
            .map(|body| {
                let mut record = template.clone();
                set(&mut record, &["body"], json!(body.to_string()))?;
                set(&mut record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
                Ok(record)
            })
            .collect::<Result<Vec<_>>>()?;
        set(&mut event, &["Records"], Value::Array(records))?;
        Ok(event)
    }

    /// An SQS batch of one `integration.event.received` for an inbound
    /// event that does not exist (the worker finds nothing to take).
    pub fn integration_job(&self) -> Result<Value> {
        let mut event = self.load("integrations-worker-sqs.json")?;
        let record = event
            .get_mut("Records")
            .and_then(|r| r.get_mut(0))
            .context("integrations-worker-sqs.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("no body")?).context("body")?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(&mut body, &["detail", "data", "inbound_id"], json!(Uuid::now_v7().to_string()))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// An SQS batch of one bus event on the workflow triggers queue, whose
    /// type no workflow of the tenant listens to (one Query, nothing starts).
    pub fn workflow_trigger_job(&self) -> Result<Value> {
        let mut event = self.load("workflows-worker-trigger.json")?;
        let record = event
            .get_mut("Records")
            .and_then(|r| r.get_mut(0))
            .context("workflows-worker-trigger.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("no body")?).context("body")?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// `POST /v1/billing/usage`, the sample's body, a fresh Idempotency-Key
    /// (so each post is a new usage event).
    pub fn record_usage(&self, token: &str) -> Result<Value> {
        let mut event = self.load("billing-usage.json")?;
        set(&mut event, &["headers", "idempotency-key"], json!(Uuid::new_v4().to_string()))?;
        with_bearer(fresh_request_id(event)?, token)
    }

    /// An SQS batch of one hourly billing job (the schedule's Input).
    pub fn billing_job(&self) -> Result<Value> {
        let mut event = self.load("billing-worker-sqs.json")?;
        let record =
            event.get_mut("Records").and_then(|r| r.get_mut(0)).context("billing-worker-sqs.json has no record")?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        Ok(event)
    }

    /// `GET /v1/tenants/me` authenticated by an API key (`X-API-Key`).
    pub fn my_tenant_with_key(&self, secret: &str) -> Result<Value> {
        let mut event = self.my_tenant("unused")?;
        if let Some(headers) = event["headers"].as_object_mut() {
            headers.remove("authorization");
        }
        set(&mut event, &["headers", "x-api-key"], json!(secret))?;
        Ok(event)
    }

    /// `POST /v1/api-keys`, the sample's body and a fresh Idempotency-Key.
    pub fn create_api_key(&self, token: &str) -> Result<Value> {
        let mut event = self.load("api-keys-create.json")?;
        set(&mut event, &["headers", "idempotency-key"], json!(Uuid::new_v4().to_string()))?;
        with_bearer(fresh_request_id(event)?, token)
    }

    /// `GET /v1/api-keys` (the create sample as a GET without a body).
    pub fn list_api_keys(&self, token: &str) -> Result<Value> {
        let mut event = self.load("api-keys-create.json")?;
        set(&mut event, &["routeKey"], json!("GET /v1/api-keys"))?;
        set(&mut event, &["requestContext", "routeKey"], json!("GET /v1/api-keys"))?;
        set(&mut event, &["requestContext", "http", "method"], json!("GET"))?;
        set(&mut event, &["headers", "content-length"], json!("0"))?;
        if let Some(object) = event.as_object_mut() {
            object.remove("body");
        }
        if let Some(headers) = event["headers"].as_object_mut() {
            headers.remove("idempotency-key");
            headers.remove("content-type");
        }
        with_bearer(fresh_request_id(event)?, token)
    }

    /// An SQS batch of one `tenant.created` for this tenant; `receive_count` > 1
    /// is a redelivery.
    pub fn tenant_created(&self, tenant_id: Uuid, slug: &str, receive_count: u32) -> Result<Value> {
        let mut event = self.load("tenant-provisioner-sqs.json")?;
        let record = event
            .get_mut("Records")
            .and_then(|records| records.get_mut(0))
            .context("tenant-provisioner-sqs.json has no record")?;
        let mut body: Value = serde_json::from_str(record["body"].as_str().context("the sample record has no body")?)
            .context("the sample record's body is not JSON")?;
        set(&mut body, &["id"], json!(Uuid::new_v4().to_string()))?;
        set(&mut body, &["detail", "id"], json!(Uuid::now_v7().to_string()))?;
        set(&mut body, &["detail", "tenant_id"], json!(tenant_id.to_string()))?;
        set(&mut body, &["detail", "data", "tenant_id"], json!(tenant_id.to_string()))?;
        set(&mut body, &["detail", "data", "slug"], json!(slug))?;
        set(record, &["body"], json!(body.to_string()))?;
        set(record, &["messageId"], json!(Uuid::new_v4().to_string()))?;
        set(record, &["attributes", "ApproximateReceiveCount"], json!(receive_count.to_string()))?;
        Ok(event)
    }
}

/// API Gateway gives every request its own id (the functions log and echo it).
fn fresh_request_id(mut event: Value) -> Result<Value> {
    set(&mut event, &["requestContext", "requestId"], json!(Uuid::new_v4().to_string()))?;
    Ok(event)
}

fn on_path(mut event: Value, path: &str, route_key: &str, proxy: &str) -> Result<Value> {
    if !event["requestContext"]["http"].is_object() {
        bail!("sample event is not an HTTP API (payload 2.0) event");
    }
    set(&mut event, &["rawPath"], json!(path))?;
    set(&mut event, &["routeKey"], json!(route_key))?;
    set(&mut event, &["requestContext", "routeKey"], json!(route_key))?;
    set(&mut event, &["requestContext", "http", "path"], json!(path))?;
    set(&mut event, &["pathParameters"], json!({ "proxy": proxy }))?;
    Ok(event)
}

fn with_body(mut event: Value, body: &Value) -> Result<Value> {
    let body = body.to_string();
    set(&mut event, &["headers", "content-length"], json!(body.len().to_string()))?;
    set(&mut event, &["body"], json!(body))?;
    fresh_request_id(event)
}

fn with_bearer(mut event: Value, token: &str) -> Result<Value> {
    set(&mut event, &["headers", "authorization"], json!(format!("Bearer {token}")))?;
    Ok(event)
}

/// Sets the member at `path`, creating missing objects on the way. Unlike
/// `value["a"]["b"] = ...` it fails, instead of panicking, on a sample whose
/// shape is not the expected one.
fn set(value: &mut Value, path: &[&str], new: Value) -> Result<()> {
    let Some((last, parents)) = path.split_last() else { bail!("empty path") };
    let mut at = value;
    for key in parents {
        let object = at.as_object_mut().with_context(|| format!("sample event: `{key}`'s parent is not an object"))?;
        at = object.entry(*key).or_insert_with(|| json!({}));
    }
    at.as_object_mut()
        .with_context(|| format!("sample event: `{last}`'s parent is not an object"))?
        .insert((*last).to_owned(), new);
    Ok(())
}

/// The default samples directory: the workspace's `events/`.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("events")
}
