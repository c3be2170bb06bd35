//! A test IdP: keys from the `openssl` CLI, responses signed and encrypted
//! by the `xmlsec1` CLI (an independent C tool, so the verifier is never
//! checked against itself; the `openssl` CLI where xmlsec1 1.2 lacks an
//! algorithm), and XML signature wrapping variants built by splicing
//! strings (re-serializing would change prefixes and break exc-c14n digests,
//! and a test could then pass for the wrong reason). Needs `openssl` and
//! `xmlsec1` on PATH (`eval "$(infra/deps.sh)"`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

pub const IDP: &str = "https://idp.example.com/metadata";
pub const SP: &str = "https://api.example.com/v1/auth/saml/t/c/metadata";
pub const ACS: &str = "https://api.example.com/v1/auth/saml/t/c/acs";
pub const REQUEST_ID: &str = "_0123456789abcdef0123456789abcdef";
pub const NAME_ID: &str = "alice@example.com";
pub const EVIL_NAME_ID: &str = "mallory@evil.example";
/// 2030-01-01T00:00:00Z: the documents' IssueInstant and NotBefore.
pub const T0: i64 = 1_893_456_000;
/// A moment inside every window of [`Spec::default`].
pub const NOW: i64 = T0 + 10;

pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";

pub const AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// The IdP's key and certificate, the SP's (assertions are encrypted to
/// it), and an unrelated one (per test process).
pub struct Keys {
    pub dir: PathBuf,
    pub idp_cert_pem: String,
    pub other_cert_pem: String,
    pub sp_key_pem: String,
    pub sp_cert_pem: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("saml-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for name in ["idp", "other", "sp"] {
            run(Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj"])
                .arg(format!("/CN={name}"))
                .arg("-keyout")
                .arg(dir.join(format!("{name}.key")))
                .arg("-out")
                .arg(dir.join(format!("{name}.crt"))));
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("cert");
        Keys {
            idp_cert_pem: read("idp.crt"),
            other_cert_pem: read("other.crt"),
            sp_key_pem: read("sp.key"),
            sp_cert_pem: read("sp.crt"),
            dir,
        }
    })
}

fn run(command: &mut Command) -> std::process::Output {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e} (eval \"$(infra/deps.sh)\" first)"));
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn scratch(content: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let path = keys().dir.join(format!("doc-{}.xml", COUNTER.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, content).expect("write");
    path
}

const ID_ATTRS: [&str; 4] = [
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
    "--id-attr:ID",
    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
];

/// Signs the `ds:Signature` template `xpath` selects (the first one when
/// `None`) with the IdP's key.
pub fn xmlsec_sign(template: &str, xpath: Option<&str>) -> String {
    let dir: &Path = &keys().dir;
    let input = scratch(template);
    let output = input.with_extension("signed.xml");
    let mut command = Command::new("xmlsec1");
    command.arg("--sign").arg("--privkey-pem").arg(format!(
        "{},{}",
        dir.join("idp.key").display(),
        dir.join("idp.crt").display()
    ));
    command.args(ID_ATTRS);
    if let Some(xpath) = xpath {
        command.args(["--node-xpath", xpath]);
    }
    run(command.arg("--output").arg(&output).arg(&input));
    std::fs::read_to_string(output).expect("signed")
}

/// What a naive verifier says: the xmlsec1 CLI checks the first signature
/// (or the one `xpath` selects) with the IdP's certificate only.
pub fn xmlsec_verifies(xml: &str, xpath: Option<&str>) -> bool {
    let input = scratch(xml);
    let mut command = Command::new("xmlsec1");
    command.arg("--verify").arg("--pubkey-cert-pem").arg(keys().dir.join("idp.crt"));
    command.args(["--enabled-key-data", "key-name"]).args(ID_ATTRS);
    if let Some(xpath) = xpath {
        command.args(["--node-xpath", xpath]);
    }
    let output = command.arg(&input).output().expect("xmlsec1");
    if !output.status.success() {
        eprintln!("xmlsec1 --verify {}: {}", input.display(), String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

/// Whose certificate an assertion is encrypted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Sp,
    Other,
}

/// How the assertion is encrypted (after it is signed).
#[derive(Debug, Clone)]
pub struct Encryption {
    pub content: &'static str,
    pub transport: &'static str,
    pub recipient: Recipient,
}

impl Encryption {
    pub fn to_sp(content: &'static str) -> Self {
        Self { content, transport: RSA_OAEP_MGF1P, recipient: Recipient::Sp }
    }
}

fn certificate_path(recipient: Recipient) -> PathBuf {
    keys().dir.join(match recipient {
        Recipient::Sp => "sp.crt",
        Recipient::Other => "other.crt",
    })
}

/// Encrypts the first `saml:Assertion` of `xml` (inside its
/// `saml:EncryptedAssertion`) with xmlsec1: a fresh AES key for the
/// content, RSA-encrypted to the recipient's certificate.
pub fn xmlsec_encrypt(xml: &str, encryption: &Encryption) -> String {
    let session_key = if encryption.content.contains("aes128") { "aes-128" } else { "aes-256" };
    let template = scratch(&format!(
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{content}"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="{transport}"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"#,
        content = encryption.content,
        transport = encryption.transport,
    ));
    let data = scratch(xml);
    let output = data.with_extension("encrypted.xml");
    run(Command::new("xmlsec1")
        .arg("--encrypt")
        .arg("--pubkey-cert-pem")
        .arg(certificate_path(encryption.recipient))
        .args(["--session-key", session_key, "--xml-data"])
        .arg(&data)
        .args(["--node-name", &format!("{NS_SAML}:Assertion")])
        .arg("--output")
        .arg(&output)
        .arg(&template));
    std::fs::read_to_string(output).expect("encrypted")
}

/// Encrypts the first `saml:Assertion` with the `openssl` CLI instead:
/// AES-256-CBC (its PKCS#7 padding is one of XML Encryption's paddings)
/// and XML Encryption 1.1's RSA-OAEP with SHA-256 for digest and MGF1,
/// which xmlsec1 1.2 cannot write.
pub fn openssl_encrypt_oaep_sha256(xml: &str) -> String {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let range = element_range(xml, "<saml:Assertion", "</saml:Assertion>");
    let plaintext = scratch(&xml[range.clone()]);
    let key: [u8; 32] = rand::random();
    let iv: [u8; 16] = rand::random();
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let key_file = plaintext.with_extension("key");
    std::fs::write(&key_file, key).expect("key");
    let (body, wrapped) = (plaintext.with_extension("ct"), plaintext.with_extension("ek"));
    run(Command::new("openssl")
        .args(["enc", "-aes-256-cbc", "-K", &hex(&key), "-iv", &hex(&iv), "-in"])
        .arg(&plaintext)
        .arg("-out")
        .arg(&body));
    run(Command::new("openssl")
        .args(["pkeyutl", "-encrypt", "-certin", "-inkey"])
        .arg(certificate_path(Recipient::Sp))
        .args(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256"])
        .args(["-pkeyopt", "rsa_mgf1_md:sha256", "-in"])
        .arg(&key_file)
        .arg("-out")
        .arg(&wrapped));
    let mut cipher = iv.to_vec();
    cipher.extend(std::fs::read(&body).expect("ciphertext"));
    let encrypted_data = format!(
        r#"<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element"><xenc:EncryptionMethod Algorithm="{AES256_CBC}"/><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#rsa-oaep"><ds:DigestMethod Algorithm="{SHA256}"/><xenc11:MGF xmlns:xenc11="http://www.w3.org/2009/xmlenc11#" Algorithm="http://www.w3.org/2009/xmlenc11#mgf1sha256"/></xenc:EncryptionMethod><xenc:CipherData><xenc:CipherValue>{wrapped}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData>"#,
        wrapped = STANDARD.encode(std::fs::read(&wrapped).expect("wrapped key")),
        cipher = STANDARD.encode(cipher),
    );
    format!("{}{encrypted_data}{}", &xml[..range.start], &xml[range.end..])
}

/// A Response with one Assertion, every part adjustable.
#[derive(Debug, Clone)]
pub struct Spec {
    pub response_id: String,
    pub assertion_id: String,
    pub issuer: String,
    pub response_issuer: Option<String>,
    pub destination: Option<String>,
    pub response_in_response_to: Option<String>,
    pub confirmation_in_response_to: Option<String>,
    pub recipient: String,
    /// `None`: no AudienceRestriction at all.
    pub audience: Option<String>,
    pub not_before: i64,
    pub not_on_or_after: i64,
    pub confirmation_not_on_or_after: i64,
    pub status: String,
    pub name_id: String,
    pub attributes: Vec<(String, Vec<String>)>,
    pub signature_method: String,
    pub digest_method: String,
    pub sign_assertion: bool,
    pub sign_response: bool,
    /// Encrypted after it is signed (before the Response is).
    pub encryption: Option<Encryption>,
    /// `xmlns:saml` declared on the Response only, so the assertion (and
    /// its plaintext, once encrypted) uses a prefix it does not declare.
    pub saml_ns_on_response: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            response_id: "_r0123456789abcdef".to_owned(),
            assertion_id: "_a0123456789abcdef".to_owned(),
            issuer: IDP.to_owned(),
            response_issuer: Some(IDP.to_owned()),
            destination: Some(ACS.to_owned()),
            response_in_response_to: Some(REQUEST_ID.to_owned()),
            confirmation_in_response_to: Some(REQUEST_ID.to_owned()),
            recipient: ACS.to_owned(),
            audience: Some(SP.to_owned()),
            not_before: T0,
            not_on_or_after: T0 + 300,
            confirmation_not_on_or_after: T0 + 300,
            status: "urn:oasis:names:tc:SAML:2.0:status:Success".to_owned(),
            name_id: NAME_ID.to_owned(),
            attributes: vec![
                ("email".to_owned(), vec!["Alice@Example.com".to_owned()]),
                ("givenName".to_owned(), vec!["Alice".to_owned()]),
                ("sn".to_owned(), vec!["Liddell".to_owned()]),
                ("groups".to_owned(), vec!["Engineering".to_owned(), "Admins".to_owned()]),
            ],
            signature_method: RSA_SHA256.to_owned(),
            digest_method: SHA256.to_owned(),
            sign_assertion: true,
            sign_response: false,
            encryption: None,
            saml_ns_on_response: false,
        }
    }
}

fn time(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0).expect("time").format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn opt_attr(name: &str, value: &Option<String>) -> String {
    value.as_ref().map(|v| format!(r#" {name}="{v}""#)).unwrap_or_default()
}

impl Spec {
    fn signature_template(&self, id: &str) -> String {
        format!(
            r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{method}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="{digest}"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>"##,
            method = self.signature_method,
            digest = self.digest_method,
        )
    }

    /// The assertion element (its signature template included when signed).
    pub fn assertion(&self) -> String {
        let signature = if self.sign_assertion { self.signature_template(&self.assertion_id) } else { String::new() };
        let audience = self
            .audience
            .as_ref()
            .map(|a| format!("<saml:AudienceRestriction><saml:Audience>{a}</saml:Audience></saml:AudienceRestriction>"))
            .unwrap_or_default();
        let attributes: String = self
            .attributes
            .iter()
            .map(|(name, values)| {
                let values: String =
                    values.iter().map(|v| format!("<saml:AttributeValue>{v}</saml:AttributeValue>")).collect();
                format!(r#"<saml:Attribute Name="{name}">{values}</saml:Attribute>"#)
            })
            .collect();
        format!(
            r#"<saml:Assertion{ns} ID="{id}" Version="2.0" IssueInstant="{t0}"><saml:Issuer>{issuer}</saml:Issuer>{signature}<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">{name_id}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData{irt} NotOnOrAfter="{scd_exp}" Recipient="{recipient}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{nbf}" NotOnOrAfter="{exp}">{audience}</saml:Conditions><saml:AuthnStatement AuthnInstant="{t0}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>{attributes}</saml:AttributeStatement></saml:Assertion>"#,
            ns = self.saml_ns(),
            id = self.assertion_id,
            t0 = time(T0),
            issuer = self.issuer,
            name_id = self.name_id,
            irt = opt_attr("InResponseTo", &self.confirmation_in_response_to),
            scd_exp = time(self.confirmation_not_on_or_after),
            recipient = self.recipient,
            nbf = time(self.not_before),
            exp = time(self.not_on_or_after),
        )
    }

    /// The unsigned template, with `assertion` as the Response's content.
    pub fn response_with(&self, assertion: &str) -> String {
        let signature = if self.sign_response { self.signature_template(&self.response_id) } else { String::new() };
        let issuer = self
            .response_issuer
            .as_ref()
            .map(|i| format!(r#"<saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{i}</saml:Issuer>"#))
            .unwrap_or_default();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"{ns} ID="{id}" Version="2.0" IssueInstant="{t0}"{destination}{irt}>{issuer}{signature}<samlp:Status><samlp:StatusCode Value="{status}"/></samlp:Status>{assertion}</samlp:Response>
"#,
            ns = if self.saml_ns_on_response { format!(r#" xmlns:saml="{NS_SAML}""#) } else { String::new() },
            id = self.response_id,
            t0 = time(T0),
            destination = opt_attr("Destination", &self.destination),
            irt = opt_attr("InResponseTo", &self.response_in_response_to),
            status = self.status,
        )
    }

    fn saml_ns(&self) -> String {
        if self.saml_ns_on_response { String::new() } else { format!(r#" xmlns:saml="{NS_SAML}""#) }
    }

    /// The unsigned template; with [`Spec::encryption`], the assertion
    /// (still in clear) inside its `saml:EncryptedAssertion`.
    pub fn template(&self) -> String {
        match self.encryption {
            Some(_) => self.response_with(&format!(
                "<saml:EncryptedAssertion{}>{}</saml:EncryptedAssertion>",
                self.saml_ns(),
                self.assertion()
            )),
            None => self.response_with(&self.assertion()),
        }
    }

    /// Signed as asked: the assertion first, then encrypted if asked, then
    /// the Response signed over it.
    pub fn signed(&self) -> String {
        let mut xml = self.template();
        if self.sign_assertion {
            xml = xmlsec_sign(&xml, Some("//*[local-name()='Assertion']/*[local-name()='Signature']"));
        }
        if let Some(encryption) = &self.encryption {
            xml = xmlsec_encrypt(&xml, encryption);
        }
        if self.sign_response {
            xml = xmlsec_sign(&xml, Some("/*[local-name()='Response']/*[local-name()='Signature']"));
        }
        xml
    }
}

/// The byte range of the first element whose start tag begins with `open`
/// (`<saml:Assertion`) through its matching `close` (nesting counted).
pub fn element_range(xml: &str, open: &str, close: &str) -> std::ops::Range<usize> {
    // `<ds:Signature` must not match `<ds:SignatureValue`.
    let find_open = |from: usize| {
        let mut at = from;
        while let Some(i) = xml[at..].find(open) {
            let end = at + i + open.len();
            if xml[end..].starts_with([' ', '>', '/']) {
                return Some(at + i);
            }
            at = end;
        }
        None
    };
    let start = find_open(0).unwrap_or_else(|| panic!("{open} in {xml}"));
    let mut depth = 0usize;
    let mut at = start;
    loop {
        let next_open = find_open(at);
        let next_close = xml[at..].find(close).map(|i| i + at).expect("close");
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                at = o + open.len();
            }
            _ => {
                depth -= 1;
                at = next_close + close.len();
                if depth == 0 {
                    return start..at;
                }
            }
        }
    }
}

pub fn element<'a>(xml: &'a str, open: &str, close: &str) -> &'a str {
    &xml[element_range(xml, open, close)]
}

/// `xml` without its first `ds:Signature`.
pub fn without_signature(xml: &str) -> String {
    let range = element_range(xml, "<ds:Signature", "</ds:Signature>");
    format!("{}{}", &xml[..range.start], &xml[range.end..])
}

/// The same element saying something else: another NameID and ID (its
/// signature, if any, kept as it was).
pub fn evil(element: &str, old_id: &str, new_id: &str) -> String {
    element.replacen(&format!(r#"ID="{old_id}""#), &format!(r#"ID="{new_id}""#), 1).replace(NAME_ID, EVIL_NAME_ID)
}

/// Inserts `insert` right before the first `before` in `xml`.
pub fn insert_before(xml: &str, before: &str, insert: &str) -> String {
    let at = xml.find(before).unwrap_or_else(|| panic!("{before}"));
    format!("{}{insert}{}", &xml[..at], &xml[at..])
}

/// Inserts `insert` right after the first `after` in `xml`.
pub fn insert_after(xml: &str, after: &str, insert: &str) -> String {
    let at = xml.find(after).unwrap_or_else(|| panic!("{after}")) + after.len();
    format!("{}{insert}{}", &xml[..at], &xml[at..])
}
