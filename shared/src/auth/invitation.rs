//! One-time invitation tokens: `inv.<tenant>.<base64url(email)>.<secret>`.
//! The tenant and email route the lookup (one GetItem); the 256-bit secret
//! proves possession; only its SHA-256 is stored.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub struct InvitationToken {
    pub tenant_id: Uuid,
    pub email: String,
    secret: String,
}

impl InvitationToken {
    pub fn generate(tenant_id: Uuid, email: &str) -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self { tenant_id, email: email.to_ascii_lowercase(), secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split('.');
        let (Some("inv"), Some(t), Some(e), Some(secret), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let email = String::from_utf8(URL_SAFE_NO_PAD.decode(e).ok()?).ok()?;
        Some(Self { tenant_id: Uuid::parse_str(t).ok()?, email, secret: secret.to_owned() })
    }

    pub fn encode(&self) -> String {
        format!("inv.{}.{}.{}", self.tenant_id, URL_SAFE_NO_PAD.encode(self.email.as_bytes()), self.secret)
    }

    pub fn hash(&self) -> String {
        Sha256::digest(self.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_its_hash_is_stable() {
        let token = InvitationToken::generate(Uuid::now_v7(), "New-User@Example.com");
        let parsed = InvitationToken::parse(&token.encode()).expect("parses");
        assert_eq!(parsed.email, "new-user@example.com");
        assert_eq!(parsed.tenant_id, token.tenant_id);
        assert_eq!(parsed.hash(), token.hash());
        assert!(InvitationToken::parse("inv.x.y.z").is_none());
        assert!(InvitationToken::parse("rt.a.b.c").is_none());
    }
}
