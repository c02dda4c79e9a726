//! `/shard-repair/`: InfluxDB Enterprise's anti-entropy API (`GET /status[?local=true]`,
//! `POST /repair?id=N`, `POST /cancel-repair?id=N[&local=true]`), and the endpoints peers
//! call on each other (`/shard-repair/peer/...`, in [`crate::entropy::wire`]'s format).
//! With authentication on, every one is an admin's (a peer sends the credential
//! configured under `[anti_entropy]`).

use super::error::ApiError;
use super::Params;
use crate::entropy::{wire, MAX_PEER_BODY};
use crate::node::Node;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/shard-repair/status", status)
        .add(Method::POST, "/shard-repair/repair", repair)
        .add(Method::POST, "/shard-repair/cancel-repair", cancel_repair)
        .add(Method::GET, "/shard-repair/peer/shards", peer_shards)
        .add(Method::POST, "/shard-repair/peer/digests", peer_digests)
        .add(Method::POST, "/shard-repair/peer/leaves", peer_leaves)
        .add(Method::POST, "/shard-repair/peer/cells", peer_cells)
        .add(Method::POST, "/shard-repair/peer/apply", peer_apply)
        .add(Method::POST, "/shard-repair/pull", pull)
        .add(Method::POST, "/shard-repair/peer/ibf", peer_ibf)
        .add(Method::POST, "/shard-repair/peer/exchange", peer_exchange);
}

/// A JSON error, as Enterprise's API answers them: `{"error": "..."}`.
fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": message.into() }))
}

async fn admin(node: &Node, req: &HttpRequest, params: &Params) -> Result<(), HttpResponse> {
    super::auth::admin_only(node, req, params, "repair shards")
        .await
        .map_err(|e: ApiError| error(e.status, e.message))
}

fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"))
}

/// The `id` parameter: a shard id, or a 400.
fn shard_id(params: &Params) -> Result<u64, Box<HttpResponse>> {
    match params.get("id") {
        None => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "missing shard id: id=N is required",
        ))),
        Some(v) => v.parse::<u64>().map_err(|_| {
            Box::new(error(
                StatusCode::BAD_REQUEST,
                format!("invalid shard id {v:?}: not an unsigned integer"),
            ))
        }),
    }
}

/// `GET /shard-repair/status[?local=true]`.
async fn status(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = admin(&node, &req, &params).await {
        return e;
    }
    let status = match flag(&params, "local") {
        true => node.entropy.local_status().await,
        false => node.entropy.cluster_status().await,
    };
    HttpResponse::Ok().json(status)
}

/// `POST /shard-repair/repair?id=N`: queued; 204.
async fn repair(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = admin(&node, &req, &params).await {
        return e;
    }
    let id = match shard_id(&params) {
        Ok(id) => id,
        Err(e) => return *e,
    };
    match node.entropy.queue_repair(id).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /shard-repair/cancel-repair?id=N[&local=true]`: 204.
async fn cancel_repair(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = admin(&node, &req, &params).await {
        return e;
    }
    let id = match shard_id(&params) {
        Ok(id) => id,
        Err(e) => return *e,
    };
    match node.entropy.cancel_repair(id, flag(&params, "local")).await {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn wire_answer(bytes: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .body(bytes)
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, HttpResponse> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| error(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > MAX_PEER_BODY {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds {MAX_PEER_BODY} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A peer request's body, once the caller is known to be an admin, read within its
/// bound and decoded (400 when it does not decode).
async fn admitted_body<T, E: std::fmt::Display>(
    node: &Node,
    req: &HttpRequest,
    params: &Params,
    payload: web::Payload,
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, HttpResponse> {
    admin(node, req, params).await?;
    let body = read_body(payload).await?;
    decode(&body).map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))
}

/// Runs digest work off the HTTP workers.
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::entropy::EntropyError> + Send + 'static,
) -> Result<T, HttpResponse> {
    match web::block(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(crate::entropy::EntropyError::NoShard(id))) => Err(error(
            StatusCode::NOT_FOUND,
            format!("shard {id} is not held here"),
        )),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// `GET /shard-repair/peer/shards?settled_before=NS`: every shard held here, with its root.
async fn peer_shards(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = admin(&node, &req, &params).await {
        return e;
    }
    let settled_before = match params.get("settled_before").map(|v| v.parse::<i64>()) {
        Some(Ok(v)) => v,
        None => crate::clock::now_nanos(),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "settled_before: not an integer"),
    };
    let node = node.into_inner();
    match off_workers(move || Ok(node.entropy.local_shards(settled_before))).await {
        Ok(shards) => wire_answer(wire::encode_shards(&shards)),
        Err(e) => e,
    }
}

/// `POST /shard-repair/peer/digests`: the children of the nodes asked for.
async fn peer_digests(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    answer_peer_request(
        node,
        req,
        params,
        payload,
        wire::decode_digest_request,
        |node, request| {
            node.entropy
                .local_digests(request)
                .map(|a| wire::encode_digest_answer(&a))
        },
    )
    .await
}

/// `POST /shard-repair/peer/leaves`: the contents of the leaves asked for.
async fn peer_leaves(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    answer_peer_request(
        node,
        req,
        params,
        payload,
        wire::decode_leaf_request,
        |node, request| {
            node.entropy
                .local_leaves(request)
                .map(|l| wire::encode_leaves(&l))
        },
    )
    .await
}

/// `POST /shard-repair/peer/cells`: the digests of the cells of the leaves asked for.
async fn peer_cells(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    answer_peer_request(
        node,
        req,
        params,
        payload,
        wire::decode_leaf_request,
        |node, request| {
            node.entropy
                .local_cells(request)
                .map(|c| wire::encode_cells(&c))
        },
    )
    .await
}

/// `POST /shard-repair/peer/ibf`: a table of the keys of the shard's points in a stratum.
async fn peer_ibf(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    answer_peer_request(
        node,
        req,
        params,
        payload,
        wire::decode_ibf_request,
        |node, request| {
            node.entropy
                .local_ibf(request)
                .map(|t| wire::encode_ibf(&t))
        },
    )
    .await
}

/// A peer's request, admitted and decoded, answered off the HTTP workers by `answer`.
async fn answer_peer_request<T: Send + 'static, E: std::fmt::Display>(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
    decode: impl FnOnce(&[u8]) -> Result<T, E>,
    answer: impl FnOnce(&Node, &T) -> Result<Vec<u8>, crate::entropy::EntropyError> + Send + 'static,
) -> HttpResponse {
    let request = match admitted_body(&node, &req, &params, payload, decode).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let node = node.into_inner();
    match off_workers(move || answer(&node, &request)).await {
        Ok(bytes) => wire_answer(bytes),
        Err(e) => e,
    }
}

/// `POST /shard-repair/peer/exchange`: points a peer pushes, applied; answers the points
/// asked for by key that are still here once they are.
async fn peer_exchange(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    let x = match admitted_body(&node, &req, &params, payload, wire::decode_exchange).await {
        Ok(x) => x,
        Err(e) => return e,
    };
    match node.entropy.answer_exchange(x).await {
        Ok(leaves) => wire_answer(wire::encode_leaves(&leaves)),
        Err(e) => apply_error(e),
    }
}

/// `POST /shard-repair/peer/apply`: leaves a peer pushes, applied (last write wins by
/// the versions they carry); answers what was applied.
async fn peer_apply(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    let leaves = match admitted_body(&node, &req, &params, payload, wire::decode_leaves).await {
        Ok(l) => l,
        Err(e) => return e,
    };
    match node.entropy.apply(leaves).await {
        Ok(applied) => HttpResponse::Ok().json(serde_json::json!({
            "points": applied.points,
            "conflicts": applied.conflicts,
            "tombstones": applied.tombstones,
        })),
        Err(e) => apply_error(e),
    }
}

/// A push that names a shard not held here is 404, as a read of one is.
fn apply_error(e: crate::entropy::EntropyError) -> HttpResponse {
    use crate::entropy::EntropyError;
    match e {
        EntropyError::NoShard(id)
        | EntropyError::Storage(crate::storage::StorageError::UnknownShard(id)) => error(
            StatusCode::NOT_FOUND,
            format!("shard {id} is not held here"),
        ),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `POST /shard-repair/pull` with a JSON [`crate::entropy::pull::PullRequest`]: pulls what
/// differs of one measurement from another node (`shardkeeper proxy`'s recovery and
/// resync). 200 with the figures; 409 when the two cannot be compared (the caller copies
/// another way); 502 when the source fails.
async fn pull(
    node: web::Data<Node>,
    req: HttpRequest,
    params: Params,
    payload: web::Payload,
) -> HttpResponse {
    use crate::entropy::pull::{PullRequest, Pulled};
    let request: PullRequest = match admitted_body(&node, &req, &params, payload, |b| {
        serde_json::from_slice::<PullRequest>(b)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return e,
    };
    match node.entropy.pull_measurement(&request).await {
        Ok(Pulled::Done(figures)) => HttpResponse::Ok().json(figures),
        Ok(Pulled::NotComparable(why)) => error(StatusCode::CONFLICT, why),
        Err(
            e @ (crate::entropy::EntropyError::Peer { .. }
            | crate::entropy::EntropyError::Wire { .. }),
        ) => error(StatusCode::BAD_GATEWAY, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
