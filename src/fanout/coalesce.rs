//! Coalescing of identical concurrent work: a caller that asks for something already being
//! produced for another caller waits for that result instead of starting its own. Nothing is
//! cached; once the work ends, the next caller starts afresh, even if the caller that started
//! it has not run since. The key decides what "identical" means, so whoever builds it must put
//! in everything that changes the result (for merged answers: the app, path, format, timeout
//! and every forwarded credential).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::{BoxFuture, FutureExt, Shared};

/// The work panicked. Carried to every caller waiting for it, so that none waits forever on a
/// poisoned shared future.
#[derive(Debug, Clone, Copy)]
struct Panicked;

type InFlight<V> = Shared<BoxFuture<'static, Result<V, Panicked>>>;

/// Work in progress by key, each run with its own number so that only that run's end or its
/// starter removes it.
type Runs<K, V> = Mutex<HashMap<K, (u64, InFlight<V>)>>;

/// Work in progress by key.
pub struct Coalescer<K, V: Clone> {
    in_flight: Arc<Runs<K, V>>,
    next_run: AtomicU64,
}

/// Whether the caller started the work or joined work already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Started,
    Joined,
}

impl<K, V> Default for Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Coalescer {
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            next_run: AtomicU64::new(0),
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Returns the result of the work running under `key`, starting it with `start` when none
    /// runs. The work goes on as long as one of its callers still waits for it.
    pub async fn run<F>(&self, key: K, start: impl FnOnce() -> F) -> (V, Role)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (work, role, run) = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some((run, work)) => (work.clone(), Role::Joined, *run),
                None => {
                    let run = self.next_run.fetch_add(1, Ordering::Relaxed);
                    let ended = Forget {
                        runs: Arc::clone(&self.in_flight),
                        key: key.clone(),
                        run,
                    };
                    let job = start();
                    // Off the map in the same poll that ends it (or panics), before any caller
                    // can see the outcome: whoever drives the work to its end (the starter or
                    // any joiner), a caller that comes after it starts afresh.
                    let work = async move {
                        let _ended = ended;
                        AssertUnwindSafe(job)
                            .catch_unwind()
                            .await
                            .map_err(|_| Panicked)
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key.clone(), (run, work.clone()));
                    (work, Role::Started, run)
                }
            }
        };
        // A starter that gives up takes the run off the map too: later callers start afresh
        // while those already waiting keep it going.
        let _forget = (role == Role::Started).then(|| Forget {
            runs: Arc::clone(&self.in_flight),
            key,
            run,
        });
        match work.await {
            Ok(value) => (value, role),
            // Each caller fails as a caller of unshared work would; none is left waiting.
            Err(Panicked) => panic!("the work this caller shared panicked"),
        }
    }

    /// No work in progress.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        lock(&self.in_flight).is_empty()
    }
}

fn lock<K, V>(runs: &Runs<K, V>) -> MutexGuard<'_, HashMap<K, (u64, InFlight<V>)>> {
    // The map stays consistent even if a holder panicked: every change is one insert/remove.
    runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes run number `run` of `key`, unless a newer run took its key already.
fn forget<K: Hash + Eq, V>(runs: &Runs<K, V>, key: &K, run: u64) {
    let mut in_flight = lock(runs);
    if in_flight
        .get(key)
        .is_some_and(|(current, _)| *current == run)
    {
        in_flight.remove(key);
    }
}

/// Forgets a run when dropped: by the work as it ends, and by its starter when done with it.
struct Forget<K: Hash + Eq, V> {
    runs: Arc<Runs<K, V>>,
    key: K,
    run: u64,
}

impl<K: Hash + Eq, V> Drop for Forget<K, V> {
    fn drop(&mut self) {
        forget(&self.runs, &self.key, self.run);
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
    async fn a_caller_after_the_end_starts_afresh_though_the_starter_has_not_run_since() {
        // Under load the starter's task may run long after a joiner drove the work to its end
        // and its caller asked again; that request must not get the old result.
        let coalescer = Coalescer::<&str, usize>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(Some(released)));
        let start = || {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let wait = released.lock().unwrap().take();
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                n
            }
        };
        let mut starter = std::pin::pin!(coalescer.run("app", start));
        assert!(futures_util::poll!(starter.as_mut()).is_pending());
        let mut joiner = std::pin::pin!(coalescer.run("app", start));
        assert!(futures_util::poll!(joiner.as_mut()).is_pending());
        release.send(()).unwrap();
        // the joiner drives the work to its end; the starter is not polled meanwhile
        assert_eq!(joiner.await, (1, Role::Joined));
        assert_eq!(coalescer.run("app", start).await, (2, Role::Started));
        assert_eq!(starter.await, (1, Role::Started));
        assert!(coalescer.is_empty());
    }

    #[test]
    fn work_that_panics_fails_every_caller_waiting_and_is_forgotten() {
        // Two callers on two threads, as on two HTTP workers. The work panics while one of
        // them drives it and the other, woken too, polls meanwhile: that one must learn of
        // the panic instead of waiting forever on a poisoned shared future.
        let coalescer = Arc::new(Coalescer::<&str, usize>::default());
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(Some(released)));
        let panicking = move || {
            let wait = released.lock().unwrap().take();
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                // the other caller's thread polls while this one is inside the poll
                std::thread::sleep(Duration::from_millis(200));
                panic!("a merge bug");
            }
        };
        let caller = |delay: u64| {
            let (coalescer, panicking) = (coalescer.clone(), panicking.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    let run = AssertUnwindSafe(coalescer.run("app", panicking)).catch_unwind();
                    // (`timeout` would poll it once more at the deadline and so hide a hang)
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep(Duration::from_secs(3)) => None,
                        outcome = run => Some(outcome),
                    }
                })
            })
        };
        let callers = [caller(0), caller(20)];
        std::thread::sleep(Duration::from_millis(100));
        release.send(()).unwrap();
        for caller in callers {
            let outcome = caller.join().unwrap().expect("no caller is left waiting");
            assert!(outcome.is_err(), "every caller fails");
        }
        assert!(coalescer.is_empty());
        let again = futures_util::FutureExt::now_or_never(coalescer.run("app", || async { 7 }));
        assert_eq!(again, Some((7, Role::Started)));
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
