//! InfluxQL: the parser, and the executor of what it parses.

mod aggregate;
mod authorize;
mod eval;
pub mod executor;
pub mod format;
pub mod parser;
pub mod result;
mod select;
mod show;

pub use executor::{epoch_unit, execute, QueryError, QueryOptions};
