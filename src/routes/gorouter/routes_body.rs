//! Reads one gorouter `/routes` body as it streams in: an object of route key → endpoints (the
//! gorouter's element shape), each route turned into the instance list the table holds as soon
//! as its last byte is in. A route whose JSON is byte for byte what the same gorouter sent the
//! last time keeps the list made then, so an unchanged body makes no new instance and is told
//! apart as unchanged, and a changed one costs only its changed routes. An unchanged route
//! costs one pass of a hash over its JSON and no allocation (its key is read in place).
//!
//! A route is taken as unchanged when the 64-bit hash of its JSON equals that of its JSON in the
//! last body. Two different JSON texts of one route hash alike with a chance of 2^-64 for text
//! not chosen against the hash's seed: were all of 25,000 routes to change at every 30 s poll
//! for ten years (2.6 × 10^11 comparisons), a missed change would have a chance of about one in
//! 70 million. The seed is drawn at random by each process and never leaves it (fingerprints
//! are only compared, never shown or ordered), so the app developers who choose part of the
//! JSON (names) cannot aim at it; and a miss would leave that one route with its previous
//! endpoints until its JSON changes again or the process restarts, not corrupt the table.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;

use super::json_members::{Member, ObjectMembers, SplitError};
use crate::routes::instance::Instance;
use crate::routes::sources::OtherSources;
use crate::routes::table::{instance_list, normalize_route_key, route_host, union, Instances};
use crate::routes::tags::{AppInterner, RouteTags};

/// One endpoint as gorouter's `/routes` lists it. Unknown fields are ignored; `tags` may be
/// `null` or absent.
#[derive(Debug, Deserialize)]
struct RouteEndpoint {
    address: String,
    #[serde(default)]
    tls: bool,
    #[serde(default)]
    server_cert_domain_san: Option<String>,
    #[serde(default)]
    tags: Option<RouteTags>,
}

/// A 64-bit hash of one route's JSON, to tell an unchanged route without keeping its text
/// (why 64 bits are enough: see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64);

/// Hashes routes' JSON with a seed of this process (the JSON is partly written by app
/// developers, who cannot know it).
#[derive(Debug, Default)]
pub struct Fingerprinter(foldhash::quality::RandomState);

impl Fingerprinter {
    fn of(&self, json: &[u8]) -> Fingerprint {
        use std::hash::BuildHasher;
        Fingerprint(self.0.hash_one(json))
    }
}

/// The routes of one gorouter's body, with a fingerprint of each route's JSON.
#[derive(Debug, Default)]
pub struct GorouterRoutes {
    routes: HashMap<Arc<str>, KnownRoute>,
}

#[derive(Debug)]
struct KnownRoute {
    fingerprint: Fingerprint,
    instances: Instances,
}

impl GorouterRoutes {
    /// Every normalised route key with its instances.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Instances)> {
        self.routes
            .iter()
            .map(|(key, known)| (key, &known.instances))
    }

    /// Number of route keys.
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    fn insert(&mut self, key: Arc<str>, route: KnownRoute) {
        match self.routes.get_mut(&key) {
            // A key listed twice once normalised (`A.example.com` and `a.example.com/`).
            Some(known) => known.instances = union(&known.instances, &route.instances),
            None => {
                self.routes.insert(key, route);
            }
        }
    }
}

/// Why a body is not a route table.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Structure(#[from] SplitError),
    #[error("a route key is not a JSON string: {0}")]
    Key(String),
    #[error("route {route:?}: {reason}")]
    Route { route: String, reason: String },
}

/// One body being read, against the routes the same gorouter sent the last time.
#[derive(Debug)]
pub struct RoutesBody<'a> {
    members: ObjectMembers,
    read: RouteReading<'a>,
}

/// What reading a body keeps besides the splitter.
#[derive(Debug)]
struct RouteReading<'a> {
    /// The last body's routes not met yet in this one.
    previous: GorouterRoutes,
    routes: GorouterRoutes,
    /// A route was added, changed or is now another source's list (routes left in `previous`
    /// at the end were removed).
    changed: bool,
    fingerprints: &'a Fingerprinter,
    apps: &'a AppInterner,
    others: &'a OtherSources,
}

impl<'a> RoutesBody<'a> {
    /// Starts reading a body; `previous` is what this gorouter's last body held, `apps` the
    /// app tags already known (endpoints of a known app share its tags), `others` the routes
    /// of the other sources (a list equal to theirs is theirs).
    pub fn new(
        previous: GorouterRoutes,
        fingerprints: &'a Fingerprinter,
        apps: &'a AppInterner,
        others: &'a OtherSources,
    ) -> Self {
        RoutesBody {
            members: ObjectMembers::default(),
            read: RouteReading {
                routes: GorouterRoutes {
                    routes: HashMap::with_capacity(previous.routes.len()),
                },
                previous,
                changed: false,
                fingerprints,
                apps,
                others,
            },
        }
    }

    /// Reads the next piece of the body.
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), BodyError> {
        let read = &mut self.read;
        self.members
            .feed(piece, &mut |member: Member<'_>| read.route(member))
    }

    /// The routes of the whole body, and whether they differ from the last body's; when the
    /// body ended early, why, and what [`RoutesBody::abandon`] gives.
    pub fn finish(self) -> Result<(GorouterRoutes, bool), (BodyError, GorouterRoutes)> {
        if let Err(e) = self.members.finish() {
            return Err((e.into(), self.abandon()));
        }
        let changed = self.read.changed || !self.read.previous.routes.is_empty();
        Ok((self.read.routes, changed))
    }

    /// What to compare the next body with when this one could not be read whole: the routes
    /// read so far and the last body's others.
    pub fn abandon(self) -> GorouterRoutes {
        let mut routes = self.read.previous;
        routes.routes.extend(self.read.routes.routes);
        routes
    }
}

impl RouteReading<'_> {
    fn route(&mut self, member: Member<'_>) -> Result<(), BodyError> {
        let key = route_key(member.key)?;
        let normalised = normalize_route_key(&key);
        let json = member.value.trim_ascii();
        let fingerprint = self.fingerprints.of(json);
        let known = self.previous.routes.remove_entry(&*normalised);
        let (key, instances) = match known {
            Some((key, known)) if known.fingerprint == fingerprint => (key, known.instances),
            known => {
                self.changed = true;
                let key = known.map_or_else(|| Arc::from(normalised), |(key, _)| key);
                let instances = self.instances(&key, json)?;
                (key, instances)
            }
        };
        let shared = self.others.share(&key, instances.clone());
        if !Arc::ptr_eq(&shared, &instances) {
            // Another source's equal list replaces this one: delivered, it frees this one.
            self.changed = true;
        }
        let route = KnownRoute {
            fingerprint,
            instances: shared,
        };
        self.routes.insert(key, route);
        Ok(())
    }

    /// The instances of the route `key` whose endpoints are `json`.
    fn instances(&self, key: &Arc<str>, json: &[u8]) -> Result<Instances, BodyError> {
        let endpoints: Vec<RouteEndpoint> =
            serde_json::from_slice(json).map_err(|e| BodyError::Route {
                route: key.to_string(),
                reason: e.to_string(),
            })?;
        let host = route_host(key);
        let apps = self.apps;
        let instances = endpoints
            .into_iter()
            .map(|endpoint| {
                let tags = endpoint.tags.map(|tags| RouteTags {
                    app: apps.share(tags.app),
                    instance_id: tags.instance_id,
                });
                let instance = Instance::new(
                    &endpoint.address,
                    &host,
                    endpoint.tls,
                    endpoint.server_cert_domain_san.as_deref(),
                    tags,
                );
                self.others.instance(key, instance)
            })
            .collect();
        Ok(instance_list(instances))
    }
}

/// A member's key as text: borrowed from the body unless it holds escapes.
fn route_key(json: &[u8]) -> Result<Cow<'_, str>, BodyError> {
    match serde_json::from_slice::<&str>(json) {
        Ok(key) => Ok(Cow::Borrowed(key)),
        Err(_) => serde_json::from_slice::<String>(json)
            .map(Cow::Owned)
            .map_err(|e| BodyError::Key(e.to_string())),
    }
}

/// The routes of a whole body at once, for tests that need a table.
#[cfg(test)]
pub fn parse_whole_body(body: &[u8]) -> Result<GorouterRoutes, BodyError> {
    let (fingerprints, apps) = (Fingerprinter::default(), AppInterner::default());
    let others = OtherSources::default();
    let mut reading = RoutesBody::new(GorouterRoutes::default(), &fingerprints, &apps, &others);
    reading.feed(body)?;
    reading
        .finish()
        .map(|(routes, _)| routes)
        .map_err(|(error, _)| error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
        "a.example.com": [{"address":"10.0.0.1:1","tls":true,"server_cert_domain_san":"g1",
            "tags":{"app_id":"a1","app_name":"a","instance_id":"0","process_type":"web"}}],
        "b.example.com/path": [{"address":"10.0.0.2:1","tags":{"app_id":"a1","app_name":"a",
            "instance_id":"1","process_type":"web"}}]
    }"#;

    /// Reads `body` in pieces of `size` against `previous`.
    fn read(
        body: &str,
        previous: GorouterRoutes,
        size: usize,
        context: &(Fingerprinter, AppInterner),
    ) -> Result<(GorouterRoutes, bool), BodyError> {
        let others = OtherSources::default();
        let mut reading = RoutesBody::new(previous, &context.0, &context.1, &others);
        for piece in body.as_bytes().chunks(size) {
            reading.feed(piece)?;
        }
        reading.finish().map_err(|(error, _)| error)
    }

    fn list<'a>(routes: &'a GorouterRoutes, key: &str) -> &'a Instances {
        &routes.routes[key].instances
    }

    #[test]
    fn routes_become_instances_with_their_host_and_the_apps_tags_shared() {
        let context = Default::default();
        let (routes, changed) = read(BODY, GorouterRoutes::default(), 7, &context).unwrap();
        assert!(changed);
        let a = &list(&routes, "a.example.com")[0];
        let b = &list(&routes, "b.example.com/path")[0];
        assert_eq!(a.tls_server_name.as_deref(), Some("g1"));
        assert_eq!(&*b.host, "b.example.com");
        assert!(Arc::ptr_eq(&a.identity.app, &b.identity.app));
    }

    #[test]
    fn the_same_body_again_is_unchanged_and_keeps_every_list() {
        let context = Default::default();
        let (first, _) = read(BODY, GorouterRoutes::default(), 64, &context).unwrap();
        let before = list(&first, "a.example.com").clone();
        let (again, changed) = read(BODY, first, 5, &context).unwrap();
        assert!(!changed);
        assert!(Arc::ptr_eq(&before, list(&again, "a.example.com")));

        let one_changed = BODY.replace("10.0.0.2:1", "10.0.0.3:1");
        let (next, changed) = read(&one_changed, again, 64, &context).unwrap();
        assert!(changed);
        assert!(Arc::ptr_eq(&before, list(&next, "a.example.com")));
        assert_eq!(&*list(&next, "b.example.com/path")[0].address, "10.0.0.3:1");

        let one_removed = r#"{"a.example.com": []}"#;
        let (_, changed) = read(one_removed, next, 64, &context).unwrap();
        assert!(changed);
    }

    #[test]
    fn keys_with_escapes_or_not_normalised_are_read_as_their_normalised_route() {
        let context = Default::default();
        let body =
            r#"{"A\u002eexample.com/": [], "b.example.com?x=1": [], "c\"d.example.com": []}"#;
        let (routes, _) = read(body, GorouterRoutes::default(), 3, &context).unwrap();
        let mut keys: Vec<&str> = routes.iter().map(|(key, _)| &**key).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a.example.com", "b.example.com", "c\"d.example.com"]);
        let bad_key = r#"{"a\q": []}"#;
        let error = read(bad_key, GorouterRoutes::default(), 64, &context).unwrap_err();
        assert!(
            error.to_string().starts_with("a route key is not"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_route_or_a_cut_body_is_an_error_that_says_where() {
        let context = Default::default();
        let bad = BODY.replace(r#""address":"10.0.0.2:1""#, r#""address":2"#);
        let error = read(&bad, GorouterRoutes::default(), 64, &context).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"route "b.example.com/path": invalid type"#),
            "{error}"
        );
        let cut = &BODY[..BODY.len() - 20];
        let error = read(cut, GorouterRoutes::default(), 64, &context).unwrap_err();
        assert!(error.to_string().contains("truncated"), "{error}");
    }
}
