//! The proxy's `/metrics` (Prometheus' text format, through `prometheus-client`): per
//! backend whether it answers, what waits for it, what it took, what failed and what it
//! refused (kept aside); per circle whether every backend answers. Names are listed in the
//! README (Proxy) and kept stable.

use super::ProxyService;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering::Relaxed;

pub(super) fn render(service: &ProxyService) -> Result<String, std::fmt::Error> {
    let figures = Figures::read(service);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(figures));
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry)?;
    Ok(body)
}

#[derive(Debug)]
struct BackendFigures {
    circle: String,
    backend: String,
    active: bool,
    backlog_bytes: u64,
    backlog_lines: u64,
    backlog_records: u64,
    delivered_lines: u64,
    delivered_batches: u64,
    failed_attempts: u64,
    kept_aside_batches: u64,
    kept_aside_lines: u64,
}

#[derive(Debug)]
struct Figures {
    backends: Vec<BackendFigures>,
    circles: Vec<(String, bool)>,
}

impl Figures {
    fn read(service: &ProxyService) -> Figures {
        let backends = service
            .backends
            .iter()
            .map(|b| {
                let f = &b.figures;
                BackendFigures {
                    circle: service.circles[b.circle].name.clone(),
                    backend: b.name.clone(),
                    active: b.is_active(),
                    backlog_bytes: f.backlog_bytes.load(Relaxed),
                    backlog_lines: f.backlog_lines.load(Relaxed),
                    backlog_records: f.backlog_records.load(Relaxed),
                    delivered_lines: f.delivered_lines.load(Relaxed),
                    delivered_batches: f.delivered_batches.load(Relaxed),
                    failed_attempts: f.failed_attempts.load(Relaxed),
                    kept_aside_batches: f.kept_aside_batches.load(Relaxed),
                    kept_aside_lines: f.kept_aside_lines.load(Relaxed),
                }
            })
            .collect();
        let circles = (0..service.circles.len())
            .map(|c| {
                let healthy = service.circle_backends(c).iter().all(|b| b.is_active());
                (service.circles[c].name.clone(), healthy)
            })
            .collect();
        Figures { backends, circles }
    }
}

type Labels<'a> = [(&'static str, &'a str)];

fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: &[(&Labels, u64)],
) -> std::fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in values {
        let family = metric.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*v).encode(family)?,
            _ => ConstGauge::new(*v as i64).encode(family)?,
        }
    }
    Ok(())
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let e = &mut encoder;
        let labels: Vec<[(&str, &str); 2]> = self
            .backends
            .iter()
            .map(|b| {
                [
                    ("circle", b.circle.as_str()),
                    ("backend", b.backend.as_str()),
                ]
            })
            .collect();
        let each = |value: fn(&BackendFigures) -> u64| -> Vec<(&Labels, u64)> {
            labels
                .iter()
                .zip(&self.backends)
                .map(|(l, b)| (&l[..], value(b)))
                .collect()
        };
        use MetricType::{Counter, Gauge};
        family(
            e,
            "shardkeeper_proxy_backend_active",
            "1 while the backend answers /ping.",
            Gauge,
            &each(|b| u64::from(b.active)),
        )?;
        family(
            e,
            "shardkeeper_proxy_backlog_bytes",
            "Bytes of line protocol accepted for the backend and not yet delivered.",
            Gauge,
            &each(|b| b.backlog_bytes),
        )?;
        family(
            e,
            "shardkeeper_proxy_backlog_lines",
            "Lines accepted for the backend and not yet delivered.",
            Gauge,
            &each(|b| b.backlog_lines),
        )?;
        family(
            e,
            "shardkeeper_proxy_backlog_batches",
            "Accepted writes holding lines not yet delivered to the backend.",
            Gauge,
            &each(|b| b.backlog_records),
        )?;
        family(
            e,
            "shardkeeper_proxy_delivered_lines",
            "Lines the backend acknowledged.",
            Counter,
            &each(|b| b.delivered_lines),
        )?;
        family(
            e,
            "shardkeeper_proxy_delivered_batches",
            "Batches the backend acknowledged.",
            Counter,
            &each(|b| b.delivered_batches),
        )?;
        family(
            e,
            "shardkeeper_proxy_failed_attempts",
            "Batches that failed and were sent again.",
            Counter,
            &each(|b| b.failed_attempts),
        )?;
        family(
            e,
            "shardkeeper_proxy_kept_aside_batches",
            "Batches the backend refused (400, 404), kept aside for ctl proxy aside.",
            Gauge,
            &each(|b| b.kept_aside_batches),
        )?;
        family(
            e,
            "shardkeeper_proxy_kept_aside_lines",
            "Lines of the batches kept aside.",
            Gauge,
            &each(|b| b.kept_aside_lines),
        )?;
        let circle_labels: Vec<[(&str, &str); 1]> = self
            .circles
            .iter()
            .map(|(name, _)| [("circle", name.as_str())])
            .collect();
        let healthy: Vec<(&Labels, u64)> = circle_labels
            .iter()
            .zip(&self.circles)
            .map(|(l, (_, h))| (&l[..], u64::from(*h)))
            .collect();
        family(
            e,
            "shardkeeper_proxy_circle_healthy",
            "1 while every backend of the circle answers.",
            Gauge,
            &healthy,
        )?;
        Ok(())
    }
}
