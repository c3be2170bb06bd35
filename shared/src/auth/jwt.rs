//! ES256 access tokens. The public half is published as a JWKS so API Gateway's
//! JWT authorizer and other services can verify tokens without calling us.
//! Verification pins the algorithm and key id and requires iss, aud, exp, nbf,
//! iat and sub: jsonwebtoken only checks iss/aud when present unless told to.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use anyhow::{Context, Result, anyhow};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::principal::Role;
use crate::error::AppError;

/// RFC 9068 media type: lets us refuse an ID token or any other JWT that happens
/// to be signed by the same key.
const ACCESS_TOKEN_TYP: &str = "at+jwt";
const LEEWAY_SECONDS: u64 = 5;
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 15 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// User id.
    pub sub: Uuid,
    /// The user's tenant.
    pub tid: Uuid,
    pub role: Role,
    /// Platform administrator (seeds' SYSTEM_OWNER / SUPER_ADMIN).
    #[serde(default)]
    pub padm: bool,
    /// Refresh-token family this token was issued under; logout revokes it.
    pub sid: Uuid,
    /// For audit entries and logs of who acted (OIDC's `email` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Verifies access tokens against every published key (more than one during a
/// key rotation).
pub use jsonwebtoken::jwk::JwkSet as KeySet;

pub struct TokenVerifier {
    keys: HashMap<String, DecodingKey>,
    jwks: JwkSet,
    validation: Validation,
    /// Tokens this process has verified, by the SHA-256 of their exact bytes
    /// (signature included), so a caller's next request with the same token
    /// skips the ES256 check: about 0.1 ms of CPU, a tenth of a warm request's
    /// own time at Lambda's fractional vCPU (docs/performance.md). Expiry is
    /// still checked on every hit; revocation never lived here (the session
    /// check reads the store).
    verified: Mutex<HashMap<[u8; 32], AccessClaims>>,
}

/// A warm Lambda sees a few callers; past this many distinct tokens the cache
/// starts again rather than grow (tokens live 15 minutes).
const VERIFIED_CACHE_CAPACITY: usize = 4096;

impl TokenVerifier {
    pub fn from_public_pems(pems: &[&str], issuer: &str, audience: &str) -> Result<Self> {
        let mut keys = HashMap::new();
        let mut published = Vec::new();
        for pem in pems {
            let key = DecodingKey::from_ec_pem(pem.as_bytes()).context("JWT public key is not a P-256 PEM")?;
            let mut jwk = Jwk::from_decoding_key(&key, Some(Algorithm::ES256))?;
            let kid = key_id(&jwk)?;
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            jwk.common.key_algorithm = Some(KeyAlgorithm::ES256);
            published.push(jwk);
            keys.insert(kid, key);
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        Ok(Self { keys, jwks: JwkSet { keys: published }, validation, verified: Mutex::default() })
    }

    /// The RFC 7517 key set (`{"keys": [...]}`) API Gateway and other
    /// verifiers fetch.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, AppError> {
        let fingerprint: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        {
            let mut verified = self.verified();
            if let Some(claims) = verified.get(&fingerprint) {
                if claims.exp + LEEWAY_SECONDS as i64 > chrono::Utc::now().timestamp() {
                    return Ok(claims.clone());
                }
                verified.remove(&fingerprint);
                return Err(AppError::token_expired());
            }
        }
        // Not under the lock: the signature check is the slow part.
        let claims = self.verify_signature_and_claims(token)?;
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CACHE_CAPACITY {
            verified.clear();
        }
        verified.insert(fingerprint, claims.clone());
        Ok(claims)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], AccessClaims>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn verify_signature_and_claims(&self, token: &str) -> Result<AccessClaims, AppError> {
        let header = decode_header(token).map_err(|_| AppError::invalid_token("the token is malformed"))?;
        if header.alg != Algorithm::ES256 {
            return Err(AppError::invalid_token("the token's algorithm is not accepted"));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(AppError::invalid_token("the token is not an access token"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or_else(|| AppError::invalid_token("the token was not signed by a known key"))?;
        let data = decode::<AccessClaims>(token, key, &self.validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AppError::token_expired(),
            _ => AppError::invalid_token("the token is invalid"),
        })?;
        let claims = data.claims;
        // jsonwebtoken does not look at iat; a token from the future is forged
        // or minted by a skewed clock, and either way not to be trusted.
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECONDS as i64 {
            return Err(AppError::invalid_token("the token is invalid"));
        }
        Ok(claims)
    }
}

/// Signs access tokens; only the auth function holds the private key.
pub struct TokenSigner {
    kid: String,
    key: EncodingKey,
    issuer: String,
    audience: String,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub claims: AccessClaims,
}

pub struct AccessGrant {
    pub user_id: Uuid,
    pub email: Option<String>,
    pub tenant_id: Uuid,
    pub role: Role,
    pub platform_admin: bool,
    pub session_id: Uuid,
}

impl TokenSigner {
    pub fn from_private_pem(pem: &str, issuer: &str, audience: &str) -> Result<Self> {
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).context("JWT private key is not a P-256 PKCS#8 PEM")?;
        let kid = key_id(&Jwk::from_encoding_key(&key, Algorithm::ES256)?)?;
        Ok(Self { kid, key, issuer: issuer.to_owned(), audience: audience.to_owned() })
    }

    pub fn issue(&self, grant: &AccessGrant) -> Result<IssuedToken> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: grant.user_id,
            tid: grant.tenant_id,
            role: grant.role,
            padm: grant.platform_admin,
            sid: grant.session_id,
            email: grant.email.clone(),
            iat: now,
            nbf: now,
            exp: now + ACCESS_TOKEN_TTL_SECONDS,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        let token = encode(&header, &claims, &self.key)?;
        Ok(IssuedToken { token, expires_in: ACCESS_TOKEN_TTL_SECONDS, claims })
    }

    /// Start-up check that the current signing key is among the published
    /// verification keys, so a misconfiguration fails the cold start, not a
    /// login. Both key ids are RFC 7638 thumbprints of the public key (the
    /// signer's derived from its private half when it was parsed), so equal
    /// ids are the same key pair; signing and verifying a probe token to
    /// learn the same thing cost auth's cold start about 0.9 ms
    /// (docs/performance.md, "Levers").
    pub fn check_published(&self, verifier: &TokenVerifier) -> Result<()> {
        if verifier.keys.contains_key(&self.kid) {
            Ok(())
        } else {
            Err(anyhow!("the current signing key ({}) is not among the published verification keys", self.kid))
        }
    }
}

/// The key id tokens signed by the key with this public half carry.
pub fn public_key_id(public_pem: &str) -> Result<String> {
    let key = DecodingKey::from_ec_pem(public_pem.as_bytes()).context("JWT public key is not a P-256 PEM")?;
    key_id(&Jwk::from_decoding_key(&key, Some(Algorithm::ES256))?)
}

/// A stable key id: the first 16 hex digits of SHA-256 over the public point.
fn key_id(jwk: &Jwk) -> Result<String> {
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => {
            let digest = Sha256::digest(format!("{}.{}", ec.x, ec.y));
            Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
        }
        _ => Err(anyhow!("expected an EC key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TokenSigner, TokenVerifier) {
        let key = crate::keys::new_signing_key().expect("key");
        let verifier = TokenVerifier::from_public_pems(&[&key.public_pem], "iss", "aud").expect("verifier");
        let signer = TokenSigner::from_private_pem(&key.private_pem, "iss", "aud").expect("signer");
        (signer, verifier)
    }

    fn grant() -> AccessGrant {
        AccessGrant {
            user_id: Uuid::new_v4(),
            email: None,
            tenant_id: Uuid::new_v4(),
            role: Role::User,
            platform_admin: false,
            session_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_signing_key_whose_public_half_is_not_published_fails_the_start_up_check() {
        let (signer, verifier) = pair();
        signer.check_published(&verifier).expect("pairs up");
        let other = crate::keys::new_signing_key().expect("key");
        let stranger = TokenVerifier::from_public_pems(&[&other.public_pem], "iss", "aud").expect("verifier");
        let err = signer.check_published(&stranger).expect_err("not published");
        assert!(err.to_string().contains(&signer.kid), "{err}");
    }

    fn code(err: AppError) -> &'static str {
        match err {
            AppError::Api { code, .. } => code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_cached_token_answers_its_claims_and_a_tampered_copy_is_still_checked() {
        let (signer, verifier) = pair();
        let issued = signer.issue(&grant()).expect("token");
        let first = verifier.verify(&issued.token).expect("valid");
        let second = verifier.verify(&issued.token).expect("valid from the cache");
        assert_eq!(first, second);
        assert_eq!(second, issued.claims);

        // Same header and claims, another signature: a different fingerprint,
        // so the full check runs and refuses it.
        let (body, signature) = issued.token.rsplit_once('.').expect("three parts");
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{body}.{flipped}{}", &signature[1..]);
        assert_eq!(code(verifier.verify(&tampered).expect_err("forged")), "invalid_token");
    }

    #[test]
    fn a_cached_token_past_its_expiry_is_refused_as_expired() {
        let (signer, verifier) = pair();
        let issued = signer.issue(&grant()).expect("token");
        verifier.verify(&issued.token).expect("valid");
        let fingerprint: [u8; 32] = Sha256::digest(issued.token.as_bytes()).into();
        let mut expired = issued.claims.clone();
        expired.exp = chrono::Utc::now().timestamp() - 60;
        verifier.verified.lock().expect("lock").insert(fingerprint, expired);
        assert_eq!(code(verifier.verify(&issued.token).expect_err("expired")), "token_expired");
        assert!(verifier.verified.lock().expect("lock").is_empty(), "an expired entry leaves the cache");
    }
}
