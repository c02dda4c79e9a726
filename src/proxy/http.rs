//! The proxy's HTTP API: influx-proxy 2.4.7's endpoints, answers and error texts
//! (`{"error":"..."}` where influx-proxy answers JSON, a line of text where it answers
//! text), `X-Influxdb-Version` on each; and ours: `/metrics`, `/proxy/aside` for the
//! batches backends refused, `/proxy/migrations` for the migrations' progress. Handlers
//! parse, authenticate, call the service, render.

use super::migration::{MigrationKind, MigrationRequest, StartError};
use super::query::{json_body, QueryFailure, QueryRequest};
use super::service::{ProxyService, WriteError};
use super::{cipher, INFLUX_PROXY_VERSION};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Largest write body, as sent and after gzip (InfluxDB's default `max-body-size` is
/// 25 MB).
pub(super) const MAX_BODY_BYTES: usize = 32 << 20;

type Service = web::Data<ProxyService>;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ping", web::to(ping))
        .route("/query", web::to(query))
        .route("/write", web::to(write))
        .route("/health", web::to(health))
        .route("/replica", web::to(replica))
        .route("/encrypt", web::to(encrypt))
        .route("/decrypt", web::to(decrypt))
        .route("/migrate/state", web::to(migrate_state))
        .route("/migrate/stats", web::to(migrate_stats))
        .route("/rebalance", web::to(migration))
        .route("/recovery", web::to(migration))
        .route("/resync", web::to(migration))
        .route("/clear", web::to(migration))
        .route("/debug/pprof/profile", web::to(cpu_profile))
        .route("/debug/pprof/heap", web::to(heap))
        .route("/debug/pprof/threads", web::to(threads))
        .route("/metrics", web::to(metrics))
        .route("/proxy/migrations", web::to(migrations))
        .route("/proxy/aside", web::to(aside_list))
        .route("/proxy/aside/replay", web::to(aside_replay))
        .route("/proxy/aside/discard", web::to(aside_discard));
}

/// How influx-proxy words an error: JSON where the endpoint answers JSON (`/query`,
/// `/write`), a line of text elsewhere.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Json,
    Text,
}

fn answer(status: StatusCode, shape: Shape, message: &str) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.insert_header(("X-Influxdb-Version", INFLUX_PROXY_VERSION));
    match shape {
        Shape::Json => r
            .content_type("application/json")
            .body(json_body(&serde_json::json!({ "error": message }), false)),
        Shape::Text => r
            .content_type("text/plain; charset=utf-8")
            .body(format!("{message}\n")),
    }
}

/// An answer influx-proxy gives before the handler's work: a wrong method, wrong
/// credentials, a parameter it refuses.
struct Refused {
    status: StatusCode,
    shape: Shape,
    message: String,
}

impl Refused {
    fn new(status: StatusCode, shape: Shape, message: impl Into<String>) -> Refused {
        Refused {
            status,
            shape,
            message: message.into(),
        }
    }
}

impl From<Refused> for HttpResponse {
    fn from(r: Refused) -> HttpResponse {
        answer(r.status, r.shape, &r.message)
    }
}

fn json(value: &impl serde::Serialize, pretty: bool) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("X-Influxdb-Version", INFLUX_PROXY_VERSION))
        .content_type("application/json")
        .body(json_body(value, pretty))
}

/// A request's parameters as Go's `FormValue` sees them: the form body's (for a
/// form-encoded POST) before the URL's.
struct Form(Vec<(String, String)>);

impl Form {
    fn of(req: &HttpRequest, body: &[u8]) -> Form {
        let mut pairs = Vec::new();
        let form_body = req
            .headers()
            .get("Content-Type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if req.method() == Method::POST && form_body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        pairs.extend(url_params(req));
        Form(pairs)
    }

    fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn url_params(req: &HttpRequest) -> Vec<(String, String)> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn url_param(req: &HttpRequest, key: &str) -> String {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// influx-proxy's `checkMethod` and `checkAuth`: `u`/`p` in the URL, or Basic credentials.
fn check(
    service: &ProxyService,
    req: &HttpRequest,
    methods: &[Method],
    shape: Shape,
) -> Result<(), Refused> {
    if !methods.contains(req.method()) {
        return Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            shape,
            "method not allow",
        ));
    }
    let mut given = vec![(url_param(req, "u"), url_param(req, "p"))];
    given.extend(basic_credentials(req));
    match service.authenticate(&given) {
        true => Ok(()),
        false => Err(Refused::new(
            StatusCode::UNAUTHORIZED,
            shape,
            "authentication failed",
        )),
    }
}

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    use base64::Engine;
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

async fn ping() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("X-Influxdb-Version", INFLUX_PROXY_VERSION))
        .content_type("application/json")
        .finish()
}

async fn query(service: Service, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET, Method::POST], Shape::Json) {
        return r.into();
    }
    let form = Form::of(&req, &body);
    let q = form.get("q").trim().to_owned();
    if q.is_empty() {
        return answer(StatusCode::BAD_REQUEST, Shape::Json, "query not found");
    }
    if service.config.log_enabled {
        tracing::info!(method = %req.method(), db = form.get("db"), %q, "query");
    }
    let request = QueryRequest {
        db: form.get("db").to_owned(),
        pretty: form.get("pretty") == "true",
        accept: req
            .headers()
            .get("Accept")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        q,
        params: dedup_params(form.0),
    };
    match service.query(&request).await {
        Ok(a) => {
            let mut r = HttpResponse::build(
                StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY),
            );
            r.insert_header(("X-Influxdb-Version", INFLUX_PROXY_VERSION));
            if let Some(t) = a.content_type {
                r.insert_header(("Content-Type", t));
            }
            r.body(a.body)
        }
        Err(QueryFailure::Refused(message)) => {
            answer(StatusCode::BAD_REQUEST, Shape::Json, &message)
        }
        Err(QueryFailure::Error(message)) => {
            tracing::warn!(error = %message, q = %request.q, db = %request.db, "query error");
            answer(
                StatusCode::BAD_REQUEST,
                Shape::Json,
                &format!("query error: {message}"),
            )
        }
    }
}

/// Each parameter once, its first value (the body's before the URL's, as `FormValue`).
fn dedup_params(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    out
}

async fn write(service: Service, req: HttpRequest, payload: web::Payload) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::POST], Shape::Json) {
        return r.into();
    }
    let precision = url_param(&req, "precision");
    let precision = crate::line_protocol::Precision::parse_v1(&precision).unwrap_or_default();
    let db = url_param(&req, "db");
    if db.is_empty() {
        return answer(StatusCode::BAD_REQUEST, Shape::Json, "database not found");
    }
    if !service.db_allowed(&db) {
        let message = format!("database forbidden: {db}");
        return answer(StatusCode::BAD_REQUEST, Shape::Json, &message);
    }
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(r) => return r.into(),
    };
    let gzipped = req
        .headers()
        .get("Content-Encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip");
    let body = match gzipped {
        true => match gunzip(&body) {
            Ok(b) => web::Bytes::from(b),
            Err(status) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                return answer(status, Shape::Json, "request body too large");
            }
            Err(_) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    Shape::Json,
                    "unable to decode gzip body",
                );
            }
        },
        false => body,
    };
    let rp = url_param(&req, "rp");
    match service.write(&db, &rp, precision, &body).await {
        Ok(()) => HttpResponse::NoContent()
            .insert_header(("X-Influxdb-Version", INFLUX_PROXY_VERSION))
            .content_type("application/json")
            .finish(),
        Err(WriteError::BacklogFull { backend }) => {
            let message = format!(
                "backend {backend} has too much waiting (backlog_max_mb): write refused, retry later"
            );
            let mut r = answer(StatusCode::SERVICE_UNAVAILABLE, Shape::Json, &message);
            if let Ok(v) = service.config.rewrite_interval.to_string().parse() {
                r.headers_mut()
                    .insert(actix_web::http::header::RETRY_AFTER, v);
            }
            r
        }
        Err(WriteError::Lines { message, partial }) => {
            let message = match partial {
                true => format!("partial write: {message} dropped=0"),
                false => message,
            };
            answer(StatusCode::BAD_REQUEST, Shape::Json, &message)
        }
        Err(WriteError::Journal(e)) => {
            tracing::error!(error = %e, "write not accepted: journal failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                Shape::Json,
                &format!("write not accepted: {e}"),
            )
        }
    }
}

/// The body as sent (the `Bytes` extractor would inflate a gzip body itself, with its own
/// errors), at most [`MAX_BODY_BYTES`] of it.
async fn read_body(mut payload: web::Payload) -> Result<web::Bytes, Refused> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Refused::new(StatusCode::BAD_REQUEST, Shape::Json, e.to_string()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Shape::Json,
                "request body too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The body inflated, at most [`MAX_BODY_BYTES`] of it.
fn gunzip(body: &[u8]) -> Result<Vec<u8>, StatusCode> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(body).take(MAX_BODY_BYTES as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|_| StatusCode::BAD_REQUEST)?;
    if out.len() > MAX_BODY_BYTES {
        return Err(StatusCode::PAYLOAD_TOO_LARGE);
    }
    Ok(out)
}

async fn health(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    let pretty = url_param(&req, "pretty") == "true";
    json(&service.health().await, pretty)
}

async fn replica(service: Service, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    let form = Form::of(&req, &body);
    let (db, meas) = (form.get("db"), form.get("meas"));
    if db.is_empty() || meas.is_empty() {
        return answer(StatusCode::BAD_REQUEST, Shape::Text, "invalid db or meas");
    }
    let list: Vec<serde_json::Value> = service
        .replica(db, meas)
        .into_iter()
        .map(|(circle, name, url)| serde_json::json!({"circle": circle, "name": name, "url": url}))
        .collect();
    json(&list, url_param(&req, "pretty") == "true")
}

fn method_only(req: &HttpRequest, methods: &[Method]) -> Result<(), Refused> {
    match methods.contains(req.method()) {
        true => Ok(()),
        false => Err(Refused::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Shape::Text,
            "method not allow",
        )),
    }
}

fn text(body: Vec<u8>) -> HttpResponse {
    let mut body = body;
    body.push(b'\n');
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

async fn encrypt(req: HttpRequest) -> HttpResponse {
    if let Err(r) = method_only(&req, &[Method::GET]) {
        return r.into();
    }
    text(cipher::encrypt(&url_param(&req, "msg")).into_bytes())
}

async fn decrypt(req: HttpRequest) -> HttpResponse {
    if let Err(r) = method_only(&req, &[Method::GET]) {
        return r.into();
    }
    if url_param(&req, "key") != cipher::CIPHER_KEY {
        return answer(StatusCode::BAD_REQUEST, Shape::Text, "invalid key");
    }
    text(cipher::decrypt(&url_param(&req, "msg")))
}

fn circle_state(service: &ProxyService, id: usize) -> serde_json::Value {
    let c = &service.circles[id];
    serde_json::json!({
        "circle_id": id,
        "circle_name": c.name,
        "is_migrating": c.migrating.load(Ordering::Relaxed),
    })
}

/// influx-proxy's `formCircleId`.
fn circle_id(service: &ProxyService, form: &Form, key: &str) -> Result<usize, Refused> {
    match form.get(key).parse::<usize>() {
        Ok(id) if id < service.circles.len() => Ok(id),
        _ => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Shape::Text,
            format!("invalid {key}"),
        )),
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

async fn migrate_state(service: Service, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET, Method::POST], Shape::Text) {
        return r.into();
    }
    let form = Form::of(&req, &body);
    let pretty = url_param(&req, "pretty") == "true";
    if req.method() == Method::GET {
        let circles: Vec<serde_json::Value> = (0..service.circles.len())
            .map(|id| circle_state(&service, id))
            .collect();
        let state = serde_json::json!({
            "circles": circles,
            "is_resyncing": service.resyncing.load(Ordering::Relaxed),
        });
        return json(&state, pretty);
    }
    let mut state = serde_json::Map::new();
    if !form.get("resyncing").is_empty() {
        let Some(resyncing) = go_bool(form.get("resyncing")) else {
            return answer(StatusCode::BAD_REQUEST, Shape::Text, "illegal resyncing");
        };
        service.resyncing.store(resyncing, Ordering::Relaxed);
        state.insert("resyncing".into(), resyncing.into());
    }
    if !form.get("circle_id").is_empty() || !form.get("migrating").is_empty() {
        let id = match circle_id(&service, &form, "circle_id") {
            Ok(id) => id,
            Err(r) => return r.into(),
        };
        let Some(migrating) = go_bool(form.get("migrating")) else {
            return answer(StatusCode::BAD_REQUEST, Shape::Text, "illegal migrating");
        };
        service.circles[id]
            .migrating
            .store(migrating, Ordering::Relaxed);
        state.insert("circle".into(), circle_state(&service, id));
    }
    if state.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            Shape::Text,
            "missing query parameter",
        );
    }
    json(&state, pretty)
}

async fn migrate_stats(service: Service, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    let form = Form::of(&req, &body);
    let id = match circle_id(&service, &form, "circle_id") {
        Ok(id) => id,
        Err(r) => return r.into(),
    };
    if !matches!(
        form.get("type"),
        "rebalance" | "recovery" | "resync" | "clear"
    ) {
        return answer(StatusCode::BAD_REQUEST, Shape::Text, "invalid stats type");
    }
    json(
        &service.migrate_stats(id),
        url_param(&req, "pretty") == "true",
    )
}

/// influx-proxy's `formValues`: a comma-separated list, trimmed of commas and spaces.
fn form_values(value: &str) -> Vec<String> {
    let trimmed = value.trim_matches(|c| c == ',' || c == ' ');
    match trimmed.is_empty() {
        true => Vec::new(),
        false => trimmed.split(',').map(str::to_owned).collect(),
    }
}

/// influx-proxy's `formPositiveInt`: empty is 0.
fn form_positive(form: &Form, key: &str) -> Option<u64> {
    let value = form.get(key).trim();
    match value.is_empty() {
        true => Some(0),
        false => value.parse::<u64>().ok(),
    }
}

/// influx-proxy's `setCpus`: 1 by default, at most the machine's CPUs.
fn form_cpus(form: &Form) -> Result<usize, Refused> {
    let value = form.get("cpus").trim();
    if value.is_empty() {
        return Ok(1);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    match value.parse::<usize>() {
        Ok(n) if n > 0 && n <= cpus => Ok(n),
        _ => Err(Refused::new(
            StatusCode::BAD_REQUEST,
            Shape::Text,
            "invalid cpus",
        )),
    }
}

/// influx-proxy's `setHaAddrs`: none, or two `host:port` at least.
fn form_ha_addrs(form: &Form) -> Result<Vec<String>, Refused> {
    let addrs = form_values(form.get("ha_addrs"));
    let refuse = |m: &str| Refused::new(StatusCode::BAD_REQUEST, Shape::Text, m);
    if addrs.len() == 1 {
        return Err(refuse("ha_addrs should contain two addrs at least"));
    }
    let valid = |a: &str| {
        a.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
                && (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
        })
    };
    match addrs.iter().all(|a| valid(a)) {
        true => Ok(addrs),
        false => Err(refuse("invalid ha_addrs")),
    }
}

/// What `/rebalance`, `/recovery`, `/resync` and `/clear` ask, checked in influx-proxy's
/// order and with its words.
fn migration_kind(
    service: &ProxyService,
    req: &HttpRequest,
    form: &Form,
    body: &[u8],
) -> Result<MigrationKind, Refused> {
    let bad = |m: &str| Refused::new(StatusCode::BAD_REQUEST, Shape::Text, m);
    match req.path() {
        "/rebalance" => {
            let circle = circle_id(service, form, "circle_id")?;
            let removed = match form.get("operation") {
                "add" => None,
                "rm" => {
                    #[derive(serde::Deserialize)]
                    struct Removed {
                        backends: Vec<super::config::BackendConfig>,
                    }
                    let removed: Removed = serde_json::from_slice(body)
                        .map_err(|_| bad("invalid backends from body"))?;
                    Some(removed.backends)
                }
                _ => return Err(bad("invalid operation")),
            };
            Ok(MigrationKind::Rebalance { circle, removed })
        }
        "/recovery" => {
            let from = circle_id(service, form, "from_circle_id")?;
            let to = circle_id(service, form, "to_circle_id")?;
            if from == to {
                return Err(bad("from_circle_id and to_circle_id cannot be same"));
            }
            Ok(MigrationKind::Recovery {
                from,
                to,
                backend_urls: form_values(form.get("backend_urls")),
            })
        }
        "/resync" => {
            let parts: Option<Vec<u64>> = ["days", "hours", "minutes", "seconds"]
                .iter()
                .map(|k| form_positive(form, k))
                .collect();
            let Some(p) = parts else {
                return Err(bad("invalid days, hours, minutes or seconds"));
            };
            let seconds = p[0]
                .saturating_mul(86_400)
                .saturating_add(p[1].saturating_mul(3_600))
                .saturating_add(p[2].saturating_mul(60))
                .saturating_add(p[3]);
            Ok(MigrationKind::Resync { seconds })
        }
        _ => Ok(MigrationKind::Clear {
            circle: circle_id(service, form, "circle_id")?,
        }),
    }
}

/// `/rebalance`, `/recovery`, `/resync`, `/clear`: `accepted` (202) once the job is
/// recorded; a job runs to its end across restarts of the proxy.
async fn migration(service: Service, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::POST], Shape::Text) {
        return r.into();
    }
    let form = Form::of(&req, &body);
    let kind = match migration_kind(&service, &req, &form, &body) {
        Ok(k) => k,
        Err(r) => return r.into(),
    };
    if let Some(message) = service.migration_busy(&kind) {
        return answer(StatusCode::ACCEPTED, Shape::Text, &message);
    }
    let (cpus, ha_addrs) = match (form_cpus(&form), form_ha_addrs(&form)) {
        (Ok(c), Ok(h)) => (c, h),
        (Err(r), _) | (_, Err(r)) => return r.into(),
    };
    let request = MigrationRequest {
        kind,
        databases: form_values(form.get("db")),
        cpus,
        ha_addrs,
    };
    match service.into_inner().start_migration(request).await {
        Ok(job) => {
            tracing::info!(job, path = req.path(), "migration accepted");
            answer(StatusCode::ACCEPTED, Shape::Text, "accepted")
        }
        Err(StartError::Busy(message)) => answer(StatusCode::ACCEPTED, Shape::Text, &message),
        Err(e @ StartError::Journal(_)) => {
            tracing::error!(error = %e, "migration not accepted");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                Shape::Text,
                &e.to_string(),
            )
        }
    }
}

/// `/proxy/migrations`: the migrations the journal holds, newest first, with their
/// progress (ours: influx-proxy keeps only `/migrate/stats`' counters).
async fn migrations(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Json) {
        return r.into();
    }
    json(
        &serde_json::json!({ "migrations": service.migrations() }),
        url_param(&req, "pretty") == "true",
    )
}

/// `/debug/pprof/profile?seconds=N`: a CPU profile `go tool pprof` reads (influx-proxy
/// serves Go's own there).
async fn cpu_profile(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    let seconds = url_params(&req)
        .into_iter()
        .find(|(k, _)| k == "seconds")
        .map(|(_, v)| v);
    crate::profile::answer(
        crate::profile::cpu(seconds.as_deref()).await,
        |status, message| answer(status, Shape::Text, &message),
    )
}

/// `/debug/pprof/heap`: the process's memory, as JSON figures.
async fn heap(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    json(&crate::profile::heap(), url_param(&req, "pretty") == "true")
}

/// `/debug/pprof/threads`: the process's threads, as JSON figures.
async fn threads(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    json(
        &crate::profile::threads(),
        url_param(&req, "pretty") == "true",
    )
}

async fn metrics(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Text) {
        return r.into();
    }
    match super::metrics::render(&service) {
        Ok(body) => HttpResponse::Ok()
            .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "encoding /metrics failed");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn aside_list(service: Service, req: HttpRequest) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::GET], Shape::Json) {
        return r.into();
    }
    let list: Vec<serde_json::Value> = service
        .aside()
        .into_iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id, "backend": a.backend, "db": a.db, "rp": a.rp,
                "precision": a.precision, "lines": a.lines, "bytes": a.bytes,
                "status": a.status, "message": a.message, "at_unix_nanos": a.at_unix_nanos,
            })
        })
        .collect();
    json(
        &serde_json::json!({ "aside": list }),
        url_param(&req, "pretty") == "true",
    )
}

async fn aside_replay(service: Service, req: HttpRequest) -> HttpResponse {
    aside_resolve(service, req, true).await
}

async fn aside_discard(service: Service, req: HttpRequest) -> HttpResponse {
    aside_resolve(service, req, false).await
}

/// `POST /proxy/aside/{replay,discard}?id=N` (or `id=all`, optionally with `backend=`).
async fn aside_resolve(service: Service, req: HttpRequest, replay: bool) -> HttpResponse {
    if let Err(r) = check(&service, &req, &[Method::POST], Shape::Json) {
        return r.into();
    }
    let id = url_param(&req, "id");
    let backend = url_param(&req, "backend");
    let ids: Vec<u64> = match id.as_str() {
        "all" => service
            .aside()
            .into_iter()
            .filter(|a| backend.is_empty() || a.backend == backend)
            .map(|a| a.id)
            .collect(),
        n => match n.parse() {
            Ok(id) => vec![id],
            Err(_) => return answer(StatusCode::BAD_REQUEST, Shape::Json, "invalid id"),
        },
    };
    let mut done = Vec::new();
    for id in ids {
        let outcome = match replay {
            true => service.replay_aside(id).await,
            false => service.discard_aside(id).await,
        };
        match outcome {
            Ok(true) => done.push(id),
            Ok(false) => {
                return answer(
                    StatusCode::NOT_FOUND,
                    Shape::Json,
                    &format!("no batch {id} kept aside"),
                )
            }
            Err(e) => {
                return answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Shape::Json,
                    &e.to_string(),
                )
            }
        }
    }
    json(&serde_json::json!({ "resolved": done }), false)
}

/// The proxy's server on `listener`: plain, or TLS when `acceptor` is given.
pub(super) fn server(
    service: Arc<ProxyService>,
    listener: std::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    workers: usize,
) -> std::io::Result<actix_web::dev::Server> {
    use actix_service::{IntoServiceFactory, ServiceFactoryExt};
    let addr = listener.local_addr()?;
    let idle = std::time::Duration::from_secs(service.config.idle_timeout);
    let data = web::Data::from(service);
    let app = move || {
        actix_web::App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(routes)
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .content_type("text/plain; charset=utf-8")
                    .body("404 page not found\n")
            }))
    };
    Ok(actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .listen("proxy", listener, move || {
            let acceptor = acceptor.clone();
            let http = actix_http::HttpService::build()
                .keep_alive(idle)
                .local_addr(addr)
                .h1(actix_service::map_config(
                    app()
                        .into_factory()
                        .map_err(|e: actix_web::Error| e.error_response()),
                    |_| actix_web::dev::AppConfig::default(),
                ));
            actix_service::fn_service(move |tcp: actix_web::rt::net::TcpStream| {
                let acceptor = acceptor.clone();
                async move {
                    let peer = tcp.peer_addr().ok();
                    let stream = crate::net::Stream::accept(tcp, acceptor.as_ref()).await?;
                    Ok::<_, std::io::Error>((stream, peer))
                }
            })
            .map_err(actix_http::error::DispatchError::Io)
            .and_then(http)
        })?
        .run())
}
