//! `EXPLAIN [ANALYZE] SELECT ...`: the SELECT's context; the answer is
//! [`crate::query::explain`]'s, one line per row of one column.

use super::select::catalog_read;
use super::{series, Context};
use crate::query::error::QueryError;
use crate::query::explain::{self, ANALYZE_COLUMN, PLAN_COLUMN};
use crate::query::parser::ast::SelectStatement;
use crate::query::result::Series;
use crate::query::scan::SelectContext;
use crate::query::zone::Zone;
use serde_json::Value;

pub(crate) async fn run(
    cx: &Context<'_>,
    s: &SelectStatement,
    analyze: bool,
) -> Result<Vec<Series>, QueryError> {
    let catalog = catalog_read(cx).await;
    let ctx = SelectContext {
        storage: cx.storage,
        catalog: &catalog,
        database: cx.database.filter(|d| !d.is_empty()),
        now: crate::catalog::now_nanos(),
        epoch: Some(1),
        zone: s.location.as_deref().map(Zone::named).transpose()?,
        limits: cx.limits.clone(),
        series_page: None,
        read_stats: None,
    };
    let (column, lines) = match analyze {
        true => (ANALYZE_COLUMN, explain::analyze(s, &ctx)?),
        false => (PLAN_COLUMN, explain::plan(s, &ctx)?),
    };
    let rows = lines.into_iter().map(|l| vec![Value::from(l)]).collect();
    Ok(vec![series("", &[column], rows)])
}
