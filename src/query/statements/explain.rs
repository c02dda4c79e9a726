//! `EXPLAIN [ANALYZE] SELECT ...`: the SELECT's context; the answer is
//! [`crate::query::explain`]'s, one line per row of one column.

use super::select::{catalog_read, context};
use super::{series, Context};
use crate::query::error::QueryError;
use crate::query::explain::{self, ANALYZE_COLUMN, PLAN_COLUMN};
use crate::query::parser::ast::SelectStatement;
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn run(
    cx: &Context<'_>,
    s: &SelectStatement,
    analyze: bool,
) -> Result<Vec<Series>, QueryError> {
    let catalog = catalog_read(cx).await;
    let ctx = context(cx, &catalog, s, Some(1))?;
    let (column, lines) = match analyze {
        true => (ANALYZE_COLUMN, explain::analyze(s, &ctx)?),
        false => (PLAN_COLUMN, explain::plan(s, &ctx)?),
    };
    let rows = lines.into_iter().map(|l| vec![Value::from(l)]).collect();
    Ok(vec![series("", &[column], rows)])
}
