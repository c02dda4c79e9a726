//! Subscriptions (1.x's `CREATE SUBSCRIPTION`): a database and retention policy's writes
//! forwarded to destinations. Kept as 1.6's meta store keeps them, on their policy: created
//! and dropped by name, and gone with their policy or database. What forwards the writes
//! is `crate::subscriber`'s.
//!
//! A destination is checked as 1.6 checks it (`services/meta/data.go` `validateURL`): Go's
//! `net/url.Parse` must take it, its scheme be `udp`, `http` or `https`, and its host carry
//! a port (`net.SplitHostPort`). [`Destination::parse`] follows those Go functions (1.19,
//! which Debian's influxd 1.6.7 is built with) step by step, so that a URL 1.6 refuses is
//! refused here with the same words, and one it takes is taken.

use super::{Catalog, CatalogError};
use crate::clock::stamped;
use crate::proto::{event, Event, SubscriptionCreated, SubscriptionDropped, SubscriptionState};

impl Catalog {
    /// The event that creates subscription `name` on `database`.`policy`, checked in 1.6's
    /// order: each destination, the database, the policy, then the name.
    pub(crate) fn create_subscription(
        &self,
        database: &str,
        policy: &str,
        name: &str,
        mode: &str,
        destinations: &[String],
    ) -> Result<Vec<Event>, CatalogError> {
        if let Some(bad) = destinations
            .iter()
            .find(|d| Destination::parse(d).is_none())
        {
            return Err(CatalogError::InvalidSubscriptionUrl(bad.clone()));
        }
        self.existing_policy(database, policy)?;
        if self
            .subscriptions_of(database, policy)
            .any(|s| s.name == name)
        {
            return Err(CatalogError::SubscriptionExists);
        }
        Ok(vec![stamped(event::Kind::SubscriptionCreated(
            SubscriptionCreated {
                database: database.into(),
                subscription: Some(SubscriptionState {
                    retention_policy: policy.into(),
                    name: name.into(),
                    mode: mode.into(),
                    destinations: destinations.to_vec(),
                }),
            },
        ))])
    }

    /// The event that drops subscription `name` of `database`.`policy`.
    pub(crate) fn drop_subscription(
        &self,
        database: &str,
        policy: &str,
        name: &str,
    ) -> Result<Vec<Event>, CatalogError> {
        self.existing_policy(database, policy)?;
        if !self
            .subscriptions_of(database, policy)
            .any(|s| s.name == name)
        {
            return Err(CatalogError::SubscriptionNotFound);
        }
        Ok(vec![stamped(event::Kind::SubscriptionDropped(
            SubscriptionDropped {
                database: database.into(),
                retention_policy: policy.into(),
                name: name.into(),
            },
        ))])
    }

    /// The subscriptions of `database`.`policy`, in creation order.
    pub(crate) fn subscriptions_of<'a>(
        &'a self,
        database: &str,
        policy: &'a str,
    ) -> impl Iterator<Item = &'a SubscriptionState> + 'a {
        self.databases
            .get(database)
            .into_iter()
            .flat_map(|db| db.subscriptions.iter())
            .filter(move |s| s.retention_policy == policy)
    }

    fn existing_policy(&self, database: &str, policy: &str) -> Result<(), CatalogError> {
        let db = self
            .databases
            .get(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.into()))?;
        match db.policies.contains_key(policy) {
            true => Ok(()),
            false => Err(CatalogError::PolicyNotFound(policy.into())),
        }
    }
}

/// How a destination is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Udp,
}

/// A destination URL as Go's `net/url` reads it: what 1.6's subscriber sends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    pub scheme: Scheme,
    /// User and password of the URL's userinfo, unescaped (Go's client sends them as
    /// basic auth); the password is empty when the userinfo has none.
    pub user: Option<(String, String)>,
    /// `host:port` (`[v6]:port`), unescaped, as Go's `URL.Host`.
    pub host: String,
    /// The path, unescaped, as Go's `URL.Path`.
    pub path: String,
    /// The query as written, without its `?`.
    pub raw_query: String,
}

impl Destination {
    /// The destination `input` names, or None where 1.6 answers `invalid subscription
    /// URL`.
    pub(crate) fn parse(input: &str) -> Option<Destination> {
        let url = GoUrl::parse(input)?;
        let scheme = match url.scheme.as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "udp" => Scheme::Udp,
            _ => return None,
        };
        if split_host_port(&url.host).is_none_or(|(_, port)| port.is_empty()) {
            return None;
        }
        Some(Destination {
            scheme,
            user: url.user,
            host: url.host,
            path: url.path,
            raw_query: url.raw_query,
        })
    }
}

/// What Go's `url.Parse` keeps of a URL that this needs.
struct GoUrl {
    scheme: String,
    user: Option<(String, String)>,
    host: String,
    path: String,
    raw_query: String,
}

impl GoUrl {
    /// Go's `url.Parse`: None where it returns an error.
    fn parse(raw: &str) -> Option<GoUrl> {
        let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
        // The fragment is only unescaped, as Go does.
        if rest.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return None; // "net/url: invalid control character in URL"
        }
        let mut url = GoUrl {
            scheme: String::new(),
            user: None,
            host: String::new(),
            path: String::new(),
            raw_query: String::new(),
        };
        if rest == "*" {
            return Some(url);
        }
        let (scheme, mut rest) = scheme(rest)?;
        url.scheme = scheme.to_ascii_lowercase();
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            rest = &rest[..rest.len() - 1];
        } else if let Some((before, query)) = rest.split_once('?') {
            url.raw_query = query.into();
            rest = before;
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                // Opaque: no host, which no destination may lack.
                unescape(fragment, Mode::Fragment)?;
                return Some(url);
            }
            let segment = rest.split('/').next().unwrap_or_default();
            if segment.contains(':') {
                return None; // "first path segment in URL cannot contain colon"
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let authority = &rest[2..];
            let (authority, path) = match authority.find('/') {
                Some(i) => (&authority[..i], &authority[i..]),
                None => (authority, ""),
            };
            let (user, host) = parse_authority(authority)?;
            url.user = user;
            url.host = host;
            rest = path;
        }
        url.path = unescape(rest, Mode::Path)?;
        unescape(fragment, Mode::Fragment)?;
        Some(url)
    }
}

/// Go's `getScheme`: the scheme (maybe empty) and the rest; None for a leading `:`.
fn scheme(raw: &str) -> Option<(&str, &str)> {
    for (i, c) in raw.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None, // "missing protocol scheme"
            b':' => return Some((&raw[..i], &raw[i + 1..])),
            _ => return Some(("", raw)),
        }
    }
    Some(("", raw))
}

type Userinfo = Option<(String, String)>;

/// Go's `parseAuthority`: the userinfo (before the last `@`) and the host.
fn parse_authority(authority: &str) -> Option<(Userinfo, String)> {
    let Some(at) = authority.rfind('@') else {
        return Some((None, parse_host(authority)?));
    };
    let host = parse_host(&authority[at + 1..])?;
    let userinfo = &authority[..at];
    let valid = userinfo.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    });
    if !valid {
        return None; // "net/url: invalid userinfo"
    }
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    Some((
        Some((
            unescape(user, Mode::Userinfo)?,
            unescape(password, Mode::Userinfo)?,
        )),
        host,
    ))
}

/// Go's `parseHost`: a port after the host must be digits; the host unescaped.
fn parse_host(host: &str) -> Option<String> {
    if host.starts_with('[') {
        let close = host.rfind(']')?; // "missing ']' in host"
        if !valid_optional_port(&host[close + 1..]) {
            return None;
        }
        if let Some(zone) = host[..close].find("%25") {
            return Some(
                unescape(&host[..zone], Mode::Host)?
                    + &unescape(&host[zone..close], Mode::Zone)?
                    + &unescape(&host[close..], Mode::Host)?,
            );
        }
    } else if let Some(colon) = host.rfind(':') {
        if !valid_optional_port(&host[colon..]) {
            return None; // "invalid port ... after host"
        }
    }
    unescape(host, Mode::Host)
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        _ if port.is_empty() => true,
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// The part of a URL being unescaped, as Go's `encoding` modes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    Userinfo,
    Fragment,
}

/// Go's `unescape`: `%XX` decoded; a malformed escape (and in a host, an ASCII byte that
/// must not appear there, or an escaped one) is an error. Go's strings may hold any
/// bytes: what is not UTF-8 here is replaced, not refused.
fn unescape(s: &str, mode: Mode) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            let (hi, lo) = (hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?);
            let escaped = &s[i..i + 3];
            if mode == Mode::Host && hi < 8 && escaped != "%25" {
                return None;
            }
            let v = hi << 4 | lo;
            if mode == Mode::Zone && escaped != "%25" && v != b' ' && host_must_escape(v) {
                return None;
            }
            out.push(v);
            i += 3;
            continue;
        }
        if matches!(mode, Mode::Host | Mode::Zone) && b[i] < 0x80 && host_must_escape(b[i]) {
            return None; // "invalid character ... in host name"
        }
        out.push(b[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `shouldEscape` in host mode: what may not stand in a host as it is.
fn host_must_escape(c: u8) -> bool {
    !(c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
                | b'-'
                | b'_'
                | b'.'
                | b'~'
        ))
}

/// Go's `net.SplitHostPort`: host and port, or None where it returns an error.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?; // "missing port in address"
    let (host, from, to) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != colon {
            return None; // missing port, or too many colons
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return None; // "too many colons in address"
        }
        (host, 0, 0)
    };
    if hostport[from..].contains('[') || hostport[to..].contains(']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::projection::Projection;

    fn run(c: &mut Catalog, decide: impl FnOnce(&Catalog) -> Result<Vec<Event>, CatalogError>) {
        for e in decide(c).unwrap() {
            c.apply(&e);
        }
    }

    #[test]
    fn destinations_are_judged_as_go_and_influxdb_1_6_judge_them() {
        for ok in [
            "http://localhost:9092",
            "HTTP://localhost:9092",
            "https://h:1/some/path?u=a&p=b#frag",
            "udp://10.0.0.1:9100",
            "udp://[::1]:9100",
            "http://user:p%40ss@h:80",
            "http://:9092",
            "http://h:80/a%20b",
            "http://a<b>:80",
        ] {
            assert!(Destination::parse(ok).is_some(), "{ok} should be taken");
        }
        for bad in [
            "localhost:9092",
            "ftp://h:21",
            "http://localhost",
            "http://localhost:",
            "http://h:port",
            "http:h:80",
            "http:///path",
            "http://[::1]",
            "http://::1:80",
            "http://h o:80",
            "http://h:80/%zz",
            "http://h:80/#%",
            "http://u{}@h:80",
            "http://h:80/\n",
            ":9092",
            "",
        ] {
            assert!(Destination::parse(bad).is_none(), "{bad} should be refused");
        }
        let d = Destination::parse("HTTP://us%20er:pa:ss@Host:9092/p%2Fq?x=1#f").unwrap();
        assert_eq!(d.scheme, Scheme::Http);
        assert_eq!(d.user, Some(("us er".into(), "pa:ss".into())));
        assert_eq!((d.host.as_str(), d.path.as_str()), ("Host:9092", "/p/q"));
        assert_eq!(d.raw_query, "x=1");
    }

    #[test]
    fn subscriptions_follow_1_6_rules_and_go_with_their_policy_and_database() {
        let mut c = Catalog::default();
        let url = vec!["http://k:9092".to_string()];
        run(&mut c, |c| c.create_database("db", None));
        assert_eq!(
            c.create_subscription("db", "autogen", "s", "ALL", &["nope".into()]),
            Err(CatalogError::InvalidSubscriptionUrl("nope".into()))
        );
        assert_eq!(
            c.create_subscription("nodb", "autogen", "s", "ALL", &url),
            Err(CatalogError::DatabaseNotFound("nodb".into()))
        );
        assert_eq!(
            c.create_subscription("db", "norp", "s", "ALL", &url),
            Err(CatalogError::PolicyNotFound("norp".into()))
        );
        run(&mut c, |c| {
            c.create_subscription("db", "autogen", "s", "ANY", &url)
        });
        assert_eq!(
            c.create_subscription("db", "autogen", "s", "ALL", &url),
            Err(CatalogError::SubscriptionExists)
        );
        assert_eq!(
            c.drop_subscription("db", "autogen", "t"),
            Err(CatalogError::SubscriptionNotFound)
        );
        let spec = crate::proto::RetentionPolicySpec {
            name: "week".into(),
            duration_nanos: 7 * 24 * 3_600_000_000_000,
            shard_group_duration_nanos: 0,
            replication: 1,
        };
        run(&mut c, |c| c.create_policy("db", spec, false));
        run(&mut c, |c| {
            c.create_subscription("db", "week", "s", "ALL", &url)
        });
        assert_eq!(c.subscriptions_of("db", "week").count(), 1);
        assert_eq!(
            Catalog::decode_snapshot(&c.encode_snapshot()).unwrap(),
            c,
            "kept in snapshots"
        );
        run(&mut c, |c| c.drop_policy("db", "week"));
        assert_eq!(c.subscriptions_of("db", "week").count(), 0);
        assert_eq!(c.subscriptions_of("db", "autogen").count(), 1);
        run(&mut c, |c| c.drop_subscription("db", "autogen", "s"));
        assert_eq!(c.subscriptions_of("db", "autogen").count(), 0);
        run(&mut c, |c| {
            c.create_subscription("db", "autogen", "s", "ALL", &url)
        });
        run(&mut c, |c| Ok(c.drop_database("db")));
        run(&mut c, |c| c.create_database("db", None));
        assert_eq!(c.subscriptions_of("db", "autogen").count(), 0);
    }
}
