//! Continuous queries run on schedule, as 1.x's `continuous_querier` service runs them:
//! every run interval, each query (databases and queries in creation order) whose next
//! run is due is run over the windows 1.x computes for `now` (RESAMPLE EVERY and FOR,
//! the GROUP BY offset, a tz() zone), its SELECT ... INTO writing the results.
//!
//! Unlike 1.x, which keeps the last run times in memory (a restart forgets them and
//! skips the windows it was down for), each run's time is an event of the control log,
//! appended once the run's writes are acknowledged: a restart resumes from it, running
//! the windows it missed once (a crash between the writes and the event repeats that
//! run, whose points overwrite themselves).

use super::aggregate::time_offset;
use super::error::QueryError;
use super::limits::QueryLimits;
use super::parser::ast::{BinaryOp, CreateContinuousQueryStatement, Expr, Statement};
use super::statements::{select, Context};
use super::zone::Zone;
use crate::node::Node;
use std::sync::Arc;
use std::time::Duration;

/// One run of a continuous query: the last run time to record, and the time range to
/// compute (none when 1.x finds no window to compute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    pub(crate) last_run: i64,
    pub(crate) range: Option<(i64, i64)>,
}

/// The run due at `now` of `cq`, last run at `last_run` (None: never), or None when it
/// is not due, as 1.x's `shouldRunContinuousQuery` and `ExecuteContinuousQuery` decide.
pub(crate) fn due(
    cq: &CreateContinuousQueryStatement,
    last_run: Option<i64>,
    now: i64,
) -> Result<Option<Run>, QueryError> {
    let interval = cq.source.group_by_interval().map_err(QueryError::invalid)?;
    if interval == 0 {
        return Ok(None);
    }
    // 1.x refuses a raw query when it is due, each time, and records no run.
    fn has_call(e: &Expr) -> bool {
        match e {
            Expr::Call(_) | Expr::Distinct(_) => true,
            Expr::Binary(b) => has_call(&b.lhs) || has_call(&b.rhs),
            Expr::Paren(inner) => has_call(inner),
            _ => false,
        }
    }
    if !cq.source.fields.iter().any(|f| has_call(&f.expr)) {
        return Err(QueryError::invalid(
            "continuous queries must be aggregate queries",
        ));
    }
    let offset = time_offset(&cq.source);
    let zone = cq.source.location.as_deref().map(Zone::named).transpose()?;
    let zone_offset = |t: i64| zone.as_ref().map_or(0, |z| z.offset_nanos(t));
    let mut every = cq.resample_every.filter(|d| *d != 0).unwrap_or(interval);
    let next_run = match last_run {
        Some(last) => {
            let start_offset = zone_offset(last - 1);
            let mut next = last + every;
            let end_offset = zone_offset(next - 1);
            if start_offset != end_offset {
                let diff = start_offset - end_offset;
                if diff.abs() < every {
                    next += diff;
                }
            }
            if next > now {
                return Ok(None);
            }
            next
        }
        None => now,
    };
    let truncate = |t: i64, d: i64| {
        let offset = zone_offset(t);
        let mut dt = (t + offset) % d;
        if dt < 0 {
            dt += d;
        }
        let mut out = t - dt;
        let adjusted = zone_offset(out);
        if adjusted != offset {
            let diff = offset - adjusted;
            if diff.abs() < d {
                out += diff;
            }
        }
        out
    };
    let last_run = truncate(now - offset, every) + offset;
    let resample_for = match cq.resample_for.filter(|d| *d != 0) {
        Some(d) => d,
        None if interval < every => every,
        None => interval,
    };
    every = every.min(interval);
    let start = truncate(next_run + interval - resample_for - offset - 1, interval) + offset;
    let end = truncate(now + interval - every - offset, interval) + offset;
    Ok(Some(Run {
        last_run,
        range: (end > start).then_some((start, end)),
    }))
}

/// Runs the continuous queries due now, then again every `every`, for good.
pub(crate) async fn run_on_schedule(node: Arc<Node>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        run_due(&node, crate::clock::now_nanos()).await;
    }
}

/// Runs every continuous query due at `now`, recording each run.
pub(crate) async fn run_due(node: &Node, now: i64) {
    let queries: Vec<(String, String, String, i64)> = node
        .control
        .read(|c| {
            c.catalog
                .databases
                .iter()
                .flat_map(|(db, d)| {
                    d.continuous_queries.values().map(|cq| {
                        (
                            db.clone(),
                            cq.name.clone(),
                            cq.query.clone(),
                            cq.last_run_nanos,
                        )
                    })
                })
                .collect()
        })
        .await;
    for (database, name, query, last_run) in queries {
        let last_run = (last_run != 0).then_some(last_run);
        match run_one(node, &database, &query, last_run, now).await {
            Ok(None) => continue,
            Ok(Some(run)) => {
                let recorded = node
                    .control
                    .mutate(|c| {
                        Ok::<_, QueryError>((
                            c.catalog.continuous_query_ran(&database, &name, run),
                            (),
                        ))
                    })
                    .await;
                if let Err(e) = recorded {
                    tracing::warn!(database, name, error = %e, "could not record a continuous query's run");
                }
            }
            Err((run, e)) => {
                tracing::warn!(database, name, error = %e, "continuous query failed");
                // As 1.x, a failed run is not retried: its next run comes after it.
                if let Some(run) = run {
                    let _ = node
                        .control
                        .mutate(|c| {
                            Ok::<_, QueryError>((
                                c.catalog.continuous_query_ran(&database, &name, run),
                                (),
                            ))
                        })
                        .await;
                }
            }
        }
    }
}

/// Runs one query if due: the last run time to record, or the error (with that time,
/// once it was known).
async fn run_one(
    node: &Node,
    database: &str,
    query: &str,
    last_run: Option<i64>,
    now: i64,
) -> Result<Option<i64>, (Option<i64>, QueryError)> {
    let parsed = super::parser::parse_query(query).map(|mut s| (s.len() == 1).then(|| s.remove(0)));
    let cq = match parsed {
        Ok(Some(Statement::CreateContinuousQuery(cq))) => cq,
        Ok(_) => {
            return Err((
                None,
                QueryError::invalid("query isn't a valid continuous query"),
            ))
        }
        Err(e) => return Err((None, e.into())),
    };
    let Some(run) = due(&cq, last_run, now).map_err(|e| (None, e))? else {
        return Ok(None);
    };
    let Some((start, end)) = run.range else {
        return Ok(Some(run.last_run));
    };
    let mut select = *cq.source;
    let time = |op, t| Expr::binary(op, Expr::var("time"), Expr::Integer(t));
    let range = Expr::binary(
        BinaryOp::And,
        time(BinaryOp::Gte, start),
        time(BinaryOp::Lt, end),
    );
    select.condition = Some(match select.condition.take().and_then(without_time) {
        Some(rest) => Expr::binary(BinaryOp::And, rest, range),
        None => range,
    });
    let cx = Context {
        control: &node.control,
        storage: &node.storage,
        auth: &node.auth,
        database: Some(database),
        retention_policy: None,
        epoch: None,
        principal: None,
        limits: QueryLimits::starting_now(&node.config, node.queries.stopping()),
        tasks: node.queries.tasks(),
        config: &node.config,
        started: node.started,
        subscriber: &node.subscriber,
    };
    select::run(&cx, &select)
        .await
        .map_err(|e| (Some(run.last_run), e))?;
    Ok(Some(run.last_run))
}

/// A condition without its comparisons of `time` (1.x replaces a continuous query's
/// time range with the run's): None if nothing is left.
fn without_time(e: Expr) -> Option<Expr> {
    match e {
        Expr::Binary(b) if b.op == BinaryOp::And => {
            let b = *b;
            match (without_time(b.lhs), without_time(b.rhs)) {
                (Some(l), Some(r)) => Some(Expr::binary(BinaryOp::And, l, r)),
                (l, r) => l.or(r),
            }
        }
        Expr::Paren(inner) => without_time(*inner).map(|e| Expr::Paren(Box::new(e))),
        Expr::Binary(b)
            if matches!(&b.lhs, Expr::VarRef(v) if v.name.eq_ignore_ascii_case("time"))
                || matches!(&b.rhs, Expr::VarRef(v) if v.name.eq_ignore_ascii_case("time")) =>
        {
            None
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::parser::parse_statement;

    const MINUTE: i64 = 60_000_000_000;
    const HOUR: i64 = 60 * MINUTE;

    fn cq(text: &str) -> CreateContinuousQueryStatement {
        match parse_statement(text).unwrap() {
            Statement::CreateContinuousQuery(cq) => cq,
            other => panic!("not a CQ: {other}"),
        }
    }

    const PLAIN: &str =
        "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(10m) END";

    #[test]
    fn a_first_run_only_sets_the_clock_and_the_next_computes_the_window_that_ended() {
        let q = cq(PLAIN);
        let run = due(&q, None, 100 * HOUR + 3 * MINUTE).unwrap().unwrap();
        assert_eq!(run.last_run, 100 * HOUR);
        assert_eq!(run.range, None);
        let run = due(&q, Some(run.last_run), 100 * HOUR + 10 * MINUTE + 1)
            .unwrap()
            .unwrap();
        assert_eq!(run.last_run, 100 * HOUR + 10 * MINUTE);
        assert_eq!(run.range, Some((100 * HOUR, 100 * HOUR + 10 * MINUTE)));
    }

    #[test]
    fn the_next_run_waits_for_the_next_window_and_catches_up_on_missed_ones() {
        let q = cq(PLAIN);
        assert_eq!(
            due(&q, Some(100 * HOUR), 100 * HOUR + 9 * MINUTE).unwrap(),
            None
        );
        let run = due(&q, Some(100 * HOUR), 100 * HOUR + 10 * MINUTE)
            .unwrap()
            .unwrap();
        assert_eq!(run.range, Some((100 * HOUR, 100 * HOUR + 10 * MINUTE)));
        // Down for half an hour: one run over the three windows missed.
        let run = due(&q, Some(100 * HOUR), 100 * HOUR + 31 * MINUTE)
            .unwrap()
            .unwrap();
        assert_eq!(run.last_run, 100 * HOUR + 30 * MINUTE);
        assert_eq!(run.range, Some((100 * HOUR, 100 * HOUR + 30 * MINUTE)));
    }

    #[test]
    fn resample_every_and_for_widen_the_range_as_in_1x() {
        let q = cq("CREATE CONTINUOUS QUERY c ON db RESAMPLE EVERY 5m FOR 30m BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(10m) END");
        let now = 100 * HOUR + 7 * MINUTE;
        let run = due(&q, None, now).unwrap().unwrap();
        assert_eq!(run.last_run, 100 * HOUR + 5 * MINUTE);
        // Up to the window that holds now, FOR back from the next run's window.
        assert_eq!(
            run.range,
            Some((100 * HOUR - 20 * MINUTE, 100 * HOUR + 10 * MINUTE))
        );
        assert_eq!(
            due(&q, Some(run.last_run), 100 * HOUR + 9 * MINUTE).unwrap(),
            None
        );
    }

    #[test]
    fn an_offset_moves_the_windows() {
        let q = cq("CREATE CONTINUOUS QUERY c ON db BEGIN SELECT mean(v) INTO m2 FROM m GROUP BY time(1h, 15m) END");
        let run = due(&q, None, 100 * HOUR + 20 * MINUTE).unwrap().unwrap();
        assert_eq!(run.last_run, 100 * HOUR + 15 * MINUTE);
        assert_eq!(due(&q, Some(run.last_run), 101 * HOUR).unwrap(), None);
        let run = due(&q, Some(run.last_run), 101 * HOUR + 15 * MINUTE)
            .unwrap()
            .unwrap();
        assert_eq!(
            run.range,
            Some((100 * HOUR + 15 * MINUTE, 101 * HOUR + 15 * MINUTE))
        );
    }

    #[test]
    fn a_raw_query_is_refused_when_it_runs() {
        let q = cq(
            "CREATE CONTINUOUS QUERY c ON db BEGIN SELECT v INTO m2 FROM m GROUP BY time(10m) END",
        );
        assert_eq!(
            due(&q, None, HOUR).unwrap_err().to_string(),
            "continuous queries must be aggregate queries"
        );
    }

    #[test]
    fn time_conditions_are_replaced() {
        let Statement::Select(s) =
            parse_statement("SELECT v FROM m WHERE time > 5 AND (host = 'a' AND time < 9)")
                .unwrap()
        else {
            unreachable!()
        };
        let rest = without_time(s.condition.unwrap()).unwrap();
        assert_eq!(rest.to_string(), "(host = 'a')");
    }
}
