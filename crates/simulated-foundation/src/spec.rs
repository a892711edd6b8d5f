//! What a simulated foundation contains: orgs, spaces, apps, their routes and how each instance
//! behaves. Plain data plus the deterministic GUIDs and the `dev_default` foundation; it binds no
//! port and starts no task.

use std::net::SocketAddr;
use std::time::Duration;

/// The route domain of every app in [`FoundationSpec::dev_default`].
pub const DEV_DOMAIN: &str = "apps.dev.local";
/// Basic-auth user of the simulated gorouter in [`FoundationSpec::dev_default`]; the real
/// routing-release default for `router.status.user`.
pub const DEV_GOROUTER_USER: &str = "router-status";
/// Basic-auth password of the simulated gorouter in [`FoundationSpec::dev_default`].
pub const DEV_GOROUTER_PASS: &str = "dev-password";
/// The path a healthy instance serves metrics on unless told otherwise.
pub const DEFAULT_METRICS_PATH: &str = "/metrics";

/// A whole simulated foundation: the gorouter's credentials and every app it routes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundationSpec {
    /// `status.user` of the simulated gorouter.
    pub gorouter_user: String,
    /// `status.pass` of the simulated gorouter.
    pub gorouter_pass: String,
    /// Every app, in the order its endpoints are added to the route pools.
    pub apps: Vec<AppSpec>,
}

/// Who registered an app's routes, which decides how its endpoints look in `/routes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registrar {
    /// Diego's route-emitter (NATS): `availability_zone` "z1", `protocol` "http1", the twelve
    /// Cloud Foundry `tags` and `private_instance_id`. Every ordinary app.
    #[default]
    RouteEmitter,
    /// The routing API (route_fetcher): `availability_zone` and `protocol` empty, `tags: null`,
    /// no `private_instance_id`. A platform route that no app name or GUID lookup can find.
    RoutingApi,
}

/// One app (one process type of it) and its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub org: String,
    pub space: String,
    pub name: String,
    pub app_guid: String,
    pub org_guid: String,
    pub space_guid: String,
    /// `web` normally; other process types are routed but not found by app lookups.
    pub process_type: String,
    /// Route keys as gorouter lists them (`host` or `host/path`); every instance is registered
    /// under every route. Keys are normalised like gorouter's `RouteKey()`: lower-cased, query
    /// cut, trailing `/` trimmed.
    pub routes: Vec<String>,
    pub instances: Vec<InstanceSpec>,
    /// How the endpoints are registered; [`Registrar::RouteEmitter`] unless built otherwise.
    pub registrar: Registrar,
}

/// One instance: what it serves and how it misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSpec {
    pub format: BodyFormat,
    /// The only path that serves metrics; any other path answers 404.
    pub metrics_path: String,
    /// When set, a request without exactly these credentials answers 401.
    pub basic_auth: Option<(String, String)>,
    pub behaviour: Behaviour,
    /// How long the instance waits before answering each request.
    pub delay: Duration,
    /// Extra generated gauge series `dev_load_series{n="..."}`, for load.
    pub extra_series: usize,
    /// Serve HTTPS with a certificate for the instance GUID signed by the foundation CA.
    pub tls: bool,
    /// Answer `Content-Encoding: gzip` when the request accepts it.
    pub gzip: bool,
}

/// The exposition format a healthy instance answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    /// `text/plain; version=0.0.4; charset=utf-8`
    #[default]
    Text,
    /// `application/openmetrics-text; version=1.0.0; charset=utf-8`
    OpenMetrics,
}

/// How an instance answers (or does not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a valid exposition on the metrics path.
    Healthy,
    /// Listed in the route table, but its address refuses connections.
    Down,
    /// Answers every request with this status and a short text body.
    Status(u16),
    /// 200 on the metrics path with a body that is not a valid exposition.
    Garbage,
    /// 302 on the metrics path with this `Location` (absolute URL or path).
    RedirectTo(String),
    /// Listed in the route table at this address, served by someone else (a test's own
    /// misbehaving server); the foundation starts nothing for it.
    External(SocketAddr),
}

impl FoundationSpec {
    /// An empty foundation whose gorouter accepts these credentials.
    pub fn new(gorouter_user: impl Into<String>, gorouter_pass: impl Into<String>) -> Self {
        FoundationSpec {
            gorouter_user: gorouter_user.into(),
            gorouter_pass: gorouter_pass.into(),
            apps: Vec::new(),
        }
    }

    /// Adds an app.
    pub fn with_app(mut self, app: AppSpec) -> Self {
        self.apps.push(app);
        self
    }

    /// The first app with this name.
    pub fn app(&self, name: &str) -> Option<&AppSpec> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The foundation `promfetcher dev` and the integration tests start from: org `acme`, space
    /// `dev`, domain `apps.dev.local`, gorouter credentials `router-status` / `dev-password`.
    ///
    /// | app | instances | notes |
    /// | --- | --- | --- |
    /// | `shop` | 3 | text; routes `shop.apps.dev.local` and `shop.apps.dev.local/api` |
    /// | `billing` | 2 | OpenMetrics |
    /// | `secure-api` | 2 | basic auth `metrics` / `s3cret`, path `/actuator/prometheus` |
    /// | `flaky` | 3 | index 1 is down (its address refuses) |
    /// | `vault` | 2 | TLS, certificates for the instance GUIDs |
    /// | `worker` | 1 | process type `worker` |
    /// | `legacy` | 1 | routing-API route `legacy.apps.dev.local`, `tags: null` |
    pub fn dev_default() -> Self {
        let app = |name: &str| AppSpec::new("acme", "dev", name);
        FoundationSpec::new(DEV_GOROUTER_USER, DEV_GOROUTER_PASS)
            .with_app(
                app("shop")
                    .with_routes([
                        format!("shop.{DEV_DOMAIN}"),
                        format!("shop.{DEV_DOMAIN}/api"),
                    ])
                    .with_instances(vec![InstanceSpec::healthy(); 3]),
            )
            .with_app(app("billing").with_instances(vec![InstanceSpec::healthy().openmetrics(); 2]))
            .with_app(app("secure-api").with_instances(vec![
                    InstanceSpec::healthy()
                        .with_basic_auth("metrics", "s3cret")
                        .with_metrics_path("/actuator/prometheus");
                    2
                ]))
            .with_app(app("flaky").with_instances(vec![
                InstanceSpec::healthy(),
                InstanceSpec::down(),
                InstanceSpec::healthy(),
            ]))
            .with_app(app("vault").with_instances(vec![InstanceSpec::healthy().with_tls(); 2]))
            .with_app(
                app("worker")
                    .with_process_type("worker")
                    .with_instances(vec![InstanceSpec::healthy()]),
            )
            .with_app(AppSpec::routing_api(
                "legacy",
                format!("legacy.{DEV_DOMAIN}"),
            ))
    }
}

impl AppSpec {
    /// A `web` app with GUIDs derived from its names, one route `NAME.apps.dev.local` and one
    /// healthy instance.
    pub fn new(org: &str, space: &str, name: &str) -> Self {
        AppSpec {
            org: org.to_owned(),
            space: space.to_owned(),
            name: name.to_owned(),
            app_guid: derived_guid("app", &[org, space, name]),
            org_guid: derived_guid("org", &[org]),
            space_guid: derived_guid("space", &[org, space]),
            process_type: "web".to_owned(),
            routes: vec![format!("{name}.{DEV_DOMAIN}")],
            instances: vec![InstanceSpec::healthy()],
            registrar: Registrar::RouteEmitter,
        }
    }

    /// A platform route registered through the routing API: one healthy instance, no org or
    /// space, `tags: null` in `/routes`.
    pub fn routing_api(name: &str, route: impl Into<String>) -> Self {
        AppSpec {
            org: String::new(),
            space: String::new(),
            org_guid: String::new(),
            space_guid: String::new(),
            process_type: String::new(),
            registrar: Registrar::RoutingApi,
            ..AppSpec::new("", "", name)
        }
        .with_routes([route.into()])
    }

    /// Replaces the routes.
    pub fn with_routes<S: Into<String>>(mut self, routes: impl IntoIterator<Item = S>) -> Self {
        self.routes = routes.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the instances; index `i` of the vector is instance index `i`.
    pub fn with_instances(mut self, instances: Vec<InstanceSpec>) -> Self {
        self.instances = instances;
        self
    }

    /// Sets the process type (`web`, `worker`, ...).
    pub fn with_process_type(mut self, process_type: &str) -> Self {
        self.process_type = process_type.to_owned();
        self
    }

    /// The GUID of instance `index`: 28 hex-and-dash characters like Diego's instance GUIDs,
    /// derived from the app GUID so it is the same on every run.
    pub fn instance_guid(&self, index: usize) -> String {
        let mut guid = derived_guid("instance", &[&self.app_guid, &index.to_string()]);
        guid.truncate(28);
        guid
    }
}

impl Default for InstanceSpec {
    fn default() -> Self {
        InstanceSpec::healthy()
    }
}

impl InstanceSpec {
    /// Plain HTTP, text format, `/metrics`, no auth, no delay, no extra series.
    pub fn healthy() -> Self {
        InstanceSpec {
            format: BodyFormat::Text,
            metrics_path: DEFAULT_METRICS_PATH.to_owned(),
            basic_auth: None,
            behaviour: Behaviour::Healthy,
            delay: Duration::ZERO,
            extra_series: 0,
            tls: false,
            gzip: false,
        }
    }

    /// An instance whose address refuses connections.
    pub fn down() -> Self {
        InstanceSpec::healthy().with_behaviour(Behaviour::Down)
    }

    /// An instance that answers every request with `status`.
    pub fn status(status: u16) -> Self {
        InstanceSpec::healthy().with_behaviour(Behaviour::Status(status))
    }

    /// An instance whose metrics path answers 200 with an invalid body.
    pub fn garbage() -> Self {
        InstanceSpec::healthy().with_behaviour(Behaviour::Garbage)
    }

    /// An instance served at `addr` by someone else; only its route-table entry is simulated.
    pub fn external(addr: SocketAddr) -> Self {
        InstanceSpec::healthy().with_behaviour(Behaviour::External(addr))
    }

    /// An instance whose metrics path answers 302 to `location`.
    pub fn redirect_to(location: impl Into<String>) -> Self {
        InstanceSpec::healthy().with_behaviour(Behaviour::RedirectTo(location.into()))
    }

    /// Sets the behaviour.
    pub fn with_behaviour(mut self, behaviour: Behaviour) -> Self {
        self.behaviour = behaviour;
        self
    }

    /// Answers in OpenMetrics 1.0 instead of the text format.
    pub fn openmetrics(mut self) -> Self {
        self.format = BodyFormat::OpenMetrics;
        self
    }

    /// Serves metrics on `path` instead of `/metrics`.
    pub fn with_metrics_path(mut self, path: &str) -> Self {
        self.metrics_path = path.to_owned();
        self
    }

    /// Requires these basic-auth credentials.
    pub fn with_basic_auth(mut self, user: &str, pass: &str) -> Self {
        self.basic_auth = Some((user.to_owned(), pass.to_owned()));
        self
    }

    /// Waits `delay` before answering each request.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds `n` generated gauge series.
    pub fn with_extra_series(mut self, n: usize) -> Self {
        self.extra_series = n;
        self
    }

    /// Serves HTTPS.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Gzips the answer when the request accepts it.
    pub fn with_gzip(mut self) -> Self {
        self.gzip = true;
        self
    }
}

/// A version-4-shaped GUID derived from `kind` and `parts`: the same inputs give the same GUID
/// on every run and machine, different inputs practically never collide.
pub fn derived_guid(kind: &str, parts: &[&str]) -> String {
    // Two independent FNV-1a 64-bit hashes over the length-prefixed inputs give 128 bits.
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x6c62_272e_07bb_0142;
    let mut feed = |bytes: &[u8]| {
        for &byte in bytes {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(17);
        }
    };
    for part in std::iter::once(kind).chain(parts.iter().copied()) {
        feed(&(part.len() as u64).to_le_bytes());
        feed(part.as_bytes());
    }
    // FNV alone barely changes the high bytes when only the last input byte differs: finish each
    // half with MurmurHash3's avalanche step, mixing in the other half.
    let fmix = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    let (a, b) = (fmix(a ^ b.rotate_left(32)), fmix(b ^ a));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_guids_are_stable_v4_shaped_and_distinct() {
        let shop = derived_guid("app", &["acme", "dev", "shop"]);
        assert_eq!(shop, derived_guid("app", &["acme", "dev", "shop"]));
        assert_ne!(shop, derived_guid("app", &["acme", "dev", "billing"]));
        assert_ne!(shop, derived_guid("app", &["acme", "devshop"]));
        let parsed = uuid::Uuid::parse_str(&shop).map(|u| u.get_version_num());
        assert_eq!(parsed, Ok(4));
        assert_eq!(shop.len(), 36);
    }

    #[test]
    fn instance_guids_look_like_diego_ones() {
        let app = AppSpec::new("acme", "dev", "shop");
        let guid = app.instance_guid(0);
        assert_eq!(guid.len(), 28);
        assert_eq!(
            guid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 4]
        );
        // Neighbouring indexes share no leading group, so GUIDs are easy to tell apart.
        assert_ne!(guid[..8], app.instance_guid(1)[..8]);
    }

    #[test]
    fn dev_default_has_the_documented_apps() {
        let spec = FoundationSpec::dev_default();
        let names: Vec<_> = spec.apps.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "shop",
                "billing",
                "secure-api",
                "flaky",
                "vault",
                "worker",
                "legacy"
            ]
        );
        let flaky = spec.app("flaky").map(|a| a.instances[1].behaviour.clone());
        assert_eq!(flaky, Some(Behaviour::Down));
        let worker = spec.app("worker").map(|a| a.process_type.as_str());
        assert_eq!(worker, Some("worker"));
    }
}
