//! The platform's keys, kept in AWS Secrets Manager and read once per cold
//! start: one GetSecretValue, or in the functions that issue tokens one
//! BatchGetSecretValue of both secrets.
//!
//! - `PLATFORM_KEYS_SECRET_ID` (every function): a [`PlatformKeysDoc`], one
//!   ring per purpose — `cursor` (signs list cursors), `idempotency` (seals
//!   stored idempotent responses), `sealing` (seals stored secrets: webhook
//!   signing secrets, MFA and SSO secrets, provider credentials, workflow
//!   approval tokens) — and the public halves of the token signing keys.
//! - `SIGNING_KEYS_SECRET_ID` (only the functions that issue tokens): a
//!   [`SigningKeysDoc`], the ES256 private keys.
//!
//! Rotation ([`rotate`], run by `local keys rotate`, docs/runbook.md) is
//! two-phase so that no warm process meets a key it has not loaded: every
//! ring holds one *staged* key next to its current one; a rotation makes
//! the staged key current and stages a new one. Processes that loaded the
//! rings since the previous rotation already hold the key that becomes
//! current, so rotations one day apart or more never break a warm process
//! (Lambda recycles execution environments within hours).

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::sealing::{KeyRing, RingKey};

/// The environment variables naming the two secrets (ARN or name).
pub const PLATFORM_KEYS_ENV: &str = "PLATFORM_KEYS_SECRET_ID";
pub const SIGNING_KEYS_ENV: &str = "SIGNING_KEYS_SECRET_ID";

/// The secret's JSON format version this code writes and reads.
const FORMAT: u32 = 1;

/// How many keys older than the current one a rotation keeps, per purpose:
/// cursors live for a browsing session and idempotency records for 24 h
/// (one previous key covers both at rotations a day or more apart); sealed
/// secrets live as long as their records, so sealing keys are never dropped;
/// access tokens live 15 minutes.
const KEEP_PREVIOUS_CURSOR: usize = 1;
const KEEP_PREVIOUS_IDEMPOTENCY: usize = 1;
const KEEP_PREVIOUS_SIGNING: usize = 1;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SymmetricKeyDoc {
    pub id: String,
    /// 32 random bytes, standard base64.
    pub secret: String,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RingDoc<K> {
    pub current: String,
    /// Oldest first; the keys after `current` are staged.
    pub keys: Vec<K>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PublicKeyDoc {
    pub id: String,
    pub public_pem: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SigningKeyDoc {
    pub id: String,
    pub private_pem: String,
    pub public_pem: String,
    pub created_at: String,
}

/// `PLATFORM_KEYS_SECRET_ID`'s value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PlatformKeysDoc {
    pub format: u32,
    pub cursor: RingDoc<SymmetricKeyDoc>,
    pub idempotency: RingDoc<SymmetricKeyDoc>,
    pub sealing: RingDoc<SymmetricKeyDoc>,
    /// Every signing key's public half (previous, current, staged): what
    /// access tokens are verified with and the JWKS serves.
    pub token_verification: Vec<PublicKeyDoc>,
}

/// `SIGNING_KEYS_SECRET_ID`'s value.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SigningKeysDoc {
    pub format: u32,
    pub signing: RingDoc<SigningKeyDoc>,
}

/// What a process holds after loading.
#[derive(Clone, Debug)]
pub struct PlatformKeys {
    pub cursor: KeyRing,
    pub idempotency: KeyRing,
    pub sealing: KeyRing,
    pub token_public_pems: Vec<String>,
}

/// The current signing key (the functions that issue tokens).
#[derive(Clone)]
pub struct SigningKey {
    pub private_pem: String,
}

impl PlatformKeysDoc {
    pub fn parse(json: &str) -> Result<Self> {
        let doc: Self = serde_json::from_str(json).map_err(|e| {
            anyhow!("the platform keys secret is not a key document ({e}); after a first deploy run `local keys init`")
        })?;
        ensure!(doc.format == FORMAT, "the platform keys secret has format {}, this code reads {FORMAT}", doc.format);
        Ok(doc)
    }

    pub fn keys(&self) -> Result<PlatformKeys> {
        ensure!(!self.token_verification.is_empty(), "the platform keys secret holds no token verification key");
        Ok(PlatformKeys {
            cursor: symmetric_ring("cursor", &self.cursor)?,
            idempotency: symmetric_ring("idempotency", &self.idempotency)?,
            sealing: symmetric_ring("sealing", &self.sealing)?,
            token_public_pems: self.token_verification.iter().map(|k| k.public_pem.clone()).collect(),
        })
    }
}

impl SigningKeysDoc {
    pub fn parse(json: &str) -> Result<Self> {
        let doc: Self = serde_json::from_str(json).map_err(|e| {
            anyhow!("the signing keys secret is not a key document ({e}); after a first deploy run `local keys init`")
        })?;
        ensure!(doc.format == FORMAT, "the signing keys secret has format {}, this code reads {FORMAT}", doc.format);
        Ok(doc)
    }

    pub fn current(&self) -> Result<SigningKey> {
        let key = self.signing.keys.iter().find(|k| k.id == self.signing.current).with_context(|| {
            format!("the signing keys secret names current key {}, which it does not hold", self.signing.current)
        })?;
        Ok(SigningKey { private_pem: key.private_pem.clone() })
    }
}

fn symmetric_ring(purpose: &'static str, doc: &RingDoc<SymmetricKeyDoc>) -> Result<KeyRing> {
    let keys = doc
        .keys
        .iter()
        .map(|k| {
            let secret = STANDARD.decode(&k.secret).with_context(|| format!("{purpose} key {} is not base64", k.id))?;
            Ok(RingKey { id: k.id.clone(), secret })
        })
        .collect::<Result<Vec<_>>>()?;
    KeyRing::new(purpose, keys, &doc.current)
}

/// Reads a secret's current value.
async fn secret_string(client: &aws_sdk_secretsmanager::Client, id: &str) -> Result<String> {
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .with_context(|| format!("reading secret {id} (GetSecretValue)"))?;
    out.secret_string.with_context(|| format!("secret {id} holds no string"))
}

/// The secret id an environment variable names.
fn secret_id(env: &str) -> Result<String> {
    std::env::var(env).with_context(|| format!("{env} is not set"))
}

/// The platform keys named by `PLATFORM_KEYS_SECRET_ID` (cold start).
pub async fn load_platform(client: &aws_sdk_secretsmanager::Client) -> Result<PlatformKeys> {
    PlatformKeysDoc::parse(&secret_string(client, &secret_id(PLATFORM_KEYS_ENV)?).await?)?.keys()
}

/// The platform keys and the current signing key in one
/// `BatchGetSecretValue` (cold start of the functions that issue tokens):
/// one round trip and one signed request where two reads made two. Each
/// secret is still authorised by its own `GetSecretValue` grant.
pub async fn load_platform_and_signing(client: &aws_sdk_secretsmanager::Client) -> Result<(PlatformKeys, SigningKey)> {
    let (platform_id, signing_id) = (secret_id(PLATFORM_KEYS_ENV)?, secret_id(SIGNING_KEYS_ENV)?);
    let out = client
        .batch_get_secret_value()
        .secret_id_list(&platform_id)
        .secret_id_list(&signing_id)
        .send()
        .await
        .with_context(|| format!("reading secrets {platform_id} and {signing_id} (BatchGetSecretValue)"))?;
    if let Some(error) = out.errors().first() {
        bail!(
            "reading secret {} (BatchGetSecretValue): {} {}",
            error.secret_id().unwrap_or("?"),
            error.error_code().unwrap_or("?"),
            error.message().unwrap_or("")
        );
    }
    // Asked by ARN (the template's `!Ref`) or by name (a local stack).
    let value = |id: &str| {
        out.secret_values()
            .iter()
            .find(|v| v.arn() == Some(id) || v.name() == Some(id))
            .and_then(|v| v.secret_string())
            .with_context(|| format!("secret {id} holds no string (BatchGetSecretValue)"))
    };
    let platform = PlatformKeysDoc::parse(value(&platform_id)?)?.keys()?;
    let signing = SigningKeysDoc::parse(value(&signing_id)?)?.current()?;
    Ok((platform, signing))
}

// ------------------------------------------------------------ making keys --

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A fresh id: the creation date and random hex (`20261202-5f3a9c`), so an
/// operator reading a ring sees which key is older.
fn new_id() -> String {
    let mut random = [0u8; 3];
    rand::thread_rng().fill_bytes(&mut random);
    format!("{}-{}", chrono::Utc::now().format("%Y%m%d"), random.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn new_symmetric_key() -> SymmetricKeyDoc {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    SymmetricKeyDoc { id: new_id(), secret: STANDARD.encode(secret), created_at: now() }
}

/// A fresh P-256 key pair; its id is the key id the token header carries
/// (the JWK thumbprint prefix `TokenVerifier` computes).
pub fn new_signing_key() -> Result<SigningKeyDoc> {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let private_pem =
        secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| anyhow!("encoding a P-256 key: {e}"))?.to_string();
    let public_pem =
        secret.public_key().to_public_key_pem(LineEnding::LF).map_err(|e| anyhow!("encoding a P-256 key: {e}"))?;
    let id = crate::auth::jwt::public_key_id(&public_pem)?;
    Ok(SigningKeyDoc { id, private_pem, public_pem, created_at: now() })
}

fn fresh_ring<K>(make: impl Fn() -> Result<K>, id: impl Fn(&K) -> String) -> Result<RingDoc<K>> {
    let current = make()?;
    let staged = make()?;
    Ok(RingDoc { current: id(&current), keys: vec![current, staged] })
}

/// First keys of a new stage: every ring with a current and a staged key.
pub fn initial_documents() -> Result<(PlatformKeysDoc, SigningKeysDoc)> {
    let symmetric = || fresh_ring(|| Ok(new_symmetric_key()), |k: &SymmetricKeyDoc| k.id.clone());
    let signing = SigningKeysDoc { format: FORMAT, signing: fresh_ring(new_signing_key, |k| k.id.clone())? };
    let platform = PlatformKeysDoc {
        format: FORMAT,
        cursor: symmetric()?,
        idempotency: symmetric()?,
        sealing: symmetric()?,
        token_verification: public_halves(&signing.signing),
    };
    Ok((platform, signing))
}

fn public_halves(ring: &RingDoc<SigningKeyDoc>) -> Vec<PublicKeyDoc> {
    ring.keys.iter().map(|k| PublicKeyDoc { id: k.id.clone(), public_pem: k.public_pem.clone() }).collect()
}

/// Promotes the staged key of `ring`, stages `fresh`, and drops keys more
/// than `keep_previous` older than the new current one (`None`: keep all).
fn rotate_ring<K>(
    ring: &RingDoc<K>,
    fresh: K,
    id: impl Fn(&K) -> &str,
    keep_previous: Option<usize>,
) -> Result<RingDoc<K>>
where
    K: Clone,
{
    let current = ring.keys.iter().position(|k| id(k) == ring.current).context("the ring's current key is missing")?;
    let Some(staged) = ring.keys.get(current + 1) else {
        bail!("the ring has no staged key to promote (its current key {} is the newest)", ring.current)
    };
    let new_current = current + 1;
    let first_kept = keep_previous.map_or(0, |keep| new_current.saturating_sub(keep));
    let mut keys: Vec<K> = ring.keys[first_kept..].to_vec();
    keys.push(fresh);
    Ok(RingDoc { current: id(staged).to_owned(), keys })
}

/// Which rings a rotation turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rings {
    All,
    Cursor,
    Idempotency,
    Sealing,
    Signing,
}

impl std::str::FromStr for Rings {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "all" => Self::All,
            "cursor" => Self::Cursor,
            "idempotency" => Self::Idempotency,
            "sealing" => Self::Sealing,
            "signing" => Self::Signing,
            other => bail!("unknown ring {other:?}: all, cursor, idempotency, sealing or signing"),
        })
    }
}

/// The documents after rotating `rings`. The platform document always
/// lists every signing key's public half, so verifiers learn a staged
/// signing key one rotation before it signs anything.
pub fn rotate(
    platform: &PlatformKeysDoc,
    signing: &SigningKeysDoc,
    rings: Rings,
) -> Result<(PlatformKeysDoc, SigningKeysDoc)> {
    let turns = |ring: Rings| rings == Rings::All || rings == ring;
    let symmetric = |doc: &RingDoc<SymmetricKeyDoc>, ring: Rings, keep: Option<usize>| -> Result<_> {
        if turns(ring) { rotate_ring(doc, new_symmetric_key(), |k| &k.id, keep) } else { Ok(doc.clone()) }
    };
    let signing_ring = if turns(Rings::Signing) {
        rotate_ring(&signing.signing, new_signing_key()?, |k| &k.id, Some(KEEP_PREVIOUS_SIGNING))?
    } else {
        signing.signing.clone()
    };
    let platform = PlatformKeysDoc {
        format: FORMAT,
        cursor: symmetric(&platform.cursor, Rings::Cursor, Some(KEEP_PREVIOUS_CURSOR))?,
        idempotency: symmetric(&platform.idempotency, Rings::Idempotency, Some(KEEP_PREVIOUS_IDEMPOTENCY))?,
        sealing: symmetric(&platform.sealing, Rings::Sealing, None)?,
        token_verification: public_halves(&signing_ring),
    };
    Ok((platform, SigningKeysDoc { format: FORMAT, signing: signing_ring }))
}

/// Reads both documents (`local keys`).
pub async fn read_documents(
    client: &aws_sdk_secretsmanager::Client,
    platform_id: &str,
    signing_id: &str,
) -> Result<(PlatformKeysDoc, SigningKeysDoc)> {
    Ok((
        PlatformKeysDoc::parse(&secret_string(client, platform_id).await?)?,
        SigningKeysDoc::parse(&secret_string(client, signing_id).await?)?,
    ))
}

/// Writes both documents as new secret versions: the platform document
/// first, so verifiers can learn a signing key before the signer may use it.
pub async fn write_documents(
    client: &aws_sdk_secretsmanager::Client,
    platform_id: &str,
    signing_id: &str,
    platform: &PlatformKeysDoc,
    signing: &SigningKeysDoc,
) -> Result<()> {
    for (id, value) in [(platform_id, serde_json::to_string(platform)?), (signing_id, serde_json::to_string(signing)?)]
    {
        client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value)
            .send()
            .await
            .with_context(|| format!("writing secret {id} (PutSecretValue)"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids<K>(ring: &RingDoc<K>, id: impl Fn(&K) -> &str) -> Vec<String> {
        ring.keys.iter().map(|k| id(k).to_owned()).collect()
    }

    #[test]
    fn a_rotation_promotes_the_staged_key_stages_a_new_one_and_keeps_what_each_purpose_needs() {
        let (platform, signing) = initial_documents().expect("initial");
        assert_eq!(platform.cursor.keys.len(), 2);
        assert_eq!(platform.cursor.current, platform.cursor.keys[0].id);
        let staged_cursor = platform.cursor.keys[1].id.clone();
        let staged_signing = signing.signing.keys[1].id.clone();
        assert!(platform.token_verification.iter().any(|k| k.id == staged_signing), "verifiers know the staged key");

        let (once, signing_once) = rotate(&platform, &signing, Rings::All).expect("rotate");
        assert_eq!(once.cursor.current, staged_cursor);
        assert_eq!(signing_once.signing.current, staged_signing);
        assert_eq!(once.cursor.keys.len(), 3, "previous, current, staged");

        let (twice, signing_twice) = rotate(&once, &signing_once, Rings::All).expect("rotate");
        assert_eq!(ids(&twice.cursor, |k| &k.id)[0], staged_cursor, "one previous cursor key is kept");
        assert_eq!(twice.cursor.keys.len(), 3);
        assert_eq!(twice.sealing.keys.len(), 4, "sealing keys are never dropped");
        assert_eq!(signing_twice.signing.keys.len(), 3);
        let published: Vec<&str> = twice.token_verification.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(published, ids(&signing_twice.signing, |k| &k.id), "the JWKS follows the signing ring");
        twice.keys().expect("loadable");
        signing_twice.current().expect("current signing key");
    }

    #[test]
    fn rotating_one_ring_leaves_the_others() {
        let (platform, signing) = initial_documents().expect("initial");
        let (after, signing_after) = rotate(&platform, &signing, Rings::Sealing).expect("rotate");
        assert_eq!(after.cursor, platform.cursor);
        assert_eq!(signing_after, signing);
        assert_ne!(after.sealing.current, platform.sealing.current);
    }

    #[test]
    fn a_signing_key_made_here_signs_tokens_its_published_half_verifies() {
        let (platform, signing) = initial_documents().expect("initial");
        let keys = platform.keys().expect("keys");
        let pems: Vec<&str> = keys.token_public_pems.iter().map(String::as_str).collect();
        let verifier = crate::auth::jwt::TokenVerifier::from_public_pems(&pems, "iss", "aud").expect("verifier");
        let signer =
            crate::auth::jwt::TokenSigner::from_private_pem(&signing.current().expect("key").private_pem, "iss", "aud")
                .expect("signer");
        signer.check_published(&verifier).expect("pairs up");
        let token = signer
            .issue(&crate::auth::jwt::AccessGrant {
                user_id: uuid::Uuid::nil(),
                email: None,
                tenant_id: uuid::Uuid::nil(),
                role: crate::auth::principal::Role::User,
                platform_admin: false,
                session_id: uuid::Uuid::nil(),
            })
            .expect("issued");
        verifier.verify(&token.token).expect("verified by the published half");
        assert_eq!(verifier.jwks().keys.len(), 2, "current and staged");
    }

    #[test]
    fn a_placeholder_secret_is_refused_with_the_way_out() {
        let err = PlatformKeysDoc::parse(r#"{"placeholder":"x"}"#).expect_err("refused");
        assert!(err.to_string().contains("local keys init"), "{err}");
    }
}
