//! External customers (seed 004: a retailer's shoppers) and their photos:
//! the entities as stored and shown, the photo's status, kind and content
//! type, and the values an upsert is made of ([`ExternalId`],
//! [`Metadata`]), each valid by construction.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::{Map, Value};
use uuid::Uuid;

pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// Serialised metadata a customer may carry.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Largest photo accepted, in bytes.
pub const MAX_PHOTO_BYTES: i64 = 10 * 1024 * 1024;

/// A photo's declared `size_bytes`: 1 to [`MAX_PHOTO_BYTES`].
pub type PhotoSize = super::values::Int<1, MAX_PHOTO_BYTES>;
/// A customer's `name`.
pub type CustomerName = super::values::Text<1, 200>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub external_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub photo_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A customer as the API shows it (and as audit entries record it).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CustomerView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The retailer's own id of the shopper.
    pub external_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub metadata: Map<String, Value>,
    pub photo_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    pub fn view(&self) -> CustomerView {
        CustomerView {
            id: self.id,
            tenant_id: self.tenant_id,
            external_id: self.external_id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            metadata: self.metadata.clone(),
            photo_count: self.photo_count,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// The fields an upsert sets: `None` leaves a field as it is on an update,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerFields {
    pub email: Option<Option<String>>,
    pub name: Option<Option<String>>,
    pub metadata: Option<Map<String, Value>>,
}

crate::string_enum!(
    /// Where a photo is in its life: awaiting its upload, checked and
    /// usable, or refused.
    PhotoStatus {
        Pending => "pending",
        Ready => "ready",
        Rejected => "rejected",
    }
);

crate::string_enum!(
    /// `person` (the shopper) or `garment` (a product image for a cart item).
    PhotoKind {
        Person => "person",
        Garment => "garment",
    }
);

crate::string_enum!(
    /// The image types a photo may be.
    ImageType {
        Jpeg => "image/jpeg",
        Png => "image/png",
        Webp => "image/webp",
    }
);

/// Compared with the stored names (`photo.status != "ready"`).
impl PartialEq<&str> for PhotoStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<&str> for PhotoKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<&str> for ImageType {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub kind: PhotoKind,
    pub content_type: ImageType,
    pub declared_size: i64,
    pub status: PhotoStatus,
    #[serde(default)]
    pub size_bytes: Option<i64>,
    #[serde(default)]
    pub rejection_reason: Option<String>,
    pub object_key: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A photo as the API shows it: the bucket key is ours, not the caller's
/// business, so it has no field here.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub customer_id: Uuid,
    pub kind: PhotoKind,
    pub content_type: ImageType,
    /// The size the create body declared; the upload must match it.
    pub declared_size: i64,
    pub status: PhotoStatus,
    /// The uploaded object's size, once confirmed.
    pub size_bytes: Option<i64>,
    /// Why the upload was refused (`rejected` only).
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl Photo {
    pub fn view(&self) -> PhotoView {
        PhotoView {
            id: self.id,
            tenant_id: self.tenant_id,
            customer_id: self.customer_id,
            kind: self.kind,
            content_type: self.content_type,
            declared_size: self.declared_size,
            status: self.status,
            size_bytes: self.size_bytes,
            rejection_reason: self.rejection_reason.clone(),
            created_at: self.created_at,
            confirmed_at: self.confirmed_at,
        }
    }
}

/// The retailer's own id of a shopper: 1 to [`MAX_EXTERNAL_ID_CHARS`]
/// visible ASCII characters, no spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let len = value.chars().count();
        if len < 1 {
            Err("must have at least 1 characters".to_owned())
        } else if len > MAX_EXTERNAL_ID_CHARS {
            Err(format!("must have at most {MAX_EXTERNAL_ID_CHARS} characters"))
        } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
            Err("must be visible ASCII characters without spaces".to_owned())
        } else {
            Ok(Self(value.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for ExternalId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Self::parse(&s).map_err(D::Error::custom),
            Value::Null => Err(D::Error::custom("is required")),
            _ => Err(D::Error::custom("must be a string")),
        }
    }
}

crate::inline_schema!(
    ExternalId,
    "ExternalId",
    string(1, MAX_EXTERNAL_ID_CHARS)
        .pattern(Some("^[!-~]+$"))
        .description(Some("The retailer's own id: visible ASCII, no spaces"))
);

/// A customer's free-form `metadata`: an object of at most
/// [`MAX_METADATA_BYTES`] serialised that DynamoDB can store (at most 8
/// levels deep, no empty keys, numbers within its range), so a customer
/// item stays a few KiB and every list that meets it can read it back.
pub type Metadata = super::values::JsonObject<MAX_METADATA_BYTES>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn external_ids_are_visible_ascii_and_metadata_is_a_small_object() {
        assert!(ExternalId::parse("shopper-42").is_ok());
        assert!(ExternalId::parse("has space").is_err());
        assert!(ExternalId::parse("").is_err());
        assert!(serde_json::from_value::<Metadata>(json!({"tier": "gold"})).is_ok());
        assert!(serde_json::from_value::<Metadata>(json!(3)).is_err());
        assert!(serde_json::from_value::<Metadata>(json!({"blob": "x".repeat(5000)})).is_err());
        for unstorable in [json!({"": 1}), json!({"n": 1e300}), json!({"n": 1e-200})] {
            assert!(serde_json::from_value::<Metadata>(unstorable.clone()).is_err(), "{unstorable}");
        }
    }

    #[test]
    fn statuses_compare_with_their_stored_names() {
        assert!(PhotoStatus::Ready == "ready");
        assert!(PhotoKind::Garment != "person");
        assert_eq!(serde_json::to_value(ImageType::Webp).expect("json"), json!("image/webp"));
    }
}
