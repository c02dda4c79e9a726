//! Wall-clock time as the events and shards record it. A leaf, so that the catalog, the
//! other parts of the control state and shard placement can all stamp time without
//! reaching into each other.

use crate::proto::{event, Event};

/// Nanoseconds since the Unix epoch; 0 if the clock is set before it.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// A control-log event stamped with the time it is decided.
pub(crate) fn stamped(kind: event::Kind) -> Event {
    Event {
        at_unix_nanos: now_nanos(),
        kind: Some(kind),
    }
}
