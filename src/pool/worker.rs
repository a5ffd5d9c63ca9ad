//! The pool's child processes.
//!
//! The **supervisor** is forked once, when the pool is created, and is single-threaded: it forks
//! the workers, watches them through pidfds, reaps them, and replaces any that exits (killed,
//! crashed, `maxtasksperchild` reached). A worker that dies with a task fails that task with
//! `WorkerDied` (its slot names the task before the worker claims it). It also enforces time
//! limits and cancellation: a task that runs past its limit ends `TIMED_OUT`, and the worker
//! running a task that was taken from it (timed out, or cancelled by the parent) is killed and
//! replaced. It sleeps in `poll` until a child exits, the parent writes the control eventfd
//! (a command, a cancelled running task), or the earliest time limit; a worker starting a call
//! whose limit falls before that wakes it through the same eventfd. The supervisor also watches
//! the parent through a pidfd: when the parent process dies, it kills the workers and exits, and
//! workers die with the supervisor (`PR_SET_PDEATHSIG`), so no worker is orphaned. Because only
//! the supervisor forks after creation, a parent that starts threads later never forks a worker
//! from a threaded process.
//!
//! A **worker** runs the initializer once, then pulls tasks from the board (`board.rs`): the
//! next announcement, else any pending job, else it spins briefly and sleeps. It claims a task
//! with the job word's CAS, so two workers never run one task, and calls the task function.

use core::ffi::c_void;
use core::time::Duration;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use super::RESULT_TOO_LONG;
use super::job::Taken;
use super::shared::{
    CHUNK, CHUNK_LEN, CLOSE, InitFn, LEN_WORD, SINGLE, Shared, TERMINATE, TaskFn, TaskMsg, WorkerSlot, running_task,
    running_word,
};
use crate::sync::{Deadline, Ordering};
use crate::sys::proc::{self as sys, Forked};
use crate::sys::time::monotonic_ns;

/// Exit status of a worker whose initializer returned non-zero.
const INIT_FAILED: i32 = 113;
/// Initializer failures in a row (per worker) after which the pool is declared broken.
const INIT_FAILURES_BROKEN: u32 = 3;
/// Pause before retrying a failed fork.
const RESPAWN_RETRY: Duration = Duration::from_millis(100);

struct Child {
    pid: i32,
    pidfd: OwnedFd,
}

/// The supervisor process's whole life. Never returns into the parent's code.
pub(crate) fn supervisor_main(shared: Shared, parent: u32, control: BorrowedFd<'_>) -> i32 {
    let Ok(parent_fd) = sys::pidfd_open(parent as i32) else { return 1 };
    if sys::parent_pid() != Some(parent as i32) {
        return 1; // the parent died before we could watch it
    }
    let me = std::process::id() as i32; // single-threaded: also the forking thread's id
    let workers = shared.layout.workers;
    let board = shared.board();
    let mut children: Vec<Option<Child>> = (0..workers).map(|_| None).collect();
    let mut init_failures = vec![0u32; workers];
    let mut closing = false;
    for (w, child) in children.iter_mut().enumerate() {
        *child = spawn(shared, w, me, control);
    }
    loop {
        let retry = children.iter().any(Option::is_none) && !closing;
        let limit = arm(&shared).map(|at| Duration::from_nanos(at.saturating_sub(monotonic_ns())));
        let timeout = match (retry.then_some(RESPAWN_RETRY), limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut fds: Vec<BorrowedFd<'_>> = vec![parent_fd.as_fd(), control];
        let watched: Vec<usize> = (0..workers).filter(|&w| children[w].is_some()).collect();
        fds.extend(watched.iter().map(|&w| children[w].as_ref().expect("watched").pidfd.as_fd()));
        let ready = match sys::poll_readable_many(&fds, timeout) {
            Ok(r) => r,
            Err(_) => {
                std::thread::sleep(RESPAWN_RETRY); // never spin on a failing poll
                continue;
            }
        };
        if ready.first() == Some(&true) || shared.command() == TERMINATE {
            kill_all(&mut children);
            return 0;
        }
        if ready.get(1) == Some(&true) {
            sys::eventfd_drain(control);
        }
        if shared.command() == CLOSE && !closing {
            closing = true;
            board.close(); // idle workers exit once nothing is left to claim
        }
        stop_taken(&shared, &children);
        let mut exited = false;
        for (i, &w) in watched.iter().enumerate() {
            if ready.get(2 + i) != Some(&true) {
                continue;
            }
            let Some(child) = children[w].take() else { continue };
            let code = sys::wait_pidfd(&child.pidfd, false).ok().flatten();
            on_exit(&shared, w);
            exited = true;
            if code == Some(INIT_FAILED) {
                init_failures[w] += 1;
                if init_failures[w] >= INIT_FAILURES_BROKEN {
                    // Release pairs with the parent's Acquire load when it checks liveness.
                    shared.header().broken.store(1, Ordering::Release);
                }
            } else {
                init_failures[w] = 0;
            }
        }
        if exited {
            board.wake_all(); // a dead worker's announcement may be lost: let the others scan
        }
        let broken = shared.header().broken.load(Ordering::Acquire) != 0;
        for (w, child) in children.iter_mut().enumerate() {
            // Replace missing workers; when closing, only while tasks are still pending.
            if child.is_none() && !broken && (!closing || board.pending() > 0) {
                *child = spawn(shared, w, me, control);
            }
        }
        if (closing || broken) && children.iter().all(Option::is_none) {
            return 0;
        }
    }
}

/// Publishes when the supervisor wakes next for time limits: the earliest limit of a running
/// call (`None`: no limit runs). A worker whose limit is earlier signals the control eventfd.
fn arm(shared: &Shared) -> Option<u64> {
    let earliest = || {
        (0..shared.layout.workers)
            // SeqCst: this side of the armed/deadline pair (see `set_limit`).
            .map(|w| shared.worker(w).deadline.load(Ordering::SeqCst))
            .filter(|&d| d != 0)
            .min()
    };
    let first = earliest();
    shared.header().armed.store(first.unwrap_or(u64::MAX), Ordering::SeqCst);
    // A limit set before the store above but not seen by the first look is seen now.
    first.into_iter().chain(earliest()).min()
}

/// Times out calls past their limit, and kills every worker whose task was taken from it
/// (timed out here, or cancelled by the parent) while it may still run it. A killed worker is
/// reaped and replaced like any other; its task keeps the end it was given.
fn stop_taken(shared: &Shared, children: &[Option<Child>]) {
    let groups = |g| shared.group(g);
    let now = monotonic_ns();
    for (w, child) in children.iter().enumerate() {
        let Some(child) = child else { continue };
        let slot = shared.worker(w);
        // `running` first: the deadline read after it is this task's (or 0), never an earlier
        // task's (the worker clears the deadline before it names its next task).
        let running = slot.running.load(Ordering::Acquire);
        if running == 0 {
            continue;
        }
        let (j, ticket) = running_task(running);
        let (job, owner) = (shared.job(j), w as u32 + 1);
        let deadline = slot.deadline.load(Ordering::Acquire);
        if deadline != 0 && deadline <= now {
            job.time_out(ticket, owner, &groups);
        }
        // Taken from this worker (timed out above, or cancelled by the parent) while its slot
        // still names it: the parent keeps the job slot until `running` changes, so this word is
        // still that task's end.
        if job.taken() == Some(Taken { owner, ticket }) {
            sys::kill(child.pid); // still ours to reap, so the pid cannot have been reused
        }
    }
}

/// Forks worker `w`; `None` if the fork failed (retried later).
fn spawn(shared: Shared, w: usize, supervisor: i32, control: BorrowedFd<'_>) -> Option<Child> {
    // SAFETY: the supervisor is single-threaded, so the child may do anything before `_exit`.
    match unsafe { sys::fork() } {
        Ok(Forked::Child) => sys::exit_now(worker_main(shared, w, supervisor, control)),
        Ok(Forked::Parent(pid)) => match sys::pidfd_open(pid) {
            Ok(pidfd) => {
                shared.worker(w).pid.store(pid as u32, Ordering::Relaxed);
                Some(Child { pid, pidfd })
            }
            Err(_) => {
                sys::kill_and_reap(pid);
                None
            }
        },
        Err(_) => None,
    }
}

/// A worker left slot `w`: the task it was running, if any, fails with `WorkerDied` (one it was
/// only about to claim stays queued for the others).
fn on_exit(shared: &Shared, w: usize) {
    let slot = shared.worker(w);
    slot.deadline.store(0, Ordering::Relaxed);
    // The worker is reaped, so nobody else writes `running`; it is cleared last, because while
    // it names a task taken from this worker the parent keeps that task's slot (no reuse yet).
    let running = slot.running.load(Ordering::Acquire);
    if running != 0 {
        let (job, ticket) = running_task(running);
        let (word, owner) = (shared.job(job), w as u32 + 1);
        // A worker killed between its claiming CAS and its `unpend` leaves the pending bit of
        // the task it holds: clear it, or idle workers would keep scanning for it (and a closing
        // pool keep replacing workers). Before the task ends, so that the bit is surely this
        // task's (the slot's next task is offered only after this one ended).
        if word.runs(ticket, owner) {
            shared.board().unpend(job);
        }
        word.died(ticket, owner, &|g| shared.group(g));
    }
    // Release pairs with the parent's Acquire load in `still_written`.
    slot.running.store(0, Ordering::Release);
}

fn kill_all(children: &mut [Option<Child>]) {
    for child in children.iter().flatten() {
        sys::kill(child.pid);
    }
    for child in children.iter_mut() {
        if let Some(c) = child.take() {
            let _ = sys::wait_pidfd(&c.pidfd, true);
        }
    }
}

/// A worker's whole life; returns its exit status.
fn worker_main(shared: Shared, w: usize, supervisor: i32, control: BorrowedFd<'_>) -> i32 {
    if !sys::die_with_parent(supervisor, supervisor) {
        return 1;
    }
    let header = shared.header();
    if header.init_fn != 0 {
        // SAFETY: `init_fn` is a function of this program image, set at pool creation.
        let init = unsafe { core::mem::transmute::<usize, InitFn>(header.init_fn as usize) };
        // SAFETY: the initializer's contract is the caller's (documented on the options).
        if unsafe { init(header.init_arg as *mut c_void) } != 0 {
            return INIT_FAILED;
        }
    }
    let me = Me { shared, slot: shared.worker(w), owner: w as u32 + 1, control };
    let maxtasks = header.maxtasks;
    let mut done = 0u64;
    // Workers start their scans of the pending bits at different places.
    let mut cursor = w * 64;
    loop {
        let Some((j, ticket)) = me.next_task(&mut cursor) else { return 0 };
        if !me.run(j, ticket) {
            return 0; // the task was taken from us: the supervisor may be killing us
        }
        done += 1;
        if maxtasks != 0 && done >= maxtasks {
            return 0;
        }
    }
}

/// A worker's view of itself.
struct Me<'a> {
    shared: Shared,
    slot: &'a WorkerSlot,
    /// Worker index + 1, as the job words record it.
    owner: u32,
    control: BorrowedFd<'a>,
}

impl Me<'_> {
    /// The next task to run: announced first, else any pending one; sleeps when there is none.
    /// `None` once the pool is closing and nothing is left.
    fn next_task(&self, cursor: &mut usize) -> Option<(u32, u32)> {
        let board = self.shared.board();
        loop {
            while let Some(j) = board.take() {
                if let Some(ticket) = self.claim(j) {
                    return Some((j, ticket));
                }
            }
            let mut got = None;
            if board.scan(*cursor, |j| {
                got = self.claim(j).map(|t| (j, t));
                got.is_some()
            }) {
                *cursor = got.map_or(0, |(j, _)| j as usize + 1);
                return got;
            }
            if board.is_closed() {
                return None;
            }
            board.idle(Deadline::FOREVER, &crate::sync::current_cpu);
        }
    }

    /// Claims job `j` if a task waits in it: names it in the slot first (see `WorkerSlot`).
    fn claim(&self, j: u32) -> Option<u32> {
        let job = self.shared.job(j);
        let ticket = job.queued()?;
        // Release: the supervisor that sees the claim (through the job word) sees this too.
        self.slot.running.store(running_word(j, ticket), Ordering::Release);
        if job.start(ticket, self.owner) {
            self.slot.cpu.store(crate::sync::current_cpu(), Ordering::Relaxed);
            self.shared.board().unpend(j);
            Some(ticket)
        } else {
            self.slot.running.store(0, Ordering::Relaxed);
            None
        }
    }

    /// Starts the time limit of one call, waking the supervisor if it would sleep past it.
    fn set_limit(&self, timeout_ms: u64) {
        if timeout_ms == 0 {
            return;
        }
        let at = monotonic_ns().saturating_add(timeout_ms.saturating_mul(1_000_000));
        // SeqCst pairs with the supervisor's `arm`: either it sees this deadline, or this load
        // sees its armed time and we wake it.
        self.slot.deadline.store(at, Ordering::SeqCst);
        if at < self.shared.header().armed.load(Ordering::SeqCst) {
            sys::eventfd_signal(self.control);
        }
    }

    /// Calls the task function for a single task or every item of a chunk, and ends the job.
    /// False if the job was taken from us meanwhile (cancelled, timed out).
    fn run(&self, j: u32, ticket: u32) -> bool {
        let shared = &self.shared;
        // SAFETY: we claimed the job (Acquire CAS after the parent's Release `queue`), so its
        // description is complete and nobody writes it until the job is freed.
        let msg: TaskMsg = unsafe { shared.task(j).read() };
        let job = shared.job(j);
        let groups = |g| shared.group(g);
        // SAFETY: `func` is a function of this program image, set by the parent (an `mpk_task_fn`).
        let func = unsafe { core::mem::transmute::<usize, TaskFn>(msg.func as usize) };
        let ctx = msg.ctx as usize as *mut c_void;
        let ended = match msg.kind {
            SINGLE => {
                let (arg, out) = (msg.arg as usize as *const c_void, msg.out as usize as *mut c_void);
                self.set_limit(msg.timeout_ms);
                // SAFETY: argument and result areas are the job's own, sized as the message says.
                match unsafe { call(func, ctx, arg, msg.arg_len as usize, out, msg.out_cap as usize) } {
                    Ok(len) => {
                        job.len.store(len as u64, Ordering::Relaxed);
                        job.finish(ticket, 0, 0, &groups)
                    }
                    Err(code) => job.finish(ticket, code, 0, &groups),
                }
            }
            CHUNK | CHUNK_LEN => self.run_chunk(&msg, j, ticket),
            _ => job.finish(ticket, -1, 0, &groups),
        };
        // The deadline before `running`: see `stop_taken`.
        self.slot.deadline.store(0, Ordering::Release);
        self.slot.running.store(0, Ordering::Release);
        ended
    }

    fn run_chunk(&self, msg: &TaskMsg, j: u32, ticket: u32) -> bool {
        let job = self.shared.job(j);
        let groups = |g| self.shared.group(g);
        // SAFETY: as in `run`.
        let func = unsafe { core::mem::transmute::<usize, TaskFn>(msg.func as usize) };
        let ctx = msg.ctx as usize as *mut c_void;
        let (arg, out) = (msg.arg as usize, msg.out as usize);
        // With CHUNK_LEN each result slot starts with the result's length.
        let skip = if msg.kind == CHUNK_LEN { LEN_WORD } else { 0 };
        for i in 0..msg.n as usize {
            let a = (arg + i * msg.arg_len as usize) as *const c_void;
            let slot = out + i * msg.out_cap as usize;
            self.set_limit(msg.timeout_ms);
            // SAFETY: item `i`'s argument and result slots lie in the chunk's memory (arena or an
            // inherited array).
            let called = unsafe {
                call(func, ctx, a, msg.arg_len as usize, (slot + skip) as *mut c_void, msg.out_cap as usize - skip)
            };
            let len = match called {
                Ok(len) => len,
                Err(code) => return job.finish(ticket, code, i as u64, &groups),
            };
            if skip > 0 {
                // SAFETY: the slot's first word is its length field, ours to write.
                unsafe { (slot as *mut u64).write_unaligned(len as u64) };
            }
            job.progress(i as u64 + 1);
        }
        job.finish(ticket, 0, msg.n, &groups)
    }
}

/// Calls one task: its result length, or the code it fails with: its own non-zero return, or
/// `RESULT_TOO_LONG` if it reports more than `cap` bytes (so every length the parent reads fits
/// the result area).
///
/// # Safety
/// `arg` is readable for `arg_len` bytes and `out` writable for `cap`; the task function's own
/// contract is the caller's.
unsafe fn call(
    func: TaskFn,
    ctx: *mut c_void,
    arg: *const c_void,
    arg_len: usize,
    out: *mut c_void,
    cap: usize,
) -> Result<usize, i32> {
    let mut len = 0usize;
    // SAFETY: forwarded caller duty.
    match unsafe { func(ctx, arg, arg_len, out, cap, &mut len) } {
        0 if len <= cap => Ok(len),
        0 => Err(RESULT_TOO_LONG),
        code => Err(code),
    }
}
