//! The HTTP API. Handlers are thin: parse, call the node's services, render.

use crate::node::Node;
use actix_web::{dev::Server, http::StatusCode, web, App, HttpResponse, HttpServer};
use std::sync::Arc;

mod auth;
mod backup;
mod error;
mod health;
mod metrics;
mod query;
mod v2;
mod write;

pub fn server(node: Arc<Node>) -> std::io::Result<ServerHandle> {
    let bind = node.config.bind;
    let grace = node.config.shutdown_grace_seconds;
    let data = web::Data::from(node);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .configure(health::routes)
            .configure(metrics::routes)
            .configure(write::routes)
            .configure(query::routes)
            .configure(v2::routes)
            .configure(backup::routes)
            .default_service(web::to(not_found))
    })
    .workers(2)
    // So that a query whose client hung up is stopped.
    .on_connect(query::remember_peer)
    .shutdown_timeout(grace)
    // The node installs its own handlers before it announces its address, so that a
    // signal sent right after start-up is never lost.
    .disable_signals()
    .bind(bind)?;
    Ok(ServerHandle {
        addrs: server.addrs(),
        server: server.run(),
    })
}

/// A bound, not yet awaited server.
pub struct ServerHandle {
    addrs: Vec<std::net::SocketAddr>,
    server: Server,
}

impl ServerHandle {
    pub fn addrs(&self) -> &[std::net::SocketAddr] {
        &self.addrs
    }

    /// Stops accepting, lets in-flight requests finish (bounded by the shutdown timeout).
    pub fn stopper(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// InfluxDB answers unknown paths with Go's plain-text 404.
async fn not_found() -> HttpResponse {
    HttpResponse::build(StatusCode::NOT_FOUND)
        .content_type("text/plain; charset=utf-8")
        .body("404 page not found\n")
}
