//! InfluxQL: the parser, and the executor of what it parses.

mod aggregate;
mod authorize;
mod calc;
pub mod csv;
mod error;
mod eval;
pub mod executor;
pub mod format;
mod functions;
mod limits;
mod listing;
pub mod params;
pub mod parser;
mod plan;
pub mod pool;
pub mod result;
mod rows;
mod scan;
mod select;
mod selection;
mod statements;
mod subquery;
mod transform;
mod zone;

pub use error::QueryError;
pub use executor::{epoch_unit, execute, QueryOptions};
pub use limits::{Interrupt, QueryLimits};
