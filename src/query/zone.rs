//! Time zones of `tz('...')`: the UTC offset a zone has at an instant, from the system's
//! tz database or, where it has none, the one built into the binary.

use super::error::QueryError;
use jiff::tz::TimeZone;
use jiff::Timestamp;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

pub(super) struct Zone(TimeZone);

impl Zone {
    /// The zone of an IANA name, with InfluxDB's error text for an unknown one.
    pub(super) fn named(name: &str) -> Result<Zone, QueryError> {
        TimeZone::get(name)
            .map(Zone)
            .map_err(|_| QueryError::UnknownTimeZone(name.to_owned()))
    }

    /// The zone's offset from UTC at an instant, in nanoseconds (east positive).
    pub(super) fn offset_nanos(&self, ns: i64) -> i64 {
        let at = Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(Timestamp::UNIX_EPOCH);
        i64::from(self.0.to_offset(at).seconds()) * NANOS_PER_SECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_daylight_saving() {
        let chicago = Zone::named("America/Chicago").unwrap();
        let hour = 3_600 * NANOS_PER_SECOND;
        // 2024-01-01T00:00:00Z and 2024-07-01T00:00:00Z
        assert_eq!(
            chicago.offset_nanos(1_704_067_200 * NANOS_PER_SECOND),
            -6 * hour
        );
        assert_eq!(
            chicago.offset_nanos(1_719_792_000 * NANOS_PER_SECOND),
            -5 * hour
        );
        assert!(Zone::named("Nope/Zone").is_err());
    }
}
