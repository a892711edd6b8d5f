//! Logging set-up from the `logging` config keys: the original's level names, plain or JSON
//! lines, colours only on a terminal. `RUST_LOG`, when set, overrides the level. With
//! `in_json` every line on stderr is one JSON object, panics included. Nothing here logs
//! secrets; it only decides how log lines look.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{log_level_filter, LoggingConfig};

/// Installs the global subscriber. Call once, before anything logs.
///
/// JSON lines are flat: `timestamp`, `level`, `target`, `message` and the event's own fields
/// side by side, e.g. `{"timestamp":"...","level":"INFO","message":"request","method":"GET",
/// ...,"target":"access"}`.
pub fn init_logging(logging: &LoggingConfig) {
    let level = log_level_filter(&logging.level).unwrap_or("info");
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},actix_server=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!logging.no_color && std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = if logging.in_json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    // A subscriber already installed (tests start several servers) is fine.
    if installed.is_ok() && logging.in_json {
        log_panics();
    }
}

/// Panics go through the log too, so that a JSON log stays JSON.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        tracing::error!(
            thread = thread.name().unwrap_or("unnamed"),
            location,
            "panic: {message}"
        );
    }));
}
