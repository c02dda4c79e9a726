//! The migrations as a fold of their events: each job's parameters, its plan per source
//! backend (what that backend holds and where each measurement goes), how far each
//! measurement under way has been copied, and which are done. No I/O: replay, snapshots,
//! `/migrate/stats` and the job summaries all read this.

use crate::proto::{
    MigrationJob, MigrationPlanned, MigrationProgress, MigrationStarted, MigrationUnitDone,
};
use std::collections::BTreeMap;

/// Finished jobs kept in the state (and its snapshots) besides those under way.
const FINISHED_KEPT: usize = 8;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    pub jobs: BTreeMap<u64, Job>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub started: MigrationStarted,
    pub started_at: i64,
    /// By source URL, once planned.
    pub sources: BTreeMap<String, Source>,
    pub finished_at: Option<i64>,
}

/// One source backend of a job: its plan, flattened into units, and their progress.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub plan: MigrationPlanned,
    pub units: Vec<Unit>,
    /// Units under way: how far each has come.
    pub progress: BTreeMap<u32, MigrationProgress>,
    pub done: BTreeMap<u32, MigrationUnitDone>,
}

/// One measurement of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub db: String,
    pub measurement: String,
    /// Empty: in place, nothing to do.
    pub destinations: Vec<String>,
}

/// influx-proxy's `MigrateInfo`: one source backend's counters in `/migrate/stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrateInfo {
    pub database_total: u64,
    pub database_done: u64,
    pub measurement_total: u64,
    pub measurement_done: u64,
    pub migrate_count: u64,
    pub inplace_count: u64,
}

/// A job as `/proxy/migrations` (and `ctl proxy migrate-status`) shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobSummary {
    pub id: u64,
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub operation: String,
    pub circle_id: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_circle_id: Option<u32>,
    pub databases: Vec<String>,
    pub cpus: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_unix_nanos: Option<i64>,
    pub ha_addrs: Vec<String>,
    /// `running` or `finished`.
    pub state: &'static str,
    pub started_at_unix_nanos: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at_unix_nanos: Option<i64>,
    /// Over every source planned so far.
    pub measurements: u64,
    pub to_migrate: u64,
    pub migrated: u64,
    pub failed: u64,
    pub points: u64,
    pub sources: Vec<SourceSummary>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceSummary {
    pub url: String,
    pub circle_id: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub skipped: String,
    pub measurements: u64,
    pub to_migrate: u64,
    pub migrated: u64,
    pub failed: u64,
    pub points: u64,
    pub under_way: Vec<UnitUnderWay>,
    pub errors: Vec<UnitError>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitUnderWay {
    pub db: String,
    pub measurement: String,
    pub rp: String,
    pub upto_unix_nanos: i64,
    pub points: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UnitError {
    pub db: String,
    pub measurement: String,
    pub error: String,
}

impl Job {
    pub fn summary(&self) -> JobSummary {
        let s = &self.started;
        let sources: Vec<SourceSummary> = self
            .sources
            .iter()
            .map(|(url, source)| {
                let to_migrate = source
                    .units
                    .iter()
                    .filter(|u| !u.destinations.is_empty())
                    .count() as u64;
                let failed = source.failed().count() as u64;
                SourceSummary {
                    url: url.clone(),
                    circle_id: source.plan.circle_id,
                    skipped: source.plan.skipped.clone(),
                    measurements: source.units.len() as u64,
                    to_migrate,
                    migrated: source.done.len() as u64 - failed,
                    failed,
                    points: source.points(),
                    under_way: source
                        .progress
                        .iter()
                        .map(|(u, p)| UnitUnderWay {
                            db: source.units[*u as usize].db.clone(),
                            measurement: source.units[*u as usize].measurement.clone(),
                            rp: p.rp.clone(),
                            upto_unix_nanos: p.upto_unix_nanos,
                            points: p.points,
                        })
                        .collect(),
                    errors: source
                        .failed()
                        .map(|(u, d)| UnitError {
                            db: u.db.clone(),
                            measurement: u.measurement.clone(),
                            error: d.error.clone(),
                        })
                        .collect(),
                }
            })
            .collect();
        let sum = |f: fn(&SourceSummary) -> u64| sources.iter().map(f).sum::<u64>();
        JobSummary {
            id: s.job,
            kind: s.kind.clone(),
            operation: s.operation.clone(),
            circle_id: s.circle_id,
            to_circle_id: (s.kind == "recovery").then_some(s.to_circle_id),
            databases: s.databases.clone(),
            cpus: s.cpus,
            since_unix_nanos: (s.since_unix_nanos != 0).then_some(s.since_unix_nanos),
            ha_addrs: s.ha_addrs.clone(),
            state: match self.finished_at {
                Some(_) => "finished",
                None => "running",
            },
            started_at_unix_nanos: self.started_at,
            finished_at_unix_nanos: self.finished_at,
            measurements: sum(|s| s.measurements),
            to_migrate: sum(|s| s.to_migrate),
            migrated: sum(|s| s.migrated),
            failed: sum(|s| s.failed),
            points: sum(|s| s.points),
            sources,
        }
    }
}

impl Source {
    fn new(plan: MigrationPlanned) -> Source {
        let units = plan
            .databases
            .iter()
            .flat_map(|d| {
                d.measurements.iter().map(|m| Unit {
                    db: d.name.clone(),
                    measurement: m.name.clone(),
                    destinations: m.destinations.clone(),
                })
            })
            .collect();
        Source {
            plan,
            units,
            progress: BTreeMap::new(),
            done: BTreeMap::new(),
        }
    }

    /// The units with somewhere to go that are not done, in plan order.
    pub fn to_do(&self) -> Vec<u32> {
        (0..self.units.len() as u32)
            .filter(|u| {
                !self.units[*u as usize].destinations.is_empty() && !self.done.contains_key(u)
            })
            .collect()
    }

    pub fn info(&self) -> MigrateInfo {
        let inplace = self
            .units
            .iter()
            .filter(|u| u.destinations.is_empty())
            .count() as u64;
        let mut database_done = 0;
        let mut at = 0usize;
        for d in &self.plan.databases {
            let range = at as u32..(at + d.measurements.len()) as u32;
            at += d.measurements.len();
            if range.clone().all(|u| {
                self.units[u as usize].destinations.is_empty() || self.done.contains_key(&u)
            }) {
                database_done += 1;
            }
        }
        MigrateInfo {
            database_total: self.plan.databases.len() as u64,
            database_done,
            measurement_total: self.units.len() as u64,
            measurement_done: inplace + self.done.len() as u64,
            migrate_count: self.done.len() as u64,
            inplace_count: inplace,
        }
    }

    /// Points copied, of the units done and under way.
    pub fn points(&self) -> u64 {
        self.done.values().map(|d| d.points).sum::<u64>()
            + self.progress.values().map(|p| p.points).sum::<u64>()
    }

    pub fn failed(&self) -> impl Iterator<Item = (&Unit, &MigrationUnitDone)> {
        self.done
            .iter()
            .filter(|(_, d)| !d.error.is_empty())
            .map(|(u, d)| (&self.units[*u as usize], d))
    }
}

impl Ledger {
    pub fn started(&mut self, at: i64, s: &MigrationStarted) {
        self.jobs.entry(s.job).or_insert_with(|| Job {
            started: s.clone(),
            started_at: at,
            sources: BTreeMap::new(),
            finished_at: None,
        });
        // The oldest finished jobs go: a long-lived proxy keeps a bounded history.
        let finished: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.finished_at.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in finished
            .iter()
            .take(finished.len().saturating_sub(FINISHED_KEPT))
        {
            self.jobs.remove(id);
        }
    }

    pub fn planned(&mut self, p: &MigrationPlanned) {
        if let Some(job) = self.jobs.get_mut(&p.job) {
            job.sources
                .entry(p.source.clone())
                .or_insert_with(|| Source::new(p.clone()));
        }
    }

    /// Progress only moves forward (retention policies are copied in name order).
    pub fn progressed(&mut self, p: &MigrationProgress) {
        let Some(source) = self.source_mut(p.job, &p.source) else {
            return;
        };
        if source.done.contains_key(&p.unit) {
            return;
        }
        let ahead = source
            .progress
            .get(&p.unit)
            .is_none_or(|old| (&p.rp, p.upto_unix_nanos) > (&old.rp, old.upto_unix_nanos));
        if ahead {
            source.progress.insert(p.unit, p.clone());
        }
    }

    pub fn unit_done(&mut self, d: &MigrationUnitDone) {
        if let Some(source) = self.source_mut(d.job, &d.source) {
            source.progress.remove(&d.unit);
            source.done.entry(d.unit).or_insert_with(|| d.clone());
        }
    }

    pub fn finished(&mut self, at: i64, job: u64) {
        if let Some(j) = self.jobs.get_mut(&job) {
            j.finished_at.get_or_insert(at);
        }
    }

    fn source_mut(&mut self, job: u64, url: &str) -> Option<&mut Source> {
        self.jobs.get_mut(&job)?.sources.get_mut(url)
    }

    /// The id the next job takes.
    pub fn next_job_id(&self) -> u64 {
        self.jobs.keys().next_back().map_or(1, |id| id + 1)
    }

    /// The latest job: the one `/migrate/stats` reports (influx-proxy clears every
    /// counter when a migration starts).
    pub fn latest(&self) -> Option<&Job> {
        self.jobs.values().next_back()
    }

    pub fn unfinished(&self) -> impl Iterator<Item = &Job> {
        self.jobs.values().filter(|j| j.finished_at.is_none())
    }

    pub fn to_snapshot(&self) -> Vec<MigrationJob> {
        self.jobs
            .values()
            .map(|j| MigrationJob {
                started: Some(j.started.clone()),
                started_at_unix_nanos: j.started_at,
                plans: j.sources.values().map(|s| s.plan.clone()).collect(),
                progress: j
                    .sources
                    .values()
                    .flat_map(|s| s.progress.values().cloned())
                    .collect(),
                done: j
                    .sources
                    .values()
                    .flat_map(|s| s.done.values().cloned())
                    .collect(),
                finished: j.finished_at.is_some(),
                finished_at_unix_nanos: j.finished_at.unwrap_or(0),
            })
            .collect()
    }

    pub fn from_snapshot(jobs: Vec<MigrationJob>) -> Ledger {
        let mut ledger = Ledger::default();
        for j in jobs {
            let Some(started) = j.started else {
                continue;
            };
            ledger.jobs.insert(
                started.job,
                Job {
                    started,
                    started_at: j.started_at_unix_nanos,
                    sources: BTreeMap::new(),
                    finished_at: j.finished.then_some(j.finished_at_unix_nanos),
                },
            );
            for p in &j.plans {
                ledger.planned(p);
            }
            for p in &j.progress {
                ledger.progressed(p);
            }
            for d in &j.done {
                ledger.unit_done(d);
            }
        }
        ledger
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{PlannedDatabase, PlannedMeasurement};

    fn plan(job: u64, source: &str) -> MigrationPlanned {
        let m = |name: &str, to: &[&str]| PlannedMeasurement {
            name: name.into(),
            destinations: to.iter().map(|s| s.to_string()).collect(),
        };
        MigrationPlanned {
            job,
            source: source.into(),
            circle_id: 0,
            databases: vec![
                PlannedDatabase {
                    name: "db1".into(),
                    measurements: vec![m("a", &[]), m("b", &["x"])],
                },
                PlannedDatabase {
                    name: "db2".into(),
                    measurements: vec![m("c", &["x"])],
                },
            ],
            skipped: String::new(),
        }
    }

    fn progress(unit: u32, rp: &str, upto: i64, points: u64) -> MigrationProgress {
        MigrationProgress {
            job: 1,
            source: "s".into(),
            unit,
            rp: rp.into(),
            upto_unix_nanos: upto,
            points,
        }
    }

    #[test]
    fn counters_follow_the_plan_and_progress_only_moves_forward() {
        let mut l = Ledger::default();
        l.started(
            5,
            &MigrationStarted {
                job: 1,
                kind: "rebalance".into(),
                ..Default::default()
            },
        );
        l.planned(&plan(1, "s"));
        let info = l.latest().unwrap().sources["s"].info();
        assert_eq!(
            info,
            MigrateInfo {
                database_total: 2,
                database_done: 0,
                measurement_total: 3,
                measurement_done: 1,
                migrate_count: 0,
                inplace_count: 1,
            }
        );
        assert_eq!(l.latest().unwrap().sources["s"].to_do(), vec![1, 2]);
        l.progressed(&progress(1, "autogen", 100, 10));
        l.progressed(&progress(1, "autogen", 50, 5));
        assert_eq!(l.jobs[&1].sources["s"].progress[&1].upto_unix_nanos, 100);
        l.progressed(&progress(1, "short", 20, 12));
        assert_eq!(l.jobs[&1].sources["s"].progress[&1].rp, "short");
        l.unit_done(&MigrationUnitDone {
            job: 1,
            source: "s".into(),
            unit: 1,
            error: String::new(),
            points: 12,
        });
        let s = &l.jobs[&1].sources["s"];
        assert_eq!((s.info().database_done, s.info().migrate_count), (1, 1));
        assert_eq!(s.to_do(), vec![2]);
        assert_eq!(s.points(), 12);
        let back = Ledger::from_snapshot(l.to_snapshot());
        assert_eq!(back, l);
        l.finished(9, 1);
        assert_eq!(l.unfinished().count(), 0);
        assert_eq!(l.next_job_id(), 2);
    }

    #[test]
    fn only_the_latest_finished_jobs_are_kept() {
        let mut l = Ledger::default();
        for job in 1..=20 {
            l.started(
                job as i64,
                &MigrationStarted {
                    job,
                    ..Default::default()
                },
            );
            if job != 3 {
                l.finished(job as i64, job);
            }
        }
        assert!(l.jobs.contains_key(&3), "a job under way is never dropped");
        assert_eq!(l.jobs.len(), FINISHED_KEPT + 2);
        assert_eq!(l.next_job_id(), 21);
    }
}
