//! `SHOW SERIES | MEASUREMENT | TAG KEY | TAG VALUES | FIELD KEY [EXACT] CARDINALITY`,
//! counted from the shards' indexes in InfluxDB 1.x's shapes: a `count` per measurement
//! (and per combination of the GROUP BY tags' values; measurements are counted per such
//! combination only), or for the plain estimated forms of series and measurements, one
//! `cardinality estimation` for the database. Estimates here are exact counts.

use super::{database_of, Context};
use crate::query::error::QueryError;
use crate::query::eval::mentions_time;
use crate::query::limits::QueryLimits;
use crate::query::listing;
use crate::query::parser::ast::{CardinalityKind, Expr, ShowCardinalityStatement};
use crate::query::result::Series;
use crate::storage::Storage;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub(crate) async fn show(
    cx: &Context<'_>,
    s: &ShowCardinalityStatement,
) -> Result<Vec<Series>, QueryError> {
    let db = database_of(s.database.as_deref(), cx)?;
    let default_policy = cx
        .control
        .read(|c| {
            c.catalog
                .databases
                .get(db)
                .map(|d| d.default_policy.clone())
        })
        .await;
    answer(cx.storage, db, default_policy.as_deref(), s, &cx.limits)
}

/// What the statement asks about a database, which must exist unless the answer is an
/// estimate (1.x estimates 0 for a database it does not have).
///
/// As 1.x rewrites them, the counted forms read the sources' policies, the database's
/// default policy for a source that names none; the estimates read the whole database.
fn answer(
    storage: &Storage,
    database: &str,
    default_policy: Option<&str>,
    stmt: &ShowCardinalityStatement,
    limits: &QueryLimits,
) -> Result<Vec<Series>, QueryError> {
    use CardinalityKind as K;
    let estimate = !stmt.exact
        && matches!(stmt.kind, K::Series | K::Measurement)
        && stmt.sources.is_empty()
        && stmt.condition.is_none()
        && stmt.dimensions.is_empty();
    storage.check_readable(database, None, (i64::MIN, i64::MAX))?;
    if estimate {
        let count = if default_policy.is_some() {
            estimate_of(storage, database, stmt.kind)
        } else {
            0
        };
        return Ok(vec![Series {
            name: String::new(),
            tags: None,
            columns: vec!["cardinality estimation".into()],
            values: vec![vec![Value::from(count)]],
        }]);
    }
    let Some(default_policy) = default_policy else {
        return Err(QueryError::DatabaseNotFound(database.to_owned()));
    };
    if stmt.condition.as_ref().is_some_and(mentions_time) {
        let statement = match stmt.kind {
            K::Series => "SHOW SERIES EXACT CARDINALITY",
            K::Measurement => "SHOW MEASUREMENT EXACT CARDINALITY",
            K::TagKey => "SHOW TAG KEY EXACT CARDINALITY",
            K::FieldKey => "SHOW FIELD KEY CARDINALITY",
            // 1.x answers nothing rather than an error for this one.
            K::TagValues => return Ok(Vec::new()),
        };
        return Err(QueryError::invalid(format!(
            "{statement} doesn't support time in WHERE clause"
        )));
    }
    let mut group_keys = Vec::new();
    for d in &stmt.dimensions {
        match &d.expr {
            Expr::VarRef(v) => group_keys.push(v.name.clone()),
            Expr::Wildcard(_) => group_keys.push("*".into()),
            other => {
                return Err(QueryError::not_supported(format!(
                    "GROUP BY {other} is not supported in SHOW ... CARDINALITY"
                )))
            }
        }
    }
    let scope = listing::Scope::policy(database, default_policy);
    let listing = listing::list(
        storage,
        &scope,
        &stmt.sources,
        stmt.condition.as_ref(),
        limits,
    )?;
    if group_keys.iter().any(|k| k == "*") {
        // Every tag key of the measurements the sources name, whichever holds it, in any
        // policy: 1.x takes them from its database-wide index.
        let mut all = BTreeSet::new();
        for (shard, wanted) in listing::Scope::database(database).shards(storage, &stmt.sources)? {
            for m in shard.measurements().into_iter().filter(|m| wanted(m)) {
                all.extend(shard.tag_keys(&m).iter().cloned());
            }
        }
        group_keys.retain(|k| k != "*");
        group_keys.extend(all);
    }
    group_keys.sort();
    group_keys.dedup();

    let key_matches = match (&stmt.kind, &stmt.tag_key) {
        (K::TagValues, Some(key)) => Some(listing::tag_key_matcher(key)?),
        (K::TagValues, None) => {
            return Err(QueryError::invalid(
                "SHOW TAG VALUES CARDINALITY needs WITH KEY",
            ))
        }
        _ => None,
    };
    // Per measurement (none when counting measurements) and group: what is counted.
    let mut counted: BTreeMap<(String, Group), HashSet<String>> = BTreeMap::new();
    for (measurement, series) in &listing.by_measurement {
        limits.check_deadline()?;
        let field_keys: BTreeSet<String> = match stmt.kind {
            K::FieldKey => listing.field_types(measurement).into_keys().collect(),
            _ => BTreeSet::new(),
        };
        for (key, tags) in series {
            let group: Group = group_keys
                .iter()
                .map(|k| {
                    let value = tags.iter().find(|(t, _)| t == k).map(|(_, v)| v.clone());
                    (k.clone(), value.unwrap_or_default())
                })
                .collect();
            let name = match stmt.kind {
                K::Measurement => String::new(),
                _ => measurement.clone(),
            };
            let items = counted.entry((name, group)).or_default();
            match stmt.kind {
                K::Series => {
                    items.insert(key.to_string());
                }
                K::Measurement => {
                    items.insert(measurement.clone());
                }
                K::TagKey => items.extend(tags.iter().map(|(k, _)| k.clone())),
                K::TagValues => items.extend(
                    tags.iter()
                        .filter(|(k, _)| key_matches.as_ref().is_some_and(|m| m(k)))
                        .map(|(k, v)| format!("{k}\u{0}{v}")),
                ),
                K::FieldKey => items.extend(field_keys.iter().cloned()),
            }
        }
    }
    Ok(counted
        .into_iter()
        .filter(|(_, items)| !items.is_empty())
        .filter_map(|((name, group), items)| {
            // LIMIT and OFFSET page the rows of each series, of which there is one.
            let values: Vec<Vec<Value>> = std::iter::once(vec![Value::from(items.len())])
                .skip(stmt.offset as usize)
                .take(crate::query::rows::limit(stmt.limit))
                .collect();
            (!values.is_empty()).then(|| Series {
                name,
                tags: (!group_keys.is_empty()).then(|| group.into_iter().collect()),
                columns: vec!["count".into()],
                values,
            })
        })
        .collect())
}

/// The values of the GROUP BY tags (empty for a series without one), by key.
type Group = Vec<(String, String)>;

/// Distinct series or measurements of the database, across its retention policies.
pub(crate) fn estimate_of(storage: &Storage, database: &str, kind: CardinalityKind) -> usize {
    let mut seen = BTreeSet::new();
    for shard in storage.shards_of(database, None) {
        match kind {
            CardinalityKind::Measurement => seen.extend(shard.measurements()),
            _ => seen.extend(
                shard
                    .series_list(&|_| true)
                    .into_iter()
                    .flat_map(|(_, series)| series.into_iter().map(|(key, _)| key.to_string())),
            ),
        }
    }
    seen.len()
}
