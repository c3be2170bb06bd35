//! Configuration from the environment, read once per cold start. Locally the
//! stack script writes the same variables (see docs/infra.md). Keys are not
//! configuration: they come from Secrets Manager (`crate::keys`).

use anyhow::{Context, Result};

#[derive(Clone, Debug)]
pub struct Config {
    pub table_name: String,
    pub event_bus_name: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// Local mode relaxes what only matters on the internet (https-only URLs).
    pub local_mode: bool,
    /// The bucket of customer photos and try-on results (functions that touch blobs).
    pub blob_bucket_name: Option<String>,
    /// The sender of account mail (`MAIL_FROM`, an address of a verified SES
    /// identity); without it no mail is sent (functions that send none).
    pub mail_from: Option<String>,
    /// The web app's public base URL (`APP_BASE_URL`, e.g.
    /// `https://app.example.com`): mailed links point under it.
    pub app_base_url: Option<String>,
    /// The API's own public base URL (`PUBLIC_API_URL`, e.g.
    /// `https://api.example.com`): SAML names its service provider and
    /// assertion consumer under it, and an IdP must see the same URLs the
    /// AuthnRequest named.
    pub public_api_url: Option<String>,
    /// PEM (PKCS#8) of the RSA key IdPs encrypt SAML assertions to: one
    /// platform key, only the SAML function gets it.
    pub saml_sp_private_key_pem: Option<String>,
    /// PEM of the self-signed certificate of that key, published in every
    /// SAML connection's SP metadata.
    pub saml_sp_certificate_pem: Option<String>,
}

pub const EVENT_SOURCE: &str = "saas.platform";
/// The bus source of an inbound integration event is this and the
/// provider's name (`saas.integrations.user_service`), so rules can pick a
/// provider's events by source.
pub const INTEGRATION_SOURCE_PREFIX: &str = "saas.integrations.";

impl Config {
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            event_bus_name: required("EVENT_BUS_NAME")?,
            jwt_issuer: optional("JWT_ISSUER").unwrap_or_else(|| "saas-platform".to_owned()),
            jwt_audience: optional("JWT_AUDIENCE").unwrap_or_else(|| "saas-platform-api".to_owned()),
            local_mode: optional("LOCAL_MODE").is_some_and(|v| v == "true" || v == "1"),
            blob_bucket_name: optional("BLOB_BUCKET_NAME"),
            mail_from: optional("MAIL_FROM"),
            app_base_url: optional("APP_BASE_URL"),
            public_api_url: optional("PUBLIC_API_URL").map(|u| u.trim_end_matches('/').to_owned()),
            saml_sp_private_key_pem: inline_or_file("SAML_SP_PRIVATE_KEY")?,
            saml_sp_certificate_pem: inline_or_file("SAML_SP_CERTIFICATE")?,
        })
    }

    pub fn require_public_api_url(&self) -> Result<&str> {
        self.public_api_url.as_deref().context("PUBLIC_API_URL is not set (SAML needs the API's public URL)")
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn required(name: &str) -> Result<String> {
    optional(name).with_context(|| format!("environment variable {name} is required"))
}

/// `NAME` holds the value itself; `NAME_FILE` a path to it (local stack keeps
/// keys in files so they survive restarts without living in the shell).
fn inline_or_file(name: &str) -> Result<Option<String>> {
    if let Some(value) = optional(name) {
        return Ok(Some(value));
    }
    match optional(&format!("{name}_FILE")) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|s| Some(s.trim().to_owned()))
            .with_context(|| format!("reading {name}_FILE at {path}")),
        None => Ok(None),
    }
}
