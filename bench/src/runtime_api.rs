//! A minimal Lambda Runtime API: the HTTP interface Lambda offers a function's
//! runtime (`AWS_LAMBDA_RUNTIME_API`). It does just enough for `lambda_runtime`
//! to start, take events one at a time and answer them, so the real release
//! binaries run exactly as they are deployed, and it timestamps the moments the
//! bench measures: the first `/next` (init done) and each hand-out and answer.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, anyhow};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderName, HeaderValue, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

/// The function's timeout as Lambda would announce it in the deadline header.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(30);

/// What the function answered to one invocation, with the bench's timestamps.
#[derive(Debug)]
pub struct Reply {
    /// `false` when the runtime posted to `/error` (the handler failed).
    pub ok: bool,
    pub body: Bytes,
    /// When `/next` handed the event out.
    pub handed_out: Instant,
    /// When the answer had been read completely.
    pub received: Instant,
}

impl Reply {
    pub fn latency(&self) -> Duration {
        self.received.saturating_duration_since(self.handed_out)
    }
}

struct Queued {
    payload: Bytes,
    reply: oneshot::Sender<Reply>,
}

struct InFlight {
    handed_out: Instant,
    reply: oneshot::Sender<Reply>,
}

struct Inner {
    /// Events waiting for the runtime's next `/next`. A tokio mutex: the
    /// long-polling `/next` holds it while it waits.
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    in_flight: Mutex<HashMap<String, InFlight>>,
    first_next: OnceLock<Instant>,
    init_error: OnceLock<String>,
    function_arn: String,
}

/// One Runtime API server, for one function process.
pub struct RuntimeApi {
    addr: SocketAddr,
    inner: Arc<Inner>,
    queue: mpsc::UnboundedSender<Queued>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start(function_name: &str) -> Result<Self> {
        let (queue, receiver) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            queue: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            first_next: OnceLock::new(),
            init_error: OnceLock::new(),
            function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function_name}"),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the Runtime API")?;
        let addr = listener.local_addr().context("Runtime API address")?;
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                eprintln!("bench: Runtime API server stopped: {err}");
            }
        });
        Ok(Self { addr, inner, queue, server })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// When the runtime first asked for an event: its initialisation was over.
    pub fn first_next(&self) -> Option<Instant> {
        self.inner.first_next.get().copied()
    }

    /// The body of a `/runtime/init/error` post, if there was one.
    pub fn init_error(&self) -> Option<&str> {
        self.inner.init_error.get().map(String::as_str)
    }

    /// Queues an event for the next `/next`; the receiver yields the answer.
    pub fn enqueue(&self, payload: Bytes) -> Result<oneshot::Receiver<Reply>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Queued { payload, reply }).map_err(|_| anyhow!("the Runtime API server has stopped"))?;
        Ok(answer)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Long poll: waits for a queued event and hands it out with Lambda's headers.
async fn next(State(inner): State<Arc<Inner>>) -> Response {
    // Only the first call sets it: that is the end of the function's init.
    let _ = inner.first_next.set(Instant::now());
    let queued = inner.queue.lock().await.recv().await;
    let Some(Queued { payload, reply }) = queued else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the bench is shutting down").into_response();
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let deadline = now_ms + INVOCATION_TIMEOUT.as_millis();
    // X-Ray's format: version, epoch seconds in hex, 96 random bits.
    let trace_id = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        now_ms / 1000,
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16],
    );
    let headers = [
        ("lambda-runtime-aws-request-id", request_id.clone()),
        ("lambda-runtime-deadline-ms", deadline.to_string()),
        ("lambda-runtime-invoked-function-arn", inner.function_arn.clone()),
        ("lambda-runtime-trace-id", trace_id),
    ];
    let mut response = payload.into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(HeaderName::from_static(name), value);
        }
    }
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let handed_out = Instant::now();
    lock(&inner.in_flight).insert(request_id, InFlight { handed_out, reply });
    response
}

async fn response(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&inner, &id, true, body)
}

async fn error(State(inner): State<Arc<Inner>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&inner, &id, false, body)
}

fn answer(inner: &Inner, id: &str, ok: bool, body: Bytes) -> Response {
    let received = Instant::now();
    let Some(InFlight { handed_out, reply }) = lock(&inner.in_flight).remove(id) else {
        return (StatusCode::BAD_REQUEST, "unknown or already answered request id").into_response();
    };
    // The bench may have given up on this invocation (timeout); nothing to tell.
    let _ = reply.send(Reply { ok, body, handed_out, received });
    (StatusCode::ACCEPTED, [(CONTENT_TYPE, "application/json")], r#"{"status":"OK"}"#).into_response()
}

async fn init_error(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let _ = inner.init_error.set(String::from_utf8_lossy(&body).into_owned());
    (StatusCode::ACCEPTED, [(CONTENT_TYPE, "application/json")], r#"{"status":"OK"}"#).into_response()
}

/// A poisoned map is still consistent (inserts and removes are single calls).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
