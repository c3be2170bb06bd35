//! SSO connections (OIDC and, later, SAML): what a valid connection is, and how IdP claims become a member and a role (no I/O).
//!
//! - [`Connection`]: a tenant's connection to one identity provider, as
//!   stored and shown; its secrets ([`Secrets`]) are sealed apart and never
//!   part of it.
//! - [`Connection::issuer`]: the issuer a provider type implies (Google,
//!   Okta, Azure AD) unless `configuration.issuer` names one.
//! - [`verify_id_token`]: an ID token's signature against the IdP's keys,
//!   then `iss`, `aud`/`azp`, `exp`/`iat`, `nonce` and Google's `hd`.
//! - [`map_role`]: the role the verified claims give (never `owner`).

use std::collections::BTreeMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{domain::role::Role, error::FieldError};

/// How long an initiated sign-in may take (the state's lifetime), seconds.
pub const STATE_TTL_SECONDS: i64 = 600;
/// Clock skew allowed on `exp` and `iat`, seconds.
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;
/// The scopes asked for when a connection names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// The resource name in errors and audit entries.
pub const CONNECTION_RESOURCE: &str = "sso_connection";

crate::string_enum!(
    /// Which kind of identity provider a connection talks to.
    ProviderType {
        Google => "google",
        Okta => "okta",
        Azure => "azure",
        Oidc => "oidc",
        Saml => "saml",
    }
);

crate::string_enum!(
    /// `inactive` connections keep their settings but sign nobody in.
    ConnectionStatus {
        Active => "active",
        Inactive => "inactive",
    }
);

/// Which claim of the IdP carries each of our fields (seed 000's
/// `attribute_mapping`); a field left out uses the standard claim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttributeMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<String>,
}

/// A connection's settings that are not secret (`configuration` in the
/// API). Which fields a provider type needs: [`Connection::problems`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Configuration {
    /// The client id registered at the IdP (OIDC types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The IdP's issuer; derived from the provider type when left out
    /// (required for `oidc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Okta: the org's host name (`enterprise.okta.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub okta_domain: Option<String>,
    /// Okta: a custom authorization server's id (`default`, `aus...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_server_id: Option<String>,
    /// Azure AD: the directory (tenant) id or domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_tenant_id: Option<String>,
    /// Google Workspace: the `hd` an ID token must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_domain: Option<String>,
    /// The organisation's email domains: an existing member with a verified
    /// address in one of them may be linked on first sign-in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// When set, `initiate` accepts only these `redirect_uri`s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub attribute_mapping: AttributeMapping,
    /// IdP group -> role (`admin`, `developer` or `user`).
    #[serde(default)]
    pub group_mapping: BTreeMap<String, String>,
    /// SAML: the IdP's entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// SAML: the IdP's sign-in URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_url: Option<String>,
}

/// A tenant's SSO connection, as stored and as the API shows it (its
/// secrets are not part of it: [`Secrets`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    #[schema(value_type = String)]
    pub provider_type: ProviderType,
    pub provider_name: String,
    #[schema(value_type = String)]
    pub status: ConnectionStatus,
    pub configuration: Configuration,
    /// Creates the member on their first sign-in.
    pub auto_provision_users: bool,
    /// The role when neither a group nor an admin domain gives one.
    pub default_role: String,
    /// Emails in these domains sign in as `admin`.
    #[serde(default)]
    pub admin_domains: Vec<String>,
    #[serde(default)]
    pub require_encrypted_assertions: bool,
    /// A client secret is stored (it is never shown).
    pub client_secret_set: bool,
    /// An IdP certificate is stored (SAML; never shown).
    pub certificate_set: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// What a connection keeps sealed at rest (`crate::sealing`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Secrets {
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub x509_certificate: Option<String>,
}

/// A connection as the API shows it: the stored fields and the issuer in
/// effect.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    #[serde(flatten)]
    pub connection: Connection,
    /// The issuer sign-ins are verified against (`null` for SAML).
    pub issuer: Option<String>,
}

impl Connection {
    pub fn view(&self) -> ConnectionView {
        ConnectionView { connection: self.clone(), issuer: self.issuer() }
    }

    pub fn is_active(&self) -> bool {
        self.status == ConnectionStatus::Active
    }

    /// The issuer in effect: `configuration.issuer`, or what the type implies.
    pub fn issuer(&self) -> Option<String> {
        let c = &self.configuration;
        if let Some(issuer) = &c.issuer {
            return Some(issuer.clone());
        }
        match self.provider_type {
            ProviderType::Google => Some("https://accounts.google.com".to_owned()),
            ProviderType::Okta => c.okta_domain.as_ref().map(|domain| match &c.authorization_server_id {
                Some(server) => format!("https://{domain}/oauth2/{server}"),
                None => format!("https://{domain}"),
            }),
            ProviderType::Azure => {
                c.azure_tenant_id.as_ref().map(|t| format!("https://login.microsoftonline.com/{t}/v2.0"))
            }
            ProviderType::Oidc | ProviderType::Saml => None,
        }
    }

    /// The scopes asked for: the configured ones, or [`DEFAULT_SCOPES`].
    pub fn scopes(&self) -> Vec<String> {
        if self.configuration.scopes.is_empty() {
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        } else {
            self.configuration.scopes.clone()
        }
    }

    /// What the type needs and the connection lacks, each by field; an
    /// issuer must be https outside local mode.
    pub fn problems(&self, secrets: &Secrets, local_mode: bool) -> Vec<FieldError> {
        let c = &self.configuration;
        let mut errors = Vec::new();
        let mut require = |present: bool, field: &str, what: &str| {
            if !present {
                errors.push(FieldError::new(
                    format!("configuration.{field}"),
                    format!("is required for provider_type {} ({what})", self.provider_type),
                ));
            }
        };
        match self.provider_type {
            ProviderType::Saml => {
                require(c.entity_id.is_some(), "entity_id", "the IdP's entity id");
                require(c.sso_url.is_some(), "sso_url", "the IdP's sign-in URL");
                require(secrets.x509_certificate.is_some(), "x509_certificate", "the IdP's signing certificate");
            }
            kind => {
                require(c.client_id.is_some(), "client_id", "the client registered at the IdP");
                require(secrets.client_secret.is_some(), "client_secret", "the client's secret");
                match kind {
                    ProviderType::Okta => {
                        require(c.okta_domain.is_some() || c.issuer.is_some(), "okta_domain", "or an issuer")
                    }
                    ProviderType::Azure => {
                        require(c.azure_tenant_id.is_some() || c.issuer.is_some(), "azure_tenant_id", "or an issuer")
                    }
                    ProviderType::Oidc => require(c.issuer.is_some(), "issuer", "its discovery document's issuer"),
                    _ => {}
                }
                if !self.scopes().iter().any(|s| s == "openid") {
                    errors.push(FieldError::new("configuration.scopes", "must include openid"));
                }
            }
        }
        if let Some(issuer) = &c.issuer
            && !(issuer.starts_with("https://") || local_mode)
        {
            errors.push(FieldError::new("configuration.issuer", "must be an https URL"));
        }
        for (group, role) in &c.group_mapping {
            if !matches!(Role::parse(role), Some(Role::Admin | Role::Developer | Role::User)) {
                errors.push(FieldError::new(
                    format!("configuration.group_mapping.{group}"),
                    "must be admin, developer or user (a mapping never grants owner)",
                ));
            }
        }
        if !matches!(Role::parse(&self.default_role), Some(Role::Admin | Role::Developer | Role::User)) {
            errors.push(FieldError::new("default_role", "must be admin, developer or user (never owner)"));
        }
        errors
    }
}

/// An initiated sign-in, stored until its callback (at most
/// [`STATE_TTL_SECONDS`]); its PKCE verifier is sealed beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignInState {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub redirect_uri: String,
    pub nonce: String,
    /// A test of the connection: the callback shows the claims and signs nobody in.
    #[serde(default)]
    pub test: bool,
    /// Seconds since the epoch (also the item's TTL).
    pub expires_at: i64,
    /// SAML: the claims of the assertion the ACS verified for this state
    /// (the callback signs them in once it shows the ACS's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml_claims: Option<VerifiedClaims>,
}

/// A SAML sign-in's `RelayState`: the state it belongs to and a secret
/// only the ACS sees again (the IdP carries it back with the response).
/// SAML bindings 3.4.3 caps RelayState at 80 bytes, which is why it is not
/// the `sso.` state the app holds: 32 hex + `.` + 22 = 55 bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct SamlRelay {
    pub state_id: Uuid,
    pub secret: String,
}

impl SamlRelay {
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, secret) = raw.split_once('.')?;
        if id.len() != 32 || secret.is_empty() || secret.len() > 64 || secret.contains('.') {
            return None;
        }
        Some(Self { state_id: Uuid::try_parse(id).ok()?, secret: secret.to_owned() })
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.state_id.simple(), self.secret)
    }

    /// What is stored: the SHA-256 of the secret, hex.
    pub fn hash(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(self.secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The URLs of our SAML service provider for one connection: the IdP is
/// configured with them (from the metadata), and the ACS checks the
/// response's Destination, Recipient and Audience against them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlSpUrls {
    /// The SP's entity id: its metadata URL (a URL the IdP admin can open).
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

pub fn saml_sp_urls(public_api_url: &str, tenant_id: Uuid, connection_id: Uuid) -> SamlSpUrls {
    let base = format!("{}/v1/auth/saml/{tenant_id}/{connection_id}", public_api_url.trim_end_matches('/'));
    let metadata_url = format!("{base}/metadata");
    SamlSpUrls { entity_id: metadata_url.clone(), acs_url: format!("{base}/acs"), metadata_url }
}

/// A link between an IdP identity (connection, issuer, subject) and a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub connection_id: Uuid,
    pub issuer: String,
    pub subject: String,
    pub user_id: Uuid,
    pub created_at: String,
}

/// The claims of a verified ID token (or SAML assertion) that we use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifiedClaims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub groups: Vec<String>,
    /// Google's hosted domain.
    pub hd: Option<String>,
}

/// What an ID token must match.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// Google: the `hd` the token must carry.
    pub hosted_domain: Option<&'a str>,
    pub attribute_mapping: &'a AttributeMapping,
    /// Seconds since the epoch.
    pub now: i64,
}

/// Why an ID token was refused: the `details.reason` of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    Malformed,
    AlgorithmNotAllowed,
    UnknownKey,
    BadSignature,
    WrongIssuer,
    WrongAudience,
    WrongAuthorizedParty,
    Expired,
    IssuedInTheFuture,
    NonceMismatch,
    HostedDomainMismatch,
}

impl TokenRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::Malformed => "malformed",
            TokenRefusal::AlgorithmNotAllowed => "algorithm_not_allowed",
            TokenRefusal::UnknownKey => "unknown_key",
            TokenRefusal::BadSignature => "bad_signature",
            TokenRefusal::WrongIssuer => "wrong_issuer",
            TokenRefusal::WrongAudience => "wrong_audience",
            TokenRefusal::WrongAuthorizedParty => "wrong_authorized_party",
            TokenRefusal::Expired => "expired",
            TokenRefusal::IssuedInTheFuture => "issued_in_the_future",
            TokenRefusal::NonceMismatch => "nonce_mismatch",
            TokenRefusal::HostedDomainMismatch => "hosted_domain_mismatch",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            TokenRefusal::Malformed => "the ID token is malformed",
            TokenRefusal::AlgorithmNotAllowed => "the ID token is signed with an algorithm we do not accept",
            TokenRefusal::UnknownKey => "the ID token is signed with a key the IdP does not publish",
            TokenRefusal::BadSignature => "the ID token's signature does not verify",
            TokenRefusal::WrongIssuer => "the ID token was issued by another issuer than the connection's",
            TokenRefusal::WrongAudience => "the ID token was issued for another client than the connection's",
            TokenRefusal::WrongAuthorizedParty => "the ID token's authorized party is not the connection's client",
            TokenRefusal::Expired => "the ID token has expired",
            TokenRefusal::IssuedInTheFuture => "the ID token's issue time is in the future",
            TokenRefusal::NonceMismatch => "the ID token's nonce is not the one this sign-in sent",
            TokenRefusal::HostedDomainMismatch => "the Google account is not in the connection's hosted domain",
        }
    }
}

/// Asymmetric signatures only: a symmetric key (`HS*`) would be the
/// client secret, which we hold, and `none` proves nothing.
const ALLOWED_ALGORITMS: [Algorithm; 6] =
    [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256, Algorithm::ES256, Algorithm::ES384];

/// Equal strings, compared in constant time.
fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The key id a token names, to see whether the key set must be fetched again.
pub fn token_key_id(token: &str) -> Result<Option<String>, TokenRefusal> {
    decode_header(token).map(|h| h.kid).map_err(|_| TokenRefusal::Malformed)
}

/// An IdP's key set from its JSON: keys of a type we cannot read are left
/// out, not fatal (RFC 7517 5).
pub fn parse_key_set(body: &Value) -> JwkSet {
    let keys = body
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(|k| serde_json::from_value(k.clone()).ok()).collect())
        .unwrap_or_default();
    JwkSet { keys }
}

/// Verifies `token` with `keys` (the IdP's JWKS) against `expected`.
pub fn verify_id_token(token: &str, keys: &JwkSet, expected: &Expected<'_>) -> Result<VerifiedClaims, TokenRefusal> {
    let header = decode_header(token).map_err(|_| TokenRefusal::Malformed)?;
    if !ALLOWED_ALGORITMS.contains(&header.alg) {
        return Err(TokenRefusal::AlgorithmNotAllowed);
    }
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        // Without a kid, only a set of one key is unambiguous.
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(TokenRefusal::UnknownKey)?;
    if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)) {
        return Err(TokenRefusal::AlgorithmNotAllowed);
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| TokenRefusal::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    validation.leeway = CLOCK_LEEWAY_SECONDS;
    validation.validate_exp = true;
    // The key set is fetched by us; exp is checked against our clock below
    // too, so a test clock (`expected.now`) decides.
    let data = decode::<Value>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenRefusal::BadSignature,
            ErrorKind::ExpiredSignature => TokenRefusal::Expired,
            ErrorKind::InvalidIssuer => TokenRefusal::WrongIssuer,
            ErrorKind::InvalidAudience => TokenRefusal::WrongAudience,
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenRefusal::AlgorithmNotAllowed,
            _ => TokenRefusal::Malformed,
        }
    })?;
    let claims = data.claims;
    let leeway = CLOCK_LEEWAY_SECONDS as i64;
    let number = |name: &str| claims.get(name).and_then(Value::as_i64);
    if number("exp").is_none_or(|exp| exp + leeway <= expected.now) {
        return Err(TokenRefusal::Expired);
    }
    if number("iat").is_none_or(|iat| iat > expected.now + leeway) {
        return Err(TokenRefusal::IssuedInTheFuture);
    }
    // With several audiences, the token must say it was issued to us.
    let several_audiences = claims.get("aud").and_then(Value::as_array).is_some_and(|a| a.len() > 1);
    match claims.get("azp").and_then(Value::as_str) {
        Some(azp) if azp != expected.client_id => return Err(TokenRefusal::WrongAuthorizedParty),
        None if several_audiences => return Err(TokenRefusal::WrongAuthorizedParty),
        _ => {}
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
    if !same(nonce, expected.nonce) {
        return Err(TokenRefusal::NonceMismatch);
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let hd = text("hd");
    if let Some(domain) = expected.hosted_domain
        && !hd.as_deref().is_some_and(|hd| hd.eq_ignore_ascii_case(domain))
    {
        return Err(TokenRefusal::HostedDomainMismatch);
    }
    let mapping = expected.attribute_mapping;
    let claim_name = |mapped: &Option<String>, standard: &'static str| mapped.clone().unwrap_or(standard.to_owned());
    let groups = match claims.get(claim_name(&mapping.groups, "groups")) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    // `email_verified` speaks of the standard `email` claim only: an email
    // mapped from another claim is vouched for by nobody.
    let standard_email = mapping.email.as_deref().is_none_or(|name| name == "email");
    let email_verified = match claims.get("email_verified") {
        _ if !standard_email => None,
        Some(Value::Bool(b)) => Some(*b),
        // Some IdPs send it as a string.
        Some(Value::String(s)) => Some(s == "true"),
        _ => None,
    };
    Ok(VerifiedClaims {
        issuer: text("iss").unwrap_or_default(),
        subject: text("sub").unwrap_or_default(),
        email: text(&claim_name(&mapping.email, "email")).map(|e| e.to_ascii_lowercase()),
        email_verified,
        first_name: text(&claim_name(&mapping.first_name, "given_name")),
        last_name: text(&claim_name(&mapping.last_name, "family_name")),
        groups,
        hd,
    })
}

/// Why a role was given (shown by the test connection, kept in audit entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RoleDecision {
    #[schema(value_type = String)]
    pub role: Role,
    /// `group_mapping`, `admin_domains` or `default_role`.
    pub source: String,
    /// The IdP groups that mapped to a role.
    pub matched_groups: Vec<String>,
}

/// The role the claims give: the strongest of the roles the user's groups
/// map to and `admin` when the email's domain is an admin domain; when
/// none applies, `default_role`. Never `owner`, whatever is stored.
pub fn map_role(connection: &Connection, email: Option<&str>, groups: &[String]) -> RoleDecision {
    let capped = |role: Role| if role == Role::Owner { Role::Admin } else { role };
    let mut best: Option<(Role, &str)> = None;
    let mut matched_groups = Vec::new();
    for group in groups {
        if let Some(role) = connection.configuration.group_mapping.get(group).and_then(|r| Role::parse(r)) {
            matched_groups.push(group.clone());
            let role = capped(role);
            if best.is_none_or(|(current, _)| role.at_least(current) && role != current) {
                best = Some((role, "group_mapping"));
            }
        }
    }
    let domain = email.and_then(|e| e.rsplit_once('@')).map(|(_, d)| d.to_ascii_lowercase());
    let admin_domain =
        domain.as_deref().is_some_and(|d| connection.admin_domains.iter().any(|a| a.eq_ignore_ascii_case(d)));
    if admin_domain && best.is_none_or(|(current, _)| !current.at_least(Role::Admin)) {
        best = Some((Role::Admin, "admin_domains"));
    }
    let (role, source) =
        best.unwrap_or((capped(Role::parse(&connection.default_role).unwrap_or(Role::User)), "default_role"));
    RoleDecision { role, source: source.to_owned(), matched_groups }
}

/// Whether an existing, unlinked member with the claimed email may be
/// linked to this identity: the IdP vouches for the address
/// (`email_verified: true`) and its domain is one the connection names as
/// the organisation's (`hosted_domain`, `admin_domains`, `domains`).
pub fn may_link_by_email(connection: &Connection, claims: &VerifiedClaims) -> bool {
    let Some((_, domain)) = claims.email.as_deref().and_then(|e| e.rsplit_once('@')) else { return false };
    let c = &connection.configuration;
    let owned = c.hosted_domain.iter().chain(&connection.admin_domains).chain(&c.domains);
    claims.email_verified == Some(true) && owned.into_iter().any(|d| d.eq_ignore_ascii_case(domain))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode, jwk::Jwk};
    use serde_json::json;

    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQge9t7k2AprrrAyX2A
oQa7BcNgen4m7hR2TfRCh06rTimhRANCAAQQxSmVrNncNVbbIK/sLK4OmXpfgGJP
Wfk0vtwB6LfHGC2Zt2M2K/1IoD9cmVNVmljAZNke8UyXOBU0tAC7sK72
-----END PRIVATE KEY-----";
    const NOW: i64 = 1_800_000_000;

    fn keys() -> (EncodingKey, JwkSet) {
        let key = EncodingKey::from_ec_pem(KEY.as_bytes()).expect("key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some("k1".into());
        (key, JwkSet { keys: vec![jwk] })
    }

    fn sign(key: &EncodingKey, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        encode(&header, claims, key).expect("sign")
    }

    fn good_claims() -> Value {
        json!({"iss": "https://idp.example", "sub": "u1", "aud": "client-1", "exp": NOW + 300, "iat": NOW - 10,
               "nonce": "n-1", "email": "Ada@Example.com", "email_verified": true, "groups": ["Eng", "Admins"],
               "given_name": "Ada", "family_name": "L", "hd": "example.com"})
    }

    fn expected(mapping: &AttributeMapping) -> Expected<'_> {
        Expected {
            issuer: "https://idp.example",
            client_id: "client-1",
            nonce: "n-1",
            hosted_domain: Some("example.com"),
            attribute_mapping: mapping,
            now: NOW,
        }
    }

    #[test]
    fn a_good_token_verifies_and_each_broken_rule_is_named() {
        let (key, set) = keys();
        let mapping = AttributeMapping::default();
        let claims = verify_id_token(&sign(&key, &good_claims()), &set, &expected(&mapping)).expect("valid");
        assert_eq!((claims.subject.as_str(), claims.email.as_deref()), ("u1", Some("ada@example.com")));
        assert_eq!(claims.groups, ["Eng", "Admins"]);
        let refused = |change: Value| {
            let mut body = good_claims();
            for (k, v) in change.as_object().expect("object") {
                if v.is_null() {
                    body.as_object_mut().expect("object").remove(k);
                } else {
                    body[k] = v.clone();
                }
            }
            verify_id_token(&sign(&key, &body), &set, &expected(&mapping)).expect_err("refused")
        };
        assert_eq!(refused(json!({"aud": "someone-else"})), TokenRefusal::WrongAudience);
        assert_eq!(refused(json!({"iss": "https://evil.example"})), TokenRefusal::WrongIssuer);
        assert_eq!(refused(json!({"nonce": "n-2"})), TokenRefusal::NonceMismatch);
        assert_eq!(refused(json!({"nonce": null})), TokenRefusal::NonceMismatch);
        assert_eq!(refused(json!({"exp": NOW - 120})), TokenRefusal::Expired);
        assert_eq!(refused(json!({"iat": NOW + 600})), TokenRefusal::IssuedInTheFuture);
        assert_eq!(refused(json!({"hd": "other.com"})), TokenRefusal::HostedDomainMismatch);
        assert_eq!(refused(json!({"aud": ["client-1", "client-2"]})), TokenRefusal::WrongAuthorizedParty);
        assert_eq!(refused(json!({"azp": "client-2"})), TokenRefusal::WrongAuthorizedParty);
        // Within the leeway an expiry still passes.
        let mut late = good_claims();
        late["exp"] = json!(NOW - 30);
        assert!(verify_id_token(&sign(&key, &late), &set, &expected(&mapping)).is_ok());
    }

    #[test]
    fn a_forged_or_symmetric_or_unknown_key_token_is_refused() {
        let (key, set) = keys();
        let mapping = AttributeMapping::default();
        let token = sign(&key, &good_claims());
        let (head, rest) = token.split_once('.').expect("jwt");
        let (_, signature) = rest.split_once('.').expect("jwt");
        let mut other = good_claims();
        other["sub"] = json!("admin");
        let forged_body = sign(&key, &other);
        let forged_payload = forged_body.split('.').nth(1).expect("payload");
        let forged = format!("{head}.{forged_payload}.{signature}");
        assert_eq!(verify_id_token(&forged, &set, &expected(&mapping)), Err(TokenRefusal::BadSignature));
        let hs = encode(
            &Header { kid: Some("k1".into()), ..Header::new(Algorithm::HS256) },
            &good_claims(),
            &EncodingKey::from_secret(b"client-secret"),
        )
        .expect("sign");
        assert_eq!(verify_id_token(&hs, &set, &expected(&mapping)), Err(TokenRefusal::AlgorithmNotAllowed));
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k2".into());
        let unknown = encode(&header, &good_claims(), &key).expect("sign");
        assert_eq!(verify_id_token(&unknown, &set, &expected(&mapping)), Err(TokenRefusal::UnknownKey));
    }

    fn connection(kind: ProviderType, configuration: Configuration) -> Connection {
        Connection {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            provider_type: kind,
            provider_name: "x".into(),
            status: ConnectionStatus::Active,
            configuration,
            auto_provision_users: true,
            default_role: "user".into(),
            admin_domains: vec!["admin.example.com".into()],
            require_encrypted_assertions: false,
            client_secret_set: true,
            certificate_set: false,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn the_issuer_follows_the_provider_type_unless_configured() {
        let okta = Configuration { okta_domain: Some("acme.okta.com".into()), ..Default::default() };
        assert_eq!(connection(ProviderType::Okta, okta.clone()).issuer().as_deref(), Some("https://acme.okta.com"));
        let custom = Configuration { authorization_server_id: Some("default".into()), ..okta };
        assert_eq!(
            connection(ProviderType::Okta, custom).issuer().as_deref(),
            Some("https://acme.okta.com/oauth2/default")
        );
        let azure = Configuration { azure_tenant_id: Some("t1".into()), ..Default::default() };
        assert_eq!(
            connection(ProviderType::Azure, azure).issuer().as_deref(),
            Some("https://login.microsoftonline.com/t1/v2.0")
        );
        assert_eq!(
            connection(ProviderType::Google, Configuration::default()).issuer().as_deref(),
            Some("https://accounts.google.com")
        );
        let explicit = Configuration { issuer: Some("http://127.0.0.1:9".into()), ..Default::default() };
        let google = connection(ProviderType::Google, explicit);
        assert_eq!(google.issuer().as_deref(), Some("http://127.0.0.1:9"));
        let secrets = Secrets { client_secret: Some("s".into()), x509_certificate: None };
        let fields = |errors: Vec<FieldError>| errors.into_iter().map(|e| e.field).collect::<Vec<_>>();
        assert_eq!(fields(google.problems(&secrets, false)), ["configuration.client_id", "configuration.issuer"]);
        assert!(fields(google.problems(&secrets, true)).iter().all(|f| f != "configuration.issuer"));
    }

    #[test]
    fn the_strongest_mapped_role_wins_and_owner_is_never_granted() {
        let mapping = BTreeMap::from([
            ("Admins".to_owned(), "admin".to_owned()),
            ("Devs".to_owned(), "developer".to_owned()),
            ("Owners".to_owned(), "owner".to_owned()),
        ]);
        let conn = connection(ProviderType::Okta, Configuration { group_mapping: mapping, ..Default::default() });
        let groups = |g: &[&str]| g.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let decided = map_role(&conn, Some("a@x.com"), &groups(&["Devs", "Admins", "Other"]));
        assert_eq!((decided.role, decided.source.as_str()), (Role::Admin, "group_mapping"));
        assert_eq!(decided.matched_groups, ["Devs", "Admins"]);
        assert_eq!(map_role(&conn, Some("a@x.com"), &groups(&["Devs"])).role, Role::Developer);
        assert_eq!(map_role(&conn, Some("a@x.com"), &groups(&["Owners"])).role, Role::Admin);
        let by_domain = map_role(&conn, Some("a@admin.example.com"), &groups(&["Devs"]));
        assert_eq!((by_domain.role, by_domain.source.as_str()), (Role::Admin, "admin_domains"));
        let fallback = map_role(&conn, Some("a@x.com"), &[]);
        assert_eq!((fallback.role, fallback.source.as_str()), (Role::User, "default_role"));
    }

    #[test]
    fn only_a_verified_email_in_an_owned_domain_links() {
        let conn = connection(
            ProviderType::Google,
            Configuration { hosted_domain: Some("acme.com".into()), ..Default::default() },
        );
        let claims = |email: &str, verified: Option<bool>| VerifiedClaims {
            issuer: "i".into(),
            subject: "s".into(),
            email: Some(email.into()),
            email_verified: verified,
            first_name: None,
            last_name: None,
            groups: vec![],
            hd: None,
        };
        assert!(may_link_by_email(&conn, &claims("a@acme.com", Some(true))));
        assert!(may_link_by_email(&conn, &claims("a@admin.example.com", Some(true))));
        assert!(!may_link_by_email(&conn, &claims("a@acme.com", None)));
        assert!(!may_link_by_email(&conn, &claims("a@acme.com", Some(false))));
        assert!(!may_link_by_email(&conn, &claims("a@elsewhere.com", Some(true))));
    }
}
