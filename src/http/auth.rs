//! Reading credentials from a request, as InfluxDB does: `u`/`p` URL parameters first,
//! then `Authorization: Basic`, `Authorization: Token` or (as Prometheus scrapers send a
//! token) `Authorization: Bearer`.

use super::error::ApiError;
use crate::auth::{AuthError, Credentials, Principal};
use crate::node::Node;
use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use std::collections::HashMap;

pub(super) fn credentials(req: &HttpRequest, params: &HashMap<String, String>) -> Credentials {
    match (params.get("u"), params.get("p")) {
        (Some(u), Some(p)) if !u.is_empty() => {
            return Credentials::UserPassword {
                user: u.clone(),
                password: p.clone(),
            }
        }
        (None, None) => {}
        _ => return Credentials::Unparseable,
    }
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Credentials::None;
    };
    if let Some(token) = value
        .strip_prefix("Token ")
        .or_else(|| value.strip_prefix("Bearer "))
    {
        return Credentials::Token(token.trim().to_owned());
    }
    if let Some(encoded) = value.strip_prefix("Basic ") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Credentials::UserPassword {
                user: user.to_owned(),
                password: password.to_owned(),
            };
        }
    }
    Credentials::Unparseable
}

/// For endpoints only an admin may read (fail points): with authentication off anyone
/// may; with it on, no credentials or bad ones are 401, a user who is not an admin is 403
/// saying they may not `what`.
pub(super) async fn admin_only(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
    what: &str,
) -> Result<(), ApiError> {
    let caller = authenticate(node, req, params).await?;
    require_admin(caller.as_ref(), &format!("may not {what}"))
}

/// Refuses a caller who is not an admin (none: authentication is off, so anyone may) with
/// 403 `<user> <refusal>: requires admin`.
pub(super) fn require_admin(caller: Option<&Principal>, refusal: &str) -> Result<(), ApiError> {
    match caller {
        Some(p) if !p.admin => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} {refusal}: requires admin", p.user),
        )),
        _ => Ok(()),
    }
}

/// [`authenticate`] for the endpoints that answer in InfluxDB 2's shape, in its words for
/// missing or bad credentials.
pub(super) async fn authenticate_v2(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
) -> Result<Option<Principal>, ApiError> {
    authenticate(node, req, params).await.map_err(|e| {
        let mut e = ApiError::from(e);
        if e.status == StatusCode::UNAUTHORIZED {
            e.message = "unauthorized access".into();
        }
        e
    })
}

/// The caller, when authentication is enabled (None when it is off).
pub(super) async fn authenticate(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
) -> Result<Option<Principal>, AuthError> {
    if !node.config.auth_enabled {
        return Ok(None);
    }
    let credentials = credentials(req, params);
    // Only copies leave the lock: a password is hashed after it is released.
    let claim = node
        .control
        .read(|c| {
            let catalog = &c.catalog;
            if catalog.users.values().all(|u| !u.admin) && catalog.tokens.is_empty() {
                return Err(AuthError::NoAdminYet);
            }
            node.auth.claim(catalog, &credentials)
        })
        .await?;
    let client = req.peer_addr().map(|a| a.ip());
    node.auth.verify(claim, client).await.map(Some)
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::Unparseable | AuthError::Failed => StatusCode::UNAUTHORIZED,
            AuthError::NoAdminYet
            | AuthError::NotPermitted { .. }
            | AuthError::WriteNotPermitted { .. } => StatusCode::FORBIDDEN,
            AuthError::TooManyAttempts { retry_after_secs } => {
                return ApiError {
                    retry_after_secs: Some(retry_after_secs),
                    ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
                }
            }
            AuthError::Hash(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}
