//! The in-memory copy of the app → metrics-path table that the request path reads. A scrape takes
//! one atomic load of an immutable snapshot; the store publishes a complete new snapshot after
//! each local write and at every refresh. Each path keeps the binding it came from, and the service
//! instance when the binding follows the instance's endpoint, so a diagnosis can say why a path
//! applies. It never touches SQL itself.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::scrape::metric_path::MetricPath;

/// One stored app path as the database holds it: the binding's row of `app_endpoints`, and the
/// service instance whose endpoint the binding follows, if it has none of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredPath {
    pub binding_id: String,
    pub app_guid: String,
    pub endpoint: String,
    /// `Some(instance id)` when the binding was made without an endpoint and follows its
    /// service instance's; `None` for a binding's own endpoint (or one written by the original).
    pub follows_service_instance: Option<String>,
}

/// An app's metrics path set through the service broker, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerPath {
    pub path: MetricPath,
    /// The binding of the app that holds the path.
    pub binding_id: String,
    /// The service instance whose endpoint the binding follows; `None` when the binding set its
    /// own.
    pub service_instance_id: Option<String>,
}

/// One immutable view: the metrics path of each app that has one.
#[derive(Debug, Default)]
pub struct AppPaths {
    by_app: HashMap<String, BrokerPath>,
}

impl AppPaths {
    /// Builds a view from the stored rows. Rows with no app or an endpoint that is not a valid path
    /// are skipped (and logged). When an app has several rows, the one whose binding id sorts last
    /// wins, so every promfetcher sharing the database picks the same.
    pub fn from_rows(mut rows: Vec<StoredPath>) -> AppPaths {
        rows.sort();
        let mut by_app = HashMap::with_capacity(rows.len());
        for row in rows {
            if row.app_guid.trim().is_empty() {
                continue;
            }
            match MetricPath::parse(&row.endpoint) {
                Ok(path) => {
                    by_app.insert(
                        row.app_guid,
                        BrokerPath {
                            path,
                            binding_id: row.binding_id,
                            service_instance_id: row.follows_service_instance,
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(app = %row.app_guid, %error, "stored endpoint ignored")
                }
            }
        }
        AppPaths { by_app }
    }

    /// The path set through the service broker for `app_guid`.
    pub fn path_for(&self, app_guid: &str) -> Option<&MetricPath> {
        self.by_app.get(app_guid).map(|broker| &broker.path)
    }

    /// The path set through the service broker for `app_guid`, with its binding and service
    /// instance.
    pub fn broker_path(&self, app_guid: &str) -> Option<&BrokerPath> {
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

    fn row(binding: &str, app: &str, endpoint: &str) -> StoredPath {
        StoredPath {
            binding_id: binding.into(),
            app_guid: app.into(),
            endpoint: endpoint.into(),
            follows_service_instance: None,
        }
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

    #[test]
    fn a_path_names_its_binding_and_the_service_instance_it_follows() {
        let paths = AppPaths::from_rows(vec![
            row("own", "app-1", "/own"),
            StoredPath {
                follows_service_instance: Some("si-1".into()),
                ..row("inherited", "app-2", "/from-instance")
            },
        ]);
        let own = paths.broker_path("app-1").unwrap();
        assert_eq!(
            (own.binding_id.as_str(), own.service_instance_id.as_deref()),
            ("own", None)
        );
        let inherited = paths.broker_path("app-2").unwrap();
        assert_eq!(inherited.binding_id, "inherited");
        assert_eq!(inherited.service_instance_id.as_deref(), Some("si-1"));
        assert_eq!(inherited.path.as_str(), "/from-instance");
    }
}
