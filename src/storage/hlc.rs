//! Write versions: a hybrid logical clock (HLC), so that the same write gets the same
//! version on every replica and conflicting writes are settled the same way everywhere.
//!
//! ```text
//!   63                     22 21        10 9         0
//!   +------------------------+------------+-----------+
//!   | wall clock, ms (42 b)  | logical(12)| node (10) |
//!   +------------------------+------------+-----------+
//! ```
//! Comparing two versions as integers orders them by wall time, then by logical counter,
//! then by node id: the tie-break between nodes that wrote in the same millisecond.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const NODE_BITS: u32 = 10;
const LOGICAL_BITS: u32 = 12;
const LOGICAL_SHIFT: u32 = NODE_BITS;
/// Where the wall clock's milliseconds start.
pub(crate) const WALL_SHIFT: u32 = NODE_BITS + LOGICAL_BITS;
pub(crate) const MAX_NODE_ID: u16 = (1 << NODE_BITS) - 1;

/// A point's write version; larger wins.
pub(crate) type WriteVersion = u64;

pub(crate) struct HybridClock {
    node: u64,
    /// The last version issued (without the node bits).
    last: AtomicU64,
}

impl HybridClock {
    pub(crate) fn new(node: u16) -> Self {
        HybridClock {
            node: u64::from(node.min(MAX_NODE_ID)),
            last: AtomicU64::new(0),
        }
    }

    /// A version greater than every version this clock issued or observed.
    pub(crate) fn now(&self) -> WriteVersion {
        let wall = wall_ms() << WALL_SHIFT;
        let mut prev = self.last.load(Ordering::Relaxed);
        loop {
            let next = if wall > prev {
                wall
            } else {
                prev + (1 << LOGICAL_SHIFT)
            };
            match self
                .last
                .compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return next | self.node,
                Err(p) => prev = p,
            }
        }
    }

    /// Moves the clock past a version seen from elsewhere (replay, a peer).
    pub(crate) fn observe(&self, version: WriteVersion) {
        let seen = version & !u64::from(MAX_NODE_ID);
        self.last.fetch_max(seen, Ordering::AcqRel);
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase_and_carry_the_node() {
        let clock = HybridClock::new(5);
        let mut last = 0;
        for _ in 0..10_000 {
            let v = clock.now();
            assert!(v > last);
            assert_eq!(v & u64::from(MAX_NODE_ID), 5);
            last = v;
        }
    }

    #[test]
    fn observing_a_later_version_moves_the_clock_past_it() {
        let clock = HybridClock::new(1);
        let future = (wall_ms() + 60_000) << WALL_SHIFT | 7;
        clock.observe(future);
        assert!(clock.now() > future);
    }
}
