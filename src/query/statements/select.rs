//! `SELECT`: the catalog it reads and the context it runs in; the statement itself is the
//! driver's, [`crate::query::select`].

use super::Context;
use crate::catalog::Catalog;
use crate::query::error::QueryError;
use crate::query::parser::ast::SelectStatement;
use crate::query::result::Series;
use crate::query::scan::SelectContext;
use crate::query::select as driver;
use crate::query::zone::Zone;

pub(crate) async fn run(cx: &Context<'_>, s: &SelectStatement) -> Result<Vec<Series>, QueryError> {
    let catalog = catalog_read(cx).await;
    // INTO writes the rows back: their times in nanoseconds.
    let epoch = match s.target {
        Some(_) => Some(1),
        None => cx.epoch,
    };
    let ctx = context(cx, &catalog, s, epoch)?;
    let rows = driver::execute(s, &ctx)?;
    match &s.target {
        Some(target) => super::into::write(cx, target, rows).await,
        None => Ok(rows),
    }
}

/// What a SELECT of `s` runs in, over `catalog`, its times given in `epoch` (nanoseconds
/// per unit; None: RFC 3339).
pub(super) fn context<'a>(
    cx: &'a Context<'_>,
    catalog: &'a Catalog,
    s: &SelectStatement,
    epoch: Option<i64>,
) -> Result<SelectContext<'a>, QueryError> {
    Ok(SelectContext {
        storage: cx.storage,
        catalog,
        database: cx.database.filter(|d| !d.is_empty()),
        now: crate::catalog::now_nanos(),
        epoch,
        zone: s.location.as_deref().map(Zone::named).transpose()?,
        limits: cx.limits.clone(),
        series_page: None,
        read_stats: None,
    })
}

/// What a SELECT reads of the catalog: its databases' policies. Shards, users and tokens,
/// which grow with the node, are not copied for every query.
pub(super) async fn catalog_read(cx: &Context<'_>) -> Catalog {
    cx.control
        .read(|c| Catalog {
            databases: c
                .catalog
                .databases
                .iter()
                .map(|(name, db)| {
                    let policies = crate::catalog::Database {
                        default_policy: db.default_policy.clone(),
                        policies: db.policies.clone(),
                        shards: Vec::new(),
                        continuous_queries: Default::default(),
                        subscriptions: Vec::new(),
                    };
                    (name.clone(), policies)
                })
                .collect(),
            ..Catalog::default()
        })
        .await
}
