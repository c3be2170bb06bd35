//! Authenticated encryption of small secrets at rest: AES-256-GCM under a key
//! derived (HMAC-SHA256) from the platform secret, a purpose label and the
//! parts that name what is sealed. A record sealed for one purpose, tenant or
//! key cannot be opened as another. Used for idempotent responses (which may
//! show a one-time secret) and webhook signing secrets (which must be used,
//! so they cannot be hashed).

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit},
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{AppError, AppResult};

/// The key for `label` and `parts`, from the platform secret.
pub fn derive_key(secret: &str, label: &str, parts: &[&str]) -> AppResult<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)?;
    mac.update(label.as_bytes());
    mac.update(b"\n");
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    Ok(mac.finalize().into_bytes().into())
}

/// A fresh random nonce and the ciphertext (with its tag).
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> AppResult<([u8; 12], Vec<u8>)> {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt(&Nonce::from(nonce), plaintext)
        .map_err(|_| AppError::internal(anyhow::anyhow!("sealing failed")))?;
    Ok((nonce, sealed))
}

pub fn open(key: &[u8; 32], nonce: &[u8], sealed: &[u8]) -> AppResult<Vec<u8>> {
    let nonce: [u8; 12] =
        nonce.try_into().map_err(|_| AppError::internal(anyhow::anyhow!("a sealed value has a bad nonce")))?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| AppError::internal(anyhow::anyhow!("a sealed value did not open")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_own_key() {
        let secret = "s".repeat(32);
        let key = derive_key(&secret, "purpose-v1", &["T#1#", "U#2", "key-1"]).expect("key");
        let other = derive_key(&secret, "purpose-v1", &["T#1#", "U#2", "key-2"]).expect("key");
        let elsewhere = derive_key(&secret, "other-v1", &["T#1#", "U#2", "key-1"]).expect("key");
        let (nonce, sealed) = seal(&key, b"{\"secret\":\"sk_live_x\"}").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"sk_live"));
        assert_eq!(open(&key, &nonce, &sealed).expect("open"), b"{\"secret\":\"sk_live_x\"}");
        assert!(open(&other, &nonce, &sealed).is_err());
        assert!(open(&elsewhere, &nonce, &sealed).is_err());
    }
}
