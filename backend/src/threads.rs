//! How many threads a piece of work may use, and the threads that run it: a pool started
//! once (`scope`), since spawning a thread per task costs tens of microseconds and a step
//! splits several products and updates.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

/// The cores a step may use (up to 8), read once.
pub(crate) fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(8)
    })
}

/// Threads for `work` multiply-adds where each result is computed by one thread (so the
/// split cannot change a bit): one below about a million (spawning costs more than it
/// saves), else every core the machine offers (up to 8).
pub(crate) fn workers_for(work: usize) -> usize {
    if work < 1 << 20 {
        1
    } else {
        cores()
    }
}

/// Values per thread for elementwise work whose every result is computed by one thread
/// (nothing combined, so the split cannot change a bit): one block per core.
pub(crate) fn elementwise_block(n: usize) -> usize {
    n.div_ceil(workers_for(n * 4)).max(1)
}

/// `f` of each part, on up to as many threads as the machine's cores, 8 at most (thread t
/// takes parts t, t + threads, ...),
/// the results in the parts' order; inline when there is one part or one core.
pub fn run_parts<J: Send, R: Send>(parts: Vec<J>, f: impl Fn(J) -> R + Sync) -> Vec<R> {
    let n = parts.len();
    let threads = cores().min(n);
    if threads <= 1 {
        return parts.into_iter().map(f).collect();
    }
    let mut dealt: Vec<Vec<(usize, J)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, part) in parts.into_iter().enumerate() {
        dealt[i % threads].push((i, part));
    }
    let mut done: Vec<Vec<(usize, R)>> = (0..threads).map(|_| Vec::new()).collect();
    scope(|scope| {
        let f = &f;
        for (mine, results) in dealt.into_iter().zip(done.iter_mut()) {
            scope.spawn(move || results.extend(mine.into_iter().map(|(i, p)| (i, f(p)))));
        }
    });
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    for (i, r) in done.into_iter().flatten() {
        out[i] = Some(r);
    }
    out.into_iter()
        .map(|r| r.expect("every part ran"))
        .collect()
}

/// A scope whose tasks run on the pool's threads ([`scope`]), borrowing from `'env`.
pub(crate) struct Scope<'env> {
    latch: Latch,
    _env: std::marker::PhantomData<&'env mut &'env ()>,
}

/// The tasks of a scope still running, and whether one panicked.
struct Latch {
    pending: AtomicUsize,
    panicked: AtomicBool,
}

impl<'env> Scope<'env> {
    /// Runs `task` on a thread of the pool (or on a thread waiting for its own tasks, which
    /// helps); the scope returns once it has finished.
    pub(crate) fn spawn(&self, task: impl FnOnce() + Send + 'env) {
        // the pool first: if it cannot start, nothing is pending that would never run
        let pool = pool();
        self.latch.pending.fetch_add(1, Ordering::AcqRel);
        let latch: *const Latch = &self.latch;
        let latch = LatchRef(latch);
        let job: Box<dyn FnOnce() + Send + 'env> = Box::new(move || {
            let latch = latch;
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task)).is_ok();
            // SAFETY: the scope waits for `pending` to reach 0 before the latch goes away;
            // this is the job's last use of it.
            let latch = unsafe { &*latch.0 };
            if !ok {
                latch.panicked.store(true, Ordering::Release);
            }
            latch.pending.fetch_sub(1, Ordering::AcqRel);
        });
        // SAFETY: the job borrows from 'env, which outlives the scope, and the scope does
        // not return (nor unwind past its frame) before every job it spawned has run.
        let job: Job = unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'env>, Job>(job) };
        pool.push(job);
    }
}

/// A pointer to a scope's latch, sent with its jobs.
struct LatchRef(*const Latch);

// SAFETY: the latch is atomics only, and outlives every job that holds it (see `spawn`).
unsafe impl Send for LatchRef {}

/// Like `std::thread::scope`, on the pool's threads: `f` spawns tasks that may borrow what
/// outlives the call, and the call returns once all of them have finished (a panic in one
/// is raised here). The calling thread runs queued tasks while it waits, so that scopes
/// nest (a task that opens a scope of its own never waits on a thread it occupies).
pub(crate) fn scope<'env, R>(f: impl FnOnce(&Scope<'env>) -> R) -> R {
    let scope = Scope {
        latch: Latch {
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
        },
        _env: std::marker::PhantomData,
    };
    /// Waits for the scope's tasks even while `f` unwinds.
    struct Wait<'a>(&'a Latch);
    impl Drop for Wait<'_> {
        fn drop(&mut self) {
            pool().wait_helping(self.0);
        }
    }
    let result = {
        let _wait = Wait(&scope.latch);
        f(&scope)
    };
    if scope.latch.panicked.load(Ordering::Acquire) {
        panic!("a task of a thread scope panicked");
    }
    result
}

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Threads that take jobs from one queue, for the lifetime of the process: spawning a
/// thread per task costs tens of microseconds, several times per step.
struct Pool {
    queue: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

/// The pool, with [`cores`] − 1 threads (the caller is the last), started on first use.
fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        }));
        for i in 0..cores().saturating_sub(1) {
            std::thread::Builder::new()
                .name(format!("ravi-worker-{i}"))
                .spawn(move || pool.work())
                .expect("a worker thread starts");
        }
        pool
    })
}

/// How long an idle thread checks for work before it sleeps (jobs come in bursts within a
/// step; waking a sleeping thread costs more than the check).
const SPINS: usize = 20_000;

impl Pool {
    fn push(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(job);
        self.ready.notify_one();
    }

    fn try_pop(&self) -> Option<Job> {
        let mut queue = match self.queue.try_lock() {
            Ok(q) => q,
            // jobs run outside the lock, so it is never poisoned by one; but a poisoned
            // queue must not look empty forever to a waiting thread
            Err(std::sync::TryLockError::Poisoned(q)) => q.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        queue.pop_front()
    }

    /// A worker's loop: jobs as they come, checking for a while before sleeping.
    fn work(&self) {
        loop {
            let mut job = None;
            for _ in 0..SPINS {
                job = self.try_pop();
                if job.is_some() {
                    break;
                }
                std::hint::spin_loop();
            }
            let job = match job {
                Some(job) => job,
                None => {
                    let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                    loop {
                        if let Some(job) = q.pop_front() {
                            break job;
                        }
                        q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                    }
                }
            };
            job();
        }
    }

    /// Until `latch` has no task pending: runs queued jobs, else checks again (yielding
    /// the core now and then, in case the tasks wait for it).
    fn wait_helping(&self, latch: &Latch) {
        let mut idle = 0usize;
        while latch.pending.load(Ordering::Acquire) != 0 {
            if let Some(job) = self.try_pop() {
                job();
                idle = 0;
                continue;
            }
            idle += 1;
            if idle.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task has run when the scope returns, tasks borrow the caller's data, and a task
    /// may open a scope of its own (the waiting thread runs queued tasks, so nesting cannot
    /// wait on an occupied thread).
    #[test]
    fn scopes_finish_their_tasks_and_nest() {
        let mut out = vec![0u64; 64];
        let base = 10u64;
        scope(|s| {
            for (i, chunk) in out.chunks_mut(8).enumerate() {
                let base = &base;
                s.spawn(move || {
                    scope(|inner| {
                        for (j, v) in chunk.iter_mut().enumerate() {
                            inner.spawn(move || *v = *base + (i * 8 + j) as u64);
                        }
                    });
                });
            }
        });
        let want: Vec<u64> = (0..64).map(|i| 10 + i).collect();
        assert_eq!(out, want);
    }

    /// A task's panic is raised by its scope, after the scope's other tasks have finished;
    /// the pool goes on serving scopes.
    #[test]
    fn a_panicking_task_panics_its_scope() {
        let finished = AtomicUsize::new(0);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            scope(|s| {
                s.spawn(|| panic!("a failing task"));
                for _ in 0..4 {
                    s.spawn(|| {
                        finished.fetch_add(1, Ordering::Relaxed);
                    });
                }
            })
        }));
        assert!(caught.is_err());
        assert_eq!(finished.load(Ordering::Relaxed), 4);
        let mut x = 0;
        scope(|s| s.spawn(|| x = 7));
        assert_eq!(x, 7);
    }
}
