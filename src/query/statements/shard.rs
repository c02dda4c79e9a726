//! `DROP SHARD`, `SHOW SHARDS` and `SHOW SHARD GROUPS`.

use super::{series, Context};
use crate::catalog::Catalog;
use crate::query::error::QueryError;
use crate::query::format::rfc3339_nanos;
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn drop(cx: &Context<'_>, id: u64) -> Result<Vec<Series>, QueryError> {
    // As 1.x: dropping a shard that does not exist is not an error.
    let dropped = cx
        .control
        .mutate(|c| {
            let c = &c.catalog;
            let shards: Vec<_> = c.shards().filter(|s| s.id == id).collect();
            Ok::<_, QueryError>((c.drop_shards(&shards), shards))
        })
        .await?;
    let ids: Vec<u64> = dropped.iter().map(|s| s.id).collect();
    cx.storage.remove_shards(cx.control, &ids).await;
    Ok(Vec::new())
}

pub(crate) async fn show(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    let catalog: Catalog = cx.control.read(|c| c.catalog.clone()).await;
    let mut out = Vec::new();
    for (name, db) in &catalog.databases {
        let mut shards: Vec<_> = db.shards.iter().collect();
        // 1.x lists them by policy (in creation order), then by time.
        shards.sort_by_key(|s| (db.policies.get_index_of(&s.retention_policy), s.start_nanos));
        let rows = shards
            .into_iter()
            .map(|s| {
                let duration = db
                    .policies
                    .get(&s.retention_policy)
                    .map_or(0, |p| p.duration_nanos);
                let expiry = if duration > 0 {
                    s.end_nanos.saturating_add(duration)
                } else {
                    s.end_nanos
                };
                vec![
                    Value::from(s.shard_id),
                    Value::from(s.database.clone()),
                    Value::from(s.retention_policy.clone()),
                    Value::from(s.shard_id),
                    Value::from(rfc3339_nanos(s.start_nanos)),
                    Value::from(rfc3339_nanos(s.end_nanos)),
                    Value::from(rfc3339_nanos(expiry)),
                    Value::from(""),
                ]
            })
            .collect();
        out.push(series(
            name,
            &[
                "id",
                "database",
                "retention_policy",
                "shard_group",
                "start_time",
                "end_time",
                "expiry_time",
                "owners",
            ],
            rows,
        ));
    }
    Ok(out)
}

/// `SHOW SHARD GROUPS`: one series, `shard groups`, of every policy's groups (a shard is
/// its own group here, and has its id), databases and policies in creation order, each
/// policy's groups by end time, as 1.x keeps them.
pub(crate) async fn show_groups(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    let catalog: Catalog = cx.control.read(|c| c.catalog.clone()).await;
    let mut rows = Vec::new();
    for (name, db) in &catalog.databases {
        for (policy_name, policy) in &db.policies {
            let mut groups: Vec<_> = db
                .shards
                .iter()
                .filter(|s| s.retention_policy == *policy_name)
                .collect();
            groups.sort_by_key(|s| (s.end_nanos, s.shard_id));
            for s in groups {
                rows.push(vec![
                    Value::from(s.shard_id),
                    Value::from(name.clone()),
                    Value::from(policy_name.clone()),
                    Value::from(rfc3339_nanos(s.start_nanos)),
                    Value::from(rfc3339_nanos(s.end_nanos)),
                    Value::from(rfc3339_nanos(
                        s.end_nanos.saturating_add(policy.duration_nanos),
                    )),
                ]);
            }
        }
    }
    Ok(vec![series(
        "shard groups",
        &[
            "id",
            "database",
            "retention_policy",
            "start_time",
            "end_time",
            "expiry_time",
        ],
        rows,
    )])
}
