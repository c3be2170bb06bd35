//! The SAML 2.0 side of an SSO sign-in that needs no XML security: the
//! AuthnRequest (HTTP-Redirect binding) and the callback's check of the
//! code the ACS gave the browser.
//!
//! Verifying a response needs libxmlsec1, so it lives in its own function
//! (`functions/saml`: the ACS and the SP metadata); this one stays free of
//! C libraries. The ACS records the verified claims on the sign-in state
//! with the hash of a one-time code and sends the browser to the app's
//! `redirect_uri` with that code; the app then calls the same callback as
//! for OIDC with the code and its `state`.

use std::io::Write;

use base64::{Engine, engine::general_purpose::STANDARD};
use flate2::{Compression, write::DeflateEncoder};
use shared::{
    AppError, AppResult,
    domain::sso::{Connection, SamlRelay},
    outbound::url_with_query,
};
use uuid::Uuid;

/// The AuthnRequest ID: `_` and 128 random bits (an xsd:ID must not start
/// with a digit; samael's own ids carry 32 bits only).
pub fn new_request_id() -> String {
    format!("_{}", Uuid::new_v4().simple())
}

/// XML-escapes an attribute value (the URLs we put in come from our
/// configuration and the admin's connection).
fn escape(value: &str) -> String {
    value.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The unsigned AuthnRequest (SAML core 3.4.1) asking for a response to
/// the connection's ACS, over HTTP-POST.
pub fn authn_request_xml(
    request_id: &str,
    issue_instant: &str,
    destination: &str,
    acs_url: &str,
    sp_entity_id: &str,
) -> String {
    format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{instant}" Destination="{destination}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{issuer}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified" AllowCreate="true"/></samlp:AuthnRequest>"#,
        id = escape(request_id),
        instant = escape(issue_instant),
        destination = escape(destination),
        acs = escape(acs_url),
        issuer = escape(sp_entity_id),
    )
}

/// The IdP's single sign-on URL with `SAMLRequest` (raw DEFLATE, base64:
/// SAML bindings 3.4.4.1) and `RelayState`.
pub fn redirect_url(connection: &Connection, xml: &str, relay: &SamlRelay) -> AppResult<String> {
    let sso_url = connection
        .configuration
        .sso_url
        .as_deref()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("a SAML connection without sso_url")))?;
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(xml.as_bytes()).map_err(AppError::internal)?;
    let deflated = encoder.finish().map_err(AppError::internal)?;
    let request = STANDARD.encode(deflated);
    let relay = relay.encode();
    url_with_query(sso_url, &[("SAMLRequest", request.as_str()), ("RelayState", relay.as_str())])
        .map_err(|e| AppError::internal(anyhow::anyhow!("the connection's sso_url: {e}")))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use flate2::read::DeflateDecoder;

    use super::*;

    #[test]
    fn the_request_id_is_an_xml_id_with_128_random_bits() {
        let id = new_request_id();
        assert!(id.starts_with('_') && id.len() == 33, "{id}");
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn the_authn_request_names_the_acs_and_escapes_what_it_is_given() {
        let xml = authn_request_xml(
            "_1",
            "2026-01-01T00:00:00Z",
            "https://idp/sso?a=1&b=2",
            "https://api/acs",
            "https://api/md",
        );
        assert!(xml.contains(r#"Destination="https://idp/sso?a=1&amp;b=2""#), "{xml}");
        assert!(xml.contains(r#"AssertionConsumerServiceURL="https://api/acs""#));
        assert!(xml.contains("<saml:Issuer>https://api/md</saml:Issuer>"));
        // What an IdP does with SAMLRequest: base64, then raw inflate.
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(xml.as_bytes()).expect("deflate");
        let mut back = String::new();
        DeflateDecoder::new(encoder.finish().expect("finish").as_slice()).read_to_string(&mut back).expect("inflate");
        assert_eq!(back, xml);
    }
}
