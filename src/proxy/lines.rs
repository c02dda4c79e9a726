//! A write's body split by measurement into the lines each backend is to receive.
//!
//! Every line is checked by the line-protocol parser before it is accepted (influx-proxy
//! drops a line it cannot split silently, and a backend would refuse a batch holding one);
//! a line without a timestamp is given the proxy's time now, in the request's precision,
//! so that every circle stores the same point however late its backend receives it. The
//! measurement a line is placed by is read as influx-proxy reads it (`ScanKey`: every
//! backslash escapes the next byte), so that placement is influx-proxy's for any name.

use crate::line_protocol::{parse_body_with, LineError, ParseOptions, Precision};
use std::collections::HashMap;

/// The measurement a line is placed by: its bytes up to the first unescaped space or comma,
/// each backslash dropped and the byte after it kept. None when the line has no such end.
pub(crate) fn placement_measurement(line: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32);
    let mut at = 0;
    while at < line.len() {
        match line[at] {
            b'\\' => {
                at += 1;
                out.push(*line.get(at)?);
            }
            b' ' | b',' => return Some(out),
            b => out.push(b),
        }
        at += 1;
    }
    None
}

/// The lines of one placement: the backends (one per circle, by their index among all
/// backends) that receive them, and the lines, each ending in `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Group {
    pub owners: Vec<usize>,
    pub lines: u32,
    pub body: Vec<u8>,
}

/// A write body split for delivery.
#[derive(Debug, Default)]
pub(crate) struct Split {
    pub groups: Vec<Group>,
    /// Lines that did not parse, in InfluxDB's words.
    pub errors: Vec<LineError>,
    pub lines: usize,
}

/// Splits `body` into groups by the backends `owners` names for each measurement's
/// placement key (`db,measurement`). `now` is in the request's precision.
pub(crate) fn split(
    body: &[u8],
    db: &str,
    precision: Precision,
    now: i64,
    mut owners: impl FnMut(&[u8]) -> Vec<usize>,
) -> Split {
    let options = ParseOptions {
        precision,
        ..ParseOptions::default()
    };
    let (points, errors) = parse_body_with(body, &options);
    let mut groups: Vec<Group> = Vec::new();
    // Placement key -> group; most requests hold a handful of measurements.
    let mut by_key: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut key = Vec::with_capacity(db.len() + 64);
    let mut split = Split {
        lines: points.len(),
        ..Split::default()
    };
    let mut errors = errors;
    for point in &points {
        let Some(measurement) = placement_measurement(point.line) else {
            errors.push(LineError {
                line: 0,
                text: String::from_utf8_lossy(point.line).into_owned(),
                reason: "missing fields".into(),
            });
            split.lines -= 1;
            continue;
        };
        key.clear();
        key.extend_from_slice(db.as_bytes());
        key.push(b',');
        key.extend_from_slice(&measurement);
        let at = match by_key.get(&key) {
            Some(&at) => at,
            None => {
                let wanted = owners(&key);
                let at = match groups.iter().position(|g| g.owners == wanted) {
                    Some(at) => at,
                    None => {
                        groups.push(Group {
                            owners: wanted,
                            lines: 0,
                            body: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                by_key.insert(key.clone(), at);
                at
            }
        };
        let group = &mut groups[at];
        group.lines += 1;
        match point.timestamp {
            Some(_) => group.body.extend_from_slice(point.line),
            None => {
                let line = trim_end_blanks(point.line);
                group.body.extend_from_slice(line);
                group.body.push(b' ');
                group.body.extend_from_slice(now.to_string().as_bytes());
            }
        }
        group.body.push(b'\n');
    }
    split.groups = groups;
    split.errors = errors;
    split
}

fn trim_end_blanks(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    &line[..end]
}

#[cfg(any(test, feature = "testing"))]
/// Fuzz entry point: any body split over two circles of three backends, never a panic;
/// every accepted line lands in exactly one group per circle's owner and ends in `\n`.
pub fn fuzz_split(data: &[u8]) {
    let split = split(data, "db", Precision::Nanoseconds, 1, |key| {
        let h = crc32fast::hash(key) as usize;
        vec![h % 3, 3 + (h / 3) % 3]
    });
    let lines: u32 = split.groups.iter().map(|g| g.lines).sum();
    assert_eq!(lines as usize, split.lines);
    for g in &split.groups {
        assert_eq!(g.owners.len(), 2);
        assert!(memchr::memchr_iter(b'\n', &g.body).count() as u32 >= g.lines);
        assert!(g.body.ends_with(b"\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placement_measurement_is_influx_proxys_scan_key() {
        assert_eq!(placement_measurement(b"cpu,host=a v=1").unwrap(), b"cpu");
        assert_eq!(placement_measurement(b"cpu v=1").unwrap(), b"cpu");
        assert_eq!(placement_measurement(b"c\\ pu v=1").unwrap(), b"c pu");
        assert_eq!(placement_measurement(b"c\\,pu,a=b v=1").unwrap(), b"c,pu");
        // Any escaped byte is kept without its backslash.
        assert_eq!(placement_measurement(b"c\\pu v=1").unwrap(), b"cpu");
        assert_eq!(placement_measurement(b"cpu"), None);
        assert_eq!(placement_measurement(b"cpu\\"), None);
    }

    #[test]
    fn lines_are_grouped_by_their_owners_and_stamped_when_they_lack_a_time() {
        let body = b"cpu,host=a v=1 10\nmem v=2\n\n# comment\ncpu v=3 30\ndisk v=4 40";
        let split = split(body, "db", Precision::Seconds, 99, |key| match key {
            b"db,cpu" => vec![0, 2],
            b"db,mem" => vec![1, 3],
            _ => vec![0, 2],
        });
        assert!(split.errors.is_empty());
        assert_eq!(split.lines, 4);
        assert_eq!(split.groups.len(), 2);
        assert_eq!(split.groups[0].owners, [0, 2]);
        assert_eq!(
            split.groups[0].body,
            b"cpu,host=a v=1 10\ncpu v=3 30\ndisk v=4 40\n"
        );
        assert_eq!(split.groups[0].lines, 3);
        assert_eq!(split.groups[1].body, b"mem v=2 99\n");
    }

    #[test]
    fn lines_that_do_not_parse_are_reported_and_left_out() {
        let split = split(
            b"cpu v=1 1\nbad line\ncpu\n",
            "db",
            Precision::Nanoseconds,
            0,
            |_| vec![0],
        );
        assert_eq!(split.lines, 1);
        assert_eq!(split.errors.len(), 2);
        assert_eq!(split.groups[0].body, b"cpu v=1 1\n");
    }
}
