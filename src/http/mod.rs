//! The HTTP API. Handlers are thin: parse, call the node's services, render.

use crate::node::Node;
use actix_web::{dev::Server, middleware, web, App, HttpServer};
use std::sync::Arc;

mod auth;
mod backup;
mod error;
mod guard;
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
            .app_data(web::FormConfig::default().limit(guard::MAX_QUERY_FORM_BYTES))
            .wrap(middleware::from_fn(guard::guard_request))
            .configure(health::routes)
            .configure(metrics::routes)
            .configure(write::routes)
            .configure(query::routes)
            .configure(v2::routes)
            .configure(backup::routes)
            .default_service(web::to(guard::no_route))
    })
    .workers(2)
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
