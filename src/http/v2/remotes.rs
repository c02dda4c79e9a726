//! `/api/v2/remotes`: the remote InfluxDB 2 APIs replications write to. The token a
//! remote is given is never answered.

use super::reply;
use crate::control::replications::RemoteSpec;
use crate::http::auth::authenticate_v2;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use crate::proto::Remote;
use crate::replication::ListFilter;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/remotes", list_remotes)
        .add(Method::POST, "/api/v2/remotes", create_remote)
        .add(Method::GET, "/api/v2/remotes/{id}", get_remote)
        .add(Method::PATCH, "/api/v2/remotes/{id}", update_remote)
        .add(Method::DELETE, "/api/v2/remotes/{id}", delete_remote);
}

pub(super) fn remote_json(r: &Remote) -> Value {
    let mut v = json!({
        "id": r.id, "orgID": r.org_id, "name": r.name, "remoteURL": r.remote_url,
        "allowInsecureTLS": r.allow_insecure_tls,
    });
    if !r.description.is_empty() {
        v["description"] = json!(r.description);
    }
    if !r.remote_org_id.is_empty() {
        v["remoteOrgID"] = json!(r.remote_org_id);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoteBody {
    name: Option<String>,
    #[serde(rename = "orgID")]
    org_id: Option<String>,
    description: Option<String>,
    #[serde(rename = "remoteURL")]
    remote_url: Option<String>,
    #[serde(rename = "remoteAPIToken")]
    remote_api_token: Option<String>,
    #[serde(rename = "remoteOrgID")]
    remote_org_id: Option<String>,
    #[serde(rename = "allowInsecureTLS")]
    allow_insecure_tls: Option<bool>,
}

impl RemoteBody {
    fn spec(self) -> (Option<String>, RemoteSpec) {
        (
            self.org_id,
            RemoteSpec {
                name: self.name,
                description: self.description,
                remote_url: self.remote_url,
                remote_api_token: self.remote_api_token,
                remote_org_id: self.remote_org_id,
                allow_insecure_tls: self.allow_insecure_tls,
            },
        )
    }
}

/// `orgID`, which a list requires.
pub(super) fn required_org(params: &Params) -> Result<&str, ApiError> {
    params
        .get("orgID")
        .map(String::as_str)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| ApiError::bad_request("orgID is required"))
}

async fn list_remotes(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let org = required_org(&params)?;
            let filter = ListFilter {
                name: params.get("name").map(String::as_str),
                remote_url: params.get("remoteURL").map(String::as_str),
                ..ListFilter::default()
            };
            let remotes = node
                .replications
                .list_remotes(caller.as_ref(), org, &filter)
                .await;
            let remotes: Vec<Value> = remotes.iter().map(remote_json).collect();
            Ok(HttpResponse::Ok().json(json!({ "remotes": remotes })))
        }
        .await,
    )
}

async fn create_remote(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let (org, spec) = super::json_body::<RemoteBody>(&body)?.spec();
            let org = org.unwrap_or_default();
            let remote = node
                .replications
                .create_remote(caller.as_ref(), &org, spec)
                .await?;
            Ok(HttpResponse::Created().json(remote_json(&remote)))
        }
        .await,
    )
}

async fn get_remote(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let remote = node.replications.remote(caller.as_ref(), &id).await?;
            Ok(HttpResponse::Ok().json(remote_json(&remote)))
        }
        .await,
    )
}

async fn update_remote(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let (_, spec) = super::json_body::<RemoteBody>(&body)?.spec();
            let remote = node
                .replications
                .update_remote(caller.as_ref(), &id, spec)
                .await?;
            Ok(HttpResponse::Ok().json(remote_json(&remote)))
        }
        .await,
    )
}

async fn delete_remote(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            node.replications
                .delete_remote(caller.as_ref(), &id)
                .await?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}
