//! How a module registers promfetcher's own metrics (served at `GET /metrics`): each module
//! owns its metrics and registers them here, in the one registry the server creates. It only
//! registers; what a metric counts is the owning module's business. The process metrics (CPU,
//! memory, file descriptors, start time) belong to no module and are registered here.

use prometheus::core::Collector;
use prometheus::Registry;

/// `metric`, registered in `registry`. Fails when a metric of the same name is already there.
pub fn registered<M>(registry: &Registry, metric: M) -> prometheus::Result<M>
where
    M: Collector + Clone + 'static,
{
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// The process collector's `process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds` and
/// `process_start_time_seconds`, read from `/proc` when collected. Linux only; elsewhere none.
pub fn register_process_metrics(registry: &Registry) -> prometheus::Result<()> {
    #[cfg(target_os = "linux")]
    registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ))?;
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
    Ok(())
}
