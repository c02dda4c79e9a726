//! `/api/v2/authorizations`: tokens.

use super::{delete, json_body, reply, require, V2Error};
use crate::auth::{new_id, new_token, Action, Principal, Resource, Wanted};
use crate::catalog::{Catalog, CatalogError};
use crate::http::auth::authenticate_v2;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use crate::proto::{TokenCreated, TokenPermission};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/authorizations", list_authorizations)
        .add(Method::POST, "/api/v2/authorizations", create_authorization)
        .add(
            Method::DELETE,
            "/api/v2/authorizations/{id}",
            delete_authorization,
        );
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

pub(super) fn authorization_json(c: &Catalog, t: &TokenCreated, token: Option<&str>) -> Value {
    let user = c.user_by_id(&t.user_id).map_or("", |u| u.name.as_str());
    let permissions: Vec<Value> = crate::auth::effective_permissions(c, t)
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

async fn list_authorizations(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
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

#[derive(Deserialize)]
struct ResourceRequest {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "orgID", default)]
    org_id: Option<String>,
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
            let caller = authenticate_v2(&node, &req, &params).await?;
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
