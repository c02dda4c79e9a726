//! `CREATE`, `ALTER`, `DROP` and `SHOW RETENTION POLICIES`.

use super::{apply_decision, database_of, series, Context};
use crate::proto::{RetentionPolicyAltered, RetentionPolicySpec};
use crate::query::error::QueryError;
use crate::query::format::go_duration;
use crate::query::parser::ast::{AlterRetentionPolicyStatement, CreateRetentionPolicyStatement};
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn create(
    cx: &Context<'_>,
    s: &CreateRetentionPolicyStatement,
) -> Result<Vec<Series>, QueryError> {
    let spec = RetentionPolicySpec {
        name: s.name.clone(),
        duration_nanos: s.duration,
        shard_group_duration_nanos: s.shard_duration.unwrap_or(0),
        replication: s.replication,
    };
    apply_decision(cx.control, |c| {
        c.create_policy(&s.database, spec, s.default)
    })
    .await
}

pub(crate) async fn alter(
    cx: &Context<'_>,
    s: &AlterRetentionPolicyStatement,
) -> Result<Vec<Series>, QueryError> {
    let change = RetentionPolicyAltered {
        database: s.database.clone(),
        name: s.name.clone(),
        duration_nanos: s.duration,
        shard_group_duration_nanos: s.shard_duration,
        replication: s.replication,
        make_default: s.default,
    };
    apply_decision(cx.control, |c| c.alter_policy(change)).await
}

pub(crate) async fn drop(
    cx: &Context<'_>,
    database: &str,
    name: &str,
) -> Result<Vec<Series>, QueryError> {
    let shards = cx
        .control
        .mutate(|c| {
            let c = &c.catalog;
            let ids: Vec<u64> = c
                .shards()
                .filter(|s| s.database == *database && s.retention_policy == *name)
                .map(|s| s.id)
                .collect();
            Ok::<_, QueryError>((c.drop_policy(database, name)?, ids))
        })
        .await?;
    cx.storage.remove_shards(cx.control, &shards).await;
    Ok(Vec::new())
}

pub(crate) async fn show(
    cx: &Context<'_>,
    database: Option<&str>,
) -> Result<Vec<Series>, QueryError> {
    let db = database_of(database, cx)?;
    let rows = cx
        .control
        .read(|c| {
            let c = &c.catalog;
            let d = c
                .databases
                .get(db)
                .ok_or_else(|| QueryError::DatabaseNotFound(db.to_owned()))?;
            Ok::<_, QueryError>(
                d.policies
                    .values()
                    .map(|p| {
                        vec![
                            Value::from(p.name.clone()),
                            Value::from(go_duration(p.duration_nanos)),
                            Value::from(go_duration(p.shard_group_duration_nanos)),
                            Value::from(p.replication),
                            Value::from(d.default_policy == p.name),
                        ]
                    })
                    .collect(),
            )
        })
        .await?;
    Ok(vec![series(
        "",
        &[
            "name",
            "duration",
            "shardGroupDuration",
            "replicaN",
            "default",
        ],
        rows,
    )])
}
