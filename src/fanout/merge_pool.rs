//! The threads that parse and merge fan-outs: one per core, jobs run in the order they came, and
//! a job goes to the lowest-numbered idle thread. Parsing and merging are CPU work that must stay
//! off the HTTP workers; tokio's blocking pool would do that too, but its idle threads take turns,
//! and the allocator keeps each thread's freed pages until that thread allocates again: after
//! back-to-back answers of 100 × 2,000 series, every idle thread still held one merge's memory
//! (peak RSS 231 MiB against 140 MiB with one thread serving them in turn). Preferring the lowest
//! idle thread keeps consecutive merges on the same thread, whose freed pages serve the next one.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// What a job computes, and then hands its result to the caller.
type Job = Box<dyn FnOnce() -> Delivery + Send>;
/// Gives a job's result to its caller.
type Delivery = Box<dyn FnOnce() + Send>;

/// A job that panicked (a bug in the code it ran), with the panic's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JobPanicked(String);

impl JobPanicked {
    fn from_payload(payload: &(dyn std::any::Any + Send)) -> JobPanicked {
        let message = payload
            .downcast_ref::<&str>()
            .map(|message| message.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned());
        JobPanicked(message.unwrap_or_else(|| "a panic without a message".into()))
    }
}

/// A fixed set of merge threads; dropping the pool lets them finish their jobs and exit.
pub struct MergePool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// One per thread, so that a job wakes exactly the thread it was given to.
    wake: Vec<Condvar>,
}

struct State {
    /// Jobs no thread was free for, oldest first.
    waiting: VecDeque<Job>,
    /// Per thread: idle and waiting for work.
    idle: Vec<bool>,
    /// Per thread: the job handed to it while it was idle.
    handed: Vec<Option<Job>>,
    closed: bool,
}

impl MergePool {
    /// Starts `threads` threads (at least one), named `merge-N`.
    pub fn new(threads: usize) -> MergePool {
        let threads = threads.max(1);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                // Until its first job, a thread counts as idle, even before it has started.
                idle: vec![true; threads],
                handed: (0..threads).map(|_| None).collect(),
                closed: false,
            }),
            wake: (0..threads).map(|_| Condvar::new()).collect(),
        });
        for index in 0..threads {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("merge-{index}"))
                .spawn(move || shared.work(index))
                .expect("the system can start a merge thread");
        }
        MergePool { shared }
    }

    /// One thread per core.
    pub fn per_core() -> MergePool {
        MergePool::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    /// Runs `job` on a merge thread and waits for its result; a job that panics fails its
    /// caller with the panic's message, and the thread goes on. A job whose caller stopped
    /// waiting before its turn came (every caller of the fan-out gone, timed out or
    /// disconnected) is skipped: under overload, the requests still waiting do not queue behind
    /// work nobody will read.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, JobPanicked> {
        let (sender, receiver) = oneshot::channel();
        self.submit(Box::new(move || {
            if sender.is_closed() {
                return Box::new(|| ());
            }
            let outcome = catch_unwind(AssertUnwindSafe(job))
                .map_err(|payload| JobPanicked::from_payload(&*payload));
            Box::new(move || {
                let _ = sender.send(outcome);
            })
        }));
        // Every job submitted runs (or is skipped because this receiver is gone), even when the
        // pool is dropped: the sender is not dropped unsent while the receiver waits.
        receiver
            .await
            .unwrap_or_else(|_| Err(JobPanicked("the merge thread stopped".into())))
    }

    fn submit(&self, job: Job) {
        let mut state = self.shared.lock();
        match state.idle.iter().position(|idle| *idle) {
            Some(index) => {
                state.idle[index] = false;
                state.handed[index] = Some(job);
                self.shared.wake[index].notify_one();
            }
            None => state.waiting.push_back(job),
        }
    }
}

impl Drop for MergePool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        for wake in &self.shared.wake {
            wake.notify_one();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock only means a panic between two
        // field updates of `State`, which has none that could be half done.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The loop of thread `index`: the job handed to it while idle, else the oldest waiting one.
    /// It is marked idle before its caller hears back, so that the caller's next job comes back
    /// to it.
    fn work(&self, index: usize) {
        let mut state = self.lock();
        loop {
            // A job handed to this thread came before any that waits: jobs wait only while no
            // thread is idle, and a thread turns idle only when none waits.
            let job = if let Some(job) = state.handed[index].take() {
                job
            } else if let Some(job) = state.waiting.pop_front() {
                job
            } else if state.closed {
                return;
            } else {
                state.idle[index] = true;
                state = self.wake[index]
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            };
            state.idle[index] = false;
            drop(state);
            let deliver = job();
            state = self.lock();
            state.idle[index] = state.waiting.is_empty();
            drop(state);
            deliver();
            state = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn a_job_nobody_waits_for_any_more_is_skipped() {
        let pool = Arc::new(MergePool::new(1));
        let (unblock, blocked) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || blocked.recv().unwrap()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let ran = Arc::new(AtomicUsize::new(0));
        let abandoned = {
            let (pool, ran) = (pool.clone(), ran.clone());
            tokio::spawn(async move {
                let _ = pool.run(move || ran.fetch_add(1, Ordering::SeqCst)).await;
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // its caller gives up while the job waits for the only thread
        abandoned.abort();
        let _ = abandoned.await;
        unblock.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let after = {
            let ran = ran.clone();
            pool.run(move || ran.load(Ordering::SeqCst)).await
        };
        assert_eq!(after, Ok(0), "the abandoned job never ran");
    }

    #[tokio::test]
    async fn one_job_at_a_time_always_runs_on_the_first_thread() {
        let pool = MergePool::new(4);
        for round in 0..20 {
            let name = pool
                .run(|| std::thread::current().name().map(str::to_owned))
                .await;
            assert_eq!(name.unwrap().as_deref(), Some("merge-0"), "round {round}");
        }
    }

    #[tokio::test]
    async fn no_more_jobs_run_at_once_than_there_are_threads() {
        let pool = Arc::new(MergePool::new(2));
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..8)
            .map(|n| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(10));
                        running.fetch_sub(1, Ordering::SeqCst);
                        n * 10
                    })
                    .await
                })
            })
            .collect();
        for (n, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await.unwrap(), Ok(n * 10));
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
    }

    #[tokio::test]
    async fn waiting_jobs_run_in_the_order_they_came() {
        let pool = Arc::new(MergePool::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let jobs: Vec<_> = (0..8)
            .map(|n| {
                let (pool, order) = (pool.clone(), order.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        std::thread::sleep(Duration::from_millis(2));
                        order.lock().unwrap().push(n);
                    })
                    .await
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_caller_with_the_message_and_the_thread_serves_the_next() {
        let pool = MergePool::new(1);
        let failed = pool.run(|| -> u8 { panic!("broken body") }).await;
        assert_eq!(failed, Err(JobPanicked("broken body".into())));
        let formatted = pool.run(|| -> u8 { panic!("bad {}", "merge") }).await;
        assert_eq!(formatted, Err(JobPanicked("bad merge".into())));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
