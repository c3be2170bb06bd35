//! Calls the platform makes to a provider's own API (a workflow's
//! `integration` step, a sync connection's reads and its provider target's
//! writes): the provider's `api_base_url`, and its stored secret sent the
//! way its `auth_type` says (docs/integrations.md, "Calling a provider").

use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::TenantScope,
    domain::integration::AuthType,
    store::{Store, integrations::provider_context},
};

/// A provider's API, its secret opened. The secret is never printed.
pub struct ProviderApi {
    pub name: String,
    base: String,
    auth_type: Option<AuthType>,
    secret: String,
}

impl std::fmt::Debug for ProviderApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderApi").field("name", &self.name).field("base", &self.base).finish_non_exhaustive()
    }
}

impl ProviderApi {
    /// The tenant's provider, ready to call; why not when it is gone or
    /// has no `api_base_url`.
    pub async fn open(
        store: &Store,
        sealing: &crate::sealing::KeyRing,
        scope: &TenantScope,
        provider_id: Uuid,
    ) -> Result<Self, String> {
        let (provider, secrets) = store
            .provider_with_secrets(scope, provider_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the integration provider was deleted")?;
        let base = provider.api_base_url.ok_or("the provider has no api_base_url")?;
        // A secret that does not open (its key dropped from the ring) is
        // sent as nothing: the provider answers 401, which names the problem.
        let secret = sealing
            .open(&provider_context("secret", scope, provider_id), &secrets.secret.nonce, &secrets.secret.ciphertext)
            .ok()
            .and_then(|plain| String::from_utf8(plain).ok())
            .unwrap_or_default();
        Ok(ProviderApi { name: provider.name, base, auth_type: AuthType::parse(&provider.auth_type), secret })
    }

    /// `path` under the provider's `api_base_url`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    /// The headers that authenticate a call with `body`: `Authorization:
    /// Bearer` (bearer, oauth2), `X-API-Key` (api_key), `Authorization:
    /// Basic` (basic: the secret is `user:password`), or `X-Signature-256`
    /// (hmac: HMAC-SHA256 of the JSON body, `null` without one).
    pub fn auth_headers(&self, body: Option<&Value>) -> Vec<(&'static str, String)> {
        let secret = &self.secret;
        match self.auth_type {
            Some(AuthType::Bearer | AuthType::Oauth2) => vec![("authorization", format!("Bearer {secret}"))],
            Some(AuthType::ApiKey) => vec![("x-api-key", secret.clone())],
            Some(AuthType::Basic) => {
                use base64::Engine;
                vec![("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(secret)))]
            }
            Some(AuthType::Hmac) => {
                use hmac::Mac;
                let signed = serde_json::to_vec(&body).unwrap_or_default();
                let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
                    return Vec::new();
                };
                mac.update(&signed);
                vec![(
                    "x-signature-256",
                    format!(
                        "sha256={}",
                        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
                    ),
                )]
            }
            Some(AuthType::None) | None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(auth_type: AuthType) -> ProviderApi {
        ProviderApi {
            name: "crm".into(),
            base: "https://crm.example/".into(),
            auth_type: Some(auth_type),
            secret: "s3cret".into(),
        }
    }

    #[test]
    fn each_auth_type_sends_the_secret_its_own_way() {
        assert_eq!(api(AuthType::Bearer).auth_headers(None), vec![("authorization", "Bearer s3cret".to_owned())]);
        assert_eq!(api(AuthType::ApiKey).auth_headers(None), vec![("x-api-key", "s3cret".to_owned())]);
        assert_eq!(api(AuthType::Basic).auth_headers(None), vec![("authorization", "Basic czNjcmV0".to_owned())]);
        assert!(api(AuthType::None).auth_headers(None).is_empty());
        let signed = api(AuthType::Hmac).auth_headers(Some(&serde_json::json!({"a": 1})));
        assert!(signed[0].1.starts_with("sha256=") && signed[0].1.len() == 71, "{signed:?}");
        assert_eq!(api(AuthType::None).url("/customers"), "https://crm.example/customers");
        assert!(!format!("{:?}", api(AuthType::Bearer)).contains("s3cret"));
    }
}
