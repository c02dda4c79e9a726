//! `GET /debug/failpoints`: the node's fail points, where each sits and its actions now
//! (see [`crate::failpoint`]). With authentication on, an admin's to read. A build without
//! fail points answers 501 (the route is there, what it reports is not).

use super::Params;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/debug/failpoints", failpoints);
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
