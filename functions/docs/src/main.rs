//! Lambda entry point of the docs group: wiring only. It answers from what
//! is compiled in (the committed document, the vendored Redoc bundle), so
//! it builds no AWS client and reads no configuration.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init();
    lambda_http::run(docs::app()).await.map_err(|e| anyhow::anyhow!(e))
}
