//! A SAML 2.0 identity provider for the tests: its own RSA key and
//! self-signed certificate (the `openssl` CLI), responses built as text,
//! signed (and their assertion encrypted to the SP's metadata certificate)
//! by the `xmlsec1` CLI (an independent C implementation, so our verifier
//! and decrypter are never checked against themselves), and the ACS posted
//! to like a browser carrying an auto-submitted form.
//!
//! Responses are built and broken by splicing strings, never by parsing and
//! rewriting: a rewrite could change prefixes or whitespace, break the
//! exclusive-c14n digest, and make a refusal test pass for the wrong reason.
//! `xmlsec1` is put on PATH by `infra/deps.sh` (the test command runs it).

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::Command,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;
use uuid::Uuid;

use crate::{Reply, app};

pub const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
pub const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
pub const ASSERTION_NODE: &str = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion";
pub const HTTP_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Azure AD's claim URIs, as seed 000's `attribute_mapping` names them.
pub const EMAIL_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const GIVEN_NAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname";
pub const SURNAME_CLAIM: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname";
pub const GROUPS_CLAIM: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";

/// A key pair and a scratch directory, removed when dropped.
pub struct TestIdp {
    pub entity_id: String,
    dir: PathBuf,
}

impl TestIdp {
    /// A new IdP: RSA-2048 key, self-signed certificate valid two days.
    pub fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("saml-idp-{id}"));
        std::fs::create_dir_all(&dir).expect("idp dir");
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=test-idp", "-days", "2"])
            .arg("-keyout")
            .arg(dir.join("idp.key"))
            .arg("-out")
            .arg(dir.join("idp.crt"))
            .output()
            .expect("run openssl (the SAML tests need the openssl CLI)");
        assert!(out.status.success(), "openssl req failed: {}", String::from_utf8_lossy(&out.stderr));
        Self { entity_id: format!("https://idp-{}.example.test/saml", &id[..12]), dir }
    }

    /// The certificate, PEM (what the connection's `x509_certificate` holds).
    pub fn certificate_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("idp.crt")).expect("idp certificate")
    }

    /// A response to `request` with every field right, from this IdP.
    pub fn response(&self, request: &AuthnRequest, name_id: &str) -> ResponseBuilder {
        ResponseBuilder::new(&self.entity_id, request, name_id)
    }

    /// Signs `template` (which holds empty ds:Signature templates) with this
    /// IdP's key; `id_node` names the element type whose `ID` attribute the
    /// reference resolves (an Assertion, or the Response).
    pub fn sign(&self, template: &str, id_node: &str) -> String {
        let name = Uuid::new_v4().simple().to_string();
        let (input, output) = (self.dir.join(format!("{name}.tmpl.xml")), self.dir.join(format!("{name}.xml")));
        std::fs::write(&input, template).expect("write template");
        let out = Command::new("xmlsec1")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", self.dir.join("idp.key").display(), self.dir.join("idp.crt").display()))
            .args(id_attr_args(id_node))
            .arg("--output")
            .arg(&output)
            .arg(&input)
            .output()
            .expect("run xmlsec1 (put it on PATH: eval \"$(infra/deps.sh)\")");
        assert!(out.status.success(), "xmlsec1 --sign failed: {}\n{template}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&output).expect("signed xml")
    }

    /// What a naive verifier says of `xml`: whether `xmlsec1 --verify` with
    /// this IdP's certificate accepts the first signature it finds. The XSW
    /// tests use it to show that their documents still carry a valid
    /// signature, so the ACS refuses them for their structure.
    pub fn naive_verify(&self, xml: &str) -> bool {
        let path = self.dir.join(format!("{}.verify.xml", Uuid::new_v4().simple()));
        std::fs::write(&path, xml).expect("write xml");
        Command::new("xmlsec1")
            .arg("--verify")
            .arg("--pubkey-cert-pem")
            .arg(self.dir.join("idp.crt"))
            .args(id_attr_args(ASSERTION_NODE))
            .args(id_attr_args(&format!("{SAMLP}:Response")))
            .arg(&path)
            .output()
            .expect("run xmlsec1")
            .status
            .success()
    }

    /// Encrypts the `saml:Assertion` of `xml` (already inside its
    /// `saml:EncryptedAssertion`) to `recipient_certificate_pem` with
    /// `xmlsec1 --encrypt`: a fresh AES-256 key for the content, wrapped
    /// with RSA-OAEP (MGF1-SHA1), as IdPs do for an SP's metadata key.
    pub fn encrypt_assertion(&self, xml: &str, recipient_certificate_pem: &str, content: Content) -> String {
        let name = Uuid::new_v4().simple().to_string();
        let path = |suffix: &str| self.dir.join(format!("{name}.{suffix}"));
        let (certificate, template, data, output) =
            (path("recipient.crt"), path("enc.tmpl.xml"), path("plain.xml"), path("encrypted.xml"));
        std::fs::write(&certificate, recipient_certificate_pem).expect("write certificate");
        std::fs::write(&template, encrypted_data_template(content)).expect("write template");
        std::fs::write(&data, xml).expect("write xml");
        let out = Command::new("xmlsec1")
            .arg("--encrypt")
            .arg("--pubkey-cert-pem")
            .arg(&certificate)
            .args(["--session-key", "aes-256", "--xml-data"])
            .arg(&data)
            .args(["--node-name", &format!("{SAML}:Assertion")])
            .arg("--output")
            .arg(&output)
            .arg(&template)
            .output()
            .expect("run xmlsec1 (put it on PATH: eval \"$(infra/deps.sh)\")");
        assert!(out.status.success(), "xmlsec1 --encrypt failed: {}\n{xml}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&output).expect("encrypted xml")
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The content encryption of an `EncryptedAssertion` (the key transport is
/// always RSA-OAEP with MGF1-SHA1, what xmlsec1 1.2 writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Aes256Gcm,
    Aes256Cbc,
}

impl Content {
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::Aes256Gcm => AES256_GCM,
            Self::Aes256Cbc => AES256_CBC,
        }
    }
}

/// What `xmlsec1 --encrypt` fills in: the ciphertext and the wrapped key.
fn encrypted_data_template(content: Content) -> String {
    format!(
        concat!(
            r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{content}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="{transport}"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData>"#,
            r#"</xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"#
        ),
        content = content.algorithm(),
        transport = RSA_OAEP_MGF1P,
    )
}

/// The certificate an SP's metadata publishes for encryption
/// (`md:KeyDescriptor use="encryption"`, base64 DER), as PEM.
pub fn sp_encryption_certificate(metadata_xml: &str) -> String {
    let open = r#"<md:KeyDescriptor use="encryption">"#;
    let start = metadata_xml.find(open).unwrap_or_else(|| panic!("no encryption KeyDescriptor in {metadata_xml}"));
    let descriptor = &metadata_xml[start..];
    let descriptor = &descriptor[..descriptor.find("</md:KeyDescriptor>").expect("KeyDescriptor end")];
    let text = element_text(descriptor, "X509Certificate").expect("ds:X509Certificate in the KeyDescriptor");
    let der = STANDARD
        .decode(text.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .unwrap_or_else(|e| panic!("X509Certificate is not base64 ({e}): {text}"));
    assert_eq!(der.first(), Some(&0x30), "DER: a SEQUENCE");
    let encoded = STANDARD.encode(&der);
    let lines: Vec<&str> =
        encoded.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).expect("base64 is ASCII")).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

impl Default for TestIdp {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir());
    }
}

fn id_attr_args(node: &str) -> [String; 2] {
    ["--id-attr:ID".to_owned(), node.to_owned()]
}

/// What an AuthnRequest (HTTP-Redirect binding) asked, and its RelayState.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    pub id: String,
    pub acs_url: String,
    pub issuer: String,
    pub destination: String,
    pub protocol_binding: String,
    pub relay_state: String,
    /// The inflated XML.
    pub xml: String,
}

/// Reads an `authorization_url`: `SAMLRequest` is base64 of raw-deflated XML.
pub fn parse_authn_request(authorization_url: &str) -> AuthnRequest {
    let url = reqwest::Url::parse(authorization_url).expect("authorization url");
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    let deflated = STANDARD.decode(query.get("SAMLRequest").expect("SAMLRequest in the URL")).expect("base64");
    let mut xml = String::new();
    flate2::read::DeflateDecoder::new(deflated.as_slice()).read_to_string(&mut xml).expect("raw deflate");
    let root = root_tag(&xml);
    assert!(root.contains("AuthnRequest"), "not an AuthnRequest: {xml}");
    AuthnRequest {
        id: attribute(root, "ID").expect("ID"),
        acs_url: attribute(root, "AssertionConsumerServiceURL").expect("AssertionConsumerServiceURL"),
        issuer: element_text(&xml, "Issuer").expect("Issuer"),
        destination: attribute(root, "Destination").expect("Destination"),
        protocol_binding: attribute(root, "ProtocolBinding").unwrap_or_default(),
        relay_state: query.get("RelayState").cloned().expect("RelayState in the URL"),
        xml,
    }
}

/// The first start tag that is not a declaration or comment.
fn root_tag(xml: &str) -> &str {
    let mut rest = xml;
    loop {
        let start = rest.find('<').expect("a root element");
        rest = &rest[start..];
        if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = &rest[1..];
            continue;
        }
        return &rest[..rest.find('>').expect("tag end") + 1];
    }
}

/// An attribute of one start tag (`tag` is the tag's text).
pub fn attribute(tag: &str, name: &str) -> Option<String> {
    for quote in ['"', '\''] {
        let needle = format!(" {name}={quote}");
        let needle_nl = format!("\n{name}={quote}");
        if let Some(at) = tag.find(&needle).or_else(|| tag.find(&needle_nl)) {
            let value = &tag[at + needle.len()..];
            return Some(unescape(&value[..value.find(quote)?]));
        }
    }
    None
}

/// The text of the first element whose local name is `local`, any prefix.
pub fn element_text(xml: &str, local: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = xml[from..].find('<').map(|i| i + from) {
        let name_end = xml[at + 1..].find([' ', '>', '/', '\n', '\t']).map(|i| i + at + 1)?;
        let name = &xml[at + 1..name_end];
        if name.rsplit(':').next() == Some(local) {
            let open_end = xml[at..].find('>')? + at + 1;
            let close = xml[open_end..].find('<')? + open_end;
            return Some(unescape(&xml[open_end..close]));
        }
        from = at + 1;
    }
    None
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn instant(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0).expect("time").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A fresh SAML ID: `_` + 32 hex (an NCName).
pub fn new_id() -> String {
    format!("_{}", Uuid::new_v4().simple())
}

/// A Response to an AuthnRequest: defaults answer it correctly; each setter
/// breaks (or changes) one thing. `xml()` is the template (unsigned),
/// `sign_assertion()` the signed document.
#[derive(Debug, Clone)]
pub struct ResponseBuilder {
    pub response_id: String,
    pub assertion_id: String,
    pub issuer: String,
    pub destination: Option<String>,
    pub in_response_to: String,
    pub subject_in_response_to: String,
    pub recipient: String,
    pub audience: String,
    pub name_id: String,
    pub issue_instant: i64,
    pub not_before: i64,
    pub not_on_or_after: i64,
    pub status: String,
    /// (claim URI, values)
    pub attributes: Vec<(String, Vec<String>)>,
    pub weak: bool,
}

impl ResponseBuilder {
    pub fn new(idp_entity_id: &str, request: &AuthnRequest, name_id: &str) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            response_id: new_id(),
            assertion_id: new_id(),
            issuer: idp_entity_id.to_owned(),
            destination: Some(request.acs_url.clone()),
            in_response_to: request.id.clone(),
            subject_in_response_to: request.id.clone(),
            recipient: request.acs_url.clone(),
            audience: request.issuer.clone(),
            name_id: name_id.to_owned(),
            issue_instant: now,
            not_before: now - 5,
            not_on_or_after: now + 300,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".to_owned(),
            attributes: Vec::new(),
            weak: false,
        }
    }

    /// Seed 000's Azure attributes: email, given name, surname, groups.
    pub fn azure_attributes(mut self, email: &str, first: &str, last: &str, groups: &[&str]) -> Self {
        self.attributes = vec![
            (EMAIL_CLAIM.to_owned(), vec![email.to_owned()]),
            (GIVEN_NAME_CLAIM.to_owned(), vec![first.to_owned()]),
            (SURNAME_CLAIM.to_owned(), vec![last.to_owned()]),
            (GROUPS_CLAIM.to_owned(), groups.iter().map(|g| (*g).to_owned()).collect()),
        ];
        self
    }

    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = issuer.to_owned();
        self
    }
    pub fn audience(mut self, audience: &str) -> Self {
        self.audience = audience.to_owned();
        self
    }
    pub fn destination(mut self, destination: Option<&str>) -> Self {
        self.destination = destination.map(str::to_owned);
        self
    }
    pub fn recipient(mut self, recipient: &str) -> Self {
        self.recipient = recipient.to_owned();
        self
    }
    /// Both the Response's and the SubjectConfirmationData's InResponseTo.
    pub fn in_response_to(mut self, id: &str) -> Self {
        self.in_response_to = id.to_owned();
        self.subject_in_response_to = id.to_owned();
        self
    }
    pub fn assertion_id(mut self, id: &str) -> Self {
        self.assertion_id = id.to_owned();
        self
    }
    pub fn name_id(mut self, name_id: &str) -> Self {
        self.name_id = name_id.to_owned();
        self
    }
    pub fn status(mut self, status: &str) -> Self {
        self.status = status.to_owned();
        self
    }
    /// Issued `seconds_ago`, and valid until `valid_for` after that.
    pub fn issued(mut self, seconds_ago: i64, valid_for: i64) -> Self {
        let now = chrono::Utc::now().timestamp();
        self.issue_instant = now - seconds_ago;
        self.not_before = self.issue_instant - 5;
        self.not_on_or_after = self.issue_instant + valid_for;
        self
    }
    /// Well past NotOnOrAfter (more than any clock skew allows).
    pub fn expired(self) -> Self {
        self.issued(1200, 300)
    }
    /// RSA-SHA1 and a SHA-1 digest: what old IdPs still send.
    pub fn rsa_sha1(mut self) -> Self {
        self.weak = true;
        self
    }

    fn signature_template(&self, reference: &str) -> String {
        let (method, digest) = if self.weak { (RSA_SHA1, SHA1) } else { (RSA_SHA256, SHA256) };
        format!(
            concat!(
                r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>"#,
                r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#,
                r##"<ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="#{reference}"><ds:Transforms>"##,
                r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#,
                r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms>"#,
                r#"<ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue></ds:DigestValue></ds:Reference>"#,
                r#"</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>"#,
                r#"<ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"#
            ),
            method = method,
            digest = digest,
            reference = reference
        )
    }

    /// The Assertion, with a signature template after its Issuer when `signed`.
    pub fn assertion_xml(&self, signed: bool) -> String {
        let signature = if signed { self.signature_template(&self.assertion_id) } else { String::new() };
        let attributes: String = self
            .attributes
            .iter()
            .map(|(name, values)| {
                let values: String = values
                    .iter()
                    .map(|v| format!("<saml:AttributeValue>{}</saml:AttributeValue>", escape(v)))
                    .collect();
                format!(
                    r#"<saml:Attribute Name="{}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">{values}</saml:Attribute>"#,
                    escape(name)
                )
            })
            .collect();
        let attribute_statement = if attributes.is_empty() {
            String::new()
        } else {
            format!("<saml:AttributeStatement>{attributes}</saml:AttributeStatement>")
        };
        format!(
            concat!(
                r#"<saml:Assertion xmlns:saml="{saml}" ID="{id}" Version="2.0" IssueInstant="{issued}">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>{signature}"#,
                r#"<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID>"#,
                r#"<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">"#,
                r#"<saml:SubjectConfirmationData InResponseTo="{subject_irt}" NotOnOrAfter="{not_after}" Recipient="{recipient}"/>"#,
                r#"</saml:SubjectConfirmation></saml:Subject>"#,
                r#"<saml:Conditions NotBefore="{not_before}" NotOnOrAfter="{not_after}">"#,
                r#"<saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>"#,
                r#"<saml:AuthnStatement AuthnInstant="{issued}" SessionIndex="{id}"><saml:AuthnContext>"#,
                r#"<saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>"#,
                r#"</saml:AuthnContext></saml:AuthnStatement>{attribute_statement}</saml:Assertion>"#
            ),
            saml = SAML,
            id = self.assertion_id,
            issued = instant(self.issue_instant),
            issuer = escape(&self.issuer),
            signature = signature,
            name_id = escape(&self.name_id),
            subject_irt = escape(&self.subject_in_response_to),
            not_after = instant(self.not_on_or_after),
            recipient = escape(&self.recipient),
            not_before = instant(self.not_before),
            audience = escape(&self.audience),
            attribute_statement = attribute_statement,
        )
    }

    /// The Response around `assertion` (a signature template after the
    /// Response's Issuer when `signed`).
    fn wrap(&self, assertion: &str, signed: bool) -> String {
        let destination =
            self.destination.as_deref().map(|d| format!(r#" Destination="{}""#, escape(d))).unwrap_or_default();
        let signature = if signed { self.signature_template(&self.response_id) } else { String::new() };
        format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                "\n",
                r#"<samlp:Response xmlns:samlp="{samlp}" xmlns:saml="{saml}" ID="{id}" Version="2.0" IssueInstant="{issued}"{destination} InResponseTo="{irt}">"#,
                r#"<saml:Issuer>{issuer}</saml:Issuer>{signature}"#,
                r#"<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>"#
            ),
            samlp = SAMLP,
            saml = SAML,
            id = self.response_id,
            issued = instant(self.issue_instant),
            destination = destination,
            irt = escape(&self.in_response_to),
            issuer = escape(&self.issuer),
            signature = signature,
            status = escape(&self.status),
            assertion = assertion,
        )
    }

    /// The unsigned Response (no signature at all).
    pub fn xml(&self) -> String {
        self.wrap(&self.assertion_xml(false), false)
    }

    /// The Response with its Assertion signed by `idp`: what Azure AD sends.
    pub fn sign_assertion(&self, idp: &TestIdp) -> String {
        idp.sign(&self.wrap(&self.assertion_xml(true), false), ASSERTION_NODE)
    }

    /// The Response with its Assertion signed by `idp`, then encrypted to
    /// the SP's certificate inside a `saml:EncryptedAssertion` (the
    /// Response itself unsigned): what an IdP sends an SP that asks for
    /// encrypted assertions.
    pub fn sign_and_encrypt_assertion(&self, idp: &TestIdp, sp_certificate_pem: &str, content: Content) -> String {
        let template = self
            .wrap(&format!("<saml:EncryptedAssertion>{}</saml:EncryptedAssertion>", self.assertion_xml(true)), false);
        idp.encrypt_assertion(&idp.sign(&template, ASSERTION_NODE), sp_certificate_pem, content)
    }

    /// The Response signed (by `idp`) as a whole, its Assertion unsigned:
    /// the signature covers the assertion, so it is accepted too.
    pub fn sign_response(&self, idp: &TestIdp) -> String {
        idp.sign(&self.wrap(&self.assertion_xml(false), true), &format!("{SAMLP}:Response"))
    }
}

/// What a form post carries.
pub fn base64(xml: &str) -> String {
    STANDARD.encode(xml.as_bytes())
}

/// XSW3: an evil, unsigned copy of the signed assertion (new ID, NameID
/// `evil_name_id`) inserted before the signed one.
pub fn xsw3(signed: &str, evil_name_id: &str) -> String {
    let (start, end) = assertion_span(signed);
    let evil = evil_copy(&signed[start..end], evil_name_id);
    format!("{}{evil}{}", &signed[..start], &signed[start..])
}

/// XSW4: an evil, unsigned assertion with the signed original moved inside it.
pub fn xsw4(signed: &str, evil_name_id: &str) -> String {
    let (start, end) = assertion_span(signed);
    let original = &signed[start..end];
    let evil = evil_copy(original, evil_name_id);
    let close = "</saml:Assertion>";
    let evil_open = &evil[..evil.len() - close.len()];
    format!("{}{evil_open}{original}{close}{}", &signed[..start], &signed[end..])
}

/// Where the (first) Assertion element starts and ends in a document.
pub fn assertion_span(xml: &str) -> (usize, usize) {
    let start = xml.find("<saml:Assertion").expect("an assertion");
    let close = "</saml:Assertion>";
    let end = xml.rfind(close).expect("assertion end") + close.len();
    (start, end)
}

/// A copy of `assertion` with its signature removed, a new ID and another NameID.
fn evil_copy(assertion: &str, evil_name_id: &str) -> String {
    let mut evil = assertion.to_owned();
    if let (Some(s), Some(e)) = (evil.find("<ds:Signature"), evil.find("</ds:Signature>")) {
        evil.replace_range(s..e + "</ds:Signature>".len(), "");
    }
    let id = attribute(root_tag(&evil), "ID").expect("assertion ID");
    let evil = evil.replacen(&format!(r#"ID="{id}""#), &format!(r#"ID="{}""#, new_id()), 1);
    let name_start = evil.find("<saml:NameID").expect("NameID");
    let value_start = evil[name_start..].find('>').expect("NameID tag") + name_start + 1;
    let value_end = evil[value_start..].find('<').expect("NameID end") + value_start;
    format!("{}{}{}", &evil[..value_start], escape(evil_name_id), &evil[value_end..])
}

/// Replaces the NameID's text in a (signed) document: tampering after signing.
pub fn tamper_name_id(xml: &str, name_id: &str) -> String {
    let name_start = xml.find("<saml:NameID").expect("NameID");
    let value_start = xml[name_start..].find('>').expect("NameID tag") + name_start + 1;
    let value_end = xml[value_start..].find('<').expect("NameID end") + value_start;
    format!("{}{}{}", &xml[..value_start], escape(name_id), &xml[value_end..])
}

/// Inserts an empty comment into the NameID's text after its first
/// `prefix_len` bytes: exclusive c14n drops comments, so the signature
/// still verifies, and a reader that takes only the first text node reads
/// a truncated subject (CVE-2017-11427 and its family).
pub fn comment_in_name_id(xml: &str, prefix_len: usize) -> String {
    let name_start = xml.find("<saml:NameID").expect("NameID");
    let value_start = xml[name_start..].find('>').expect("NameID tag") + name_start + 1;
    let at = value_start + prefix_len;
    format!("{}<!---->{}", &xml[..at], &xml[at..])
}

/// The test server's URL for an SP URL: the same path and query there, so
/// the tests hold whatever `PUBLIC_API_URL` names.
fn local_url(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).expect("an SP URL");
    let path = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_owned(),
    };
    format!("{}{path}", app().base_url)
}

/// What the IdP's auto-submitted form does: POST `SAMLResponse` and
/// `RelayState` (form-urlencoded) to the ACS; redirects are not followed.
pub async fn post_acs(acs_url: &str, saml_response_b64: &str, relay_state: &str) -> Reply {
    post_form(acs_url, &[("SAMLResponse", saml_response_b64), ("RelayState", relay_state)]).await
}

/// A form post of any fields to an SP URL (a missing or extra field).
pub async fn post_form(url: &str, fields: &[(&str, &str)]) -> Reply {
    let response = crate::no_redirect_client().post(local_url(url)).form(fields).send().await.expect("ACS request");
    reply(response).await
}

/// A GET of an SP URL that answers text (metadata): status, content type, body.
pub async fn get_text(url: &str) -> (u16, String, String) {
    let response = crate::no_redirect_client().get(local_url(url)).send().await.expect("request");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.text().await.expect("body"))
}

async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    Reply { status, headers, body }
}

/// The `Location` of a reply, if any.
pub fn location(reply: &Reply) -> Option<String> {
    reply.headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
}
