//! Responses signed by the xmlsec1 CLI, checked by [`verify_response`].

use super::*;
use crate::testkit::*;

const ASSERTION_SIG: &str = "//*[local-name()='Assertion']/*[local-name()='Signature']";

fn expected<'a>(mapping: &'a AttributeMapping) -> Expected<'a> {
    Expected {
        idp_entity_id: IDP,
        idp_certificate_pem: &keys().idp_cert_pem,
        sp_entity_id: SP,
        acs_url: ACS,
        request_id: REQUEST_ID,
        require_encrypted: false,
        sp_decryption_key_pem: Some(&keys().sp_key_pem),
        attribute_mapping: mapping,
        now: NOW,
    }
}

fn check(xml: &str) -> Result<VerifiedAssertion, Refusal> {
    let mapping = AttributeMapping::default();
    verify_response(xml.as_bytes(), &expected(&mapping))
}

fn refused(xml: &str) -> Refusal {
    match check(xml) {
        Ok(verified) => panic!("accepted: {verified:?}\n{xml}"),
        Err(refusal) => refusal,
    }
}

fn signed(adjust: impl FnOnce(&mut Spec)) -> String {
    let mut spec = Spec::default();
    adjust(&mut spec);
    spec.signed()
}

#[test]
fn a_signed_assertion_verifies_and_gives_its_claims() {
    let verified = check(&Spec::default().signed()).expect("verified");
    assert_eq!(verified.assertion_id, "_a0123456789abcdef");
    assert_eq!(verified.not_on_or_after, T0 + 300);
    let claims = verified.claims;
    assert_eq!((claims.issuer.as_str(), claims.subject.as_str()), (IDP, NAME_ID));
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!(claims.email_verified, Some(true));
    assert_eq!((claims.first_name.as_deref(), claims.last_name.as_deref()), (Some("Alice"), Some("Liddell")));
    assert_eq!(claims.groups, ["Engineering", "Admins"]);
    assert_eq!(claims.hd, None);
}

#[test]
fn the_attribute_mapping_names_the_attributes() {
    let xml = signed(|s| {
        s.attributes = vec![
            ("urn:oid:mail".to_owned(), vec!["Bob@Corp.example".to_owned()]),
            ("first".to_owned(), vec!["Bob".to_owned()]),
            ("last".to_owned(), vec!["Builder".to_owned()]),
            ("roles".to_owned(), vec!["Ops".to_owned()]),
            ("email".to_owned(), vec!["ignored@example.com".to_owned()]),
        ];
        s.confirmation_not_on_or_after = T0 + 120;
    });
    let mapping = AttributeMapping {
        email: Some("urn:oid:mail".to_owned()),
        first_name: Some("first".to_owned()),
        last_name: Some("last".to_owned()),
        groups: Some("roles".to_owned()),
    };
    let verified = verify_response(xml.as_bytes(), &expected(&mapping)).expect("verified");
    assert_eq!(verified.not_on_or_after, T0 + 120, "the earlier of the two NotOnOrAfter");
    let claims = verified.claims;
    assert_eq!(claims.email.as_deref(), Some("bob@corp.example"));
    assert_eq!((claims.first_name.as_deref(), claims.last_name.as_deref()), (Some("Bob"), Some("Builder")));
    assert_eq!(claims.groups, ["Ops"]);
}

#[test]
fn without_an_email_attribute_an_email_name_id_is_the_email() {
    let verified = check(&signed(|s| s.attributes.clear())).expect("verified");
    assert_eq!(verified.claims.email.as_deref(), Some(NAME_ID));
    let opaque = check(&signed(|s| {
        s.attributes.clear();
        s.name_id = "00u1abcd".to_owned();
    }))
    .expect("verified");
    assert_eq!((opaque.claims.subject.as_str(), opaque.claims.email), ("00u1abcd", None));
}

#[test]
fn a_signed_response_covers_its_unsigned_assertion_and_both_signed_verify() {
    let response_only = signed(|s| {
        s.sign_assertion = false;
        s.sign_response = true;
    });
    assert_eq!(check(&response_only).expect("response signed").claims.subject, NAME_ID);
    let both = signed(|s| s.sign_response = true);
    assert_eq!(check(&both).expect("both signed").claims.subject, NAME_ID);
}

#[test]
fn a_name_id_changed_after_signing_is_refused() {
    let xml = Spec::default().signed().replace(NAME_ID, EVIL_NAME_ID);
    assert!(!xmlsec_verifies(&xml, None));
    assert_eq!(refused(&xml), Refusal::BadSignature);
}

#[test]
fn another_certificate_is_refused_and_key_info_is_never_trusted() {
    let xml = Spec::default().signed();
    let mapping = AttributeMapping::default();
    let other = Expected { idp_certificate_pem: &keys().other_cert_pem, ..expected(&mapping) };
    assert_eq!(verify_response(xml.as_bytes(), &other), Err(Refusal::BadSignature));
    let garbage = Expected { idp_certificate_pem: "not a certificate", ..expected(&mapping) };
    assert_eq!(verify_response(xml.as_bytes(), &garbage), Err(Refusal::BadSignature));
}

#[test]
fn rsa_sha1_is_a_weak_algorithm() {
    let sha1 = Spec { signature_method: RSA_SHA1.to_owned(), digest_method: SHA1.to_owned(), ..Spec::default() };
    // Refused before any crypto, whether or not a signer would still make
    // SHA-1 signatures.
    assert_eq!(refused(&sha1.template()), Refusal::WeakAlgorithm);
    let sha1_signature = Spec { signature_method: RSA_SHA1.to_owned(), ..Spec::default() };
    assert_eq!(refused(&sha1_signature.template()), Refusal::WeakAlgorithm);
    let sha1_digest = Spec { digest_method: SHA1.to_owned(), ..Spec::default() };
    assert_eq!(refused(&sha1_digest.template()), Refusal::WeakAlgorithm);
}

#[test]
fn an_unsigned_assertion_is_refused() {
    assert_eq!(refused(&signed(|s| s.sign_assertion = false)), Refusal::BadSignature);
    // An empty signature template is no signature either.
    assert_eq!(refused(&Spec::default().template()), Refusal::BadSignature);
}

#[test]
fn the_audience_must_be_restricted_to_us() {
    assert_eq!(refused(&signed(|s| s.audience = None)), Refusal::WrongAudience);
    assert_eq!(refused(&signed(|s| s.audience = Some("https://other-sp.example".to_owned()))), Refusal::WrongAudience);
}

#[test]
fn the_response_must_answer_our_request() {
    let wrong = |s: &mut Spec| {
        s.response_in_response_to = Some("_other".to_owned());
        s.confirmation_in_response_to = Some("_other".to_owned());
    };
    assert_eq!(refused(&signed(wrong)), Refusal::InResponseToMismatch);
    // IdP-initiated: no InResponseTo anywhere.
    let idp_initiated = |s: &mut Spec| {
        s.response_in_response_to = None;
        s.confirmation_in_response_to = None;
    };
    assert_eq!(refused(&signed(idp_initiated)), Refusal::InResponseToMismatch);
    // The signed confirmation decides, whatever the unsigned Response says.
    assert_eq!(refused(&signed(|s| s.confirmation_in_response_to = None)), Refusal::InResponseToMismatch);
}

#[test]
fn times_are_checked_with_skew() {
    let xml = Spec::default().signed();
    let mapping = AttributeMapping::default();
    let at = |now: i64| verify_response(xml.as_bytes(), &Expected { now, ..expected(&mapping) });
    assert!(at(T0 + 300 + CLOCK_SKEW_SECONDS - 1).is_ok(), "inside the skew");
    assert_eq!(at(T0 + 300 + CLOCK_SKEW_SECONDS), Err(Refusal::Expired));
    assert_eq!(at(T0 - CLOCK_SKEW_SECONDS - 1), Err(Refusal::NotYetValid));
    assert!(at(T0 - CLOCK_SKEW_SECONDS + 1).is_ok());
    // The bearer confirmation's own NotOnOrAfter counts too.
    let short = signed(|s| s.confirmation_not_on_or_after = T0 - CLOCK_SKEW_SECONDS);
    assert_eq!(refused(&short), Refusal::Expired);
}

#[test]
fn recipient_destination_issuer_and_status_are_checked() {
    assert_eq!(refused(&signed(|s| s.recipient = "https://evil.example/acs".to_owned())), Refusal::WrongRecipient);
    assert_eq!(
        refused(&signed(|s| s.destination = Some("https://evil.example/acs".to_owned()))),
        Refusal::WrongDestination
    );
    // A Response signed with a wrong Destination: the signed value decides.
    let signed_response = signed(|s| {
        s.sign_response = true;
        s.destination = Some("https://evil.example/acs".to_owned());
    });
    assert_eq!(refused(&signed_response), Refusal::WrongDestination);
    assert_eq!(refused(&signed(|s| s.issuer = "https://evil.example".to_owned())), Refusal::WrongIssuer);
    assert_eq!(refused(&signed(|s| s.response_issuer = Some("https://evil.example".to_owned()))), Refusal::WrongIssuer);
    let failed = signed(|s| s.status = "urn:oasis:names:tc:SAML:2.0:status:Responder".to_owned());
    assert_eq!(refused(&failed), Refusal::StatusNotSuccess);
    // An IdP's error answer has no assertion: its status is the reason.
    let spec = Spec { status: "urn:oasis:names:tc:SAML:2.0:status:Requester".to_owned(), ..Spec::default() };
    assert_eq!(refused(&spec.response_with("")), Refusal::StatusNotSuccess);
}

#[test]
fn a_doctype_comments_and_malformed_input_are_refused() {
    let xml = signed(|s| s.name_id = "alice@example.com.evil.example".to_owned());
    let doctype = insert_before(&xml, "<samlp:Response", "<!DOCTYPE r [<!ENTITY x \"alice\">]>\n");
    assert_eq!(refused(&doctype), Refusal::Structure);
    // exc-c14n drops comments: the signature still verifies.
    let comment = xml.replace("alice@example.com.evil.example<", "alice@example.com<!---->.evil.example<");
    assert!(xmlsec_verifies(&comment, None), "the comment keeps the signature");
    assert_eq!(refused(&comment), Refusal::Structure);
    assert_eq!(refused("not xml"), Refusal::Malformed);
    assert_eq!(refused(&xml[..xml.len() / 2]), Refusal::Malformed);
    assert_eq!(check("\u{0}\u{ff}").err(), Some(Refusal::Malformed));
    let big = format!("{xml}{}", " ".repeat(MAX_XML_BYTES));
    assert_eq!(refused(&big), Refusal::Malformed);
}

#[test]
fn a_plain_assertion_is_refused_when_encryption_is_required() {
    let mapping = AttributeMapping::default();
    let required = Expected { require_encrypted: true, ..expected(&mapping) };
    assert_eq!(verify_response(Spec::default().signed().as_bytes(), &required), Err(Refusal::EncryptionRequired));
}

#[test]
fn a_subject_without_name_id_or_bearer_confirmation_is_refused() {
    let spec = Spec::default();
    let template = spec.template();
    let name_id = element(&template, "<saml:NameID", "</saml:NameID>");
    let xml = xmlsec_sign(&template.replace(name_id, ""), Some(ASSERTION_SIG));
    assert_eq!(refused(&xml), Refusal::MissingSubject);
    let holder = spec.template().replace("cm:bearer", "cm:holder-of-key");
    let xml = xmlsec_sign(&holder, Some(ASSERTION_SIG));
    assert_eq!(refused(&xml), Refusal::MissingSubject);
}

// XML signature wrapping (SAML Raider's XSW1-XSW8, after "On Breaking
// SAML"). Each variant keeps a valid signature somewhere; where a naive
// verifier (xmlsec1 alone) still accepts the document, the test says so:
// that is the attack.

fn response_signed() -> (Spec, String) {
    let spec = Spec { sign_assertion: false, sign_response: true, ..Spec::default() };
    let xml = spec.signed();
    (spec, xml)
}

fn assertion_signed() -> (Spec, String) {
    let spec = Spec::default();
    let xml = spec.signed();
    (spec, xml)
}

const RESPONSE: (&str, &str) = ("<samlp:Response", "</samlp:Response>");
const ASSERTION: (&str, &str) = ("<saml:Assertion", "</saml:Assertion>");
const SIGNATURE: (&str, &str) = ("<ds:Signature", "</ds:Signature>");

/// The evil Response of XSW1/2: a new ID, the evil NameID, no signature.
fn evil_response(spec: &Spec, xml: &str) -> (String, String, String) {
    let original = element(xml, RESPONSE.0, RESPONSE.1);
    let signature = element(original, SIGNATURE.0, SIGNATURE.1).to_owned();
    let original_unsigned = without_signature(original);
    let evil = evil(&original_unsigned, &spec.response_id, "_evil_response").replacen(
        &format!(r#"ID="{}""#, spec.assertion_id),
        r#"ID="_evil_assertion""#,
        1,
    );
    (evil, signature, original_unsigned)
}

fn issuer_end() -> &'static str {
    "</saml:Issuer>"
}

#[test]
fn xsw1_the_original_response_inside_the_signature_of_an_evil_one() {
    let (spec, xml) = response_signed();
    let (evil, signature, original) = evil_response(&spec, &xml);
    let signature = insert_before(&signature, "</ds:Signature>", &original);
    let attack = insert_after(&evil, issuer_end(), &signature);
    // xmlsec's enveloped-signature transform drops the whole Signature
    // subtree, the wrapped original with it: the digest no longer matches.
    assert!(!xmlsec_verifies(&attack, None));
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw2_the_original_response_before_the_signature_of_an_evil_one() {
    let (spec, xml) = response_signed();
    let (evil, signature, original) = evil_response(&spec, &xml);
    let attack = insert_after(&evil, issuer_end(), &format!("{original}{signature}"));
    assert!(xmlsec_verifies(&attack, None), "a naive verifier accepts XSW2");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw3_an_evil_assertion_before_the_signed_one() {
    let (spec, xml) = assertion_signed();
    let original = element(&xml, ASSERTION.0, ASSERTION.1);
    let evil = without_signature(&evil(original, &spec.assertion_id, "_evil_assertion"));
    let attack = insert_before(&xml, ASSERTION.0, &evil);
    assert!(xmlsec_verifies(&attack, Some(ASSERTION_SIG)), "a naive verifier accepts XSW3");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw4_the_signed_assertion_inside_an_evil_one() {
    let (spec, xml) = assertion_signed();
    let range = element_range(&xml, ASSERTION.0, ASSERTION.1);
    let original = &xml[range.clone()];
    let evil = without_signature(&evil(original, &spec.assertion_id, "_evil_assertion"));
    let wrapper = evil.replacen("</saml:Assertion>", &format!("{original}</saml:Assertion>"), 1);
    let attack = format!("{}{wrapper}{}", &xml[..range.start], &xml[range.end..]);
    assert!(xmlsec_verifies(&attack, None), "a naive verifier accepts XSW4");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw5_the_assertion_edited_in_place_and_an_unsigned_copy_appended() {
    let (spec, xml) = assertion_signed();
    let range = element_range(&xml, ASSERTION.0, ASSERTION.1);
    let original = &xml[range.clone()];
    let edited = evil(original, &spec.assertion_id, "_evil_assertion");
    let copy = without_signature(original);
    let attack = format!("{}{edited}{}", &xml[..range.start], &xml[range.end..]);
    let attack = insert_before(&attack, RESPONSE.1, &copy);
    assert!(xmlsec_verifies(&attack, None), "a naive verifier accepts XSW5");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw6_the_assertion_edited_in_place_and_the_copy_inside_its_signature() {
    let (spec, xml) = assertion_signed();
    let range = element_range(&xml, ASSERTION.0, ASSERTION.1);
    let original = &xml[range.clone()];
    let edited = evil(original, &spec.assertion_id, "_evil_assertion");
    let edited = insert_before(&edited, "</ds:Signature>", &without_signature(original));
    let attack = format!("{}{edited}{}", &xml[..range.start], &xml[range.end..]);
    // As in XSW1, the enveloped-signature transform removes the copy.
    assert!(!xmlsec_verifies(&attack, None));
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw7_an_evil_assertion_in_extensions_before_the_signed_one() {
    let (spec, xml) = assertion_signed();
    let original = element(&xml, ASSERTION.0, ASSERTION.1);
    let evil = without_signature(&evil(original, &spec.assertion_id, "_evil_assertion"));
    let attack = insert_after(&xml, issuer_end(), &format!("<samlp:Extensions>{evil}</samlp:Extensions>"));
    assert!(xmlsec_verifies(&attack, Some(ASSERTION_SIG)), "a naive verifier accepts XSW7");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn xsw8_the_assertion_edited_in_place_and_the_copy_in_a_signature_object() {
    let (spec, xml) = assertion_signed();
    let range = element_range(&xml, ASSERTION.0, ASSERTION.1);
    let original = &xml[range.clone()];
    let edited = evil(original, &spec.assertion_id, "_evil_assertion");
    let object = format!("<ds:Object>{}</ds:Object>", without_signature(original));
    let edited = insert_before(&edited, "</ds:Signature>", &object);
    let attack = format!("{}{edited}{}", &xml[..range.start], &xml[range.end..]);
    let naive = xmlsec_verifies(&attack, None);
    eprintln!("xsw8: xmlsec1 alone says {}", if naive { "valid" } else { "invalid" });
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn a_signed_response_with_an_unsigned_assertion_appended_is_refused() {
    let (spec, xml) = response_signed();
    let original = element(&xml, ASSERTION.0, ASSERTION.1);
    let evil = evil(original, &spec.assertion_id, "_evil_assertion");
    let attack = insert_before(&xml, RESPONSE.1, &evil);
    assert!(!xmlsec_verifies(&attack, None), "the Response's digest covers its content");
    assert_eq!(refused(&attack), Refusal::Structure);
}

#[test]
fn a_signature_over_something_else_or_in_another_place_is_refused() {
    let (spec, xml) = assertion_signed();
    // A duplicate ID: the copy and the assertion share it.
    let original = element(&xml, ASSERTION.0, ASSERTION.1);
    let dup = insert_after(&xml, issuer_end(), &format!("<samlp:Extensions>{}</samlp:Extensions>", original));
    assert_eq!(refused(&dup), Refusal::Structure);
    // A Reference to another element than the signature's parent.
    let elsewhere = xml.replacen(&format!(r##"URI="#{}""##, spec.assertion_id), r##"URI="#_r0123456789abcdef""##, 1);
    assert_eq!(refused(&elsewhere), Refusal::Structure);
    // A transform outside enveloped + exc-c14n.
    let xpath = xml.replacen(
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        "http://www.w3.org/TR/1999/REC-xpath-19991116",
        1,
    );
    assert_eq!(refused(&xpath), Refusal::Structure);
}

// Encrypted assertions: signed by xmlsec1, then encrypted to the SP's
// certificate by xmlsec1 (or the openssl CLI), then decrypted by us.

const ENCRYPTED_ASSERTION: (&str, &str) = ("<saml:EncryptedAssertion", "</saml:EncryptedAssertion>");
const CIPHER_VALUE: (&str, &str) = ("<xenc:CipherValue>", "</xenc:CipherValue>");

fn encrypted(content: &'static str, adjust: impl FnOnce(&mut Spec)) -> String {
    signed(|s| {
        s.encryption = Some(Encryption::to_sp(content));
        adjust(s);
    })
}

fn assert_alice(verified: &VerifiedAssertion) {
    assert_eq!(verified.assertion_id, "_a0123456789abcdef");
    assert_eq!(verified.not_on_or_after, T0 + 300);
    let claims = &verified.claims;
    assert_eq!((claims.issuer.as_str(), claims.subject.as_str()), (IDP, NAME_ID));
    assert_eq!(claims.email.as_deref(), Some("alice@example.com"));
    assert_eq!((claims.first_name.as_deref(), claims.last_name.as_deref()), (Some("Alice"), Some("Liddell")));
    assert_eq!(claims.groups, ["Engineering", "Admins"]);
}

#[test]
fn a_signed_then_encrypted_assertion_verifies_with_each_content_algorithm() {
    let mapping = AttributeMapping::default();
    let required = Expected { require_encrypted: true, ..expected(&mapping) };
    for content in [AES256_CBC, AES128_CBC, AES128_GCM, AES256_GCM] {
        let xml = encrypted(content, |_| {});
        assert!(xml.contains(content) && !xml.contains(NAME_ID), "{content}: the assertion is encrypted");
        assert_alice(&check(&xml).unwrap_or_else(|r| panic!("{content}: {r}\n{xml}")));
        // require_encrypted_assertions is met.
        let verified = verify_response(xml.as_bytes(), &required).unwrap_or_else(|r| panic!("{content}: {r}"));
        assert_alice(&verified);
    }
}

#[test]
fn a_plaintext_using_the_responses_namespace_declaration_verifies() {
    // xmlsec1 writes the plaintext as it was in the document: `saml:`
    // declared on the Response is not repeated, so it only parses spliced.
    let xml = encrypted(AES256_GCM, |s| s.saml_ns_on_response = true);
    assert!(!element(&xml, ENCRYPTED_ASSERTION.0, ENCRYPTED_ASSERTION.1).contains("xmlns:saml"));
    assert_alice(&check(&xml).expect("verified"));
    let both = encrypted(AES128_CBC, |s| {
        s.saml_ns_on_response = true;
        s.sign_response = true;
    });
    assert_alice(&check(&both).expect("both signed"));
}

#[test]
fn xml_encryption_11_rsa_oaep_with_sha256_unwraps_the_key() {
    let spec = Spec { encryption: Some(Encryption::to_sp(AES256_CBC)), ..Spec::default() };
    let xml = xmlsec_sign(&spec.template(), Some(ASSERTION_SIG));
    let xml = openssl_encrypt_oaep_sha256(&xml);
    assert!(xml.contains("xmlenc11#rsa-oaep") && !xml.contains(NAME_ID));
    assert_alice(&check(&xml).expect("verified"));
    // The same key read as the older algorithm (SHA-1 for MGF1) does not unwrap.
    let mgf1p = xml
        .replace("http://www.w3.org/2009/xmlenc11#rsa-oaep", RSA_OAEP_MGF1P)
        .replace(r#"<xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/>"#, "");
    assert_eq!(refused(&mgf1p), Refusal::DecryptionFailed);
}

#[test]
fn an_encrypted_key_beside_the_encrypted_data_is_used() {
    let xml = encrypted(AES256_GCM, |_| {});
    let key = element(&xml, "<xenc:EncryptedKey", "</xenc:EncryptedKey>").to_owned();
    let moved =
        xml.replace(&key, r##"<ds:RetrievalMethod URI="#_k1" Type="http://www.w3.org/2001/04/xmlenc#EncryptedKey"/>"##);
    let sibling = key.replacen(
        "<xenc:EncryptedKey",
        r#"<xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Id="_k1""#,
        1,
    );
    let moved = insert_before(&moved, "</saml:EncryptedAssertion>", &sibling);
    assert_alice(&check(&moved).expect("verified"));
}

#[test]
fn a_signed_response_covers_its_encrypted_unsigned_assertion() {
    for content in [AES256_CBC, AES128_GCM] {
        let xml = encrypted(content, |s| {
            s.sign_assertion = false;
            s.sign_response = true;
        });
        assert_alice(&check(&xml).unwrap_or_else(|r| panic!("{content}: {r}")));
        let both = encrypted(content, |s| s.sign_response = true);
        assert_alice(&check(&both).unwrap_or_else(|r| panic!("{content}: {r}")));
    }
    // The signed Response's own fields still count.
    let wrong = encrypted(AES256_GCM, |s| {
        s.sign_assertion = false;
        s.sign_response = true;
        s.destination = Some("https://evil.example/acs".to_owned());
    });
    assert_eq!(refused(&wrong), Refusal::WrongDestination);
    // And the SAML checks apply to the decrypted assertion.
    let foreign = encrypted(AES256_GCM, |s| s.audience = Some("https://other-sp.example".to_owned()));
    assert_eq!(refused(&foreign), Refusal::WrongAudience);
}

#[test]
fn without_a_decryption_key_encrypted_assertions_are_unsupported() {
    let xml = encrypted(AES256_GCM, |_| {});
    let mapping = AttributeMapping::default();
    let keyless = Expected { sp_decryption_key_pem: None, ..expected(&mapping) };
    assert_eq!(verify_response(xml.as_bytes(), &keyless), Err(Refusal::EncryptedUnsupported));
    let broken = Expected { sp_decryption_key_pem: Some("not a key"), ..expected(&mapping) };
    assert_eq!(verify_response(xml.as_bytes(), &broken), Err(Refusal::EncryptedUnsupported));
}

#[test]
fn an_assertion_encrypted_to_another_certificate_does_not_decrypt() {
    for content in [AES256_CBC, AES256_GCM] {
        let xml =
            signed(|s| s.encryption = Some(Encryption { recipient: Recipient::Other, ..Encryption::to_sp(content) }));
        assert_eq!(refused(&xml), Refusal::DecryptionFailed, "{content}");
    }
}

#[test]
fn rsa_pkcs1_v15_key_transport_is_a_weak_algorithm() {
    let xml = signed(|s| s.encryption = Some(Encryption { transport: RSA_1_5, ..Encryption::to_sp(AES256_CBC) }));
    assert!(xml.contains(RSA_1_5));
    assert_eq!(refused(&xml), Refusal::WeakAlgorithm);
    let triple_des =
        encrypted(AES256_CBC, |_| {}).replace(AES256_CBC, "http://www.w3.org/2001/04/xmlenc#tripledes-cbc");
    assert_eq!(refused(&triple_des), Refusal::WeakAlgorithm);
}

#[test]
fn an_encrypted_unsigned_assertion_in_an_unsigned_response_is_refused() {
    // GCM: the ciphertext is authenticated, so the reason may be told.
    let gcm = encrypted(AES256_GCM, |s| s.sign_assertion = false);
    assert_eq!(refused(&gcm), Refusal::BadSignature);
    // CBC: anyone can alter such a ciphertext; until a signature holds,
    // every refusal reads `decryption_failed` (no decryption oracle).
    let cbc = encrypted(AES256_CBC, |s| s.sign_assertion = false);
    assert_eq!(refused(&cbc), Refusal::DecryptionFailed);
}

/// `xml` with one base64 character of its `index`-th CipherValue changed
/// (0: the key, 1: the content).
fn tampered(xml: &str, index: usize, at: usize) -> String {
    let mut start = 0;
    for _ in 0..index {
        start = xml[start..].find(CIPHER_VALUE.1).expect("cipher value") + start + 1;
    }
    let value_start = xml[start..].find(CIPHER_VALUE.0).expect("cipher value") + start + CIPHER_VALUE.0.len();
    let i = value_start + at;
    let replacement = if &xml[i..=i] == "A" { "B" } else { "A" };
    format!("{}{replacement}{}", &xml[..i], &xml[i + 1..])
}

#[test]
fn a_tampered_ciphertext_is_refused() {
    for content in [AES256_CBC, AES128_CBC] {
        let xml = encrypted(content, |_| {});
        for at in [0, 30, 200] {
            let refusal = refused(&tampered(&xml, 1, at));
            assert!(
                matches!(refusal, Refusal::DecryptionFailed | Refusal::BadSignature),
                "{content} at {at}: {refusal}"
            );
        }
        assert_eq!(refused(&tampered(&xml, 0, 10)), Refusal::DecryptionFailed, "{content}: the wrapped key");
    }
    for content in [AES256_GCM, AES128_GCM] {
        let xml = encrypted(content, |_| {});
        for at in [0, 30, 200] {
            assert_eq!(refused(&tampered(&xml, 1, at)), Refusal::DecryptionFailed, "{content} at {at}");
        }
    }
    // Under a signed Response the signature fails first, before decryption.
    let signed_response = encrypted(AES256_CBC, |s| s.sign_response = true);
    assert_eq!(refused(&tampered(&signed_response, 1, 30)), Refusal::BadSignature);
}

#[test]
fn an_extra_plain_assertion_beside_an_encrypted_one_is_refused() {
    let xml = encrypted(AES256_GCM, |_| {});
    let plain = Spec::default().signed();
    let assertion = element(&plain, ASSERTION.0, ASSERTION.1);
    let evil = evil(assertion, "_a0123456789abcdef", "_evil_assertion");
    for attack in [
        insert_before(&xml, ENCRYPTED_ASSERTION.0, &evil),
        insert_before(&xml, RESPONSE.1, &evil),
        insert_after(&xml, issuer_end(), &format!("<samlp:Extensions>{evil}</samlp:Extensions>")),
    ] {
        assert_eq!(refused(&attack), Refusal::Structure);
    }
    // Two encrypted assertions.
    let ea = element(&xml, ENCRYPTED_ASSERTION.0, ENCRYPTED_ASSERTION.1);
    assert_eq!(refused(&insert_before(&xml, RESPONSE.1, ea)), Refusal::Structure);
}

#[test]
fn broken_encrypted_data_is_refused_without_panicking() {
    let xml = encrypted(AES256_GCM, |_| {});
    let cbc = encrypted(AES256_CBC, |_| {});
    let value = |doc: &str, index: usize| {
        let mut rest = doc;
        for _ in 0..index {
            rest = &rest[rest.find(CIPHER_VALUE.1).expect("cipher value") + 1..];
        }
        element(rest, "<xenc:CipherValue", CIPHER_VALUE.1).to_owned()
    };
    let mut cases = Vec::new();
    for doc in [&xml, &cbc] {
        let (key, content) = (value(doc, 0), value(doc, 1));
        for replacement in
            ["", "A", "AAAA", "!!!!", "AAAAAAAAAAAAAAAAAAAAAA==", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
        {
            let cipher = format!("{}{replacement}{}", CIPHER_VALUE.0, CIPHER_VALUE.1);
            cases.push(doc.replace(&content, &cipher));
            cases.push(doc.replace(&key, &cipher));
        }
        // Truncated ciphertexts, and every content length around the IV and tag.
        let inner = &content[CIPHER_VALUE.0.len()..content.len() - CIPHER_VALUE.1.len()];
        let compact: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        for keep in (0..compact.len()).step_by(4).take(40) {
            let cipher = format!("{}{}{}", CIPHER_VALUE.0, &compact[..keep], CIPHER_VALUE.1);
            cases.push(doc.replace(&content, &cipher));
        }
        cases.push(doc.replace(&key, ""));
        cases.push(doc.replace(&content, ""));
        let encrypted_key = element(doc, "<xenc:EncryptedKey", "</xenc:EncryptedKey>");
        cases.push(doc.replace(encrypted_key, ""));
        cases.push(doc.replacen("<xenc:EncryptionMethod Algorithm=", "<xenc:EncryptionMethod Foo=", 1));
        cases.push(doc.replace(encrypted_key, &encrypted_key.repeat(5)));
        cases.push(doc.replace("xenc:CipherValue", "xenc:CipherReference"));
    }
    for case in &cases {
        let refusal = refused(case);
        assert!(
            matches!(refusal, Refusal::Malformed | Refusal::DecryptionFailed | Refusal::WeakAlgorithm),
            "{refusal}: {case}"
        );
    }
}
