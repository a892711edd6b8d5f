//! How a module registers promfetcher's own metrics (served at `GET /metrics`): each module
//! owns its metrics and registers them here, in the one registry the server creates. It only
//! registers; what a metric counts is the owning module's business.

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
