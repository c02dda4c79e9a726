//! `GET|POST /query`: InfluxQL in, InfluxDB 1.x JSON out.

use super::error::ApiError;
use crate::auth::AuthError;
use crate::node::Node;
use crate::query::parser::{ast::Statement, parse_query};
use crate::query::result::{chunks, QueryResponse};
use crate::query::{epoch_unit, execute, QueryError, QueryOptions};
use actix_web::{web, HttpRequest, HttpResponse};
use std::collections::HashMap;

const DEFAULT_CHUNK_SIZE: usize = 10_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/query", web::get().to(query))
        .route("/query", web::post().to(query));
}

async fn query(
    node: web::Data<Node>,
    req: HttpRequest,
    params: web::Query<HashMap<String, String>>,
    form: super::guard::QueryForm,
) -> HttpResponse {
    // Form values win over the URL's, as in InfluxDB.
    let get = |k: &str| {
        form.0
            .as_ref()
            .and_then(|f| f.get(k))
            .or_else(|| params.get(k))
            .cloned()
    };
    let Some(q) = get("q").filter(|q| !q.trim().is_empty()) else {
        return ApiError::bad_request("missing required parameter \"q\"").v1();
    };
    let epoch = match get("epoch").filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => match epoch_unit(&e) {
            Some(unit) => Some(unit),
            None => return ApiError::bad_request(format!("invalid epoch: {e}")).v1(),
        },
    };
    let bound = match get("params").filter(|p| !p.is_empty()) {
        None => Default::default(),
        Some(text) => match crate::query::params::from_json(&text) {
            Ok(bound) => bound,
            Err(e) => return ApiError::bad_request(e.to_string()).v1(),
        },
    };
    let principal = match super::auth::authenticate(&node, &req, &params).await {
        Ok(p) => p,
        // With no admin yet, the one thing anyone may do is create the first admin.
        Err(AuthError::NoAdminYet) if creates_admin(&q) => None,
        Err(e) => return ApiError::from(e).v1(),
    };
    // InfluxDB picks CSV on these exact Accept values; its times are integers (ns unless
    // `epoch=` says otherwise).
    let csv = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .is_some_and(|a| a == "application/csv" || a == "text/csv");
    let options = QueryOptions {
        database: get("db"),
        epoch: epoch.or(csv.then_some(1)),
        principal,
        params: bound,
    };
    match execute(&node, &q, &options).await {
        Ok(results) => {
            let pretty = get("pretty").is_some_and(|p| p == "true");

            if csv {
                return HttpResponse::Ok()
                    .content_type("text/csv")
                    .body(crate::query::csv::render(&results));
            }
            let text = match get("chunked").is_some_and(|c| c == "true") {
                true => {
                    // As InfluxDB: a missing, unreadable or non-positive size means 10000.
                    let size = get("chunk_size")
                        .and_then(|s| s.parse::<i64>().ok())
                        .filter(|&n| n > 0)
                        .map_or(DEFAULT_CHUNK_SIZE, |n| n as usize);
                    chunks(results, size)
                        .iter()
                        .map(|c| render(c, pretty))
                        .collect()
                }
                false => render(&QueryResponse { results }, pretty),
            };
            HttpResponse::Ok()
                .content_type("application/json")
                .body(text)
        }
        Err(QueryError::Parse(e)) if csv => HttpResponse::BadRequest()
            .content_type("text/csv")
            .insert_header(("X-Influxdb-Error", e.http_message()))
            .body(crate::query::csv::error(&e.http_message())),
        Err(QueryError::Parse(e)) => ApiError::bad_request(e.http_message()).v1(),
        Err(QueryError::Unauthorized(e)) => ApiError::from(e).v1(),
    }
}

/// One JSON document and its newline; `pretty` indents by four spaces, as InfluxDB does.
fn render<T: serde::Serialize>(value: &T, pretty: bool) -> String {
    let mut out = Vec::new();
    let written = match pretty {
        true => {
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            value.serialize(&mut serde_json::Serializer::with_formatter(
                &mut out, formatter,
            ))
        }
        false => value.serialize(&mut serde_json::Serializer::new(&mut out)),
    };
    if written.is_err() {
        out.clear();
    }
    out.push(b'\n');
    String::from_utf8(out).unwrap_or_default()
}

fn creates_admin(q: &str) -> bool {
    matches!(
        parse_query(q).as_deref(),
        Ok([Statement::CreateUser { admin: true, .. }])
    )
}
