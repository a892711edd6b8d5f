//! Wires the components from the checked [`Settings`]: route sources, scraper, fan-out, store,
//! broker, the main listener (API and own metrics) and the health listener, and stops them in
//! order. It owns start-up and shutdown; the work itself lives in the modules it wires.
//!
//! - `signals`: which signal asks for which kind of stop.
//! - `logging`: the log format the `logging` keys ask for.
//! - `dev_mode`: `promfetcher dev`, the same server on a simulated foundation.

pub mod dev_mode;
pub mod logging;
pub mod signals;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;
use tracing::Level;

use crate::config::pem::KeyPair;
use crate::fanout::FanOut;
use crate::http::app_metrics;
use crate::http::health::{self, Health};
use crate::http::metrics_auth;
use crate::http::ApiState;
use crate::http::{access_log, discovery, request_metrics, route_dump, user_guide};
use crate::routes::nats::NatsMetrics;
use crate::routes::{
    GorouterPoller, NatsSource, RouteSourceKind, RouteSourceMetrics, RouteSourceSettings,
    RouteSources, RouteTableHandle,
};
use crate::scrape::Scraper;
use crate::server::signals::{SignalListener, StopRequest};
use crate::service_broker::PromfetcherBroker;
use crate::settings::Settings;
use crate::store::{AppPathCache, DataDir, EndpointStore, StoreError, StoreMetrics, StoreSettings};

/// How long the API keeps an idle client connection open. Longer than the idle periods of
/// its callers (Prometheus scrapes at most every minute and keeps connections for 5 minutes;
/// load balancers and gorouter close idle backend connections within 90 s), so the caller
/// closes first: a server that closes first races the caller's next request, which then fails
/// with a reset (seen at actix's 5 s default when workers were busy for 5 s under load).
/// The original (Go's `http.Server` without `IdleTimeout`) never closed idle connections.
const KEEP_ALIVE: Duration = Duration::from_secs(120);

/// Why the server could not start: one line each, the cause kept as the error's source (print
/// the chain, e.g. `{error:#}` with anyhow, to see it).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {address} for the {listener}")]
    Bind {
        listener: &'static str,
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up {part}")]
    Setup {
        part: &'static str,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot use data_dir {path:?}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the endpoint database does not answer at start (set not_exit_when_conn_failed: true to \
         start without it)"
    )]
    DatabaseUnavailable { source: StoreError },
}

/// Wraps an error of setting up `part`, keeping it as the source.
fn setup_error<E>(part: &'static str) -> impl FnOnce(E) -> StartError
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    move |error| StartError::Setup {
        part,
        source: error.into(),
    }
}

/// One running actix server: its control handle and the task that drives it.
struct Listener {
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Listener {
    fn spawn(server: actix_web::dev::Server) -> Self {
        Listener {
            handle: server.handle(),
            task: tokio::spawn(server),
        }
    }

    /// Stops accepting, waits for in-flight requests (up to the server's shutdown timeout).
    async fn stop(self) {
        self.handle.stop(true).await;
        if let Ok(Err(error)) = self.task.await {
            tracing::warn!(%error, "listener ended with an error");
        }
    }
}

/// A running promfetcher.
pub struct Server {
    main_addr: SocketAddr,
    health_addr: SocketAddr,
    main: Listener,
    health_listener: Listener,
    health: Arc<Health>,
    route_sources: CancellationToken,
    store_refresher: CancellationToken,
    /// Kept so a temporary data directory lives as long as the server.
    _data_dir: DataDir,
    lame_duck_period: Duration,
}

impl Server {
    /// Binds both listeners and starts the route sources. Must run inside a tokio runtime.
    pub async fn start(settings: &Settings) -> Result<Server, StartError> {
        let registry = Registry::new();
        crate::own_metrics::register_process_metrics(&registry)
            .map_err(setup_error("process metrics"))?;
        let table = Arc::new(RouteTableHandle::new());
        let route_sources = CancellationToken::new();
        let (source_routes, route_source_status) = start_route_sources(
            &settings.route_sources,
            &registry,
            table.clone(),
            route_sources.clone(),
        )?;
        let scraper =
            Scraper::new(settings.scraper.clone()).map_err(setup_error("instance scraper"))?;
        let fan_out = FanOut::new(
            scraper,
            settings.external_exporters.clone(),
            settings.fan_out.clone(),
            &registry,
        )
        .map_err(setup_error("fan-out metrics"))?;
        let store_metrics =
            StoreMetrics::register(&registry).map_err(setup_error("store metrics"))?;
        let (store, data_dir) = start_store(&settings.store, store_metrics).await?;
        let store_refresher = CancellationToken::new();
        tokio::spawn(
            store
                .clone()
                .run_refresher(settings.store.refresh_interval, store_refresher.clone()),
        );
        if settings.broker.well_known_credentials {
            tracing::warn!(
                "broker.user and broker.pass are the defaults: anyone who can reach promfetcher \
                  can change the apps' metrics paths and read the route table \
                 (/routes); set them, or set both empty to switch the broker off"
            );
        } else if settings.broker.credentials.is_closed() {
            tracing::info!(
                "no broker.user nor broker.pass: the broker and /routes are switched off"
            );
        }
        let broker = Arc::new(PromfetcherBroker::new(&settings.broker, store.clone()));
        let api_state = ApiState::new(
            table.clone(),
            Arc::new(fan_out),
            store.cache().clone(),
            registry,
            settings.broker.credentials.clone(),
            settings.public_address.clone(),
            (source_routes, route_source_status.clone()),
        )
        .map_err(setup_error("API metrics"))?;
        let health = Arc::new(Health::new(table, route_source_status));
        let (main, main_addr) = bind_main(settings, web::Data::new(api_state), broker)?;
        let (health_listener, health_addr) = bind_health(settings, health.clone())?;
        // Both are bound before either serves, so a failed bind leaves nothing running.
        let main = Listener::spawn(main);
        let health_listener = Listener::spawn(health_listener);
        tracing::info!(api = %main_addr, health = %health_addr, "promfetcher listening");
        Ok(Server {
            main_addr,
            health_addr,
            main,
            health_listener,
            health,
            route_sources,
            store_refresher,
            _data_dir: data_dir,
            lame_duck_period: settings.shutdown.lame_duck_period,
        })
    }

    pub fn main_addr(&self) -> SocketAddr {
        self.main_addr
    }

    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    /// Serves until a stop signal, then stops as [`Server::stop`] does.
    pub async fn run_until_signal(self, mut signals: SignalListener) {
        let request = signals.next().await;
        tracing::info!(?request, "stop requested");
        self.stop(request).await;
    }

    /// Stops: for [`StopRequest::AfterLameDuck`], health turns 503 and traffic is still served
    /// for the lame-duck period; then listeners close and in-flight requests finish (up to the
    /// drain timeout).
    pub async fn stop(self, request: StopRequest) {
        self.health.start_draining();
        if request == StopRequest::AfterLameDuck {
            tracing::info!(
                seconds = self.lame_duck_period.as_secs_f64(),
                "health is 503; serving during the lame-duck period"
            );
            tokio::time::sleep(self.lame_duck_period).await;
        }
        self.route_sources.cancel();
        self.store_refresher.cancel();
        self.main.stop().await;
        self.health_listener.stop().await;
        tracing::info!("promfetcher stopped");
    }
}

/// Binds the main listener (API, broker, user guide, discovery, route dump, own metrics); it
/// serves once spawned.
fn bind_main(
    settings: &Settings,
    api_state: web::Data<ApiState>,
    broker: Arc<PromfetcherBroker>,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let listeners = &settings.listeners;
    let address = SocketAddr::new(listeners.bind_address, listeners.port);
    let metrics_auth = settings.metrics_auth.clone();
    let request_metrics = request_metrics::RequestMetrics::register(&api_state.registry)
        .map_err(setup_error("answer metrics"))?;
    let broker: Arc<dyn osb_broker::ServiceBroker> = broker;
    let broker_credentials = settings.broker.credentials.clone();
    let builder = HttpServer::new(move || {
        let metrics_auth = metrics_auth.clone();
        let request_metrics = request_metrics.clone();
        App::new()
            .app_data(api_state.clone())
            .wrap(middleware::Compress::default())
            .wrap_fn(move |req, service| metrics_auth::guard(metrics_auth.clone(), req, service))
            .wrap_fn(|req, service| access_log::logged(Level::INFO, req, service))
            .wrap_fn(move |req, service| {
                request_metrics::counted(request_metrics.clone(), req, service)
            })
            .service(osb_broker::scope(
                "/broker",
                broker.clone(),
                broker_credentials.clone(),
            ))
            .configure(app_metrics::configure)
            .configure(route_dump::configure)
            .configure(user_guide::configure)
            .configure(discovery::configure)
    })
    .keep_alive(KEEP_ALIVE)
    // Without it, the last segment of a large answer waited for the caller's delayed ACK
    // (Nagle's algorithm): 1 % of 1.4 MiB answers took 40 ms longer.
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(settings.shutdown.drain_timeout.as_secs().max(1));
    let builder = if let Some(identity) = &listeners.tls {
        builder.bind_rustls_0_23(address, server_tls(identity)?)
    } else {
        builder.bind(address)
    }
    .map_err(|source| StartError::Bind {
        listener: "API",
        address,
        source,
    })?;
    let bound = builder.addrs()[0];
    Ok((builder.run(), bound))
}

/// Binds the health listener; it serves once spawned.
fn bind_health(
    settings: &Settings,
    health: Arc<Health>,
) -> Result<(actix_web::dev::Server, SocketAddr), StartError> {
    let listeners = &settings.listeners;
    let address = SocketAddr::new(listeners.bind_address, listeners.health_port);
    let health = web::Data::from(health);
    let builder = HttpServer::new(move || {
        App::new()
            .app_data(health.clone())
            .wrap_fn(|req, service| access_log::logged(Level::DEBUG, req, service))
            .configure(health::configure)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(address)
    .map_err(|source| StartError::Bind {
        listener: "health check",
        address,
        source,
    })?;
    let bound = builder.addrs()[0];
    Ok((builder.run(), bound))
}

/// Opens the endpoint database and loads the cache. With the database down, start-up fails
/// unless `not_exit_when_conn_failed` is true; then the broker answers 503 until it returns.
async fn start_store(
    settings: &StoreSettings,
    metrics: StoreMetrics,
) -> Result<(Arc<EndpointStore>, DataDir), StartError> {
    let data_dir = DataDir::prepare(&settings.data_dir).map_err(|source| StartError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;
    let store = Arc::new(
        EndpointStore::new(
            settings,
            data_dir.path(),
            Arc::new(AppPathCache::new()),
            metrics,
        )
        .map_err(setup_error("endpoint database"))?,
    );
    if let Err(error) = store.ensure_ready().await {
        if !settings.start_without_database {
            return Err(StartError::DatabaseUnavailable { source: error });
        }
        tracing::error!(%error, "endpoint database unavailable at start; metrics use the default paths and the broker answers 503 until it returns");
    }
    Ok((store, data_dir))
}

/// Starts the configured route sources (gorouter polling, NATS), feeding `table` through one
/// [`RouteSources`]; they run until `stop` is cancelled. Returns the sources' latest routes
/// and their metrics, which also tell which source is failing.
fn start_route_sources(
    settings: &RouteSourceSettings,
    registry: &Registry,
    table: Arc<RouteTableHandle>,
    stop: CancellationToken,
) -> Result<(Arc<RouteSources>, Arc<RouteSourceMetrics>), StartError> {
    let route_metrics = RouteSourceMetrics::register(registry, table.clone())
        .map_err(setup_error("route metrics"))?;
    let kinds = settings.kinds();
    if kinds.is_empty() {
        tracing::warn!(
            "no gorouter and no NATS host configured: the route table stays empty and health stays 503"
        );
    }
    let sources = RouteSources::new(table, &kinds);
    if !settings.gorouters.is_empty() {
        let poller = GorouterPoller::new(
            &settings.gorouters,
            settings.poll_interval,
            sources.feed(RouteSourceKind::Gorouter),
            route_metrics.clone(),
        )
        .map_err(setup_error("gorouter client"))?;
        tokio::spawn(poller.run(stop.clone()));
    }
    if let Some(nats) = &settings.nats {
        let metrics = NatsMetrics::register(registry).map_err(setup_error("NATS metrics"))?;
        let source = NatsSource::new(
            nats.clone(),
            sources.feed(RouteSourceKind::Nats),
            metrics,
            route_metrics.clone(),
        );
        tokio::spawn(source.run(stop));
    }
    Ok((sources, route_metrics))
}

fn server_tls(identity: &KeyPair) -> Result<rustls::ServerConfig, StartError> {
    let identity = identity.clone();
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(identity.chain, identity.key)
        })
        .map_err(setup_error("TLS listener"))
}
