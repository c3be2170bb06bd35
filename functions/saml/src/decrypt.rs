//! `saml:EncryptedAssertion` decryption (XML Encryption 1.0/1.1, the part
//! SAML IdPs use), with the `openssl` crate: samael's own decrypts AES-128
//! only and panics on short input.
//!
//! - Key transport (`xenc:EncryptedKey`, inside the `EncryptedData`'s
//!   `ds:KeyInfo` or beside it in the `EncryptedAssertion`): RSA-OAEP,
//!   `xmlenc#rsa-oaep-mgf1p` (MGF1-SHA1; SHA-1 digest unless a
//!   `ds:DigestMethod` names another) and `xmlenc11#rsa-oaep` (its
//!   `ds:DigestMethod` and `xenc11:MGF`). RSA PKCS#1 v1.5 (`rsa-1_5`) is
//!   refused: it is a Bleichenbacher padding oracle.
//! - Content: AES-128/192/256 in CBC (IV first; XML Encryption padding: the
//!   last byte says how many bytes to strip, the others are arbitrary, so it
//!   is not checked as PKCS#7) or GCM (12-byte IV first, 16-byte tag last).
//!
//! Every length is checked before slicing: no input panics.

use std::ops::Range;

use base64::{Engine, engine::general_purpose::STANDARD};
use openssl::{
    md::{Md, MdRef},
    pkey::{PKey, Private},
    pkey_ctx::PkeyCtx,
    rsa::Padding,
    symm::{Cipher, Crypter, Mode},
};
use quick_xml::{NsReader, Reader, events::Event, name::ResolveResult};

use crate::verify::Refusal;

const NS_ASSERTION: &[u8] = b"urn:oasis:names:tc:SAML:2.0:assertion";
const NS_PROTOCOL: &[u8] = b"urn:oasis:names:tc:SAML:2.0:protocol";
const NS_DSIG: &[u8] = b"http://www.w3.org/2000/09/xmldsig#";
const NS_XENC: &[u8] = b"http://www.w3.org/2001/04/xmlenc#";
const NS_XENC11: &[u8] = b"http://www.w3.org/2009/xmlenc11#";

const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";

/// The content algorithms, as published in the SP metadata (most preferred first).
pub const CONTENT_ALGORITHMS: [&str; 6] = [
    "http://www.w3.org/2009/xmlenc11#aes256-gcm",
    "http://www.w3.org/2009/xmlenc11#aes192-gcm",
    "http://www.w3.org/2009/xmlenc11#aes128-gcm",
    "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
    "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
];
/// The key transport algorithms, as published in the SP metadata.
pub const KEY_TRANSPORT_ALGORITHMS: [&str; 2] = [RSA_OAEP, RSA_OAEP_MGF1P];

/// More `EncryptedKey`s than this is not an IdP talking to one SP.
const MAX_ENCRYPTED_KEYS: usize = 4;
const AES_BLOCK: usize = 16;
const GCM_IV: usize = 12;
const GCM_TAG: usize = 16;

/// An `EncryptionMethod` and the `CipherValue` next to it.
#[derive(Debug, Default, Clone)]
struct Encrypted {
    algorithm: Option<String>,
    /// `ds:DigestMethod` inside the EncryptionMethod (OAEP's digest).
    digest: Option<String>,
    /// `xenc11:MGF` inside the EncryptionMethod.
    mgf: Option<String>,
    /// `xenc:OAEPparams` (base64): OAEP's label.
    oaep_params: Option<String>,
    cipher_value: Option<String>,
    /// A `CipherReference` (the ciphertext elsewhere): not supported.
    reference: bool,
}

/// What [`locate`] found in the document.
#[derive(Debug, Default)]
pub struct Located {
    /// The bytes of the `saml:EncryptedAssertion` element.
    pub encrypted_assertion: Range<usize>,
    /// The bytes of the Response's own `ds:Signature`, if it has one.
    pub response_signature: Option<Range<usize>>,
    data: Encrypted,
    /// The `EncryptedKey`s, in the `EncryptedData`'s `KeyInfo` or beside
    /// it (referenced by a `RetrievalMethod`), in document order.
    keys: Vec<Encrypted>,
}

/// Which element's text is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    DataCipherValue,
    KeyCipherValue,
    OaepParams,
}

/// Finds the (single, already pre-checked) `EncryptedAssertion` and what
/// decrypting it needs. Any shape outside what IdPs send is
/// [`Refusal::Malformed`].
pub fn locate(xml: &str) -> Result<Located, Refusal> {
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut located = Located::default();
    // (namespace, local name) of the open elements.
    let mut stack: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut assertion_start: Option<usize> = None;
    let mut signature_start: Option<usize> = None;
    // Index of the EncryptedData / EncryptedKey being read, in stack terms.
    let (mut data_depth, mut key_depth): (Option<usize>, Option<usize>) = (None, None);
    let mut key = Encrypted::default();
    let mut data_seen = 0usize;
    let mut reading: Option<Reading> = None;
    let mut text = String::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).map_err(|_| Refusal::Malformed)?;
        let (ns, event) = reader.read_resolved_event().map_err(|_| Refusal::Malformed)?;
        let namespace = match ns {
            ResolveResult::Bound(n) => n.into_inner().to_vec(),
            ResolveResult::Unbound => Vec::new(),
            ResolveResult::Unknown(_) => return Err(Refusal::Malformed),
        };
        match event {
            Event::Start(start) => {
                let local = start.local_name().as_ref().to_vec();
                let depth = stack.len();
                let parent = stack.last().map(|(n, l)| (n.as_slice(), l.as_slice()));
                let algorithm = || -> Result<Option<String>, Refusal> {
                    for attr in start.attributes() {
                        let attr = attr.map_err(|_| Refusal::Malformed)?;
                        if attr.key.as_ref() == b"Algorithm" {
                            let value = attr
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map_err(|_| Refusal::Malformed)?;
                            return Ok(Some(value.trim().to_owned()));
                        }
                    }
                    Ok(None)
                };
                match (namespace.as_slice(), local.as_slice()) {
                    (NS_DSIG, b"Signature")
                        if depth == 1 && parent.is_some_and(|p| p == (NS_PROTOCOL, b"Response")) =>
                    {
                        signature_start = Some(before);
                    }
                    (NS_ASSERTION, b"EncryptedAssertion") if depth == 1 => {
                        if assertion_start.is_some() {
                            return Err(Refusal::Structure);
                        }
                        assertion_start = Some(before);
                    }
                    (NS_XENC, b"EncryptedData")
                        if assertion_start.is_some()
                            && depth == 2
                            && parent.is_some_and(|p| p == (NS_ASSERTION, b"EncryptedAssertion")) =>
                    {
                        data_seen += 1;
                        data_depth = Some(depth);
                    }
                    (NS_XENC, b"EncryptedKey") if assertion_start.is_some() => {
                        // Beside the EncryptedData, or in its KeyInfo.
                        let inline = data_depth
                            .is_some_and(|d| depth == d + 2 && parent.is_some_and(|p| p == (NS_DSIG, b"KeyInfo")));
                        let sibling = depth == 2 && parent.is_some_and(|p| p == (NS_ASSERTION, b"EncryptedAssertion"));
                        if !(inline || sibling) || key_depth.is_some() {
                            return Err(Refusal::Malformed);
                        }
                        key_depth = Some(depth);
                        key = Encrypted::default();
                    }
                    (NS_XENC, b"EncryptionMethod") => {
                        if key_depth.is_some_and(|k| depth == k + 1) {
                            once(&mut key.algorithm, algorithm()?)?;
                        } else if data_depth.is_some_and(|d| depth == d + 1) && key_depth.is_none() {
                            once(&mut located.data.algorithm, algorithm()?)?;
                        }
                    }
                    (NS_DSIG, b"DigestMethod") if key_depth.is_some_and(|k| depth == k + 2) => {
                        once(&mut key.digest, algorithm()?)?;
                    }
                    (NS_XENC11, b"MGF") if key_depth.is_some_and(|k| depth == k + 2) => {
                        once(&mut key.mgf, algorithm()?)?;
                    }
                    (NS_XENC, b"OAEPparams") if key_depth.is_some_and(|k| depth == k + 2) => {
                        reading = Some(Reading::OaepParams);
                        text.clear();
                    }
                    (NS_XENC, b"CipherValue") => {
                        if key_depth.is_some_and(|k| depth == k + 2) {
                            reading = Some(Reading::KeyCipherValue);
                        } else if key_depth.is_none() && data_depth.is_some_and(|d| depth == d + 2) {
                            reading = Some(Reading::DataCipherValue);
                        }
                        text.clear();
                    }
                    (NS_XENC, b"CipherReference") => {
                        if key_depth.is_some() {
                            key.reference = true;
                        } else if data_depth.is_some() {
                            located.data.reference = true;
                        }
                    }
                    _ => {}
                }
                stack.push((namespace, local));
            }
            Event::End(_) => {
                let (namespace, local) = stack.pop().ok_or(Refusal::Malformed)?;
                let depth = stack.len();
                let after = usize::try_from(reader.buffer_position()).map_err(|_| Refusal::Malformed)?;
                match (namespace.as_slice(), local.as_slice()) {
                    (NS_DSIG, b"Signature") if depth == 1 => {
                        if let Some(start) = signature_start.take() {
                            located.response_signature = Some(start..after);
                        }
                    }
                    (NS_ASSERTION, b"EncryptedAssertion") if depth == 1 => {
                        if let Some(start) = assertion_start {
                            located.encrypted_assertion = start..after;
                        }
                    }
                    (NS_XENC, b"EncryptedData") if data_depth == Some(depth) => data_depth = None,
                    (NS_XENC, b"EncryptedKey") if key_depth == Some(depth) => {
                        key_depth = None;
                        if located.keys.len() >= MAX_ENCRYPTED_KEYS {
                            return Err(Refusal::Malformed);
                        }
                        located.keys.push(std::mem::take(&mut key));
                    }
                    (NS_XENC, b"CipherValue" | b"OAEPparams") => {
                        let value = std::mem::take(&mut text);
                        match reading.take() {
                            Some(Reading::DataCipherValue) => once(&mut located.data.cipher_value, Some(value))?,
                            Some(Reading::KeyCipherValue) => once(&mut key.cipher_value, Some(value))?,
                            Some(Reading::OaepParams) => once(&mut key.oaep_params, Some(value))?,
                            None => {}
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if reading.is_some() => text.push_str(&t.decode().map_err(|_| Refusal::Malformed)?),
            // `&#13;` and the like inside base64: whitespace, dropped later.
            Event::GeneralRef(reference) if reading.is_some() => {
                text.push(reference.resolve_char_ref().map_err(|_| Refusal::Malformed)?.ok_or(Refusal::Malformed)?);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if assertion_start.is_none() || located.encrypted_assertion.is_empty() || data_seen != 1 {
        return Err(Refusal::Malformed);
    }
    Ok(located)
}

/// Each of these elements once: two would leave the reader to pick one.
fn once(slot: &mut Option<String>, value: Option<String>) -> Result<(), Refusal> {
    if slot.is_some() {
        return Err(Refusal::Malformed);
    }
    *slot = value;
    Ok(())
}

/// A decrypted assertion: the plaintext, and whether its ciphertext was
/// authenticated (GCM) rather than merely decrypted (CBC).
#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: String,
    pub authenticated: bool,
}

/// The content cipher and its key length.
fn content_cipher(algorithm: &str) -> Option<(Cipher, bool)> {
    Some(match algorithm {
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => (Cipher::aes_128_cbc(), false),
        "http://www.w3.org/2001/04/xmlenc#aes192-cbc" => (Cipher::aes_192_cbc(), false),
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => (Cipher::aes_256_cbc(), false),
        "http://www.w3.org/2009/xmlenc11#aes128-gcm" => (Cipher::aes_128_gcm(), true),
        "http://www.w3.org/2009/xmlenc11#aes192-gcm" => (Cipher::aes_192_gcm(), true),
        "http://www.w3.org/2009/xmlenc11#aes256-gcm" => (Cipher::aes_256_gcm(), true),
        _ => return None,
    })
}

fn digest(uri: Option<&str>) -> Option<&'static MdRef> {
    Some(match uri {
        None | Some("http://www.w3.org/2000/09/xmldsig#sha1") => Md::sha1(),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha224") => Md::sha224(),
        Some("http://www.w3.org/2001/04/xmlenc#sha256") => Md::sha256(),
        Some("http://www.w3.org/2001/04/xmldsig-more#sha384") => Md::sha384(),
        Some("http://www.w3.org/2001/04/xmlenc#sha512") => Md::sha512(),
        _ => return None,
    })
}

fn mgf(uri: Option<&str>) -> Option<&'static MdRef> {
    Some(match uri {
        None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1") => Md::sha1(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha224") => Md::sha224(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha256") => Md::sha256(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha384") => Md::sha384(),
        Some("http://www.w3.org/2009/xmlenc11#mgf1sha512") => Md::sha512(),
        _ => return None,
    })
}

/// OAEP's parameters for a key transport algorithm: (digest, MGF1 digest).
fn oaep(key: &Encrypted) -> Result<(&'static MdRef, &'static MdRef), Refusal> {
    match key.algorithm.as_deref() {
        // MGF1 with SHA-1 is part of this algorithm's name.
        Some(RSA_OAEP_MGF1P) => Ok((digest(key.digest.as_deref()).ok_or(Refusal::WeakAlgorithm)?, Md::sha1())),
        Some(RSA_OAEP) => Ok((
            digest(key.digest.as_deref()).ok_or(Refusal::WeakAlgorithm)?,
            mgf(key.mgf.as_deref()).ok_or(Refusal::WeakAlgorithm)?,
        )),
        // rsa-1_5 (a padding oracle), key wrap (a shared key we do not
        // have) and anything else.
        _ => Err(Refusal::WeakAlgorithm),
    }
}

fn base64(value: &str) -> Result<Vec<u8>, Refusal> {
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD.decode(compact.as_bytes()).map_err(|_| Refusal::Malformed)
}

/// The SP's RSA private key (PEM, PKCS#8 or PKCS#1).
pub fn private_key(pem: &str) -> Option<PKey<Private>> {
    let key = PKey::private_key_from_pem(pem.as_bytes()).ok()?;
    key.rsa().is_ok().then_some(key)
}

/// Decrypts what [`locate`] found with the SP's key. Algorithms are checked
/// before any crypto ([`Refusal::WeakAlgorithm`]); a key or ciphertext
/// that does not decrypt is [`Refusal::DecryptionFailed`].
pub fn decrypt(located: &Located, key: &PKey<Private>) -> Result<Decrypted, Refusal> {
    let data = &located.data;
    let (cipher, authenticated) =
        content_cipher(data.algorithm.as_deref().ok_or(Refusal::Malformed)?).ok_or(Refusal::WeakAlgorithm)?;
    if located.keys.is_empty() || data.reference || located.keys.iter().any(|k| k.reference) {
        return Err(Refusal::Malformed);
    }
    let mut transports = Vec::with_capacity(located.keys.len());
    for encrypted_key in &located.keys {
        transports.push(oaep(encrypted_key)?);
    }
    let ciphertext = base64(data.cipher_value.as_deref().ok_or(Refusal::Malformed)?)?;
    // Several EncryptedKeys (one per recipient): the first that unwraps
    // to a key of the right length is ours.
    let mut session_key = None;
    for (encrypted_key, (md, mgf1)) in located.keys.iter().zip(transports) {
        let wrapped = base64(encrypted_key.cipher_value.as_deref().ok_or(Refusal::Malformed)?)?;
        let label = encrypted_key.oaep_params.as_deref().map(base64).transpose()?;
        if let Some(unwrapped) = rsa_oaep_decrypt(key, &wrapped, md, mgf1, label.as_deref())
            && unwrapped.len() == cipher.key_len()
        {
            session_key = Some(unwrapped);
            break;
        }
    }
    let session_key = session_key.ok_or(Refusal::DecryptionFailed)?;
    let plaintext = if authenticated {
        gcm_decrypt(cipher, &session_key, &ciphertext)
    } else {
        cbc_decrypt(cipher, &session_key, &ciphertext)
    }
    .ok_or(Refusal::DecryptionFailed)?;
    let plaintext = String::from_utf8(plaintext).map_err(|_| Refusal::DecryptionFailed)?;
    Ok(Decrypted { plaintext, authenticated })
}

fn rsa_oaep_decrypt(
    key: &PKey<Private>,
    wrapped: &[u8],
    md: &MdRef,
    mgf1: &MdRef,
    label: Option<&[u8]>,
) -> Option<Vec<u8>> {
    let mut ctx = PkeyCtx::new(key).ok()?;
    ctx.decrypt_init().ok()?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    ctx.set_rsa_oaep_md(md).ok()?;
    ctx.set_rsa_mgf1_md(mgf1).ok()?;
    if let Some(label) = label.filter(|l| !l.is_empty()) {
        ctx.set_rsa_oaep_label(label).ok()?;
    }
    let mut out = Vec::new();
    ctx.decrypt_to_vec(wrapped, &mut out).ok()?;
    Some(out)
}

/// AES-CBC with the IV first and XML Encryption's padding (the last byte
/// counts the padding bytes, 1 to the block size; their values are
/// arbitrary).
fn cbc_decrypt(cipher: Cipher, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 2 * AES_BLOCK || !data.len().is_multiple_of(AES_BLOCK) {
        return None;
    }
    let (iv, body) = data.split_at(AES_BLOCK);
    let mut crypter = Crypter::new(cipher, Mode::Decrypt, key, Some(iv)).ok()?;
    crypter.pad(false);
    let mut out = vec![0u8; body.len() + AES_BLOCK];
    let mut n = crypter.update(body, &mut out).ok()?;
    n += crypter.finalize(&mut out[n..]).ok()?;
    out.truncate(n);
    strip_padding(out)
}

fn strip_padding(mut plain: Vec<u8>) -> Option<Vec<u8>> {
    let pad = usize::from(*plain.last()?);
    if pad == 0 || pad > AES_BLOCK || pad > plain.len() {
        return None;
    }
    plain.truncate(plain.len() - pad);
    Some(plain)
}

/// AES-GCM with the 12-byte IV first and the 16-byte tag last.
fn gcm_decrypt(cipher: Cipher, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < GCM_IV + GCM_TAG {
        return None;
    }
    let (iv, rest) = data.split_at(GCM_IV);
    let (body, tag) = rest.split_at(rest.len() - GCM_TAG);
    openssl::symm::decrypt_aead(cipher, key, Some(iv), &[], body, tag).ok()
}

/// The plaintext must be one `Assertion` element and nothing around it but
/// whitespace, so that splicing it in cannot close the Response or add a
/// sibling (namespaces are resolved later, in the spliced document).
pub fn check_single_assertion(plaintext: &str) -> Result<(), Refusal> {
    let mut reader = Reader::from_str(plaintext);
    reader.config_mut().expand_empty_elements = true;
    let (mut depth, mut elements) = (0usize, 0usize);
    loop {
        match reader.read_event().map_err(|_| Refusal::Malformed)? {
            Event::Start(start) => {
                if depth == 0 {
                    elements += 1;
                    let name = start.name();
                    if elements > 1 || name.local_name().as_ref() != b"Assertion" {
                        return Err(Refusal::Structure);
                    }
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.checked_sub(1).ok_or(Refusal::Malformed)?,
            Event::Text(text) if depth == 0 => {
                text.decode().ok().filter(|t| t.trim().is_empty()).ok_or(Refusal::Malformed)?;
            }
            Event::Eof => break,
            // Declarations, DOCTYPEs, comments and the like outside the
            // element have no place in a spliced document.
            _ if depth == 0 => return Err(Refusal::Malformed),
            _ => {}
        }
    }
    if depth != 0 || elements != 1 {
        return Err(Refusal::Malformed);
    }
    Ok(())
}

/// `xml` with the EncryptedAssertion replaced by `plaintext` and the
/// Response's own signature (if `drop_signature`) removed.
pub fn splice(xml: &str, located: &Located, plaintext: &str, drop_signature: bool) -> Option<String> {
    let mut cuts: Vec<(Range<usize>, &str)> = vec![(located.encrypted_assertion.clone(), plaintext)];
    if drop_signature {
        cuts.push((located.response_signature.clone()?, ""));
    }
    cuts.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(xml.len());
    let mut at = 0usize;
    for (range, insert) in cuts {
        out.push_str(xml.get(at..range.start)?);
        out.push_str(insert);
        at = range.end;
    }
    out.push_str(xml.get(at..)?);
    Some(out)
}

/// The base64 DER of a PEM certificate (for the SP metadata), or why not.
pub fn certificate_base64(pem: &str) -> Result<String, openssl::error::ErrorStack> {
    let der = openssl::x509::X509::from_pem(pem.as_bytes())?.to_der()?;
    Ok(STANDARD.encode(der))
}

/// Whether `certificate_pem` is the certificate of `key_pem`'s key.
pub fn certificate_matches_key(certificate_pem: &str, key_pem: &str) -> bool {
    let (Ok(cert), Some(key)) = (openssl::x509::X509::from_pem(certificate_pem.as_bytes()), private_key(key_pem))
    else {
        return false;
    };
    cert.public_key().is_ok_and(|public| public.public_eq(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_counted_by_the_last_byte_and_bounded() {
        assert_eq!(strip_padding(b"abc\x07\x07\x02".to_vec()), Some(b"abc\x07".to_vec()));
        // Padding bytes other than the last are arbitrary (not PKCS#7).
        assert_eq!(strip_padding(b"abc\xff\x02".to_vec()), Some(b"abc".to_vec()));
        assert_eq!(strip_padding(b"abc\x00".to_vec()), None);
        assert_eq!(strip_padding(b"abc\x11".to_vec()), None);
        assert_eq!(strip_padding(b"\x05".to_vec()), None);
        assert_eq!(strip_padding(Vec::new()), None);
        assert_eq!(strip_padding(vec![16; 16]), Some(Vec::new()));
    }

    #[test]
    fn short_or_misaligned_ciphertexts_are_refused_without_panicking() {
        let key = [7u8; 32];
        for len in [0, 1, 15, 16, 17, 31, 33] {
            assert_eq!(cbc_decrypt(Cipher::aes_256_cbc(), &key, &vec![0u8; len]), None, "cbc {len}");
        }
        for len in [0, 1, 12, 16, 27] {
            assert_eq!(gcm_decrypt(Cipher::aes_256_gcm(), &key, &vec![0u8; len]), None, "gcm {len}");
        }
        // A wrong key length is an error, not a panic.
        assert_eq!(cbc_decrypt(Cipher::aes_256_cbc(), &key[..5], &[0u8; 32]), None);
        assert_eq!(gcm_decrypt(Cipher::aes_256_gcm(), &key[..5], &[0u8; 28]), None);
    }

    #[test]
    fn the_plaintext_is_one_assertion_element() {
        let ok = r#"<saml:Assertion ID="_a"><saml:Issuer>x</saml:Issuer></saml:Assertion>"#;
        assert_eq!(check_single_assertion(ok), Ok(()));
        assert_eq!(check_single_assertion(&format!("\n {ok} \n")), Ok(()));
        let escapes = format!("{ok}</saml:EncryptedAssertion><saml:Assertion ID=\"_b\">");
        assert!(check_single_assertion(&escapes).is_err());
        assert!(check_single_assertion(&format!("{ok}{ok}")).is_err());
        assert!(check_single_assertion(&format!("<!--x-->{ok}")).is_err());
        assert!(check_single_assertion(&format!("<?xml version=\"1.0\"?>{ok}")).is_err());
        assert!(check_single_assertion("</samlp:Response><saml:Assertion/>").is_err());
        assert!(check_single_assertion("<saml:Subject/>").is_err());
        assert!(check_single_assertion("text").is_err());
        assert!(check_single_assertion("").is_err());
    }
}
