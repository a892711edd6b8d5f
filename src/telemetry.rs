//! Logging set-up from the `logging` config keys: the original's level names, plain or JSON
//! lines, colours only on a terminal. `RUST_LOG`, when set, overrides the level. Nothing here logs secrets;
//! it only decides how log lines look.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{log_level_filter, LoggingConfig};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init_logging(logging: &LoggingConfig) {
    let level = log_level_filter(&logging.level).unwrap_or("info");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},actix_server=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!logging.no_color && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if logging.in_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A subscriber already installed (tests start several servers) is fine.
    drop(installed);
}
