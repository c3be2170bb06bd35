//! SAML 2.0 sign-in, the service provider's side: the assertion consumer
//! service the IdP posts to, and the metadata an IdP admin reads. The
//! sign-in starts and ends in the auth group (`initiate` sends the browser
//! to the IdP with an AuthnRequest; `callback` trades the code this ACS
//! hands out for tokens). This group links libxmlsec1 (samael), which is
//! why it is its own Lambda.
//!
//! | route | handler | who |
//! |---|---|---|
//! | `POST /v1/auth/saml/{tenant_id}/{connection_id}/acs` | [`acs`] | the IdP, through the user's browser |
//! | `GET /v1/auth/saml/{tenant_id}/{connection_id}/metadata` | [`metadata`] | anyone |

pub mod decrypt;
#[cfg(test)]
pub mod testkit;
pub mod verify;

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::json;
use shared::{
    AppError, AppResult, AppState,
    audit::ClientInfo,
    auth::{TenantScope, proofs::CredentialLookup},
    domain::sso::{CONNECTION_RESOURCE, ProviderType, SamlRelay, saml_sp_urls},
    outbound::url_with_query,
    store::sso::SamlRecorded,
};
use uuid::Uuid;

use auth::sso::oidc::{random_token, sha256_hex, state_refused};
use verify::{Expected, MAX_XML_BYTES, Refusal, verify_response};

/// The largest ACS form body: the largest response, base64 (4/3, plus
/// line breaks some IdPs add) and percent-encoded (`+`, `/`, `=` take 3
/// bytes each), plus the RelayState.
pub const MAX_FORM_BYTES: usize = MAX_XML_BYTES / 3 * 4 * 2 + 4096;

/// This group's part of the OpenAPI document (`shared::web::openapi`).
#[derive(utoipa::OpenApi)]
// The `sso` tag is described once, by the auth group's part.
#[openapi(paths(acs, metadata))]
pub struct ApiDoc;

/// This group's routes; its Lambda and the local server add the shared layers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/saml/{tenant_id}/{connection_id}/acs", post(acs).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)))
        .route("/v1/auth/saml/{tenant_id}/{connection_id}/metadata", get(metadata))
}

fn response_refused(refusal: Refusal) -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "saml_response_invalid", refusal.message())
        .with_details(json!({"reason": refusal.as_str()}))
}

fn replayed() -> AppError {
    AppError::new(StatusCode::UNAUTHORIZED, "saml_response_invalid", "this SAML assertion was used before")
        .with_details(json!({"reason": "replayed"}))
}

/// A refusal after the state was read: audited in the tenant (as the
/// callback's are), then answered.
async fn refuse(
    state: &AppState,
    scope: &TenantScope,
    client: &ClientInfo,
    connection_id: Uuid,
    reason: &str,
    err: AppError,
) -> AppError {
    auth::sso::oidc::audited_refusal(
        state,
        scope,
        client,
        ("saml-acs", "saml_login_refused"),
        connection_id,
        reason,
        err,
    )
    .await
}

/// The ACS's form: what the IdP's page posts (SAML bindings 3.5.4).
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AcsForm {
    /// The IdP's `samlp:Response`, base64.
    #[schema(rename = "SAMLResponse")]
    saml_response: String,
    /// What `initiate` sent as RelayState, brought back by the IdP.
    #[schema(rename = "RelayState")]
    relay_state: String,
}

impl AcsForm {
    /// Each field once; anything else is ignored (IdPs add their own).
    fn parse(body: &[u8]) -> AppResult<Self> {
        let (mut saml_response, mut relay_state) = (None, None);
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "SAMLResponse" => &mut saml_response,
                "RelayState" => &mut relay_state,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(AppError::invalid_field(&name, "must be sent once"));
            }
        }
        let missing = |field: &str| AppError::invalid_field(field, "is required");
        Ok(Self {
            saml_response: saml_response.filter(|v| !v.is_empty()).ok_or_else(|| missing("SAMLResponse"))?,
            relay_state: relay_state.filter(|v| !v.is_empty()).ok_or_else(|| missing("RelayState"))?,
        })
    }

    /// The response's XML: base64 with any whitespace an IdP wrapped it in.
    fn xml(&self) -> AppResult<Vec<u8>> {
        let compact: String = self.saml_response.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let xml = STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| AppError::invalid_field("SAMLResponse", "must be base64"))?;
        if xml.len() > MAX_XML_BYTES {
            return Err(AppError::invalid_field(
                "SAMLResponse",
                format!("must be at most {MAX_XML_BYTES} bytes of XML"),
            ));
        }
        Ok(xml)
    }
}

fn ids(tenant_id: &str, connection_id: &str) -> Option<(Uuid, Uuid)> {
    Some((Uuid::parse_str(tenant_id).ok()?, Uuid::parse_str(connection_id).ok()?))
}

/// Receive a SAML response (assertion consumer service)
///
/// The IdP's HTTP-POST binding: the user's browser posts the IdP's
/// `SAMLResponse` (base64) and the `RelayState` that `initiate` sent. The
/// response must answer that sign-in's AuthnRequest (IdP-initiated
/// sign-in is refused), carry exactly one assertion, signed with the
/// connection's certificate (RSA-SHA256 or stronger; the assertion or the
/// whole response), issued by the connection's `entity_id`, restricted to
/// this connection's SP entity id, for this URL, and valid now (3 minutes
/// of clock skew). An encrypted assertion (`EncryptedAssertion`, to the
/// certificate in the SP metadata: RSA-OAEP key transport, AES-CBC or
/// AES-GCM content) is decrypted first; RSA PKCS#1 v1.5 key transport is
/// refused. Each assertion is accepted once. The browser is then
/// sent to the sign-in's `redirect_uri` with a single-use `code`, which the
/// app trades with the sign-in's `state` at
/// `POST /v1/auth/sso/{provider}/callback`.
#[utoipa::path(post, path = "/v1/auth/saml/{tenant_id}/{connection_id}/acs", tag = "sso",
    params(
        ("tenant_id" = Uuid, Path, description = "The tenant of the connection"),
        ("connection_id" = Uuid, Path, description = "The SAML connection"),
    ),
    request_body(content = AcsForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Signed in at the IdP: the browser goes to the sign-in's `redirect_uri` with `code`",
            headers(("Location" = String, description = "`redirect_uri` with `code` added to its query"))),
        (status = 400, description = "Bad request\n\n- `validation_failed`: `SAMLResponse` or `RelayState` is missing or sent twice, or `SAMLResponse` is not base64 of at most 256 KiB of XML (`details.fields`)", body = shared::web::openapi::ApiError),
        (status = 401, description = "Not authenticated\n\n- `invalid_state`: the RelayState is invalid, expired or already answered, or names another connection\n- `saml_response_invalid`: the response failed a check (`details.reason`: `malformed`, `structure`, `bad_signature`, `weak_algorithm`, `wrong_issuer`, `wrong_destination`, `wrong_audience`, `wrong_recipient`, `in_response_to_mismatch`, `expired`, `not_yet_valid`, `status_not_success`, `encryption_required`, `encrypted_unsupported`, `decryption_failed`, `missing_subject`, `replayed`)", body = shared::web::openapi::ApiError),
        (status = 404, description = "Not found\n\n- `not_found`: the connection is gone, inactive, or not a SAML connection", body = shared::web::openapi::ApiError),
        (status = 413, description = "Payload too large\n\n- `payload_too_large`: the form is larger than this route accepts", body = shared::web::openapi::ApiError),
    ))]
pub async fn acs(
    State(state): State<AppState>,
    client: ClientInfo,
    Path((tenant_id, connection_id)): Path<(String, String)>,
    body: Bytes,
) -> AppResult<Response> {
    let form = AcsForm::parse(&body)?;
    let xml = form.xml()?;
    let (tenant_id, connection_id) = ids(&tenant_id, &connection_id).ok_or_else(state_refused)?;
    let relay = SamlRelay::parse(&form.relay_state).ok_or_else(state_refused)?;
    let now = chrono::Utc::now().timestamp();
    let lookup = CredentialLookup::named_by_credential(tenant_id);
    let (scope, sign_in) = state.store.saml_sign_in_state(&lookup, &relay, now).await?.ok_or_else(state_refused)?;
    let refuse = |reason: &'static str, err: AppError| {
        let (state, scope, client) = (&state, &scope, &client);
        async move { refuse(state, scope, client, connection_id, reason, err).await }
    };
    if sign_in.connection_id != connection_id {
        return Err(refuse("connection_mismatch", state_refused()).await);
    }
    let Some((connection, nonce, sealed)) = state.store.connection_with_secrets(&scope, connection_id).await? else {
        return Err(refuse("connection_deleted", AppError::not_found(CONNECTION_RESOURCE)).await);
    };
    if connection.provider_type != ProviderType::Saml {
        return Err(refuse("not_saml", AppError::not_found(CONNECTION_RESOURCE)).await);
    }
    if !sign_in.test && !connection.is_active() {
        return Err(refuse("connection_inactive", AppError::not_found(CONNECTION_RESOURCE)).await);
    }
    let secrets = auth::sso::providers::open_secrets(&state, &scope, connection.id, &nonce, &sealed)?;
    let (Some(certificate), Some(idp_entity_id)) =
        (secrets.x509_certificate, connection.configuration.entity_id.clone())
    else {
        // Connections are validated when stored; one without these cannot sign in.
        return Err(AppError::internal(anyhow::anyhow!("a SAML connection without certificate or entity_id")));
    };
    let urls = saml_sp_urls(state.config.require_public_api_url()?, tenant_id, connection_id);
    let (request_id, mapping, require_encrypted, sp_key) = (
        sign_in.nonce.clone(),
        connection.configuration.attribute_mapping.clone(),
        connection.require_encrypted_assertions,
        state.config.saml_sp_private_key_pem.clone(),
    );
    // libxml2 and libxmlsec1 are blocking C calls.
    let verified = tokio::task::spawn_blocking(move || {
        verify_response(
            &xml,
            &Expected {
                idp_entity_id: &idp_entity_id,
                idp_certificate_pem: &certificate,
                sp_entity_id: &urls.entity_id,
                acs_url: &urls.acs_url,
                request_id: &request_id,
                require_encrypted,
                sp_decryption_key_pem: sp_key.as_deref(),
                attribute_mapping: &mapping,
                now,
            },
        )
    })
    .await
    .map_err(AppError::internal)?;
    let verified = match verified {
        Ok(verified) => verified,
        Err(refusal) => return Err(refuse(refusal.as_str(), response_refused(refusal)).await),
    };
    let code = random_token(32);
    let recorded = state
        .store
        .record_saml_assertion(
            &scope,
            &sign_in,
            &verified.claims,
            &sha256_hex(&code),
            &verified.assertion_id,
            verified.not_on_or_after,
            now,
        )
        .await?;
    match recorded {
        SamlRecorded::Recorded => {}
        SamlRecorded::Replayed => return Err(refuse("replayed", replayed()).await),
        SamlRecorded::StateUsed => return Err(refuse("state_used", state_refused()).await),
    }
    let location = url_with_query(&sign_in.redirect_uri, &[("code", code.as_str())])
        .map_err(|e| AppError::internal(anyhow::anyhow!("the stored redirect_uri is not a URL: {e}")))?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_owned())])
        .into_response())
}

/// Read a SAML connection's service provider metadata
///
/// What the IdP is configured with: our entity id, the assertion consumer
/// service (HTTP-POST), that assertions must be signed, and the
/// certificate to encrypt assertions to with the accepted algorithms
/// (`application/samlmetadata+xml`). Public: it holds no secret.
#[utoipa::path(get, path = "/v1/auth/saml/{tenant_id}/{connection_id}/metadata", tag = "sso",
    params(
        ("tenant_id" = Uuid, Path, description = "The tenant of the connection"),
        ("connection_id" = Uuid, Path, description = "The SAML connection"),
    ),
    responses(
        (status = 200, description = "The SP metadata (`md:EntityDescriptor`)", content_type = "application/samlmetadata+xml", body = String),
        (status = 404, description = "Not found\n\n- `not_found`: the tenant has no SAML connection with this id", body = shared::web::openapi::ApiError),
    ))]
pub async fn metadata(
    State(state): State<AppState>,
    Path((tenant_id, connection_id)): Path<(String, String)>,
) -> AppResult<Response> {
    let missing = || AppError::not_found(CONNECTION_RESOURCE);
    let (tenant_id, connection_id) = ids(&tenant_id, &connection_id).ok_or_else(missing)?;
    let lookup = CredentialLookup::named_by_credential(tenant_id);
    let connections = state.store.connections_for_sign_in(&lookup).await?;
    connections.iter().find(|c| c.id == connection_id && c.provider_type == ProviderType::Saml).ok_or_else(missing)?;
    let urls = saml_sp_urls(state.config.require_public_api_url()?, tenant_id, connection_id);
    let encryption = encryption_certificate(&state)?;
    Ok((
        [(header::CONTENT_TYPE, "application/samlmetadata+xml")],
        sp_metadata(&urls.entity_id, &urls.acs_url, encryption.as_deref()),
    )
        .into_response())
}

/// The SP encryption certificate's base64 DER, when the platform has one.
/// A certificate that does not parse or is not the key's is a deployment
/// error: an IdP would encrypt to a key we cannot use.
fn encryption_certificate(state: &AppState) -> AppResult<Option<String>> {
    let (Some(certificate), Some(key)) =
        (state.config.saml_sp_certificate_pem.as_deref(), state.config.saml_sp_private_key_pem.as_deref())
    else {
        return Ok(None);
    };
    if !decrypt::certificate_matches_key(certificate, key) {
        return Err(AppError::internal(anyhow::anyhow!(
            "SAML_SP_CERTIFICATE is not the certificate of SAML_SP_PRIVATE_KEY (or one of them is not PEM)"
        )));
    }
    decrypt::certificate_base64(certificate)
        .map(Some)
        .map_err(|e| AppError::internal(anyhow::anyhow!("SAML_SP_CERTIFICATE: {e}")))
}

/// Escapes text for an XML attribute value.
fn xml_attr(value: &str) -> String {
    quick_xml::escape::escape(value).into_owned()
}

/// The SP's `md:EntityDescriptor`; `encryption_certificate` is the base64
/// DER of the certificate IdPs encrypt assertions to.
pub fn sp_metadata(entity_id: &str, acs_url: &str, encryption_certificate: Option<&str>) -> String {
    // Most preferred first (SAML metadata 2.4.1.1): authenticated
    // encryption, then CBC for the IdPs that have nothing else.
    let key_descriptor = encryption_certificate
        .map(|der| {
            let methods: String = decrypt::CONTENT_ALGORITHMS
                .iter()
                .chain(decrypt::KEY_TRANSPORT_ALGORITHMS.iter())
                .map(|a| format!("\n      <md:EncryptionMethod Algorithm=\"{a}\"/>"))
                .collect();
            format!(
                r#"
    <md:KeyDescriptor use="encryption">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
        <ds:X509Data>
          <ds:X509Certificate>{der}</ds:X509Certificate>
        </ds:X509Data>
      </ds:KeyInfo>{methods}
    </md:KeyDescriptor>"#
            )
        })
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity_id}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{key_descriptor}
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs_url}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity_id = xml_attr(entity_id),
        acs_url = xml_attr(acs_url),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_names_each_bad_field() {
        let form = AcsForm::parse(b"SAMLResponse=PHg%2B&RelayState=abc&Extra=1").expect("form");
        assert_eq!(form.xml().expect("xml"), b"<x>");
        assert_eq!(form.relay_state, "abc");
        let err = AcsForm::parse(b"RelayState=abc").expect_err("missing");
        assert_eq!(err.invalid_fields(), ["SAMLResponse"]);
        let err = AcsForm::parse(b"SAMLResponse=PHg%2B").expect_err("missing");
        assert_eq!(err.invalid_fields(), ["RelayState"]);
        let err = AcsForm::parse(b"SAMLResponse=a&SAMLResponse=b&RelayState=r").expect_err("twice");
        assert_eq!(err.invalid_fields(), ["SAMLResponse"]);
        let bad = AcsForm::parse(b"SAMLResponse=%%%%&RelayState=r").expect("form");
        assert_eq!(bad.xml().expect_err("not base64").invalid_fields(), ["SAMLResponse"]);
    }

    #[test]
    fn the_metadata_names_the_entity_and_the_acs() {
        let xml = sp_metadata("https://api.example.com/m?a=1&b=2", "https://api.example.com/acs", None);
        assert!(xml.contains(r#"entityID="https://api.example.com/m?a=1&amp;b=2""#), "{xml}");
        assert!(xml.contains(r#"Location="https://api.example.com/acs" index="0" isDefault="true""#));
        assert!(xml.contains(r#"WantAssertionsSigned="true""#));
        assert!(xml.contains("nameid-format:emailAddress"));
        assert!(!xml.contains("KeyDescriptor"), "no key, no encryption offered");
    }

    #[test]
    fn the_metadata_publishes_the_encryption_certificate_and_algorithms() {
        let keys = crate::testkit::keys();
        let der = decrypt::certificate_base64(&keys.sp_cert_pem).expect("certificate");
        assert!(decrypt::certificate_matches_key(&keys.sp_cert_pem, &keys.sp_key_pem));
        assert!(!decrypt::certificate_matches_key(&keys.other_cert_pem, &keys.sp_key_pem));
        let xml = sp_metadata("https://api.example.com/m", "https://api.example.com/acs", Some(&der));
        let descriptor = crate::testkit::element(&xml, "<md:KeyDescriptor", "</md:KeyDescriptor>");
        assert!(descriptor.starts_with(r#"<md:KeyDescriptor use="encryption">"#), "{xml}");
        assert!(descriptor.contains(&format!("<ds:X509Certificate>{der}</ds:X509Certificate>")));
        let first = descriptor.find("EncryptionMethod").expect("methods");
        assert!(
            descriptor[first..]
                .starts_with(r#"EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes256-gcm""#)
        );
        assert!(descriptor.contains("xmlenc#rsa-oaep-mgf1p"));
        assert!(!descriptor.contains("rsa-1_5"));
        // Before NameIDFormat, as the schema orders SPSSODescriptor.
        assert!(xml.find("KeyDescriptor").expect("kd") < xml.find("NameIDFormat").expect("nif"));
        // What the metadata publishes is the certificate itself.
        let pem_body: String =
            keys.sp_cert_pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().concat();
        assert_eq!(der, pem_body);
    }
}
