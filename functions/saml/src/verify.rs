//! A SAMLResponse (HTTP-POST binding, already base64-decoded) verified
//! against one connection: [`verify_response`]. Pure: no I/O, the clock is
//! [`Expected::now`].
//!
//! Order, each step refusing with a [`Refusal`]:
//! 1. size, UTF-8, well-formedness and the structural pre-check ([`scan`],
//!    quick-xml, before any crypto): one `samlp:Response` (the root), one
//!    `Assertion` or `EncryptedAssertion` in the whole document as its
//!    direct child, `ds:Signature` only directly in the Response or the
//!    Assertion, each with one `Reference` to its own parent, exc-c14n and
//!    enveloped-signature only, allowed algorithms; no DOCTYPE, comment,
//!    processing instruction or CDATA (c14n drops comments, so
//!    `alice@corp.example<!---->.evil.example` would keep its signature and
//!    a text reader might keep half the NameID);
//! 2. the signature(s), by samael over libxmlsec1 with the connection's
//!    certificate only (`KeyInfo` is never read), and the document reduced
//!    to what the signatures really covered: the assertion read afterwards
//!    is the signed one, whatever an attacker wrapped around it;
//!    An `EncryptedAssertion` is decrypted with the SP's key
//!    ([`crate::decrypt`]) and its plaintext spliced in its place; see
//!    [`encrypted_assertion`] for which signature is checked when;
//! 3. the SAML checks on the reduced assertion (issuer, audience,
//!    recipient, InResponseTo, validity windows with [`CLOCK_SKEW_SECONDS`]).
//!
//! samael's own `ServiceProvider::parse_xml_response` is not used: it
//! skips verification when it has no certificate, accepts any algorithm by
//! default, accepts an assertion without `AudienceRestriction`, reads the
//! system clock and reports one opaque error.

use chrono::{DateTime, Utc};
use quick_xml::{
    NsReader,
    events::{BytesStart, Event},
    name::ResolveResult,
};
use samael::{
    attribute::Attribute,
    crypto::{AllowedSignatureAlgorithm, CertificateDer, Crypto, CryptoProvider, ReduceMode, decode_x509_cert},
    schema::{Assertion, Response},
};
use shared::domain::sso::{AttributeMapping, VerifiedClaims};

use crate::decrypt;

/// The largest SAMLResponse XML accepted (base64 makes the form field 4/3 of it).
pub const MAX_XML_BYTES: usize = 256 * 1024;
/// Clock skew allowed on every SAML time, seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 180;

const NS_PROTOCOL: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";
const NS_ASSERTION: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
const NS_DSIG: &[u8] = b"http://www.w3.org/2000/09/xmldsig#";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// What the signatures may use (SHA-1 and DSA are out).
const ALLOWED: [AllowedSignatureAlgorithm; 4] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
];
const ALLOWED_DIGESTS: [&str; 3] = [
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
];

/// What a response must match: the connection and the sign-in it answers.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The IdP's entity id (`configuration.entity_id`): the assertion's Issuer.
    pub idp_entity_id: &'a str,
    /// The IdP's signing certificate (PEM); the only key trusted.
    pub idp_certificate_pem: &'a str,
    /// Our entity id: the Audience.
    pub sp_entity_id: &'a str,
    /// Our ACS URL: the Destination and the bearer Recipient.
    pub acs_url: &'a str,
    /// The AuthnRequest's ID: InResponseTo.
    pub request_id: &'a str,
    pub require_encrypted: bool,
    /// The SP's RSA private key (PEM) that IdPs encrypt assertions to;
    /// without it an `EncryptedAssertion` is refused
    /// ([`Refusal::EncryptedUnsupported`]).
    pub sp_decryption_key_pem: Option<&'a str>,
    pub attribute_mapping: &'a AttributeMapping,
    /// Seconds since the epoch.
    pub now: i64,
}

/// A verified assertion: who it names, and what makes it single-use.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAssertion {
    pub claims: VerifiedClaims,
    pub assertion_id: String,
    /// Seconds since the epoch: the earlier of the bearer confirmation's and
    /// the Conditions' NotOnOrAfter.
    pub not_on_or_after: i64,
}

/// Why a response was refused: the `details.reason` of the 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Too large, not UTF-8, not well-formed XML, or not SAML we can read.
    Malformed,
    /// The structural pre-check failed (a wrapping attack's shape, a
    /// DOCTYPE, a comment, a signature elsewhere or over something else).
    Structure,
    /// No valid signature of the connection's certificate covers the assertion.
    BadSignature,
    /// A signature or digest algorithm outside RSA-SHA256/384/512,
    /// ECDSA-SHA256, or an encryption algorithm outside RSA-OAEP + AES-CBC/GCM
    /// (RSA PKCS#1 v1.5 key transport above all).
    WeakAlgorithm,
    WrongIssuer,
    WrongDestination,
    /// No AudienceRestriction, or one that does not name us.
    WrongAudience,
    WrongRecipient,
    /// InResponseTo missing (IdP-initiated) or not our request's ID.
    InResponseToMismatch,
    Expired,
    NotYetValid,
    StatusNotSuccess,
    EncryptionRequired,
    /// An `EncryptedAssertion`, and no SP decryption key is configured.
    EncryptedUnsupported,
    /// The `EncryptedAssertion` does not decrypt with the SP's key (another
    /// key, a damaged ciphertext). Also every refusal before a signature
    /// verified when the ciphertext was not authenticated (CBC under an
    /// unsigned Response): telling them apart would be a decryption oracle.
    DecryptionFailed,
    /// No NameID, or no bearer SubjectConfirmation.
    MissingSubject,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Structure => "structure",
            Self::BadSignature => "bad_signature",
            Self::WeakAlgorithm => "weak_algorithm",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongDestination => "wrong_destination",
            Self::WrongAudience => "wrong_audience",
            Self::WrongRecipient => "wrong_recipient",
            Self::InResponseToMismatch => "in_response_to_mismatch",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::StatusNotSuccess => "status_not_success",
            Self::EncryptionRequired => "encryption_required",
            Self::EncryptedUnsupported => "encrypted_unsupported",
            Self::DecryptionFailed => "decryption_failed",
            Self::MissingSubject => "missing_subject",
        }
    }

    /// The answer's message.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => "the SAML response is not a SAML response we can read",
            Self::Structure => {
                "the SAML response's structure is not allowed (one assertion, signatures only on the response or the assertion)"
            }
            Self::BadSignature => "no valid signature of the connection's certificate covers the SAML assertion",
            Self::WeakAlgorithm => {
                "the SAML response uses an algorithm that is not allowed (sign with RSA-SHA256 or stronger; encrypt with RSA-OAEP and AES-CBC or AES-GCM)"
            }
            Self::WrongIssuer => "the SAML assertion's issuer is not the connection's IdP entity id",
            Self::WrongDestination => "the SAML response's Destination is not this assertion consumer service",
            Self::WrongAudience => "the SAML assertion is not restricted to this service provider's entity id",
            Self::WrongRecipient => "the SAML assertion's bearer Recipient is not this assertion consumer service",
            Self::InResponseToMismatch => {
                "the SAML response does not answer this sign-in's request (IdP-initiated sign-in is not accepted)"
            }
            Self::Expired => "the SAML assertion has expired",
            Self::NotYetValid => "the SAML assertion is not valid yet",
            Self::StatusNotSuccess => "the identity provider did not sign the user in",
            Self::EncryptionRequired => "the connection requires encrypted SAML assertions",
            Self::EncryptedUnsupported => {
                "encrypted SAML assertions cannot be read: this service provider has no decryption key configured"
            }
            Self::DecryptionFailed => {
                "the encrypted SAML assertion could not be decrypted with this service provider's key (see its metadata)"
            }
            Self::MissingSubject => "the SAML assertion names no subject",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Verifies `xml` (the decoded SAMLResponse) against `expected`.
pub fn verify_response(xml: &[u8], expected: &Expected<'_>) -> Result<VerifiedAssertion, Refusal> {
    if xml.len() > MAX_XML_BYTES {
        return Err(Refusal::Malformed);
    }
    let text = std::str::from_utf8(xml).map_err(|_| Refusal::Malformed)?;
    let shape = scan(text)?;
    // An IdP's error answer carries no assertion: its status says more
    // than the structure rule it breaks.
    if shape.status.as_deref().is_some_and(|s| s != STATUS_SUCCESS) {
        return Err(Refusal::StatusNotSuccess);
    }
    if let Some(violation) = shape.violation {
        return Err(violation);
    }
    if shape.status.is_none() {
        return Err(Refusal::Structure);
    }
    if shape.encrypted {
        let key_pem = expected.sp_decryption_key_pem.ok_or(Refusal::EncryptedUnsupported)?;
        let (signed_response, assertion) = encrypted_assertion(text, &shape, key_pem, expected)?;
        check_response(&shape, signed_response.as_ref(), expected)?;
        return check_assertion(&assertion, expected);
    }
    if expected.require_encrypted {
        return Err(Refusal::EncryptionRequired);
    }
    if !shape.response_signed && !shape.assertion_signed {
        return Err(Refusal::BadSignature);
    }
    let cert = certificate_der(expected.idp_certificate_pem).ok_or(Refusal::BadSignature)?;
    let reduced = reduce(text, cert)?;
    // The reduced document holds only what a verified signature covered:
    // the Response (its signature covers the assertion inside) or the
    // Assertion itself.
    let (signed_response, assertion) = match root_local_name(&reduced) {
        Some("Response") => {
            let response: Response = reduced.parse().map_err(|_| Refusal::Malformed)?;
            let assertion = response.assertion.clone().ok_or(Refusal::BadSignature)?;
            (Some(response), assertion)
        }
        Some("Assertion") => (None, reduced.parse::<Assertion>().map_err(|_| Refusal::Malformed)?),
        _ => return Err(Refusal::BadSignature),
    };
    if shape.assertion_id.as_deref() != Some(assertion.id.as_str()) {
        return Err(Refusal::BadSignature);
    }
    check_response(&shape, signed_response.as_ref(), expected)?;
    check_assertion(&assertion, expected)
}

/// Verifies every signature in `xml` with the IdP's certificate only and
/// keeps what they covered (module docs, step 2).
fn reduce(xml: &str, cert: CertificateDer) -> Result<String, Refusal> {
    Crypto::reduce_xml_to_signed_with_allowed_algorithms(
        xml,
        &[cert],
        ReduceMode::ValidateAndMarkNoAncestors,
        Some(&ALLOWED),
    )
    .map_err(|_| Refusal::BadSignature)
}

/// The assertion inside the `EncryptedAssertion`, decrypted and covered by
/// a signature, with the signed Response when the Response is signed.
///
/// A Response signature covers the ciphertext, not the plaintext, so it is
/// verified first, on the document as received; the assertion it then
/// yields is the one it covered, signed or not. An assertion's own
/// signature covers the plaintext, so it is verified after the plaintext
/// replaced the `EncryptedAssertion` (in the original bytes: the
/// Response's namespace declarations apply to it, as they did when the IdP
/// signed it), and the Response's signature, which no longer holds there,
/// removed.
fn encrypted_assertion(
    text: &str,
    shape: &Shape,
    key_pem: &str,
    expected: &Expected<'_>,
) -> Result<(Option<Response>, Assertion), Refusal> {
    let Some(key) = decrypt::private_key(key_pem) else {
        tracing::error!("SAML_SP_PRIVATE_KEY is not an RSA private key in PEM: encrypted assertions cannot be read");
        return Err(Refusal::EncryptedUnsupported);
    };
    let cert = certificate_der(expected.idp_certificate_pem).ok_or(Refusal::BadSignature)?;
    if shape.response_signed && root_local_name(&reduce(text, cert.clone())?) != Some("Response") {
        return Err(Refusal::BadSignature);
    }
    let located = decrypt::locate(text)?;
    let decrypted = decrypt::decrypt(&located, &key)?;
    // CBC under an unsigned Response: anyone may send us altered
    // ciphertext, and whether its plaintext parsed would leak it block by
    // block (Jager and Somorovsky, "How to break XML Encryption", 2011).
    // Until a signature holds, every refusal reads the same.
    let oracle_safe = shape.response_signed || decrypted.authenticated;
    let opaque = |refusal: Refusal| if oracle_safe { refusal } else { Refusal::DecryptionFailed };
    decrypt::check_single_assertion(&decrypted.plaintext).map_err(opaque)?;
    let spliced = decrypt::splice(text, &located, &decrypted.plaintext, shape.response_signed)
        .ok_or(Refusal::Malformed)
        .map_err(opaque)?;
    let inner = scan(&spliced).map_err(opaque)?;
    if let Some(violation) = inner.violation {
        return Err(opaque(violation));
    }
    if inner.encrypted || inner.response_signed {
        return Err(opaque(Refusal::Structure));
    }
    let signed_response =
        if shape.response_signed { Some(spliced.parse::<Response>().map_err(|_| Refusal::Malformed)?) } else { None };
    let assertion = if inner.assertion_signed {
        let reduced = reduce(&spliced, cert).map_err(opaque)?;
        if root_local_name(&reduced) != Some("Assertion") {
            return Err(opaque(Refusal::BadSignature));
        }
        reduced.parse::<Assertion>().map_err(|_| opaque(Refusal::Malformed))?
    } else {
        // Neither signed: nothing vouches for it.
        let response = signed_response.as_ref().ok_or(Refusal::BadSignature).map_err(opaque)?;
        response.assertion.clone().ok_or(Refusal::Malformed)?
    };
    if inner.assertion_id.as_deref() != Some(assertion.id.as_str()) {
        return Err(opaque(Refusal::BadSignature));
    }
    Ok((signed_response, assertion))
}

/// The Response's own fields. Unless the Response is signed they are the
/// IdP's unsigned word, checked anyway: the assertion's signed ones decide.
fn check_response(shape: &Shape, signed: Option<&Response>, expected: &Expected<'_>) -> Result<(), Refusal> {
    let (issuer, destination, in_response_to) = match signed {
        Some(r) => (r.issuer.as_ref().and_then(|i| i.value.clone()), r.destination.clone(), r.in_response_to.clone()),
        None => (shape.response_issuer.clone(), shape.destination.clone(), shape.in_response_to.clone()),
    };
    if issuer.is_some_and(|i| i.trim() != expected.idp_entity_id) {
        return Err(Refusal::WrongIssuer);
    }
    if destination.is_some_and(|d| d != expected.acs_url) {
        return Err(Refusal::WrongDestination);
    }
    if in_response_to.as_deref() != Some(expected.request_id) {
        return Err(Refusal::InResponseToMismatch);
    }
    Ok(())
}

fn check_assertion(assertion: &Assertion, expected: &Expected<'_>) -> Result<VerifiedAssertion, Refusal> {
    let now = expected.now;
    let issuer = assertion.issuer.value.as_deref().map(str::trim).unwrap_or_default();
    if issuer != expected.idp_entity_id {
        return Err(Refusal::WrongIssuer);
    }
    let conditions = assertion.conditions.as_ref().ok_or(Refusal::WrongAudience)?;
    if conditions.not_before.is_some_and(|t| now + CLOCK_SKEW_SECONDS < t.timestamp()) {
        return Err(Refusal::NotYetValid);
    }
    if conditions.not_on_or_after.is_some_and(|t| now >= t.timestamp() + CLOCK_SKEW_SECONDS) {
        return Err(Refusal::Expired);
    }
    // Every AudienceRestriction must name us (SAML core 2.5.1.4).
    let restrictions = conditions.audience_restrictions.as_deref().unwrap_or_default();
    if restrictions.is_empty()
        || !restrictions.iter().all(|r| r.audience.iter().any(|a| a.trim() == expected.sp_entity_id))
    {
        return Err(Refusal::WrongAudience);
    }
    let subject = assertion.subject.as_ref().ok_or(Refusal::MissingSubject)?;
    let name_id = subject.name_id.as_ref().map(|n| n.value.trim()).filter(|v| !v.is_empty());
    let name_id = name_id.ok_or(Refusal::MissingSubject)?.to_owned();
    let bearer_until = bearer_confirmation(subject.subject_confirmations.as_deref().unwrap_or_default(), expected)?;
    let not_on_or_after = conditions.not_on_or_after.map_or(bearer_until, |t| t.timestamp().min(bearer_until));
    Ok(VerifiedAssertion {
        claims: claims(issuer, name_id, assertion, expected.attribute_mapping),
        assertion_id: assertion.id.clone(),
        not_on_or_after,
    })
}

/// A bearer SubjectConfirmation that holds (SAML profiles 4.1.4.2):
/// Recipient, NotOnOrAfter (required) and InResponseTo. Its NotOnOrAfter,
/// or the first failure's reason.
fn bearer_confirmation(
    confirmations: &[samael::schema::SubjectConfirmation],
    expected: &Expected<'_>,
) -> Result<i64, Refusal> {
    let now = expected.now;
    let mut first_error = None;
    for confirmation in confirmations.iter().filter(|c| c.method.as_deref() == Some(BEARER)) {
        let Some(data) = &confirmation.subject_confirmation_data else {
            first_error.get_or_insert(Refusal::MissingSubject);
            continue;
        };
        let refusal = if data.recipient.as_deref() != Some(expected.acs_url) {
            Refusal::WrongRecipient
        } else if data.in_response_to.as_deref() != Some(expected.request_id) {
            Refusal::InResponseToMismatch
        } else if data.not_before.is_some_and(|t| now + CLOCK_SKEW_SECONDS < t.timestamp()) {
            Refusal::NotYetValid
        } else {
            match data.not_on_or_after.map(|t: DateTime<Utc>| t.timestamp()) {
                Some(until) if now < until + CLOCK_SKEW_SECONDS => return Ok(until),
                _ => Refusal::Expired,
            }
        };
        first_error.get_or_insert(refusal);
    }
    Err(first_error.unwrap_or(Refusal::MissingSubject))
}

/// Attribute names IdPs commonly use when the mapping names none.
const EMAIL_NAMES: [&str; 5] = [
    "email",
    "mail",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
];
const FIRST_NAME_NAMES: [&str; 5] = [
    "firstName",
    "givenName",
    "given_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "urn:oid:2.5.4.42",
];
const LAST_NAME_NAMES: [&str; 6] = [
    "lastName",
    "surname",
    "sn",
    "family_name",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "urn:oid:2.5.4.4",
];
const GROUP_NAMES: [&str; 3] = ["groups", "memberOf", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"];

/// The claims the assertion gives, by the connection's attribute mapping
/// (an attribute matches by `Name` or `FriendlyName`).
fn claims(issuer: &str, name_id: String, assertion: &Assertion, mapping: &AttributeMapping) -> VerifiedClaims {
    let attributes: Vec<&Attribute> =
        assertion.attribute_statements.iter().flatten().flat_map(|s| s.attributes.iter()).collect();
    let values = |mapped: &Option<String>, standard: &[&str]| -> Vec<String> {
        let wanted: Vec<&str> = match mapped {
            Some(name) => vec![name.as_str()],
            None => standard.to_vec(),
        };
        for name in wanted {
            let found: Vec<String> = attributes
                .iter()
                .filter(|a| a.name.as_deref() == Some(name) || a.friendly_name.as_deref() == Some(name))
                .flat_map(|a| a.values.iter().filter_map(|v| v.value.as_deref()))
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        Vec::new()
    };
    let first = |mapped: &Option<String>, standard: &[&str]| values(mapped, standard).into_iter().next();
    let looks_like_email = |v: &str| v.contains('@') && !v.chars().any(char::is_whitespace);
    let email = first(&mapping.email, &EMAIL_NAMES)
        .or_else(|| looks_like_email(&name_id).then(|| name_id.clone()))
        .map(|e| e.to_ascii_lowercase());
    VerifiedClaims {
        issuer: issuer.to_owned(),
        subject: name_id,
        email,
        // A signed assertion of the tenant's own IdP vouches for the
        // address; linking still needs the connection's domains.
        email_verified: Some(true),
        first_name: first(&mapping.first_name, &FIRST_NAME_NAMES),
        last_name: first(&mapping.last_name, &LAST_NAME_NAMES),
        groups: values(&mapping.groups, &GROUP_NAMES),
        hd: None,
    }
}

/// PEM (or bare base64) certificate to DER.
fn certificate_der(pem: &str) -> Option<CertificateDer> {
    let body: String = pem.lines().filter(|l| !l.trim_start().starts_with("-----")).collect();
    let der = decode_x509_cert(&body).ok()?;
    (!der.der_data().is_empty()).then_some(der)
}

/// The local name of the document element (`Assertion` for `<saml:Assertion ...>`).
fn root_local_name(xml: &str) -> Option<&str> {
    let mut rest = xml;
    loop {
        let i = rest.find('<')?;
        rest = &rest[i + 1..];
        if !rest.starts_with('?') && !rest.starts_with('!') {
            let end = rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
            let qname = &rest[..end];
            return Some(qname.rsplit(':').next().unwrap_or(qname));
        }
    }
}

/// What the pre-check saw of the document.
#[derive(Debug, Default)]
struct Shape {
    response_issuer: Option<String>,
    destination: Option<String>,
    in_response_to: Option<String>,
    /// The top-level StatusCode's Value.
    status: Option<String>,
    assertion_id: Option<String>,
    encrypted: bool,
    response_signed: bool,
    assertion_signed: bool,
    /// The first rule broken (scanning goes on to read the status).
    violation: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Response,
    Assertion,
    EncryptedAssertion,
    Signature,
    SignedInfo,
    Reference,
    Transforms,
    Status,
    Other,
}

#[derive(Debug)]
struct Frame {
    kind: Kind,
    id: Option<String>,
}

/// The signature being read: where it sits and what it says.
#[derive(Debug)]
struct SignatureScan {
    depth: usize,
    parent_id: Option<String>,
    signed_infos: usize,
    references: usize,
}

fn attribute(start: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, Refusal> {
    for attr in start.attributes() {
        let attr = attr.map_err(|_| Refusal::Malformed)?;
        if attr.key.as_ref() == name {
            let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|_| Refusal::Malformed)?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// The structural pre-check (module docs, step 1): well-formedness
/// failures are [`Refusal::Malformed`]; everything else is recorded in
/// [`Shape::violation`].
fn scan(xml: &str) -> Result<Shape, Refusal> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut shape = Shape::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut signature: Option<SignatureScan> = None;
    let mut ids = std::collections::HashSet::new();
    let (mut responses, mut assertions, mut roots) = (0usize, 0usize, 0usize);
    let mut issuer_text: Option<String> = None;
    let violate = |shape: &mut Shape, refusal: Refusal| {
        shape.violation.get_or_insert(refusal);
    };
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|_| Refusal::Malformed)?;
        let namespace = match ns {
            ResolveResult::Bound(n) => Some(n.into_inner().to_vec()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(_) => return Err(Refusal::Malformed),
        };
        match event {
            Event::Start(start) => {
                if stack.is_empty() {
                    roots += 1;
                }
                let local = start.local_name().as_ref().to_vec();
                let kind = match (namespace.as_deref(), local.as_slice()) {
                    (Some(NS_PROTOCOL), b"Response") => Kind::Response,
                    (Some(NS_ASSERTION), b"Assertion") => Kind::Assertion,
                    (Some(NS_ASSERTION), b"EncryptedAssertion") => Kind::EncryptedAssertion,
                    (Some(NS_DSIG), b"Signature") => Kind::Signature,
                    (Some(NS_DSIG), b"SignedInfo") => Kind::SignedInfo,
                    (Some(NS_DSIG), b"Reference") => Kind::Reference,
                    (Some(NS_DSIG), b"Transforms") => Kind::Transforms,
                    (Some(NS_PROTOCOL), b"Status") => Kind::Status,
                    _ => Kind::Other,
                };
                let id = attribute(&start, b"ID")?;
                if let Some(id) = &id
                    && !ids.insert(id.clone())
                {
                    violate(&mut shape, Refusal::Structure);
                }
                let depth = stack.len();
                let parent = stack.last().map(|f| f.kind);
                match kind {
                    Kind::Response => {
                        responses += 1;
                        if depth != 0 {
                            violate(&mut shape, Refusal::Structure);
                        } else {
                            shape.destination = attribute(&start, b"Destination")?;
                            shape.in_response_to = attribute(&start, b"InResponseTo")?;
                        }
                    }
                    Kind::Assertion | Kind::EncryptedAssertion => {
                        assertions += 1;
                        if depth != 1 || parent != Some(Kind::Response) {
                            violate(&mut shape, Refusal::Structure);
                        }
                        shape.encrypted = kind == Kind::EncryptedAssertion;
                        shape.assertion_id = id.clone();
                    }
                    Kind::Signature => {
                        let parent_frame = stack.last();
                        let allowed_place = match parent_frame.map(|f| f.kind) {
                            Some(Kind::Response) => depth == 1,
                            Some(Kind::Assertion) => depth == 2,
                            _ => false,
                        };
                        let already = match parent {
                            Some(Kind::Response) => shape.response_signed,
                            Some(Kind::Assertion) => shape.assertion_signed,
                            _ => false,
                        };
                        if !allowed_place || already || signature.is_some() {
                            violate(&mut shape, Refusal::Structure);
                        }
                        match parent {
                            Some(Kind::Response) => shape.response_signed = true,
                            Some(Kind::Assertion) => shape.assertion_signed = true,
                            _ => {}
                        }
                        signature = Some(SignatureScan {
                            depth,
                            parent_id: parent_frame.and_then(|f| f.id.clone()),
                            signed_infos: 0,
                            references: 0,
                        });
                    }
                    _ => {}
                }
                if let Some(sig) = signature.as_mut()
                    && kind != Kind::Signature
                {
                    let in_signature = depth - sig.depth;
                    let dsig = namespace.as_deref() == Some(NS_DSIG);
                    let name = local.as_slice();
                    let ok = match (in_signature, parent) {
                        // Direct children: no ds:Object (XSW8 hides the original there).
                        (1, _) => dsig && matches!(name, b"SignedInfo" | b"SignatureValue" | b"KeyInfo"),
                        (_, Some(Kind::SignedInfo)) => {
                            if kind == Kind::Reference {
                                sig.references += 1;
                                let uri = attribute(&start, b"URI")?;
                                let own = sig.parent_id.as_ref().map(|id| format!("#{id}"));
                                uri.is_some() && uri == own
                            } else if dsig && name == b"CanonicalizationMethod" {
                                attribute(&start, b"Algorithm")?.as_deref() == Some(EXC_C14N)
                            } else if dsig && name == b"SignatureMethod" {
                                let algorithm = attribute(&start, b"Algorithm")?.unwrap_or_default();
                                if !ALLOWED.iter().any(|a| a.signature_uri() == algorithm) {
                                    violate(&mut shape, Refusal::WeakAlgorithm);
                                }
                                true
                            } else {
                                false
                            }
                        }
                        (_, Some(Kind::Reference)) => {
                            if dsig && name == b"DigestMethod" {
                                let algorithm = attribute(&start, b"Algorithm")?.unwrap_or_default();
                                if !ALLOWED_DIGESTS.contains(&algorithm.as_str()) {
                                    violate(&mut shape, Refusal::WeakAlgorithm);
                                }
                                true
                            } else {
                                dsig && matches!(name, b"Transforms" | b"DigestValue")
                            }
                        }
                        (_, Some(Kind::Transforms)) => {
                            dsig && name == b"Transform"
                                && matches!(attribute(&start, b"Algorithm")?.as_deref(), Some(ENVELOPED | EXC_C14N))
                        }
                        // Inside KeyInfo, the transforms' InclusiveNamespaces and
                        // the like: never read for trust.
                        _ => !matches!(kind, Kind::Response | Kind::Assertion | Kind::EncryptedAssertion),
                    };
                    if kind == Kind::SignedInfo {
                        sig.signed_infos += 1;
                    }
                    if !ok {
                        violate(&mut shape, Refusal::Structure);
                    }
                }
                if depth == 1
                    && parent == Some(Kind::Response)
                    && namespace.as_deref() == Some(NS_ASSERTION)
                    && local == b"Issuer"
                {
                    issuer_text = Some(String::new());
                }
                // The top-level StatusCode (a nested one only refines it).
                if depth == 2
                    && stack[0].kind == Kind::Response
                    && stack[1].kind == Kind::Status
                    && namespace.as_deref() == Some(NS_PROTOCOL)
                    && local == b"StatusCode"
                {
                    shape.status = attribute(&start, b"Value")?;
                }
                stack.push(Frame { kind, id });
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or(Refusal::Malformed)?;
                if frame.kind == Kind::Signature
                    && let Some(sig) = signature.take()
                    && (sig.signed_infos != 1 || sig.references != 1)
                {
                    violate(&mut shape, Refusal::Structure);
                }
                if stack.len() == 1
                    && let Some(text) = issuer_text.take()
                {
                    shape.response_issuer = Some(text);
                }
            }
            Event::Text(text) => {
                if let Some(issuer) = issuer_text.as_mut() {
                    issuer.push_str(&text.decode().map_err(|_| Refusal::Malformed)?);
                } else if stack.is_empty() && !text.decode().map_err(|_| Refusal::Malformed)?.trim().is_empty() {
                    return Err(Refusal::Malformed);
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|_| Refusal::Malformed)? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|_| Refusal::Malformed)?;
                        quick_xml::escape::resolve_predefined_entity(&name).ok_or(Refusal::Malformed)?.to_owned()
                    }
                };
                if let Some(issuer) = issuer_text.as_mut() {
                    issuer.push_str(&resolved);
                }
            }
            Event::Decl(_) => {}
            Event::DocType(_) | Event::Comment(_) | Event::PI(_) | Event::CData(_) => {
                violate(&mut shape, Refusal::Structure);
            }
            Event::Eof => break,
            // expand_empty_elements turns these into Start + End.
            Event::Empty(_) => return Err(Refusal::Malformed),
        }
    }
    if roots != 1 || !stack.is_empty() {
        return Err(Refusal::Malformed);
    }
    if responses != 1 || assertions != 1 {
        violate(&mut shape, Refusal::Structure);
    }
    Ok(shape)
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
