//! A webhook receiver on loopback for the dispatcher's throughput run: it
//! answers every POST `200 {"ok":true}` at once and counts them, so the
//! figure is the dispatcher's, not a slow endpoint's.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use anyhow::{Context, Result};
use axum::{Router, extract::State, routing::post};

pub struct Receiver {
    url: String,
    received: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("binding the webhook receiver")?;
        let url = format!("http://{}/hooks", listener.local_addr()?);
        let received = Arc::new(AtomicUsize::new(0));
        let app = Router::new().route("/hooks", post(receive)).with_state(received.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, received })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }
}

async fn receive(State(received): State<Arc<AtomicUsize>>, _body: axum::body::Bytes) -> &'static str {
    received.fetch_add(1, Ordering::SeqCst);
    r#"{"ok":true}"#
}
