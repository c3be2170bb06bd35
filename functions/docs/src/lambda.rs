//! The docs function's Lambda answers, with one body written out as built.
//!
//! lambda_http turns an axum response into Lambda's JSON answer by copying
//! the body into a string and escaping it as JSON. For the OpenAPI document
//! sent to a caller that refuses gzip (846 KB of JSON, every quote escaped)
//! that was ~1.3 ms of CPU on every such request (docs/performance.md). The
//! handler marks that response with a [`JsonLiteralBody`]: the document as
//! a JSON string literal, escaped once at build time (build.rs). Here the
//! marked body leaves axum empty, lambda_http builds the rest of the answer
//! as usual (status, headers, cookies), and the literal is written into the
//! answer as it stands. Outside Lambda (the local server, tests) the mark is
//! ignored and the body is served as it is.

use std::cell::Cell;

use axum::{
    Router,
    body::HttpBody,
    http::{HeaderValue, header},
    response::Response,
};
use lambda_http::{LambdaEvent, lambda_runtime, request::LambdaRequest, tower::ServiceExt};
use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

/// A response body given as the JSON string literal that encodes it, for
/// the Lambda answer to carry without escaping it again.
#[derive(Clone, Copy, Debug)]
pub struct JsonLiteralBody(pub &'static RawValue);

tokio::task_local! {
    /// The literal a marked response left behind during one invocation.
    static LITERAL_BODY: Cell<Option<&'static RawValue>>;
}

/// Serves `app` as the Lambda function, literal bodies written as built.
pub async fn run(app: Router) -> Result<(), lambda_http::Error> {
    // `Adapter` is what `lambda_http::run` wraps the app in (public, though
    // hidden from its docs); Cargo.lock pins the version it is used at.
    let adapter = lambda_http::Adapter::from(leaving_literal_bodies(app));
    lambda_runtime::run(lambda_http::service_fn(move |event| answer(adapter.clone(), event))).await
}

fn leaving_literal_bodies(app: Router) -> Router {
    app.layer(axum::middleware::map_response(leave_literal_bodies))
}

/// Empties a marked body and keeps its literal for [`answer`] (only inside
/// an invocation: elsewhere there is no one to write it). The length stays
/// the body's: axum would otherwise state the empty one's.
async fn leave_literal_bodies(mut response: Response) -> Response {
    let length = response.body().size_hint().exact();
    if let Some(JsonLiteralBody(literal)) = response.extensions_mut().remove::<JsonLiteralBody>()
        && LITERAL_BODY.try_with(|left| left.set(Some(literal))).is_ok()
    {
        *response.body_mut() = axum::body::Body::empty();
        if let Some(length) = length {
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    response
}

/// What the function answers: lambda_http's answer, or its fields with the
/// literal as `body`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer<R> {
    Adapted(R),
    WithLiteralBody {
        #[serde(flatten)]
        fields: Map<String, Value>,
        body: &'static RawValue,
    },
}

/// One invocation through lambda_http's adapter; a literal the response
/// left behind becomes the answer's body.
pub async fn answer<S, R, E>(adapter: S, event: LambdaEvent<LambdaRequest>) -> Result<Answer<R>, lambda_http::Error>
where
    S: lambda_http::Service<LambdaEvent<LambdaRequest>, Response = R, Error = E>,
    R: Serialize,
    E: Into<lambda_http::Error>,
{
    let (adapted, literal) = LITERAL_BODY
        .scope(Cell::new(None), async {
            let adapted = adapter.oneshot(event).await;
            (adapted, LITERAL_BODY.with(Cell::take))
        })
        .await;
    let adapted = adapted.map_err(Into::into)?;
    let Some(body) = literal else {
        return Ok(Answer::Adapted(adapted));
    };
    // The adapted answer is small here (its body is empty): its fields are
    // copied, not the document.
    let Value::Object(mut fields) = serde_json::to_value(&adapted)? else {
        return Err("lambda_http's answer is not a JSON object".into());
    };
    fields.remove("body");
    fields.insert("isBase64Encoded".to_owned(), Value::Bool(false));
    Ok(Answer::WithLiteralBody { fields, body })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use base64::Engine;

    use super::*;

    const SAMPLE_EVENT: &str = include_str!("../../../events/docs-openapi.json");

    /// The function's serialized answer to the sample event (API Gateway's
    /// HTTP API, payload 2.0) with `headers` added to the request.
    async fn lambda_answer(headers: &[(&str, &str)]) -> Value {
        let mut event: Value = serde_json::from_str(SAMPLE_EVENT).expect("sample event");
        for (name, value) in headers {
            event["headers"][*name] = Value::from(*value);
        }
        let request: LambdaRequest = serde_json::from_value(event).expect("an HTTP API event");
        let adapter = lambda_http::Adapter::from(leaving_literal_bodies(crate::app()));
        let answer =
            answer(adapter, LambdaEvent::new(request, lambda_runtime::Context::default())).await.expect("answer");
        serde_json::from_slice(&serde_json::to_vec(&answer).expect("serializable")).expect("one JSON object")
    }

    #[tokio::test]
    async fn the_plain_document_is_the_answers_body_exactly_with_the_usual_headers() {
        let answer = lambda_answer(&[]).await;
        assert_eq!(answer["statusCode"], 200);
        assert_eq!(answer["isBase64Encoded"], false);
        assert_eq!(answer["body"].as_str(), Some(crate::OPENAPI_JSON), "the body, unescaped, is the document");
        let headers = &answer["headers"];
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["etag"], crate::OPENAPI_ETAG);
        assert_eq!(headers["vary"], "accept-encoding");
        assert_eq!(headers["x-request-id"], "Bx7kThbCoAMEb1w=", "the layers around the routes still ran");
        assert_eq!(headers["content-length"], crate::OPENAPI_JSON.len().to_string(), "the document's length");
    }

    #[tokio::test]
    async fn other_answers_are_lambda_https_own() {
        let gzipped = lambda_answer(&[("accept-encoding", "gzip")]).await;
        assert_eq!((gzipped["statusCode"].as_i64(), gzipped["isBase64Encoded"].as_bool()), (Some(200), Some(true)));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(gzipped["body"].as_str().expect("a base64 body"))
            .expect("base64");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).expect("gzip");
        assert_eq!(text, crate::OPENAPI_JSON);

        let etag = gzipped["headers"]["etag"].as_str().expect("an ETag").to_owned();
        let revalidated = lambda_answer(&[("if-none-match", &etag)]).await;
        assert_eq!(revalidated["statusCode"], 304);
        assert!(revalidated.get("body").is_none_or(|body| body == ""), "{revalidated}");
    }

    #[tokio::test]
    async fn outside_an_invocation_the_marked_body_is_served_as_it_is() {
        let response = leave_literal_bodies(crate::openapi_document(axum::http::HeaderMap::new()).await).await;
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        assert_eq!(body, crate::OPENAPI_JSON.as_bytes());
    }
}
