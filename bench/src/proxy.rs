//! A TCP proxy between a function and moto that logs every AWS call passing
//! through it. It reads only the request heads (JSON-protocol services name the
//! operation in `X-Amz-Target`), skips bodies by `Content-Length`, and forwards
//! every byte untouched. moto closes the connection after each call, but the
//! parser does not rely on that: it handles several requests per connection.
//!
//! A call is logged, with the time, before its head is forwarded, and its
//! answer's first byte is timestamped before it is forwarded: by the time the
//! function has its answer (and can answer the bench), both are in the log.
//! The bench runs one invocation at a time, so the calls of an invocation are
//! the ones logged between its hand-out and its answer.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// Larger than any request head the SDK sends; past it the stream is not HTTP
/// as we understand it and is forwarded without counting.
const MAX_HEAD: usize = 64 * 1024;

/// One AWS call seen by the proxy.
#[derive(Clone, Debug)]
pub struct Call {
    /// `dynamodb:GetItem`, `events:PutEvents`, or `METHOD /path` without a target.
    pub name: String,
    /// When its head had been read.
    pub at: Instant,
    /// When the first byte of moto's answer came back.
    pub answered: Option<Instant>,
}

impl Call {
    /// Time spent in moto (and the loopback hops) for this call.
    pub fn duration(&self) -> Option<Duration> {
        self.answered.map(|a| a.saturating_duration_since(self.at))
    }
}

/// Entries are appended under the lock with `at` taken under it too, so the
/// log is sorted by `at`.
type CallLog = Arc<Mutex<Vec<Call>>>;

pub struct CountingProxy {
    url: String,
    calls: CallLog,
    accept: JoinHandle<()>,
}

impl CountingProxy {
    /// Listens on a free port of 127.0.0.1 and relays to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the counting proxy")?;
        let url = format!("http://{}", listener.local_addr().context("proxy address")?);
        let calls = CallLog::default();
        let log = calls.clone();
        let accept = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((client, _)) => {
                        let (upstream, log) = (upstream.clone(), log.clone());
                        tokio::spawn(async move {
                            if let Err(err) = relay(client, &upstream, &log).await {
                                eprintln!("bench: proxy connection to {upstream}: {err:#}");
                            }
                        });
                    }
                    Err(err) => eprintln!("bench: proxy accept: {err}"),
                }
            }
        });
        Ok(Self { url, calls, accept })
    }

    /// The endpoint to give the function as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The calls whose heads were read between `from` and `to`.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Call> {
        let log = lock(&self.calls);
        let start = log.partition_point(|c| c.at < from);
        let end = log.partition_point(|c| c.at <= to);
        log.get(start..end).map(<[Call]>::to_vec).unwrap_or_default()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, upstream: &str, log: &CallLog) -> Result<()> {
    let server = TcpStream::connect(upstream).await.with_context(|| format!("connecting to {upstream}"))?;
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    // The call on this connection still waiting for its answer (HTTP/1.1: one at a time).
    let waiting: Arc<Mutex<Option<usize>>> = Arc::default();
    let answers = {
        let (log, waiting) = (log.clone(), waiting.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = from_server.read(&mut buf).await {
                let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
                // Take the index first: never hold `waiting` while locking `log`.
                let answered = lock(&waiting).take();
                if let Some(index) = answered
                    && let Some(call) = lock(&log).get_mut(index)
                {
                    call.answered = Some(Instant::now());
                }
                if to_client.write_all(chunk).await.is_err() {
                    break;
                }
            }
            let _ = to_client.shutdown().await;
        })
    };
    let mut parser = HeadParser::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from_client.read(&mut buf).await.context("reading from the function")?;
        let Some(chunk) = buf.get(..n).filter(|c| !c.is_empty()) else { break };
        for name in parser.feed(chunk) {
            let index = {
                let mut log = lock(log);
                log.push(Call { name, at: Instant::now(), answered: None });
                log.len() - 1
            };
            *lock(&waiting) = Some(index);
        }
        to_server.write_all(chunk).await.context("writing to moto")?;
    }
    let _ = to_server.shutdown().await;
    let _ = answers.await;
    Ok(())
}

/// Where the parser is in the client's byte stream.
#[derive(Debug)]
enum Position {
    Head(Vec<u8>),
    Body(u64),
    /// Chunked bodies or something that is not HTTP: stop counting on this
    /// connection (the SDK sends `Content-Length`, so this is a safety net).
    Lost,
}

#[derive(Debug)]
pub struct HeadParser {
    at: Position,
}

impl Default for HeadParser {
    fn default() -> Self {
        Self { at: Position::Head(Vec::new()) }
    }
}

impl HeadParser {
    /// Consumes a chunk of the client's stream; returns the calls whose heads
    /// were completed by it.
    pub fn feed(&mut self, mut data: &[u8]) -> Vec<String> {
        let mut calls = Vec::new();
        while !data.is_empty() {
            match &mut self.at {
                Position::Lost => break,
                Position::Body(left) => {
                    let take = usize::try_from(*left).unwrap_or(usize::MAX).min(data.len());
                    *left -= take as u64;
                    data = data.get(take..).unwrap_or_default();
                    if *left == 0 {
                        self.at = Position::Head(Vec::new());
                    }
                }
                Position::Head(head) => {
                    let before = head.len();
                    head.extend_from_slice(data);
                    let Some(end) = find_head_end(head) else {
                        if head.len() > MAX_HEAD {
                            self.at = Position::Lost;
                        }
                        break;
                    };
                    let (call, body) = parse_head(head.get(..end).unwrap_or_default());
                    calls.push(call);
                    // What followed the head in this chunk is body or the next request.
                    data = data.get(end - before..).unwrap_or_default();
                    self.at = match body {
                        Some(0) => Position::Head(Vec::new()),
                        Some(len) => Position::Body(len),
                        None => Position::Lost,
                    };
                }
            }
        }
        calls
    }
}

/// The index just past the blank line that ends an HTTP head.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The call's name and its body length (`None`: chunked, not countable).
fn parse_head(head: &[u8]) -> (String, Option<u64>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let (mut target, mut length, mut chunked) = (None, Some(0), false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "x-amz-target" => target = Some(value.to_owned()),
            "content-length" => length = value.parse().ok(),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let call = match target {
        Some(target) => operation_name(&target),
        // Query/REST protocols (S3, ...): method and path say what it was.
        None => request_line.rsplit_once(' ').map_or(request_line, |(head, _)| head).to_owned(),
    };
    (call, if chunked { None } else { length })
}

/// `DynamoDB_20120810.GetItem` -> `dynamodb:GetItem` (IAM's spelling, as in the template).
fn operation_name(target: &str) -> String {
    let Some((service, operation)) = target.split_once('.') else { return target.to_owned() };
    let service = match service {
        s if s.starts_with("DynamoDB_") => "dynamodb",
        "AWSEvents" => "events",
        "AmazonSQS" => "sqs",
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

    fn request(target: &str, body: &str) -> String {
        format!(
            "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nX-Amz-Target: {target}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn counts_requests_split_anywhere_and_pipelined() {
        let stream = [
            request("DynamoDB_20120810.GetItem", r#"{"TableName":"t"}"#),
            request("AWSEvents.PutEvents", "{}"),
            "GET /bucket/key HTTP/1.1\r\nhost: x\r\n\r\n".to_owned(),
        ]
        .concat();
        for split in 1..stream.len() {
            let mut parser = HeadParser::default();
            let (a, b) = stream.as_bytes().split_at(split);
            let mut calls = parser.feed(a);
            calls.extend(parser.feed(b));
            assert_eq!(calls, ["dynamodb:GetItem", "events:PutEvents", "GET /bucket/key"], "split at {split}");
        }
    }

    /// Bytes pass untouched both ways, and the call is logged with its answer time.
    #[tokio::test]
    async fn relays_and_logs() -> Result<()> {
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let upstream_addr = upstream.local_addr()?.to_string();
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        let server = tokio::spawn(async move {
            let (mut socket, _) = upstream.accept().await?;
            let mut got = vec![0u8; 1024];
            let n = socket.read(&mut got).await?;
            socket.write_all(answer.as_bytes()).await?;
            socket.shutdown().await?;
            anyhow::Ok(got.get(..n).map(<[u8]>::to_vec).unwrap_or_default())
        });
        let proxy = CountingProxy::start(upstream_addr).await?;
        let before = Instant::now();
        let mut client = TcpStream::connect(proxy.url().trim_start_matches("http://")).await?;
        let sent = request("DynamoDB_20120810.GetItem", "{}");
        client.write_all(sent.as_bytes()).await?;
        let mut received = String::new();
        client.read_to_string(&mut received).await?;
        assert_eq!(received, answer);
        assert_eq!(server.await??, sent.as_bytes());
        let calls = proxy.between(before, Instant::now());
        assert_eq!(calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["dynamodb:GetItem"]);
        assert!(calls.first().and_then(Call::duration).is_some());
        Ok(())
    }

    #[test]
    fn stops_counting_on_chunked_bodies() {
        let mut parser = HeadParser::default();
        let head = "POST / HTTP/1.1\r\nx-amz-target: AmazonSQS.SendMessage\r\ntransfer-encoding: chunked\r\n\r\n";
        let next = request("DynamoDB_20120810.PutItem", "{}");
        assert_eq!(parser.feed(format!("{head}5\r\nhello\r\n0\r\n\r\n{next}").as_bytes()), ["sqs:SendMessage"]);
    }
}
