//! `promfetcher dev`: starts the simulated foundation and a promfetcher wired to it on
//! 127.0.0.1, prints commands to try, and runs until a stop signal. It adds no behaviour of
//! its own: the server is the one `promfetcher -c FILE` runs.

use anyhow::Context;

use crate::config::{Config, GoDuration, GorouterConfig, LoggingConfig, Secret, ShutdownConfig};
use crate::dev::{Foundation, FoundationSpec};
use crate::server::Server;
use crate::shutdown::SignalListener;

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

/// Runs promfetcher on the simulated foundation with its API on `port` and health on `health_port`.
pub async fn run_dev(port: u16, health_port: u16) -> anyhow::Result<()> {
    crate::telemetry::init_logging(&LoggingConfig::default());
    let signals = SignalListener::new().context("cannot listen for signals")?;
    let foundation = Foundation::start(FoundationSpec::dev_default())
        .await
        .context("cannot start the simulated foundation")?;
    let config = config_for_foundation(&foundation, port, health_port);
    let server = Server::start(&config).await?;
    println!("{}", try_these(&foundation, &server));
    server.run_until_signal(signals).await;
    foundation.shutdown().await;
    Ok(())
}

/// The banner: what runs where, and curl commands for each feature of the simulated apps.
fn try_these(foundation: &Foundation, server: &Server) -> String {
    let api = format!("http://{}", server.main_addr());
    let (user, pass) = foundation.gorouter_credentials();
    let shop_guid = foundation
        .spec()
        .apps
        .iter()
        .find(|a| a.name == "shop")
        .map(|a| a.app_guid.clone())
        .unwrap_or_default();
    format!(
        "promfetcher dev: a simulated foundation (org acme, space dev) and promfetcher on 127.0.0.1\n\
         \n  simulated gorouter  http://{gorouter}/routes  (basic auth {user} / {pass})\n\
         \x20 promfetcher API     {api}\n\
         \x20 health check        http://{health}/\n\
         \nTry:\n\
         \x20 curl {api}/v1/apps/acme/dev/shop/metrics                # 3 instances, text format\n\
         \x20 curl {api}/v1/apps/{shop_guid}/metrics    # the same app by GUID\n\
         \x20 curl '{api}/v1/apps/metrics?route_url=shop.apps.dev.local'\n\
         \x20 curl {api}/v1/apps/acme/dev/billing/metrics             # OpenMetrics instances\n\
         \x20 curl -u metrics:s3cret '{api}/v1/apps/acme/dev/secure-api/metrics?metric_path=/actuator/prometheus'\n\
         \x20 curl {api}/v1/apps/acme/dev/flaky/metrics               # one instance is down\n\
         \x20 curl {api}/v1/apps/acme/dev/vault/metrics               # TLS instances\n\
         \x20 curl {api}/metrics                                       # promfetcher's own metrics\n\
         \nStop with Ctrl-C.",
        gorouter = foundation.gorouter_addr(),
        health = server.health_addr(),
    )
}
