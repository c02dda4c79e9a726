//! `/api/v2/setup`: the first user, organization, bucket and token.

use super::authorizations::authorization_json;
use super::buckets::bucket_json;
use super::orgs::org_json;
use super::{duration_nanos, json_body, reply, V2Error};
use crate::auth::{new_id, new_token};
use crate::catalog::{self, CatalogError, Setup};
use crate::http::error::ApiError;
use crate::node::Node;
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/setup", setup_allowed)
        .add(Method::POST, "/api/v2/setup", setup);
}

async fn setup_allowed(node: web::Data<Node>) -> HttpResponse {
    let allowed = node.control.read(|c| c.catalog.setup_allowed()).await;
    HttpResponse::Ok().json(json!({ "allowed": allowed }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SetupRequest {
    username: String,
    password: String,
    org: String,
    bucket: String,
    retention_period_seconds: Option<i64>,
    retention_period_hrs: Option<i64>,
    token: Option<String>,
}

/// The initial user (an admin), organization, bucket and all-access token, in one event
/// batch: all of them or none.
async fn setup(node: web::Data<Node>, body: web::Bytes) -> HttpResponse {
    reply(
        async {
            let r: SetupRequest = json_body(&body)?;
            catalog::check_password(&r.password).map_err(V2Error::from)?;
            let retention = match (r.retention_period_seconds, r.retention_period_hrs) {
                (Some(seconds), _) => duration_nanos(seconds, 1, "retentionPeriodSeconds")?,
                (None, Some(hours)) => duration_nanos(hours, 3600, "retentionPeriodHrs")?,
                (None, None) => 0,
            };
            // Only once setup is still possible is a password hashed (off the workers).
            if !node.control.read(|c| c.catalog.setup_allowed()).await {
                return Err(V2Error::Catalog(CatalogError::AlreadySetUp).into());
            }
            let hash = node.auth.hash_password(&r.password).await?;
            let (token, digest) = match &r.token {
                Some(t) if !t.is_empty() => (t.clone(), crate::auth::token_sha256(t)),
                _ => new_token(),
            };
            let (user_id, org_id, bucket_id, token_id) = (new_id(), new_id(), new_id(), new_id());
            node.control
                .mutate(|state| {
                    let events = state.catalog.setup(Setup {
                        user_id: user_id.clone(),
                        username: r.username.clone(),
                        password_bcrypt: hash,
                        org_id: org_id.clone(),
                        org: r.org.clone(),
                        bucket_id: bucket_id.clone(),
                        bucket: r.bucket.clone(),
                        retention_nanos: retention,
                        token_id: token_id.clone(),
                        token_sha256: digest,
                    });
                    Ok::<_, V2Error>((events?, ()))
                })
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
                    let bucket = c
                        .buckets
                        .get(&bucket_id)
                        .map(|b| bucket_json(c, b))
                        .unwrap_or(Value::Null);
                    let auth = c
                        .tokens
                        .get(&token_id)
                        .map(|t| authorization_json(c, t, Some(&token)))
                        .unwrap_or(Value::Null);
                    json!({
                        "user": { "id": user_id, "name": r.username, "status": "active" },
                        "org": org_json(c, &org_id),
                        "bucket": bucket,
                        "auth": auth,
                    })
                })
                .await;
            Ok(HttpResponse::Created().json(body))
        }
        .await,
    )
}
