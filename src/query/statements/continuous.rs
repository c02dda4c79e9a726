//! `CREATE CONTINUOUS QUERY`, `DROP CONTINUOUS QUERY` and `SHOW CONTINUOUS QUERIES`, as
//! 1.x answers them; the runs themselves are `query::continuous`'s.

use super::{apply_decision, series, Context};
use crate::catalog::{Catalog, CatalogError};
use crate::query::error::QueryError;
use crate::query::parser::ast::{
    CreateContinuousQueryStatement, SelectStatement, Source, Statement,
};
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn create(
    cx: &Context<'_>,
    s: &CreateContinuousQueryStatement,
) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| {
        // Stored as 1.x normalizes the statement before it keeps its text: every
        // measurement qualified with the request's database (`db=`, else the query's ON
        // database) and policy (`rp=`, else that database's default), fill() numbers as
        // Go's `%v` writes them.
        let mut s = s.clone();
        let database = cx.database.filter(|d| !d.is_empty()).unwrap_or(&s.database);
        qualify(c, database, cx.retention_policy, &mut s.source)?;
        crate::query::read_only::go_fill(&mut s.source);
        let query = Statement::CreateContinuousQuery(s.clone()).to_string();
        c.create_continuous_query(&s.database, &s.name, &query)
    })
    .await
}

pub(crate) async fn drop(
    cx: &Context<'_>,
    database: &str,
    name: &str,
) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| Ok(c.drop_continuous_query(database, name))).await
}

/// A series per database (one without any too), each query's name and statement.
pub(crate) async fn show(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    Ok(cx
        .control
        .read(|c| {
            c.catalog
                .databases
                .iter()
                .map(|(name, db)| {
                    let rows = db
                        .continuous_queries
                        .values()
                        .map(|cq| vec![Value::from(cq.name.clone()), Value::from(cq.query.clone())])
                        .collect();
                    series(name, &["name", "query"], rows)
                })
                .collect()
        })
        .await)
}

/// Sets the database (`database`) and retention policy (`policy`, else the database's
/// default) of every measurement and of the target that name none, and checks that each
/// named policy exists, in 1.x's order (the target first) and words.
fn qualify(
    catalog: &Catalog,
    database: &str,
    policy: Option<&str>,
    stmt: &mut SelectStatement,
) -> Result<(), CatalogError> {
    let default_policy = |db: &str| -> Result<String, CatalogError> {
        let d = catalog
            .databases
            .get(db)
            .ok_or_else(|| CatalogError::DatabaseNotFound(db.into()))?;
        Ok(policy.map_or_else(|| d.default_policy.clone(), str::to_owned))
    };
    let check = |db: &str, rp: &str| -> Result<(), CatalogError> {
        if catalog.has_policy(db, rp) {
            Ok(())
        } else {
            Err(CatalogError::PolicyNotFound(format!("{db}.{rp}")))
        }
    };
    if let Some(target) = &mut stmt.target {
        let db = target
            .database
            .get_or_insert_with(|| database.into())
            .clone();
        let policy = default_policy(&db)?;
        target.retention_policy.get_or_insert(policy);
    }
    for source in &mut stmt.sources {
        match source {
            Source::Measurement(m) => {
                let db = m.database.get_or_insert_with(|| database.into()).clone();
                let policy = default_policy(&db)?;
                m.retention_policy.get_or_insert(policy);
            }
            Source::Subquery(inner) => qualify(catalog, database, policy, inner)?,
        }
    }
    if let Some(t) = &stmt.target {
        check(
            t.database.as_deref().unwrap_or_default(),
            t.retention_policy.as_deref().unwrap_or_default(),
        )?;
    }
    for source in &stmt.sources {
        if let Source::Measurement(m) = source {
            check(
                m.database.as_deref().unwrap_or_default(),
                m.retention_policy.as_deref().unwrap_or_default(),
            )?;
        }
    }
    Ok(())
}
