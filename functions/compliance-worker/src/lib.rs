//! The compliance-worker: consumes `compliance.export.requested` (outbox ->
//! bus -> EventBridge rule -> SQS -> this function) and builds the tenant's
//! data export, one zip at `tenants/<tenant>/exports/<export>.zip`:
//! - `manifest.json`: what the export is and what it leaves out;
//! - `items.json`: every item of the tenant's partition (`PK = T#<tenant>#`,
//!   all pages), keys included, secrets left out (hashes, sealed values and
//!   their nonces, backup codes; credential-only items whole:
//!   `shared::domain::compliance`);
//! - `objects/<path>`: every object under `tenants/<tenant>/` except earlier
//!   exports, at its path below that prefix.
//!
//! Only the event's own tenant partition and bucket prefix are read, so an
//! export never holds another tenant's data. Idempotent: the job is claimed
//! (`pending`, or `running` after a crash, -> `running`), a `completed` or
//! `failed` one is acknowledged and left alone, and a redelivery of a job
//! that died mid-way rebuilds the zip from scratch (same key, overwritten).
//! After [`MAX_ATTEMPTS`] the job is marked `failed` instead of retried.

use std::io::{Cursor, Write};

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value, json};
use shared::{
    audit::AuditContext,
    auth::{TenantScope, proofs::OwnEvent},
    blobs::{Blobs, tenant_prefix},
    domain::compliance::{CREDENTIAL_ITEM_PREFIXES, is_credential_item, is_secret_attribute},
    events::{Event, EventBridgeEnvelope},
    store::{
        Item, Store,
        compliance::{StartExport, export_object_key, exports_blob_prefix},
    },
};
use uuid::Uuid;

/// How this worker appears as the actor of its audit entries.
const COMPONENT: &str = "compliance-worker";
/// Deliveries of one job before it is marked `failed` (the queue's
/// maxReceiveCount is 5: the job fails before its message reaches the DLQ).
pub const MAX_ATTEMPTS: i64 = 4;
/// The zip's tag: the bucket's `ExpireComplianceExports` lifecycle rule
/// (template.yaml) deletes tagged objects after 7 days.
pub const EXPORT_TAGGING: &str = "lifecycle=compliance-export";

pub struct ComplianceWorker {
    pub store: Store,
    pub blobs: Blobs,
}

/// What handling one message did (for logs and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Completed {
        items: i64,
        objects: i64,
    },
    /// Completed or failed before this delivery.
    AlreadyDone,
    /// Out of attempts: marked `failed`.
    Failed,
    /// No such job (nothing to do).
    Missing,
}

impl shared::worker::Worker for ComplianceWorker {
    type Outcome = Outcome;

    async fn handle(&self, message: &SqsMessage) -> Result<Outcome> {
        let body = message.body.as_deref().context("message has no body")?;
        let envelope: EventBridgeEnvelope = serde_json::from_str(body).context("body is not a domain event")?;
        let Event::ComplianceExportRequested(request) = envelope.event()? else {
            bail!("unexpected event type {}", envelope.detail_type);
        };
        self.export(&OwnEvent::scope(&envelope)?, request.export_id).await
    }
}

impl ComplianceWorker {
    #[tracing::instrument(skip(self, scope), fields(tenant_id = %scope.tenant_id()))]
    pub async fn export(&self, scope: &TenantScope, export_id: Uuid) -> Result<Outcome> {
        let job = match self.store.start_export(scope, export_id).await.map_err(shared::AppError::into_anyhow)? {
            StartExport::Started(job) => *job,
            StartExport::Finished => return Ok(Outcome::AlreadyDone),
            StartExport::Missing => return Ok(Outcome::Missing),
        };
        if job.attempts > MAX_ATTEMPTS {
            self.store
                .fail_export(scope, export_id, "the export failed on every attempt; ask for a new one")
                .await
                .map_err(shared::AppError::into_anyhow)?;
            return Ok(Outcome::Failed);
        }
        let items = self.store.partition_items(scope).await.map_err(shared::AppError::into_anyhow)?;
        let items: Vec<Value> = items.iter().filter_map(exported_item).collect();
        let prefix = tenant_prefix(scope);
        let earlier = exports_blob_prefix(scope);
        let keys: Vec<String> = self
            .blobs
            .list(&prefix)
            .await
            .map_err(shared::AppError::into_anyhow)?
            .into_iter()
            .map(|(key, _)| key)
            .filter(|key| !key.starts_with(&earlier))
            .collect();
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            // Listed, then deleted before we read it: not part of the export.
            if let Some(bytes) = self.blobs.get(&key).await.map_err(shared::AppError::into_anyhow)? {
                objects.push((key[prefix.len()..].to_owned(), bytes));
            }
        }
        let manifest = json!({
            "export_id": job.id,
            "tenant_id": scope.tenant_id(),
            "generated_at": shared::domain::now_rfc3339(),
            "requested_by": job.requested_by,
            "item_count": items.len(),
            "object_count": objects.len(),
            "contents": {
                "items.json": "every item of the tenant's partition of the table, as stored (PK and SK kept)",
                "objects/": "every file the tenant stores, at its path below tenants/<tenant id>/",
            },
            "left_out": {
                "items": CREDENTIAL_ITEM_PREFIXES,
                "attributes": "secrets and what proves them: *_hash, *_sealed, *_nonce, backup_codes, lock",
                "objects": "earlier exports",
            },
        });
        let (item_count, object_count) = (items.len() as i64, objects.len() as i64);
        let zip = tokio::task::spawn_blocking(move || build_zip(&manifest, &items, &objects))
            .await
            .context("the zip task failed")??;
        let size = zip.len() as i64;
        let key = export_object_key(scope, job.id);
        self.blobs
            .put_tagged(&key, zip, "application/zip", Some(EXPORT_TAGGING))
            .await
            .map_err(shared::AppError::into_anyhow)?;
        let audit = AuditContext::system(COMPONENT);
        match self
            .store
            .complete_export(scope, &job, (item_count, object_count, size), &key, &audit)
            .await
            .map_err(shared::AppError::into_anyhow)?
        {
            Some(_) => Ok(Outcome::Completed { items: item_count, objects: object_count }),
            None => Ok(Outcome::AlreadyDone),
        }
    }
}

/// One zip: the manifest, the items, the objects (stored as they are: most
/// are images, already compressed).
pub fn build_zip(manifest: &Value, items: &[Value], objects: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    use zip::{CompressionMethod, write::SimpleFileOptions};
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let text = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).large_file(true);
    let raw = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(true);
    writer.start_file("manifest.json", text)?;
    writer.write_all(serde_json::to_string_pretty(manifest)?.as_bytes())?;
    writer.start_file("items.json", text)?;
    writer.write_all(serde_json::to_string(items)?.as_bytes())?;
    for (path, bytes) in objects {
        let options = if path.ends_with(".json") { text } else { raw };
        writer.start_file(format!("objects/{path}"), options)?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish()?.into_inner())
}

/// An item as exported: `None` for credential-only items; secret
/// attributes left out at any depth.
pub fn exported_item(item: &Item) -> Option<Value> {
    let sk = item.get("SK").and_then(|v| v.as_s().ok())?;
    if is_credential_item(sk) {
        return None;
    }
    Some(Value::Object(
        item.iter()
            .filter(|(name, _)| !is_secret_attribute(name))
            .filter_map(|(name, value)| Some((name.clone(), to_json(value)?)))
            .collect(),
    ))
}

/// An attribute as JSON (binary values are left out: the only ones stored
/// are sealed secrets and their nonces).
fn to_json(value: &AttributeValue) -> Option<Value> {
    Some(match value {
        AttributeValue::S(s) => json!(s),
        AttributeValue::N(n) => n
            .parse::<i64>()
            .map(Value::from)
            .or_else(|_| n.parse::<f64>().map(Value::from))
            .unwrap_or_else(|_| json!(n)),
        AttributeValue::Bool(b) => json!(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .filter(|(name, _)| !is_secret_attribute(name))
                .filter_map(|(name, v)| Some((name.clone(), to_json(v)?)))
                .collect::<Map<String, Value>>(),
        ),
        AttributeValue::L(list) => Value::Array(list.iter().filter_map(to_json).collect()),
        AttributeValue::Ss(set) => json!(set),
        AttributeValue::Ns(set) => {
            Value::Array(set.iter().filter_map(|n| to_json(&AttributeValue::N(n.clone()))).collect())
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<HashMap<_, _>>()
    }

    #[test]
    fn secrets_and_credential_items_stay_out_of_an_export() {
        let s = |v: &str| AttributeValue::S(v.into());
        let user = item(&[
            ("PK", s("T#1#")),
            ("SK", s("USER#1")),
            ("email", s("a@b.co")),
            ("password_hash", s("$argon2id$...")),
            ("n", AttributeValue::N("3".into())),
            (
                "nested",
                AttributeValue::M(HashMap::from([("token_hash".to_owned(), s("x")), ("ok".to_owned(), s("y"))])),
            ),
        ]);
        assert_eq!(
            exported_item(&user),
            Some(json!({"PK": "T#1#", "SK": "USER#1", "email": "a@b.co", "n": 3, "nested": {"ok": "y"}}))
        );
        let session = item(&[("PK", s("T#1#")), ("SK", s("SESSION#1")), ("token_hash", s("x"))]);
        assert_eq!(exported_item(&session), None);
    }

    #[test]
    fn the_zip_holds_the_manifest_the_items_and_the_objects() {
        let zip = build_zip(&json!({"a": 1}), &[json!({"SK": "X"})], &[("customers/c/photos/p".into(), vec![1, 2, 3])])
            .expect("zip");
        let mut archive = zip::ZipArchive::new(Cursor::new(zip)).expect("archive");
        let names: Vec<String> =
            (0..archive.len()).map(|i| archive.by_index(i).expect("entry").name().expect("name").to_string()).collect();
        assert_eq!(names, ["manifest.json", "items.json", "objects/customers/c/photos/p"]);
        let mut items = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("items.json").expect("items"), &mut items).expect("read");
        assert_eq!(items, r#"[{"SK":"X"}]"#);
    }
}
