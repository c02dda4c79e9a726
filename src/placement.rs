//! Where points go: a shard's identity (database, retention policy, shard-group start), its
//! id derived from that identity, and the group a time falls in. The catalog records
//! shards and storage holds their points; both read this, so it knows neither.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: u64,
    /// Tells this shard from an earlier one of the same id, dropped: the data log may
    /// still hold that one's records.
    pub incarnation: u64,
    pub database: String,
    pub retention_policy: String,
    pub start: i64,
    pub end: i64,
}

impl ShardInfo {
    /// The shard of a policy's shard group starting at `start`, with its derived id.
    pub fn of_group(database: &str, policy: &str, start: i64, group_duration: i64) -> ShardInfo {
        ShardInfo {
            id: shard_id(database, policy, start),
            incarnation: 0,
            database: database.to_owned(),
            retention_policy: policy.to_owned(),
            start,
            end: start.saturating_add(group_duration),
        }
    }
}

/// Seconds from Go's zero time (0001-01-01) to the Unix epoch: InfluxDB truncates times to
/// shard-group boundaries relative to it (so 7-day groups start on Mondays).
const GO_ZERO_TO_UNIX_NANOS: i128 = 62_135_596_800 * 1_000_000_000;

/// Start of the shard group holding `time`, as InfluxDB computes it.
pub fn shard_group_start(time: i64, group_duration: i64) -> i64 {
    let d = i128::from(group_duration.max(1));
    let t = i128::from(time);
    (t - (t + GO_ZERO_TO_UNIX_NANOS).rem_euclid(d)) as i64
}

/// A new shard's incarnation: above every one issued before by this process, and (being
/// the time in nanoseconds) by earlier ones.
pub(crate) fn new_incarnation() -> u64 {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = crate::clock::now_nanos().max(1) as u64;
    let mut last = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange_weak(
            last,
            next,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A shard's id from its identity: FNV-1a over (database, policy, start), kept within 53
/// bits so that JSON clients read it exactly.
pub(crate) fn shard_id(database: &str, policy: &str, start: i64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in [
        database.as_bytes(),
        b"\0",
        policy.as_bytes(),
        b"\0",
        &start.to_be_bytes(),
    ] {
        for &b in chunk {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h & ((1 << 53) - 1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;
    const DAY: i64 = 24 * HOUR;

    #[test]
    fn shard_groups_align_as_influxdb_aligns_them() {
        // 2024-01-03T12:00:00Z is a Wednesday; 7-day groups start on Monday 2024-01-01.
        let wed_noon = 1_704_283_200_000_000_000;
        let monday = 1_704_067_200_000_000_000;
        assert_eq!(shard_group_start(wed_noon, 7 * DAY), monday);
        assert_eq!(shard_group_start(wed_noon, DAY), 1_704_240_000_000_000_000);
        assert_eq!(shard_group_start(wed_noon + 1, HOUR), wed_noon);
        assert_eq!(shard_group_start(-1, HOUR), -HOUR);
    }

    #[test]
    fn shard_ids_are_stable_and_distinct() {
        assert_eq!(shard_id("db", "autogen", 0), shard_id("db", "autogen", 0));
        assert_ne!(
            shard_id("db", "autogen", 0),
            shard_id("db", "autogen", HOUR)
        );
        assert_ne!(shard_id("db", "a", 0), shard_id("dba", "", 0));
        assert!(shard_id("x", "y", 1) < 1 << 53);
    }
}
