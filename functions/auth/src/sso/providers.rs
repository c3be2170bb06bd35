//! The bodies of the connection routes, and how a body becomes a stored
//! connection: seed 000 puts `auto_provision_users`, `default_role` and
//! `admin_domains` sometimes at the top level and sometimes inside
//! `configuration`; both are read, one canonical form (top level) is
//! stored, and the same field given twice with two values is a 400.

use std::collections::BTreeMap;

use shared::{
    AppError, AppResult, AppState,
    auth::TenantScope,
    domain::{
        ids::TypedId,
        sso::{AttributeMapping, Configuration, Connection, ConnectionStatus, ProviderType, Secrets},
        user::RoleName,
        values::{Hostname, HttpUrl, Text},
    },
    error::FieldError,
    store::sso::connection_secrets_context,
};
use uuid::Uuid;

/// An SSO connection's id in a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionId(pub Uuid);

impl TypedId for ConnectionId {
    const PARAM: &'static str = "id";

    fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    fn uuid(&self) -> Uuid {
        self.0
    }
}

/// Which IdP claim carries each field (standard claims when left out).
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeMappingBody {
    #[serde(default)]
    pub email: Option<Text<1, 500>>,
    #[serde(default)]
    pub first_name: Option<Text<1, 500>>,
    #[serde(default)]
    pub last_name: Option<Text<1, 500>>,
    #[serde(default)]
    pub groups: Option<Text<1, 500>>,
}

/// A connection's `configuration`: which fields a provider type needs is
/// in docs/sso.md (`client_id` and `client_secret` for the OIDC types,
/// `okta_domain` for Okta, `azure_tenant_id` for Azure, `issuer` for
/// `oidc`; `entity_id`, `sso_url` and `x509_certificate` for SAML).
#[derive(Debug, Default, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigurationBody {
    #[serde(default)]
    pub client_id: Option<Text<1, 255>>,
    /// Sealed at rest, never shown again.
    #[serde(default)]
    pub client_secret: Option<Text<1, 1024>>,
    /// The IdP's issuer (https; derived from the type when left out).
    #[serde(default)]
    pub issuer: Option<HttpUrl>,
    #[serde(default)]
    pub okta_domain: Option<Hostname>,
    /// Okta: a custom authorization server (`default`, `aus...`).
    #[serde(default)]
    pub authorization_server_id: Option<Text<1, 128>>,
    #[serde(default)]
    pub azure_tenant_id: Option<Text<1, 128>>,
    /// Google Workspace: ID tokens must carry this `hd`.
    #[serde(default)]
    pub hosted_domain: Option<Hostname>,
    /// The organisation's email domains (for linking existing members).
    #[serde(default)]
    #[schema(max_items = 50)]
    pub domains: Option<Vec<Hostname>>,
    /// Also accepted at the top level.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub admin_domains: Option<Vec<Hostname>>,
    /// Also accepted at the top level.
    #[serde(default)]
    pub auto_provision_users: Option<bool>,
    /// Also accepted at the top level.
    #[serde(default)]
    #[eserde(compat)]
    pub default_role: Option<RoleName>,
    /// Must include `openid`; `openid email profile` when left out.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub scopes: Option<Vec<Text<1, 100>>>,
    /// The only `redirect_uri`s `initiate` accepts, when set.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub redirect_uris: Option<Vec<HttpUrl>>,
    #[serde(default)]
    pub attribute_mapping: Option<AttributeMappingBody>,
    /// IdP group -> `admin`, `developer` or `user`.
    #[serde(default)]
    #[eserde(compat)]
    pub group_mapping: Option<BTreeMap<String, RoleName>>,
    #[serde(default)]
    pub entity_id: Option<Text<1, 1024>>,
    #[serde(default)]
    pub sso_url: Option<HttpUrl>,
    /// Sealed at rest, never shown again.
    #[serde(default)]
    pub x509_certificate: Option<Text<1, 16384>>,
}

/// `POST /v1/auth/sso/providers`.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConnection {
    #[eserde(compat)]
    pub provider_type: ProviderType,
    pub provider_name: Text<1, 255>,
    #[serde(default)]
    pub configuration: Option<ConfigurationBody>,
    #[serde(default)]
    pub auto_provision_users: Option<bool>,
    #[serde(default)]
    #[eserde(compat)]
    pub default_role: Option<RoleName>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub admin_domains: Option<Vec<Hostname>>,
    #[serde(default)]
    pub require_encrypted_assertions: Option<bool>,
    /// `active` (the default) or `inactive`.
    #[serde(default)]
    #[eserde(compat)]
    pub status: Option<ConnectionStatus>,
}

/// `PATCH /v1/auth/sso/providers/{id}`: every field optional.
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionUpdate {
    #[serde(default)]
    pub provider_name: Option<Text<1, 255>>,
    #[serde(default)]
    pub configuration: Option<ConfigurationBody>,
    #[serde(default)]
    pub auto_provision_users: Option<bool>,
    #[serde(default)]
    #[eserde(compat)]
    pub default_role: Option<RoleName>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub admin_domains: Option<Vec<Hostname>>,
    #[serde(default)]
    pub require_encrypted_assertions: Option<bool>,
    #[serde(default)]
    #[eserde(compat)]
    pub status: Option<ConnectionStatus>,
}

/// `POST /v1/auth/sso/providers/{id}/test` (the body may be left out).
#[derive(Debug, eserde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    #[serde(default)]
    pub redirect_uri: Option<HttpUrl>,
}

/// The top-level value, or the one inside `configuration`; both with two
/// values is a 400 on the inner one.
fn one_of<T: PartialEq>(top: Option<T>, inner: Option<T>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    match (top, inner) {
        (Some(a), Some(b)) if a != b => {
            errors.push(FieldError::new(
                format!("configuration.{field}"),
                format!("differs from the top-level {field}; send it once"),
            ));
            Some(a)
        }
        (top, inner) => top.or(inner),
    }
}

fn strings<T: Into<String>>(values: Vec<T>) -> Vec<String> {
    values.into_iter().map(Into::into).collect()
}

/// Applies the fields `body` sets to `c` and `secrets`; answers whether a
/// secret changed.
fn apply_configuration(body: ConfigurationBody, c: &mut Configuration, secrets: &mut Secrets) -> bool {
    let set = |target: &mut Option<String>, value: Option<String>| {
        if value.is_some() {
            *target = value;
        }
    };
    set(&mut c.client_id, body.client_id.map(Into::into));
    set(&mut c.issuer, body.issuer.map(HttpUrl::into_inner));
    set(&mut c.okta_domain, body.okta_domain.map(|h| h.into_inner().to_ascii_lowercase()));
    set(&mut c.authorization_server_id, body.authorization_server_id.map(Into::into));
    set(&mut c.azure_tenant_id, body.azure_tenant_id.map(Into::into));
    set(&mut c.hosted_domain, body.hosted_domain.map(|h| h.into_inner().to_ascii_lowercase()));
    set(&mut c.entity_id, body.entity_id.map(Into::into));
    set(&mut c.sso_url, body.sso_url.map(HttpUrl::into_inner));
    if let Some(domains) = body.domains {
        c.domains = domains.into_iter().map(|h| h.into_inner().to_ascii_lowercase()).collect();
    }
    if let Some(scopes) = body.scopes {
        c.scopes = strings(scopes);
    }
    if let Some(uris) = body.redirect_uris {
        c.redirect_uris = uris.into_iter().map(HttpUrl::into_inner).collect();
    }
    if let Some(mapping) = body.attribute_mapping {
        c.attribute_mapping = AttributeMapping {
            email: mapping.email.map(Into::into),
            first_name: mapping.first_name.map(Into::into),
            last_name: mapping.last_name.map(Into::into),
            groups: mapping.groups.map(Into::into),
        };
    }
    if let Some(mapping) = body.group_mapping {
        c.group_mapping = mapping.into_iter().map(|(group, role)| (group, role.as_str().to_owned())).collect();
    }
    let mut changed = false;
    if let Some(secret) = body.client_secret {
        secrets.client_secret = Some(secret.into());
        changed = true;
    }
    if let Some(certificate) = body.x509_certificate {
        secrets.x509_certificate = Some(certificate.into());
        changed = true;
    }
    changed
}

/// The rules the domain checks, plus a redirect URI's scheme.
fn check(connection: &Connection, secrets: &Secrets, local_mode: bool, mut errors: Vec<FieldError>) -> AppResult<()> {
    errors.extend(connection.problems(secrets, local_mode));
    for (i, uri) in connection.configuration.redirect_uris.iter().enumerate() {
        if !super::oidc::redirect_uri_allowed(uri, local_mode) {
            errors.push(FieldError::new(
                format!("configuration.redirect_uris[{i}]"),
                "must be an https URL (http only to a loopback address on a local server)",
            ));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::validation(errors)) }
}

impl NewConnection {
    /// The connection to store and its secrets (to seal), or one 400
    /// naming every problem.
    pub fn into_connection(self, tenant_id: Uuid, local_mode: bool) -> AppResult<(Connection, Secrets)> {
        let mut errors = Vec::new();
        let mut body = self.configuration.unwrap_or_default();
        let auto_provision =
            one_of(self.auto_provision_users, body.auto_provision_users.take(), "auto_provision_users", &mut errors);
        let default_role = one_of(self.default_role, body.default_role.take(), "default_role", &mut errors);
        let admin_domains = one_of(self.admin_domains, body.admin_domains.take(), "admin_domains", &mut errors);
        let mut configuration = Configuration::default();
        let mut secrets = Secrets::default();
        apply_configuration(body, &mut configuration, &mut secrets);
        let now = shared::domain::now_rfc3339();
        let connection = Connection {
            id: Uuid::now_v7(),
            tenant_id,
            provider_type: self.provider_type,
            provider_name: self.provider_name.into(),
            status: self.status.unwrap_or(ConnectionStatus::Active),
            configuration,
            auto_provision_users: auto_provision.unwrap_or(false),
            default_role: default_role.map_or("user", RoleName::as_str).to_owned(),
            admin_domains: admin_domains
                .map(|d| d.into_iter().map(|h| h.into_inner().to_ascii_lowercase()).collect())
                .unwrap_or_default(),
            require_encrypted_assertions: self.require_encrypted_assertions.unwrap_or(false),
            client_secret_set: secrets.client_secret.is_some(),
            certificate_set: secrets.x509_certificate.is_some(),
            created_at: now.clone(),
            updated_at: now,
        };
        check(&connection, &secrets, local_mode, errors)?;
        Ok((connection, secrets))
    }
}

impl ConnectionUpdate {
    /// `old` with this update applied, its secrets, and whether they changed.
    pub fn apply(self, old: &Connection, secrets: Secrets, local_mode: bool) -> AppResult<(Connection, Secrets, bool)> {
        let mut errors = Vec::new();
        let mut body = self.configuration.unwrap_or_default();
        let auto_provision =
            one_of(self.auto_provision_users, body.auto_provision_users.take(), "auto_provision_users", &mut errors);
        let default_role = one_of(self.default_role, body.default_role.take(), "default_role", &mut errors);
        let admin_domains = one_of(self.admin_domains, body.admin_domains.take(), "admin_domains", &mut errors);
        let mut new = old.clone();
        let mut secrets = secrets;
        let secrets_changed = apply_configuration(body, &mut new.configuration, &mut secrets);
        if let Some(name) = self.provider_name {
            new.provider_name = name.into();
        }
        if let Some(status) = self.status {
            new.status = status;
        }
        if let Some(auto) = auto_provision {
            new.auto_provision_users = auto;
        }
        if let Some(role) = default_role {
            new.default_role = role.as_str().to_owned();
        }
        if let Some(domains) = admin_domains {
            new.admin_domains = domains.into_iter().map(|h| h.into_inner().to_ascii_lowercase()).collect();
        }
        if let Some(encrypted) = self.require_encrypted_assertions {
            new.require_encrypted_assertions = encrypted;
        }
        new.client_secret_set = secrets.client_secret.is_some();
        new.certificate_set = secrets.x509_certificate.is_some();
        new.updated_at = shared::domain::now_rfc3339();
        check(&new, &secrets, local_mode, errors)?;
        Ok((new, secrets, secrets_changed))
    }
}

/// Seals a connection's secrets for the store: (nonce, ciphertext).
pub fn seal_secrets(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    secrets: &Secrets,
) -> AppResult<([u8; 12], Vec<u8>)> {
    let plain = serde_json::to_vec(secrets).map_err(AppError::internal)?;
    state.keys.sealing.seal(&connection_secrets_context(scope, id), &plain)
}

pub fn open_secrets(
    state: &AppState,
    scope: &TenantScope,
    id: Uuid,
    nonce: &[u8],
    sealed: &[u8],
) -> AppResult<Secrets> {
    let plain = state.keys.sealing.open(&connection_secrets_context(scope, id), nonce, sealed)?;
    serde_json::from_slice(&plain).map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::web::extract::parse_body;

    /// Seed 000's three bodies, as they stand.
    #[test]
    fn the_seed_bodies_are_accepted_and_stored_in_one_form() {
        let google: NewConnection = parse_body(
            br#"{"provider_type": "google", "provider_name": "Enterprise Google Workspace",
                 "configuration": {"client_id": "123456789-abcdef.apps.googleusercontent.com",
                   "client_secret": "GOCSPX-SecretKey123", "hosted_domain": "enterprise.com",
                   "auto_provision_users": true, "default_role": "user", "admin_domains": ["admin.enterprise.com"]}}"#,
        )
        .expect("google");
        let (google, secrets) = google.into_connection(Uuid::nil(), false).expect("valid");
        assert!(google.auto_provision_users);
        assert_eq!(google.admin_domains, ["admin.enterprise.com"]);
        assert_eq!(secrets.client_secret.as_deref(), Some("GOCSPX-SecretKey123"));
        assert!(!serde_json::to_string(&google.view()).expect("json").contains("GOCSPX"));
        let okta: NewConnection = parse_body(
            br#"{"provider_type": "okta", "provider_name": "Enterprise Okta",
                 "configuration": {"client_id": "0oa1a2b3c4d5e6f7g8h9", "client_secret": "SecretKey456",
                   "okta_domain": "enterprise.okta.com", "scopes": ["openid", "profile", "email", "groups"],
                   "group_mapping": {"Enterprise-Admins": "admin", "Enterprise-Developers": "developer", "Enterprise-Users": "user"}}}"#,
        )
        .expect("okta");
        let (okta, _) = okta.into_connection(Uuid::nil(), false).expect("valid");
        assert_eq!(okta.issuer().as_deref(), Some("https://enterprise.okta.com"));
        let saml: NewConnection = parse_body(
            br#"{"provider_type": "saml", "provider_name": "Fortune 500 Azure AD",
                 "configuration": {"entity_id": "https://sts.windows.net/fortune500-tenant-id/",
                   "sso_url": "https://login.microsoftonline.com/fortune500-tenant-id/saml2",
                   "x509_certificate": "-----BEGIN CERTIFICATE-----\nMIIC...certificate_content...==\n-----END CERTIFICATE-----",
                   "attribute_mapping": {"email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                     "first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
                     "last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
                     "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"},
                   "group_mapping": {"LeanVibe-Admins": "admin", "LeanVibe-Developers": "developer", "LeanVibe-Users": "user"}},
                 "auto_provision_users": true, "require_encrypted_assertions": true}"#,
        )
        .expect("saml");
        let (saml, secrets) = saml.into_connection(Uuid::nil(), false).expect("valid");
        assert!(saml.certificate_set && saml.require_encrypted_assertions && saml.auto_provision_users);
        assert!(secrets.x509_certificate.is_some());
    }

    #[test]
    fn each_problem_is_named_by_its_field() {
        let body: NewConnection = parse_body(
            br#"{"provider_type": "oidc", "provider_name": "X", "default_role": "admin",
                 "configuration": {"default_role": "user", "issuer": "http://idp.example",
                   "group_mapping": {"Owners": "owner"}, "scopes": ["email"]}}"#,
        )
        .expect("each field is valid");
        let err = body.into_connection(Uuid::nil(), false).expect_err("refused");
        let mut fields = err.invalid_fields();
        fields.sort();
        assert_eq!(
            fields,
            [
                "configuration.client_id",
                "configuration.client_secret",
                "configuration.default_role",
                "configuration.group_mapping.Owners",
                "configuration.issuer",
                "configuration.scopes",
            ]
        );
        let err = parse_body::<NewConnection>(
            br#"{"provider_type": "ldap", "provider_name": "", "configuration": {"x": 1}}"#,
        )
        .expect_err("refused");
        let mut fields = err.invalid_fields();
        fields.sort();
        assert_eq!(fields, ["configuration.x", "provider_name", "provider_type"]);
    }
}
