//! `GET /debug/pprof/profile`: a CPU profile, as Go's pprof handler gives one;
//! `/debug/pprof/heap` and `/debug/pprof/threads`: the process's memory and its threads, as
//! JSON figures (Go's heap and goroutine profiles have no counterpart in a Rust process).
//! `GET /debug/failpoints`: the node's fail points, where each sits and its actions now
//! (see [`crate::failpoint`]). With authentication on, an admin's to read. A build without
//! fail points answers 501 (the route is there, what it reports is not).

use super::Params;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/debug/failpoints", failpoints)
        .add(Method::GET, "/debug/pprof/profile", cpu_profile)
        .add(Method::GET, "/debug/pprof/heap", heap)
        .add(Method::GET, "/debug/pprof/threads", threads);
}

/// `GET /debug/pprof/heap`: the process's resident memory now and at its peak (the
/// kernel's figures) and what the allocator has committed. An admin's with authentication
/// on.
async fn heap(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    HttpResponse::Ok().json(crate::profile::heap())
}

/// `GET /debug/pprof/threads`: the process's threads by name, with how many share it and
/// their CPU time (from `/proc/self/task`). An admin's with authentication on.
async fn threads(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    HttpResponse::Ok().json(crate::profile::threads())
}

async fn failpoints(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "read fail points").await {
        return e.v2();
    }
    if !crate::failpoint::COMPILED_IN {
        let status = actix_web::http::StatusCode::NOT_IMPLEMENTED;
        return super::error::ApiError::new(status, crate::failpoint::NOT_COMPILED_IN).v2();
    }
    let points: Vec<serde_json::Value> = crate::failpoint::list()
        .into_iter()
        .map(|(name, place, actions)| {
            serde_json::json!({"name": name, "place": place, "actions": actions})
        })
        .collect();
    HttpResponse::Ok().json(serde_json::json!({
        "armed": crate::failpoint::armed(),
        "failpoints": points,
    }))
}

/// `GET /debug/pprof/profile?seconds=N`: a CPU profile of the whole process over N seconds
/// (fractions allowed), in pprof's gzipped protobuf, as Go's `net/http/pprof` answers it,
/// so `go tool pprof http://node:8086/debug/pprof/profile` reads it. An admin's with
/// authentication on.
async fn cpu_profile(node: web::Data<Node>, req: HttpRequest, params: Params) -> HttpResponse {
    if let Err(e) = super::auth::admin_only(&node, &req, &params, "profile the node").await {
        return e.v2();
    }
    crate::profile::answer(
        crate::profile::cpu(params.get("seconds").map(String::as_str)).await,
        |status, message| super::error::ApiError::new(status, message).v2(),
    )
}
