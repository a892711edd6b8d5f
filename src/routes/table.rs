//! An immutable snapshot of the route table with the three indexes requests use: org/space/app
//! names, app GUID and route key. Built once per update by [`RouteTableBuilder`]; after that it
//! is only read, so lookups need no lock. It knows nothing of where routes come from.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use super::instance::{CfIdentity, Instance};
use super::tags::RouteTags;

/// The instances one lookup yields: deduplicated by address, ordered by instance index then address.
pub type Instances = Arc<[Instance]>;

/// One endpoint as a route source describes it (the gorouter `/routes` element shape).
/// Unknown fields are ignored; `tags` may be `null` or absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct RouteEndpoint {
    pub address: String,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub server_cert_domain_san: Option<String>,
    /// The tags promfetcher uses; the app's shared with the app's other endpoints when read
    /// inside `tags::interning`.
    #[serde(default)]
    pub tags: Option<RouteTags>,
}

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

/// The route table at one moment.
#[derive(Debug)]
pub struct RouteTable {
    by_route: HashMap<String, Instances>,
    by_names: HashMap<(String, String, String), Instances>,
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
            AppQuery::Route(route) => self.by_route.get(&normalize_route_key(route)).cloned(),
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
            .map(|(key, instances)| (key.as_str(), instances))
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

/// Lower-cases, cuts a query string and trailing slashes, as gorouter's route keys are.
pub fn normalize_route_key(route: &str) -> String {
    let route = route.split('?').next().unwrap_or_default();
    route.trim_end_matches('/').to_ascii_lowercase()
}

/// Collects endpoints (from one or several sources), then freezes them into a [`RouteTable`].
#[derive(Debug, Default)]
pub struct RouteTableBuilder {
    /// route key → endpoints; a BTreeMap so the first route of an instance is well defined.
    routes: BTreeMap<String, Vec<RouteEndpoint>>,
}

impl RouteTableBuilder {
    /// Adds the endpoints of one route key. An address already present under that key is kept once.
    pub fn add_route(
        &mut self,
        route_key: &str,
        endpoints: impl IntoIterator<Item = RouteEndpoint>,
    ) {
        let list = self
            .routes
            .entry(normalize_route_key(route_key))
            .or_default();
        for endpoint in endpoints {
            if !list.iter().any(|known| known.address == endpoint.address) {
                list.push(endpoint);
            }
        }
    }

    pub fn build(self) -> RouteTable {
        let mut by_route = HashMap::with_capacity(self.routes.len());
        let mut apps: HashMap<String, AppInstances> = HashMap::new();
        let mut seen_in_app: HashSet<(String, String)> = HashSet::new();
        let mut endpoint_count = 0;
        for (route_key, endpoints) in self.routes {
            let host = route_key.split('/').next().unwrap_or_default().to_string();
            let mut instances = Vec::with_capacity(endpoints.len());
            for endpoint in endpoints {
                endpoint_count += 1;
                let instance = instance_of(&host, endpoint);
                let identity = &instance.identity;
                if identity.app.process_type == "web" && !identity.app.app_id.is_empty() {
                    let app_id = identity.app.app_id.to_ascii_lowercase();
                    if seen_in_app.insert((app_id.clone(), instance.address.clone())) {
                        apps.entry(app_id)
                            .or_insert_with(|| AppInstances::new(identity, &route_key))
                            .add(instance.clone(), &route_key);
                    }
                }
                instances.push(instance);
            }
            by_route.insert(route_key, sorted(instances));
        }
        let mut by_names = HashMap::with_capacity(apps.len());
        let mut by_guid = HashMap::with_capacity(apps.len());
        for (app_id, app) in apps {
            let app_tags = app.identity.app.clone();
            let instances = app.into_instances(&by_route);
            by_names.insert(
                (
                    app_tags.organization_name.clone(),
                    app_tags.space_name.clone(),
                    app_tags.app_name.clone(),
                ),
                instances.clone(),
            );
            by_guid.insert(app_id, instances);
        }
        RouteTable {
            by_route,
            by_names,
            by_guid,
            endpoint_count,
            built_at: SystemTime::now(),
        }
    }
}

/// An app's web instances while a table is built, and the one route they all came from, if so.
struct AppInstances {
    identity: CfIdentity,
    instances: Vec<Instance>,
    /// `None` once instances came from two routes.
    only_route: Option<String>,
}

impl AppInstances {
    fn new(identity: &CfIdentity, route_key: &str) -> AppInstances {
        AppInstances {
            identity: identity.clone(),
            instances: Vec::new(),
            only_route: Some(route_key.to_owned()),
        }
    }

    fn add(&mut self, instance: Instance, route_key: &str) {
        if self.only_route.as_deref() != Some(route_key) {
            self.only_route = None;
        }
        self.instances.push(instance);
    }

    /// The app's instances, sorted. When they all came from one route that lists nothing else
    /// (an app with one route, the common case), that route's list is shared instead of copied.
    fn into_instances(self, by_route: &HashMap<String, Instances>) -> Instances {
        let route = self.only_route.as_ref().and_then(|key| by_route.get(key));
        match route {
            Some(route) if route.len() == self.instances.len() => route.clone(),
            _ => sorted(self.instances),
        }
    }
}

fn instance_of(host: &str, endpoint: RouteEndpoint) -> Instance {
    let tags = endpoint.tags.unwrap_or_default();
    let tls_server_name = endpoint.tls.then(|| {
        endpoint
            .server_cert_domain_san
            .filter(|san| !san.is_empty())
            .unwrap_or_else(|| host.to_string())
    });
    Instance {
        address: endpoint.address,
        host: host.to_string(),
        tls_server_name,
        identity: CfIdentity {
            app: tags.app,
            instance_index: tags.instance_id,
        },
    }
}

/// Orders instances by numeric index, then address, so answers list instances stably.
fn sorted(mut instances: Vec<Instance>) -> Instances {
    instances.sort_by(|a, b| {
        let index = |i: &Instance| i.identity.instance_index.parse::<u64>().unwrap_or(u64::MAX);
        index(a)
            .cmp(&index(b))
            .then_with(|| a.address.cmp(&b.address))
    });
    instances.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_table() -> RouteTable {
        let json = include_str!("../../tests/data/gorouter-routes.example.json");
        let routes: BTreeMap<String, Vec<RouteEndpoint>> = serde_json::from_str(json).unwrap();
        let mut builder = RouteTableBuilder::default();
        for (key, endpoints) in routes {
            builder.add_route(&key, endpoints);
        }
        builder.build()
    }

    fn addresses(instances: &Instances) -> Vec<&str> {
        instances.iter().map(|i| i.address.as_str()).collect()
    }

    /// An app reached by one route is held once: the lookups by name, GUID and route share
    /// one list (at 250,000 endpoints a copy per index is tens of MiB).
    #[test]
    fn an_app_with_one_route_shares_that_routes_instances() {
        let body = simulated_foundation::LargeFoundation::new(3, 4).routes_body(0);
        let routes: BTreeMap<String, Vec<RouteEndpoint>> = serde_json::from_slice(&body).unwrap();
        let mut builder = RouteTableBuilder::default();
        for (key, endpoints) in routes {
            builder.add_route(&key, endpoints);
        }
        let table = builder.build();
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
        assert_eq!(by_names[1].identity.instance_index, "1");
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
        assert_eq!(route[0].host, "myapp.apps.example.com");
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
                app: Arc::new(crate::routes::tags::AppTags {
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
        builder.add_route(
            "jobs.example.com",
            [
                RouteEndpoint {
                    address: "10.0.0.1:1".into(),
                    tags: tags("web", "0"),
                    ..Default::default()
                },
                RouteEndpoint {
                    address: "10.0.0.2:1".into(),
                    tags: tags("worker", "0"),
                    ..Default::default()
                },
            ],
        );
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
        builder.add_route(
            "a.example.com/x/y",
            [RouteEndpoint {
                address: "10.0.0.9:1".into(),
                ..Default::default()
            }],
        );
        let table = builder.build();
        assert_eq!(
            addresses(&table.find_app("a.example.com/x/y").unwrap()),
            ["10.0.0.9:1"]
        );
    }
}
