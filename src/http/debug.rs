//! `GET /debug/failpoints`: the node's fail points, where each sits and its actions now
//! (see [`crate::failpoint`]). With authentication on, an admin's to read.

use super::error::ApiError;
use crate::node::Node;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/debug/failpoints", failpoints);
}

async fn failpoints(
    node: web::Data<Node>,
    req: HttpRequest,
    params: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    match super::auth::authenticate(&node, &req, &params).await {
        Ok(None) => {}
        Ok(Some(p)) if p.admin => {}
        Ok(Some(p)) => {
            let message = format!("{} may not read fail points: requires admin", p.user);
            return ApiError::new(StatusCode::FORBIDDEN, message).v2();
        }
        Err(e) => return ApiError::from(e).v2(),
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
