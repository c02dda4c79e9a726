//! The InfluxDB 2 management API a client needs: setup, orgs, buckets, authorizations.
//! Handlers parse, authenticate, call the catalog's decisions through the control log and
//! render InfluxDB 2's JSON; every change is one control-log mutation.

use super::error::ApiError;
use crate::auth::{hash_password, new_id, new_token};
use crate::catalog::{Catalog, CatalogError};
use crate::node::Node;
use crate::projection::ProjectionError;
use crate::proto::{BucketCreated, TokenCreated};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v2/setup", web::get().to(setup_allowed))
        .route("/api/v2/setup", web::post().to(setup))
        .route("/api/v2/orgs", web::get().to(list_orgs))
        .route("/api/v2/orgs", web::post().to(create_org))
        .route("/api/v2/buckets", web::get().to(list_buckets))
        .route("/api/v2/buckets", web::post().to(create_bucket))
        .route("/api/v2/buckets/{id}", web::delete().to(delete_bucket))
        .route("/api/v2/authorizations", web::get().to(list_authorizations))
        .route(
            "/api/v2/authorizations",
            web::post().to(create_authorization),
        )
        .route(
            "/api/v2/authorizations/{id}",
            web::delete().to(delete_authorization),
        );
}

type Params = web::Query<HashMap<String, String>>;

#[derive(Debug, thiserror::Error)]
enum V2Error {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

impl From<V2Error> for ApiError {
    fn from(e: V2Error) -> Self {
        let status = match &e {
            V2Error::Catalog(CatalogError::AlreadySetUp) => StatusCode::UNPROCESSABLE_ENTITY,
            V2Error::Catalog(
                CatalogError::OrgExists(_)
                | CatalogError::BucketExists(_)
                | CatalogError::UserExists,
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            V2Error::Catalog(
                CatalogError::OrgNotFound
                | CatalogError::BucketNotFound
                | CatalogError::UserNotFound
                | CatalogError::AuthorizationNotFound,
            ) => StatusCode::NOT_FOUND,
            V2Error::Catalog(_) => StatusCode::BAD_REQUEST,
            V2Error::Projection(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

async fn authorize(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    super::auth::authenticate(node, req, params)
        .await
        .map(drop)
        .map_err(|e| {
            let mut e = ApiError::from(e);
            if e.status == StatusCode::UNAUTHORIZED {
                e.message = "unauthorized access".into();
            }
            e
        })
}

fn reply(result: Result<HttpResponse, ApiError>) -> HttpResponse {
    result.unwrap_or_else(|e| e.v2())
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn org_json(c: &Catalog, id: &str) -> Value {
    let name = c.orgs.get(id).map_or("", |o| o.name.as_str());
    json!({ "id": id, "name": name })
}

fn bucket_json(c: &Catalog, b: &BucketCreated) -> Value {
    let every = c
        .databases
        .get(&b.database)
        .and_then(|d| d.policies.get(&b.retention_policy))
        .map_or(0, |p| p.duration_nanos / 1_000_000_000);
    let rules = if every > 0 {
        json!([{ "type": "expire", "everySeconds": every }])
    } else {
        json!([])
    };
    json!({ "id": b.id, "orgID": b.org_id, "name": b.name, "type": "user", "retentionRules": rules })
}

fn authorization_json(c: &Catalog, t: &TokenCreated, token: Option<&str>) -> Value {
    let user = c
        .users
        .values()
        .find(|u| u.id == t.user_id)
        .map_or("", |u| u.name.as_str());
    let mut v = json!({
        "id": t.id, "status": "active", "description": t.description,
        "orgID": t.org_id, "org": c.orgs.get(&t.org_id).map_or("", |o| o.name.as_str()),
        "userID": t.user_id, "user": user,
        "permissions": [{ "action": "read", "resource": { "orgID": t.org_id } }, { "action": "write", "resource": { "orgID": t.org_id } }],
    });
    if let Some(token) = token {
        v["token"] = json!(token);
    }
    v
}

async fn setup_allowed(node: web::Data<Node>) -> HttpResponse {
    let allowed = node.control.read(Catalog::setup_allowed).await;
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
            if r.password.len() < 8 {
                return Err(ApiError::bad_request("password is too short"));
            }
            let hash = hash_password(&r.password)?;
            let (token, digest) = match &r.token {
                Some(t) if !t.is_empty() => (t.clone(), crate::auth::token_sha256(t)),
                _ => new_token(),
            };
            let retention = r
                .retention_period_seconds
                .or(r.retention_period_hrs.map(|h| h * 3600))
                .unwrap_or(0)
                * 1_000_000_000;
            let (user_id, org_id, bucket_id, token_id) = (new_id(), new_id(), new_id(), new_id());
            node.control
                .mutate(|c| {
                    if !c.setup_allowed() {
                        return Err(V2Error::Catalog(CatalogError::AlreadySetUp));
                    }
                    // Decide on a catalog that already has the earlier events of the batch.
                    let mut next = c.clone();
                    let mut events = next.create_user(user_id.clone(), &r.username, hash, true)?;
                    events.extend(next.create_org(org_id.clone(), &r.org)?);
                    for e in &events {
                        crate::projection::Projection::apply(&mut next, e);
                    }
                    let bucket =
                        next.create_bucket(bucket_id.clone(), &org_id, &r.bucket, retention)?;
                    for e in &bucket {
                        crate::projection::Projection::apply(&mut next, e);
                    }
                    events.extend(bucket);
                    events.extend(next.create_token(TokenCreated {
                        id: token_id.clone(),
                        token_sha256: digest,
                        org_id: org_id.clone(),
                        user_id: user_id.clone(),
                        description: format!("{}'s Token", r.username),
                    })?);
                    Ok((events, ()))
                })
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|c| {
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

async fn list_orgs(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|c| {
                    let orgs: Vec<Value> = c
                        .orgs
                        .values()
                        .filter(|o| {
                            params.get("org").is_none_or(|n| *n == o.name)
                                && params.get("orgID").is_none_or(|i| *i == o.id)
                        })
                        .map(|o| org_json(c, &o.id))
                        .collect();
                    json!({ "orgs": orgs })
                })
                .await;
            Ok(HttpResponse::Ok().json(body))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CreateOrg {
    name: String,
}

async fn create_org(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let r: CreateOrg = json_body(&body)?;
            let id = new_id();
            node.control
                .mutate(|c| Ok::<_, V2Error>((c.create_org(id.clone(), &r.name)?, ())))
                .await
                .map_err(ApiError::from)?;
            Ok(HttpResponse::Created().json(json!({ "id": id, "name": r.name })))
        }
        .await,
    )
}

async fn list_buckets(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|c| {
                    let org_id = params
                        .get("org")
                        .and_then(|n| c.orgs.values().find(|o| o.name == *n))
                        .map(|o| o.id.clone());
                    let buckets: Vec<Value> = c
                        .buckets
                        .values()
                        .filter(|b| params.get("name").is_none_or(|n| *n == b.name))
                        .filter(|b| params.get("orgID").is_none_or(|i| *i == b.org_id))
                        .filter(|b| {
                            params.get("org").is_none()
                                || org_id.as_deref() == Some(b.org_id.as_str())
                        })
                        .map(|b| bucket_json(c, b))
                        .collect();
                    json!({ "buckets": buckets })
                })
                .await;
            Ok(HttpResponse::Ok().json(body))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBucket {
    #[serde(rename = "orgID")]
    org_id: String,
    name: String,
    #[serde(default)]
    retention_rules: Vec<RetentionRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetentionRule {
    every_seconds: i64,
}

async fn create_bucket(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let r: CreateBucket = json_body(&body)?;
            let retention = r
                .retention_rules
                .first()
                .map_or(0, |rule| rule.every_seconds)
                * 1_000_000_000;
            let id = new_id();
            node.control
                .mutate(|c| {
                    Ok::<_, V2Error>((
                        c.create_bucket(id.clone(), &r.org_id, &r.name, retention)?,
                        (),
                    ))
                })
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|c| {
                    let bucket = c
                        .buckets
                        .get(&id)
                        .map(|b| bucket_json(c, b))
                        .unwrap_or(Value::Null);
                    bucket
                })
                .await;
            Ok(HttpResponse::Created().json(body))
        }
        .await,
    )
}

async fn delete_bucket(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    delete(&node, &req, &params, |c| c.delete_bucket(&id)).await
}

/// Authenticates, then applies a deletion decided by the catalog: 204, or 404 when the
/// object does not exist.
async fn delete(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
    decide: impl FnOnce(&Catalog) -> Result<Vec<crate::proto::Event>, CatalogError>,
) -> HttpResponse {
    reply(
        async {
            authorize(node, req, params).await?;
            node.control
                .mutate(|c| Ok::<_, V2Error>((decide(c)?, ())))
                .await
                .map_err(ApiError::from)?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn list_authorizations(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|c| {
                    let all: Vec<Value> = c
                        .tokens
                        .values()
                        .map(|t| authorization_json(c, t, None))
                        .collect();
                    json!({ "authorizations": all })
                })
                .await;
            Ok(HttpResponse::Ok().json(body))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct CreateAuthorization {
    #[serde(rename = "orgID")]
    org_id: String,
    #[serde(default)]
    description: String,
}

async fn create_authorization(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            authorize(&node, &req, &params).await?;
            let r: CreateAuthorization = json_body(&body)?;
            let (token, digest) = new_token();
            let id = new_id();
            let owner = node
                .control
                .read(|c| {
                    c.users
                        .values()
                        .find(|u| u.admin)
                        .map(|u| u.id.clone())
                        .unwrap_or_default()
                })
                .await;
            let created = TokenCreated {
                id: id.clone(),
                token_sha256: digest,
                org_id: r.org_id,
                user_id: owner,
                description: r.description,
            };
            node.control
                .mutate(|c| Ok::<_, V2Error>((c.create_token(created)?, ())))
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|c| {
                    let v = c
                        .tokens
                        .get(&id)
                        .map(|t| authorization_json(c, t, Some(&token)))
                        .unwrap_or(Value::Null);
                    v
                })
                .await;
            Ok(HttpResponse::Created().json(body))
        }
        .await,
    )
}

async fn delete_authorization(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    delete(&node, &req, &params, |c| c.delete_token(&id)).await
}
