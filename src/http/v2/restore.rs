//! InfluxDB 2's restore endpoints (see [`crate::backup`]): admins only.

use super::backup::{authorize_admin, shard_id};
use super::reply;
use crate::backup::metadata::BucketMetadataManifest;
use crate::backup::service::ChannelReader;
use crate::http::error::ApiError;
use crate::http::Params;
use crate::node::Node;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

/// Request-body chunks waiting for the restore task.
const RESTORE_CHUNKS_IN_FLIGHT: usize = 8;

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::POST, "/api/v2/restore/kv", restore_kv)
        .add(
            Method::POST,
            "/api/v2/restore/bucketMetadata",
            restore_bucket_metadata,
        )
        .add(Method::POST, "/api/v2/restore/shards/{id}", restore_shard);
}

/// Refuses a body whose announced length is past `limit` before reading any of it.
fn check_content_length(req: &HttpRequest, limit: u64) -> Result<(), ApiError> {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(len) if len > limit => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body of {len} bytes exceeds {limit} bytes"),
        )),
        _ => Ok(()),
    }
}

/// Reads a whole (small) body, refusing one past `limit`.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A kv snapshot or bucket manifest, whole: refused past the metadata bound, by its
/// announced length before any of it is read.
async fn read_metadata(
    node: &Node,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Vec<u8>, ApiError> {
    let limit = node.backups.metadata_body_limit();
    check_content_length(req, limit as u64)?;
    read_body(payload, limit).await
}

async fn restore_kv(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let body = read_metadata(&node, &req, payload).await?;
            // InfluxDB 2's PostRestoreKVResponse: {"token": the operator's token}; here a
            // new one, since only token digests are kept (none without an operator).
            let body = match node.backups.restore_kv(&body).await? {
                Some(token) => serde_json::json!({ "token": token }),
                None => serde_json::json!({}),
            };
            Ok(HttpResponse::Ok().json(body))
        }
        .await,
    )
}

async fn restore_bucket_metadata(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let body = read_metadata(&node, &req, payload).await?;
            let manifest: BucketMetadataManifest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid bucket manifest: {e}")))?;
            let mappings = node.backups.restore_bucket(&manifest).await?;
            Ok(HttpResponse::Created().json(mappings))
        }
        .await,
    )
}

async fn restore_shard(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
    mut payload: web::Payload,
) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let id = shard_id(&id)?;
            check_content_length(&req, node.backups.shard_body_limit())?;
            let (tx, rx) = tokio::sync::mpsc::channel(RESTORE_CHUNKS_IN_FLIGHT);
            // The body flows to the restore task as it arrives; if the task stops reading
            // (a refused archive), forwarding stops too.
            let forward = async move {
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| std::io::Error::other(e.to_string()));
                    let failed = chunk.is_err();
                    if tx.send(chunk).await.is_err() || failed {
                        break;
                    }
                }
            };
            let restore = node.backups.restore_shard(id, ChannelReader::new(rx));
            let ((), restored) = futures_util::future::join(forward, restore).await;
            let bytes = restored?;
            Ok(HttpResponse::Ok().json(serde_json::json!({ "shardID": id, "bytes": bytes })))
        }
        .await,
    )
}
