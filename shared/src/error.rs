//! The one error type: every failure a caller can see becomes a status, a stable
//! snake_case code and the API.md body `{error, message, details, request_id}`
//! (the body is written by the web layer, `web::error`). A leaf: every layer
//! may return it.

use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// One invalid field, as listed under `details.fields`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A caller-facing refusal with a stable code.
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
        /// Extra response headers (e.g. `Retry-After`).
        headers: Vec<(header::HeaderName, HeaderValue)>,
    },
    /// Anything the caller cannot act on: logged with its cause chain, answered
    /// as an opaque 500 carrying only the request id.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError::Api { status, code, message: message.into(), details: json!({}), headers: Vec::new() }
    }

    pub fn with_details(mut self, value: Value) -> Self {
        if let AppError::Api { details, .. } = &mut self {
            *details = value;
        }
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        if let AppError::Api { headers, .. } = &mut self {
            headers.push((name, value));
        }
        self
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => format!("{} fields are invalid", fields.len()),
        };
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", message).with_details(json!({ "fields": fields }))
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_token", message)
    }

    pub fn token_expired() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "token_expired", "the token has expired")
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// Seed 000's RBAC denial body, under `details`.
    pub fn insufficient_permissions(
        required_role: &str,
        current_role: &str,
        resource: &str,
        tenant_id: impl ToString,
    ) -> Self {
        Self::forbidden("insufficient_permissions", format!("this action requires the {required_role} role"))
            .with_details(json!({
                "required_role": required_role,
                "current_role": current_role,
                "resource": resource,
                "tenant_id": tenant_id.to_string(),
            }))
    }

    /// Missing and foreign resources answer alike so ids reveal nothing.
    pub fn not_found(resource: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{resource} not found"))
            .with_details(json!({ "resource": resource }))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        AppError::Internal(err.into())
    }

    /// For workers, whose errors are anyhow's: the cause of an internal
    /// error as it is, a refusal as its message.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            AppError::Internal(e) => e,
            other => anyhow::anyhow!("{other}"),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Api { status, .. } => *status,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The fields a `validation_failed` names (`details.fields[].field`), in
    /// order; empty for any other error.
    pub fn invalid_fields(&self) -> Vec<String> {
        match self {
            AppError::Api { details, .. } => details["fields"]
                .as_array()
                .map(|fields| fields.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
                .unwrap_or_default(),
            AppError::Internal(_) => Vec::new(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Api { code, .. } => code,
            AppError::Internal(_) => "internal",
        }
    }
}

/// Store and SDK failures are dependency failures unless mapped explicitly.
impl<E, R> From<aws_sdk_dynamodb::error::SdkError<E, R>> for AppError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> Self {
        AppError::Internal(anyhow::anyhow!("AWS call failed: {}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)))
    }
}
