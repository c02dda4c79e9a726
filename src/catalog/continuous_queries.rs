//! Continuous queries: created, dropped (by name, or with their database) and run, each
//! run's time an event so that the next one is computed from it across restarts.

use super::{Catalog, CatalogError};
use crate::clock::stamped;
use crate::proto::{
    event, ContinuousQueryCreated, ContinuousQueryDropped, ContinuousQueryRan, Event,
};

impl Catalog {
    /// The event that creates `name` on `database` (`query`: the statement as stored).
    /// Creating it again with the same query (ignoring case) is no change, as in 1.x;
    /// with another, an error.
    pub(crate) fn create_continuous_query(
        &self,
        database: &str,
        name: &str,
        query: &str,
    ) -> Result<Vec<Event>, CatalogError> {
        let db = self
            .databases
            .get(database)
            .ok_or_else(|| CatalogError::DatabaseNotFound(database.into()))?;
        if let Some(cq) = db.continuous_queries.get(name) {
            if cq.query.to_lowercase() == query.to_lowercase() {
                return Ok(Vec::new());
            }
            return Err(CatalogError::ContinuousQueryExists);
        }
        Ok(vec![stamped(event::Kind::ContinuousQueryCreated(
            ContinuousQueryCreated {
                database: database.into(),
                name: name.into(),
                query: query.into(),
            },
        ))])
    }

    /// The event that drops `name` from `database`: none if there is no such query, which
    /// 1.6 answers as success (its meta store's drop finds nothing to do).
    pub(crate) fn drop_continuous_query(&self, database: &str, name: &str) -> Vec<Event> {
        if !self.has_continuous_query(database, name) {
            return Vec::new();
        }
        vec![stamped(event::Kind::ContinuousQueryDropped(
            ContinuousQueryDropped {
                database: database.into(),
                name: name.into(),
            },
        ))]
    }

    /// The event recording that `name` of `database` ran, as of `last_run` (none if it
    /// was dropped meanwhile).
    pub(crate) fn continuous_query_ran(
        &self,
        database: &str,
        name: &str,
        last_run: i64,
    ) -> Vec<Event> {
        if !self.has_continuous_query(database, name) {
            return Vec::new();
        }
        vec![stamped(event::Kind::ContinuousQueryRan(
            ContinuousQueryRan {
                database: database.into(),
                name: name.into(),
                last_run_nanos: last_run,
            },
        ))]
    }

    fn has_continuous_query(&self, database: &str, name: &str) -> bool {
        self.databases
            .get(database)
            .is_some_and(|db| db.continuous_queries.contains_key(name))
    }
}
