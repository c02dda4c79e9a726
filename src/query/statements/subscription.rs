//! `CREATE SUBSCRIPTION`, `DROP SUBSCRIPTION` and `SHOW SUBSCRIPTIONS`, as 1.6 answers
//! them; the forwarding itself is `crate::subscriber`'s.

use super::{apply_decision, series, Context};
use crate::query::error::QueryError;
use crate::query::parser::ast::CreateSubscriptionStatement;
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn create(
    cx: &Context<'_>,
    s: &CreateSubscriptionStatement,
) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| {
        c.create_subscription(
            &s.database,
            &s.retention_policy,
            &s.name,
            &s.mode,
            &s.destinations,
        )
    })
    .await
}

pub(crate) async fn drop(
    cx: &Context<'_>,
    database: &str,
    policy: &str,
    name: &str,
) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| c.drop_subscription(database, policy, name)).await
}

/// A series per database that has subscriptions (none for one without, unlike SHOW
/// CONTINUOUS QUERIES), policy by policy in their order, each in creation order.
pub(crate) async fn show(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    Ok(cx
        .control
        .read(|c| {
            c.catalog
                .databases
                .iter()
                .filter_map(|(name, db)| {
                    let rows: Vec<Vec<Value>> = db
                        .policies
                        .keys()
                        .flat_map(|policy| c.catalog.subscriptions_of(name, policy))
                        .map(|s| {
                            vec![
                                Value::from(s.retention_policy.clone()),
                                Value::from(s.name.clone()),
                                Value::from(s.mode.clone()),
                                Value::from(s.destinations.clone()),
                            ]
                        })
                        .collect();
                    (!rows.is_empty()).then(|| {
                        series(
                            name,
                            &["retention_policy", "name", "mode", "destinations"],
                            rows,
                        )
                    })
                })
                .collect()
        })
        .await)
}
