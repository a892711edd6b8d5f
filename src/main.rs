//! The `promfetcher` command: run the service, check a config file, run on a simulated
//! foundation (`promfetcher dev`), or export and import the broker's records (`promfetcher
//! store`). Everything it does is in the library; this file only parses
//! the command line and reports errors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use promfetcher::config::LoggingConfig;
use promfetcher::server::signals::SignalListener;
use promfetcher::server::Server;
use promfetcher::settings::Settings;

// Merging allocates and frees answer-sized buffers at a high rate from every worker thread.
// glibc's malloc returns them to the kernel and takes them back on each answer (page faults were
// half of the merge's time), and musl's malloc, which the static BOSH binary would otherwise
// use, is slower still; mimalloc keeps freed pages for reuse per thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc marks its arenas for huge pages,
/// so any 2 MiB of an arena touched at all became resident whole: promfetcher idled at about
/// 30 MiB and answering 10 × 500 text held 71 MiB, against 32 MiB with 4 KiB pages at the same
/// answers/s. The flag applies to memory already mapped, from the next page fault on. A kernel
/// without it (before 3.15) keeps huge pages, which costs memory, not correctness.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

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
    /// Back up or restore the service broker's records (service instances, bindings and the
    /// apps' metrics paths) in the database the config names.
    Store {
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand)]
enum StoreAction {
    /// Write every record to standard output (JSON Lines, format version 1).
    Export,
    /// Read an export from standard input and write it in one transaction: a record with the
    /// same id is replaced, others are kept; a bad or truncated file changes nothing.
    Import,
}

fn main() -> ExitCode {
    without_transparent_huge_pages();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::CheckConfig) => reported(check_config(cli.config)),
        Some(Command::Dev {
            port,
            health_port,
            nats,
        }) => reported(runtime().and_then(|runtime| {
            runtime.block_on(promfetcher::server::dev_mode::run_dev(
                port,
                health_port,
                nats,
            ))
        })),
        Some(Command::Store { action }) => {
            reported(runtime().and_then(|runtime| runtime.block_on(store(cli.config, action))))
        }
        None => serve(cli.config),
    }
}

/// Runs `promfetcher store export|import`; the summary goes to stderr, the export to stdout.
async fn store(path: Option<PathBuf>, action: StoreAction) -> anyhow::Result<()> {
    let settings = Settings::load(path.as_deref())?.settings;
    let (store, _data_dir) = promfetcher::store::open_configured(&settings.store).await?;
    match action {
        StoreAction::Export => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let counts = store.export(&mut out).await?;
            eprintln!("promfetcher: exported {}", summary(counts));
        }
        StoreAction::Import => {
            let counts = store
                .import(std::io::stdin().lock())
                .await
                .context("nothing was imported")?;
            eprintln!("promfetcher: imported {}", summary(counts));
        }
    }
    Ok(())
}

fn summary(counts: promfetcher::store::RecordCounts) -> String {
    format!(
        "{} service instances, {} bindings, {} app paths",
        counts.instances, counts.bindings, counts.app_endpoints
    )
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The exit code of a command whose errors go to stderr as they are.
fn reported(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("promfetcher: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: Option<PathBuf>) -> anyhow::Result<()> {
    let loaded = Settings::load(path.as_deref())?;
    for key in &loaded.unknown_keys {
        eprintln!("promfetcher: warning: unknown config key `{key}` ignored");
    }
    print!("{}", loaded.config.to_masked_yaml());
    Ok(())
}

/// Runs the service. Logging starts first, as the config's `logging` keys ask (read on their
/// own when the rest of the file is refused), so that every line, errors included, is written
/// in the configured format.
fn serve(path: Option<PathBuf>) -> ExitCode {
    let loaded = Settings::load(path.as_deref());
    let logging = match &loaded {
        Ok(loaded) => loaded.config.logging.clone(),
        Err(_) => path
            .as_deref()
            .and_then(LoggingConfig::of_file)
            .unwrap_or_default(),
    };
    promfetcher::server::logging::init_logging(&logging);
    let result = loaded
        .context("cannot load the configuration")
        .and_then(|loaded| {
            for key in &loaded.unknown_keys {
                tracing::warn!(key, "unknown config key ignored");
            }
            runtime()?.block_on(run(loaded.settings))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("promfetcher cannot run: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let signals = SignalListener::new().context("cannot listen for signals")?;
    let server = Server::start(&settings).await?;
    server.run_until_signal(signals).await;
    Ok(())
}
