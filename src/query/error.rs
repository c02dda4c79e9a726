//! The query layer's one error: why a query, or one of its statements, was not answered.
//!
//! Each variant's text is the one InfluxDB 1.x gives, word for word where it has one
//! (clients match these messages, and the differential tests compare them with influxd's).
//! `http::error` decides how `/query` answers each: a parse error or a missing privilege
//! refuses the whole query with its status; any other error is the failed statement's
//! result, inside a 200 answer, as in InfluxDB.

use super::parser::ParseError;
use crate::auth::AuthError;
use crate::catalog::CatalogError;
use crate::projection::ProjectionError;
use crate::storage::column_file::ColumnFileError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum QueryError {
    /// The query does not parse (or names an unknown tz() zone): refused as a whole.
    #[error("{}", .0.http_message())]
    Parse(#[from] ParseError),
    /// The caller lacks a privilege a statement needs (the query is refused as a whole),
    /// or a statement's password could not be hashed.
    #[error(transparent)]
    Auth(#[from] AuthError),

    #[error("database name required")]
    DatabaseRequired,
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error("retention policy not found: {0}")]
    RetentionPolicyNotFound(String),
    #[error("unable to find time zone {0}")]
    UnknownTimeZone(String),
    #[error("invalid regex: {0}")]
    Regex(#[from] regex::Error),
    /// A statement InfluxQL refuses as written, in 1.x's words.
    #[error("{0}")]
    Invalid(String),
    /// What shardkeeper does not answer yet (README, issue 5): refused, never answered
    /// wrongly.
    #[error("{0}")]
    NotSupported(String),

    #[error("query-timeout limit exceeded")]
    Timeout,
    /// InfluxDB 1.x's words for a query killed under way (its client went away).
    #[error("query interrupted")]
    Interrupted,
    #[error("query interrupted: the node is shutting down")]
    NodeStopping,
    /// A first attempt on the request's own thread used its budget: the query starts over
    /// on the query pool. Never answered to a client.
    #[error("query moved to the query pool")]
    OverBudget,
    /// `KILL QUERY` of an id no running query has.
    #[error("no such query id: {0}")]
    NoSuchQuery(u64),
    #[error(
        "query needs more memory than max_request_memory_mib allows ({limit_mib} MiB): \
         narrow its time range or series, or use a longer GROUP BY time() interval"
    )]
    MemoryBudget { limit_mib: u64 },
    #[error("max-select-series limit exceeded: ({found}/{limit})")]
    TooManySeries { found: usize, limit: usize },
    /// 1.x's spelling, kept so that clients matching it keep working.
    #[error("max-select-point limit exceeed: ({found}/{limit})")]
    TooManyPoints { found: usize, limit: usize },
    #[error("max-select-buckets limit exceeded: ({found}/{limit})")]
    TooManyBuckets { found: u128, limit: usize },
    #[error("too many windows: {found} (at most {limit} per query)")]
    TooManyWindows { found: i64, limit: i64 },

    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    ColumnFile(#[from] ColumnFileError),
    /// An answer that could not be written out.
    #[error(transparent)]
    Render(#[from] serde_json::Error),
}

impl QueryError {
    pub(crate) fn invalid(message: impl Into<String>) -> QueryError {
        QueryError::Invalid(message.into())
    }

    pub(crate) fn not_supported(message: impl Into<String>) -> QueryError {
        QueryError::NotSupported(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients match these texts: each is what the query layer answered before it had this
    /// type, and where InfluxDB 1.x has the error, what it answers.
    #[test]
    fn each_error_says_what_it_said_before() {
        let cases = [
            (QueryError::DatabaseRequired, "database name required"),
            (
                QueryError::DatabaseNotFound("db".into()),
                "database not found: db",
            ),
            (
                QueryError::RetentionPolicyNotFound("rp".into()),
                "retention policy not found: rp",
            ),
            (
                QueryError::UnknownTimeZone("Nope/Zone".into()),
                "unable to find time zone Nope/Zone",
            ),
            (QueryError::Timeout, "query-timeout limit exceeded"),
            (QueryError::Interrupted, "query interrupted"),
            (
                QueryError::NodeStopping,
                "query interrupted: the node is shutting down",
            ),
            (
                QueryError::MemoryBudget { limit_mib: 64 },
                "query needs more memory than max_request_memory_mib allows (64 MiB): narrow \
                 its time range or series, or use a longer GROUP BY time() interval",
            ),
            (
                QueryError::TooManySeries { found: 3, limit: 2 },
                "max-select-series limit exceeded: (3/2)",
            ),
            (
                QueryError::TooManyPoints { found: 3, limit: 2 },
                "max-select-point limit exceeed: (3/2)",
            ),
            (
                QueryError::TooManyBuckets {
                    found: 11,
                    limit: 10,
                },
                "max-select-buckets limit exceeded: (11/10)",
            ),
            (
                QueryError::TooManyWindows {
                    found: 2_000_000,
                    limit: 1_000_000,
                },
                "too many windows: 2000000 (at most 1000000 per query)",
            ),
            (
                QueryError::Parse(ParseError::plain("unable to find time zone X")),
                "error parsing query: unable to find time zone X",
            ),
            (
                QueryError::invalid("GROUP BY requires at least one aggregate function"),
                "GROUP BY requires at least one aggregate function",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(error.to_string(), text);
        }
        // A pattern from a query, not a literal the compiler checks.
        let pattern = String::from("(");
        let bad = regex::Regex::new(&pattern).expect_err("an unclosed group");
        assert_eq!(
            QueryError::from(bad.clone()).to_string(),
            format!("invalid regex: {bad}")
        );
    }
}
