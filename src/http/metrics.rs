//! `GET /metrics`: the node's figures in Prometheus' text format (OpenMetrics), through
//! the `prometheus-client` crate. They name every shard and count its writes, so with
//! authentication on they are an admin's to read (unless `metrics_auth = false`); a
//! scraper sends an admin's token as `Bearer`. Every name is listed in the README
//! (Operations: metrics) and kept stable.
//!
//! Two kinds of figure: what the HTTP layer counts as requests pass ([`Metrics`]: requests,
//! points, queries), and what the node already knows, read at each scrape
//! ([`NodeFigures`]: logs, shards, heads, backups), so that nothing below `http` knows
//! Prometheus.

use super::Params;
use crate::log::LatencyFigures;
use crate::node::Node;
use actix_web::{web, HttpRequest, HttpResponse};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn routes(r: &mut super::Routes) {
    use actix_web::http::Method;
    r.add(Method::GET, "/metrics", metrics);
}

async fn metrics(
    node: web::Data<Node>,
    registry: web::Data<Metrics>,
    req: HttpRequest,
    params: Params,
) -> HttpResponse {
    if node.config.metrics_auth {
        let allowed = match super::auth::authenticate_v2(&node, &req, &params).await {
            Ok(caller) => super::auth::require_admin(caller.as_ref(), "may not read metrics"),
            Err(e) => Err(e),
        };
        if let Err(e) = allowed {
            return e.v2();
        }
    }
    // The replications' figures are read asynchronously (the control state), so they are a
    // collector made for this scrape, encoded beside the node's registry.
    let mut replications = Registry::default();
    let inbound = &node.inbound.figures;
    replications.register_collector(Box::new(ReplicationMetrics(
        node.replications.figures().await,
        [
            (
                "applied",
                inbound.applied.load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "duplicate",
                inbound
                    .duplicates
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            (
                "overlap",
                inbound.overlaps.load(std::sync::atomic::Ordering::Relaxed),
            ),
        ],
    )));
    replications.register_collector(Box::new(SubscriberMetrics(node.subscriber.figures())));
    let mut body = String::new();
    let encoded = prometheus_client::encoding::text::encode_registry(&mut body, &registry.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut body, &replications))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut body));
    if let Err(e) = encoded {
        tracing::error!(error = %e, "encoding /metrics failed");
        return HttpResponse::InternalServerError().finish();
    }
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(body)
}

/// Upper bounds (seconds) of the request and query latency buckets: from a `/ping` to a
/// query that runs for a minute.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route's pattern (`/api/v2/buckets/{id}`), never the raw path: a label per URL
    /// would grow without bound.
    endpoint: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

/// The registry `/metrics` renders and the figures the HTTP layer counts into it; one per
/// server, shared by its workers (app data).
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    points_written: Counter,
    points_rejected: Family<ReasonLabels, Counter>,
    queries: Family<KindLabels, Counter>,
    query_seconds: Family<KindLabels, Histogram, fn() -> Histogram>,
}

/// Why points of a write were not stored (`reason` of `shardkeeper_points_rejected_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// A line that did not parse.
    Parse,
    /// A field of another type than the shard holds.
    FieldTypeConflict,
    /// Older than the retention policy keeps (or outside i64 nanoseconds).
    Retention,
    /// Past `max_fields_per_measurement`.
    FieldLimit,
    /// A body refused whole (too large for the memory budget, a storage failure...).
    Refused,
    /// Another per-point reason (an invalid name or value).
    Invalid,
}

impl Rejected {
    fn label(self) -> &'static str {
        match self {
            Rejected::Parse => "parse",
            Rejected::FieldTypeConflict => "field_type_conflict",
            Rejected::Retention => "retention",
            Rejected::FieldLimit => "field_limit",
            Rejected::Refused => "refused",
            Rejected::Invalid => "invalid",
        }
    }

    /// The kind of a storage partial-write reason (InfluxDB's message for the first drop).
    pub(crate) fn of_partial_write(reason: &str) -> Rejected {
        if reason.starts_with("field type conflict") {
            Rejected::FieldTypeConflict
        } else if reason.starts_with("points beyond retention") {
            Rejected::Retention
        } else if reason.starts_with("field limit exceeded") {
            Rejected::FieldLimit
        } else {
            Rejected::Invalid
        }
    }
}

/// The statement kind of a query, from its first keyword (`kind` of the query metrics).
pub(crate) fn query_kind(q: &str) -> &'static str {
    let first = q
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    const KINDS: [&str; 11] = [
        "select", "show", "create", "drop", "delete", "alter", "grant", "revoke", "set", "kill",
        "explain",
    ];
    KINDS
        .into_iter()
        .find(|k| first.eq_ignore_ascii_case(k))
        .unwrap_or("other")
}

impl Metrics {
    /// The registry ends each help text with a period itself.
    pub(crate) fn new(node: Arc<Node>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "shardkeeper_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        let request_seconds: Family<EndpointLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "shardkeeper_http_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by route and method",
            request_seconds.clone(),
        );
        let points_written = Counter::default();
        registry.register(
            "shardkeeper_points_written",
            "Points stored by writes (v1 and v2)",
            points_written.clone(),
        );
        let points_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "shardkeeper_points_rejected",
            "Points or lines of writes not stored, by reason",
            points_rejected.clone(),
        );
        let queries = Family::<KindLabels, Counter>::default();
        registry.register(
            "shardkeeper_queries",
            "InfluxQL queries answered, by the kind of their first statement",
            queries.clone(),
        );
        let query_seconds: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "shardkeeper_query_duration_seconds",
            "Time from a query's arrival to its answer, by the kind of its first statement",
            query_seconds.clone(),
        );
        registry.register(
            "shardkeeper_build",
            "The running build",
            Info::new(vec![
                ("version", env!("CARGO_PKG_VERSION")),
                (
                    "influxdb_version",
                    leak(node.config.influxdb_version.clone()),
                ),
            ]),
        );
        registry.register_collector(Box::new(NodeFigures { node }));
        Metrics {
            registry,
            requests,
            request_seconds,
            points_written,
            points_rejected,
            queries,
            query_seconds,
        }
    }

    /// One answered request; `endpoint` is its route's pattern, or `unmatched`.
    pub(crate) fn request(&self, endpoint: &str, method: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.to_owned(),
                method: method.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn points_written(&self, n: usize) {
        self.points_written.inc_by(n as u64);
    }

    pub(crate) fn points_rejected(&self, why: Rejected, n: usize) {
        if n > 0 {
            self.points_rejected
                .get_or_create(&ReasonLabels {
                    reason: why.label(),
                })
                .inc_by(n as u64);
        }
    }

    pub(crate) fn query(&self, kind: &'static str, took: Duration) {
        let labels = KindLabels { kind };
        self.queries.get_or_create(&labels).inc();
        self.query_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// The configured InfluxDB version as the `'static` label value `Info` wants: made once
/// per server.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// The figures the node keeps itself, read at each scrape.
struct NodeFigures {
    node: Arc<Node>,
}

impl std::fmt::Debug for NodeFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeFigures")
    }
}

type Labels<'a> = [(&'static str, &'a str)];

impl NodeFigures {
    fn gauge<V: prometheus_client::encoding::EncodeGaugeValue + Copy>(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        values: &[(&Labels, V)],
    ) -> std::fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, v) in values {
            ConstGauge::new(*v).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }

    /// A gauge without labels.
    fn single(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
        ConstGauge::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
    }

    /// `name` without `_total`, which the encoder adds.
    fn counter(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        values: &[(&Labels, u64)],
    ) -> std::fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, v) in values {
            ConstCounter::new(*v).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn histogram(
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        values: &[(&Labels, LatencyFigures)],
    ) -> std::fmt::Result {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, figures) in values {
            // The encoder writes the last bucket as +Inf when its bound is f64::MAX.
            let buckets: Vec<(f64, u64)> = figures
                .buckets
                .iter()
                .map(|&(le, n)| (if le.is_finite() { le } else { f64::MAX }, n))
                .collect();
            metric
                .encode_family(labels)?
                .encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                    figures.sum_seconds,
                    figures.count(),
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

impl Collector for NodeFigures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let node = &self.node;
        let (control, data) = (node.control.log(), node.storage.data_log());
        let logs = [
            (&[("log", "control")][..], control.figures(), control),
            (&[("log", "data")][..], data.figures(), data),
        ];
        let e = &mut encoder;
        let each = |value: fn(&crate::log::LogFigures) -> i64| {
            logs.iter()
                .map(|(labels, figures, _)| (*labels, value(figures)))
                .collect::<Vec<_>>()
        };
        Self::gauge(
            e,
            "shardkeeper_log_segments",
            "Segment files of the log.",
            &each(|f| f.segments as i64),
        )?;
        Self::gauge(
            e,
            "shardkeeper_log_bytes",
            "Bytes of records and headers in the log's segments.",
            &each(|f| f.bytes as i64),
        )?;
        Self::gauge(
            e,
            "shardkeeper_log_durable_lsn",
            "The last durable log sequence number.",
            &each(|f| f.durable_lsn as i64),
        )?;
        let counted = |value: fn(&crate::log::LogFigures) -> u64| {
            logs.iter()
                .map(|(labels, figures, _)| (*labels, value(figures)))
                .collect::<Vec<_>>()
        };
        Self::counter(
            e,
            "shardkeeper_log_commits",
            "fdatasync-backed commits since start.",
            &counted(|f| f.commits),
        )?;
        Self::counter(
            e,
            "shardkeeper_log_records",
            "Records committed since start.",
            &counted(|f| f.records_committed),
        )?;
        Self::counter(
            e,
            "shardkeeper_log_committed_bytes",
            "Bytes made durable by commits since start.",
            &counted(|f| f.committed_bytes),
        )?;
        let per_commit: Vec<_> = logs
            .iter()
            .map(|(labels, figures, _)| (*labels, figures.records_per_commit))
            .collect();
        Self::gauge(
            e,
            "shardkeeper_log_records_per_commit",
            "Average records per commit since start.",
            &per_commit,
        )?;
        let failed: Vec<_> = logs
            .iter()
            .map(|(labels, _, log)| (*labels, i64::from(log.failure().is_some())))
            .collect();
        Self::gauge(
            e,
            "shardkeeper_log_failed",
            "1 when the log refuses writes after an I/O failure.",
            &failed,
        )?;
        let latencies: Vec<_> = logs
            .iter()
            .map(|(labels, _, log)| (*labels, log.commit_seconds()))
            .collect();
        Self::histogram(
            e,
            "shardkeeper_log_commit_duration_seconds",
            "Each commit's fdatasync, from its start to its end.",
            &latencies,
        )?;

        let open = node.storage.shards();
        let heads: usize = open.iter().map(|s| s.head_bytes()).sum();
        Self::single(
            e,
            "shardkeeper_shards_open",
            "Shards open (their indexes loaded, taking writes and queries).",
            open.len() as i64,
        )?;
        drop(open);
        Self::single(
            e,
            "shardkeeper_shards_cold",
            "Shards the catalog knows that are not open yet (opened on first use).",
            node.storage.cold_shards() as i64,
        )?;
        Self::single(
            e,
            "shardkeeper_shards_quarantined",
            "Shards that did not open at start-up (damaged); see /health.",
            node.storage.quarantined().len() as i64,
        )?;
        Self::single(
            e,
            "shardkeeper_heads_bytes",
            "Memory held by the open shards' heads (points not yet in column files).",
            heads as i64,
        )?;

        let ended = crate::backup::service::outcome_counts();
        Self::counter(
            e,
            "shardkeeper_backups",
            "Backups and restores ended since start, by operation and outcome.",
            &[
                (
                    &[("operation", "backup"), ("outcome", "ok")],
                    ended.backups_ok,
                ),
                (
                    &[("operation", "backup"), ("outcome", "failed")],
                    ended.backups_failed,
                ),
                (
                    &[("operation", "restore"), ("outcome", "ok")],
                    ended.restores_ok,
                ),
                (
                    &[("operation", "restore"), ("outcome", "failed")],
                    ended.restores_failed,
                ),
            ],
        )?;
        Self::entropy(e, &node.entropy.figures)
    }
}

impl NodeFigures {
    /// Anti-entropy's counters (`crate::entropy::EntropyFigures`).
    fn entropy(e: &mut DescriptorEncoder, f: &crate::entropy::EntropyFigures) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let one = |v: &std::sync::atomic::AtomicU64| [(&[][..], v.load(Relaxed))];
        Self::counter(
            e,
            "shardkeeper_entropy_checks",
            "Anti-entropy checks run since start.",
            &one(&f.checks),
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_digests_compared",
            "Shard root digests compared with a peer's since start.",
            &one(&f.digests_compared),
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_nodes_compared",
            "Digest tree nodes below the roots compared with a peer's since start.",
            &one(&f.nodes_compared),
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_leaves_differing",
            "Settled digest leaves found differing from a peer's by checks since start.",
            &one(&f.leaves_differing),
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_repairs",
            "Shard repairs ended since start, by outcome.",
            &[
                (&[("outcome", "finished")], f.repairs_finished.load(Relaxed)),
                (&[("outcome", "failed")], f.repairs_failed.load(Relaxed)),
                (
                    &[("outcome", "cancelled")],
                    f.repairs_cancelled.load(Relaxed),
                ),
            ],
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_points_repaired",
            "Points moved by repairs since start: received (applied here) and sent (to peers).",
            &[
                (
                    &[("direction", "received")],
                    f.points_received.load(Relaxed),
                ),
                (&[("direction", "sent")], f.points_sent.load(Relaxed)),
            ],
        )?;
        Self::counter(
            e,
            "shardkeeper_entropy_bytes",
            "Bytes exchanged with peers since start (both ways): by checks and repairs, and by repairs alone.",
            &[
                (&[("activity", "all")], f.bytes_exchanged.load(Relaxed)),
                (&[("activity", "repair")], f.bytes_repaired.load(Relaxed)),
            ],
        )?;
        Self::single(
            e,
            "shardkeeper_entropy_last_check_microseconds",
            "How long the latest anti-entropy check took, in microseconds.",
            (f.last_check_nanos.load(Relaxed) / 1_000) as i64,
        )
    }
}

/// Each replication's figures, labelled with its id and name; and the batches other
/// nodes' replications sent here, by outcome.
#[derive(Debug)]
struct ReplicationMetrics(
    Vec<crate::replication::ReplicationFigures>,
    [(&'static str, u64); 3],
);

impl Collector for ReplicationMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        type Figures = crate::replication::ReplicationFigures;
        let e = &mut encoder;
        let labels: Vec<[(&str, &str); 2]> = self
            .0
            .iter()
            .map(|f| [("replication", f.id.as_str()), ("name", f.name.as_str())])
            .collect();
        let each = |value: fn(&Figures) -> f64| per_replication(&labels, &self.0, value);
        let counted = |value: fn(&Figures) -> u64| per_replication(&labels, &self.0, value);
        NodeFigures::gauge(
            e,
            "shardkeeper_replication_queue_bytes",
            "Bytes of the bucket's records the replication holds, not yet confirmed by the remote.",
            &each(|f| f.queued_bytes as f64),
        )?;
        NodeFigures::gauge(
            e,
            "shardkeeper_replication_lag_seconds",
            "Age of the oldest point not yet delivered (0: none queued).",
            &each(|f| f.lag_seconds),
        )?;
        NodeFigures::gauge(
            e,
            "shardkeeper_replication_backoff_seconds",
            "Wait before the next attempt (0: none).",
            &each(|f| f.backoff_seconds),
        )?;
        NodeFigures::gauge(
            e,
            "shardkeeper_replication_stopped",
            "1 while the replication waits for an operator after a batch refused for good.",
            &each(|f| f64::from(u8::from(f.stopped))),
        )?;
        NodeFigures::counter(
            e,
            "shardkeeper_replication_sent_points",
            "Points the remote confirmed (204).",
            &counted(|f| f.sent_points),
        )?;
        NodeFigures::counter(
            e,
            "shardkeeper_replication_sent_bytes",
            "Bytes of data-log records the remote confirmed.",
            &counted(|f| f.sent_bytes),
        )?;
        let statuses: Vec<Vec<String>> = self
            .0
            .iter()
            .map(|f| f.failures.iter().map(|(s, _)| s.to_string()).collect())
            .collect();
        let (mut dropped, mut failures) = (Vec::new(), Vec::new());
        for (([id, name], f), statuses) in labels.iter().zip(&self.0).zip(&statuses) {
            for (reason, n) in f.dropped_points {
                dropped.push(([*id, *name, ("reason", reason)], n));
            }
            for ((_, n), status) in f.failures.iter().zip(statuses) {
                failures.push(([*id, *name, ("status", status.as_str())], *n));
            }
        }
        let dropped: Vec<_> = dropped.iter().map(|(l, n)| (&l[..], *n)).collect();
        NodeFigures::counter(
            e,
            "shardkeeper_replication_dropped_points",
            "Points dropped undelivered, by reason.",
            &dropped,
        )?;
        let failures: Vec<_> = failures.iter().map(|(l, n)| (&l[..], *n)).collect();
        NodeFigures::counter(
            e,
            "shardkeeper_replication_failures",
            "Failed attempts since start, by the remote's HTTP status (0: network error).",
            &failures,
        )?;
        let outcomes: Vec<[(&str, &str); 1]> =
            self.1.iter().map(|(o, _)| [("outcome", *o)]).collect();
        let inbound: Vec<_> = outcomes
            .iter()
            .zip(&self.1)
            .map(|(l, (_, n))| (&l[..], *n))
            .collect();
        NodeFigures::counter(
            e,
            "shardkeeper_replication_inbound_batches",
            "Batches other nodes' replications sent here, since start: applied, duplicate (applied before: answered 204, not applied again), overlap (in part applied before: refused with 409 for the sender to cut).",
            &inbound,
        )?;
        Ok(())
    }
}

/// Each active subscription's destinations' figures, labelled with the subscription's
/// database, policy and name and the destination's URL.
#[derive(Debug)]
struct SubscriberMetrics(crate::subscriber::Figures);

impl Collector for SubscriberMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        let labels: Vec<[(&str, &str); 4]> = self
            .0
            .destinations
            .iter()
            .map(|d| {
                [
                    ("database", d.database.as_str()),
                    ("retention_policy", d.retention_policy.as_str()),
                    ("subscription", d.name.as_str()),
                    ("destination", d.destination.as_str()),
                ]
            })
            .collect();
        let each =
            |value: fn(&crate::subscriber::DestinationFigures) -> u64| -> Vec<(&Labels, u64)> {
                labels
                    .iter()
                    .zip(&self.0.destinations)
                    .map(|(l, d)| (&l[..], value(d)))
                    .collect()
            };
        NodeFigures::counter(
            e,
            "shardkeeper_subscriber_points_written",
            "Points the destination took (HTTP 200/204, or UDP datagrams sent), since the subscription became active.",
            &each(|d| d.points_written),
        )?;
        NodeFigures::counter(
            e,
            "shardkeeper_subscriber_write_failures",
            "Batches the destination failed (error answer, timeout, network error).",
            &each(|d| d.write_failures),
        )?;
        NodeFigures::counter(
            e,
            "shardkeeper_subscriber_dropped_batches",
            "Batches (writes) not forwarded to the destination because its queue (write_buffer_size) was full.",
            &each(|d| d.dropped_batches),
        )?;
        NodeFigures::gauge(
            e,
            "shardkeeper_subscriber_queued_batches",
            "Batches waiting in the destination's queue.",
            &each(|d| d.queued_batches),
        )?;
        NodeFigures::counter(
            e,
            "shardkeeper_subscriber_create_failures",
            "Subscription destinations that could not be set up.",
            &[(&[][..], self.0.create_failures)],
        )
    }
}

/// One value per replication, beside its labels.
fn per_replication<'a, V>(
    labels: &'a [[(&'static str, &'a str); 2]],
    all: &[crate::replication::ReplicationFigures],
    value: impl Fn(&crate::replication::ReplicationFigures) -> V,
) -> Vec<(&'a Labels<'a>, V)> {
    labels
        .iter()
        .zip(all)
        .map(|(l, f)| (&l[..], value(f)))
        .collect()
}
