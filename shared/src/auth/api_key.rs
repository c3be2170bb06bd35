//! API key secrets. A key reads `sk_live_<75 base64url characters>` (or
//! `sk_test_`): the characters carry the tenant id, the key id and 192 random
//! bits. The ids let authentication find the key with one GetItem in the
//! tenant's partition, no index and no scan; the random part makes the secret
//! unguessable. Only the SHA-256 of the whole secret is stored: a fast hash is
//! the right one for a secret with 192 bits of entropy (a slow password hash
//! buys nothing there and would cost every request tens of milliseconds), and
//! a stolen table still yields no usable key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const RANDOM_BYTES: usize = 24;
const PAYLOAD_BYTES: usize = 16 + 16 + RANDOM_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyEnvironment {
    Live,
    Test,
}

impl KeyEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "live",
            KeyEnvironment::Test => "test",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "live" => Some(KeyEnvironment::Live),
            "test" => Some(KeyEnvironment::Test),
            _ => None,
        }
    }

    /// The recognisable start of every key of this environment.
    pub fn prefix(self) -> &'static str {
        match self {
            KeyEnvironment::Live => "sk_live_",
            KeyEnvironment::Test => "sk_test_",
        }
    }
}

/// A freshly made secret: shown to the caller once, then only its hash lives on.
pub struct NewSecret {
    pub secret: String,
    pub hash: String,
    pub last_four: String,
}

pub fn generate(tenant_id: Uuid, key_id: Uuid, environment: KeyEnvironment) -> NewSecret {
    let mut payload = [0u8; PAYLOAD_BYTES];
    payload[..16].copy_from_slice(tenant_id.as_bytes());
    payload[16..32].copy_from_slice(key_id.as_bytes());
    rand::thread_rng().fill_bytes(&mut payload[32..]);
    let secret = format!("{}{}", environment.prefix(), URL_SAFE_NO_PAD.encode(payload));
    let last_four = secret[secret.len() - 4..].to_owned();
    NewSecret { hash: hash(&secret), secret, last_four }
}

/// What a presented key claims to be; nothing is trusted until its hash matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresentedKey {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub environment: KeyEnvironment,
}

/// True for strings shaped like our keys (so a bearer token can be told
/// apart from a JWT before any work is done).
pub fn looks_like_key(token: &str) -> bool {
    token.starts_with(KeyEnvironment::Live.prefix()) || token.starts_with(KeyEnvironment::Test.prefix())
}

pub fn parse(secret: &str) -> Option<PresentedKey> {
    let (environment, rest) = if let Some(rest) = secret.strip_prefix(KeyEnvironment::Live.prefix()) {
        (KeyEnvironment::Live, rest)
    } else {
        (KeyEnvironment::Test, secret.strip_prefix(KeyEnvironment::Test.prefix())?)
    };
    let payload = URL_SAFE_NO_PAD.decode(rest).ok()?;
    if payload.len() != PAYLOAD_BYTES {
        return None;
    }
    Some(PresentedKey {
        tenant_id: Uuid::from_slice(&payload[..16]).ok()?,
        key_id: Uuid::from_slice(&payload[16..32]).ok()?,
        environment,
    })
}

pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares two hashes in time independent of where they differ.
pub fn hashes_match(presented: &str, stored: &str) -> bool {
    use subtle::ConstantTimeEq;
    presented.len() == stored.len() && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_names_its_tenant_and_id_and_hashes_to_what_is_stored() {
        let (tenant, key) = (Uuid::now_v7(), Uuid::now_v7());
        let made = generate(tenant, key, KeyEnvironment::Live);
        assert!(made.secret.starts_with("sk_live_"));
        assert_eq!(made.secret.len(), 8 + 75);
        assert!(made.secret.ends_with(&made.last_four));
        assert_eq!(
            parse(&made.secret),
            Some(PresentedKey { tenant_id: tenant, key_id: key, environment: KeyEnvironment::Live })
        );
        assert!(hashes_match(&hash(&made.secret), &made.hash));
        assert!(!made.hash.contains(&made.secret[8..]));
    }

    #[test]
    fn two_keys_for_the_same_ids_differ() {
        let (tenant, key) = (Uuid::now_v7(), Uuid::now_v7());
        let a = generate(tenant, key, KeyEnvironment::Test);
        let b = generate(tenant, key, KeyEnvironment::Test);
        assert!(a.secret.starts_with("sk_test_"));
        assert_ne!(a.secret, b.secret);
        assert!(!hashes_match(&a.hash, &b.hash));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        assert_eq!(parse("sk_live_"), None);
        assert_eq!(parse("sk_prod_AAAA"), None);
        assert_eq!(parse("sk_live_not base64!"), None);
        let short = format!("sk_live_{}", URL_SAFE_NO_PAD.encode([0u8; 40]));
        assert_eq!(parse(&short), None);
        assert!(!looks_like_key("eyJhbGciOi.x.y"));
    }
}
