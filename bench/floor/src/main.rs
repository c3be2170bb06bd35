//! The floor: what `lambda_http` itself costs, with the same crates and
//! release profile as every function but no state, no AWS client and no
//! configuration. Nothing of ours can start or answer faster.

use lambda_http::{Body, Error, Request, Response, run, service_fn};

async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"hello":"world"}"#))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
