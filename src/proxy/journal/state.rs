//! The proxy's state as a fold of its events: each backend's delivered position and
//! figures, the batches kept aside, and the migrations (their own fold, in
//! `migration::ledger`). No I/O: replay, snapshots and tests use the same code.

use crate::proto::{
    proxy_event, AsideResolved, BatchDelivered, BatchKeptAside, ProxyBackendProgress, ProxyEvent,
    ProxySnapshot,
};
use crate::proxy::migration::ledger::Ledger;
use std::collections::BTreeMap;

/// What the journal knows of one backend's stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every write record up to here is delivered (or kept aside) for this backend.
    pub delivered_lsn: u64,
    pub delivered_lines: u64,
    pub delivered_bytes: u64,
    pub delivered_batches: u64,
    pub kept_aside_batches: u64,
    pub kept_aside_lines: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyState {
    pub backends: BTreeMap<String, Progress>,
    /// Batches kept aside and not yet replayed or discarded, by id.
    pub aside: BTreeMap<u64, BatchKeptAside>,
    pub next_aside_id: u64,
    pub migrations: Ledger,
}

impl ProxyState {
    /// Folds one event in. Every event is a fact already true outside the proxy, so
    /// applying it again (replay after a snapshot that already held it) changes nothing.
    pub fn apply(&mut self, event: &ProxyEvent) {
        match &event.kind {
            Some(proxy_event::Kind::Delivered(d)) => {
                let p = self.backends.entry(d.backend.clone()).or_default();
                if d.upto_lsn > p.delivered_lsn {
                    p.delivered_lsn = d.upto_lsn;
                    p.delivered_lines += d.lines;
                    p.delivered_bytes += d.bytes;
                    p.delivered_batches += u64::from(d.lines > 0);
                }
            }
            Some(proxy_event::Kind::KeptAside(k)) => {
                self.next_aside_id = self.next_aside_id.max(k.id + 1);
                let p = self.backends.entry(k.backend.clone()).or_default();
                if k.upto_lsn > p.delivered_lsn {
                    p.delivered_lsn = k.upto_lsn;
                    p.kept_aside_batches += 1;
                    p.kept_aside_lines += k.lines;
                }
                // A replayed or discarded batch never comes back: its id is below
                // `next_aside_id` and gone from the map only through AsideResolved,
                // which comes after it in the journal.
                self.aside.entry(k.id).or_insert_with(|| k.clone());
            }
            Some(proxy_event::Kind::AsideResolved(r)) => {
                self.aside.remove(&r.id);
            }
            Some(proxy_event::Kind::MigrationStarted(s)) => {
                self.migrations.started(event.at_unix_nanos, s)
            }
            Some(proxy_event::Kind::MigrationPlanned(p)) => self.migrations.planned(p),
            Some(proxy_event::Kind::MigrationProgress(p)) => self.migrations.progressed(p),
            Some(proxy_event::Kind::MigrationUnitDone(d)) => self.migrations.unit_done(d),
            Some(proxy_event::Kind::MigrationFinished(f)) => {
                self.migrations.finished(event.at_unix_nanos, f.job)
            }
            None => {}
        }
    }

    pub fn delivered_lsn(&self, backend: &str) -> Option<u64> {
        self.backends.get(backend).map(|p| p.delivered_lsn)
    }

    pub fn encode_snapshot(&self) -> Vec<u8> {
        use prost::Message;
        ProxySnapshot {
            backends: self
                .backends
                .iter()
                .map(|(name, p)| ProxyBackendProgress {
                    backend: name.clone(),
                    delivered_lsn: p.delivered_lsn,
                    delivered_lines: p.delivered_lines,
                    delivered_bytes: p.delivered_bytes,
                    delivered_batches: p.delivered_batches,
                    kept_aside_batches: p.kept_aside_batches,
                    kept_aside_lines: p.kept_aside_lines,
                })
                .collect(),
            aside: self.aside.values().cloned().collect(),
            next_aside_id: self.next_aside_id,
            migrations: self.migrations.to_snapshot(),
        }
        .encode_to_vec()
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<ProxyState, prost::DecodeError> {
        use prost::Message;
        let s = ProxySnapshot::decode(bytes)?;
        Ok(ProxyState {
            backends: s
                .backends
                .into_iter()
                .map(|p| {
                    let progress = Progress {
                        delivered_lsn: p.delivered_lsn,
                        delivered_lines: p.delivered_lines,
                        delivered_bytes: p.delivered_bytes,
                        delivered_batches: p.delivered_batches,
                        kept_aside_batches: p.kept_aside_batches,
                        kept_aside_lines: p.kept_aside_lines,
                    };
                    (p.backend, progress)
                })
                .collect(),
            aside: s.aside.into_iter().map(|a| (a.id, a)).collect(),
            next_aside_id: s.next_aside_id,
            migrations: Ledger::from_snapshot(s.migrations),
        })
    }
}

pub(crate) fn delivered(backend: &str, upto_lsn: u64, lines: u64, bytes: u64) -> ProxyEvent {
    event(proxy_event::Kind::Delivered(BatchDelivered {
        backend: backend.to_owned(),
        upto_lsn,
        lines,
        bytes,
    }))
}

pub(crate) fn resolved(id: u64, replayed: bool) -> ProxyEvent {
    event(proxy_event::Kind::AsideResolved(AsideResolved {
        id,
        replayed,
    }))
}

pub(crate) fn kept_aside(batch: BatchKeptAside) -> ProxyEvent {
    event(proxy_event::Kind::KeptAside(batch))
}

pub(crate) fn event(kind: proxy_event::Kind) -> ProxyEvent {
    ProxyEvent {
        at_unix_nanos: now_nanos(),
        kind: Some(kind),
    }
}

pub(crate) use crate::clock::now_nanos;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fold_idempotently_and_snapshots_round_trip() {
        let events = [
            delivered("a", 5, 10, 100),
            kept_aside(BatchKeptAside {
                id: 0,
                backend: "a".into(),
                lines: 3,
                upto_lsn: 9,
                status: 400,
                ..Default::default()
            }),
            delivered("b", 7, 1, 10),
            resolved(0, true),
            delivered("a", 12, 2, 20),
        ];
        let mut once = ProxyState::default();
        for e in &events {
            once.apply(e);
        }
        let mut twice = once.clone();
        for e in &events {
            twice.apply(e);
        }
        assert_eq!(once, twice);
        assert_eq!(once.delivered_lsn("a"), Some(12));
        assert_eq!(once.backends["a"].delivered_lines, 12);
        assert_eq!(once.backends["a"].kept_aside_lines, 3);
        assert!(once.aside.is_empty());
        assert_eq!(once.next_aside_id, 1);
        let back = ProxyState::decode_snapshot(&once.encode_snapshot()).unwrap();
        assert_eq!(back, once);
    }
}
