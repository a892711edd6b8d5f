//! How the routes of several sources become the one table requests read. Each source (gorouter
//! polling, NATS registrations) hands its complete current routes to a [`RouteFeed`]; the
//! combiner keeps the latest routes of every source and builds and publishes one new snapshot.
//! It owns the merge rule and the moment the first table appears; it does no I/O.
//!
//! The merge rule, in one place:
//! - the table is the union of every source's route keys;
//! - under one route key an instance address is listed once; when both sources list it, the
//!   NATS endpoint is kept (it is the live registration; `/routes` is up to one poll old);
//! - nothing is published until every configured source delivered its first routes, so health
//!   turns ready with a complete table; after that each delivery that changes the source's
//!   routes publishes a new snapshot. A delivery equal to the source's last one publishes
//!   nothing: the snapshot requests hold stays current, so identical requests before and after
//!   a gorouter poll still share one fan-out (coalescing compares snapshots by identity).
//!   A source that later fails keeps its last delivered routes in the table.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use super::handle::RouteTableHandle;
use super::instance::Instance;
use super::table::{Instances, RouteTableBuilder};
use super::tags::AppInterner;

/// One source's routes: normalised route key → its instance list, as the table will share it.
pub type SourceRoutes = BTreeMap<Arc<str>, Instances>;

/// The route sources, in order of precedence when they list the same address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteSourceKind {
    Nats,
    Gorouter,
}

impl RouteSourceKind {
    /// The name in logs, own metrics (`source` label) and the health answer.
    pub fn label(self) -> &'static str {
        match self {
            RouteSourceKind::Nats => "nats",
            RouteSourceKind::Gorouter => "gorouter",
        }
    }
}

/// Sizes of a table just published, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub routes: usize,
    pub endpoints: usize,
}

/// The latest routes of every configured source and the handle their union is published to.
#[derive(Debug)]
pub struct RouteSources {
    table: Arc<RouteTableHandle>,
    /// `None` until that source delivered once. Held only for moments, never while a table is
    /// built; readers of the table never take it.
    latest: Mutex<Latest>,
    /// The generation of the table published last.
    published: Mutex<u64>,
    /// The app tags of every source's endpoints, one copy per app.
    apps: Arc<AppInterner>,
}

#[derive(Debug)]
struct Latest {
    routes: BTreeMap<RouteSourceKind, Option<Arc<SourceRoutes>>>,
    /// Counts the deliveries that make a new table, so that of two built at once the newer is
    /// published last.
    generation: u64,
}

impl RouteSources {
    /// Combines the sources in `kinds` (each once) into `table`.
    pub fn new(table: Arc<RouteTableHandle>, kinds: &[RouteSourceKind]) -> Arc<Self> {
        let latest = Latest {
            routes: kinds.iter().map(|kind| (*kind, None)).collect(),
            generation: 0,
        };
        Arc::new(RouteSources {
            table,
            latest: Mutex::new(latest),
            published: Mutex::new(0),
            apps: Arc::default(),
        })
    }

    /// Where the source `kind` delivers its routes.
    pub fn feed(self: &Arc<Self>, kind: RouteSourceKind) -> RouteFeed {
        RouteFeed {
            sources: self.clone(),
            kind,
        }
    }

    /// The sources whose latest routes hold one of `instances` (the same address for the same
    /// app), for a diagnosis to say where an app's endpoints come from. Looks at every route
    /// of every source, outside the lock.
    pub fn sources_listing(&self, instances: &[Arc<Instance>]) -> Vec<RouteSourceKind> {
        let wanted: HashSet<(&str, &str)> = instances
            .iter()
            .map(|i| (&*i.identity.app.app_id, &*i.address))
            .collect();
        let latest: Vec<(RouteSourceKind, Arc<SourceRoutes>)> = lock(&self.latest)
            .routes
            .iter()
            .filter_map(|(kind, routes)| Some((*kind, routes.clone()?)))
            .collect();
        latest
            .into_iter()
            .filter(|(_, routes)| {
                routes
                    .values()
                    .flat_map(|list| list.iter())
                    .any(|i| wanted.contains(&(&*i.identity.app.app_id, &*i.address)))
            })
            .map(|(kind, _)| kind)
            .collect()
    }

    /// The latest routes of every source but `kind`.
    fn others(&self, kind: RouteSourceKind) -> Vec<Arc<SourceRoutes>> {
        lock(&self.latest)
            .routes
            .iter()
            .filter(|(other, _)| **other != kind)
            .filter_map(|(_, routes)| routes.clone())
            .collect()
    }

    fn deliver(&self, kind: RouteSourceKind, routes: SourceRoutes) -> Option<Published> {
        let (generation, every_source) = {
            let mut latest = lock(&self.latest);
            let unchanged = latest
                .routes
                .get(&kind)
                .and_then(Option::as_ref)
                .is_some_and(|last| **last == routes);
            latest.routes.insert(kind, Some(Arc::new(routes)));
            // Once every source is in, a source that delivered before was already published.
            if unchanged || latest.routes.values().any(Option::is_none) {
                return None;
            }
            latest.generation += 1;
            let every_source: Vec<_> = latest.routes.values().flatten().cloned().collect();
            (latest.generation, every_source)
        };
        let mut builder = RouteTableBuilder::default();
        for routes in &every_source {
            for (route_key, instances) in routes.iter() {
                builder.add_route(route_key, instances);
            }
        }
        let table = builder.build();
        let published = Published {
            routes: table.route_count(),
            endpoints: table.endpoint_count(),
        };
        let mut last_published = lock(&self.published);
        // A delivery made after this one built its table first: that table has this one's routes.
        if *last_published > generation {
            return None;
        }
        *last_published = generation;
        self.table.publish(table);
        Some(published)
    }
}

/// `mutex` locked; a panic of another holder does not make its data unusable here.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The routes other sources delivered last, to share lists and instances with.
#[derive(Debug, Default)]
pub struct OtherSources(Vec<Arc<SourceRoutes>>);

impl OtherSources {
    /// `instance` of the route `route_key`, shared with an equal one another source lists there.
    pub fn instance(&self, route_key: &str, instance: Instance) -> Arc<Instance> {
        self.0
            .iter()
            .filter_map(|routes| routes.get(route_key))
            .flat_map(|list| list.iter())
            .find(|theirs| theirs.address == instance.address && ***theirs == instance)
            .cloned()
            .unwrap_or_else(|| Arc::new(instance))
    }

    /// `list`, or an equal list another source holds for `route_key`.
    pub fn share(&self, route_key: &str, list: Instances) -> Instances {
        self.0
            .iter()
            .filter_map(|routes| routes.get(route_key))
            .find(|theirs| Arc::ptr_eq(theirs, &list) || theirs[..] == list[..])
            .cloned()
            .unwrap_or(list)
    }
}

/// A source's handle to deliver its complete current routes.
#[derive(Debug, Clone)]
pub struct RouteFeed {
    sources: Arc<RouteSources>,
    kind: RouteSourceKind,
}

impl RouteFeed {
    /// A feed for a source that is the only one publishing to `table`.
    pub fn alone(table: Arc<RouteTableHandle>, kind: RouteSourceKind) -> RouteFeed {
        RouteSources::new(table, &[kind]).feed(kind)
    }

    /// Replaces this source's routes and publishes the union, once every source delivered.
    /// Returns the sizes of the table published; `None` while another source is still missing
    /// or when the routes equal this source's last delivery (nothing is published then).
    pub fn deliver(&self, routes: SourceRoutes) -> Option<Published> {
        self.sources.deliver(self.kind, routes)
    }

    /// The latest routes the other sources delivered: a list equal to one of theirs can be
    /// theirs, so that both sources' routes cost the memory of one.
    pub fn others(&self) -> OtherSources {
        OtherSources(self.sources.others(self.kind))
    }

    /// The app tags every source shares its endpoints' from.
    pub fn apps(&self) -> Arc<AppInterner> {
        self.sources.apps.clone()
    }

    /// Whether a table is published (every source delivered at least once).
    pub fn is_loaded(&self) -> bool {
        self.sources.table.is_loaded()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::routes::table::{instance_list, route_host};

    /// A TLS endpoint of the route `key`, verified against `san`.
    type Endpoint = (&'static str, &'static str);

    fn endpoint(address: &'static str, san: &'static str) -> Endpoint {
        (address, san)
    }

    fn routes(key: &str, endpoints: Vec<Endpoint>) -> SourceRoutes {
        SourceRoutes::from([route(key, endpoints)])
    }

    fn route(key: &str, endpoints: Vec<Endpoint>) -> (Arc<str>, Instances) {
        let key: Arc<str> = Arc::from(key);
        let host = route_host(&key);
        let list = endpoints
            .into_iter()
            .map(|(address, san)| Arc::new(Instance::new(address, &host, true, Some(san), None)))
            .collect();
        (key, instance_list(list))
    }

    #[test]
    fn a_diagnosis_learns_which_sources_list_an_app() {
        let sources = RouteSources::new(
            Arc::new(RouteTableHandle::new()),
            &[RouteSourceKind::Gorouter, RouteSourceKind::Nats],
        );
        sources.feed(RouteSourceKind::Gorouter).deliver(
            [
                route("a.example.com", vec![endpoint("127.0.0.1:1", "a")]),
                route("b.example.com", vec![endpoint("127.0.0.2:1", "b")]),
            ]
            .into(),
        );
        sources
            .feed(RouteSourceKind::Nats)
            .deliver(routes("b.example.com", vec![endpoint("127.0.0.2:1", "b")]));
        let listed = |address: &'static str| {
            let (_, list) = route("x.example.com", vec![endpoint(address, "x")]);
            sources.sources_listing(&list)
        };
        assert_eq!(listed("127.0.0.1:1"), [RouteSourceKind::Gorouter]);
        assert_eq!(
            listed("127.0.0.2:1"),
            [RouteSourceKind::Nats, RouteSourceKind::Gorouter]
        );
        assert_eq!(listed("127.0.0.9:1"), []);
    }

    #[test]
    fn nothing_is_published_until_every_source_delivered() {
        let table = Arc::new(RouteTableHandle::new());
        let sources = RouteSources::new(
            table.clone(),
            &[RouteSourceKind::Gorouter, RouteSourceKind::Nats],
        );
        let gorouter = sources.feed(RouteSourceKind::Gorouter);
        assert_eq!(gorouter.deliver(routes("a.example.com", vec![])), None);
        assert!(!table.is_loaded());
        let nats = sources.feed(RouteSourceKind::Nats);
        assert!(nats.deliver(SourceRoutes::new()).is_some());
        assert!(table.is_loaded());
    }

    #[test]
    fn an_unchanged_delivery_keeps_the_published_snapshot() {
        let table = Arc::new(RouteTableHandle::new());
        let feed = RouteFeed::alone(table.clone(), RouteSourceKind::Gorouter);
        let a = || routes("a.example.com", vec![endpoint("127.0.0.1:1", "a")]);
        assert!(feed.deliver(a()).is_some());
        let first = table.snapshot().expect("published");
        assert_eq!(feed.deliver(a()), None);
        assert!(Arc::ptr_eq(&first, &table.snapshot().expect("published")));
        let changed = routes("a.example.com", vec![endpoint("127.0.0.1:1", "b")]);
        assert!(feed.deliver(changed).is_some());
        assert!(!Arc::ptr_eq(&first, &table.snapshot().expect("published")));
    }

    #[test]
    fn union_by_route_key_with_one_endpoint_per_address_nats_first() {
        let table = Arc::new(RouteTableHandle::new());
        let sources = RouteSources::new(
            table.clone(),
            &[RouteSourceKind::Gorouter, RouteSourceKind::Nats],
        );
        sources.feed(RouteSourceKind::Gorouter).deliver(
            [
                route(
                    "a.example.com",
                    vec![endpoint("127.0.0.1:1", "old"), endpoint("127.0.0.2:1", "g")],
                ),
                route("b.example.com", vec![endpoint("127.0.0.3:1", "g")]),
            ]
            .into(),
        );
        let published = sources
            .feed(RouteSourceKind::Nats)
            .deliver(routes(
                "a.example.com",
                vec![endpoint("127.0.0.1:1", "new")],
            ))
            .expect("both delivered");
        assert_eq!(
            published,
            Published {
                routes: 2,
                endpoints: 3
            }
        );
        let snapshot = table.snapshot().expect("published");
        let a = snapshot.find_app("a.example.com").expect("route a");
        let first = a
            .iter()
            .find(|i| &*i.address == "127.0.0.1:1")
            .expect("shared address");
        assert_eq!(first.tls_server_name.as_deref(), Some("new"));
        assert_eq!(a.len(), 2);
        assert!(snapshot.find_app("b.example.com").is_some());
    }
}
