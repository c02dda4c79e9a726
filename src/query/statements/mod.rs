//! The statements: each family of InfluxQL statements in a file of its own, run against
//! the node's catalog and storage.

pub(crate) mod cardinality;
pub(crate) mod delete;
