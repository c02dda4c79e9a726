//! Runs parsed InfluxQL statements against the node's catalog and storage.

use super::eval::{mentions_time, time_range};
use super::format::{go_duration, rfc3339_nanos};
use super::limits::QueryLimits;
use super::parser::ast::{Source, Statement};
use super::parser::ParseError;
use super::result::{Series, StatementResult};
use super::select::{self, SelectContext};
use super::show;
use super::zone::Zone;
use crate::auth::{AuthError, Principal};
use crate::catalog::{Catalog, CatalogError};
use crate::control::ControlLog;
use crate::node::Node;
use crate::projection::ProjectionError;
use crate::proto::{Event, RetentionPolicyAltered, RetentionPolicySpec};
use serde_json::Value;
use std::collections::BTreeSet;

pub struct QueryOptions {
    /// The `db` parameter: the database of statements that name none.
    pub database: Option<String>,
    /// Nanoseconds per unit of `epoch=`, or None for RFC 3339 times.
    pub epoch: Option<i64>,
    /// The authenticated caller (None when authentication is off).
    pub principal: Option<Principal>,
    /// Bound parameters (`params=`), for `$name` in the query.
    pub params: std::collections::HashMap<String, super::parser::ParamValue>,
    /// What the query may use; its deadline counts from the request's arrival, so that
    /// time spent waiting for a query thread counts too.
    pub limits: QueryLimits,
}

/// Nanoseconds per unit of an `epoch=` value.
pub fn epoch_unit(s: &str) -> Option<i64> {
    Some(match s {
        "ns" | "n" => 1,
        "u" | "µ" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
enum StatementError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<String> for StatementError {
    fn from(s: String) -> Self {
        StatementError::Message(s)
    }
}

/// Parses and runs a query; a parse error (400) or a missing privilege (403) refuses the
/// whole query, a statement error is that statement's result and stops the ones after it,
/// as in InfluxDB.
/// Why a query was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{}", .0.http_message())]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
}

pub async fn execute(
    node: &Node,
    text: &str,
    options: &QueryOptions,
) -> Result<Vec<StatementResult>, QueryError> {
    // Always with the (maybe empty) map: a `$name` nobody bound is a parse error, as in 1.x.
    let statements = super::parser::parse_query_with_params(text, &options.params)?;
    // InfluxDB refuses an unknown tz() zone while parsing, before anything runs.
    for s in &statements {
        if let Statement::Select(select) = s {
            if let Some(name) = &select.location {
                Zone::named(name).map_err(ParseError::plain)?;
            }
        }
    }
    // As InfluxDB, a caller lacking a privilege is refused before anything runs.
    if let Some(p) = &options.principal {
        node.control
            .read(|c| {
                super::authorize::check(&c.catalog, p, &statements, options.database.as_deref())
            })
            .await?;
    }
    let limits = &options.limits;
    let mut results = Vec::with_capacity(statements.len());
    for (id, statement) in statements.iter().enumerate() {
        // A query past its deadline answers the timeout for the statement it reached.
        let outcome = match limits.check_deadline() {
            Ok(()) => run(node, statement, options, limits.clone()).await,
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(series) => results.push(StatementResult {
                statement_id: id,
                series,
                error: None,
            }),
            Err(e) => {
                results.push(StatementResult::error(id, e.to_string()));
                break;
            }
        }
    }
    Ok(results)
}

/// Applies a catalog decision of a statement that answers nothing.
async fn apply_decision(
    control: &ControlLog,
    decide: impl FnOnce(&Catalog) -> Result<Vec<Event>, CatalogError>,
) -> Result<Vec<Series>, StatementError> {
    control
        .mutate(|c| Ok::<_, StatementError>((decide(&c.catalog)?, ())))
        .await?;
    Ok(Vec::new())
}

fn catalog_privilege(p: super::parser::ast::Privilege) -> crate::catalog::Privilege {
    use super::parser::ast::Privilege as P;
    match p {
        P::Read => crate::catalog::Privilege::Read,
        P::Write => crate::catalog::Privilege::Write,
        P::All => crate::catalog::Privilege::All,
    }
}

fn series(name: &str, columns: &[&str], values: Vec<Vec<Value>>) -> Series {
    Series {
        name: name.to_owned(),
        tags: None,
        columns: columns.iter().map(|c| c.to_string()).collect(),
        values,
    }
}

/// The statement's database (or the `db` parameter's), which must exist.
/// The statement's database, which must exist, and its default retention policy.
async fn existing_database(
    node: &Node,
    named: Option<&str>,
    options: &QueryOptions,
) -> Result<(String, String), StatementError> {
    let db = database_of(named, options)?.to_owned();
    let default_policy = node
        .control
        .read(|c| {
            c.catalog
                .databases
                .get(&db)
                .map(|d| d.default_policy.clone())
        })
        .await;
    match default_policy {
        Some(policy) => Ok((db, policy)),
        None => Err(format!("database not found: {db}").into()),
    }
}

/// The `db` parameter of a DELETE or DROP (which name no database), as InfluxDB words
/// its absence.
async fn database_to_delete_from(
    node: &Node,
    options: &QueryOptions,
) -> Result<String, StatementError> {
    let db = options.database.clone().unwrap_or_default();
    if !node
        .control
        .read(|c| c.catalog.databases.contains_key(&db))
        .await
    {
        return Err(format!("database not found: {db}").into());
    }
    Ok(db)
}

fn database_of<'a>(
    named: Option<&'a str>,
    options: &'a QueryOptions,
) -> Result<&'a str, StatementError> {
    named
        .or(options.database.as_deref())
        .filter(|d| !d.is_empty())
        .ok_or_else(|| StatementError::Message("database name required".into()))
}

async fn run(
    node: &Node,
    statement: &Statement,
    options: &QueryOptions,
    limits: QueryLimits,
) -> Result<Vec<Series>, StatementError> {
    let control = &node.control;
    match statement {
        Statement::CreateUser {
            name,
            password,
            admin,
        } => {
            let hash = node.auth.hash_password(password).await?;
            let id = crate::auth::new_id();
            apply_decision(control, |c| c.create_user(id, name, hash, *admin)).await
        }
        Statement::DropUser { name } => apply_decision(control, |c| c.drop_user(name)).await,
        Statement::Grant {
            privilege,
            database,
            user,
        } => {
            let privilege = catalog_privilege(*privilege);
            apply_decision(control, |c| c.grant(user, database, privilege)).await
        }
        Statement::Revoke {
            privilege,
            database,
            user,
        } => {
            let privilege = catalog_privilege(*privilege);
            apply_decision(control, |c| c.revoke(user, database, privilege)).await
        }
        Statement::GrantAdmin { user } | Statement::RevokeAdmin { user } => {
            let admin = matches!(statement, Statement::GrantAdmin { .. });
            apply_decision(control, |c| c.set_admin(user, admin)).await
        }
        Statement::SetPassword { name, password } => {
            let hash = node.auth.hash_password(password).await?;
            apply_decision(control, |c| c.set_password(name, hash)).await
        }
        Statement::ShowGrantsForUser { name } => {
            let rows = control
                .read(|c| {
                    let user = c
                        .catalog
                        .users
                        .get(name)
                        .ok_or(CatalogError::UserNotFound)?;
                    Ok::<_, StatementError>(
                        user.privileges
                            .iter()
                            .map(|p| {
                                vec![
                                    Value::from(p.database.clone()),
                                    Value::from(p.privilege().influx_name()),
                                ]
                            })
                            .collect(),
                    )
                })
                .await?;
            Ok(vec![series("", &["database", "privilege"], rows)])
        }
        Statement::ShowUsers => {
            let rows = control
                .read(|c| {
                    c.catalog
                        .users
                        .values()
                        .map(|u| vec![Value::from(u.name.clone()), Value::from(u.admin)])
                        .collect()
                })
                .await;
            Ok(vec![series("", &["user", "admin"], rows)])
        }
        Statement::CreateDatabase(s) => {
            let policy = s.retention_policy_create.then(|| RetentionPolicySpec {
                name: s
                    .rp_name
                    .clone()
                    .unwrap_or_else(|| crate::catalog::DEFAULT_POLICY.into()),
                duration_nanos: s.duration.unwrap_or(0),
                shard_group_duration_nanos: s.shard_duration.unwrap_or(0),
                replication: s.replication.unwrap_or(1),
            });
            apply_decision(control, |c| c.create_database(&s.name, policy)).await
        }
        Statement::DropDatabase { name } => {
            let shards = control
                .mutate(|c| {
                    let ids: Vec<u64> = c
                        .catalog
                        .shards()
                        .filter(|s| s.database == *name)
                        .map(|s| s.id)
                        .collect();
                    Ok::<_, StatementError>((c.catalog.drop_database(name), ids))
                })
                .await?;
            node.storage.remove_shards(control, &shards).await;
            Ok(Vec::new())
        }
        Statement::ShowDatabases => {
            // A non-admin sees the databases it holds a privilege on.
            let visible = |c: &Catalog, db: &str| {
                options.principal.as_ref().is_none_or(|p| {
                    p.admin || p.privilege(c, db) != crate::catalog::Privilege::NoPrivileges
                })
            };
            let names = control
                .read(|c| {
                    c.catalog
                        .databases
                        .keys()
                        .filter(|db| visible(&c.catalog, db))
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
        Statement::CreateRetentionPolicy(s) => {
            let spec = RetentionPolicySpec {
                name: s.name.clone(),
                duration_nanos: s.duration,
                shard_group_duration_nanos: s.shard_duration.unwrap_or(0),
                replication: s.replication,
            };
            apply_decision(control, |c| c.create_policy(&s.database, spec, s.default)).await
        }
        Statement::AlterRetentionPolicy(s) => {
            let change = RetentionPolicyAltered {
                database: s.database.clone(),
                name: s.name.clone(),
                duration_nanos: s.duration,
                shard_group_duration_nanos: s.shard_duration,
                replication: s.replication,
                make_default: s.default,
            };
            apply_decision(control, |c| c.alter_policy(change)).await
        }
        Statement::DropRetentionPolicy { name, database } => {
            let shards = control
                .mutate(|c| {
                    let ids: Vec<u64> = c
                        .catalog
                        .shards()
                        .filter(|s| s.database == *database && s.retention_policy == *name)
                        .map(|s| s.id)
                        .collect();
                    Ok::<_, StatementError>((c.catalog.drop_policy(database, name)?, ids))
                })
                .await?;
            node.storage.remove_shards(control, &shards).await;
            Ok(Vec::new())
        }
        Statement::DropShard { id } => {
            // As 1.x: dropping a shard that does not exist is not an error.
            let dropped = control
                .mutate(|c| {
                    let shards: Vec<_> = c.catalog.shards().filter(|s| s.id == *id).collect();
                    Ok::<_, StatementError>((c.catalog.drop_shards(&shards), shards))
                })
                .await?;
            let ids: Vec<u64> = dropped.iter().map(|s| s.id).collect();
            node.storage.remove_shards(control, &ids).await;
            Ok(Vec::new())
        }
        Statement::ShowRetentionPolicies { database } => {
            let db = database_of(database.as_deref(), options)?;
            let rows = control
                .read(|c| {
                    let d = c.catalog.databases.get(db).ok_or_else(|| {
                        StatementError::Message(format!("database not found: {db}"))
                    })?;
                    Ok::<_, StatementError>(
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
        Statement::ShowMeasurements(s) => {
            let db = database_of(s.database.as_deref(), options)?;
            let exists = control.read(|c| c.catalog.databases.contains_key(db)).await;
            if !exists {
                return Err(format!("database not found: {db}").into());
            }
            if s.condition.as_ref().is_some_and(mentions_time) {
                return Err("SHOW MEASUREMENTS doesn't support time in WHERE clause"
                    .to_owned()
                    .into());
            }
            let sources: Vec<Source> = s.source.iter().cloned().map(Source::Measurement).collect();
            let scope = show::Scope::database(db);
            // WHERE keeps the measurements with a series its tags match.
            let names: BTreeSet<String> = match &s.condition {
                Some(c) => show::list(&node.storage, &scope, &sources, Some(c), &limits)?
                    .by_measurement
                    .into_keys()
                    .collect(),
                None => show::measurements(&node.storage, &scope, &sources, &limits)?,
            };
            let rows: Vec<Vec<Value>> = names
                .into_iter()
                .skip(s.offset as usize)
                .take(select::limit(s.limit))
                .map(|n| vec![Value::from(n)])
                .collect();
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![series("measurements", &["name"], rows)])
        }
        Statement::ShowSeries(s) => {
            let (db, default_policy) =
                existing_database(node, s.database.as_deref(), options).await?;
            let condition = s.condition.as_ref();
            // 1.x answers from its database-wide index, unless a time condition makes it
            // a query of the shards in range, of the sources' (or the default) policies.
            let scope = match condition.filter(|c| mentions_time(c)) {
                Some(c) => show::Scope::policy(&db, &default_policy)
                    .within(time_range(Some(c), crate::catalog::now_nanos())),
                None => show::Scope::database(&db),
            };
            let listing = show::list(&node.storage, &scope, &s.sources, condition, &limits)?;
            Ok(show::series(&listing, s.offset, s.limit))
        }
        Statement::ShowTagKeys(s) => {
            if s.tag_key.is_some() {
                return Err("SHOW TAG KEYS WITH KEY is not supported yet"
                    .to_owned()
                    .into());
            }
            let (db, _) = existing_database(node, s.database.as_deref(), options).await?;
            let condition = s.condition.as_ref();
            let scope = show::Scope::database(&db)
                .within(time_range(condition, crate::catalog::now_nanos()));
            let listing = show::list(&node.storage, &scope, &s.sources, condition, &limits)?;
            Ok(show::tag_keys(&listing, s.offset, s.limit))
        }
        Statement::ShowTagValues(s) => {
            let (db, _) = existing_database(node, s.database.as_deref(), options).await?;
            let condition = s.condition.as_ref();
            // A source's policy narrows the values, as 1.8 made it do (1.6 lists every
            // policy's).
            let scope = show::Scope {
                named_policies: true,
                ..show::Scope::database(&db)
            }
            .within(time_range(condition, crate::catalog::now_nanos()));
            if condition.is_none() {
                return Ok(show::all_tag_values(
                    &node.storage,
                    &scope,
                    &s.sources,
                    &s.tag_key,
                    s.offset,
                    s.limit,
                    &limits,
                )?);
            }
            let listing = show::list(&node.storage, &scope, &s.sources, condition, &limits)?;
            Ok(show::tag_values(&listing, &s.tag_key, s.offset, s.limit)?)
        }
        Statement::ShowCardinality(s) => {
            let db = database_of(s.database.as_deref(), options)?;
            let default_policy = control
                .read(|c| {
                    c.catalog
                        .databases
                        .get(db)
                        .map(|d| d.default_policy.clone())
                })
                .await;
            Ok(super::cardinality::answer(
                &node.storage,
                db,
                default_policy.as_deref(),
                s,
                &limits,
            )?)
        }
        Statement::ShowFieldKeys(s) => {
            let (db, default_policy) =
                existing_database(node, s.database.as_deref(), options).await?;
            let scope = show::Scope::policy(&db, &default_policy);
            let listing = show::list(&node.storage, &scope, &s.sources, None, &limits)?;
            Ok(show::field_keys(&listing, s.offset, s.limit))
        }
        Statement::ShowShards => {
            let catalog: Catalog = control.read(|c| c.catalog.clone()).await;
            let mut out = Vec::new();
            for (name, db) in &catalog.databases {
                let mut shards: Vec<_> = db.shards.iter().collect();
                // 1.x lists them by policy (in creation order), then by time.
                shards.sort_by_key(|s| {
                    (db.policies.get_index_of(&s.retention_policy), s.start_nanos)
                });
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
        Statement::Select(s) => {
            // What a SELECT reads of the catalog: its databases' policies. Shards, users and
            // tokens, which grow with the node, are not copied for every query.
            let catalog: Catalog = control
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
                            };
                            (name.clone(), policies)
                        })
                        .collect(),
                    ..Catalog::default()
                })
                .await;
            let ctx = SelectContext {
                storage: &node.storage,
                catalog: &catalog,
                database: options.database.as_deref().filter(|d| !d.is_empty()),
                now: crate::catalog::now_nanos(),
                epoch: options.epoch,
                zone: s.location.as_deref().map(Zone::named).transpose()?,
                limits,
            };
            Ok(select::execute(s, &ctx)?)
        }
        Statement::Delete(s) => {
            let db = database_to_delete_from(node, options).await?;
            super::delete::delete(&node.storage, &db, s, crate::catalog::now_nanos()).await?;
            Ok(Vec::new())
        }
        Statement::DropSeries(s) => {
            let db = database_to_delete_from(node, options).await?;
            super::delete::drop_series(&node.storage, &db, s).await?;
            Ok(Vec::new())
        }
        Statement::DropMeasurement { name } => {
            let db = database_to_delete_from(node, options).await?;
            super::delete::drop_measurement(&node.storage, &db, name).await?;
            Ok(Vec::new())
        }
        other => Err(format!("statement is not supported yet: {other}").into()),
    }
}
