//! Wall-clock time as the events and shards record it. A leaf, so that the catalog and
//! shard placement can both stamp time without reaching into each other.

/// Nanoseconds since the Unix epoch; 0 if the clock is set before it.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
