//! The in-memory copy of the app → metrics-path table that the request path reads. A scrape takes
//! one atomic load of an immutable snapshot; the store publishes a complete new snapshot after
//! each local write and at every refresh. It never touches SQL itself.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::scrape::metric_path::MetricPath;

/// One immutable view: the metrics path of each app that has one.
#[derive(Debug, Default)]
pub struct AppPaths {
    by_app: HashMap<String, MetricPath>,
}

impl AppPaths {
    /// Builds a view from `(app_guid, endpoint)` rows. Rows with no app or an endpoint that is not a
    /// valid path are skipped (and logged). When an app has several rows, the one whose binding id
    /// sorts last wins, so every promfetcher sharing the database picks the same.
    pub fn from_rows(mut rows: Vec<(String, String, String)>) -> AppPaths {
        rows.sort();
        let mut by_app = HashMap::with_capacity(rows.len());
        for (_binding, app_guid, endpoint) in rows {
            if app_guid.trim().is_empty() {
                continue;
            }
            match MetricPath::parse(&endpoint) {
                Ok(path) => {
                    by_app.insert(app_guid, path);
                }
                Err(error) => {
                    tracing::warn!(app = %app_guid, %error, "stored endpoint ignored")
                }
            }
        }
        AppPaths { by_app }
    }

    /// The path set through the service broker for `app_guid`.
    pub fn path_for(&self, app_guid: &str) -> Option<&MetricPath> {
        self.by_app.get(app_guid)
    }

    pub fn len(&self) -> usize {
        self.by_app.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_app.is_empty()
    }
}

/// The shared pointer to the current [`AppPaths`].
#[derive(Debug, Default)]
pub struct AppPathCache {
    current: ArcSwap<AppPaths>,
}

impl AppPathCache {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> Arc<AppPaths> {
        self.current.load_full()
    }

    pub fn publish(&self, paths: AppPaths) {
        self.current.store(Arc::new(paths));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(binding: &str, app: &str, endpoint: &str) -> (String, String, String) {
        (binding.into(), app.into(), endpoint.into())
    }

    #[test]
    fn rows_become_paths_and_bad_rows_are_skipped() {
        let paths = AppPaths::from_rows(vec![
            row("b2", "app-1", "/second"),
            row("b1", "app-1", "/first"),
            row("b3", "", "/no-app"),
            row("b4", "app-2", "@evil.example/x"),
            row("b5", "app-3", "/actuator/prometheus"),
        ]);
        assert_eq!(
            paths.path_for("app-1").map(MetricPath::as_str),
            Some("/second")
        );
        assert_eq!(paths.path_for("app-2"), None);
        assert_eq!(
            paths.path_for("app-3").map(MetricPath::as_str),
            Some("/actuator/prometheus")
        );
        assert_eq!(paths.len(), 2);
    }
}
