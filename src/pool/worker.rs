//! The pool's child processes.
//!
//! The **supervisor** is forked once, when the pool is created, and is single-threaded: it forks
//! the workers, watches them through pidfds, reaps them, and replaces any that exits (killed,
//! crashed, `maxtasksperchild` reached). A worker that dies with a task fails that task with
//! `WorkerDied` (its slot records the job before the task leaves the ring). The supervisor also
//! watches the parent through a pidfd: when the parent process dies, it kills the workers and
//! exits, and workers die with the supervisor (`PR_SET_PDEATHSIG`), so no worker is orphaned.
//! Because only the supervisor forks after creation, a parent that starts threads later never
//! forks a worker from a threaded process.
//!
//! A **worker** runs the initializer once, then takes tasks from its own ring, spinning briefly
//! before it sleeps, and calls the task function.

use core::ffi::c_void;
use core::time::Duration;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};

use super::RESULT_TOO_LONG;
use super::shared::{
    CHUNK, CHUNK_LEN, CLOSE, InitFn, LEN_WORD, SINGLE, Shared, TERMINATE, TaskFn, TaskMsg, running_task, running_word,
};
use crate::error::Error;
use crate::sync::{Deadline, Ordering};
use crate::sys::proc::{self as sys, Forked};

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
    let mut children: Vec<Option<Child>> = (0..workers).map(|_| None).collect();
    let mut init_failures = vec![0u32; workers];
    let mut closing = false;
    for (w, child) in children.iter_mut().enumerate() {
        *child = spawn(shared, w, me);
    }
    loop {
        let retry = children.iter().any(Option::is_none) && !closing;
        let mut fds: Vec<BorrowedFd<'_>> = vec![parent_fd.as_fd(), control];
        let watched: Vec<usize> = (0..workers).filter(|&w| children[w].is_some()).collect();
        fds.extend(watched.iter().map(|&w| children[w].as_ref().expect("watched").pidfd.as_fd()));
        let ready = match sys::poll_readable_many(&fds, retry.then_some(RESPAWN_RETRY)) {
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
            for w in 0..workers {
                shared.ring(w).close(); // workers drain their rings, then exit
            }
        }
        for (i, &w) in watched.iter().enumerate() {
            if ready.get(2 + i) != Some(&true) {
                continue;
            }
            let Some(child) = children[w].take() else { continue };
            let code = sys::wait_pidfd(&child.pidfd, false).ok().flatten();
            on_exit(&shared, w);
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
        let broken = shared.header().broken.load(Ordering::Acquire) != 0;
        for (w, child) in children.iter_mut().enumerate() {
            // Replace missing workers; when closing, only while their ring still has tasks.
            if child.is_none() && !broken && (!closing || !shared.ring(w).is_empty()) {
                *child = spawn(shared, w, me);
            }
        }
        if (closing || broken) && children.iter().all(Option::is_none) {
            return 0;
        }
    }
}

/// Forks worker `w`; `None` if the fork failed (retried later).
fn spawn(shared: Shared, w: usize, supervisor: i32) -> Option<Child> {
    // SAFETY: the supervisor is single-threaded, so the child may do anything before `_exit`.
    match unsafe { sys::fork() } {
        Ok(Forked::Child) => sys::exit_now(worker_main(shared, w, supervisor)),
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

/// A worker left slot `w`: fail the task it held, and any task it had taken from its ring but
/// not yet recorded.
fn on_exit(shared: &Shared, w: usize) {
    let groups = |g| shared.group(g);
    let running = shared.worker(w).running.swap(0, Ordering::AcqRel);
    if running != 0 {
        let (job, ticket) = running_task(running);
        shared.job(job).died(ticket, &groups);
    }
    shared.ring(w).recover_abandoned(|bytes| {
        if let Ok(msg) = bytemuck::try_pod_read_unaligned::<TaskMsg>(bytes) {
            shared.job(msg.job).died(msg.ticket, &groups);
        }
    });
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
fn worker_main(shared: Shared, w: usize, supervisor: i32) -> i32 {
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
    let ring = shared.ring(w);
    let slot = shared.worker(w);
    let maxtasks = header.maxtasks;
    let mut done = 0u64;
    loop {
        let mut msg: TaskMsg = bytemuck::Zeroable::zeroed();
        // Record the job before the message leaves the ring (the slot is released after this
        // closure), so that the supervisor can always tell which task a dead worker held.
        let took = ring.get_many(
            1,
            size_of::<TaskMsg>(),
            |_, m| {
                msg = bytemuck::pod_read_unaligned(m);
                // Release pairs with the supervisor's AcqRel swap after this worker exits.
                slot.running.store(running_word(&msg), Ordering::Release);
            },
            Deadline::FOREVER,
        );
        match took {
            Ok(_) => {}
            Err(Error::Closed) => return 0,
            Err(_) => return 2,
        }
        run(&shared, &msg);
        slot.running.store(0, Ordering::Release);
        done += 1;
        if maxtasks != 0 && done >= maxtasks {
            return 0;
        }
    }
}

/// Calls the task function for a single task or every item of a chunk, and ends the job.
fn run(shared: &Shared, msg: &TaskMsg) {
    let job = shared.job(msg.job);
    if !job.start(msg.ticket) {
        return; // cancelled while queued
    }
    let groups = |g| shared.group(g);
    // SAFETY: `func` is a function of this program image, set by the parent (an `mpk_task_fn`).
    let func = unsafe { core::mem::transmute::<usize, TaskFn>(msg.func as usize) };
    let ctx = msg.ctx as usize as *mut c_void;
    match msg.kind {
        SINGLE => {
            let (arg, out) = (msg.arg as usize as *const c_void, msg.out as usize as *mut c_void);
            // SAFETY: argument and result areas are the job's own, sized as the message says.
            match unsafe { call(func, ctx, arg, msg.arg_len as usize, out, msg.out_cap as usize) } {
                Ok(len) => {
                    job.len.store(len as u64, Ordering::Relaxed);
                    job.finish(msg.ticket, 0, 0, &groups);
                }
                Err(code) => {
                    job.finish(msg.ticket, code, 0, &groups);
                }
            }
        }
        CHUNK | CHUNK_LEN => {
            let (arg, out) = (msg.arg as usize, msg.out as usize);
            // With CHUNK_LEN each result slot starts with the result's length.
            let skip = if msg.kind == CHUNK_LEN { LEN_WORD } else { 0 };
            for i in 0..msg.n as usize {
                let a = (arg + i * msg.arg_len as usize) as *const c_void;
                let slot = out + i * msg.out_cap as usize;
                // SAFETY: item `i`'s argument and result slots lie in the chunk's memory (arena
                // or an inherited array).
                let called = unsafe {
                    call(func, ctx, a, msg.arg_len as usize, (slot + skip) as *mut c_void, msg.out_cap as usize - skip)
                };
                let len = match called {
                    Ok(len) => len,
                    Err(code) => {
                        job.finish(msg.ticket, code, i as u64, &groups);
                        return;
                    }
                };
                if skip > 0 {
                    // SAFETY: the slot's first word is its length field, ours to write.
                    unsafe { (slot as *mut u64).write_unaligned(len as u64) };
                }
                job.progress(i as u64 + 1);
            }
            job.finish(msg.ticket, 0, msg.n, &groups);
        }
        _ => {
            job.finish(msg.ticket, -1, 0, &groups);
        }
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
