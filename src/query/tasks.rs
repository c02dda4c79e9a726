//! The queries running on this node, as 1.x's task manager keeps them: each `/query`
//! request is one task from the moment it is authorized until its answer is built, with an
//! id counted from 1 (never reused while the node runs), for `SHOW QUERIES` to list and
//! `KILL QUERY` to stop.

use super::error::QueryError;
use super::format::go_duration;
use super::limits::Interrupt;
use super::parser::ast::Statement;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

#[derive(Default)]
pub(crate) struct QueryTasks {
    table: Mutex<TaskTable>,
}

#[derive(Default)]
struct TaskTable {
    /// The id the next task gets, less one (ids start at 1, as in 1.x).
    last_id: u64,
    running: BTreeMap<u64, Task>,
    /// Tasks ended, and the nanoseconds they ran (SHOW STATS' `queryExecutor`).
    finished: u64,
    finished_ns: u64,
}

#[derive(Clone)]
struct Task {
    /// The query's statements (see [`listed_text`]).
    query: Arc<Vec<Statement>>,
    database: String,
    started: Instant,
    interrupt: Interrupt,
    killed: bool,
}

/// A task's query as SHOW QUERIES lists it, 1.x's text: its statements normalized, joined
/// by `;\n`. A task keeps them parsed, put in words only when SHOW QUERIES asks:
/// formatting every statement of every query was a tenth of a short query's work.
fn listed_text(statements: &[Statement]) -> String {
    statements
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(";\n")
}

/// A task's place in the table: dropping it (the query answered, failed or was abandoned)
/// takes the task out.
#[must_use]
pub(crate) struct Attached {
    tasks: Arc<QueryTasks>,
    id: u64,
}

impl Drop for Attached {
    fn drop(&mut self) {
        let mut table = self.tasks.table();
        if let Some(task) = table.running.remove(&self.id) {
            table.finished += 1;
            let ns = task.started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            table.finished_ns = table.finished_ns.saturating_add(ns);
        }
    }
}

impl QueryTasks {
    fn table(&self) -> MutexGuard<'_, TaskTable> {
        // The table holds plain values that no panic leaves half-changed.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists a query as running until the returned guard is dropped.
    pub(crate) fn attach(
        self: &Arc<Self>,
        query: Arc<Vec<Statement>>,
        database: String,
        interrupt: Interrupt,
    ) -> Attached {
        let mut table = self.table();
        table.last_id += 1;
        let id = table.last_id;
        table.running.insert(
            id,
            Task {
                query,
                database,
                started: Instant::now(),
                interrupt,
                killed: false,
            },
        );
        Attached {
            tasks: self.clone(),
            id,
        }
    }

    /// `KILL QUERY id`: the query stops at its next check and answers `query interrupted`;
    /// it is listed as `killed` until it has stopped.
    pub(crate) fn kill(&self, id: u64) -> Result<(), QueryError> {
        let mut table = self.table();
        let task = table
            .running
            .get_mut(&id)
            .ok_or(QueryError::NoSuchQuery(id))?;
        task.interrupt.raise();
        task.killed = true;
        Ok(())
    }

    /// SHOW STATS' `queryExecutor` row: queriesActive, queriesExecuted, queriesFinished,
    /// queryDurationNs (of the finished ones), recoveredPanics.
    pub(crate) fn stats(&self) -> Vec<Value> {
        let table = self.table();
        vec![
            Value::from(table.running.len()),
            Value::from(table.last_id),
            Value::from(table.finished),
            Value::from(table.finished_ns),
            Value::from(0),
        ]
    }

    /// `SHOW QUERIES`' rows (qid, query, database, duration, status), by id. The duration is
    /// truncated as 1.x truncates it: to seconds past one second, to milliseconds past one
    /// millisecond, else to microseconds.
    pub(crate) fn rows(&self) -> Vec<Vec<Value>> {
        let now = Instant::now();
        // Copied out, so that the queries are put in words without holding up every
        // query's start and end on the table.
        let running: Vec<(u64, Task)> = self
            .table()
            .running
            .iter()
            .map(|(id, task)| (*id, task.clone()))
            .collect();
        running
            .into_iter()
            .map(|(id, task)| {
                let Task {
                    query,
                    database,
                    started,
                    killed,
                    ..
                } = task;
                let ns = now.duration_since(started).as_nanos().min(i64::MAX as u128) as i64;
                let unit = match ns {
                    1_000_000_000.. => 1_000_000_000,
                    1_000_000.. => 1_000_000,
                    1_000.. => 1_000,
                    _ => 1,
                };
                vec![
                    Value::from(id),
                    Value::from(listed_text(&query)),
                    Value::from(database),
                    Value::from(go_duration(ns - ns % unit)),
                    Value::from(if killed { "killed" } else { "running" }),
                ]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_listed_while_attached_and_a_killed_one_is_interrupted() {
        let tasks = Arc::new(QueryTasks::default());
        let interrupt = Interrupt::default();
        let query = |text: &str| Arc::new(crate::query::parser::parse_query(text).unwrap());
        let first = tasks.attach(query("SHOW QUERIES"), "db".into(), interrupt.clone());
        let second = tasks.attach(
            query("SELECT v FROM m; SHOW DATABASES"),
            String::new(),
            Interrupt::default(),
        );
        let rows = tasks.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], Value::from("SHOW QUERIES"));
        assert_eq!(rows[1][1], Value::from("SELECT v FROM m;\nSHOW DATABASES"));
        assert_eq!(
            (&rows[0][0], &rows[0][4]),
            (&Value::from(1), &Value::from("running"))
        );
        tasks.kill(1).unwrap();
        assert_eq!(tasks.rows()[0][4], Value::from("killed"));
        assert!(interrupt.is_raised());
        drop(first);
        assert_eq!(
            tasks.kill(1).unwrap_err().to_string(),
            "no such query id: 1"
        );
        drop(second);
        assert!(tasks.rows().is_empty());
        let third = tasks.attach(query("SHOW USERS"), String::new(), Interrupt::default());
        assert_eq!(tasks.rows()[0][0], Value::from(3), "ids are not reused");
        drop(third);
    }
}
