//! The shared pointer to the current route table. Readers take a snapshot with one atomic load
//! and keep it for the whole request; a source publishes a complete new table in one swap.
//! Readers never wait for a writer.

use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::table::RouteTable;

#[derive(Debug, Default)]
pub struct RouteTableHandle {
    current: ArcSwapOption<RouteTable>,
}

impl RouteTableHandle {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current table, or `None` until a source published the first one.
    pub fn snapshot(&self) -> Option<Arc<RouteTable>> {
        self.current.load_full()
    }

    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }

    pub fn publish(&self, table: RouteTable) {
        self.current.store(Some(Arc::new(table)));
    }
}
