//! Runs a query: parses it, authorizes it, and hands each statement to its family's
//! module under [`super::statements`].

use super::error::QueryError;
use super::limits::QueryLimits;
use super::parser::ast::Statement;
use super::parser::ParseError;
use super::result::{Series, StatementResult};
use super::statements::{
    cardinality, continuous, database, delete, explain, retention, select, server, shard, show,
    subscription, user, Context,
};
use super::zone::Zone;
use crate::auth::Principal;
use crate::node::Node;

pub(crate) struct QueryOptions {
    /// The `db` parameter: the database of statements that name none.
    pub database: Option<String>,
    /// The `rp` parameter: the retention policy of measurements that name none (else
    /// their database's default), as 1.x's normalization sets it.
    pub retention_policy: Option<String>,
    /// Nanoseconds per unit of `epoch=`, or None for RFC 3339 times.
    pub epoch: Option<i64>,
    /// The authenticated caller (None when authentication is off).
    pub principal: Option<Principal>,
    /// Bound parameters (`params=`), for `$name` in the query.
    pub params: std::collections::HashMap<String, super::parser::ParamValue>,
    /// What the query may use; its deadline counts from the request's arrival, so that
    /// time spent waiting for a query thread counts too.
    pub limits: QueryLimits,
    /// Sent by GET: a writing statement's result carries 1.x's warning.
    pub read_only: bool,
}

/// Nanoseconds per unit of an `epoch=` value.
pub(crate) fn epoch_unit(s: &str) -> Option<i64> {
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

/// Parses and runs a query; a parse error (400) or a missing privilege (403) refuses the
/// whole query, a statement error is that statement's result and stops the ones after it,
/// as in InfluxDB.
pub(crate) async fn execute(
    node: &Node,
    text: &str,
    options: &QueryOptions,
) -> Result<Vec<StatementResult>, QueryError> {
    // Always with the (maybe empty) map: a `$name` nobody bound is a parse error, as in 1.x.
    let statements = super::parsed::parsed(text, &options.params)?;
    // A first attempt may give up half-way and start over: only a query that changes
    // nothing can, and never an EXPLAIN (ANALYZE's figures are those of one whole run).
    let inline = |s: &Statement| only_reads(s) && !matches!(s, Statement::Explain { .. });
    if options.limits.is_inline_attempt() && !statements.iter().all(inline) {
        return Err(QueryError::OverBudget);
    }
    // InfluxDB refuses an unknown tz() zone while parsing, before anything runs.
    for s in statements.iter() {
        let (Statement::Select(select)
        | Statement::Explain {
            statement: select, ..
        }) = s
        else {
            continue;
        };
        if let Some(name) = &select.location {
            Zone::named(name).map_err(|e| ParseError::plain(e.to_string()))?;
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
    // Listed for SHOW QUERIES (itself included) and KILL QUERY until answered, as in 1.x.
    let _listed = node.queries.tasks().attach(
        statements.clone(),
        options.database.clone().unwrap_or_default(),
        limits.interrupt(),
    );
    let mut results = Vec::with_capacity(statements.len());
    for (id, statement) in statements.iter().enumerate() {
        // A query past its deadline answers the timeout for the statement it reached.
        let outcome = match limits.check_deadline() {
            Ok(()) => run(node, statement, options, limits.clone()).await,
            Err(e) => Err(e),
        };
        match outcome {
            Ok(series) => {
                let messages = match options.read_only && super::read_only::may_warn(statement) {
                    false => Vec::new(),
                    true => node
                        .control
                        .read(|c| {
                            super::read_only::warning(
                                &c.catalog,
                                statement,
                                options.database.as_deref(),
                                options.retention_policy.as_deref(),
                            )
                        })
                        .await
                        .into_iter()
                        .collect(),
                };
                results.push(StatementResult {
                    statement_id: id,
                    series,
                    messages,
                    error: None,
                })
            }
            Err(QueryError::OverBudget) => return Err(QueryError::OverBudget),
            Err(e) => {
                results.push(StatementResult::error(id, e.to_string()));
                break;
            }
        }
    }
    Ok(results)
}

/// Whether running `statement` leaves everything as it was (so that it may be run again).
fn only_reads(statement: &Statement) -> bool {
    match statement {
        Statement::Select(select) => select.target.is_none(),
        // Even of a SELECT ... INTO: 1.x's EXPLAIN ANALYZE writes nothing.
        Statement::Explain { .. } => true,
        Statement::ShowDatabases
        | Statement::ShowMeasurements(_)
        | Statement::ShowSeries(_)
        | Statement::ShowTagKeys(_)
        | Statement::ShowTagValues(_)
        | Statement::ShowFieldKeys(_)
        | Statement::ShowCardinality(_)
        | Statement::ShowRetentionPolicies { .. }
        | Statement::ShowShards
        | Statement::ShowShardGroups
        | Statement::ShowUsers
        | Statement::ShowQueries
        | Statement::ShowContinuousQueries
        | Statement::ShowSubscriptions
        | Statement::ShowGrantsForUser { .. }
        | Statement::ShowDiagnostics { .. }
        | Statement::ShowStats { .. } => true,
        _ => false,
    }
}

async fn run(
    node: &Node,
    statement: &Statement,
    options: &QueryOptions,
    limits: QueryLimits,
) -> Result<Vec<Series>, QueryError> {
    let cx = Context {
        control: &node.control,
        storage: &node.storage,
        auth: &node.auth,
        database: options.database.as_deref(),
        retention_policy: options.retention_policy.as_deref(),
        epoch: options.epoch,
        principal: options.principal.as_ref(),
        limits,
        tasks: node.queries.tasks(),
        config: &node.config,
        started: node.started,
        subscriber: &node.subscriber,
    };
    match statement {
        Statement::CreateUser {
            name,
            password,
            admin,
        } => user::create(&cx, name, password, *admin).await,
        Statement::DropUser { name } => user::drop(&cx, name).await,
        Statement::Grant {
            privilege,
            database,
            user,
        } => user::grant(&cx, *privilege, database, user).await,
        Statement::Revoke {
            privilege,
            database,
            user,
        } => user::revoke(&cx, *privilege, database, user).await,
        Statement::GrantAdmin { user } => user::set_admin(&cx, user, true).await,
        Statement::RevokeAdmin { user } => user::set_admin(&cx, user, false).await,
        Statement::SetPassword { name, password } => user::set_password(&cx, name, password).await,
        Statement::ShowGrantsForUser { name } => user::show_grants(&cx, name).await,
        Statement::ShowUsers => user::show(&cx).await,
        Statement::CreateDatabase(s) => database::create(&cx, s).await,
        Statement::DropDatabase { name } => database::drop(&cx, name).await,
        Statement::ShowDatabases => database::show(&cx).await,
        Statement::CreateRetentionPolicy(s) => retention::create(&cx, s).await,
        Statement::AlterRetentionPolicy(s) => retention::alter(&cx, s).await,
        Statement::DropRetentionPolicy { name, database } => {
            retention::drop(&cx, database, name).await
        }
        Statement::ShowRetentionPolicies { database } => {
            retention::show(&cx, database.as_deref()).await
        }
        Statement::DropShard { id } => shard::drop(&cx, *id).await,
        Statement::ShowShards => shard::show(&cx).await,
        Statement::ShowShardGroups => shard::show_groups(&cx).await,
        Statement::CreateSubscription(s) => subscription::create(&cx, s).await,
        Statement::DropSubscription {
            name,
            database,
            retention_policy,
        } => subscription::drop(&cx, database, retention_policy, name).await,
        Statement::ShowSubscriptions => subscription::show(&cx).await,
        Statement::ShowMeasurements(s) => show::measurements(&cx, s).await,
        Statement::ShowSeries(s) => show::series(&cx, s).await,
        Statement::ShowTagKeys(s) => show::tag_keys(&cx, s).await,
        Statement::ShowTagValues(s) => show::tag_values(&cx, s).await,
        Statement::ShowFieldKeys(s) => show::field_keys(&cx, s).await,
        Statement::ShowCardinality(s) => cardinality::show(&cx, s).await,
        Statement::Select(s) => match cx.retention_policy {
            Some(policy) => {
                let mut s = s.clone();
                with_policy(&mut s, policy);
                select::run(&cx, &s).await
            }
            None => select::run(&cx, s).await,
        },
        Statement::Explain { analyze, statement } => match cx.retention_policy {
            Some(policy) => {
                let mut s = statement.as_ref().clone();
                with_policy(&mut s, policy);
                explain::run(&cx, &s, *analyze).await
            }
            None => explain::run(&cx, statement, *analyze).await,
        },
        Statement::CreateContinuousQuery(s) => continuous::create(&cx, s).await,
        Statement::DropContinuousQuery { name, database } => {
            continuous::drop(&cx, database, name).await
        }
        Statement::ShowContinuousQueries => continuous::show(&cx).await,
        Statement::ShowQueries => server::show_queries(&cx),
        Statement::KillQuery { id, host: _ } => server::kill_query(&cx, *id),
        Statement::ShowStats { module } => server::show_stats(&cx, module.as_deref()).await,
        Statement::ShowDiagnostics { module } => server::show_diagnostics(&cx, module.as_deref()),
        Statement::Delete(s) => delete::delete(&cx, s).await,
        Statement::DropSeries(s) => delete::drop_series(&cx, s).await,
        Statement::DropMeasurement { name } => delete::drop_measurement(&cx, name).await,
    }
}

/// `rp=` as 1.x's normalization applies it: the policy of every measurement (the target's
/// and subqueries' too) that names none, whatever its database.
fn with_policy(s: &mut super::parser::ast::SelectStatement, policy: &str) {
    use super::parser::ast::Source;
    if let Some(t) = &mut s.target {
        t.retention_policy.get_or_insert_with(|| policy.to_owned());
    }
    for source in &mut s.sources {
        match source {
            Source::Measurement(m) => {
                m.retention_policy.get_or_insert_with(|| policy.to_owned());
            }
            Source::Subquery(inner) => with_policy(inner, policy),
        }
    }
}
