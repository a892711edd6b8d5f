//! The NATS source's own mutable route registry, applying registrations as gorouter's route
//! registry does: one endpoint per URI of a message, keyed by normalised route key and by
//! address (`host:tls_port` when a TLS port is given, else `host:port`); registering a known
//! address replaces its fields and refreshes it; unregistering removes that address from each
//! URI and drops emptied routes; non-TLS endpoints not refreshed within their stale threshold
//! are pruned. It is owned by one task and never shared: the request path only sees the
//! immutable snapshots built from [`NatsRegistry::routes`], which share the registry's instances
//! and the lists of routes that did not change since the last snapshot. No I/O, no clock of
//! its own.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::message::RegistryMessage;
use crate::routes::instance::Instance;
use crate::routes::sources::{OtherSources, SourceRoutes};
use crate::routes::table::{instance_list, normalize_route_key, route_host, Instances};
use crate::routes::tags::{AppInterner, RouteTags};

/// What applying one message did (the strongest effect over its URIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Applied {
    /// An unregistration of an address no URI of it held.
    Unknown,
    /// A registration identical to what was known: only its stale clock was reset.
    Refreshed,
    /// A known address whose fields changed.
    Updated,
    /// A new endpoint under at least one URI.
    Added,
    /// At least one endpoint removed.
    Removed,
}

impl Applied {
    /// The `outcome` label of the messages counter.
    pub fn outcome(self) -> &'static str {
        match self {
            Applied::Unknown => "unknown_endpoint",
            Applied::Refreshed => "refreshed",
            Applied::Updated => "updated",
            Applied::Added => "added",
            Applied::Removed => "removed",
        }
    }
}

#[derive(Debug)]
struct Entry {
    instance: Arc<Instance>,
    /// `None` for TLS endpoints, which TTL pruning skips.
    stale_after: Option<Duration>,
    refreshed: Instant,
}

/// The endpoints registered under one route key.
#[derive(Debug)]
struct Pool {
    /// The route's host, shared by its instances.
    host: Arc<str>,
    /// Ordered by address.
    entries: Vec<Entry>,
    /// The list the last [`NatsRegistry::routes`] gave, while the pool has not changed since.
    listed: Option<Instances>,
}

impl Pool {
    fn position(&self, address: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|entry| (*entry.instance.address).cmp(address))
    }
}

/// Route key → endpoints.
#[derive(Debug)]
pub struct NatsRegistry {
    pools: HashMap<Arc<str>, Pool>,
    /// The app tags of the endpoints, one copy per app (shared with the other sources).
    apps: Arc<AppInterner>,
    endpoints: usize,
    /// `droplet_stale_threshold`: the default and the upper bound of a message's threshold.
    max_stale: Duration,
    changed: bool,
    /// The other sources' routes: an endpoint they list alike is their instance.
    others: OtherSources,
}

impl NatsRegistry {
    pub fn new(droplet_stale_threshold: Duration, apps: Arc<AppInterner>) -> Self {
        NatsRegistry {
            pools: HashMap::new(),
            apps,
            endpoints: 0,
            max_stale: droplet_stale_threshold,
            changed: false,
            others: OtherSources::default(),
        }
    }

    /// What the other sources delivered last; new endpoints they list alike share their
    /// instance, so that both sources' routes cost the memory of one.
    pub fn share_with(&mut self, others: OtherSources) {
        self.others = others;
    }

    /// The threshold gorouter gives a registration: `stale_threshold_in_seconds`, replaced by
    /// `droplet_stale_threshold` when 0 or larger; a negative value makes it stale at once.
    fn stale_threshold(&self, seconds: i64) -> Duration {
        if seconds < 0 {
            return Duration::ZERO;
        }
        let requested = Duration::from_secs(seconds.unsigned_abs());
        if requested.is_zero() || requested > self.max_stale {
            self.max_stale
        } else {
            requested
        }
    }

    /// Applies a `router.register` message received at `now`.
    pub fn register(&mut self, message: &RegistryMessage, now: Instant) -> Applied {
        let (address, tls) = message.address();
        let tags = message.tags.as_ref().map(|tags| RouteTags {
            app: self.apps.share(tags.app.clone()),
            instance_id: tags.instance_id.clone(),
        });
        let stale_after = (!tls).then(|| self.stale_threshold(message.stale_threshold_in_seconds));
        let mut applied = Applied::Refreshed;
        for uri in &message.uris {
            let key = normalize_route_key(uri);
            if key.is_empty() {
                continue;
            }
            let pool = match self.pools.get_mut(&*key) {
                Some(pool) => pool,
                None => {
                    let key: Arc<str> = Arc::from(&*key);
                    let pool = Pool {
                        host: route_host(&key),
                        entries: Vec::new(),
                        listed: None,
                    };
                    self.pools.entry(key).or_insert(pool)
                }
            };
            let instance = Instance::new(
                &address,
                &pool.host,
                tls,
                Some(message.server_cert_domain_san.as_str()),
                tags.clone(),
            );
            match pool.position(&address) {
                Ok(at) => {
                    let entry = &mut pool.entries[at];
                    entry.refreshed = now;
                    entry.stale_after = stale_after;
                    if *entry.instance != instance {
                        entry.instance = self.others.instance(&key, instance);
                        pool.listed = None;
                        applied = applied.max(Applied::Updated);
                    }
                }
                Err(at) => {
                    let entry = Entry {
                        instance: self.others.instance(&key, instance),
                        stale_after,
                        refreshed: now,
                    };
                    pool.entries.insert(at, entry);
                    pool.listed = None;
                    self.endpoints += 1;
                    applied = Applied::Added;
                }
            }
        }
        if applied > Applied::Refreshed {
            self.changed = true;
        }
        applied
    }

    /// Applies a `router.unregister` message: only host, port / tls_port and uris matter.
    pub fn unregister(&mut self, message: &RegistryMessage) -> Applied {
        let (address, _) = message.address();
        let mut applied = Applied::Unknown;
        for uri in &message.uris {
            let key = normalize_route_key(uri);
            let Some(pool) = self.pools.get_mut(&*key) else {
                continue;
            };
            if let Ok(at) = pool.position(&address) {
                pool.entries.remove(at);
                pool.listed = None;
                self.endpoints -= 1;
                applied = Applied::Removed;
                if pool.entries.is_empty() {
                    self.pools.remove(&*key);
                }
            }
        }
        if applied == Applied::Removed {
            self.changed = true;
        }
        applied
    }

    /// Removes the non-TLS endpoints not refreshed within their threshold; returns how many.
    pub fn prune(&mut self, now: Instant) -> usize {
        let mut pruned = 0;
        self.pools.retain(|_, pool| {
            let before = pool.entries.len();
            pool.entries.retain(|entry| {
                entry
                    .stale_after
                    .is_none_or(|after| now.saturating_duration_since(entry.refreshed) <= after)
            });
            if pool.entries.len() < before {
                pruned += before - pool.entries.len();
                pool.listed = None;
            }
            !pool.entries.is_empty()
        });
        if pruned > 0 {
            self.endpoints -= pruned;
            self.changed = true;
        }
        self.apps.forget_unused();
        pruned
    }

    /// Whether anything changed since the last call (refreshes do not count).
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The current routes, for a new table snapshot. The list of a route that did not change
    /// since the last call is the one given then.
    pub fn routes(&mut self) -> SourceRoutes {
        self.pools
            .iter_mut()
            .map(|(key, pool)| {
                let entries = &pool.entries;
                let listed = pool.listed.get_or_insert_with(|| {
                    instance_list(entries.iter().map(|e| e.instance.clone()).collect())
                });
                (key.clone(), listed.clone())
            })
            .collect()
    }

    pub fn route_count(&self) -> usize {
        self.pools.len()
    }

    pub fn endpoint_count(&self) -> usize {
        self.endpoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THRESHOLD: Duration = Duration::from_secs(120);

    fn message(body: &str) -> RegistryMessage {
        RegistryMessage::parse(body.as_bytes()).unwrap()
    }

    fn addresses(registry: &mut NatsRegistry, key: &str) -> Vec<String> {
        let mut found: Vec<String> = registry
            .routes()
            .get(key)
            .map(|eps| eps.iter().map(|e| e.address.to_string()).collect())
            .unwrap_or_default();
        found.sort();
        found
    }

    #[test]
    fn one_endpoint_per_uri_under_normalised_keys() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        let now = Instant::now();
        let applied = registry.register(
            &message(r#"{"host":"10.0.0.1","port":8080,"uris":["App.Example.com/","app.example.com/api?x=1"]}"#),
            now,
        );
        assert_eq!(applied, Applied::Added);
        assert_eq!(
            addresses(&mut registry, "app.example.com"),
            ["10.0.0.1:8080"]
        );
        assert_eq!(
            addresses(&mut registry, "app.example.com/api"),
            ["10.0.0.1:8080"]
        );
        assert_eq!((registry.route_count(), registry.endpoint_count()), (2, 2));
        assert!(registry.take_changed());
        assert!(!registry.take_changed());
    }

    #[test]
    fn a_heartbeat_refreshes_without_a_change_and_new_fields_update() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        let now = Instant::now();
        let body = r#"{"host":"10.0.0.1","port":8080,"uris":["a.example.com"],"tags":{"instance_id":"0"}}"#;
        registry.register(&message(body), now);
        registry.take_changed();
        assert_eq!(registry.register(&message(body), now), Applied::Refreshed);
        assert!(!registry.take_changed());
        let changed = body.replace(r#""0""#, r#""1""#);
        assert_eq!(registry.register(&message(&changed), now), Applied::Updated);
        assert!(registry.take_changed());
        assert_eq!(registry.endpoint_count(), 1);
        let routes = registry.routes();
        assert_eq!(&*routes["a.example.com"][0].identity.instance_index, "1");
    }

    #[test]
    fn tls_port_wins_and_unregister_matches_it() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        let register = r#"{"host":"10.0.1.12","port":61012,"tls_port":61014,"uris":["myapp.apps.example.com"],"server_cert_domain_san":"guid"}"#;
        registry.register(&message(register), Instant::now());
        let routes = registry.routes();
        let endpoint = &routes["myapp.apps.example.com"][0];
        assert_eq!(&*endpoint.address, "10.0.1.12:61014");
        assert_eq!(endpoint.tls_server_name.as_deref(), Some("guid"));
        let wrong_port = r#"{"host":"10.0.1.12","port":61012,"uris":["myapp.apps.example.com"]}"#;
        assert_eq!(registry.unregister(&message(wrong_port)), Applied::Unknown);
        let unregister = r#"{"host":"10.0.1.12","port":61012,"tls_port":61014,"uris":["myapp.apps.example.com"]}"#;
        assert_eq!(registry.unregister(&message(unregister)), Applied::Removed);
        assert_eq!((registry.route_count(), registry.endpoint_count()), (0, 0));
    }

    #[test]
    fn unregister_removes_only_the_named_uris() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        registry.register(
            &message(r#"{"host":"h","port":1,"uris":["a.example.com","b.example.com"]}"#),
            Instant::now(),
        );
        registry.unregister(&message(
            r#"{"host":"h","port":1,"uris":["A.example.com"]}"#,
        ));
        assert!(addresses(&mut registry, "a.example.com").is_empty());
        assert_eq!(addresses(&mut registry, "b.example.com"), ["h:1"]);
    }

    #[test]
    fn stale_thresholds_are_clamped_as_gorouter_does() {
        let registry = NatsRegistry::new(THRESHOLD, Arc::default());
        assert_eq!(registry.stale_threshold(0), THRESHOLD);
        assert_eq!(registry.stale_threshold(60), Duration::from_secs(60));
        assert_eq!(registry.stale_threshold(121), THRESHOLD);
        assert_eq!(registry.stale_threshold(-1), Duration::ZERO);
    }

    #[test]
    fn pruning_removes_stale_plain_endpoints_but_not_tls_ones() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        let start = Instant::now();
        registry.register(
            &message(
                r#"{"host":"h","port":1,"uris":["a.example.com"],"stale_threshold_in_seconds":10}"#,
            ),
            start,
        );
        registry.register(
            &message(r#"{"host":"h","port":2,"uris":["a.example.com"]}"#),
            start,
        );
        registry.register(
            &message(r#"{"host":"h","port":3,"tls_port":4,"uris":["a.example.com"]}"#),
            start,
        );
        registry.take_changed();
        assert_eq!(registry.prune(start + Duration::from_secs(10)), 0);
        assert_eq!(registry.prune(start + Duration::from_secs(11)), 1);
        assert!(registry.take_changed());
        assert_eq!(addresses(&mut registry, "a.example.com"), ["h:2", "h:4"]);
        assert_eq!(registry.prune(start + Duration::from_secs(121)), 1);
        assert_eq!(addresses(&mut registry, "a.example.com"), ["h:4"]);
        assert_eq!(registry.endpoint_count(), 1);
    }

    #[test]
    fn a_refresh_restarts_the_stale_clock() {
        let mut registry = NatsRegistry::new(Duration::from_secs(5), Arc::default());
        let start = Instant::now();
        let body = r#"{"host":"h","port":1,"uris":["a.example.com"]}"#;
        registry.register(&message(body), start);
        registry.register(&message(body), start + Duration::from_secs(4));
        assert_eq!(registry.prune(start + Duration::from_secs(8)), 0);
        assert_eq!(registry.prune(start + Duration::from_secs(10)), 1);
    }

    #[test]
    fn a_snapshot_shares_the_lists_of_routes_that_did_not_change() {
        let mut registry = NatsRegistry::new(THRESHOLD, Arc::default());
        let now = Instant::now();
        for body in [
            r#"{"host":"h","port":1,"uris":["a.example.com"]}"#,
            r#"{"host":"h","port":2,"uris":["b.example.com"]}"#,
        ] {
            registry.register(&message(body), now);
        }
        let first = registry.routes();
        registry.register(
            &message(r#"{"host":"h","port":3,"uris":["b.example.com"]}"#),
            now,
        );
        let second = registry.routes();
        assert!(Arc::ptr_eq(
            &first["a.example.com"],
            &second["a.example.com"]
        ));
        assert_eq!(second["b.example.com"].len(), 2);
    }
}
