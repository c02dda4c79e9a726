//! `/api/v2/orgs`: organizations.

use super::{json_body, may, org_wide, reply, require, V2Error};
use crate::auth::{new_id, Action, Resource, Wanted};
use crate::catalog::Catalog;
use crate::http::auth::authenticate_v2;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/orgs", list_orgs)
        .add(Method::POST, "/api/v2/orgs", create_org);
}

pub(super) fn org_json(c: &Catalog, id: &str) -> Value {
    let name = c.orgs.get(id).map_or("", |o| o.name.as_str());
    json!({ "id": id, "name": name })
}

async fn list_orgs(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
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
            let caller = authenticate_v2(&node, &req, &params).await?;
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
