//! Batches other nodes' replications delivered to this node: a sub-state of the control
//! state, so that a sender that re-sends a batch after a crash (it cannot know whether its
//! last batches arrived) has it answered 204 without the points being applied twice.
//!
//! Each sender names its batches by an origin (its replication) and the range of its data
//! log they cover ([`InboundBatchApplied`]); this node keys the origin by who sent it (the
//! authenticated user and the target database and policy, see `replication::inbound`).
//! The table is a pure fold of those events, pruned below each origin's confirmed
//! position (what the sender has recorded as delivered, and so never sends again) and
//! bounded: [`MAX_RANGES_PER_ORIGIN`] ranges per origin (the lowest go first) and
//! [`MAX_ORIGINS`] origins (the one with the oldest event goes first), so that made-up
//! headers cannot grow it without end.

use crate::clock::stamped;
use crate::projection::Projection;
use crate::proto::{
    event, Event, InboundBatchApplied, InboundBatchesState, InboundOrigin, InboundRange,
};
use prost::Message;
use std::collections::BTreeMap;

/// Ranges kept per origin: a sender has at most its window (8 batches) unconfirmed.
pub(crate) const MAX_RANGES_PER_ORIGIN: usize = 64;
/// Origins kept: replications sending to this node, with room to spare.
pub(crate) const MAX_ORIGINS: usize = 4_096;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboundBatches {
    origins: BTreeMap<String, OriginRanges>,
    /// Events folded, to tell which origin was heard from last.
    sequence: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct OriginRanges {
    confirmed: u64,
    touched: u64,
    /// Applied ranges, by first position (disjoint: an overlapping batch is refused).
    ranges: BTreeMap<u64, u64>,
}

/// What this node already holds of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Held {
    /// Every position of it was applied (or confirmed by its sender).
    All,
    /// None of it.
    Nothing,
    /// Part of it: the applied ranges it overlaps.
    Part(Vec<(u64, u64)>),
}

impl InboundBatches {
    /// How much of `first..=last` from `origin` was applied.
    pub(crate) fn held(&self, origin: &str, first: u64, last: u64) -> Held {
        let Some(o) = self.origins.get(origin) else {
            return Held::Nothing;
        };
        if last <= o.confirmed {
            return Held::All;
        }
        // The ranges that may overlap: from the last one starting at or before `first`.
        let start = o
            .ranges
            .range(..=first)
            .next_back()
            .map_or(first, |(&f, _)| f);
        let overlapping: Vec<(u64, u64)> = o
            .ranges
            .range(start..=last)
            .map(|(&f, &l)| (f, l))
            .filter(|&(f, l)| f <= last && l >= first)
            .collect();
        if overlapping.is_empty() && first > o.confirmed {
            return Held::Nothing;
        }
        // Covered when the confirmed prefix and the ranges leave no gap in first..=last
        // (a sender's batches tile its log: one starts where the one before ended).
        let mut covered_to = o.confirmed.max(first.saturating_sub(1));
        for &(f, l) in &overlapping {
            if f > covered_to + 1 {
                break;
            }
            covered_to = covered_to.max(l);
        }
        if covered_to >= last {
            return Held::All;
        }
        let mut part = overlapping;
        if first <= o.confirmed {
            part.insert(0, (first, o.confirmed));
        }
        Held::Part(part)
    }

    pub(crate) fn from_state(state: InboundBatchesState) -> InboundBatches {
        InboundBatches {
            origins: state
                .origins
                .into_iter()
                .map(|o| {
                    let ranges = o.ranges.iter().map(|r| (r.first, r.last)).collect();
                    (
                        o.origin,
                        OriginRanges {
                            confirmed: o.confirmed,
                            touched: o.touched,
                            ranges,
                        },
                    )
                })
                .collect(),
            sequence: state.sequence,
        }
    }

    pub(crate) fn to_state(&self) -> InboundBatchesState {
        InboundBatchesState {
            origins: self
                .origins
                .iter()
                .map(|(origin, o)| InboundOrigin {
                    origin: origin.clone(),
                    confirmed: o.confirmed,
                    touched: o.touched,
                    ranges: o
                        .ranges
                        .iter()
                        .map(|(&first, &last)| InboundRange { first, last })
                        .collect(),
                })
                .collect(),
            sequence: self.sequence,
        }
    }
}

impl Projection for InboundBatches {
    fn apply(&mut self, event: &Event) {
        let Some(event::Kind::InboundBatchApplied(b)) = &event.kind else {
            return;
        };
        self.sequence += 1;
        let o = self.origins.entry(b.origin.clone()).or_default();
        o.touched = self.sequence;
        o.confirmed = o.confirmed.max(b.confirmed);
        if b.last > o.confirmed {
            o.ranges.insert(b.first, b.last);
        }
        let confirmed = o.confirmed;
        o.ranges.retain(|_, &mut last| last > confirmed);
        while o.ranges.len() > MAX_RANGES_PER_ORIGIN {
            o.ranges.pop_first();
        }
        if self.origins.len() > MAX_ORIGINS {
            let oldest = self
                .origins
                .iter()
                .min_by_key(|(_, o)| o.touched)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.origins.remove(&oldest);
            }
        }
    }

    fn encode_snapshot(&self) -> Vec<u8> {
        self.to_state().encode_to_vec()
    }

    fn decode_snapshot(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Ok(InboundBatches::from_state(InboundBatchesState::decode(
            bytes,
        )?))
    }
}

/// The event recording that `first..=last` from `origin` is applied.
pub(crate) fn applied(origin: &str, first: u64, last: u64, confirmed: u64) -> Event {
    stamped(event::Kind::InboundBatchApplied(InboundBatchApplied {
        origin: origin.to_owned(),
        first,
        last,
        confirmed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(events: &[(&str, u64, u64, u64)]) -> InboundBatches {
        let mut s = InboundBatches::default();
        for &(o, f, l, c) in events {
            s.apply(&applied(o, f, l, c));
        }
        s
    }

    #[test]
    fn a_batch_is_held_whole_in_part_or_not_at_all() {
        let s = with(&[("a", 11, 20, 10), ("a", 21, 30, 10), ("a", 41, 50, 10)]);
        assert_eq!(s.held("a", 11, 20), Held::All);
        assert_eq!(s.held("a", 11, 30), Held::All);
        assert_eq!(s.held("a", 5, 9), Held::All);
        assert_eq!(s.held("a", 31, 40), Held::Nothing);
        assert_eq!(s.held("b", 11, 20), Held::Nothing);
        assert_eq!(s.held("a", 21, 45), Held::Part(vec![(21, 30), (41, 50)]));
        // Confirmed up to 10, applied 11 to 20: whole.
        assert_eq!(s.held("a", 5, 15), Held::All);
        assert_eq!(
            s.held("a", 5, 45),
            Held::Part(vec![(5, 10), (11, 20), (21, 30), (41, 50)])
        );
    }

    #[test]
    fn ranges_below_the_confirmed_position_are_forgotten_and_counts_bounded() {
        let s = with(&[("a", 11, 20, 10), ("a", 21, 30, 20)]);
        assert_eq!(s.origins["a"].ranges.len(), 1);
        assert_eq!(s.held("a", 11, 20), Held::All);
        let mut s = InboundBatches::default();
        for i in 0..(MAX_RANGES_PER_ORIGIN as u64 + 5) {
            s.apply(&applied("a", i * 10 + 1, i * 10 + 10, 0));
        }
        assert_eq!(s.origins["a"].ranges.len(), MAX_RANGES_PER_ORIGIN);
        for i in 0..(MAX_ORIGINS + 3) {
            s.apply(&applied(&format!("o{i}"), 1, 2, 0));
        }
        assert_eq!(s.origins.len(), MAX_ORIGINS);
        // The oldest origins went first.
        assert!(!s.origins.contains_key("a"));
        assert!(s.origins.contains_key(&format!("o{}", MAX_ORIGINS + 2)));
        assert_eq!(InboundBatches::from_state(s.to_state()), s);
    }
}
