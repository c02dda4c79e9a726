//! `/api/v2/buckets`: buckets, each a database and retention policy.

use super::{delete, duration_nanos, json_body, may, org_wide, reply, require, V2Error};
use crate::auth::{new_id, Action, Principal, Resource, Wanted};
use crate::catalog::{Catalog, CatalogError};
use crate::http::auth::authenticate_v2;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use crate::proto::BucketCreated;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/buckets", list_buckets)
        .add(Method::POST, "/api/v2/buckets", create_bucket)
        .add(Method::DELETE, "/api/v2/buckets/{id}", delete_bucket);
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

pub(super) fn bucket_json(c: &Catalog, b: &BucketCreated) -> Value {
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

async fn list_buckets(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            let caller = authenticate_v2(&node, &req, &params).await?;
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
            let caller = authenticate_v2(&node, &req, &params).await?;
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
    let answer = delete(&node, &req, &params, |c, caller| {
        let bucket = c
            .buckets
            .get(id.as_str())
            .filter(|b| sees_bucket(c, caller, b))
            .ok_or(CatalogError::BucketNotFound)?;
        let wanted = org_wide(Action::Write, Resource::Buckets, Some(&bucket.org_id));
        require(c, caller, wanted)?;
        Ok(c.delete_bucket(&id)?)
    })
    .await;
    // The bucket's replications went with it: their senders stop.
    node.replications.forget_deleted();
    answer
}
