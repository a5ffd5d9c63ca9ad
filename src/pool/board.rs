//! The pool's task board: how a queued task reaches an idle worker. Every worker pulls from the
//! one board, so no task waits behind a busy worker while another is idle.
//!
//! The board has three parts, all in the pool's shared region:
//! - **Pending bits**, one per job slot (and their count): set by the parent before it queues a
//!   task, cleared by whoever moves the job out of QUEUED (the claiming worker, or the parent
//!   cancelling or terminating). A set bit is the authoritative "this job may be waiting".
//! - **Announcements**, a ring of `cells` in FIFO order: each holds (sequence, job). The parent
//!   announces a job after queueing it; a worker takes the next announcement by CAS on `head`
//!   and then claims the job with the job word's CAS (`JobWord::start`). An announcement is only
//!   a hint: a stale one (its job already claimed, ended or re-queued) makes the claim fail and
//!   costs nothing, and a lost one (its taker died before claiming, or it was overwritten
//!   because more than `cells` announcements were waiting) leaves the job's pending bit set, so a
//!   worker that finds no announcement scans the bits. Nothing ever waits for a dead process:
//!   producers never wait for consumers (a lapped cell is overwritten, never blocked on), and
//!   consumers skip a lapped cell.
//! - **Idle workers' sleep**, an event count: the high bits of `tail` count the workers that
//!   sleep (or are about to) on `work`. A worker that found nothing reads `work`, then adds
//!   itself with a CAS on `tail` *at the value that proves nothing is announced* (sequence ==
//!   `head`), and sleeps; the parent announces with a `fetch_add` on the same word, and if it
//!   returned sleepers, bumps `work` and wakes one. Both are RMWs on one word, so their order is
//!   total: either the worker's CAS fails (and it looks again) or the parent sees it. Each
//!   announcement made while workers sleep wakes one of them (a worker between its CAS and its
//!   sleep sees `work` changed and does not sleep). A worker that sees a pending job it could
//!   not claim (an announcement lost, or a claim or an offer half done) sleeps in 1 ms ticks
//!   only, and the supervisor wakes every sleeper after a worker's death, so the pending bit of
//!   a lost announcement is always looked at.

use crate::sync::{AtomicU32, AtomicU64, Deadline, Ordering, futex_wait, futex_wake, mutant, yield_now};

/// Longest an idle worker sleeps while the board is unsettled (see `idle`).
const MID_WRITE_TICK: core::time::Duration = core::time::Duration::from_millis(1);
/// Most hints between two looks while an idle worker spins.
const SPIN_ROUND_MAX: u32 = 64;

/// The board's control words, one cache line per writer group.
#[repr(C)]
pub struct BoardCtl {
    /// Next announcement's sequence number (low `SEQ_BITS`, parent) and the sleeping workers
    /// (high bits, workers).
    tail: AtomicU64,
    /// The CPU the parent last announced from (see `idle`).
    caller_cpu: AtomicU32,
    _p0: [u8; 52],
    /// Next announcement to take (workers).
    head: AtomicU64,
    _p1: [u8; 56],
    /// Pending bits set.
    pending: AtomicU32,
    /// Non-zero once the pool is closing: idle workers exit instead of sleeping.
    closed: AtomicU32,
    /// Adaptive spin budget of idle workers.
    spin: AtomicU32,
    _r: u32,
    _p2: [u8; 48],
    /// Futex word: bumped to wake idle workers.
    work: AtomicU32,
    _p3: [u8; 60],
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(size_of::<BoardCtl>(), 256);

impl BoardCtl {
    /// Sequence numbers start at 1, so that a zeroed cell (sequence 0) lags every position the
    /// cells are first used for: zeroed cells need no set-up.
    pub fn new() -> BoardCtl {
        BoardCtl {
            tail: AtomicU64::new(1),
            caller_cpu: AtomicU32::new(u32::MAX),
            _p0: [0; 52],
            head: AtomicU64::new(1),
            _p1: [0; 56],
            pending: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            spin: AtomicU32::new(crate::lock::backoff::ADAPTIVE_INITIAL),
            _r: 0,
            _p2: [0; 48],
            work: AtomicU32::new(0),
            _p3: [0; 60],
        }
    }
}

/// A view of one board: its control words, its announcement cells (a power of two of them) and
/// its pending bits (one per job slot).
#[derive(Copy, Clone)]
pub struct Board<'a> {
    ctl: &'a BoardCtl,
    cells: &'a [AtomicU64],
    bits: &'a [AtomicU64],
}

/// Bits of `tail` that hold the sequence; the ones above count sleeping workers.
const SEQ_BITS: u32 = 48;
const SEQ: u64 = (1 << SEQ_BITS) - 1;
const SLEEPER: u64 = 1 << SEQ_BITS;

/// A cell: the announcement's sequence number (low 32 bits) over the job.
fn cell(seq: u64, job: u32) -> u64 {
    (seq as u32 as u64) << 32 | job as u64
}

/// How far a cell's sequence is ahead of `seq` (negative: behind, not yet written for `seq`).
fn lag(c: u64, seq: u64) -> i32 {
    ((c >> 32) as u32).wrapping_sub(seq as u32) as i32
}

impl<'a> Board<'a> {
    pub fn new(ctl: &'a BoardCtl, cells: &'a [AtomicU64], bits: &'a [AtomicU64]) -> Board<'a> {
        debug_assert!(cells.len().is_power_of_two());
        Board { ctl, cells, bits }
    }

    /// Cells needed for `jobs` slots: twice as many announcements as jobs fit before any is
    /// overwritten.
    pub fn cells_for(jobs: usize) -> usize {
        (2 * jobs).next_power_of_two()
    }

    /// Parent, before queueing job `j`: marks it pending.
    pub fn offer(&self, j: u32) {
        let bit = 1u64 << (j % 64);
        // AcqRel on both: the count follows the bits it counts (see `unpend`).
        if self.bits[j as usize / 64].fetch_or(bit, Ordering::AcqRel) & bit == 0 {
            self.ctl.pending.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whoever moved job `j` out of QUEUED: it is no longer pending.
    pub fn unpend(&self, j: u32) {
        let bit = 1u64 << (j % 64);
        if self.bits[j as usize / 64].fetch_and(!bit, Ordering::AcqRel) & bit != 0 {
            self.ctl.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Pending bits set (momentarily off by the ones being set or cleared).
    pub fn pending(&self) -> u32 {
        self.ctl.pending.load(Ordering::Acquire)
    }

    /// Parent, after queueing job `j`: announces it and wakes one sleeping worker. `cpu` is the
    /// CPU the parent runs on.
    pub fn publish(&self, j: u32, cpu: u32) {
        if self.ctl.caller_cpu.load(Ordering::Relaxed) != cpu {
            self.ctl.caller_cpu.store(cpu, Ordering::Relaxed);
        }
        // AcqRel: Release publishes the offer and the queued job to the worker whose load of
        // `tail` sees this; Acquire orders it after a sleeper's registering CAS (module docs).
        let t = self.ctl.tail.fetch_add(1, Ordering::AcqRel);
        let seq = t & SEQ;
        let slot = &self.cells[seq as usize & (self.cells.len() - 1)];
        let mut cur = slot.load(Ordering::Relaxed);
        // Never overwrite a later announcement (a producer that lapped this one got there first).
        while lag(cur, seq) < 0 {
            // Release pairs with the taker's Acquire load of the cell.
            match slot.compare_exchange_weak(cur, cell(seq, j), Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(c) => cur = c,
            }
        }
        if t >> SEQ_BITS != 0 && !mutant("board_no_wake") {
            self.ctl.work.fetch_add(1, Ordering::Release);
            futex_wake(&self.ctl.work, 1);
        }
    }

    /// Worker: the job of the next announcement, in FIFO order; `None` if there is none (or the
    /// next one is still being written). The job may have been claimed by now: the caller's
    /// claim decides.
    pub fn take(&self) -> Option<u32> {
        loop {
            let h = self.ctl.head.load(Ordering::Acquire);
            if h >= self.ctl.tail.load(Ordering::Acquire) & SEQ {
                return None;
            }
            // Acquire pairs with the Release CAS in `publish`.
            let c = self.cells[h as usize & (self.cells.len() - 1)].load(Ordering::Acquire);
            let ahead = lag(c, h);
            if ahead < 0 {
                return None; // announced, not yet written
            }
            let won = self.ctl.head.compare_exchange(h, h + 1, Ordering::AcqRel, Ordering::Relaxed).is_ok();
            if won && ahead == 0 {
                return Some(c as u32);
            }
            // Lost the race, or the cell was overwritten by a later lap (its job stays pending).
        }
    }

    /// Worker: offers each pending job to `claim`, from bit `from` on (wrapping), until it
    /// returns true. Returns whether one was claimed.
    pub fn scan(&self, from: usize, mut claim: impl FnMut(u32) -> bool) -> bool {
        if self.pending() == 0 || mutant("board_no_scan") {
            return false;
        }
        let words = self.bits.len();
        for k in 0..words {
            let w = (from / 64 + k) % words;
            let mut bits = self.bits[w].load(Ordering::Acquire);
            while bits != 0 {
                let j = (w * 64) as u32 + bits.trailing_zeros();
                if claim(j) {
                    return true;
                }
                bits &= bits - 1;
            }
        }
        false
    }

    /// Are announcements waiting (or being written)?
    fn announced(&self) -> bool {
        self.ctl.tail.load(Ordering::Acquire) & SEQ != self.ctl.head.load(Ordering::Acquire)
    }

    /// Worker that found nothing to claim: spins a while for an announcement, then sleeps until
    /// woken (or `deadline`). Returns at once once closed. The caller looks again afterwards.
    /// `cpu()` is the CPU the worker runs on: while it is the parent's, the worker yields
    /// instead of spinning, so that it does not take the CPU from the parent it waits for.
    pub fn idle(&self, deadline: Deadline, cpu: &dyn Fn() -> u32) {
        let ctl = self.ctl;
        let poll = || {
            if cpu() == ctl.caller_cpu.load(Ordering::Relaxed) {
                yield_now();
            }
            (self.announced() || self.is_closed()).then_some(())
        };
        if cfg!(not(loom)) && crate::lock::backoff::adaptive_spin(&ctl.spin, SPIN_ROUND_MAX, poll).is_some() {
            return;
        }
        // Read the event before the last look: a wake after this read changes it.
        let seen = ctl.work.load(Ordering::Acquire);
        loop {
            if self.is_closed() {
                return;
            }
            let t = ctl.tail.load(Ordering::Acquire);
            if t & SEQ != ctl.head.load(Ordering::Acquire) || self.pending() != 0 {
                // An announcement still being written, or a pending job without one (its
                // announcement was lost, or a claim or an offer is half done): sleep in short
                // ticks only, the caller looks at the pending bits again.
                let _ = futex_wait(&ctl.work, seen, deadline.earliest(Deadline::after(MID_WRITE_TICK)));
                return;
            }
            // AcqRel pairs with the parent's `fetch_add` (module docs): fails if it came first.
            if ctl.tail.compare_exchange(t, t + SLEEPER, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                let _ = futex_wait(&ctl.work, seen, deadline);
                ctl.tail.fetch_sub(SLEEPER, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Wakes every idle worker (a worker died: its announcement may be lost; or closing).
    pub fn wake_all(&self) {
        self.ctl.work.fetch_add(1, Ordering::Release);
        futex_wake(&self.ctl.work, i32::MAX as u32);
    }

    /// The pool is closing: idle workers exit once nothing is left to claim.
    pub fn close(&self) {
        // Release pairs with the Acquire load in `is_closed`.
        self.ctl.closed.store(1, Ordering::Release);
        self.wake_all();
    }

    pub fn is_closed(&self) -> bool {
        self.ctl.closed.load(Ordering::Acquire) != 0
    }
}
