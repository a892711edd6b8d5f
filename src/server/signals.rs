//! Turns process signals into the stop sequence: SIGINT/SIGTERM stop at once (listeners close,
//! in-flight requests finish within the drain timeout); SIGUSR1 first turns health to 503 and
//! keeps serving for the lame-duck period, then stops the same way. It only waits for signals;
//! the server performs the stop.

use futures_util::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
use signal_hook_tokio::Signals;

/// How the process was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// SIGINT or SIGTERM: drain and exit.
    Now,
    /// SIGUSR1: health 503 first, lame-duck period, then drain and exit.
    AfterLameDuck,
}

/// Listens for the stop signals. Create it before the servers start so no signal is missed.
pub struct SignalListener {
    signals: Signals,
}

impl SignalListener {
    pub fn new() -> std::io::Result<Self> {
        Ok(SignalListener {
            signals: Signals::new([SIGINT, SIGTERM, SIGUSR1])?,
        })
    }

    /// Waits for the first stop signal.
    pub async fn next(&mut self) -> StopRequest {
        match self.signals.next().await {
            Some(SIGUSR1) => StopRequest::AfterLameDuck,
            Some(_) | None => StopRequest::Now,
        }
    }
}
