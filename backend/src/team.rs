//! The threads that split loops and matrix products: the caller and `threads − 1` workers
//! that spin between jobs.
//!
//! A loop of a few tens of microseconds (softmax over 512 rows of 1024, tanh over 64 K
//! elements) gains from a second core only if the second core starts at once. A thread
//! pool whose workers sleep between jobs (rayon's) pays a futex wake-up on each side of
//! every job, 10–50 µs on a virtual machine, which is more than such a loop takes. So a
//! [`Team`]'s workers spin on one atomic word while a run is in progress, and park only
//! after [`SPIN`] without work. The caller works on the job too, claiming chunks
//! from the same counter: a worker that is slow to wake takes fewer chunks, so a split
//! loop never waits for a thread that is not there yet.
//!
//! The job word packs an epoch, the job's chunk count and the next unclaimed chunk, so a
//! chunk is claimed with one compare-and-swap that also proves the job is still the one
//! the claimer read; a worker that is late for a finished job can never run a chunk of
//! it, nor of the next one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker spins without a job before it parks.
const SPIN: Duration = Duration::from_micros(300);

/// The most chunks a job can have (they share one word with the epoch).
pub(crate) const MAX_CHUNKS: usize = (1 << 16) - 1;

/// Workers for splitting loops and products; the calling thread is the team's first member.
/// Not `Sync`: one thread at a time hands it jobs.
pub(crate) struct Team {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    _one_caller: std::marker::PhantomData<std::cell::Cell<()>>,
}

/// The job in progress, as `body` behind a pointer to the caller's stack.
type Body<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    /// epoch (32 bits) | chunks (16) | next unclaimed chunk (16).
    word: AtomicU64,
    /// The current job's body (a reference on the caller's stack); valid while any of
    /// its chunks is unfinished.
    body: AtomicPtr<Body<'static>>,
    /// Chunks of the current job that have finished.
    done: AtomicUsize,
    /// Whether a chunk panicked on a worker.
    panicked: AtomicBool,
    quit: AtomicBool,
    /// Workers parked or about to park (see [`Team::run`] on the wake-up).
    sleeping: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

fn epoch(word: u64) -> u64 {
    word >> 32
}
fn chunks(word: u64) -> usize {
    ((word >> 16) & 0xffff) as usize
}
fn next(word: u64) -> usize {
    (word & 0xffff) as usize
}

impl Team {
    /// A team of `threads` (the caller and `threads − 1` new workers).
    pub(crate) fn new(threads: usize) -> std::io::Result<Team> {
        let shared = Arc::new(Shared {
            word: AtomicU64::new(0),
            body: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            quit: AtomicBool::new(false),
            sleeping: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut team = Team { shared, workers: Vec::new(), _one_caller: std::marker::PhantomData };
        for k in 1..threads.max(1) {
            let shared = Arc::clone(&team.shared);
            let worker = std::thread::Builder::new().name(format!("saturate-{k}")).spawn(move || work(&shared))?;
            team.workers.push(worker);
        }
        Ok(team)
    }

    /// Threads in the team, the caller included.
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `body(c)` for every chunk `c` in `0..chunks` across the team, and returns
    /// when all have finished.
    pub(crate) fn run(&self, chunks: usize, body: &(dyn Fn(usize) + Sync)) {
        assert!(chunks <= MAX_CHUNKS, "a job of {chunks} chunks (at most {MAX_CHUNKS})");
        if self.workers.is_empty() || chunks <= 1 {
            (0..chunks).for_each(body);
            return;
        }
        let s = &*self.shared;
        // SAFETY: the lifetime is erased only while this call waits for every chunk, and
        // no worker touches the body without claiming a chunk of this job
        let body: Body<'static> = unsafe { std::mem::transmute::<Body<'_>, Body<'static>>(body) };
        s.body.store(&body as *const Body<'static> as *mut Body<'static>, Ordering::Release);
        s.done.store(0, Ordering::Relaxed);
        let e = (epoch(s.word.load(Ordering::Relaxed)) + 1) & 0xffff_ffff;
        s.word.store(e << 32 | (chunks as u64) << 16, Ordering::SeqCst);
        if s.sleeping.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|p| p.into_inner());
            s.wake.notify_all();
        }
        claim_all(s, e);
        while s.done.load(Ordering::Acquire) < chunks {
            std::hint::spin_loop();
        }
        if s.panicked.swap(false, Ordering::Relaxed) {
            panic!("a kernel panicked while the team ran it");
        }
    }
}

/// Claims and runs chunks of job `e` until none is left, counting each one done (a
/// panic too: it is reported by [`Team::run`] once no chunk is running).
fn claim_all(s: &Shared, e: u64) {
    let mut word = s.word.load(Ordering::Acquire);
    while epoch(word) == e && next(word) < chunks(word) {
        match s.word.compare_exchange_weak(word, word + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                // SAFETY: a successful claim proves job `e` is in progress, and its
                // caller keeps the body alive until this chunk is counted done
                let body = unsafe { *s.body.load(Ordering::Acquire) };
                if catch_unwind(AssertUnwindSafe(|| body(next(word)))).is_err() {
                    s.panicked.store(true, Ordering::Relaxed);
                }
                s.done.fetch_add(1, Ordering::Release);
                word = s.word.load(Ordering::Acquire);
            }
            Err(now) => word = now,
        }
    }
}

/// A worker's life: wait for a job, help with it, repeat.
fn work(s: &Shared) {
    let mut seen = 0u64;
    loop {
        let word = wait_for_job(s, seen);
        if s.quit.load(Ordering::Relaxed) {
            return;
        }
        seen = epoch(word);
        claim_all(s, seen);
    }
}

/// Spins until the job word's epoch is not `seen`, parking after [`SPIN`]; returns the
/// word.
fn wait_for_job(s: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let word = s.word.load(Ordering::Acquire);
        if epoch(word) != seen || s.quit.load(Ordering::Relaxed) {
            return word;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins.is_multiple_of(64) && start.elapsed() > SPIN {
            let mut guard = s.lock.lock().unwrap_or_else(|p| p.into_inner());
            s.sleeping.fetch_add(1, Ordering::SeqCst);
            while epoch(s.word.load(Ordering::SeqCst)) == seen && !s.quit.load(Ordering::SeqCst) {
                guard = s.wake.wait(guard).unwrap_or_else(|p| p.into_inner());
            }
            s.sleeping.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            return s.word.load(Ordering::Acquire);
        }
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.quit.store(true, Ordering::SeqCst);
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[test]
    fn every_chunk_runs_once_on_teams_of_every_size() {
        for threads in 1..=4 {
            let team = Team::new(threads).unwrap();
            for chunks in [0, 1, 2, 3, 7, 64, 1000] {
                let counts: Vec<AtomicU32> = (0..chunks).map(|_| AtomicU32::new(0)).collect();
                for _ in 0..50 {
                    team.run(chunks, &|c| {
                        counts[c].fetch_add(1, Ordering::Relaxed);
                    });
                }
                assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 50), "threads {threads}, chunks {chunks}");
            }
        }
    }

    #[test]
    fn parked_workers_wake_for_the_next_job() {
        let team = Team::new(2).unwrap();
        team.run(2, &|_| {});
        // long enough past SPIN for the worker to park
        std::thread::sleep(Duration::from_millis(5));
        let on: Vec<AtomicU32> = (0..2).map(|_| AtomicU32::new(0)).collect();
        let main = std::thread::current().id();
        team.run(2, &|c| {
            // each chunk waits for the other, so both threads must take one
            let other = &on[1 - c];
            on[c].store(1, Ordering::SeqCst);
            let start = Instant::now();
            while other.load(Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(5) {
                std::hint::spin_loop();
            }
            let _ = main;
        });
        assert!(on.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    }

    #[test]
    fn a_panic_on_a_worker_reaches_the_caller() {
        let team = Team::new(2).unwrap();
        let caller = std::thread::current().id();
        let result = catch_unwind(AssertUnwindSafe(|| {
            team.run(64, &|_| {
                if std::thread::current().id() != caller {
                    panic!("boom");
                }
                std::thread::sleep(Duration::from_micros(200));
            })
        }));
        assert!(result.is_err());
        team.run(4, &|_| {});
    }
}
