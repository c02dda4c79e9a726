//! A small table of results kept by the text they were made from (parses, compiled
//! patterns), for the whole node: dashboards resend the same texts with every refresh.
//! Past its size the table starts over, so it never holds more than that many.

use std::collections::HashMap;
use std::sync::Mutex;

pub(crate) struct Kept<V> {
    limit: usize,
    table: Mutex<Option<HashMap<Box<str>, V, foldhash::fast::RandomState>>>,
}

impl<V: Clone> Kept<V> {
    /// A table of at most `limit` results (const, so that it can be a `static`).
    pub(crate) const fn new(limit: usize) -> Kept<V> {
        Kept {
            limit,
            table: Mutex::new(None),
        }
    }

    /// The result kept for `key`, else `make`'s, kept when it succeeds (a failure is made
    /// again each time). `make` runs without the table's lock.
    pub(crate) fn get_or_make<E>(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // The table holds finished results only: a panic leaves nothing half-changed.
        let lock = || self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = lock().as_ref().and_then(|t| t.get(key)) {
            return Ok(v.clone());
        }
        let made = make()?;
        let mut table = lock();
        let table = table.get_or_insert_with(Default::default);
        if table.len() >= self.limit {
            table.clear();
        }
        table.insert(key.into(), made.clone());
        Ok(made)
    }
}
