//! Times and durations as InfluxDB prints them.

/// RFC 3339 with nanoseconds, trailing zeros trimmed (Go's `time.RFC3339Nano`). Written
/// by hand: an answer has one per row, and jiff's `Display` took about 420 instructions.
pub(crate) fn rfc3339_nanos(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000) as u32;
    let of_day = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    // Every i64 of nanoseconds lies in years 1677 to 2262: four digits.
    let year = year as u32;
    let two = |v: u32| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    let mut out = Vec::with_capacity(30);
    out.extend_from_slice(&two(year / 100));
    out.extend_from_slice(&two(year % 100));
    out.push(b'-');
    out.extend_from_slice(&two(month as u32));
    out.push(b'-');
    out.extend_from_slice(&two(day as u32));
    out.push(b'T');
    out.extend_from_slice(&two(of_day / 3600));
    out.push(b':');
    out.extend_from_slice(&two(of_day / 60 % 60));
    out.push(b':');
    out.extend_from_slice(&two(of_day % 60));
    if nanos > 0 {
        let mut digits = [0u8; 9];
        let mut v = nanos;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        let shown = digits
            .iter()
            .rposition(|&d| d != b'0')
            .map_or(0, |last| last + 1);
        out.push(b'.');
        out.extend_from_slice(&digits[..shown]);
    }
    out.push(b'Z');
    String::from_utf8(out).expect("digits and separators are ASCII")
}

/// RFC 3339 with nanoseconds in a zone `offset` nanoseconds east of UTC, as Go prints a
/// time in a location: `2023-12-31T18:02:00-06:00` (`Z` where the offset is zero). Not
/// jiff's `display_with_offset`: Go truncates an offset's seconds (local mean times before
/// 1900 have them) where jiff rounds them, and writes `Z` for a zero offset.
pub(crate) fn rfc3339_nanos_at(ns: i64, offset: i64) -> String {
    let mut s = rfc3339_nanos(ns.saturating_add(offset));
    if offset != 0 {
        s.pop();
        let minutes = offset.abs() / 60_000_000_000;
        let sign = if offset < 0 { '-' } else { '+' };
        s.push_str(&format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60));
    }
    s
}

/// Parses an RFC 3339 time (as InfluxQL accepts in string literals) to nanoseconds. Not
/// jiff's parser, which wants an offset and refuses a date alone.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        std::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    let mut i = 10;
    let mut nanos = 0i64;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        secs += h * 3600 + mi * 60 + se;
        i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            let digits = std::str::from_utf8(&b[start..end]).ok()?;
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            nanos = digits.parse::<i64>().ok()? * 10i64.pow(9 - digits.len() as u32);
            i = end;
        }
        match b.get(i) {
            Some(b'Z' | b'z') => i += 1,
            Some(&sign @ (b'+' | b'-')) => {
                let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
                let off = oh * 3600 + om * 60;
                secs -= if sign == b'+' { off } else { -off };
                i += 6;
            }
            _ => return None,
        }
    }
    (i == b.len())
        .then(|| secs.checked_mul(1_000_000_000)?.checked_add(nanos))
        .flatten()
}

/// The (year, month, day) of a day counted from 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`, the inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

// Howard Hinnant's civil-date algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration as Go prints it: `0s`, `1h0m0s`, `168h0m0s`, `30m0s`, `1.5s`.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    if ns < 1_000_000_000 {
        return match ns {
            n if n < 1_000 => format!("{sign}{n}ns"),
            n if n < 1_000_000 => format!("{sign}{}µs", trim(n as f64 / 1e3)),
            n => format!("{sign}{}ms", trim(n as f64 / 1e6)),
        };
    }
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let s = if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{}", format!("{frac:09}").trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x}");
    s.trim_end_matches(".0").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn times_are_written_as_jiff_writes_them(ns in proptest::num::i64::ANY) {
            let jiff = jiff::Timestamp::from_nanosecond(i128::from(ns)).unwrap().to_string();
            proptest::prop_assert_eq!(rfc3339_nanos(ns), jiff);
        }
    }

    #[test]
    fn the_ends_of_the_range_and_whole_seconds_are_written_as_jiff_writes_them() {
        for ns in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            1,
            999_999_999,
            i64::MAX - 1,
            i64::MAX,
        ]
        .into_iter()
        .chain((0..800).map(|d| (d * 86_400 - 400 * 86_400 + 59) * 1_000_000_000))
        {
            let jiff = jiff::Timestamp::from_nanosecond(i128::from(ns))
                .unwrap()
                .to_string();
            assert_eq!(rfc3339_nanos(ns), jiff, "{ns}");
        }
    }

    #[test]
    fn times_print_and_parse_like_influxdb() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nanos(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            rfc3339_nanos(1_704_067_200_000_000_001),
            "2024-01-01T00:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
        for ns in [
            0,
            1_500_000_000,
            1_704_067_200_000_000_001,
            -1,
            951_782_400_000_000_000,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339_nanos(ns)), Some(ns));
        }
        assert_eq!(parse_rfc3339("2024-01-01"), Some(1_704_067_200_000_000_000));
        assert_eq!(
            parse_rfc3339("2024-01-01T01:00:00+01:00"),
            Some(1_704_067_200_000_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn times_in_a_zone_carry_its_offset() {
        let hour = 3_600_000_000_000;
        assert_eq!(
            rfc3339_nanos_at(1_704_067_320_000_000_000, -6 * hour),
            "2023-12-31T18:02:00-06:00"
        );
        assert_eq!(
            rfc3339_nanos_at(1_704_067_200_500_000_000, 19_800_000_000_000),
            "2024-01-01T05:30:00.5+05:30"
        );
        assert_eq!(rfc3339_nanos_at(0, 0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(7 * 24 * 3_600_000_000_000), "168h0m0s");
        assert_eq!(go_duration(30 * 60_000_000_000), "30m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
    }
}
