//! A pool job's life, as one futex word shared by the parent, the workers and the supervisor.
//!
//! | state        | set by                                  | meaning                                  |
//! |--------------|-----------------------------------------|------------------------------------------|
//! | `FREE`       | parent (after the result is taken)      | slot unused                              |
//! | `QUEUED`     | parent (before the task is offered)     | waiting for any worker                   |
//! | `RUNNING`    | a worker (CAS from QUEUED, owner set)   | that worker is calling the task function |
//! | `DONE`       | the owner (from RUNNING)                | every item returned 0                    |
//! | `FAILED`     | the owner (from RUNNING)                | an item returned non-zero (`code`, `at`) |
//! | `DIED`       | supervisor (CAS from RUNNING, owner's)  | the owner died with it (`at`)            |
//! | `TIMED_OUT`  | supervisor (CAS from RUNNING, owner's)  | it ran past its time limit (`at`)        |
//! | `CANCELLED`  | parent (CAS from QUEUED/RUNNING)        | the caller cancelled it                  |
//! | `TERMINATED` | parent (CAS from QUEUED/RUNNING)        | the pool was terminated first            |
//!
//! Only CASes leave QUEUED or RUNNING, so exactly one party decides how a job ends. The word
//! also holds the **owner** (bits 4..16: worker index + 1, set by the claiming CAS and kept in
//! the end state) and the slot's **generation** (bits 16..31), which `queue` bumps and returns
//! as the task's *ticket*. The supervisor acts only on the (ticket, owner) it saw in a worker's
//! slot, so a late report about a worker that already finished cannot end the slot's next task,
//! and a worker's report cannot end a task another worker runs. Bit 31 (`WAITERS`) says the
//! parent may sleep on the word: whoever ends the job drops it and wakes everyone. A job may
//! also count into a group (a map or an iterator): the group's word counts finished jobs, with
//! the same sleeping bit.
//!
//! The outcome fields (`code`, `at`, `len`) are written before the ending CAS (Release) and
//! read after the parent's Acquire load of the state; only the owner writes them (`at` as its
//! progress through a chunk), so a stop by another party reports the owner's last progress.

use core::time::Duration;

use crate::error::Error;
use crate::sync::{AtomicU32, AtomicU64, Deadline, Ordering, futex_wait, futex_wake, mutant, spin_hint, yield_now};

const FREE: u32 = 0;
const QUEUED: u32 = 1;
const RUNNING: u32 = 2;
const DONE: u32 = 3;
const FAILED: u32 = 4;
const DIED: u32 = 5;
const TIMED_OUT: u32 = 6;
const CANCELLED: u32 = 7;
const TERMINATED: u32 = 8;
const WAITERS: u32 = 1 << 31;
/// The state bits of the word.
const STATE: u32 = 0xf;
const OWNER_SHIFT: u32 = 4;
/// Worker index + 1 of the worker that claimed the task (0: none).
const OWNER: u32 = 0xfff << OWNER_SHIFT;
/// The generation: the bits between the owner and `WAITERS`.
const GENERATION: u32 = !(WAITERS | OWNER | STATE);
const GENERATION_ONE: u32 = 1 << 16;
/// Largest owner number (worker index + 1) the word can hold.
pub(crate) const MAX_OWNER: u32 = OWNER >> OWNER_SHIFT;

/// How long a waiter spins before it sleeps: long enough for a worker's round trip, short
/// enough not to steal much CPU from workers running long tasks.
const SPIN: Duration = Duration::from_micros(50);

/// The shared part of one job.
#[repr(C)]
pub struct JobWord {
    /// The state above, plus `WAITERS`.
    state: AtomicU32,
    /// The task's non-zero return code (FAILED).
    code: AtomicU32,
    /// Group index + 1, or 0.
    pub group: AtomicU32,
    _r: u32,
    /// Items of a chunk finished so far; for FAILED/DIED, the item that failed.
    pub at: AtomicU64,
    /// Result length (single tasks).
    pub len: AtomicU64,
}

/// A group's finished-job counter (bit 31: the parent may sleep on it).
#[repr(C)]
pub struct GroupWord {
    done: AtomicU32,
}

/// How a job ended, as the parent sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The task returned `code` at item `at`.
    Failed {
        code: i32,
        at: u64,
    },
    /// Its worker died at item `at`.
    Died {
        at: u64,
    },
    /// It ran past its time limit at item `at` (its worker was killed).
    TimedOut {
        at: u64,
    },
    /// The caller cancelled it.
    Cancelled,
    /// The pool was terminated first.
    Terminated,
}

impl Outcome {
    /// For a job that did not end well: the error it reports and the item it stopped at.
    pub fn failure(self) -> Option<(Error, u64)> {
        match self {
            Outcome::Done => None,
            Outcome::Failed { code, at } => Some((Error::TaskFailed(code), at)),
            Outcome::Died { at } => Some((Error::WorkerDied, at)),
            Outcome::TimedOut { at } => Some((Error::TaskTimeout, at)),
            Outcome::Cancelled => Some((Error::Cancelled, 0)),
            Outcome::Terminated => Some((Error::Closed, 0)),
        }
    }
}

/// Who ended a job that was taken away from its worker: the worker (index + 1, 0 if it was
/// still queued) and the task's ticket: the worker the supervisor must stop.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Taken {
    pub owner: u32,
    pub ticket: u32,
}

impl JobWord {
    pub fn new() -> JobWord {
        JobWord {
            state: AtomicU32::new(FREE),
            code: AtomicU32::new(0),
            group: AtomicU32::new(0),
            _r: 0,
            at: AtomicU64::new(0),
            len: AtomicU64::new(0),
        }
    }

    /// Parent: arms a free slot for a new task (nobody else changes a FREE slot); returns the
    /// task's ticket.
    pub fn queue(&self, group: Option<u32>) -> u32 {
        self.group.store(group.map_or(0, |g| g + 1), Ordering::Relaxed);
        self.at.store(0, Ordering::Relaxed);
        self.len.store(0, Ordering::Relaxed);
        let ticket = (self.state.load(Ordering::Relaxed) & GENERATION).wrapping_add(GENERATION_ONE) & GENERATION;
        // Release pairs with the worker's Acquire CAS in `start`: the task's inputs are visible.
        self.state.store(ticket | QUEUED, Ordering::Release);
        ticket
    }

    /// Worker: the ticket of the task waiting in this slot, if one is.
    pub fn queued(&self) -> Option<u32> {
        let s = self.state.load(Ordering::Relaxed);
        (s & STATE == QUEUED).then_some(s & GENERATION)
    }

    /// Worker `owner` (index + 1) claims the queued task `ticket`. False if another worker took
    /// it first, or it was cancelled or given up meanwhile.
    pub fn start(&self, ticket: u32, owner: u32) -> bool {
        debug_assert!((1..=MAX_OWNER).contains(&owner));
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & !WAITERS != ticket | QUEUED {
                return false;
            }
            let claimed = s & WAITERS | ticket | owner << OWNER_SHIFT | RUNNING;
            // Acquire pairs with `queue` (inputs written before QUEUED); Release publishes the
            // worker's slot naming this task to whoever later acquires the word (the parent's
            // cancel, after which the supervisor compares the job word with that slot).
            match self.state.compare_exchange_weak(s, claimed, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    /// Owner: records progress through a chunk (read if the task is stopped or its worker dies).
    #[inline]
    pub fn progress(&self, items: u64) {
        self.at.store(items, Ordering::Relaxed);
    }

    /// Owner: ends the task `ticket` it started as DONE (`code` 0) or FAILED at item `at`.
    /// Returns false if someone else had ended it (cancelled, timed out); until then the job is
    /// the owner's, so writing the outcome fields first is safe.
    pub fn finish<'g>(&self, ticket: u32, code: i32, at: u64, groups: &dyn Fn(u32) -> &'g GroupWord) -> bool {
        self.code.store(code as u32, Ordering::Relaxed);
        self.at.store(at, Ordering::Relaxed);
        self.end(Some(ticket), None, &[RUNNING], if code == 0 { DONE } else { FAILED }, groups).is_some()
    }

    /// Supervisor: worker `owner` died; if it was running task `ticket`, that task ends DIED.
    /// Returns whether this call ended it (false if it had ended, even if the slot holds a
    /// newer task by now, or if the worker had only been about to claim it: the task is then
    /// still queued, for the others).
    pub fn died<'g>(&self, ticket: u32, owner: u32, groups: &dyn Fn(u32) -> &'g GroupWord) -> bool {
        self.end(Some(ticket), Some(owner), &[RUNNING], DIED, groups).is_some()
    }

    /// Supervisor: whether worker `owner` runs task `ticket` (it claimed it, and it has not
    /// ended). Only that worker, the parent (cancel) and the supervisor can change that.
    pub fn runs(&self, ticket: u32, owner: u32) -> bool {
        self.state.load(Ordering::Acquire) & !WAITERS == ticket | owner << OWNER_SHIFT | RUNNING
    }

    /// Supervisor: worker `owner` ran task `ticket` past its time limit: it ends TIMED_OUT (and
    /// the supervisor kills the worker). False if it had ended.
    pub fn time_out<'g>(&self, ticket: u32, owner: u32, groups: &dyn Fn(u32) -> &'g GroupWord) -> bool {
        self.end(Some(ticket), Some(owner), &[RUNNING], TIMED_OUT, groups).is_some()
    }

    /// Who may still run this ended job: for a task taken from its worker while it ran
    /// (cancelled, timed out), that worker and the ticket. Its slot must not be reused, nor the
    /// worker left alive, while the worker's slot still names the task.
    pub fn taken(&self) -> Option<Taken> {
        let s = self.state.load(Ordering::Acquire);
        let owner = (s & OWNER) >> OWNER_SHIFT;
        (owner != 0 && matches!(s & STATE, CANCELLED | TIMED_OUT)).then_some(Taken { owner, ticket: s & GENERATION })
    }

    /// Parent: the caller cancels the job. `None` if it had ended; else who ran it.
    pub fn cancel<'g>(&self, groups: &dyn Fn(u32) -> &'g GroupWord) -> Option<Taken> {
        self.end(None, None, &[QUEUED, RUNNING], CANCELLED, groups)
    }

    /// Parent: the pool was terminated before this job ended (the parent owns the slot, so any
    /// ticket is the current one).
    pub fn terminate<'g>(&self, groups: &dyn Fn(u32) -> &'g GroupWord) -> bool {
        self.end(None, None, &[QUEUED, RUNNING], TERMINATED, groups).is_some()
    }

    /// Moves the job from one of `from` to `to` with a CAS, if it still holds task `ticket`
    /// (any, for `None`) run by `owner` (anyone, for `None`); keeps ticket and owner in the
    /// word; wakes sleepers; counts the group. Returns the (owner, ticket) it ended.
    fn end<'g>(
        &self,
        ticket: Option<u32>,
        owner: Option<u32>,
        from: &[u32],
        to: u32,
        groups: &dyn Fn(u32) -> &'g GroupWord,
    ) -> Option<Taken> {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let held = ticket.is_none_or(|t| s & GENERATION == t) || mutant("job_ignore_ticket");
            let owned = owner.is_none_or(|o| s & OWNER == o << OWNER_SHIFT) || mutant("job_ignore_owner");
            if !held || !owned || !from.contains(&(s & STATE)) {
                return None;
            }
            // Release pairs with the parent's Acquire load in `outcome`/`wait`: the outcome
            // fields written above are visible with the new state.
            let release = if mutant("job_relaxed_end") { Ordering::Relaxed } else { Ordering::AcqRel };
            match self.state.compare_exchange_weak(s, s & (GENERATION | OWNER) | to, release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(cur) => s = cur,
            }
        }
        if s & WAITERS != 0 && !mutant("job_no_wake") {
            futex_wake(&self.state, i32::MAX as u32);
        }
        let g = self.group.load(Ordering::Relaxed);
        if g != 0 {
            groups(g - 1).bump();
        }
        Some(Taken { owner: (s & OWNER) >> OWNER_SHIFT, ticket: s & GENERATION })
    }

    /// Parent: how the job ended, if it has.
    pub fn outcome(&self) -> Option<Outcome> {
        // Acquire pairs with the Release CAS in `end`.
        let at = || self.at.load(Ordering::Relaxed);
        match self.state.load(Ordering::Acquire) & STATE {
            DONE => Some(Outcome::Done),
            FAILED => Some(Outcome::Failed { code: self.code.load(Ordering::Relaxed) as i32, at: at() }),
            DIED => Some(Outcome::Died { at: at() }),
            TIMED_OUT => Some(Outcome::TimedOut { at: at() }),
            CANCELLED => Some(Outcome::Cancelled),
            TERMINATED => Some(Outcome::Terminated),
            _ => None,
        }
    }

    /// Parent: frees an ended slot (keeping its generation).
    pub fn free(&self) {
        debug_assert!(self.outcome().is_some());
        let s = self.state.load(Ordering::Relaxed);
        self.state.store(s & GENERATION | FREE, Ordering::Relaxed);
    }

    /// For a wait over many objects: `None` if the job ended, else `WAITERS` set (as `wait`
    /// sleeps) and the word and value to sleep on.
    pub fn arm(&self) -> Option<(&AtomicU32, u32)> {
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & STATE > RUNNING {
                return None;
            }
            // Release pairs with the ender's AcqRel CAS, which then sees WAITERS and wakes us.
            if s & WAITERS != 0
                || self.state.compare_exchange(s, s | WAITERS, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return Some((&self.state, s | WAITERS));
            }
        }
    }

    /// Parent: waits until the job ended, until `deadline`. Spins briefly, then sleeps; while
    /// asleep it wakes every `tick` to ask `alive()` (is the pool's supervisor still there?).
    /// While the job runs on a worker for which `beside(owner)` says it shares this CPU, the
    /// spin yields instead.
    pub fn wait(
        &self,
        deadline: Deadline,
        tick: Duration,
        alive: &mut dyn FnMut() -> bool,
        beside: &dyn Fn(u32) -> bool,
    ) -> Result<Outcome, Error> {
        let yield_to = |s: u32| s & STATE == RUNNING && beside((s & OWNER) >> OWNER_SHIFT);
        wait_word(&self.state, deadline, tick, alive, &yield_to, &mut |s| {
            if s & STATE > RUNNING { self.outcome() } else { None }
        })
    }
}

impl GroupWord {
    /// The count of ended jobs as it stands (with `WAITERS`), for [`arm_at`](Self::arm_at).
    pub fn current(&self) -> u32 {
        self.done.load(Ordering::Acquire)
    }

    /// For a wait over many objects: sets `WAITERS` if the count is still `seen` (read with
    /// [`current`](Self::current) before the caller found nothing ended); the word and value to
    /// sleep on, or `None` if a job ended since (look again).
    pub fn arm_at(&self, seen: u32) -> Option<(&AtomicU32, u32)> {
        // Release pairs with the ender's AcqRel CAS, which then sees WAITERS and wakes us.
        let armed = seen & WAITERS != 0
            || self.done.compare_exchange(seen, seen | WAITERS, Ordering::AcqRel, Ordering::Relaxed).is_ok();
        armed.then_some((&self.done, seen | WAITERS))
    }

    pub fn new() -> GroupWord {
        GroupWord { done: AtomicU32::new(0) }
    }

    /// Parent: resets an unused group.
    pub fn reset(&self) {
        self.done.store(0, Ordering::Relaxed);
    }

    /// One more job of the group ended: count it, drop WAITERS, wake if it was set.
    fn bump(&self) {
        let mut cur = self.done.load(Ordering::Relaxed);
        loop {
            // AcqRel: Release publishes the job's end to the parent's Acquire in `done`/`wait`;
            // Acquire pairs with the parent's Release CAS that set WAITERS.
            match self.done.compare_exchange_weak(cur, (cur & !WAITERS) + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if cur & WAITERS != 0 && !mutant("group_no_wake") {
            futex_wake(&self.done, i32::MAX as u32);
        }
    }

    /// Parent: waits until more than `seen` jobs of the group ended (see `JobWord::wait`).
    pub fn wait_beyond(
        &self,
        seen: u32,
        deadline: Deadline,
        tick: Duration,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<u32, Error> {
        wait_word(&self.done, deadline, tick, alive, &|_| false, &mut |v| {
            let n = v & !WAITERS;
            (n != seen).then_some(n)
        })
    }
}

/// Waits until `ready(word)` says yes. Spins in growing rounds (yielding instead while
/// `yield_to(word)`), then sets WAITERS with a CAS at a value that is not ready (so the next end
/// sees the bit) and sleeps, waking every `tick`.
fn wait_word<R>(
    word: &AtomicU32,
    deadline: Deadline,
    tick: Duration,
    alive: &mut dyn FnMut() -> bool,
    yield_to: &dyn Fn(u32) -> bool,
    ready: &mut dyn FnMut(u32) -> Option<R>,
) -> Result<R, Error> {
    let spin_until = deadline.earliest(Deadline::after(SPIN));
    let mut round = 1u32;
    loop {
        let v = word.load(Ordering::Acquire);
        if let Some(r) = ready(v) {
            return Ok(r);
        }
        if yield_to(v) {
            yield_now();
        }
        if deadline.is_now() {
            return Err(Error::Timeout);
        }
        if cfg!(loom) || spin_until.remaining().is_none() {
            break;
        }
        for _ in 0..round {
            spin_hint();
        }
        round = (round * 2).min(64);
    }
    loop {
        let v = word.load(Ordering::Acquire);
        if let Some(r) = ready(v) {
            return Ok(r);
        }
        // Release pairs with the ender's AcqRel CAS, which then sees WAITERS and wakes us.
        if v & WAITERS == 0 && word.compare_exchange(v, v | WAITERS, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            continue;
        }
        let until = if cfg!(loom) { deadline } else { deadline.earliest(Deadline::after(tick)) };
        match futex_wait(word, v | WAITERS, until) {
            Ok(()) => {}
            Err(Error::Timeout) if deadline.remaining().is_some() => {
                if !alive() {
                    return ready(word.load(Ordering::Acquire)).ok_or(Error::Broken);
                }
            }
            Err(e) => return Err(e),
        }
    }
}
