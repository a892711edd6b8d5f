//! The `promfetcher` command: run the service, check a config file, or run on a simulated
//! foundation (`promfetcher dev`). Everything it does is in the library; this file only parses
//! the command line and reports errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use promfetcher::config::Config;
use promfetcher::server::Server;
use promfetcher::shutdown::SignalListener;

#[derive(Parser)]
#[command(
    name = "promfetcher",
    version,
    about = "Scrapes every instance of a Cloud Foundry app and answers with one merged Prometheus exposition"
)]
struct Cli {
    /// YAML configuration file (the original promfetcher's keys); defaults without it.
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the effective configuration (secrets masked) and exit; non-zero with the first problem.
    CheckConfig,
    /// Run against a simulated Cloud Foundry foundation, with curl commands to try.
    Dev {
        /// Port of promfetcher's API on 127.0.0.1.
        #[arg(long, default_value_t = 8085)]
        port: u16,
        /// Port of the health check on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        health_port: u16,
        /// Take the routes from NATS registrations, as on current routing releases: starts a
        /// local nats-server (it must be installed: Debian package nats-server) on which the
        /// simulated apps register, instead of polling the simulated gorouter.
        #[arg(long)]
        nats: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("promfetcher: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::CheckConfig) => check_config(cli.config),
        Some(Command::Dev {
            port,
            health_port,
            nats,
        }) => runtime.block_on(promfetcher::dev_command::run_dev(port, health_port, nats)),
        None => runtime.block_on(serve(cli.config)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("promfetcher: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let loaded = Config::load(path.as_deref())?;
    for key in &loaded.unknown_keys {
        tracing::warn!(key, "unknown config key ignored");
        eprintln!("promfetcher: warning: unknown config key `{key}` ignored");
    }
    Ok(loaded.config)
}

fn check_config(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    print!("{}", config.to_masked_yaml());
    Ok(())
}

async fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    promfetcher::telemetry::init_logging(&config.logging);
    let signals = SignalListener::new().context("cannot listen for signals")?;
    let server = Server::start(&config).await?;
    server.run_until_signal(signals).await;
    Ok(())
}
