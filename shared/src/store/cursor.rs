//! Opaque, tamper-proof list cursors: the DynamoDB key to resume from, signed
//! with HMAC-SHA256 and bound to the list it came from, so a cursor can neither
//! be edited nor replayed against another tenant's or another filter's list.
//! A cursor names the ring key that signed it (`<key id>.<payload>.<tag>`),
//! so cursors handed out before a key rotation still work after it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{error::AppError, sealing::KeyRing};

type HmacSha256 = Hmac<Sha256>;
const TAG_LEN: usize = 16;

#[derive(Clone)]
pub struct CursorCodec {
    ring: KeyRing,
}

impl std::fmt::Debug for CursorCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorCodec(..)")
    }
}

impl CursorCodec {
    pub fn new(ring: KeyRing) -> Self {
        Self { ring }
    }

    fn tag(key: &[u8], context: &str, payload: &[u8]) -> HmacSha256 {
        // new_from_slice accepts any key length for HMAC.
        let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key size"));
        mac.update(context.as_bytes());
        mac.update(&[0]);
        mac.update(payload);
        mac
    }

    pub fn encode(&self, context: &str, key: &HashMap<String, AttributeValue>) -> String {
        let plain: std::collections::BTreeMap<&str, &str> =
            key.iter().filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str()))).collect();
        let payload = serde_json::to_vec(&plain).unwrap_or_default();
        let key = self.ring.current_key();
        let tag = Self::tag(&key.secret, context, &payload).finalize().into_bytes();
        format!("{}.{}.{}", key.id, URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN]))
    }

    pub fn decode(&self, context: &str, cursor: &str) -> Result<HashMap<String, AttributeValue>, AppError> {
        let invalid =
            || AppError::invalid_field("cursor", "is invalid, expired or was altered; start again without it");
        let mut parts = cursor.splitn(3, '.');
        let (Some(key_id), Some(payload_b64), Some(tag_b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(invalid());
        };
        // A key dropped from the ring (two rotations ago) made it expire.
        let key = self.ring.key(key_id).ok_or_else(invalid)?;
        let payload = URL_SAFE_NO_PAD.decode(payload_b64).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| invalid())?;
        Self::tag(&key.secret, context, &payload).verify_truncated_left(&tag).map_err(|_| invalid())?;
        if tag.len() != TAG_LEN {
            return Err(invalid());
        }
        let plain: HashMap<String, String> = serde_json::from_slice(&payload).map_err(|_| invalid())?;
        Ok(plain.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("PK".to_owned(), AttributeValue::S("T#1#".into())),
            ("SK".to_owned(), AttributeValue::S("USER#2".into())),
        ])
    }

    #[test]
    fn a_cursor_round_trips_in_its_own_context_only() {
        let codec = single_key_codec("k1", b"0123456789abcdef0123456789abcdef");
        let cursor = codec.encode("users:T1", &key());
        assert_eq!(codec.decode("users:T1", &cursor).expect("valid"), key());
        assert!(codec.decode("users:T2", &cursor).is_err());
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let codec = single_key_codec("k1", b"0123456789abcdef0123456789abcdef");
        let cursor = codec.encode("ctx", &key());
        let mut bytes = cursor.clone().into_bytes();
        for i in 0..bytes.len() {
            let original = bytes[i];
            bytes[i] = if original == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes.clone()).expect("ascii");
            if altered != cursor {
                assert!(codec.decode("ctx", &altered).is_err(), "accepted change at {i}");
            }
            bytes[i] = original;
        }
        assert!(codec.decode("ctx", "garbage").is_err());
        assert!(single_key_codec("k1", b"another-secret-another-secret-xx").decode("ctx", &cursor).is_err());
    }

    #[test]
    fn a_cursor_signed_before_a_rotation_decodes_after_it_until_its_key_leaves_the_ring() {
        use crate::sealing::RingKey;
        let k = |id: &str| RingKey { id: id.to_owned(), secret: id.repeat(32).into_bytes() };
        let before = CursorCodec::new(KeyRing::new("cursor", vec![k("k1"), k("k2")], "k1").expect("ring"));
        let cursor = before.encode("ctx", &key());
        assert!(cursor.starts_with("k1."));
        let after = CursorCodec::new(KeyRing::new("cursor", vec![k("k1"), k("k2"), k("k3")], "k2").expect("ring"));
        assert_eq!(after.decode("ctx", &cursor).expect("still valid"), key());
        assert!(after.encode("ctx", &key()).starts_with("k2."));
        let later = CursorCodec::new(KeyRing::new("cursor", vec![k("k2"), k("k3")], "k2").expect("ring"));
        assert!(later.decode("ctx", &cursor).is_err());
    }

    fn single_key_codec(id: &str, secret: &[u8]) -> CursorCodec {
        CursorCodec::new(KeyRing::single("cursor", id, secret))
    }
}
