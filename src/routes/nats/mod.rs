//! The NATS route source: learns the route table from the registrations route-emitter and
//! route-registrar publish, as gorouter does. It subscribes `router.*` (one subscription, so a
//! register and the unregister that follows it are applied in the order they were sent),
//! applies `router.register` / `router.unregister` to its own [`NatsRegistry`], answers
//! `router.greet` requests and publishes `router.start` at every (re)connection, so that
//! registrars send their routes at once. It never serves requests: every
//! [`SNAPSHOT_INTERVAL`], when something changed, it copies its routes into a one-place
//! mailbox that a builder task empties into the [`RouteFeed`] (a newer copy replaces one not
//! yet built). Messages are applied while a table is being built, a storm of registrations
//! costs at most one table build at a time, and no reader ever waits.
//!
//! Readiness: nothing is delivered until the connection is up and has lasted
//! `start_response_delay_interval` (registrars answer `router.start` within it); then the table
//! is complete enough to serve. After that the source stays ready through reconnections.
//!
//! Pruning follows gorouter: a non-TLS endpoint not registered again within its stale threshold
//! (`stale_threshold_in_seconds`, or `droplet_stale_threshold` when 0 or larger) is removed,
//! also while NATS is unreachable (gorouter's default, which prefers consistency over
//! availability). TLS endpoints (`tls_port` set) are not pruned by age, as in gorouter: an
//! address is only reused after the instance that held it unregistered, and a stale TLS
//! endpoint cannot be mistaken for another app's instance because the scrape verifies its
//! certificate against `server_cert_domain_san`. gorouter also drops a TLS endpoint whose
//! connection fails; promfetcher does not yet, so a TLS instance that vanishes without an
//! unregister (a crashed cell) stays listed, and its scrapes report an error, until its
//! address is registered again or promfetcher restarts.
//!
//! Messages with invalid JSON or a `route_service_url` not starting with `https` are dropped
//! and counted, as gorouter drops them.

mod message;
mod metrics;
mod registry;
mod settings;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

pub use message::{MessageError, RegistryMessage, StartMessage};
pub use metrics::NatsMetrics;
pub use registry::{Applied, NatsRegistry};
pub use settings::{NatsSettings, NatsSetupError};

use super::metrics::RouteSourceMetrics;
use super::sources::{RouteFeed, RouteSourceKind, SourceRoutes};

/// Longest time between a change and the snapshot that shows it.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(200);
/// How often stale endpoints are looked for.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);
/// Least time between two log lines about dropped messages.
const DROPPED_LOG_INTERVAL: Duration = Duration::from_secs(10);

const REGISTER: &str = "router.register";
const UNREGISTER: &str = "router.unregister";
const GREET: &str = "router.greet";
const START: &str = "router.start";

/// The NATS route source, ready to run.
pub struct NatsSource {
    settings: NatsSettings,
    feed: RouteFeed,
    metrics: NatsMetrics,
    route_metrics: Arc<RouteSourceMetrics>,
}

/// The newest routes not yet built into a table.
#[derive(Default)]
struct Mailbox {
    routes: Mutex<Option<SourceRoutes>>,
    filled: Notify,
}

impl Mailbox {
    fn put(&self, routes: SourceRoutes) {
        *self.routes.lock().unwrap_or_else(|p| p.into_inner()) = Some(routes);
        self.filled.notify_one();
    }

    fn take(&self) -> Option<SourceRoutes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What the running source knows besides its registry.
struct State {
    client: async_nats::Client,
    start: StartMessage,
    registry: NatsRegistry,
    /// Since when the current connection is up; `None` while disconnected.
    connected_since: Option<Instant>,
    ready: bool,
    last_prune: Instant,
    last_dropped_log: Option<Instant>,
    mailbox: Arc<Mailbox>,
}

impl NatsSource {
    pub fn new(
        settings: NatsSettings,
        feed: RouteFeed,
        metrics: NatsMetrics,
        route_metrics: Arc<RouteSourceMetrics>,
    ) -> Self {
        NatsSource {
            settings,
            feed,
            metrics,
            route_metrics,
        }
    }

    /// Connects (retrying forever), then applies messages until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let (events_tx, mut events) = mpsc::unbounded_channel();
        let options = self
            .settings
            .connect_options()
            .event_callback(move |event| {
                let events_tx = events_tx.clone();
                async move {
                    let _ = events_tx.send(event);
                }
            });
        let start = StartMessage {
            id: format!("{}-{}", self.settings.index, uuid::Uuid::new_v4()),
            hosts: local_ips(&self.settings.servers).await,
            minimum_register_interval_in_seconds: self.settings.registration_interval.as_secs(),
            prune_threshold_in_seconds: self.settings.droplet_stale_threshold.as_secs(),
        };
        let client = match options.connect(self.settings.servers.clone()).await {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot start the NATS client; no routes from NATS");
                return;
            }
        };
        let mut subscriber = match client.subscribe("router.*").await {
            Ok(subscriber) => subscriber,
            Err(error) => {
                tracing::error!(%error, "cannot subscribe to router.*; no routes from NATS");
                return;
            }
        };
        tracing::info!(servers = ?self.settings.servers, "NATS route source connecting");
        let mut state = State {
            client,
            start,
            registry: NatsRegistry::new(self.settings.droplet_stale_threshold, self.feed.apps()),
            connected_since: None,
            ready: false,
            last_prune: Instant::now(),
            last_dropped_log: None,
            mailbox: Arc::default(),
        };
        tokio::spawn(build_tables(
            self.feed.clone(),
            state.mailbox.clone(),
            self.metrics.clone(),
            stop.clone(),
        ));
        let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                Some(event) = events.recv() => self.on_event(&mut state, event).await,
                message = subscriber.next() => match message {
                    Some(message) => self.on_message(&mut state, message).await,
                    None => {
                        tracing::error!("the NATS subscription ended; no more route updates");
                        break;
                    }
                },
                _ = tick.tick() => self.on_tick(&mut state).await,
            }
        }
    }

    async fn on_event(&self, state: &mut State, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                self.metrics.connects.inc();
                self.metrics.connected.set(1);
                state.connected_since = Some(Instant::now());
                match state
                    .client
                    .publish(START, state.start.to_json().into())
                    .await
                {
                    Ok(()) => {
                        self.metrics.starts_sent.inc();
                        tracing::info!(id = %state.start.id, "connected to NATS; router.start sent");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "connected to NATS but router.start could not be sent")
                    }
                }
            }
            async_nats::Event::Disconnected => {
                self.metrics.disconnects.inc();
                self.metrics.connected.set(0);
                self.route_metrics.record_failure(
                    RouteSourceKind::Nats,
                    "the NATS connection is lost; reconnecting".to_string(),
                );
                state.connected_since = None;
                tracing::warn!(
                    "NATS connection lost; reconnecting (routes not registered again within their stale threshold will be pruned)"
                );
            }
            async_nats::Event::SlowConsumer(_) => tracing::warn!(
                "NATS dropped route messages: promfetcher reads them slower than they arrive"
            ),
            async_nats::Event::ServerError(error) => {
                tracing::warn!(%error, "NATS server error")
            }
            async_nats::Event::ClientError(error) => {
                tracing::warn!(%error, "NATS client error")
            }
            other => tracing::info!(event = %other, "NATS connection event"),
        }
    }

    async fn on_message(&self, state: &mut State, message: async_nats::Message) {
        let subject = message.subject.as_str();
        let outcome = match subject {
            REGISTER | UNREGISTER => match RegistryMessage::parse(&message.payload) {
                Ok(parsed) if subject == REGISTER => {
                    state.registry.register(&parsed, Instant::now()).outcome()
                }
                Ok(parsed) => state.registry.unregister(&parsed).outcome(),
                Err(error) => {
                    self.log_dropped(state, subject, &error);
                    error.outcome()
                }
            },
            GREET => match &message.reply {
                Some(reply) => {
                    match state
                        .client
                        .publish(reply.clone(), state.start.to_json().into())
                        .await
                    {
                        Ok(()) => "answered",
                        Err(_) => "answer_failed",
                    }
                }
                None => "no_reply_subject",
            },
            _ => "ignored",
        };
        let subject = match subject {
            REGISTER | UNREGISTER | GREET | START => subject,
            _ => "other",
        };
        self.metrics.message(subject, outcome);
    }

    fn log_dropped(&self, state: &mut State, subject: &str, error: &MessageError) {
        let now = Instant::now();
        if state
            .last_dropped_log
            .is_some_and(|at| now.duration_since(at) < DROPPED_LOG_INTERVAL)
        {
            return;
        }
        state.last_dropped_log = Some(now);
        tracing::warn!(
            subject,
            %error,
            "NATS route message dropped (promfetcher_nats_messages_total counts every one)"
        );
    }

    async fn on_tick(&self, state: &mut State) {
        state.registry.share_with(self.feed.others());
        let now = Instant::now();
        if now.duration_since(state.last_prune) >= PRUNE_INTERVAL {
            state.last_prune = now;
            let pruned = state.registry.prune(now);
            if pruned > 0 {
                self.metrics.pruned.inc_by(pruned as u64);
                tracing::debug!(pruned, "stale NATS endpoints pruned");
            }
        }
        self.metrics
            .endpoints
            .set(state.registry.endpoint_count() as i64);
        self.metrics.routes.set(state.registry.route_count() as i64);
        let publish = if state.ready {
            state.registry.take_changed()
        } else if state
            .connected_since
            .is_some_and(|since| now.duration_since(since) >= self.settings.start_response_delay)
        {
            state.ready = true;
            state.registry.take_changed();
            tracing::info!(
                routes = state.registry.route_count(),
                endpoints = state.registry.endpoint_count(),
                "NATS route table warm after the start delay"
            );
            true
        } else {
            return;
        };
        if state.connected_since.is_some() {
            self.route_metrics
                .record_success(RouteSourceKind::Nats, SystemTime::now());
        }
        if !publish {
            return;
        }
        state.mailbox.put(state.registry.routes());
    }
}

/// Builds a table from each routes copy put in `mailbox`, off the async workers, until `stop`.
async fn build_tables(
    feed: RouteFeed,
    mailbox: Arc<Mailbox>,
    metrics: NatsMetrics,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = mailbox.filled.notified() => {}
        }
        let Some(routes) = mailbox.take() else {
            continue;
        };
        let feed = feed.clone();
        match tokio::task::spawn_blocking(move || feed.deliver(routes)).await {
            Ok(published) => {
                if let Some(published) = published {
                    metrics.snapshots.inc();
                    tracing::debug!(
                        routes = published.routes,
                        endpoints = published.endpoints,
                        "route table updated from NATS"
                    );
                }
            }
            Err(error) => tracing::error!(%error, "building the route table failed"),
        }
    }
}

/// This host's addresses as seen towards the first NATS server, for `router.start`'s `hosts`
/// (gorouter lists its own IP there). Connecting a UDP socket sends nothing.
async fn local_ips(servers: &[String]) -> Vec<String> {
    let Some(server) = servers.first() else {
        return Vec::new();
    };
    let authority = server
        .split_once("://")
        .map_or(server.as_str(), |(_, rest)| rest);
    let Ok(mut addresses) = tokio::net::lookup_host(authority).await else {
        return Vec::new();
    };
    let Some(remote) = addresses.next() else {
        return Vec::new();
    };
    let local: std::net::SocketAddr = if remote.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(socket) = tokio::net::UdpSocket::bind(local).await else {
        return Vec::new();
    };
    if socket.connect(remote).await.is_err() {
        return Vec::new();
    }
    socket
        .local_addr()
        .map(|addr| vec![addr.ip().to_string()])
        .unwrap_or_default()
}
