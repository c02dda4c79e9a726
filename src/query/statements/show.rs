//! `SHOW MEASUREMENTS`, `SHOW SERIES`, `SHOW TAG KEYS`, `SHOW TAG VALUES` and
//! `SHOW FIELD KEYS`: which shards each reads, as 1.x decides it; the listing itself is
//! [`crate::query::listing`]'s.

use super::{database_of, existing_database, Context};
use crate::query::error::QueryError;
use crate::query::eval::{mentions_time, time_range};
use crate::query::listing;
use crate::query::parser::ast::{
    ShowFieldKeysStatement, ShowMeasurementsStatement, ShowSeriesStatement, ShowTagKeysStatement,
    ShowTagValuesStatement, Source,
};
use crate::query::result::Series;
use crate::query::rows;
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) async fn measurements(
    cx: &Context<'_>,
    s: &ShowMeasurementsStatement,
) -> Result<Vec<Series>, QueryError> {
    let db = database_of(s.database.as_deref(), cx)?;
    let exists = cx
        .control
        .read(|c| c.catalog.databases.contains_key(db))
        .await;
    if !exists {
        return Err(QueryError::DatabaseNotFound(db.to_owned()));
    }
    if s.condition.as_ref().is_some_and(mentions_time) {
        return Err(QueryError::invalid(
            "SHOW MEASUREMENTS doesn't support time in WHERE clause",
        ));
    }
    let sources: Vec<Source> = s.source.iter().cloned().map(Source::Measurement).collect();
    let scope = listing::Scope::database(db);
    // WHERE keeps the measurements with a series its tags match.
    let names: BTreeSet<String> = match &s.condition {
        Some(c) => listing::list(cx.storage, &scope, &sources, Some(c), &cx.limits)?
            .by_measurement
            .into_keys()
            .collect(),
        None => listing::measurements(cx.storage, &scope, &sources, &cx.limits)?,
    };
    let rows: Vec<Vec<Value>> = names
        .into_iter()
        .skip(s.offset as usize)
        .take(rows::limit(s.limit))
        .map(|n| vec![Value::from(n)])
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![super::series("measurements", &["name"], rows)])
}

pub(crate) async fn series(
    cx: &Context<'_>,
    s: &ShowSeriesStatement,
) -> Result<Vec<Series>, QueryError> {
    let (db, default_policy) = existing_database(cx, s.database.as_deref()).await?;
    let condition = s.condition.as_ref();
    // 1.x answers from its database-wide index, unless a time condition makes it
    // a query of the shards in range, of the sources' (or the default) policies.
    let scope = match condition.filter(|c| mentions_time(c)) {
        Some(c) => listing::Scope::policy(&db, &default_policy)
            .within(time_range(Some(c), crate::catalog::now_nanos())),
        None => listing::Scope::database(&db),
    };
    let listing = listing::list(cx.storage, &scope, &s.sources, condition, &cx.limits)?;
    Ok(listing::series(&listing, s.offset, s.limit))
}

pub(crate) async fn tag_keys(
    cx: &Context<'_>,
    s: &ShowTagKeysStatement,
) -> Result<Vec<Series>, QueryError> {
    let (db, _) = existing_database(cx, s.database.as_deref()).await?;
    let condition = s.condition.as_ref();
    let scope =
        listing::Scope::database(&db).within(time_range(condition, crate::catalog::now_nanos()));
    let listing = listing::list(cx.storage, &scope, &s.sources, condition, &cx.limits)?;
    Ok(listing::tag_keys(&listing, s.offset, s.limit))
}

pub(crate) async fn tag_values(
    cx: &Context<'_>,
    s: &ShowTagValuesStatement,
) -> Result<Vec<Series>, QueryError> {
    let (db, _) = existing_database(cx, s.database.as_deref()).await?;
    let condition = s.condition.as_ref();
    // A source's policy narrows the values, as 1.8 made it do (1.6 lists every
    // policy's).
    let scope = listing::Scope {
        named_policies: true,
        ..listing::Scope::database(&db)
    }
    .within(time_range(condition, crate::catalog::now_nanos()));
    if condition.is_none() {
        return listing::all_tag_values(
            cx.storage, &scope, &s.sources, &s.tag_key, s.offset, s.limit, &cx.limits,
        );
    }
    let listing = listing::list(cx.storage, &scope, &s.sources, condition, &cx.limits)?;
    listing::tag_values(&listing, &s.tag_key, s.offset, s.limit)
}

pub(crate) async fn field_keys(
    cx: &Context<'_>,
    s: &ShowFieldKeysStatement,
) -> Result<Vec<Series>, QueryError> {
    let (db, default_policy) = existing_database(cx, s.database.as_deref()).await?;
    let scope = listing::Scope::policy(&db, &default_policy);
    let listing = listing::list(cx.storage, &scope, &s.sources, None, &cx.limits)?;
    Ok(listing::field_keys(&listing, s.offset, s.limit))
}
