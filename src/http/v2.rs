//! The InfluxDB 2 management API a client needs: setup, orgs, buckets, authorizations.
//! Handlers parse, authenticate, call the catalog's decisions through the control log and
//! render InfluxDB 2's JSON; every change is one control-log mutation.
//!
//! Every endpoint but setup checks InfluxDB 2's permissions (see [`crate::auth`]): a
//! permission is decided in the same catalog state the change is decided in, so a REVOKE
//! or DROP USER cannot slip between the check and the change. Objects the caller may not
//! read are not listed, and answered 404 as if absent; a change the caller may not make
//! is 403 `forbidden`, naming the permission as InfluxDB 2 does.

use super::error::ApiError;
use crate::auth::{new_id, new_token, Action, Principal, Resource, Wanted};
use crate::catalog::{Catalog, CatalogError};
use crate::node::Node;
use crate::projection::ProjectionError;
use crate::proto::{BucketCreated, TokenCreated, TokenPermission};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/setup", setup_allowed)
        .add(Method::POST, "/api/v2/setup", setup)
        .add(Method::GET, "/api/v2/orgs", list_orgs)
        .add(Method::POST, "/api/v2/orgs", create_org)
        .add(Method::GET, "/api/v2/buckets", list_buckets)
        .add(Method::POST, "/api/v2/buckets", create_bucket)
        .add(Method::DELETE, "/api/v2/buckets/{id}", delete_bucket)
        .add(Method::GET, "/api/v2/authorizations", list_authorizations)
        .add(Method::POST, "/api/v2/authorizations", create_authorization)
        .add(
            Method::DELETE,
            "/api/v2/authorizations/{id}",
            delete_authorization,
        );
}

type Params = web::Query<HashMap<String, String>>;

#[derive(Debug, thiserror::Error)]
enum V2Error {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// The permission the caller lacks, as InfluxDB 2 names it.
    #[error("{0} is unauthorized")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
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
            V2Error::Catalog(_) | V2Error::Invalid(_) => StatusCode::BAD_REQUEST,
            V2Error::Forbidden(_) => StatusCode::FORBIDDEN,
            V2Error::Projection(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The caller (None when authentication is off: everything is allowed).
async fn authorize(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
) -> Result<Option<Principal>, ApiError> {
    super::auth::authenticate(node, req, params)
        .await
        .map_err(|e| {
            let mut e = ApiError::from(e);
            if e.status == StatusCode::UNAUTHORIZED {
                e.message = "unauthorized access".into();
            }
            e
        })
}

/// Refuses unless the caller holds `wanted`.
fn require(c: &Catalog, caller: Option<&Principal>, wanted: Wanted) -> Result<(), V2Error> {
    match caller {
        Some(p) if !p.holds(c, &wanted) => Err(V2Error::Forbidden(wanted.describe())),
        _ => Ok(()),
    }
}

fn may(c: &Catalog, caller: Option<&Principal>, wanted: Wanted) -> bool {
    caller.is_none_or(|p| p.holds(c, &wanted))
}

fn bucket_wanted(action: Action, b: &BucketCreated) -> Wanted<'_> {
    Wanted {
        action,
        resource: Resource::Buckets,
        org_id: Some(&b.org_id),
        id: Some(&b.id),
    }
}

/// A bucket is listed to those who may read or write its data.
fn sees_bucket(c: &Catalog, caller: Option<&Principal>, b: &BucketCreated) -> bool {
    may(c, caller, bucket_wanted(Action::Read, b))
        || may(c, caller, bucket_wanted(Action::Write, b))
}

/// Creating and deleting buckets and organizations needs the permission over the whole
/// organization (or every organization), which only admins hold: a grant on a database
/// lets a user read or write its data, not remove it.
fn org_wide(action: Action, resource: Resource, org_id: Option<&str>) -> Wanted<'_> {
    Wanted {
        action,
        resource,
        org_id,
        id: None,
    }
}

/// An authorization is the caller's own, or one it may manage in its organization.
fn sees_token(c: &Catalog, caller: Option<&Principal>, action: Action, t: &TokenCreated) -> bool {
    let wanted = Wanted {
        action,
        resource: Resource::Authorizations,
        org_id: Some(&t.org_id),
        id: Some(&t.id),
    };
    caller
        .is_none_or(|p| (t.user_id == p.user_id && p.scope_allows(&wanted)) || p.holds(c, &wanted))
}

/// A client's count of `unit_seconds`-second units as nanoseconds: negative and
/// overflowing values are the client's mistake, refused rather than wrapped.
fn duration_nanos(count: i64, unit_seconds: i64, what: &str) -> Result<i64, ApiError> {
    if count < 0 {
        return Err(ApiError::bad_request(format!(
            "{what} must not be negative, got {count}"
        )));
    }
    let max = i64::MAX / 1_000_000_000 / unit_seconds;
    count
        .checked_mul(unit_seconds * 1_000_000_000)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what} {count} is too large: at most {max} (about 292 years)"
            ))
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

fn permission_json(p: &TokenPermission) -> Value {
    let mut resource = json!({ "type": p.resource_type });
    if !p.org_id.is_empty() {
        resource["orgID"] = json!(p.org_id);
    }
    if !p.id.is_empty() {
        resource["id"] = json!(p.id);
    }
    json!({ "action": p.action, "resource": resource })
}

/// What a token may do now: its own list, or for a token that may do all its user may,
/// everything in its organization (an admin's) or the buckets its user holds grants on.
fn effective_permissions(c: &Catalog, t: &TokenCreated) -> Vec<TokenPermission> {
    if !t.permissions.is_empty() {
        return t.permissions.clone();
    }
    let permission = |action: Action, resource: Resource, id: &str| TokenPermission {
        action: action.as_str().into(),
        resource_type: resource.as_str().into(),
        org_id: match resource {
            Resource::Orgs => String::new(),
            _ => t.org_id.clone(),
        },
        id: id.into(),
    };
    let Some(user) = c.user_by_id(&t.user_id) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    if user.admin {
        for resource in Resource::ALL {
            let id = if resource == Resource::Orgs {
                t.org_id.as_str()
            } else {
                ""
            };
            all.push(permission(Action::Read, resource, id));
            all.push(permission(Action::Write, resource, id));
        }
        return all;
    }
    for b in c.buckets.values().filter(|b| b.org_id == t.org_id) {
        let held = c.privilege(&user.name, &b.database);
        for action in [Action::Read, Action::Write] {
            if held.grants(match action {
                Action::Read => crate::catalog::Privilege::Read,
                Action::Write => crate::catalog::Privilege::Write,
            }) {
                all.push(permission(action, Resource::Buckets, &b.id));
            }
        }
    }
    all
}

fn authorization_json(c: &Catalog, t: &TokenCreated, token: Option<&str>) -> Value {
    let user = c.user_by_id(&t.user_id).map_or("", |u| u.name.as_str());
    let permissions: Vec<Value> = effective_permissions(c, t)
        .iter()
        .map(permission_json)
        .collect();
    let mut v = json!({
        "id": t.id, "status": "active", "description": t.description,
        "orgID": t.org_id, "org": c.orgs.get(&t.org_id).map_or("", |o| o.name.as_str()),
        "userID": t.user_id, "user": user,
        "permissions": permissions,
    });
    if let Some(token) = token {
        v["token"] = json!(token);
    }
    v
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
            if r.password.len() < 8 {
                return Err(ApiError::bad_request("password is too short"));
            }
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
                    let c = &state.catalog;
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
                        // The operator's token: all its admin user may do.
                        permissions: Vec::new(),
                    })?);
                    Ok((events, ()))
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

async fn list_orgs(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            let caller = authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
                    let orgs: Vec<Value> = c
                        .orgs
                        .values()
                        .filter(|o| {
                            params.get("org").is_none_or(|n| *n == o.name)
                                && params.get("orgID").is_none_or(|i| *i == o.id)
                        })
                        .filter(|o| {
                            let read = Wanted {
                                action: Action::Read,
                                resource: Resource::Orgs,
                                org_id: Some(&o.id),
                                id: Some(&o.id),
                            };
                            may(c, caller.as_ref(), read)
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
            let caller = authorize(&node, &req, &params).await?;
            let r: CreateOrg = json_body(&body)?;
            let id = new_id();
            node.control
                .mutate(|state| {
                    let c = &state.catalog;
                    let wanted = org_wide(Action::Write, Resource::Orgs, None);
                    require(c, caller.as_ref(), wanted)?;
                    Ok::<_, V2Error>((c.create_org(id.clone(), &r.name)?, ()))
                })
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
            let caller = authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
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
                        .filter(|b| sees_bucket(c, caller.as_ref(), b))
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
            let caller = authorize(&node, &req, &params).await?;
            let r: CreateBucket = json_body(&body)?;
            let retention = match r.retention_rules.first() {
                Some(rule) => duration_nanos(rule.every_seconds, 1, "everySeconds")?,
                None => 0,
            };
            let id = new_id();
            node.control
                .mutate(|state| {
                    let c = &state.catalog;
                    let wanted = org_wide(Action::Write, Resource::Buckets, Some(&r.org_id));
                    require(c, caller.as_ref(), wanted)?;
                    Ok::<_, V2Error>((
                        c.create_bucket(id.clone(), &r.org_id, &r.name, retention)?,
                        (),
                    ))
                })
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
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
    delete(&node, &req, &params, |c, caller| {
        let bucket = c
            .buckets
            .get(id.as_str())
            .filter(|b| sees_bucket(c, caller, b))
            .ok_or(CatalogError::BucketNotFound)?;
        let wanted = org_wide(Action::Write, Resource::Buckets, Some(&bucket.org_id));
        require(c, caller, wanted)?;
        Ok(c.delete_bucket(&id)?)
    })
    .await
}

/// Authenticates, then applies a deletion decided (and authorized) on the catalog: 204,
/// or 404 when the object does not exist or the caller may not see it.
async fn delete(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
    decide: impl FnOnce(&Catalog, Option<&Principal>) -> Result<Vec<crate::proto::Event>, V2Error>,
) -> HttpResponse {
    reply(
        async {
            let caller = authorize(node, req, params).await?;
            node.control
                .mutate(|c| Ok::<_, V2Error>((decide(&c.catalog, caller.as_ref())?, ())))
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
            let caller = authorize(&node, &req, &params).await?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
                    let all: Vec<Value> = c
                        .tokens
                        .values()
                        .filter(|t| sees_token(c, caller.as_ref(), Action::Read, t))
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
    /// Whose token it is: the caller's when absent.
    #[serde(rename = "userID", default)]
    user_id: Option<String>,
    #[serde(default)]
    description: String,
    /// Absent or empty: all the caller may do (or, for a token, all that token may do).
    #[serde(default)]
    permissions: Vec<PermissionRequest>,
}

#[derive(Deserialize)]
struct PermissionRequest {
    action: String,
    resource: ResourceRequest,
}

#[derive(Deserialize)]
struct ResourceRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "orgID", default)]
    org_id: Option<String>,
}

impl PermissionRequest {
    fn parse(self) -> Result<TokenPermission, ApiError> {
        let action = Action::parse(&self.action).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown permission action {:?}: expected \"read\" or \"write\"",
                self.action
            ))
        })?;
        let resource = Resource::parse(&self.resource.kind).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown resource type {:?}: expected one of authorizations, buckets, orgs, users",
                self.resource.kind
            ))
        })?;
        Ok(TokenPermission {
            action: action.as_str().into(),
            resource_type: resource.as_str().into(),
            org_id: self.resource.org_id.unwrap_or_default(),
            id: self.resource.id.unwrap_or_default(),
        })
    }
}

fn wanted_of(p: &TokenPermission) -> Option<Wanted<'_>> {
    Some(Wanted {
        action: Action::parse(&p.action)?,
        resource: Resource::parse(&p.resource_type)?,
        org_id: Some(p.org_id.as_str()).filter(|o| !o.is_empty()),
        id: Some(p.id.as_str()).filter(|i| !i.is_empty()),
    })
}

/// A token for the caller (or, for an admin, for any user), with permissions the caller
/// holds itself.
async fn create_authorization(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            let caller = authorize(&node, &req, &params).await?;
            let r: CreateAuthorization = json_body(&body)?;
            let permissions = r
                .permissions
                .into_iter()
                .map(PermissionRequest::parse)
                .collect::<Result<Vec<_>, _>>()?;
            let (token, digest) = new_token();
            let id = new_id();
            let org_id = r.org_id;
            node.control
                .mutate(|state| {
                    let c = &state.catalog;
                    let owner = match (&caller, r.user_id.filter(|u| !u.is_empty())) {
                        (_, Some(user)) => user,
                        (Some(p), None) => p.user_id.clone(),
                        // Authentication off: the first admin's, as before there were users.
                        (None, None) => c
                            .users
                            .values()
                            .find(|u| u.admin)
                            .map(|u| u.id.clone())
                            .unwrap_or_default(),
                    };
                    if caller.is_some() && c.user_by_id(&owner).is_none() {
                        return Err(V2Error::Catalog(CatalogError::UserNotFound));
                    }
                    let for_others = Wanted {
                        action: Action::Write,
                        resource: Resource::Authorizations,
                        org_id: Some(&org_id),
                        id: None,
                    };
                    if let Some(p) = &caller {
                        let allowed = match owner == p.user_id {
                            true => p.scope_allows(&for_others) || p.holds(c, &for_others),
                            false => p.holds(c, &for_others),
                        };
                        if !allowed {
                            return Err(V2Error::Forbidden(for_others.describe()));
                        }
                    }
                    for p in &permissions {
                        let wanted = wanted_of(p).ok_or_else(|| {
                            V2Error::Invalid(format!("invalid permission {}", p.action))
                        })?;
                        require(c, caller.as_ref(), wanted)?;
                    }
                    // Without a list, a token of a token may do no more than that token.
                    let permissions = match (permissions.is_empty(), &caller) {
                        (true, Some(p)) => p.scope.clone().unwrap_or_default(),
                        _ => permissions,
                    };
                    let created = TokenCreated {
                        id: id.clone(),
                        token_sha256: digest,
                        org_id: org_id.clone(),
                        user_id: owner,
                        description: r.description,
                        permissions,
                    };
                    Ok::<_, V2Error>((c.create_token(created)?, ()))
                })
                .await
                .map_err(ApiError::from)?;
            let body = node
                .control
                .read(|state| {
                    let c = &state.catalog;
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
    delete(&node, &req, &params, |c, caller| {
        let token = c
            .tokens
            .get(id.as_str())
            .filter(|t| sees_token(c, caller, Action::Read, t))
            .ok_or(CatalogError::AuthorizationNotFound)?;
        if !sees_token(c, caller, Action::Write, token) {
            let wanted = Wanted {
                action: Action::Write,
                resource: Resource::Authorizations,
                org_id: Some(&token.org_id),
                id: Some(&token.id),
            };
            return Err(V2Error::Forbidden(wanted.describe()));
        }
        Ok(c.delete_token(&id)?)
    })
    .await
}
