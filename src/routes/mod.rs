//! The route table: which instances serve which app, as learnt from the foundation's routers.
//! Lookups read an immutable snapshot; sources build a new snapshot and swap it in whole.

mod instance;

pub use instance::{CfIdentity, Instance, LABEL_NAMES};
