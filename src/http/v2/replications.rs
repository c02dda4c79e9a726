//! `/api/v2/replications`: copies of a local bucket's writes to a remote bucket, with
//! their queues' progress; and shardkeeper's own `POST /{id}/drop-head`, which drops the
//! batch a stopped replication cannot deliver (`ctl replication drop-head`).

use super::remotes::required_org;
use super::reply;
use crate::control::replications::ReplicationSpec;
use crate::http::auth::authenticate_v2;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use crate::replication::{ListFilter, ReplicationStatus};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/replications", list)
        .add(Method::POST, "/api/v2/replications", create)
        .add(Method::GET, "/api/v2/replications/{id}", get)
        .add(Method::PATCH, "/api/v2/replications/{id}", update)
        .add(Method::DELETE, "/api/v2/replications/{id}", delete)
        .add(Method::POST, "/api/v2/replications/{id}/validate", validate)
        .add(
            Method::POST,
            "/api/v2/replications/{id}/drop-head",
            drop_head,
        );
}

pub(super) fn replication_json(s: &ReplicationStatus) -> Value {
    let r = s.replication();
    let p = &s.progress;
    let mut v = json!({
        "id": r.id, "orgID": r.org_id, "name": r.name,
        "remoteID": r.remote_id, "localBucketID": r.local_bucket_id,
        "maxQueueSizeBytes": r.max_queue_size_bytes, "maxAgeSeconds": r.max_age_seconds,
        "dropNonRetryableData": r.drop_non_retryable_data,
        // Every byte held is one the remote has not confirmed: a record leaves the
        // queue when its batch is answered 204 (or dropped).
        "currentQueueSizeBytes": s.queued_bytes,
        "remainingBytesToBeSynced": s.queued_bytes,
    });
    for (key, value) in [
        ("description", &r.description),
        ("remoteBucketID", &r.remote_bucket_id),
        ("remoteBucketName", &r.remote_bucket_name),
        ("latestErrorMessage", &p.latest_error_message),
    ] {
        if !value.is_empty() {
            v[key] = json!(value);
        }
    }
    if p.latest_response_code != 0 {
        v["latestResponseCode"] = json!(p.latest_response_code);
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplicationBody {
    name: Option<String>,
    #[serde(rename = "orgID")]
    org_id: Option<String>,
    description: Option<String>,
    #[serde(rename = "remoteID")]
    remote_id: Option<String>,
    #[serde(rename = "localBucketID")]
    local_bucket_id: Option<String>,
    #[serde(rename = "remoteBucketID")]
    remote_bucket_id: Option<String>,
    remote_bucket_name: Option<String>,
    max_queue_size_bytes: Option<i64>,
    max_age_seconds: Option<i64>,
    drop_non_retryable_data: Option<bool>,
}

impl ReplicationBody {
    fn spec(self) -> (Option<String>, ReplicationSpec) {
        (
            self.org_id,
            ReplicationSpec {
                name: self.name,
                description: self.description,
                remote_id: self.remote_id,
                local_bucket_id: self.local_bucket_id,
                remote_bucket_id: self.remote_bucket_id,
                remote_bucket_name: self.remote_bucket_name,
                max_queue_size_bytes: self.max_queue_size_bytes,
                max_age_seconds: self.max_age_seconds,
                drop_non_retryable_data: self.drop_non_retryable_data,
            },
        )
    }
}

fn validate_only(params: &Params) -> Result<bool, ApiError> {
    match params.get("validate").map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "validate must be true or false, got {other:?}"
        ))),
    }
}

async fn list(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let org = required_org(&params)?;
            let filter = ListFilter {
                name: params.get("name").map(String::as_str),
                remote_id: params.get("remoteID").map(String::as_str),
                local_bucket_id: params.get("localBucketID").map(String::as_str),
                ..ListFilter::default()
            };
            let found = node.replications.list(caller.as_ref(), org, &filter).await;
            let found: Vec<Value> = found.iter().map(replication_json).collect();
            Ok(HttpResponse::Ok().json(json!({ "replications": found })))
        }
        .await,
    )
}

async fn create(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let validate = validate_only(&params)?;
            let (org, spec) = super::json_body::<ReplicationBody>(&body)?.spec();
            let org = org.unwrap_or_default();
            let created = node
                .replications
                .create(caller.as_ref(), &org, spec, validate)
                .await?;
            Ok(match created {
                Some(s) => HttpResponse::Created().json(replication_json(&s)),
                None => HttpResponse::NoContent().finish(),
            })
        }
        .await,
    )
}

async fn get(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let s = node.replications.get(caller.as_ref(), &id).await?;
            Ok(HttpResponse::Ok().json(replication_json(&s)))
        }
        .await,
    )
}

async fn update(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let validate = validate_only(&params)?;
            let (_, spec) = super::json_body::<ReplicationBody>(&body)?.spec();
            let updated = node
                .replications
                .update(caller.as_ref(), &id, spec, validate)
                .await?;
            Ok(match updated {
                Some(s) => HttpResponse::Ok().json(replication_json(&s)),
                None => HttpResponse::NoContent().finish(),
            })
        }
        .await,
    )
}

async fn delete(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            node.replications.delete(caller.as_ref(), &id).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn validate(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            node.replications.validate(caller.as_ref(), &id).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        .await,
    )
}

async fn drop_head(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
            let points = node.replications.drop_head(caller.as_ref(), &id).await?;
            Ok(HttpResponse::Ok().json(json!({ "droppedPoints": points })))
        }
        .await,
    )
}
