//! A simulated Cloud Foundry foundation for `promfetcher dev` and the tests: a gorouter whose
//! `GET /routes` speaks the real wire format, the same routes as NATS registrations, and one
//! small HTTP(S) server per app instance, plus one external exporter, all on `127.0.0.1:0` in
//! the current tokio runtime. It stands in for Cloud Foundry only; as a crate of its own it
//! depends on no other promfetcher crate, so it cannot share their mistakes, and the service's
//! modules never import it.
//!
//! - `spec`: what the foundation contains ([`FoundationSpec::dev_default`] and builders).
//! - `gorouter`: `/routes` encoding, basic auth, the routes listener.
//! - `instance`: one instance's behaviours and request log.
//! - `metrics_body`: the text and OpenMetrics bodies.
//! - `exporter`: an external exporter that echoes the query parameters it is asked with.
//! - `tls`: the foundation CA and instance certificates.
//! - `nats`: route-emitter and route-registrar messages, and a registrar that publishes them.
//! - `nats_server`: a real `nats-server` process on a loopback port.
//! - `serve`: the accept loop shared by every listener.
//! - `large`: a route table of many apps without instances, its gorouter and registrations.

mod exporter;
mod gorouter;
mod instance;
mod large;
mod metrics_body;
mod nats;
mod nats_server;
mod serve;
mod spec;
mod tls;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinSet;

pub use exporter::DEV_EXPORTER_PATH;
pub use gorouter::{encode_routes, route_key, GorouterMode, RouteEndpoint};
pub use instance::SeenRequest;
pub use large::{LargeFoundation, StandaloneGorouter, LARGE_DOMAIN};
pub use metrics_body::{healthy_body, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
pub use nats::{DevRegistrar, Registration};
pub use nats_server::{find_nats_server, NatsServer, NatsServerTls};
pub use spec::{
    derived_guid, AppSpec, Behaviour, BodyFormat, FoundationSpec, InstanceSpec, Registrar,
    DEFAULT_METRICS_PATH, DEV_DOMAIN, DEV_GOROUTER_PASS, DEV_GOROUTER_USER,
};

use gorouter::{GorouterState, ServedRoutes};
use instance::{InstanceState, SeenLog};
use tls::DevCa;

/// The `ttl` gorouter shows for route-emitter routes (its `droplet_stale_threshold`).
const ROUTE_TTL: i64 = 120;
/// The availability zone every simulated endpoint is in.
const AVAILABILITY_ZONE: &str = "z1";

/// A running simulated foundation. Dropping it stops every listener and connection (their tasks
/// are aborted); [`Foundation::shutdown`] also waits until they are gone.
pub struct Foundation {
    spec: FoundationSpec,
    gorouter_addr: SocketAddr,
    gorouter_state: Arc<GorouterState>,
    /// The gorouter's accept loop alone, so that it can be stopped and started again.
    gorouter: JoinSet<()>,
    mode: Arc<Mutex<GorouterMode>>,
    ca_pem: String,
    routes_json: String,
    /// Parallel to `spec.apps`, then to each app's instances.
    instances: Vec<Vec<RunningInstance>>,
    /// The simulated external exporter and the requests it received.
    exporter_addr: SocketAddr,
    exporter_seen: SeenLog,
    /// Bound but never listening: keeps the port of each `Down` instance reserved and refusing.
    _refusing: Vec<TcpSocket>,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Foundation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Foundation")
            .field("gorouter_addr", &self.gorouter_addr)
            .field("apps", &self.spec.apps.len())
            .finish_non_exhaustive()
    }
}

struct RunningInstance {
    addr: SocketAddr,
    guid: String,
    seen: SeenLog,
}

impl Foundation {
    /// Starts the gorouter and every instance on `127.0.0.1:0`. Fails when a port cannot be
    /// bound, a certificate cannot be made, or the spec holds an invalid status code or
    /// redirect location.
    pub async fn start(spec: FoundationSpec) -> io::Result<Foundation> {
        let localhost = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let mut tasks = JoinSet::new();
        let mut refusing = Vec::new();
        let mut ca: Option<DevCa> = None;
        let mut instances = Vec::with_capacity(spec.apps.len());

        for app in &spec.apps {
            let mut running = Vec::with_capacity(app.instances.len());
            for (index, inst) in app.instances.iter().enumerate() {
                let guid = app.instance_guid(index);
                let seen: SeenLog = Arc::default();
                let addr = if let Behaviour::External(addr) = inst.behaviour {
                    addr
                } else if inst.behaviour == Behaviour::Down {
                    let socket = TcpSocket::new_v4()?;
                    socket.bind(localhost)?;
                    let addr = socket.local_addr()?;
                    refusing.push(socket);
                    addr
                } else {
                    let state = Arc::new(InstanceState::new(inst, index, seen.clone())?);
                    let acceptor = if inst.tls {
                        let ca = match &mut ca {
                            Some(ca) => ca,
                            None => ca.insert(DevCa::generate()?),
                        };
                        Some(ca.acceptor_for(&guid)?)
                    } else {
                        None
                    };
                    let listener = TcpListener::bind(localhost).await?;
                    let addr = listener.local_addr()?;
                    tasks.spawn(serve::accept_loop(listener, acceptor, move |req| {
                        instance::handle(state.clone(), req)
                    }));
                    addr
                };
                running.push(RunningInstance { addr, guid, seen });
            }
            instances.push(running);
        }

        let routes_json = encode_routes(&route_table(&spec, &instances));
        let mode = Arc::new(Mutex::new(GorouterMode::Normal));
        let state = Arc::new(GorouterState {
            user: spec.gorouter_user.clone(),
            pass: spec.gorouter_pass.clone(),
            routes: Mutex::new(ServedRoutes::new(Bytes::from(routes_json.clone()))),
            mode: mode.clone(),
        });
        let listener = TcpListener::bind(localhost).await?;
        let gorouter_addr = listener.local_addr()?;
        let mut gorouter = JoinSet::new();
        gorouter.spawn(gorouter_loop(listener, state.clone()));

        let exporter_seen = SeenLog::default();
        let listener = TcpListener::bind(localhost).await?;
        let exporter_addr = listener.local_addr()?;
        let seen = exporter_seen.clone();
        tasks.spawn(serve::accept_loop(listener, None, move |req| {
            exporter::handle(seen.clone(), req)
        }));

        let ca_pem = match ca {
            Some(ca) => ca.pem().to_owned(),
            // No TLS instance: still hand out a real CA so callers can always load it.
            None => DevCa::generate()?.pem().to_owned(),
        };
        Ok(Foundation {
            spec,
            gorouter_addr,
            gorouter_state: state,
            gorouter,
            mode,
            ca_pem,
            routes_json,
            instances,
            exporter_addr,
            exporter_seen,
            _refusing: refusing,
            tasks,
        })
    }

    /// Where the gorouter's routes listener is (`/routes`, `/health`).
    pub fn gorouter_addr(&self) -> SocketAddr {
        self.gorouter_addr
    }

    /// The gorouter's basic-auth user and password.
    pub fn gorouter_credentials(&self) -> (&str, &str) {
        (&self.spec.gorouter_user, &self.spec.gorouter_pass)
    }

    /// PEM of the CA that signed every TLS instance's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The address of instance `index` of the first app named `app_name`, as `/routes` lists it.
    ///
    /// # Panics
    /// When there is no such app or instance: a mistake in the calling test.
    pub fn instance_addr(&self, app_name: &str, index: usize) -> SocketAddr {
        self.running(app_name, index).addr
    }

    /// The instance GUID (`private_instance_id`, `server_cert_domain_san`) of instance `index`.
    ///
    /// # Panics
    /// When there is no such app or instance.
    pub fn instance_guid(&self, app_name: &str, index: usize) -> String {
        self.running(app_name, index).guid.clone()
    }

    /// Every request instance `index` of `app_name` received so far, oldest first.
    ///
    /// # Panics
    /// When there is no such app or instance.
    pub fn requests_seen(&self, app_name: &str, index: usize) -> Vec<SeenRequest> {
        self.running(app_name, index)
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Where the simulated external exporter listens (plain HTTP, metrics on
    /// [`DEV_EXPORTER_PATH`]).
    pub fn exporter_addr(&self) -> SocketAddr {
        self.exporter_addr
    }

    /// Every request the simulated external exporter received so far, oldest first.
    pub fn exporter_requests(&self) -> Vec<SeenRequest> {
        self.exporter_seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Changes how `/routes` answers from the next request on.
    pub fn set_gorouter_mode(&self, mode: GorouterMode) {
        *self
            .mode
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = mode;
    }

    /// Stops the gorouter as a crashed or stopped VM would: its port refuses connections and
    /// open connections are dropped. Returns once the port is closed.
    pub async fn stop_gorouter(&mut self) {
        self.gorouter.shutdown().await;
    }

    /// Starts the gorouter again on the same port (after [`Foundation::stop_gorouter`]); a no-op
    /// while it runs. Fails when the port was taken by someone else meanwhile.
    pub async fn start_gorouter(&mut self) -> io::Result<()> {
        if !self.gorouter.is_empty() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.gorouter_addr).await?;
        self.gorouter
            .spawn(gorouter_loop(listener, self.gorouter_state.clone()));
        Ok(())
    }

    /// The exact body `/routes` serves in [`GorouterMode::Normal`].
    pub fn routes_json(&self) -> String {
        self.routes_json.clone()
    }

    /// Every instance's registration under every route, as route-emitter (and route-registrar
    /// for routing-API apps) would publish it on NATS; the same endpoints `/routes` lists.
    pub fn registrations(&self) -> Vec<Registration> {
        let mut registrations = Vec::new();
        for (app, running) in self.spec.apps.iter().zip(&self.instances) {
            for (index, (inst, run)) in app.instances.iter().zip(running).enumerate() {
                let host = run.addr.ip().to_string();
                let port = run.addr.port();
                let tls_port = inst.tls.then_some(port);
                let tags = emitter_tags(app, index, &run.guid);
                for route in &app.routes {
                    let register = match app.registrar {
                        Registrar::RouteEmitter => {
                            nats::route_emitter_register(&nats::EmitterFields {
                                host: &host,
                                port,
                                tls_port,
                                uri: route,
                                app_guid: &app.app_guid,
                                instance_guid: &run.guid,
                                index,
                                tags: &tags,
                            })
                        }
                        Registrar::RoutingApi => {
                            nats::route_registrar_register(&host, port, route, &run.guid)
                        }
                    };
                    registrations.push(Registration {
                        app: app.name.clone(),
                        index,
                        register,
                        unregister: nats::unregister_body(&host, port, tls_port, route),
                    });
                }
            }
        }
        registrations
    }

    /// What this foundation was started from.
    pub fn spec(&self) -> &FoundationSpec {
        &self.spec
    }

    /// Stops every listener and connection and waits until they are gone.
    pub async fn shutdown(mut self) {
        self.gorouter.shutdown().await;
        self.tasks.shutdown().await;
    }

    fn running(&self, app_name: &str, index: usize) -> &RunningInstance {
        self.spec
            .apps
            .iter()
            .position(|a| a.name == app_name)
            .and_then(|app| self.instances[app].get(index))
            .unwrap_or_else(|| {
                panic!("the dev foundation has no app {app_name:?} with an instance {index}")
            })
    }
}

/// Serves the gorouter's routes listener.
async fn gorouter_loop(listener: TcpListener, state: Arc<GorouterState>) {
    serve::accept_loop(listener, None, move |req| {
        gorouter::handle(state.clone(), req)
    })
    .await;
}

/// The route table as gorouter holds it: route key → endpoints, in app then index order.
fn route_table(
    spec: &FoundationSpec,
    instances: &[Vec<RunningInstance>],
) -> BTreeMap<String, Vec<RouteEndpoint>> {
    let mut table: BTreeMap<String, Vec<RouteEndpoint>> = BTreeMap::new();
    for (app, running) in spec.apps.iter().zip(instances) {
        for (index, (inst, run)) in app.instances.iter().zip(running).enumerate() {
            let endpoint = route_endpoint(app, index, inst.tls, run);
            for route in &app.routes {
                table
                    .entry(route_key(route))
                    .or_default()
                    .push(endpoint.clone());
            }
        }
    }
    table
}

fn route_endpoint(app: &AppSpec, index: usize, tls: bool, run: &RunningInstance) -> RouteEndpoint {
    let mut endpoint = RouteEndpoint {
        address: run.addr.to_string(),
        availability_zone: String::new(),
        protocol: String::new(),
        tls,
        ttl: ROUTE_TTL,
        route_service_url: String::new(),
        tags: None,
        private_instance_id: String::new(),
        server_cert_domain_san: run.guid.clone(),
    };
    if app.registrar == Registrar::RouteEmitter {
        endpoint.availability_zone = AVAILABILITY_ZONE.to_owned();
        endpoint.protocol = "http1".to_owned();
        endpoint.tags = Some(emitter_tags(app, index, &run.guid));
        endpoint.private_instance_id = run.guid.clone();
    }
    endpoint
}

/// The twelve tags route-emitter sends for instance `index` of `app`, sorted.
fn emitter_tags(app: &AppSpec, index: usize, instance_guid: &str) -> BTreeMap<String, String> {
    EmitterApp {
        guid: &app.app_guid,
        name: &app.name,
        org_guid: &app.org_guid,
        org: &app.org,
        space_guid: &app.space_guid,
        space: &app.space,
        process_type: &app.process_type,
    }
    .tags(index, instance_guid)
}

/// What route-emitter's tags say about an app.
struct EmitterApp<'a> {
    guid: &'a str,
    name: &'a str,
    org_guid: &'a str,
    org: &'a str,
    space_guid: &'a str,
    space: &'a str,
    process_type: &'a str,
}

impl EmitterApp<'_> {
    /// The twelve tags of instance `index`, sorted.
    fn tags(&self, index: usize, instance_guid: &str) -> BTreeMap<String, String> {
        [
            ("app_id", self.guid),
            ("app_name", self.name),
            ("component", "route-emitter"),
            ("instance_id", &index.to_string()),
            ("organization_id", self.org_guid),
            ("organization_name", self.org),
            ("process_id", self.guid),
            ("process_instance_id", instance_guid),
            ("process_type", self.process_type),
            ("source_id", self.guid),
            ("space_id", self.space_guid),
            ("space_name", self.space),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}
