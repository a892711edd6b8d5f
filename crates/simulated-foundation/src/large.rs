//! A foundation too large to run: many apps of many instances that exist only as a route
//! table, for measuring how promfetcher holds one. The table is served by a gorouter of its own
//! ([`StandaloneGorouter`]; no instance listens) and the same endpoints are given as the
//! route-emitter registrations NATS would carry. Every endpoint is a distinct loopback address
//! (`127.x.y.z`), with the real gorouter's field set and route-emitter's twelve tags.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::gorouter::{
    encode_routes, lock, GorouterMode, GorouterState, RouteEndpoint, ServedRoutes,
};
use super::nats::{route_emitter_register, EmitterFields};
use super::{gorouter_loop, EmitterApp, AVAILABILITY_ZONE, ROUTE_TTL};

/// The domain of every generated route.
pub const LARGE_DOMAIN: &str = "apps.scale.internal";

/// `apps` apps of `instances` instances each, named and addressed from their numbers.
#[derive(Debug, Clone, Copy)]
pub struct LargeFoundation {
    pub apps: usize,
    pub instances: usize,
}

impl LargeFoundation {
    /// At most 65,280 apps of at most 254 instances (one loopback address each).
    pub fn new(apps: usize, instances: usize) -> LargeFoundation {
        assert!(apps <= 255 * 256 && (1..=254).contains(&instances));
        LargeFoundation { apps, instances }
    }

    pub fn endpoints(&self) -> usize {
        self.apps * self.instances
    }

    /// The `/routes` body, one route per app. Each `generation` after 0 adds one more app, so a
    /// new generation is a changed table of one app more.
    pub fn routes_body(&self, generation: usize) -> Bytes {
        let mut table: BTreeMap<String, Vec<RouteEndpoint>> = BTreeMap::new();
        for app in 0..self.apps + generation {
            let endpoints = (0..self.instances)
                .map(|index| self.endpoint(app, index))
                .collect();
            table.insert(route_of(app), endpoints);
        }
        Bytes::from(encode_routes(&table))
    }

    /// Every endpoint's `router.register` body, as route-emitter publishes it.
    pub fn registrations(&self) -> Vec<String> {
        let mut bodies = Vec::with_capacity(self.endpoints());
        for app in 0..self.apps {
            let facts = AppFacts::of(app);
            for index in 0..self.instances {
                let instance_guid = instance_guid(app, index);
                let tags = facts.tags(index, &instance_guid);
                bodies.push(route_emitter_register(&EmitterFields {
                    host: &host_of(app, index).to_string(),
                    port: INSTANCE_PORT,
                    tls_port: Some(INSTANCE_TLS_PORT),
                    uri: &route_of(app),
                    app_guid: &facts.app_guid,
                    instance_guid: &instance_guid,
                    index,
                    tags: &tags,
                }));
            }
        }
        bodies
    }

    fn endpoint(&self, app: usize, index: usize) -> RouteEndpoint {
        let instance_guid = instance_guid(app, index);
        RouteEndpoint {
            address: SocketAddr::from((host_of(app, index), INSTANCE_TLS_PORT)).to_string(),
            availability_zone: AVAILABILITY_ZONE.to_owned(),
            protocol: "http1".to_owned(),
            tls: true,
            ttl: ROUTE_TTL,
            route_service_url: String::new(),
            tags: Some(AppFacts::of(app).tags(index, &instance_guid)),
            private_instance_id: instance_guid.clone(),
            server_cert_domain_san: instance_guid,
        }
    }
}

/// The port every generated instance listens on, and its TLS port (the one gorouter uses).
const INSTANCE_PORT: u16 = 61000;
const INSTANCE_TLS_PORT: u16 = 61001;

fn host_of(app: usize, index: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, (app >> 8) as u8 + 1, app as u8, index as u8 + 1)
}

fn route_of(app: usize) -> String {
    format!("app-{app}.{LARGE_DOMAIN}")
}

fn instance_guid(app: usize, index: usize) -> String {
    format!("3e1c9b5a-7d2f-4a8e-{:04x}-{app:08x}{index:04x}", app >> 16)
}

/// What route-emitter tags say about an app: 100 orgs of 10 spaces, GUIDs from the numbers.
struct AppFacts {
    app_guid: String,
    app_name: String,
    org_guid: String,
    org_name: String,
    space_guid: String,
    space_name: String,
}

impl AppFacts {
    fn of(app: usize) -> AppFacts {
        let (org, space) = (app % 100, app % 1000);
        AppFacts {
            app_guid: format!("8c5a9f3e-2b1d-4e6f-9a7b-{app:012x}"),
            app_name: format!("app-{app}"),
            org_guid: format!("0a1b2c3d-4e5f-4061-8273-{org:012x}"),
            org_name: format!("org-{org}"),
            space_guid: format!("1f2e3d4c-5b6a-4798-8a7b-{space:012x}"),
            space_name: format!("space-{space}"),
        }
    }

    /// route-emitter's twelve tags for instance `index`.
    fn tags(&self, index: usize, instance_guid: &str) -> BTreeMap<String, String> {
        EmitterApp {
            guid: &self.app_guid,
            name: &self.app_name,
            org_guid: &self.org_guid,
            org: &self.org_name,
            space_guid: &self.space_guid,
            space: &self.space_name,
            process_type: "web",
        }
        .tags(index, instance_guid)
    }
}

/// A gorouter's `/routes` listener alone, on `127.0.0.1:0`, serving a body that can be replaced.
pub struct StandaloneGorouter {
    addr: SocketAddr,
    state: Arc<GorouterState>,
    _task: JoinSet<()>,
}

impl StandaloneGorouter {
    /// Serves `routes_body` to callers presenting `user` and `pass`.
    pub async fn start(user: &str, pass: &str, routes_body: Bytes) -> io::Result<Self> {
        let state = Arc::new(GorouterState {
            user: user.to_owned(),
            pass: pass.to_owned(),
            routes: Mutex::new(ServedRoutes::new(routes_body)),
            mode: Arc::new(Mutex::new(GorouterMode::Normal)),
        });
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let mut task = JoinSet::new();
        task.spawn(gorouter_loop(listener, state.clone()));
        Ok(StandaloneGorouter {
            addr,
            state,
            _task: task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `routes_body` from the next request on.
    pub fn set_routes(&self, routes_body: Bytes) {
        *lock(&self.state.routes) = ServedRoutes::new(routes_body);
    }

    /// When `/routes` last answered with the body it serves now; `None` before.
    pub fn last_served(&self) -> Option<Instant> {
        lock(&self.state.routes).last_served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_add_one_app_and_addresses_are_loopback_and_distinct() {
        let large = LargeFoundation::new(300, 3);
        let first: serde_json::Value = serde_json::from_slice(&large.routes_body(0)).unwrap();
        let second: serde_json::Value = serde_json::from_slice(&large.routes_body(1)).unwrap();
        assert_eq!(first.as_object().unwrap().len(), 300);
        assert_eq!(second.as_object().unwrap().len(), 301);
        let mut addresses = std::collections::HashSet::new();
        for endpoints in first.as_object().unwrap().values() {
            for endpoint in endpoints.as_array().unwrap() {
                let address: SocketAddr = endpoint["address"].as_str().unwrap().parse().unwrap();
                assert!(address.ip().is_loopback(), "{address}");
                assert!(addresses.insert(address), "{address} twice");
                assert_eq!(endpoint["tags"].as_object().unwrap().len(), 12);
            }
        }
        assert_eq!(addresses.len(), 900);
        assert_eq!(large.registrations().len(), 900);
    }
}
