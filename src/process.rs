//! Processes: run a function in a forked child (Python's `multiprocessing.Process`, fork start).
//!
//! # Fork rules
//! `fork` copies the calling thread only. What the child may do depends on the parent:
//! - **Single-threaded parent** (no thread was ever started): anything; the child is a full copy.
//! - **Parent with other threads**: until it calls `_exit` or `exec`, the child may only do what is
//!   async-signal-safe, plus what mpkit documents as fork-safe: its shared-memory primitives
//!   (mutex, arrays, and anything else that lives in a region), since they hold no process-local
//!   locks. Locks another thread held at the fork (stdio buffers, loggers, your own mutexes) stay
//!   locked forever in the child; glibc resets malloc, so allocation works but is not guaranteed
//!   by POSIX. Printing with Rust's `println!` can hang the child if another thread was printing.
//!   Best practice: start processes (and pools) early, from a single-threaded point of the
//!   program, and pass data through mpkit objects.
//! - Objects created before the fork are shared with the child at the same address; data created
//!   after it must travel through mpkit (arrays, later queues and pipes).
//! - The child always ends with `_exit(code)`: no `atexit` handlers, no stdio flush of buffers
//!   inherited from the parent, no unwinding into the parent's frames. A Rust panic in the child
//!   is caught and becomes exit status [`CHILD_PANIC_EXIT`] (the panic hook still prints it, which
//!   takes the stderr lock: another reason to keep threaded parents' children simple).
//! - mpkit registers a `pthread_atfork` child handler that clears its per-thread identity cache.
//!   Forks that bypass glibc (raw `clone`) skip it: do not use mpkit locks in such children.
//!
//! # Reaping
//! `join` (or a successful `is_alive`/`exitcode` poll) reaps the child. Do not reap mpkit's
//! children behind its back (`waitpid(-1)` in a SIGCHLD handler, or SIGCHLD set to `SIG_IGN`):
//! their exit codes are then lost and `join` reports `Sys(ECHILD)`. Dropping a handle of a
//! process that is still running detaches it: mpkit reaps it later, the next time this process
//! starts or drops a `Process`, so no zombie outlives the next such call.

use core::time::Duration;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::error::Error;
use crate::lock::Lock;
use crate::sync::unmodelled::{AtomicI32, AtomicI64, AtomicPtr, Ordering};
use crate::sync::{Arm, Deadline, FUTEX_OWNER_DIED, FUTEX_WAITERS, futex_wake};
use crate::sys::proc::{self as sys, Forked};

/// Exit status of a child whose function panicked (Rust's own panic status).
pub const CHILD_PANIC_EXIT: i32 = 101;

/// How to start a process.
#[derive(Copy, Clone, Debug, Default)]
pub struct ProcessOptions {
    /// Kill the child (SIGKILL) when the parent thread that started it exits, as Python's
    /// `daemon = True` children die with their parent. Linux ties this to the forking *thread*.
    pub daemon: bool,
}

/// A child process running a function. Methods take `&self` and may be called from any thread.
///
/// The child runs on a copy of the parent's memory; mpkit objects made before the fork are shared
/// with it at the same address, so they carry results back. The closure's return value is the
/// exit code; a child killed by a signal reports minus the signal number.
/// ```
/// use std::time::Duration;
/// use mpkit::{Process, Queue, SharedValue};
///
/// let answer = SharedValue::new(0u32)?;
/// // SAFETY: the child only uses `answer`, an mpkit object made before the fork.
/// let child = unsafe { Process::spawn(|| if answer.set(42).is_ok() { 7 } else { 1 }) }?;
/// assert!(child.pid() > 0);
/// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 7);
/// assert_eq!((child.exitcode(), child.is_alive()), (Some(7), false));
/// assert_eq!(answer.get()?, 42);
///
/// let empty = Queue::<u8>::new(1)?;
/// let wait = || empty.get_timeout(Duration::from_secs(10)).map_or(1, i32::from);
/// // SAFETY: the child only waits on `empty`, an mpkit object made before the fork.
/// let waiter = unsafe { Process::spawn(wait) }?;
/// waiter.kill()?;
/// assert_eq!(waiter.join_timeout(Duration::from_secs(10))?, -9); // SIGKILL
/// # Ok::<(), mpkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Process {
    pid: i32,
    pidfd: OwnedFd,
    /// `RUNNING`, or the exit code once reaped.
    status: AtomicI64,
    /// The child's life lock: taken by the child first thing and never released, so the kernel
    /// marks it `FUTEX_OWNER_DIED` and wakes a sleeper when the child exits, however it exits.
    /// It lets a futex wait over many objects (`crate::wait`) see the exit.
    life: Lock,
}

const RUNNING: i64 = i64::MIN;
/// How often a wait re-checks a child that has not yet taken its life lock.
const LIFE_LOCK_TICK: Duration = Duration::from_millis(1);
/// Yields to wait for a concurrent reaper to publish the exit code (it is a few instructions
/// away). Bounded so that a child reaped behind our back (SIGCHLD ignored) reports ECHILD.
const REAP_PUBLISH_SPINS: u32 = 10_000;

impl Process {
    /// Forks a child that runs `f` and exits with its return value (0..=255; the kernel keeps
    /// the low 8 bits).
    ///
    /// # Safety
    /// - If this process has other threads, `f` must keep to the fork rules of this module
    ///   (async-signal-safe work and mpkit primitives only).
    pub unsafe fn spawn<F: FnOnce() -> i32>(f: F) -> Result<Process, Error> {
        // SAFETY: forwarded caller duty.
        unsafe { Process::spawn_with(&ProcessOptions::default(), f) }
    }

    /// [`spawn`](Self::spawn) with options.
    ///
    /// # Safety
    /// - As for [`spawn`](Self::spawn).
    pub unsafe fn spawn_with<F: FnOnce() -> i32>(opts: &ProcessOptions, f: F) -> Result<Process, Error> {
        reap_detached();
        let life = Lock::new()?;
        let (parent, parent_tid) = (std::process::id() as i32, sys::thread_id());
        // SAFETY: the child below runs `f` under the caller's promise, then `_exit`s.
        match unsafe { sys::fork() }? {
            Forked::Child => {
                // A fresh lock, free: taken at once. Waiters that saw it free are woken.
                let _ = life.raw().lock_until(Deadline::FOREVER);
                futex_wake(life.raw().word(), i32::MAX as u32);
                if opts.daemon && !sys::die_with_parent(parent, parent_tid) {
                    sys::exit_now(1);
                }
                let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(CHILD_PANIC_EXIT);
                sys::exit_now(code)
            }
            Forked::Parent(pid) => match sys::pidfd_open(pid) {
                Ok(pidfd) => Ok(Process { pid, pidfd, status: AtomicI64::new(RUNNING), life }),
                Err(e) => {
                    // Without a pidfd we cannot manage the child: do not leave it behind.
                    sys::kill_and_reap(pid);
                    Err(e)
                }
            },
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Waits for the child to exit and returns its exit code (`-N` if signal N killed it).
    pub fn join(&self) -> Result<i32, Error> {
        self.join_until(Deadline::FOREVER)
    }

    /// As [`join`](Self::join), waiting at most `timeout`; `Timeout` if it still runs.
    pub fn join_timeout(&self, timeout: Duration) -> Result<i32, Error> {
        self.join_until(Deadline::after(timeout))
    }

    /// As [`join`](Self::join), until `deadline`.
    pub fn join_until(&self, deadline: Deadline) -> Result<i32, Error> {
        if deadline == Deadline::FOREVER {
            return self.reap(true).map(|c| c.expect("a blocking wait returns a status"));
        }
        loop {
            if let Some(code) = self.reap(false)? {
                return Ok(code);
            }
            match deadline.remaining() {
                None => return Err(Error::Timeout),
                Some(left) => {
                    sys::poll_readable(&self.pidfd, left)?;
                }
            }
        }
    }

    /// Whether the child is still running (reaps it if it has exited).
    pub fn is_alive(&self) -> bool {
        matches!(self.reap(false), Ok(None))
    }

    /// The exit code once the child has exited (`-N` if signal N killed it), `None` while it runs.
    pub fn exitcode(&self) -> Option<i32> {
        self.reap(false).ok().flatten()
    }

    /// Sends `SIGTERM` (Python's `terminate`). No-op once the child has exited.
    pub fn terminate(&self) -> Result<(), Error> {
        self.signal(false)
    }

    /// Sends `SIGKILL` (Python's `kill`). No-op once the child has exited.
    pub fn kill(&self) -> Result<(), Error> {
        self.signal(true)
    }

    fn signal(&self, kill: bool) -> Result<(), Error> {
        if self.status.load(Ordering::Acquire) != RUNNING {
            return Ok(());
        }
        sys::pidfd_signal(&self.pidfd, kill)
    }

    /// A pollable descriptor that becomes readable when the child exits (Python's `sentinel`).
    pub fn sentinel(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// For a wait over many objects: `Ready` once the child exited, else `WAITERS` set on its
    /// life lock and the word to sleep on. Before the child took the lock (the first
    /// microseconds) it ticks, and a `thorough` look asks the kernel, in case the child died
    /// before it could take it.
    pub(crate) fn arm_exited(&self, thorough: bool) -> Arm<'_> {
        if self.status.load(Ordering::Acquire) != RUNNING {
            return Arm::Ready;
        }
        let word = self.life.raw().word();
        loop {
            let v = word.load(Ordering::Acquire);
            if v & FUTEX_OWNER_DIED != 0 {
                // The kernel woke one sleeper: pass the wake-up on to the others, once.
                if v & FUTEX_WAITERS != 0
                    && word.compare_exchange(v, v & !FUTEX_WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    futex_wake(word, i32::MAX as u32);
                }
                return Arm::Ready;
            }
            if v == 0 {
                if thorough && !matches!(self.reap(false), Ok(None)) {
                    return Arm::Ready;
                }
                return Arm::Sleep { word, expected: 0, tick: Some(LIFE_LOCK_TICK) };
            }
            // The kernel keeps WAITERS when it marks the word, and then wakes a sleeper.
            if v & FUTEX_WAITERS != 0
                || word.compare_exchange(v, v | FUTEX_WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                return Arm::Sleep { word, expected: v | FUTEX_WAITERS, tick: None };
            }
        }
    }

    /// The exit code if known, reaping the child if it has exited (blocking if `block`).
    fn reap(&self, block: bool) -> Result<Option<i32>, Error> {
        let known = self.status.load(Ordering::Acquire);
        if known != RUNNING {
            return Ok(Some(known as i32));
        }
        match sys::wait_pidfd(&self.pidfd, block) {
            Ok(Some(code)) => {
                // Release pairs with the Acquire loads above in other threads.
                self.status.store(code as i64, Ordering::Release);
                Ok(Some(code))
            }
            Ok(None) => Ok(None),
            // Another thread of this process reaped it after our load: it is about to publish
            // the code (between its waitid returning and its store). Wait for that, bounded.
            Err(Error::Sys(libc::ECHILD)) => {
                for _ in 0..REAP_PUBLISH_SPINS {
                    let known = self.status.load(Ordering::Acquire);
                    if known != RUNNING {
                        return Ok(Some(known as i32));
                    }
                    std::thread::yield_now();
                }
                Err(Error::Sys(libc::ECHILD))
            }
            Err(e) => Err(e),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.reap(false), Ok(None)) {
            detach(self.pid);
        }
        reap_detached();
    }
}

/// Number of CPUs this process may run on (at least 1).
pub fn cpu_count() -> usize {
    sys::cpu_count()
}

/// Children dropped while running, reaped later: a list of 64-slot blocks that grows without
/// limit and never shrinks (blocks are reused). Lock-free so that it is safe in a forked child
/// (which inherits the parent's entries: they are not its children, and `reap_nohang` drops them).
struct Detached {
    slots: [AtomicI32; 64],
    next: AtomicPtr<Detached>,
}

impl Detached {
    const fn new() -> Detached {
        Detached { slots: [const { AtomicI32::new(0) }; 64], next: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// The blocks, first to last.
    fn blocks(&'static self) -> impl Iterator<Item = &'static Detached> {
        core::iter::successors(Some(self), |b| {
            // SAFETY: `next` is null or a block leaked by `detach`, which lives forever.
            // Acquire pairs with the AcqRel CAS that published the block's initialised slots.
            unsafe { b.next.load(Ordering::Acquire).as_ref() }
        })
    }
}

static DETACHED: Detached = Detached::new();

fn detach(pid: i32) {
    let mut block = &DETACHED;
    loop {
        if block.slots.iter().any(|slot| slot.compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed).is_ok()) {
            return;
        }
        let mut next = block.next.load(Ordering::Acquire);
        if next.is_null() {
            let fresh = Box::into_raw(Box::new(Detached::new()));
            next = match block.next.compare_exchange(core::ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => fresh,
                Err(winner) => {
                    // SAFETY: `fresh` was never published: this thread still owns it.
                    drop(unsafe { Box::from_raw(fresh) });
                    winner
                }
            };
        }
        // SAFETY: `next` is a published block, leaked for the rest of the process's life.
        block = unsafe { &*next };
    }
}

fn reap_detached() {
    for slot in DETACHED.blocks().flat_map(|b| &b.slots) {
        let pid = slot.load(Ordering::Acquire);
        if pid != 0 && sys::reap_nohang(pid) {
            let _ = slot.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}
