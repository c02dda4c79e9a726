//! InfluxQL: the parser, and the executor of what it parses. Outside the crate only the
//! parser (fuzzing) and the time formats (tests) are seen.

mod aggregate;
mod authorize;
mod calc;
pub(crate) mod continuous;
pub(crate) mod csv;
mod error;
mod eval;
mod executor;
mod explain;
pub(crate) mod format;
mod functions;
mod go_sort;
#[cfg(feature = "testing")]
pub(crate) mod harness;
mod holt_winters;
pub(crate) mod json;
mod kept;
mod limits;
mod listing;
pub(crate) mod params;
mod parsed;
pub(crate) mod parser;
mod patterns;
mod plan;
pub(crate) mod pool;
mod read_only;
mod read_stats;
pub(crate) mod result;
mod rows;
mod scan;
mod select;
mod selection;
mod statements;
mod subquery;
pub(crate) mod tasks;
mod transform;
mod zone;

pub(crate) use error::QueryError;
pub(crate) use executor::{epoch_unit, execute, QueryOptions};
pub(crate) use limits::{Interrupt, QueryLimits};
