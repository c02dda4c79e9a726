//! The statements: each family of InfluxQL statements in a file of its own (as mini-redis
//! has a file per command), each run against a [`Context`]: the node's catalog, storage
//! and password hashing, and the query's options. `executor` only parses, authorizes and
//! dispatches.

pub(crate) mod cardinality;
pub(crate) mod continuous;
pub(crate) mod database;
pub(crate) mod delete;
pub(crate) mod explain;
mod into;
pub(crate) mod retention;
pub(crate) mod select;
pub(crate) mod server;
pub(crate) mod shard;
pub(crate) mod show;
pub(crate) mod subscription;
pub(crate) mod user;

use crate::auth::{Authenticator, Principal};
use crate::catalog::{Catalog, CatalogError};
use crate::control::ControlLog;
use crate::proto::Event;
use crate::query::error::QueryError;
use crate::query::limits::QueryLimits;
use crate::query::result::Series;
use crate::storage::Storage;
use serde_json::Value;

/// What a statement runs against.
pub(crate) struct Context<'a> {
    pub(crate) control: &'a ControlLog,
    pub(crate) storage: &'a Storage,
    pub(crate) auth: &'a Authenticator,
    /// The `db` parameter: the database of statements that name none.
    pub(crate) database: Option<&'a str>,
    /// The `rp` parameter, if any.
    pub(crate) retention_policy: Option<&'a str>,
    /// Nanoseconds per unit of `epoch=`, or None for RFC 3339 times.
    pub(crate) epoch: Option<i64>,
    /// The authenticated caller (None when authentication is off).
    pub(crate) principal: Option<&'a Principal>,
    pub(crate) limits: QueryLimits,
    /// The queries running on the node (SHOW QUERIES, KILL QUERY).
    pub(crate) tasks: &'a crate::query::tasks::QueryTasks,
    /// The node's settings and start (SHOW DIAGNOSTICS).
    pub(crate) config: &'a crate::config::NodeConfig,
    pub(crate) started: std::time::SystemTime,
    /// Subscriptions' forwarding (SHOW STATS' figures).
    pub(crate) subscriber: &'a crate::subscriber::Subscriber,
}

/// Applies a catalog decision of a statement that answers nothing.
async fn apply_decision(
    control: &ControlLog,
    decide: impl FnOnce(&Catalog) -> Result<Vec<Event>, CatalogError>,
) -> Result<Vec<Series>, QueryError> {
    control
        .mutate(|c| Ok::<_, QueryError>((decide(&c.catalog)?, ())))
        .await?;
    Ok(Vec::new())
}

fn series(name: &str, columns: &[&str], values: Vec<Vec<Value>>) -> Series {
    Series {
        name: name.to_owned(),
        tags: None,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        values,
    }
}

/// The statement's database, which must exist, and its default retention policy.
async fn existing_database(
    cx: &Context<'_>,
    named: Option<&str>,
) -> Result<(String, String), QueryError> {
    let db = database_of(named, cx)?.to_owned();
    let default_policy = cx
        .control
        .read(|c| {
            c.catalog
                .databases
                .get(&db)
                .map(|d| d.default_policy.clone())
        })
        .await;
    match default_policy {
        Some(policy) => Ok((db, policy)),
        None => Err(QueryError::DatabaseNotFound(db)),
    }
}

/// The statement's database (or the `db` parameter's).
fn database_of<'a>(named: Option<&'a str>, cx: &Context<'a>) -> Result<&'a str, QueryError> {
    named
        .or(cx.database)
        .filter(|d| !d.is_empty())
        .ok_or(QueryError::DatabaseRequired)
}
