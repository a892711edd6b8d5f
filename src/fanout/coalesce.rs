//! Coalescing of identical concurrent work: a caller that asks for something already being
//! produced for another caller waits for that result instead of starting its own. Nothing is
//! cached; once the work ends, the next caller starts afresh. The key decides what "identical"
//! means, so whoever builds it must put in everything that changes the result (for merged
//! answers: the app, path, format, timeout and every forwarded credential).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use futures_util::future::{BoxFuture, FutureExt, Shared};

type InFlight<V> = Shared<BoxFuture<'static, V>>;

/// Work in progress by key.
pub struct Coalescer<K, V: Clone> {
    in_flight: Mutex<HashMap<K, InFlight<V>>>,
}

/// Whether the caller started the work or joined work already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Started,
    Joined,
}

impl<K, V> Default for Coalescer<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Coalescer {
            in_flight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone + Send + Sync + 'static,
{
    /// Returns the result of the work running under `key`, starting it with `start` when none
    /// runs. The work goes on as long as one of its callers still waits for it.
    pub async fn run<F>(&self, key: K, start: impl FnOnce() -> F) -> (V, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (work, role) = {
            let mut in_flight = self.lock();
            match in_flight.get(&key) {
                Some(work) => (work.clone(), Role::Joined),
                None => {
                    let work = start().boxed().shared();
                    in_flight.insert(key.clone(), work.clone());
                    (work, Role::Started)
                }
            }
        };
        // The caller that started the work takes it off the map when it ends or gives up, so
        // later callers never join a finished or abandoned run.
        let _forget = (role == Role::Started).then(|| Forget {
            coalescer: self,
            key,
            work: work.clone(),
        });
        (work.await, role)
    }

    /// No work in progress.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, InFlight<V>>> {
        // The map stays consistent even if a holder panicked: every change is one insert/remove.
        self.in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes a run from the map when its starter is done with it, unless a newer run took its key.
struct Forget<'a, K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> {
    coalescer: &'a Coalescer<K, V>,
    key: K,
    work: InFlight<V>,
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Drop for Forget<'_, K, V> {
    fn drop(&mut self) {
        let mut in_flight = self.coalescer.lock();
        if in_flight
            .get(&self.key)
            .is_some_and(|current| current.ptr_eq(&self.work))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn callers_with_the_same_key_share_one_run() {
        let coalescer = Coalescer::<&str, usize>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let start = || {
            let runs = runs.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                runs.fetch_add(1, Ordering::SeqCst) + 1
            }
        };
        let (a, b, c) = tokio::join!(
            coalescer.run("app", start),
            coalescer.run("app", start),
            coalescer.run("other", start),
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one run per distinct key");
        assert_eq!(a.0, b.0, "the joined caller gets the starter's result");
        assert_eq!(
            (a.1, b.1, c.1),
            (Role::Started, Role::Joined, Role::Started)
        );
        assert!(coalescer.is_empty(), "finished runs are forgotten");
    }

    #[tokio::test]
    async fn a_run_that_ended_is_never_joined() {
        let coalescer = Coalescer::<&str, usize>::default();
        let runs = AtomicUsize::new(0);
        for expected in 1..=3 {
            let (value, role) = coalescer
                .run("app", || {
                    let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                    async move { n }
                })
                .await;
            assert_eq!((value, role), (expected, Role::Started));
        }
    }

    #[tokio::test]
    async fn a_starter_that_gives_up_leaves_the_run_to_those_still_waiting() {
        let coalescer = Arc::new(Coalescer::<&str, &str>::default());
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            "done"
        };
        let starter = {
            let coalescer = coalescer.clone();
            tokio::spawn(async move { coalescer.run("app", slow).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        let joiner = {
            let coalescer = coalescer.clone();
            tokio::spawn(async move { coalescer.run("app", slow).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        starter.abort();
        let (value, role) = joiner.await.unwrap();
        assert_eq!((value, role), ("done", Role::Joined));
        assert!(coalescer.is_empty());
    }
}
