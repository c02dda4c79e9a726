//! The control state: what the control log's events fold into, beyond the catalog.

pub mod backups;
