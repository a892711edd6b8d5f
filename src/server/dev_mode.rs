//! `promfetcher dev`: starts the simulated foundation and a promfetcher wired to it on
//! 127.0.0.1 (polling its gorouter, or with `--nats` reading its registrations on a local
//! nats-server, and asking its external exporter about every app), prints commands to try, and
//! runs until a stop signal. It adds no behaviour of
//! its own: the server is the one `promfetcher -c FILE` runs.

use std::time::Duration;

use anyhow::Context;

use crate::config::{
    Config, ExternalExporterConfig, GoDuration, GorouterConfig, LoggingConfig, NatsHost, Secret,
    ShutdownConfig,
};
use crate::server::signals::SignalListener;
use crate::server::Server;
use crate::settings::Settings;
use simulated_foundation::{
    DevRegistrar, Foundation, FoundationSpec, NatsServer, DEV_EXPORTER_PATH,
};

/// A configuration that polls `foundation`'s gorouter, trusts its CA and listens on
/// 127.0.0.1 at `port` and `health_port` (0 for any free port).
pub fn config_for_foundation(foundation: &Foundation, port: u16, health_port: u16) -> Config {
    let (user, pass) = foundation.gorouter_credentials();
    let gorouter = foundation.gorouter_addr();
    Config {
        gorouters: vec![GorouterConfig {
            host: gorouter.ip().to_string(),
            port: gorouter.port(),
            user: user.to_string(),
            pass: Secret::new(pass),
        }],
        gorouter_poll_interval: GoDuration::from_secs(2),
        bind_address: "127.0.0.1".into(),
        port,
        health_check_port: health_port,
        base_url: format!("http://127.0.0.1:{port}"),
        data_dir: String::new(),
        ca_certs: foundation.ca_pem().to_string(),
        shutdown: ShutdownConfig {
            lame_duck_period: GoDuration::from_secs(1),
            ..ShutdownConfig::default()
        },
        ..Config::default()
    }
}

/// Name of the simulated external exporter in `promfetcher dev`'s config.
pub const DEV_EXPORTER_NAME: &str = "dev-exporter";

/// An `external_exporters` entry for `foundation`'s simulated exporter, asked about each app
/// with its GUID (`target`) and its names (`app`), which the exporter echoes back.
pub fn dev_exporter_config(foundation: &Foundation) -> ExternalExporterConfig {
    ExternalExporterConfig {
        name: DEV_EXPORTER_NAME.into(),
        host: foundation.exporter_addr().to_string(),
        metrics_path: DEV_EXPORTER_PATH.into(),
        scheme: "http".into(),
        params: [
            ("target", "{{ .AppID }}"),
            (
                "app",
                "{{ .OrganizationName }}/{{ .SpaceName }}/{{ .AppName }}",
            ),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), vec![value.to_string()]))
        .collect(),
    }
}

/// User and password of the local nats-server of `promfetcher dev --nats`.
const DEV_NATS_USER: &str = "nats";
const DEV_NATS_PASS: &str = "dev-nats-password";
/// How often the simulated registrars re-register (route-emitter's usual 20 s).
const DEV_REGISTER_INTERVAL: Duration = Duration::from_secs(20);

/// Runs promfetcher on the simulated foundation with its API on `port` and health on
/// `health_port`; with `nats`, the routes come from registrations on a local nats-server.
pub async fn run_dev(port: u16, health_port: u16, nats: bool) -> anyhow::Result<()> {
    crate::server::logging::init_logging(&LoggingConfig::default());
    let signals = SignalListener::new().context("cannot listen for signals")?;
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .context("cannot start the simulated foundation")?;
    let mut config = config_for_foundation(&foundation, port, health_port);
    config.external_exporters = vec![dev_exporter_config(&foundation)];
    let on_nats = if nats {
        Some(start_dev_nats(&foundation, &mut config).await?)
    } else {
        None
    };
    let settings = Settings::from_config(&config).context("the dev configuration is refused")?;
    let server = Server::start(&settings).await?;
    println!(
        "{}",
        try_these(&foundation, &server, on_nats.as_ref().map(|(n, _)| n))
    );
    server.run_until_signal(signals).await;
    drop(on_nats);
    foundation.shutdown().await;
    Ok(())
}

/// Starts a nats-server, registers the foundation's apps on it and points `config` at it
/// instead of the gorouter.
async fn start_dev_nats(
    foundation: &Foundation,
    config: &mut Config,
) -> anyhow::Result<(NatsServer, DevRegistrar)> {
    let server = NatsServer::start(DEV_NATS_USER, DEV_NATS_PASS, None)
        .await
        .context("promfetcher dev --nats needs a nats-server")?;
    let client = async_nats::ConnectOptions::new()
        .user_and_password(DEV_NATS_USER.into(), DEV_NATS_PASS.into())
        .connect(server.url())
        .await
        .context("cannot connect to the local nats-server")?;
    let registrar = DevRegistrar::start(client, foundation.registrations(), DEV_REGISTER_INTERVAL)
        .await
        .map_err(|error| anyhow::anyhow!("cannot register the simulated apps: {error}"))?;
    config.gorouters.clear();
    listen_to_local_nats(config, &server, DEV_NATS_USER, DEV_NATS_PASS);
    Ok((server, registrar))
}

/// Points `config` at the local `server` for route registrations, as `user` with `pass`, with a
/// start delay of 1 s (the simulated registrars answer `router.start` at once).
pub fn listen_to_local_nats(config: &mut Config, server: &NatsServer, user: &str, pass: &str) {
    config.nats.hosts = vec![NatsHost {
        hostname: "127.0.0.1".into(),
        port: server.port(),
    }];
    config.nats.user = user.into();
    config.nats.pass = Secret::new(pass);
    config.start_response_delay_interval = GoDuration::from_secs(1);
}

/// The banner: what runs where, and curl commands for each feature of the simulated apps.
fn try_these(foundation: &Foundation, server: &Server, nats: Option<&NatsServer>) -> String {
    let api = format!("http://{}", server.main_addr());
    let (user, pass) = foundation.gorouter_credentials();
    let shop_guid = foundation
        .spec()
        .apps
        .iter()
        .find(|a| a.name == "shop")
        .map(|a| a.app_guid.clone())
        .unwrap_or_default();
    let routes_from = match nats {
        Some(nats) => format!(
            "routes from NATS    {}  (user {DEV_NATS_USER} / {DEV_NATS_PASS}; the apps register there)",
            nats.url()
        ),
        None => "routes from the simulated gorouter".to_string(),
    };
    format!(
        "promfetcher dev: a simulated foundation (org acme, space dev) and promfetcher on 127.0.0.1\n\
         \n  simulated gorouter  http://{gorouter}/routes  (basic auth {user} / {pass})\n\
         \x20 {routes_from}\n\
         \x20 promfetcher API     {api}\n\
         \x20 external exporter   http://{exporter}{DEV_EXPORTER_PATH}  (echoes the params it is asked with)\n\
         \x20 health check        http://{health}/\n\
         \nTry:\n\
         \x20 curl {api}/v1/apps/acme/dev/shop/metrics                # 3 instances, text format\n\
         \x20 curl {api}/v1/apps/{shop_guid}/metrics    # the same app by GUID\n\
         \x20 curl '{api}/v1/apps/metrics?route_url=shop.apps.dev.local'\n\
         \x20 curl {api}/v1/apps/acme/dev/billing/metrics             # OpenMetrics instances\n\
         \x20 curl -u metrics:s3cret '{api}/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus'\n\
         \x20 curl {api}/v1/apps/acme/dev/flaky/metrics               # one instance is down\n\
         \x20 curl {api}/v1/apps/acme/dev/vault/metrics               # TLS instances\n\
         \x20 curl {api}/v1/apps/acme/dev/shop/metrics | grep dev_exporter  # the external exporter's samples\n\
         \x20 curl {api}/v1/apps/acme/dev/shop/only-app-metrics       # the same without the exporter\n\
         \x20 curl {api}/v1/apps/acme/dev/flaky/diagnosis             # why an instance's metrics are missing (JSON)\n\
         \x20 curl {api}/metrics                                       # promfetcher's own metrics\n\
         \nIn a browser:\n\
         \x20 {api}/v1/apps/acme/dev/flaky/diagnosis   # the same diagnosis as a page\n\
         \x20 {api}/doc                                # the user guide, with a form to diagnose any app\n\
         \nStop with Ctrl-C.",
        gorouter = foundation.gorouter_addr(),
        exporter = foundation.exporter_addr(),
        health = server.health_addr(),
    )
}
