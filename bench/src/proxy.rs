//! The AWS endpoint the functions are given: an HTTP/1.1 server on loopback
//! that keeps the function's connections alive and, per call, either
//!
//! - **forwards** it to moto (a connection per call, as moto closes them) and
//!   logs its name and the time moto took, recording the exchange when asked; or
//! - **replays** a recorded answer at memory speed: the function's own work is
//!   then the whole of its latency, moto's connect-per-call and its Python
//!   out of the figure (issue 19).
//!
//! Calls are named as IAM spells them (`dynamodb:GetItem` from the JSON
//! protocols' `X-Amz-Target`, `METHOD /path` otherwise). The bench runs one
//! invocation at a time, so the calls of an invocation are the ones logged
//! between its hand-out and its answer.
//!
//! A replayed call is matched within its episode (one invocation, or a cold
//! start with its first request) to a recorded call of the same name and the
//! same body, else to the recorded call at the same position if it has the
//! same name (bodies that carry a clock or a fresh id differ run to run).
//! A call that matches neither (a cache that expired at another moment, as
//! the admin health report's does) gets the last answer moto gave to the
//! same call (operation and body) anywhere in the run, else to the same
//! operation, and is counted as substituted; a call to an operation moto
//! never answered is a miss: a 500, and the bench stops.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Larger than any answer the bench's requests get from moto.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// One AWS call seen by the endpoint.
#[derive(Clone, Debug)]
pub struct Call {
    /// `dynamodb:GetItem`, `events:PutEvents`, or `METHOD /path` without a target.
    pub name: String,
    /// When its request had been read.
    pub at: Instant,
    /// When its answer was ready to send back (moto's, or the recording's).
    pub answered: Option<Instant>,
}

impl Call {
    /// Time spent waiting on the answer (moto and its loopback hop; ~0 replayed).
    pub fn duration(&self) -> Option<Duration> {
        self.answered.map(|a| a.saturating_duration_since(self.at))
    }
}

/// One call and moto's answer to it.
#[derive(Clone, Debug)]
pub struct Exchange {
    name: String,
    /// The request body in `canonical` form.
    request_body: Bytes,
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// moto's status, end-to-end headers and body.
type Answer = (StatusCode, Vec<(HeaderName, HeaderValue)>, Bytes);

/// The calls of one cold start with its first request, or of one invocation.
#[derive(Clone, Debug, Default)]
pub struct Episode {
    exchanges: Vec<Exchange>,
}

enum Mode {
    Forward { recording: Option<Vec<Exchange>> },
    Replay { episode: Episode, used: Vec<bool>, position: usize },
}

struct Inner {
    upstream: String,
    mode: Mutex<Mode>,
    /// moto's last answer to each call (operation and body) and to each
    /// operation, for substitutions.
    library: Mutex<std::collections::HashMap<(String, Bytes), Exchange>>,
    by_operation: Mutex<std::collections::HashMap<String, Exchange>>,
    substituted: Mutex<usize>,
    /// Appended with `at` taken under the lock, so sorted by `at`.
    calls: Mutex<Vec<Call>>,
    misses: Mutex<Vec<String>>,
}

pub struct AwsEndpoint {
    url: String,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
}

impl AwsEndpoint {
    /// Listens on a free port of 127.0.0.1; forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the AWS endpoint")?;
        let url = format!("http://{}", listener.local_addr().context("endpoint address")?);
        let inner = Arc::new(Inner {
            upstream,
            mode: Mutex::new(Mode::Forward { recording: None }),
            library: Mutex::default(),
            by_operation: Mutex::default(),
            substituted: Mutex::default(),
            calls: Mutex::default(),
            misses: Mutex::default(),
        });
        let app = Router::new().fallback(answer).with_state(inner.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("bench: AWS endpoint stopped: {err}");
            }
        });
        Ok(Self { url, inner, server })
    }

    /// The endpoint to give the function as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The calls whose requests were read between `from` and `to`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Call> {
        let log = lock(&self.inner.calls);
        let start = log.partition_point(|c| c.at < from);
        let end = log.partition_point(|c| c.at <= to);
        log.get(start..end).map(<[Call]>::to_vec).unwrap_or_default()
    }

    /// Forward to moto from now on, recording every exchange into a new episode.
    pub fn record(&self) {
        *lock(&self.inner.mode) = Mode::Forward { recording: Some(Vec::new()) };
    }

    /// The episode recorded since `record` (empty if none); forwarding goes on.
    pub fn take_episode(&self) -> Episode {
        let mut mode = lock(&self.inner.mode);
        match &mut *mode {
            Mode::Forward { recording } => Episode { exchanges: recording.take().unwrap_or_default() },
            Mode::Replay { .. } => Episode::default(),
        }
    }

    /// Answer from `episode` from now on; nothing reaches moto.
    pub fn replay(&self, episode: Episode) {
        let used = vec![false; episode.exchanges.len()];
        *lock(&self.inner.mode) = Mode::Replay { episode, used, position: 0 };
    }

    /// Back to forwarding. Fails if a replayed call found no answer since the
    /// last check; otherwise the number of calls answered by substitution.
    pub fn end_replay(&self) -> Result<usize> {
        *lock(&self.inner.mode) = Mode::Forward { recording: None };
        let misses = std::mem::take(&mut *lock(&self.inner.misses));
        if !misses.is_empty() {
            bail!("replayed calls without a recorded answer: {}", misses.join("; "));
        }
        Ok(std::mem::take(&mut *lock(&self.inner.substituted)))
    }
}

impl Drop for AwsEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(err) => {
            return (StatusCode::BAD_REQUEST, format!("bench endpoint: reading the body: {err}")).into_response();
        }
    };
    let name = call_name(&parts.method, parts.uri.path(), &parts.headers);
    let key = canonical(&body);
    let index = {
        let mut log = lock(&inner.calls);
        log.push(Call { name: name.clone(), at: Instant::now(), answered: None });
        log.len() - 1
    };
    let replayed = {
        let mut mode = lock(&inner.mode);
        match &mut *mode {
            Mode::Replay { episode, used, position } => Some(pick(episode, used, position, &name, &key)),
            Mode::Forward { .. } => None,
        }
    };
    let substitute = || {
        let same_call = lock(&inner.library).get(&(name.clone(), key.clone())).cloned();
        same_call.or_else(|| lock(&inner.by_operation).get(&name).cloned())
    };
    let exchange = match replayed {
        Some(Some(exchange)) => exchange,
        Some(None) => match substitute() {
            Some(exchange) => {
                *lock(&inner.substituted) += 1;
                exchange
            }
            None => {
                lock(&inner.misses).push(name.clone());
                return (StatusCode::INTERNAL_SERVER_ERROR, format!("bench endpoint: no recorded answer for {name}"))
                    .into_response();
            }
        },
        None => match forward(&inner.upstream, &parts, &body).await {
            Ok((status, headers, answer)) => {
                let exchange = Exchange { name: name.clone(), request_body: key, status, headers, body: answer };
                if let Mode::Forward { recording: Some(recording) } = &mut *lock(&inner.mode) {
                    recording.push(exchange.clone());
                }
                lock(&inner.library).insert((name.clone(), exchange.request_body.clone()), exchange.clone());
                lock(&inner.by_operation).insert(name.clone(), exchange.clone());
                exchange
            }
            Err(err) => {
                return (StatusCode::BAD_GATEWAY, format!("bench endpoint: forwarding {name} to moto: {err:#}"))
                    .into_response();
            }
        },
    };
    if let Some(call) = lock(&inner.calls).get_mut(index) {
        call.answered = Some(Instant::now());
    }
    let mut response = Response::new(Body::from(exchange.body));
    *response.status_mut() = exchange.status;
    response.headers_mut().extend(exchange.headers);
    response
}

/// The recorded exchange for the next replayed call (see the module doc).
fn pick(episode: &Episode, used: &mut [bool], position: &mut usize, name: &str, body: &[u8]) -> Option<Exchange> {
    let same = episode
        .exchanges
        .iter()
        .enumerate()
        .find(|(i, e)| !used.get(*i).copied().unwrap_or(true) && e.name == name && e.request_body == body)
        .map(|(i, _)| i);
    let at = *position;
    let index = same.or_else(|| {
        episode.exchanges.get(at).filter(|e| e.name == name && !used.get(at).copied().unwrap_or(true)).map(|_| at)
    })?;
    if let Some(slot) = used.get_mut(index) {
        *slot = true;
    }
    *position += 1;
    episode.exchanges.get(index).cloned()
}

/// One call to moto on a connection of its own, which moto closes after
/// answering: the request as the function sent it, with the body re-framed.
async fn forward(upstream: &str, parts: &axum::http::request::Parts, body: &Bytes) -> Result<Answer> {
    let mut head = format!("{} {} HTTP/1.1\r\n", parts.method, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    for (name, value) in &parts.headers {
        if hop_by_hop(name) {
            continue;
        }
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().context("a header that is not text")?);
        head.push_str("\r\n");
    }
    head.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let mut stream = TcpStream::connect(upstream).await.with_context(|| format!("connecting to {upstream}"))?;
    // One write, no Nagle: a head and a body sent apart wait on the peer's
    // delayed ACK (tens of ms per call).
    stream.set_nodelay(true)?;
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await?;
    // Read up to the answer's end by its framing, not to EOF: moto sends its
    // close about 10 ms after the last byte.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut buf).await.context("reading moto's answer")?;
        raw.extend_from_slice(buf.get(..n).unwrap_or_default());
        if n == 0 || answer_complete(&raw) {
            break;
        }
    }
    parse_answer(&raw)
}

/// Whether `raw` holds a whole answer: its head, and all of a
/// `Content-Length` body or a chunked body's last chunk.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).to_ascii_lowercase();
    let body = raw.get(end + 4..).unwrap_or_default();
    for line in head.split("\r\n") {
        if let Some(length) = line.strip_prefix("content-length:") {
            return length.trim().parse::<usize>().is_ok_and(|length| body.len() >= length);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return body.ends_with(b"0\r\n\r\n");
        }
    }
    false
}

fn hop_by_hop(name: &HeaderName) -> bool {
    [header::CONNECTION, header::CONTENT_LENGTH, header::TRANSFER_ENCODING, header::UPGRADE].contains(name)
        || name.as_str() == "keep-alive"
}

/// Status, end-to-end headers and body of a complete HTTP/1.1 answer.
fn parse_answer(raw: &[u8]) -> Result<Answer> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").context("moto's answer has no complete head")?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default()).context("moto's head is not text")?;
    let mut rest = raw.get(end + 4..).unwrap_or_default().to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
    let status = StatusCode::from_u16(status.context("no status in moto's answer")?)?;
    let mut headers = Vec::new();
    let (mut length, mut chunked) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = HeaderName::from_bytes(name.trim().as_bytes())?;
        let value = value.trim();
        if name == header::CONTENT_LENGTH {
            length = value.parse::<usize>().ok();
        } else if name == header::TRANSFER_ENCODING {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
        if !hop_by_hop(&name) {
            headers.push((name, HeaderValue::from_str(value)?));
        }
    }
    if chunked {
        rest = dechunk(&rest)?;
    } else if let Some(length) = length {
        rest.truncate(length);
    }
    Ok((status, headers, Bytes::from(rest)))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").context("a chunk size line without its end")?;
        let size_text = std::str::from_utf8(data.get(..line_end).unwrap_or_default())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)?;
        data = data.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).context("a chunk shorter than its size")?);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// A body as the matching compares it: JSON with its object keys sorted
/// (the SDK serialises maps, such as a `Key`, in a per-process random
/// order), anything else as sent.
fn canonical(body: &[u8]) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => Bytes::from(json.to_string()),
        Err(_) => Bytes::copy_from_slice(body),
    }
}

fn call_name(method: &axum::http::Method, path: &str, headers: &HeaderMap) -> String {
    match headers.get("x-amz-target").and_then(|t| t.to_str().ok()) {
        Some(target) => operation_name(target),
        // Query/REST protocols (S3, STS, ...): method and path say what it was.
        None => format!("{method} {path}"),
    }
}

/// `DynamoDB_20120810.GetItem` -> `dynamodb:GetItem` (IAM's spelling, as in the template).
fn operation_name(target: &str) -> String {
    let Some((service, operation)) = target.split_once('.') else { return target.to_owned() };
    let service = match service {
        s if s.starts_with("DynamoDB_") => "dynamodb",
        "AWSEvents" => "events",
        "AmazonSQS" => "sqs",
        "secretsmanager" => "secretsmanager",
        other => other,
    };
    format!("{service}:{operation}")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-connection-per-answer upstream like moto: answers `answer` to
    /// every request and returns what it was sent.
    async fn upstream(answer: &'static str, requests: usize) -> Result<(String, JoinHandle<Result<Vec<String>>>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut socket, _) = listener.accept().await?;
                let mut got = vec![0u8; 4096];
                let n = socket.read(&mut got).await?;
                seen.push(String::from_utf8_lossy(got.get(..n).unwrap_or_default()).into_owned());
                socket.write_all(answer.as_bytes()).await?;
                socket.shutdown().await?;
            }
            Ok(seen)
        });
        Ok((address, server))
    }

    async fn call(endpoint: &AwsEndpoint, target: &str, body: &str) -> Result<String> {
        let mut client = TcpStream::connect(endpoint.url().trim_start_matches("http://")).await?;
        let request = format!(
            "POST / HTTP/1.1\r\nhost: x\r\nx-amz-target: {target}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        client.read_to_string(&mut answer).await?;
        Ok(answer.rsplit_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
    }

    #[tokio::test]
    async fn forwards_records_and_replays_without_reaching_moto() -> Result<()> {
        let (address, server) =
            upstream("HTTP/1.1 200 OK\r\ncontent-length: 13\r\nconnection: close\r\n\r\n{\"Item\":null}", 2).await?;
        let endpoint = AwsEndpoint::start(address).await?;
        let before = Instant::now();
        endpoint.record();
        assert_eq!(call(&endpoint, "DynamoDB_20120810.GetItem", r#"{"Key":"a"}"#).await?, r#"{"Item":null}"#);
        assert_eq!(call(&endpoint, "DynamoDB_20120810.PutItem", r#"{"at":1}"#).await?, r#"{"Item":null}"#);
        let episode = endpoint.take_episode();
        assert_eq!(episode.exchanges.len(), 2);
        let sent = server.await??;
        assert!(sent.first().is_some_and(|r| r.contains("x-amz-target: DynamoDB_20120810.GetItem")), "{sent:?}");
        let calls = endpoint.between(before, Instant::now());
        assert_eq!(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["dynamodb:GetItem", "dynamodb:PutItem"]);

        // moto is gone: the answers come from the episode, the PutItem by
        // position although its body (a clock) changed.
        endpoint.replay(episode.clone());
        assert_eq!(call(&endpoint, "DynamoDB_20120810.GetItem", r#"{"Key":"a"}"#).await?, r#"{"Item":null}"#);
        assert_eq!(call(&endpoint, "DynamoDB_20120810.PutItem", r#"{"at":2}"#).await?, r#"{"Item":null}"#);
        endpoint.end_replay()?;

        // A third GetItem is not in the episode: moto's answer to that
        // operation stands in, counted. An operation moto never answered
        // is a miss, reported once.
        endpoint.replay(episode);
        call(&endpoint, "DynamoDB_20120810.GetItem", r#"{"Key":"a"}"#).await?;
        assert_eq!(call(&endpoint, "DynamoDB_20120810.GetItem", r#"{"Key":"b"}"#).await?, r#"{"Item":null}"#);
        assert_eq!(endpoint.end_replay()?, 1);
        endpoint.replay(Episode::default());
        let missed = call(&endpoint, "AWSEvents.PutEvents", "{}").await?;
        assert!(missed.contains("no recorded answer for events:PutEvents"), "{missed}");
        assert!(endpoint.end_replay().is_err());
        assert_eq!(endpoint.end_replay()?, 0);
        Ok(())
    }

    #[test]
    fn parses_chunked_and_sized_answers() -> Result<()> {
        let (status, headers, body) = parse_answer(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nx-a: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )?;
        assert_eq!((status.as_u16(), body.as_ref()), (201, b"abcde".as_ref()));
        assert_eq!(headers.len(), 1, "hop-by-hop headers are dropped");
        let (_, _, body) = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")?;
        assert_eq!(body.as_ref(), b"ok");
        assert!(!answer_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no"));
        assert!(answer_complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
        assert!(!answer_complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"));
        assert!(answer_complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"));
        Ok(())
    }
}
