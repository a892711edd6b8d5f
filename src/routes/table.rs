//! An immutable snapshot of the route table with the three indexes requests use: org/space/app
//! names, app GUID and route key. Built once per update by [`RouteTableBuilder`] from the route
//! lists the sources made; after that it is only read, so lookups need no lock. The lists and
//! instances are shared with the sources and with earlier snapshots, never copied. It knows
//! nothing of where routes come from.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::instance::Instance;

/// The instances one lookup yields: deduplicated by address, ordered by instance index then
/// address (see [`instance_list`]).
pub type Instances = Arc<[Arc<Instance>]>;

/// What a caller asked for, as parsed from the URL or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppQuery<'a> {
    Names {
        org: &'a str,
        space: &'a str,
        app: &'a str,
    },
    Guid(&'a str),
    Route(&'a str),
}

impl<'a> AppQuery<'a> {
    /// The readings of one `app` value, most specific first: `org/space/app` names when it has
    /// three non-empty segments, an app GUID when it parses as one, and always a route key.
    pub fn candidates(value: &'a str) -> Vec<AppQuery<'a>> {
        let mut readings = Vec::with_capacity(2);
        let parts: Vec<&str> = value.split('/').collect();
        if let [org, space, app] = parts[..] {
            if [org, space, app].iter().all(|p| !p.is_empty()) {
                readings.push(AppQuery::Names { org, space, app });
            }
        }
        if uuid::Uuid::try_parse(value).is_ok() {
            readings.push(AppQuery::Guid(value));
        }
        readings.push(AppQuery::Route(value));
        readings
    }
}

/// An app's org, space and app names.
type AppNames = (String, String, String);

/// The route table at one moment.
#[derive(Debug)]
pub struct RouteTable {
    by_route: HashMap<Arc<str>, Instances>,
    /// Every web instance whose tags carry these names, of every app that has them.
    by_names: HashMap<AppNames, Instances>,
    by_guid: HashMap<String, Instances>,
    endpoint_count: usize,
    built_at: SystemTime,
}

impl RouteTable {
    /// The instances the query names, or `None` when the table has no such app or route.
    pub fn find(&self, query: &AppQuery<'_>) -> Option<Instances> {
        match *query {
            AppQuery::Names { org, space, app } => self
                .by_names
                .get(&(org.to_string(), space.to_string(), app.to_string()))
                .cloned(),
            AppQuery::Guid(guid) => self.by_guid.get(&guid.to_ascii_lowercase()).cloned(),
            AppQuery::Route(route) => self.by_route.get(&*normalize_route_key(route)).cloned(),
        }
    }

    /// The instances of the first reading of `value` (see [`AppQuery::candidates`]) that the
    /// table knows.
    pub fn find_app(&self, value: &str) -> Option<Instances> {
        AppQuery::candidates(value)
            .iter()
            .find_map(|query| self.find(query))
    }

    /// Number of distinct route keys.
    pub fn route_count(&self) -> usize {
        self.by_route.len()
    }

    /// Number of endpoints over all routes (an instance under two routes counts twice).
    pub fn endpoint_count(&self) -> usize {
        self.endpoint_count
    }

    /// Number of distinct apps found by GUID.
    pub fn app_count(&self) -> usize {
        self.by_guid.len()
    }

    pub fn built_at(&self) -> SystemTime {
        self.built_at
    }

    /// Every route key with its instances, ordered by route key.
    pub fn routes(&self) -> Vec<(&str, &Instances)> {
        let mut routes: Vec<_> = self
            .by_route
            .iter()
            .map(|(key, instances)| (&**key, instances))
            .collect();
        routes.sort_unstable_by_key(|(key, _)| *key);
        routes
    }

    /// Every app found by GUID (web process with an app GUID) as its lower-case GUID and
    /// instances, ordered by GUID.
    pub fn apps(&self) -> Vec<(&str, &Instances)> {
        let mut apps: Vec<_> = self
            .by_guid
            .iter()
            .map(|(guid, instances)| (guid.as_str(), instances))
            .collect();
        apps.sort_unstable_by_key(|(guid, _)| *guid);
        apps
    }
}

/// Lower-cases, cuts a query string and trailing slashes, as gorouter's route keys are;
/// `route` itself when it is so already.
pub fn normalize_route_key(route: &str) -> Cow<'_, str> {
    let route = route.split('?').next().unwrap_or_default();
    let route = route.trim_end_matches('/');
    lower_case(route)
}

/// The host of a normalised route key (the key itself when it has no path), to share with the
/// route's instances.
pub fn route_host(route_key: &Arc<str>) -> Arc<str> {
    match route_key.split_once('/') {
        Some((host, _)) => Arc::from(host),
        None => route_key.clone(),
    }
}

/// Collects the route lists of one or several sources, then freezes them into a [`RouteTable`].
#[derive(Debug, Default)]
pub struct RouteTableBuilder {
    /// Normalised route key and instances, in the order the sources added them.
    routes: Vec<(Arc<str>, Instances)>,
}

impl RouteTableBuilder {
    /// Adds a source's list for `route_key` (normalised, see [`normalize_route_key`]). When an
    /// earlier source listed the key, that list is kept and only the addresses it lacks are
    /// added.
    pub fn add_route(&mut self, route_key: &Arc<str>, instances: &Instances) {
        self.routes.push((route_key.clone(), instances.clone()));
    }

    pub fn build(self) -> RouteTable {
        let routes = merge_by_key(self.routes);
        let mut endpoint_count = 0;
        // An app's web instances in route-key order, and the one route they came from, if so.
        let mut apps: HashMap<Cow<'_, str>, AppInstances<'_>> = HashMap::new();
        // Wildcard routes last: an instance also reached by a concrete route is then found
        // under it, and that host is what name and GUID lookups send as `Host`.
        let is_wildcard = |route: &&(Arc<str>, Instances)| route.0.starts_with("*.");
        let concrete = routes.iter().filter(|route| !is_wildcard(route));
        for route in concrete.chain(routes.iter().filter(is_wildcard)) {
            let instances = &route.1;
            endpoint_count += instances.len();
            // A route's instances of one app hold the same tags: look the app up once per run.
            for run in instances.chunk_by(|a, b| Arc::ptr_eq(&a.identity.app, &b.identity.app)) {
                let app = &run[0].identity.app;
                if app.process_type == "web" && !app.app_id.is_empty() {
                    apps.entry(lower_case(&app.app_id))
                        .or_insert_with(|| AppInstances::new(route))
                        .add(run, route);
                }
            }
        }
        let mut by_names = HashMap::with_capacity(apps.len());
        let mut by_guid = HashMap::with_capacity(apps.len());
        // Names two apps share (a renamed app whose instances still carry the old name, a
        // blue-green pair): the lists of every app of those names, answered together.
        let mut shared_names: HashMap<AppNames, Vec<Instances>> = HashMap::new();
        for (app_id, app) in apps {
            let instances = app.into_instances();
            let tags = &instances[0].identity.app;
            let names = (
                tags.organization_name.clone(),
                tags.space_name.clone(),
                tags.app_name.clone(),
            );
            match by_names.entry(names) {
                Entry::Vacant(slot) => {
                    slot.insert(instances.clone());
                }
                Entry::Occupied(slot) => shared_names
                    .entry(slot.key().clone())
                    .or_insert_with(|| vec![slot.get().clone()])
                    .push(instances.clone()),
            }
            by_guid.insert(app_id.into_owned(), instances);
        }
        for (names, mut lists) in shared_names {
            // In GUID order: `instance_list` keeps the first of an address listed twice, so an
            // address two apps list is always the same app's.
            lists.sort_by(|a, b| {
                lower_case(&a[0].identity.app.app_id).cmp(&lower_case(&b[0].identity.app.app_id))
            });
            by_names.insert(
                names,
                instance_list(lists.iter().flat_map(|list| list.iter().cloned()).collect()),
            );
        }
        RouteTable {
            by_route: routes.into_iter().collect(),
            by_names,
            by_guid,
            endpoint_count,
            built_at: SystemTime::now(),
        }
    }
}

/// `routes` ordered by key, each key once: a key listed twice keeps its first list plus the
/// addresses only the later ones have (see [`union`]). Sources' routes come in key order, so
/// the (stable) sort only merges them.
pub fn merge_by_key(mut routes: Vec<(Arc<str>, Instances)>) -> Vec<(Arc<str>, Instances)> {
    routes.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(Arc<str>, Instances)> = Vec::with_capacity(routes.len());
    for (key, instances) in routes {
        match merged.last_mut() {
            Some((last, known)) if *last == key => *known = union(known, &instances),
            _ => merged.push((key, instances)),
        }
    }
    merged
}

/// An app's web instances while a table is built, and the one route they all came from, if so.
struct AppInstances<'a> {
    instances: Vec<&'a Arc<Instance>>,
    /// `None` once instances came from two routes.
    only_route: Option<&'a (Arc<str>, Instances)>,
}

impl<'a> AppInstances<'a> {
    fn new(route: &'a (Arc<str>, Instances)) -> Self {
        AppInstances {
            instances: Vec::new(),
            only_route: Some(route),
        }
    }

    fn add(&mut self, instances: &'a [Arc<Instance>], route: &'a (Arc<str>, Instances)) {
        if self
            .only_route
            .is_some_and(|only| !std::ptr::eq(only, route))
        {
            self.only_route = None;
        }
        self.instances.extend(instances);
    }

    /// The app's instances, each address once. When they all came from one route that lists
    /// nothing else (an app with one route, the common case), that route's list is shared
    /// instead of copied.
    fn into_instances(self) -> Instances {
        match self.only_route {
            Some((_, route)) if route.len() == self.instances.len() => route.clone(),
            _ => instance_list(self.instances.into_iter().cloned().collect()),
        }
    }
}

/// `instances` as a lookup answers them: an address listed twice is kept once (the first),
/// ordered by numeric index, then address, so answers list instances stably.
pub fn instance_list(mut instances: Vec<Arc<Instance>>) -> Instances {
    instances.sort_by(|a, b| a.address.cmp(&b.address));
    instances.dedup_by(|later, first| later.address == first.address);
    instances.sort_by(|a, b| {
        let index = |i: &Instance| i.identity.instance_index.parse::<u64>().unwrap_or(u64::MAX);
        index(a)
            .cmp(&index(b))
            .then_with(|| a.address.cmp(&b.address))
    });
    instances.into()
}

/// `first`'s instances and those of `second` at addresses `first` does not list; `first`
/// itself when that adds nothing.
pub fn union(first: &Instances, second: &Instances) -> Instances {
    let missing: Vec<&Arc<Instance>> = second
        .iter()
        .filter(|instance| !first.iter().any(|known| known.address == instance.address))
        .collect();
    if missing.is_empty() {
        return first.clone();
    }
    instance_list(first.iter().chain(missing).cloned().collect())
}

/// `value` in lower case, borrowed when it is already.
fn lower_case(value: &str) -> Cow<'_, str> {
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(value.to_ascii_lowercase())
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::routes::gorouter::parse_whole_body;
    use crate::routes::tags::{AppTags, RouteTags};
    use crate::routes::CfIdentity;

    /// The table of a gorouter `/routes` body.
    fn table_of(body: &[u8]) -> RouteTable {
        let routes = parse_whole_body(body).unwrap();
        let mut builder = RouteTableBuilder::default();
        for (key, instances) in routes.iter() {
            builder.add_route(key, instances);
        }
        builder.build()
    }

    fn example_table() -> RouteTable {
        table_of(include_bytes!(
            "../../tests/data/gorouter-routes.example.json"
        ))
    }

    fn addresses(instances: &Instances) -> Vec<&str> {
        instances.iter().map(|i| &*i.address).collect()
    }

    /// One route's list, as a source makes it.
    fn route(key: &str, instances: Vec<(&str, Option<RouteTags>)>) -> (Arc<str>, Instances) {
        let key: Arc<str> = Arc::from(key);
        let host = route_host(&key);
        let list = instances
            .into_iter()
            .map(|(address, tags)| Arc::new(Instance::new(address, &host, false, None, tags)))
            .collect();
        (key, instance_list(list))
    }

    /// An app reached by one route is held once: the lookups by name, GUID and route share
    /// one list (at 250,000 endpoints a copy per index is tens of MiB).
    #[test]
    fn an_app_with_one_route_shares_that_routes_instances() {
        let body = simulated_foundation::LargeFoundation::new(3, 4).routes_body(0);
        let table = table_of(&body);
        let by_route = table.find_app("app-1.apps.scale.internal").unwrap();
        let by_guid = table
            .find_app("8c5a9f3e-2b1d-4e6f-9a7b-000000000001")
            .unwrap();
        let by_names = table.find_app("org-1/space-1/app-1").unwrap();
        assert_eq!(by_route.len(), 4);
        assert!(Arc::ptr_eq(&by_route, &by_guid) && Arc::ptr_eq(&by_route, &by_names));
    }

    #[test]
    fn name_and_guid_lookups_find_each_web_instance_once() {
        let table = example_table();
        let by_names = table.find_app("acme/dev/myapp").expect("myapp by names");
        // myapp is reachable by two routes; each instance appears once, ordered by index
        assert_eq!(addresses(&by_names), ["10.0.1.12:61014", "10.0.2.13:61022"]);
        assert_eq!(&*by_names[1].identity.instance_index, "1");
        assert_eq!(
            by_names[0].tls_server_name.as_deref(),
            Some("3e1c9b5a-7d2f-4a8e-9b0c-1d2e")
        );
        let by_guid = table
            .find_app("8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b")
            .expect("myapp by guid");
        assert_eq!(by_guid, by_names);
    }

    #[test]
    fn route_lookup_is_normalized_and_keeps_path_routes() {
        let table = example_table();
        let route = table
            .find_app("MyApp.apps.example.com/metrics-proxy/")
            .expect("path route");
        assert_eq!(&*route[0].host, "myapp.apps.example.com");
        assert!(table.find_app("nope.apps.example.com").is_none());
    }

    #[test]
    fn endpoints_without_tags_are_reachable_by_route_only() {
        let table = example_table();
        let legacy = table.find_app("legacy.apps.example.com").unwrap();
        assert_eq!(legacy[0].identity, CfIdentity::default());
        assert_eq!(legacy[0].tls_server_name, None);
    }

    #[test]
    fn non_web_processes_are_not_found_by_name() {
        let mut builder = RouteTableBuilder::default();
        let tags = |process: &str, index: &str| {
            Some(RouteTags {
                app: Arc::new(AppTags {
                    app_id: "0b3c1f0e-1111-4222-8333-444455556666".into(),
                    app_name: "jobs".into(),
                    organization_name: "o".into(),
                    space_name: "s".into(),
                    process_type: process.into(),
                    ..Default::default()
                }),
                instance_id: index.into(),
            })
        };
        let (key, list) = route(
            "jobs.example.com",
            vec![
                ("10.0.0.1:1", tags("web", "0")),
                ("10.0.0.2:1", tags("worker", "0")),
            ],
        );
        builder.add_route(&key, &list);
        let table = builder.build();
        let web = table.find_app("o/s/jobs").unwrap();
        assert_eq!(addresses(&web), ["10.0.0.1:1"]);
        assert_eq!(table.find_app("jobs.example.com").unwrap().len(), 2);
    }

    #[test]
    fn query_readings_most_specific_first() {
        assert_eq!(
            AppQuery::candidates("org/space/app"),
            [
                AppQuery::Names {
                    org: "org",
                    space: "space",
                    app: "app"
                },
                AppQuery::Route("org/space/app")
            ]
        );
        assert_eq!(
            AppQuery::candidates("8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b")[0],
            AppQuery::Guid("8c5a9f3e-2b1d-4e6f-9a7b-1c2d3e4f5a6b")
        );
        assert_eq!(
            AppQuery::candidates("a.example.com/x"),
            [AppQuery::Route("a.example.com/x")]
        );
    }

    #[test]
    fn a_three_segment_path_route_is_found_when_no_app_has_those_names() {
        let mut builder = RouteTableBuilder::default();
        let (key, list) = route("a.example.com/x/y", vec![("10.0.0.9:1", None)]);
        builder.add_route(&key, &list);
        let table = builder.build();
        assert_eq!(
            addresses(&table.find_app("a.example.com/x/y").unwrap()),
            ["10.0.0.9:1"]
        );
    }

    /// Two apps with the same org, space and app names (the old one renamed, its instances
    /// not yet restarted with the new name) are answered together by a name lookup, as the
    /// original did, the same way in every table; a GUID still finds one app.
    #[test]
    fn apps_that_share_their_names_are_all_found_by_name() {
        let tags = |guid: &str, index: &str| {
            Some(RouteTags {
                app: Arc::new(AppTags {
                    app_id: guid.into(),
                    app_name: "shop".into(),
                    organization_name: "o".into(),
                    space_name: "s".into(),
                    process_type: "web".into(),
                    ..Default::default()
                }),
                instance_id: index.into(),
            })
        };
        let (old, new) = (
            "aaaaaaaa-1111-4222-8333-444455556666",
            "bbbbbbbb-1111-4222-8333-444455556666",
        );
        let names = AppQuery::Names {
            org: "o",
            space: "s",
            app: "shop",
        };
        let mut seen = std::collections::HashSet::new();
        for round in 0..20 {
            let mut builder = RouteTableBuilder::default();
            let routes = [
                route(
                    "shop-venerable.example.com",
                    vec![
                        ("10.0.0.1:1", tags(old, "0")),
                        ("10.0.0.3:1", tags(old, "1")),
                        ("10.0.0.5:1", tags(old, "2")),
                    ],
                ),
                route(
                    "shop.example.com",
                    vec![
                        ("10.0.0.2:1", tags(new, "0")),
                        ("10.0.0.5:1", tags(new, "1")),
                    ],
                ),
            ];
            for (key, list) in &routes {
                builder.add_route(key, list);
            }
            let table = builder.build();
            let found = table.find(&names).unwrap();
            assert_eq!(
                addresses(&found),
                ["10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.5:1"],
                "round {round}"
            );
            // the address both list is the first app's (by GUID), whatever the table's order
            assert_eq!(&*found[3].identity.app.app_id, old, "round {round}");
            seen.insert(addresses(&table.find(&AppQuery::Guid(new)).unwrap()).join(","));
        }
        assert_eq!(seen, ["10.0.0.2:1,10.0.0.5:1".to_string()].into());
    }

    /// An app reached by `*.apps.example.com` and by its own route is found by name and GUID
    /// under its own route, whose host is what its instances answer to (the wildcard sorts
    /// first, and used to be sent as `Host`).
    #[test]
    fn name_and_guid_lookups_prefer_a_concrete_route_to_a_wildcard() {
        let tags = Some(RouteTags {
            app: Arc::new(AppTags {
                app_id: "0b3c1f0e-1111-4222-8333-444455556666".into(),
                app_name: "shop".into(),
                organization_name: "o".into(),
                space_name: "s".into(),
                process_type: "web".into(),
                ..Default::default()
            }),
            instance_id: "0".into(),
        });
        let mut builder = RouteTableBuilder::default();
        for key in ["*.apps.example.com", "shop.apps.example.com"] {
            let (key, list) = route(key, vec![("10.0.0.1:1", tags.clone())]);
            builder.add_route(&key, &list);
        }
        let table = builder.build();
        for query in ["o/s/shop", "0b3c1f0e-1111-4222-8333-444455556666"] {
            let found = table.find_app(query).unwrap();
            assert_eq!(addresses(&found), ["10.0.0.1:1"]);
            assert_eq!(&*found[0].host, "shop.apps.example.com", "{query}");
        }
    }
}
