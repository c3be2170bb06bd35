//! The API.md error body, written for every `AppError` a handler or layer
//! returns: `{error, message, details, request_id}`, with the cause of an
//! internal error logged and never shown.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{error::AppError, request_id::current_request_id};

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let request_id = current_request_id();
        let (status, code, message, details, headers) = match self {
            AppError::Api { status, code, message, details, headers } => (status, code, message, details, headers),
            AppError::Internal(err) => {
                tracing::error!(error = ?err, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred; quote the request_id when reporting it".to_owned(),
                    json!({}),
                    Vec::new(),
                )
            }
        };
        let body = json!({
            "error": code,
            "message": message,
            "details": details,
            "request_id": request_id,
        });
        let mut response = (status, axum::Json(body)).into_response();
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
