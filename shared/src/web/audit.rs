//! Who is calling and from where, for audit entries: the request's
//! `AuditContext` (from the verified principal) and `ClientInfo` (address,
//! user agent).

use axum::{extract::FromRequestParts, http::request::Parts};

use super::AppState;
use crate::{
    auth::Principal,
    domain::audit::{AuditContext, ClientInfo},
    error::AppError,
};

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo {
            ip_address: client_ip(parts),
            user_agent: parts
                .headers
                .get(axum::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
        })
    }
}

impl FromRequestParts<AppState> for AuditContext {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let Ok(client) = ClientInfo::from_request_parts(parts, state).await;
        Ok(match principal.api_key_id() {
            Some(key_id) => Self::api_key(key_id, &client),
            None => Self::user(principal.user_id(), principal.email().map(str::to_owned), &client),
        })
    }
}

/// The caller's address: API Gateway's view of it, else the first
/// `X-Forwarded-For` hop (local server behind nothing: none).
pub(crate) fn client_ip(parts: &Parts) -> Option<String> {
    use lambda_http::request::RequestContext;
    match parts.extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(ctx)) if ctx.http.source_ip.is_some() => return ctx.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(ctx)) if ctx.identity.source_ip.is_some() => {
            return ctx.identity.source_ip.clone();
        }
        _ => {}
    }
    parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
}
