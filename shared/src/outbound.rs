//! Calling customer-supplied URLs (garment images, webhooks) without becoming a way
//! into our network: https only (outside local mode), no redirects, a time
//! limit, a size cap, and no connection to a loopback, private, link-local,
//! carrier-grade NAT, multicast or cloud metadata address. The address check
//! runs in the resolver the connection uses, so a name that resolves to a
//! public address when validated and to 169.254.169.254 when fetched (DNS
//! rebinding) is still refused; IP literals are checked before any request.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_FETCH_BYTES: usize = 10 * 1024 * 1024;
/// What a caller learns of any fetch that passed the URL check and failed.
pub const FETCH_FAILED: &str = "no image of at most 10 MiB could be read from it";

/// True for addresses any internet host may have.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() || v6.is_unspecified() {
                return false;
            }
            if let Some(embedded) = embedded_ipv4(v6) {
                return embedded.iter().all(|v4| is_public_v4(*v4));
            }
            let [first, second, ..] = v6.segments();
            !(v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, incl. AWS's fd00:ec2::254
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x64 && second == 0xff9b)) // NAT64 for local use (64:ff9b:1::/48), never public
        }
    }
}

/// The IPv4 addresses an IPv6 address stands for, for the forms a gateway
/// translates into IPv4 traffic: mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4 `2002:AABB:CCDD::` and Teredo
/// `2001:0:SSSS:SSSS::~CCCC:~CCCC` (its server and, bit-inverted, its
/// client). `[64:ff9b::a9fe:a9fe]` is the metadata service by another name.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Vec<Ipv4Addr>> {
    let s = v6.segments();
    let v4 = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(mapped) = v6.to_ipv4_mapped() {
        return Some(vec![mapped]);
    }
    match s {
        [0, 0, 0, 0, 0, 0, high, low] => Some(vec![v4(high, low)]),
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => Some(vec![v4(high, low)]),
        [0x2002, high, low, ..] => Some(vec![v4(high, low)]),
        [0x2001, 0, server_high, server_low, _, _, client_high, client_low] => {
            Some(vec![v4(server_high, server_low), v4(!client_high, !client_low)])
        }
        _ => None,
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local() // 169.254/16, the metadata service included
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..=127).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || a >= 240)
}

/// A resolver that drops every address that is not public.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{} resolves to no public address", name.as_str()).into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The URL if the rules above let us call it: https (http too in local
/// mode), and not an IP literal that is not public. The resolved address is
/// checked again at connection time.
pub fn check_url(url: &str, local_mode: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if local_mode => {}
        other => return Err(format!("{other} URLs are not allowed (https only)")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".into());
    }
    if !local_mode
        && let Some(host) = parsed.host_str()
        && let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()
        && !is_public(ip)
    {
        return Err(format!("{ip} is not a public address"));
    }
    Ok(parsed)
}

/// What a POST got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub body: String,
}

/// reqwest's error with its causes (the top level alone says "error sending request").
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() { format!("timed out ({text})") } else { text }
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// Local mode: loopback and plain http allowed (the tests' servers).
    local_mode: bool,
}

impl Fetcher {
    pub fn new(local_mode: bool) -> anyhow::Result<Self> {
        if local_mode {
            // Said once per process: a deployment must never run like this.
            tracing::warn!(
                "LOCAL_MODE: outbound calls (webhooks, garment images) may use plain http and reach loopback and private addresses"
            );
        }
        let mut builder = reqwest::Client::builder().timeout(FETCH_TIMEOUT).redirect(reqwest::redirect::Policy::none());
        if !local_mode {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self { client: builder.build()?, local_mode })
    }

    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, String> {
        check_url(url, self.local_mode)
    }

    /// POSTs `body` with `headers`; answers the status, the `Retry-After`
    /// seconds if any, and at most `keep_bytes` of the body. Transport
    /// failures (refused address, timeout, TLS) are `Err`.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        keep_bytes: usize,
    ) -> Result<Posted, String> {
        let parsed = self.check_url(url)?;
        let mut request = self.client.post(parsed).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut kept = Vec::new();
        // Read what we keep, then stop: a huge answer costs us nothing more.
        while kept.len() < keep_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        kept.truncate(keep_bytes);
        Ok(Posted { status, retry_after, body: String::from_utf8_lossy(&kept).into_owned() })
    }

    /// The body of `url`, refused when the rules above say so. Past the URL
    /// check every failure reads the same ([`FETCH_FAILED`]): telling a
    /// refused connection from a 404 or a 403 would make a try-on a probe of
    /// what answers at an address. The cause goes to the log only.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let parsed = self.check_url(url)?;
        self.fetch_checked(parsed).await.map_err(|cause| {
            tracing::warn!(%cause, "fetching a caller-supplied URL failed");
            FETCH_FAILED.to_owned()
        })
    }

    async fn fetch_checked(&self, parsed: reqwest::Url) -> Result<Vec<u8>, String> {
        let mut response = self.client.get(parsed).send().await.map_err(|e| describe(&e))?;
        if !response.status().is_success() {
            return Err(format!("it answered {}", response.status()));
        }
        if response.content_length().is_some_and(|n| n > MAX_FETCH_BYTES as u64) {
            return Err(format!("it is larger than {MAX_FETCH_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FETCH_BYTES {
                return Err(format!("it is larger than {MAX_FETCH_BYTES} bytes"));
            }
        }
        Ok(body)
    }
}

/// The most an identity provider's answer may be (a discovery document, a
/// key set, a token response).
pub const MAX_IDP_BYTES: usize = 256 * 1024;

/// An identity provider's answer: its status and its body as JSON
/// (`Value::Null` when it is not JSON).
#[derive(Debug, Clone, PartialEq)]
pub struct JsonReply {
    pub status: u16,
    pub body: serde_json::Value,
}

/// `application/x-www-form-urlencoded` escaping (RFC 6749 appendix B; also
/// what client_secret_basic applies to the id and secret before base64).
pub fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// `base` with `pairs` appended to its query (an authorization URL), if
/// `base` is a URL.
pub fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> Result<String, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("not a URL: {e}"))?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url.into())
}

/// `base/<segment>`, the segment percent-encoded as one path segment
/// however it is spelt (`a/b` stays one).
pub fn url_with_segment(base: &str, segment: &str) -> Result<String, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("not a URL: {e}"))?;
    url.path_segments_mut().map_err(|()| "the URL cannot take a path".to_owned())?.push(segment);
    Ok(url.into())
}

impl Fetcher {
    /// GETs `url` (the URL rules above, no redirect followed) and reads at
    /// most [`MAX_IDP_BYTES`] of JSON: an IdP's discovery document or keys.
    pub async fn get_json(&self, url: &str) -> Result<JsonReply, String> {
        let parsed = self.check_url(url)?;
        let request = self.client.get(parsed).header(reqwest::header::ACCEPT, "application/json");
        read_json(request).await
    }

    /// POSTs `form` to `url` (an IdP's token endpoint), with HTTP Basic
    /// client authentication when `basic` is given; reads at most
    /// [`MAX_IDP_BYTES`] of JSON.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<JsonReply, String> {
        let parsed = self.check_url(url)?;
        let body = form.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>();
        let mut request = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body.join("&"));
        if let Some((id, secret)) = basic {
            use base64::Engine;
            let credentials = format!("{}:{}", form_encode(id), form_encode(secret));
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.header(reqwest::header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        read_json(request).await
    }
}

impl Fetcher {
    /// A JSON API call (a workflow's integration step): `method` on `url`
    /// with `headers` and, unless `None`, a JSON `body`; reads at most
    /// [`MAX_IDP_BYTES`] of JSON back. The URL rules above apply; no
    /// redirect is followed.
    pub async fn call_json(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<JsonReply, String> {
        let parsed = self.check_url(url)?;
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self.client.request(method, parsed).header(reqwest::header::ACCEPT, "application/json");
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        read_json(request).await
    }
}

/// How long a health probe waits for an answer's headers.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a health probe saw: the time to the answer's headers and its status,
/// or why nothing answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Probed {
    pub elapsed_ms: i64,
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Fetcher {
    /// GETs `url` (the URL rules above, no redirect followed, nothing read
    /// past the headers) within [`PROBE_TIMEOUT`], and times it.
    pub async fn probe(&self, url: &str) -> Probed {
        let started = std::time::Instant::now();
        let elapsed = |started: std::time::Instant| started.elapsed().as_millis().min(i64::MAX as u128) as i64;
        let parsed = match self.check_url(url) {
            Ok(parsed) => parsed,
            Err(problem) => return Probed { elapsed_ms: 0, status: None, error: Some(problem) },
        };
        match tokio::time::timeout(PROBE_TIMEOUT, self.client.get(parsed).send()).await {
            Ok(Ok(response)) => {
                Probed { elapsed_ms: elapsed(started), status: Some(response.status().as_u16()), error: None }
            }
            Ok(Err(err)) => Probed { elapsed_ms: elapsed(started), status: None, error: Some(describe(&err)) },
            Err(_) => Probed {
                elapsed_ms: elapsed(started),
                status: None,
                error: Some(format!("timed out after {} s", PROBE_TIMEOUT.as_secs())),
            },
        }
    }
}

async fn read_json(request: reqwest::RequestBuilder) -> Result<JsonReply, String> {
    let mut response = request.send().await.map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > MAX_IDP_BYTES as u64) {
        return Err(format!("the answer is larger than {MAX_IDP_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_IDP_BYTES {
            return Err(format!("the answer is larger than {MAX_IDP_BYTES} bytes"));
        }
    }
    Ok(JsonReply { status, body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            // IPv4 inside IPv6, by the embedded address.
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
            "::7f00:1",
            "::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001:0:7f00:1::1",
            "2001:0:0808:0808::80ff:fffe", // a public server, client 127.0.0.1 (inverted)
        ] {
            assert!(!is_public(blocked.parse().expect("ip")), "{blocked} must be refused");
        }
        for allowed in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7", // server and client 8.8.8.8
        ] {
            assert!(is_public(allowed.parse().expect("ip")), "{allowed} must pass");
        }
    }

    #[test]
    fn form_values_are_escaped_as_rfc_6749_says() {
        assert_eq!(form_encode("a b+c/d:é"), "a+b%2Bc%2Fd%3A%C3%A9");
        let url = url_with_query("https://idp.example/auth?x=1", &[("redirect_uri", "https://a.example/cb?y=2")])
            .expect("url");
        assert_eq!(url, "https://idp.example/auth?x=1&redirect_uri=https%3A%2F%2Fa.example%2Fcb%3Fy%3D2");
    }

    #[tokio::test]
    async fn an_idp_call_outside_local_mode_refuses_loopback_and_plain_http() {
        let fetcher = Fetcher::new(false).expect("client");
        assert!(fetcher.get_json("http://idp.example/.well-known/openid-configuration").await.is_err());
        let err = fetcher.post_form("https://127.0.0.1/token", &[("a", "b")], None).await.expect_err("refused");
        assert!(err.contains("not a public address"), "{err}");
    }

    #[tokio::test]
    async fn outside_local_mode_private_literals_and_plain_http_are_refused() {
        let fetcher = Fetcher::new(false).expect("client");
        assert!(fetcher.fetch("http://example.com/a.png").await.is_err());
        let err = fetcher.fetch("https://169.254.169.254/latest/meta-data/").await.expect_err("refused");
        assert!(err.contains("not a public address"), "{err}");
        assert!(fetcher.fetch("https://[::1]/a.png").await.is_err());
        assert!(fetcher.fetch("file:///etc/passwd").await.is_err());
        // IPv4 inside IPv6, as issue 11 found them accepted for webhooks.
        for url in [
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[::7f00:1]/",
            "https://[2002:7f00:1::]/",
            "https://[2001:0:7f00:1::1]/",
        ] {
            let err = check_url(url, false).expect_err(url);
            assert!(err.contains("not a public address"), "{url}: {err}");
        }
    }
}
