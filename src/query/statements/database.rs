//! `CREATE DATABASE`, `DROP DATABASE` and `SHOW DATABASES`.

use super::{apply_decision, series, Context};
use crate::catalog::Catalog;
use crate::proto::RetentionPolicySpec;
use crate::query::error::QueryError;
use crate::query::parser::ast::CreateDatabaseStatement;
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn create(
    cx: &Context<'_>,
    s: &CreateDatabaseStatement,
) -> Result<Vec<Series>, QueryError> {
    let policy = s.retention_policy_create.then(|| RetentionPolicySpec {
        name: s
            .rp_name
            .clone()
            .unwrap_or_else(|| crate::catalog::DEFAULT_POLICY.into()),
        duration_nanos: s.duration.unwrap_or(0),
        shard_group_duration_nanos: s.shard_duration.unwrap_or(0),
        replication: s.replication.unwrap_or(1),
    });
    apply_decision(cx.control, |c| c.create_database(&s.name, policy)).await
}

pub(crate) async fn drop(cx: &Context<'_>, name: &str) -> Result<Vec<Series>, QueryError> {
    let shards = cx
        .control
        .mutate(|c| {
            let c = &c.catalog;
            let ids: Vec<u64> = c
                .shards()
                .filter(|s| s.database == *name)
                .map(|s| s.id)
                .collect();
            Ok::<_, QueryError>((c.drop_database(name), ids))
        })
        .await?;
    cx.storage.remove_shards(cx.control, &shards).await;
    Ok(Vec::new())
}

pub(crate) async fn show(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    // A non-admin sees the databases it holds a privilege on.
    let visible = |c: &Catalog, db: &str| {
        cx.principal.is_none_or(|p| {
            p.admin || p.privilege(c, db) != crate::catalog::Privilege::NoPrivileges
        })
    };
    let names = cx
        .control
        .read(|c| {
            let c = &c.catalog;
            c.databases
                .keys()
                .filter(|db| visible(c, db))
                .cloned()
                .collect::<Vec<_>>()
        })
        .await;
    Ok(vec![series(
        "databases",
        &["name"],
        names.into_iter().map(|n| vec![Value::from(n)]).collect(),
    )])
}
