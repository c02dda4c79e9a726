//! `/ping` and `/health`, as InfluxDB answers them.

use crate::node::Node;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/ping", ping)
        .add(Method::HEAD, "/ping", ping)
        .add(Method::GET, "/health", health);
}

async fn ping(node: web::Data<Node>) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("X-Influxdb-Build", "OSS"))
        .insert_header(("X-Influxdb-Version", node.config.influxdb_version.as_str()))
        .finish()
}

async fn health(node: web::Data<Node>) -> HttpResponse {
    let version = node.config.influxdb_version.as_str();
    let quarantined = node.storage.quarantined();
    let mut checks: Vec<_> = quarantined
        .iter()
        .map(|q| {
            json!({
                "name": format!("shard {}", q.info.id),
                "status": "warn",
                "message": format!(
                    "quarantined ({} / {}): {}",
                    q.info.database, q.info.retention_policy, q.reason
                ),
            })
        })
        .collect();
    checks.extend(
        node.storage
            .passed_over()
            .into_iter()
            .map(|reason| json!({ "name": "data log", "status": "warn", "message": reason })),
    );
    match node.failure() {
        None if !checks.is_empty() => HttpResponse::Ok().json(json!({
            "name": "influxdb",
            "message": format!(
                "{} shard(s) quarantined, {} damaged record(s) passed over: the others serve queries and writes",
                quarantined.len(),
                checks.len() - quarantined.len()
            ),
            "status": "warn",
            "checks": checks,
            "version": version,
        })),
        None => HttpResponse::Ok().json(json!({
            "name": "influxdb",
            "message": "ready for queries and writes",
            "status": "pass",
            "checks": [],
            "version": version,
        })),
        Some(reason) => HttpResponse::ServiceUnavailable().json(json!({
            "name": "influxdb",
            "message": format!("control log failed: {reason}"),
            "status": "fail",
            "checks": [],
            "version": version,
        })),
    }
}
