//! InfluxDB 2's backup endpoints (see [`crate::backup`]), plus `GET /api/v2/backup/status`.
//! Backups expose every token hash and all data: admins only (restores too).

use super::reply;
use crate::backup::multipart::{self, Part};
use crate::backup::service::parse_since;
use crate::backup::BackupError;
use crate::http::auth::{authenticate_v2, require_admin};
use crate::http::error::{control_log_status, ApiError};
use crate::http::Params;
use crate::node::Node;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

pub(super) fn routes(r: &mut crate::http::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/api/v2/backup/kv", backup_kv)
        .add(Method::GET, "/api/v2/backup/metadata", backup_metadata)
        .add(Method::GET, "/api/v2/backup/status", backup_status)
        .add(Method::GET, "/api/v2/backup/shards/{id}", backup_shard);
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let status = match &e {
            BackupError::ShardNotFound(_) | BackupError::BucketNotFound(_) => StatusCode::NOT_FOUND,
            BackupError::Catalog(crate::catalog::CatalogError::OrgNotFound) => {
                StatusCode::NOT_FOUND
            }
            BackupError::BadSince(_) | BackupError::BadArchive(_) | BackupError::Catalog(_) => {
                StatusCode::BAD_REQUEST
            }
            BackupError::Conflict(_) => StatusCode::CONFLICT,
            BackupError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BackupError::Control(e) => control_log_status(e),
            BackupError::Storage(crate::storage::StorageError::ShardBusy(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            BackupError::Io { .. } | BackupError::Storage(_) | BackupError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "backup or restore failed");
        }
        ApiError::new(status, e.to_string())
    }
}

/// Backups and restores are an admin's (authentication off: anyone's).
pub(super) async fn authorize_admin(
    node: &Node,
    req: &HttpRequest,
    params: &HashMap<String, String>,
) -> Result<(), ApiError> {
    let caller = authenticate_v2(node, req, params).await?;
    require_admin(caller.as_ref(), "is not allowed to back up or restore")
}

pub(super) fn shard_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::bad_request(format!("invalid shard ID {raw:?}")))
}

async fn backup_shard(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    id: web::Path<String>,
) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let id = shard_id(&id)?;
            let since = parse_since(params.get("since").map(String::as_str))?;
            let gzip = req
                .headers()
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
            let mut rx = node.backups.backup_shard(id, since, gzip).await?;
            let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
            let mut response = HttpResponse::Ok();
            response.content_type("application/octet-stream");
            if gzip {
                response.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            Ok(response.streaming(body))
        }
        .await,
    )
}

async fn backup_kv(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let kv = node.backups.backup_kv().await?;
            Ok(HttpResponse::Ok()
                .content_type("application/octet-stream")
                .body(kv))
        }
        .await,
    )
}

/// InfluxDB 2's `multipart/mixed` metadata backup: parts `kv`, `sql` (empty: there is no
/// SQL store here) and `buckets` (JSON manifests).
async fn backup_metadata(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            let (kv, buckets) = node.backups.backup_metadata().await?;
            let buckets = serde_json::to_vec(&buckets)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let boundary = format!("shardkeeper-{}", crate::auth::new_id());
            let (content_type, body) = multipart::write(
                &boundary,
                &[
                    Part {
                        name: "kv",
                        content_type: "application/octet-stream",
                        body: &kv,
                    },
                    Part {
                        name: "sql",
                        content_type: "application/octet-stream",
                        body: &[],
                    },
                    Part {
                        name: "buckets",
                        content_type: "application/json; charset=utf-8",
                        body: &buckets,
                    },
                ],
            );
            Ok(HttpResponse::Ok().content_type(content_type).body(body))
        }
        .await,
    )
}

async fn backup_status(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    reply(
        async {
            authorize_admin(&node, &req, &params).await?;
            Ok(HttpResponse::Ok().json(node.backups.status().await))
        }
        .await,
    )
}
