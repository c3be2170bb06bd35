//! Typed ids: a `TenantId` cannot be passed where a `ProjectId` is meant, and
//! each knows the name the API gives it, so a path segment that is not a
//! UUID is refused with a 400 naming that parameter (`web::extract::PathIds`).
//! Ids are UUIDv7 (time-ordered); on the wire they are plain UUID strings.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUID derived from `parts` (SHA-256, v4 bits): the same parts give the
/// same id, so a redelivered message (an event, a schedule's firing) makes
/// nothing twice.
pub fn derived_id(parts: &[&str]) -> Uuid {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// An id type the API names (`tenant_id`, `project_id`, ...).
pub trait TypedId: Sized + Copy {
    /// The parameter's name in paths, bodies and error bodies.
    const PARAM: &'static str;
    fn from_uuid(uuid: Uuid) -> Self;
    fn uuid(&self) -> Uuid;
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $param:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // The whole value, whatever its type: a wrong one must not
                // leave the parser mid-value (the rest of the body is checked).
                let value = serde_json::Value::deserialize(deserializer)?;
                value
                    .as_str()
                    .and_then(|text| Uuid::parse_str(text).ok())
                    .map($name)
                    .ok_or_else(|| serde::de::Error::custom("must be a valid UUID"))
            }
        }

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))).into()
            }
        }

        impl utoipa::ToSchema for $name {}

        impl TypedId for $name {
            const PARAM: &'static str = $param;

            fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// A tenant (an organisation; seed 004).
    TenantId,
    "tenant_id"
);
typed_id!(UserId, "user_id");
typed_id!(ProjectId, "project_id");
typed_id!(TaskId, "task_id");
typed_id!(ApiKeyId, "key_id");
typed_id!(CustomerId, "customer_id");
typed_id!(PhotoId, "photo_id");
typed_id!(TryonId, "tryon_id");
typed_id!(EndpointId, "endpoint_id");
typed_id!(DeliveryId, "delivery_id");
typed_id!(InvoiceId, "invoice_id");
typed_id!(IntegrationProviderId, "provider_id");
typed_id!(InboundEventId, "event_id");
typed_id!(WorkflowId, "workflow_id");
typed_id!(ExecutionId, "execution_id");
typed_id!(SyncConnectionId, "connection_id");
typed_id!(SyncRunId, "run_id");
typed_id!(AlertId, "alert_id");
typed_id!(
    /// An AI job: a code generation, or a task's analysis.
    GenerationId,
    "generation_id"
);
typed_id!(ExportId, "export_id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_plain_uuids_on_the_wire_and_know_their_parameter() {
        let id = TenantId::generate();
        assert_eq!(serde_json::to_value(id).expect("json"), serde_json::json!(id.0.to_string()));
        assert_eq!(serde_json::from_value::<TenantId>(serde_json::json!(id.0.to_string())).expect("parse"), id);
        assert_eq!(TenantId::PARAM, "tenant_id");
        assert_eq!(id.to_string(), id.0.to_string());
    }
}
