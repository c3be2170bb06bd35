//! Authenticated encryption of small secrets at rest, and the key rings it
//! (and the cursor MAC) draws from.
//!
//! A [`KeyRing`] is one purpose's keys (cursor signing, idempotent-response
//! sealing, stored-secret sealing; `shared::keys` loads them from Secrets
//! Manager): the *current* key, which seals and signs everything new; the
//! *previous* ones, kept so that what they sealed still opens after a
//! rotation; and at most one *staged* key, which every process already holds
//! but nobody uses yet. A rotation promotes the staged key, so a warm
//! process that loaded the ring before the rotation can still open what a
//! fresh one seals after it (docs/runbook.md#rotating-secrets).
//!
//! A sealed value is AES-256-GCM under a key derived (HMAC-SHA256) from one
//! ring key, a purpose label and the parts that name what is sealed: a
//! record sealed for one purpose, tenant or key cannot be opened as another.
//! The ciphertext carries the id of the ring key it was sealed under as a
//! prefix (Tink's output-prefix idea), so stored records need no extra
//! attribute and old ones open after a rotation.

use aes_gcm::{
    Aes256Gcm, Key, Nonce,
    aead::{Aead, KeyInit},
};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::error::{AppError, AppResult};

/// The first byte of a sealed value: the envelope's format.
const ENVELOPE_V1: u8 = 1;

/// One key of a ring: its id (written into what it seals or signs) and its bytes.
#[derive(Clone)]
pub struct RingKey {
    pub id: String,
    pub secret: Vec<u8>,
}

/// One purpose's keys; see the module docs.
#[derive(Clone)]
pub struct KeyRing {
    purpose: &'static str,
    /// Oldest first; the index of the current key.
    keys: Vec<RingKey>,
    current: usize,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "KeyRing({}: current {}, ids {ids:?})", self.purpose, self.current_key().id)
    }
}

/// What a value is sealed for: a purpose label and the parts that name it
/// (tenant partition, record id, ...).
pub struct SealContext {
    label: String,
    parts: Vec<String>,
}

impl SealContext {
    pub fn new(label: impl Into<String>, parts: &[&str]) -> Self {
        Self { label: label.into(), parts: parts.iter().map(|p| (*p).to_owned()).collect() }
    }
}

impl KeyRing {
    /// `keys` oldest first; `current` must be one of their ids.
    pub fn new(purpose: &'static str, keys: Vec<RingKey>, current: &str) -> anyhow::Result<Self> {
        let current = keys.iter().position(|k| k.id == current).ok_or_else(|| {
            anyhow::anyhow!("the {purpose} key ring names current key {current}, which it does not hold")
        })?;
        for key in &keys {
            anyhow::ensure!(key.secret.len() >= 32, "the {purpose} key {} is shorter than 32 bytes", key.id);
            anyhow::ensure!(
                !key.id.is_empty()
                    && key.id.len() <= 64
                    && key.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
                "the {purpose} key id {:?} is not 1-64 letters, digits or dashes",
                key.id
            );
        }
        Ok(Self { purpose, keys, current })
    }

    /// A ring of one key (unit tests, tools).
    pub fn single(purpose: &'static str, id: &str, secret: &[u8]) -> Self {
        Self { purpose, keys: vec![RingKey { id: id.to_owned(), secret: secret.to_vec() }], current: 0 }
    }

    pub fn current_key(&self) -> &RingKey {
        &self.keys[self.current]
    }

    pub fn key(&self, id: &str) -> Option<&RingKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Every key a value may have been made with: current first, then the
    /// others newest first (a hash checked by recomputing it, such as an MFA
    /// backup code's, is tried against each).
    pub fn keys_current_first(&self) -> impl Iterator<Item = &RingKey> {
        std::iter::once(self.current_key())
            .chain(self.keys.iter().enumerate().rev().filter(|(i, _)| *i != self.current).map(|(_, k)| k))
    }

    /// Seals `plaintext` under the current key: a fresh random nonce and the
    /// envelope (format byte, key id, ciphertext with its tag).
    pub fn seal(&self, context: &SealContext, plaintext: &[u8]) -> AppResult<([u8; 12], Vec<u8>)> {
        let key = self.current_key();
        let (nonce, ciphertext) = seal(&derive_key(&key.secret, context)?, plaintext)?;
        let mut envelope = Vec::with_capacity(2 + key.id.len() + ciphertext.len());
        envelope.push(ENVELOPE_V1);
        envelope.push(key.id.len() as u8);
        envelope.extend_from_slice(key.id.as_bytes());
        envelope.extend_from_slice(&ciphertext);
        Ok((nonce, envelope))
    }

    /// Opens what [`Self::seal`] made with any key still in the ring.
    pub fn open(&self, context: &SealContext, nonce: &[u8], envelope: &[u8]) -> AppResult<Vec<u8>> {
        let bad = |why: &str| AppError::internal(anyhow::anyhow!("a sealed {} value {why}", self.purpose));
        let [format, id_len, rest @ ..] = envelope else { return Err(bad("is too short")) };
        if *format != ENVELOPE_V1 {
            return Err(bad("has an unknown format"));
        }
        let id_len = *id_len as usize;
        if rest.len() < id_len {
            return Err(bad("is too short"));
        }
        let (id, ciphertext) = rest.split_at(id_len);
        let id = std::str::from_utf8(id).map_err(|_| bad("names a malformed key id"))?;
        let key =
            self.key(id).ok_or_else(|| bad(&format!("was sealed under key {id}, which the ring no longer holds")))?;
        open(&derive_key(&key.secret, context)?, nonce, ciphertext)
    }

    /// The current key's derived key for `context` (a keyed hash).
    pub fn derived_current(&self, context: &SealContext) -> AppResult<[u8; 32]> {
        derive_key(&self.current_key().secret, context)
    }

    /// Every key's derived key for `context`, current first.
    pub fn derived_all(&self, context: &SealContext) -> AppResult<Vec<[u8; 32]>> {
        self.keys_current_first().map(|k| derive_key(&k.secret, context)).collect()
    }
}

/// The key for `context`, from one ring key's bytes.
fn derive_key(secret: &[u8], context: &SealContext) -> AppResult<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).map_err(AppError::internal)?;
    mac.update(context.label.as_bytes());
    mac.update(b"\n");
    for part in &context.parts {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    Ok(mac.finalize().into_bytes().into())
}

/// A fresh random nonce and the ciphertext (with its tag).
fn seal(key: &[u8; 32], plaintext: &[u8]) -> AppResult<([u8; 12], Vec<u8>)> {
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt(&Nonce::from(nonce), plaintext)
        .map_err(|_| AppError::internal(anyhow::anyhow!("sealing failed")))?;
    Ok((nonce, sealed))
}

fn open(key: &[u8; 32], nonce: &[u8], sealed: &[u8]) -> AppResult<Vec<u8>> {
    let nonce: [u8; 12] =
        nonce.try_into().map_err(|_| AppError::internal(anyhow::anyhow!("a sealed value has a bad nonce")))?;
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| AppError::internal(anyhow::anyhow!("a sealed value did not open")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[&str], current: &str) -> KeyRing {
        let keys = ids.iter().map(|id| RingKey { id: (*id).to_owned(), secret: id.repeat(32).into_bytes() }).collect();
        KeyRing::new("sealing", keys, current).expect("ring")
    }

    #[test]
    fn a_sealed_value_opens_only_in_its_own_context() {
        let ring = ring(&["k1"], "k1");
        let context = SealContext::new("purpose-v1", &["T#1#", "U#2", "key-1"]);
        let (nonce, sealed) = ring.seal(&context, b"{\"secret\":\"sk_live_x\"}").expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"sk_live"));
        assert_eq!(ring.open(&context, &nonce, &sealed).expect("open"), b"{\"secret\":\"sk_live_x\"}");
        assert!(ring.open(&SealContext::new("purpose-v1", &["T#1#", "U#2", "key-2"]), &nonce, &sealed).is_err());
        assert!(ring.open(&SealContext::new("other-v1", &["T#1#", "U#2", "key-1"]), &nonce, &sealed).is_err());
    }

    #[test]
    fn what_an_older_key_sealed_opens_after_a_rotation_and_new_values_use_the_new_key() {
        let context = SealContext::new("webhook-signing-secret-v1", &["T#1#", "E#1"]);
        let before = ring(&["k1", "k2"], "k1");
        let (nonce, sealed) = before.seal(&context, b"whsec_1").expect("seal");
        let after = ring(&["k1", "k2", "k3"], "k2");
        assert_eq!(after.open(&context, &nonce, &sealed).expect("old value opens"), b"whsec_1");
        let (nonce2, sealed2) = after.seal(&context, b"whsec_2").expect("seal");
        assert_eq!(&sealed2[2..4], b"k2");
        // A process still on the old ring holds k2 as its staged key.
        assert_eq!(before.open(&context, &nonce2, &sealed2).expect("staged key opens"), b"whsec_2");
        // Once k1 is dropped, what it sealed no longer opens: sealing keys are never dropped.
        let pruned = ring(&["k2", "k3"], "k2");
        assert!(pruned.open(&context, &nonce, &sealed).is_err());
    }

    #[test]
    fn a_ring_refuses_a_current_key_it_does_not_hold_and_short_keys() {
        assert!(KeyRing::new("cursor", vec![RingKey { id: "a".into(), secret: vec![0; 32] }], "b").is_err());
        assert!(KeyRing::new("cursor", vec![RingKey { id: "a".into(), secret: vec![0; 16] }], "a").is_err());
        assert!(KeyRing::new("cursor", vec![RingKey { id: "a b".into(), secret: vec![0; 32] }], "a b").is_err());
    }
}
