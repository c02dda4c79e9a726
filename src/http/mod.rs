//! The HTTP API. Handlers are thin: parse, call the node's services, render.

use crate::node::Node;
use actix_service::{IntoServiceFactory, ServiceFactoryExt};
use actix_web::http::Method;
use actix_web::{dev::Server, middleware, web, App};
use std::collections::HashMap;
use std::sync::Arc;

mod auth;
mod conn;
mod debug;
mod entropy;
mod error;
mod guard;
mod health;
mod metrics;
mod observe;
mod query;
mod v2;
mod write;

/// A request's URL parameters, as every handler reads them.
pub(crate) type Params = web::Query<HashMap<String, String>>;

/// The server of `node`'s API on its configured address; over TLS when `certificates` are
/// given (`https_enabled`).
pub(crate) fn server(
    node: Arc<Node>,
    certificates: Option<Arc<crate::net::tls::Certificates>>,
) -> std::io::Result<ServerHandle> {
    let grace = node.config.shutdown_grace_seconds;
    let acceptor = match &certificates {
        Some(c) => Some(c.acceptor().map_err(std::io::Error::other)?),
        None => None,
    };
    let listener = crate::net::listen(node.config.bind)?;
    let addr = listener.local_addr()?;
    let metrics = web::Data::new(metrics::Metrics::new(node.clone()));
    let data = web::Data::from(node);
    let app = move || {
        App::new()
            .app_data(data.clone())
            .app_data(metrics.clone())
            .app_data(web::FormConfig::default().limit(guard::MAX_QUERY_FORM_BYTES))
            .wrap(middleware::from_fn(guard::guard_request))
            // Outermost: it sees the answer the client gets, the guard's included.
            .wrap(middleware::from_fn(observe::observe))
            .configure(|cfg| {
                let mut routes = Routes {
                    config: Some(cfg),
                    table: Vec::new(),
                };
                for module in MODULES {
                    module(&mut routes);
                }
            })
            .default_service(web::to(guard::no_route))
    };
    // actix-web's `HttpServer` as it builds itself, but over `conn::Conn`, so that the
    // answers actix's decoder gives without a body get one.
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder
        .workers(2)
        .shutdown_timeout(grace)
        // The node installs its own handlers before it announces its address, so that a
        // signal sent right after start-up is never lost.
        .disable_signals()
        .listen("http", listener, move || {
            // Runs on each worker thread as it starts.
            crate::priority::quicken_current_thread();
            let shutdown = shutdown.clone();
            let acceptor = acceptor.clone();
            let http = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = shutdown.clone();
                    async move { signal.notified().await }
                })
                .client_disconnect_timeout(std::time::Duration::from_secs(1))
                .local_addr(addr)
                // So that a query whose client hung up is stopped.
                .on_connect_ext(|conn: &conn::Conn, data| query::remember_peer(conn.stream(), data))
                .h1(actix_service::map_config(
                    app()
                        .into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |_| actix_web::dev::AppConfig::default(),
                ));
            actix_service::fn_service(move |stream: actix_web::rt::net::TcpStream| {
                let acceptor = acceptor.clone();
                async move {
                    let peer = stream.peer_addr().ok();
                    let stream = crate::net::Stream::accept(stream, acceptor.as_ref()).await?;
                    Ok::<_, std::io::Error>((conn::Conn::new(stream), peer))
                }
            })
            .map_err(actix_http::error::DispatchError::Io)
            .and_then(http)
        })?
        .run();
    Ok(ServerHandle {
        addrs: vec![addr],
        server,
        certificates,
    })
}

/// Every module's routes, in the order they are matched.
const MODULES: [fn(&mut Routes); 7] = [
    health::routes,
    debug::routes,
    metrics::routes,
    write::routes,
    query::routes,
    v2::routes,
    entropy::routes,
];

/// Registers each route with the server and records it, so that the table tests check
/// ([`route_table`]) is the table the server serves.
pub(crate) struct Routes<'a> {
    config: Option<&'a mut web::ServiceConfig>,
    table: Vec<(Method, &'static str)>,
}

impl Routes<'_> {
    pub(crate) fn add<F, Args>(
        &mut self,
        method: Method,
        path: &'static str,
        handler: F,
    ) -> &mut Self
    where
        F: actix_web::Handler<Args>,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        if let Some(config) = self.config.as_deref_mut() {
            config.route(path, web::method(method.clone()).to(handler));
        }
        self.table.push((method, path));
        self
    }
}

/// Every (method, path pattern) the server answers, as registered (`{id}` for a path
/// parameter).
pub fn route_table() -> Vec<(String, String)> {
    let mut routes = Routes {
        config: None,
        table: Vec::new(),
    };
    for module in MODULES {
        module(&mut routes);
    }
    routes
        .table
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_owned()))
        .collect()
}

/// A bound, not yet awaited server.
pub(crate) struct ServerHandle {
    addrs: Vec<std::net::SocketAddr>,
    server: Server,
    certificates: Option<Arc<crate::net::tls::Certificates>>,
}

impl ServerHandle {
    pub(crate) fn addrs(&self) -> &[std::net::SocketAddr] {
        &self.addrs
    }

    /// The scheme clients reach the server with.
    pub(crate) fn scheme(&self) -> &'static str {
        match self.certificates {
            Some(_) => "https",
            None => "http",
        }
    }

    /// Stops accepting, lets in-flight requests finish (bounded by the shutdown timeout).
    pub(crate) fn stopper(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub(crate) async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}
