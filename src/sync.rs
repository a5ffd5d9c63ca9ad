//! The only module that names `core::sync::atomic`, `UnsafeCell`, spin hints or loom.
//!
//! Algorithms (`lock/`, later the rings) take atomics, futex wait/wake, deadlines and the
//! robust-list hooks from here. Under `cfg(loom)` each is a model: the futex is a table of waiters
//! behind a loom `Mutex` + `Condvar` with the value checked under the table lock, so a lost wake-up
//! shows as a loom deadlock; the robust list records held locks per thread, and
//! `loom_model::die` replays the kernel's owner-death cleanup.
#![allow(clippy::disallowed_types)]

use core::time::Duration;

use crate::error::Error;

/// Used only by `dict` (std): the seqlock's fences.
#[cfg(all(not(loom), feature = "std"))]
pub(crate) use core::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Real atomics even under loom: process bookkeeping (statics, handles) that no model covers.
#[cfg(feature = "std")]
pub(crate) mod unmodelled {
    pub(crate) use core::sync::atomic::{AtomicI32, AtomicI64, AtomicPtr, AtomicU64, Ordering};
}

/// Futex word bit: some thread may sleep on the word (kernel ABI, `FUTEX_WAITERS`).
pub(crate) const FUTEX_WAITERS: u32 = 0x8000_0000;
/// Futex word bit: the owner died holding the lock (kernel ABI, `FUTEX_OWNER_DIED`).
pub(crate) const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
/// Futex word bits that hold the owner's TID (kernel ABI, `FUTEX_TID_MASK`).
pub(crate) const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// A busy-wait hint (`pause`). Under loom, a yield, so that spinning models make progress.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// The CPU the calling thread runs on (vDSO, no system call on x86-64); 0 under loom.
#[cfg(feature = "std")] // the pool's
#[inline]
pub(crate) fn current_cpu() -> u32 {
    #[cfg(not(loom))]
    return rustix::thread::sched_getcpu() as u32;
    #[cfg(loom)]
    0
}

/// Gives the CPU to another runnable thread.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    rustix::thread::sched_yield();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Marks accesses to bytes that live outside Rust's types (ring slots in shared memory, copied
/// with raw pointers). A zero-sized no-op normally; under loom, an `UnsafeCell<()>` whose
/// `with`/`with_mut` let loom check that every write happens-before the reads it feeds.
#[repr(C)]
pub(crate) struct AccessCell {
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<()>,
}

impl AccessCell {
    /// A fresh cell.
    pub(crate) fn new() -> AccessCell {
        AccessCell {
            #[cfg(loom)]
            cell: loom::cell::UnsafeCell::new(()),
        }
    }

    /// Runs `f`, which writes the bytes this cell stands for.
    #[inline(always)]
    pub(crate) fn write<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(loom)]
        {
            self.cell.with_mut(|_| f())
        }
        #[cfg(not(loom))]
        {
            f()
        }
    }

    /// Runs `f`, which reads the bytes this cell stands for.
    #[inline(always)]
    pub(crate) fn read<R>(&self, f: impl FnOnce() -> R) -> R {
        #[cfg(loom)]
        {
            self.cell.with(|_| f())
        }
        #[cfg(not(loom))]
        {
            f()
        }
    }
}

/// Whether the loom mutation `name` is switched on (`MPK_MUTANT=name`). Always false outside loom:
/// mutations exist only to prove that a loom model can fail.
#[inline(always)]
pub(crate) fn mutant(name: &str) -> bool {
    #[cfg(loom)]
    {
        std::env::var("MPK_MUTANT").is_ok_and(|m| m == name)
    }
    #[cfg(not(loom))]
    {
        let _ = name;
        false
    }
}

/// A point in time after which a blocking call gives up. Built from a C `timeout_ms` or a Rust
/// `Duration`; `FOREVER` never expires and `NOW` is already expired (a non-blocking try).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// `CLOCK_MONOTONIC` nanoseconds; `u64::MAX` is never, 0 is already.
    at_ns: u64,
}

impl Deadline {
    /// Never expires.
    pub const FOREVER: Deadline = Deadline { at_ns: u64::MAX };
    /// Already expired: try once, never block.
    pub const NOW: Deadline = Deadline { at_ns: 0 };

    /// `d` from now.
    pub fn after(d: Duration) -> Deadline {
        if d.is_zero() {
            return Deadline::NOW;
        }
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Deadline { at_ns: now_ns().saturating_add(ns).clamp(1, u64::MAX - 1) }
    }

    /// From the C convention: `-1` (`MPK_FOREVER`) blocks, `0` (`MPK_NOWAIT`) never blocks,
    /// `n > 0` waits at most `n` ms. Other negative values are invalid.
    pub fn from_timeout_ms(ms: i64) -> Result<Deadline, Error> {
        match ms {
            -1 => Ok(Deadline::FOREVER),
            0 => Ok(Deadline::NOW),
            ms if ms > 0 => Ok(Deadline::after(Duration::from_millis(ms as u64))),
            _ => Err(Error::Inval),
        }
    }

    /// The earlier of two deadlines.
    pub fn earliest(self, other: Deadline) -> Deadline {
        if other.at_ns < self.at_ns { other } else { self }
    }

    /// True for `NOW`: the caller must not block at all.
    #[inline]
    pub fn is_now(self) -> bool {
        self.at_ns == 0
    }

    /// Time left: `None` once expired, `Some(None)` for `FOREVER`.
    pub fn remaining(self) -> Option<Option<Duration>> {
        match self.at_ns {
            u64::MAX => Some(None),
            0 => None,
            at => {
                let now = now_ns();
                (at > now).then(|| Some(Duration::from_nanos(at - now)))
            }
        }
    }
}

#[cfg(not(loom))]
fn now_ns() -> u64 {
    crate::sys::time::monotonic_ns()
}
#[cfg(loom)]
fn now_ns() -> u64 {
    1 // Models have no clock: a timed wait expires at once (see `futex_wait`).
}

/// FUTEX_WAIT and FUTEX_WAKE system calls made by this process (diagnostics and tests: the
/// fast paths of every primitive must not move these).
#[cfg(not(loom))]
static FUTEX_CALLS: [core::sync::atomic::AtomicU64; 2] =
    [core::sync::atomic::AtomicU64::new(0), core::sync::atomic::AtomicU64::new(0)];

/// How many futex wait and wake system calls this process has made so far: `(waits, wakes)`.
/// A diagnostic: a primitive's uncontended path makes none.
#[cfg(not(loom))]
pub fn futex_calls() -> (u64, u64) {
    (FUTEX_CALLS[0].load(Ordering::Relaxed), FUTEX_CALLS[1].load(Ordering::Relaxed))
}

/// Sleeps while `*word == expected`, until woken or `deadline`.
///
/// `Ok(())` means "re-check your condition" (woken, value changed, interrupted, spurious).
/// `Err(Error::Timeout)` once the deadline has passed.
#[cfg(not(loom))]
#[inline]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Result<(), Error> {
    match deadline.remaining() {
        None => Err(Error::Timeout),
        Some(timeout) => {
            // Relaxed: a statistics counter, ordered with nothing.
            FUTEX_CALLS[0].fetch_add(1, Ordering::Relaxed);
            crate::sys::futex::wait(word, expected, timeout)
        }
    }
}

/// Wakes at most `n` threads sleeping on `word` (in any process).
#[cfg(not(loom))]
#[inline]
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    // Relaxed: a statistics counter, ordered with nothing.
    FUTEX_CALLS[1].fetch_add(1, Ordering::Relaxed);
    crate::sys::futex::wake(word, n)
}

#[cfg(loom)]
pub(crate) use loom_model::{futex_wait, futex_wake};

/// What an object answers when asked to get ready for a wait over many objects (`crate::wait`).
#[cfg(feature = "std")]
pub(crate) enum Arm<'a> {
    /// Ready now: the operation waited for would not block.
    Ready,
    /// Not ready, and armed: whoever makes it ready changes `word` from `expected` and wakes its
    /// sleepers. Ask again after any wake-up, and at least every `tick` if given (for what no
    /// futex reports, such as a dead peer's socket).
    Sleep { word: &'a AtomicU32, expected: u32, tick: Option<Duration> },
}

/// The most words one [`futex_waitv`] sleeps on.
#[cfg(feature = "std")]
pub(crate) const WAITV_MAX: usize = 128;

/// On kernels without `futex_waitv` (before Linux 5.16), [`futex_waitv`] sleeps on the first word
/// only and returns at least this often, so that the caller re-checks the others.
#[cfg(feature = "std")]
pub(crate) const WAITV_FALLBACK_TICK: Duration = Duration::from_millis(1);

/// Sleeps while every `words[i].0` holds `words[i].1` (at most [`WAITV_MAX`]), until a wake-up
/// on any of them or `deadline`; answers as [`futex_wait`].
#[cfg(all(not(loom), feature = "std"))]
pub(crate) fn futex_waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Result<(), Error> {
    const _: () = assert!(WAITV_MAX == crate::sys::futex::WAITV_MAX);
    let Some(timeout) = deadline.remaining() else { return Err(Error::Timeout) };
    // Relaxed: a statistics counter, ordered with nothing.
    FUTEX_CALLS[0].fetch_add(1, Ordering::Relaxed);
    match crate::sys::futex::waitv(words, timeout) {
        Err(Error::Sys(libc::ENOSYS)) => {
            let tick = timeout.map_or(WAITV_FALLBACK_TICK, |t| t.min(WAITV_FALLBACK_TICK));
            match crate::sys::futex::wait(words[0].0, words[0].1, Some(tick)) {
                Err(Error::Timeout) if deadline.remaining().is_some() => Ok(()),
                r => r,
            }
        }
        r => r,
    }
}

#[cfg(loom)]
pub(crate) use loom_model::futex_waitv;

/// The `{prev, next}` node a robust lock links into its owner's robust list (glibc's
/// `__pthread_list_t`). Plain words, never loom-tracked: only the owning thread and the kernel use them.
#[repr(C)]
pub(crate) struct RobustNode {
    prev: core::cell::UnsafeCell<usize>,
    next: core::cell::UnsafeCell<usize>,
}

// SAFETY: a node is read and written only by the thread that holds the enclosing lock (the lock's
// Acquire/Release orders one owner's accesses before the next owner's) and by the kernel when that
// thread dies.
unsafe impl Sync for RobustNode {}
// SAFETY: as above; a node holds plain integers.
unsafe impl Send for RobustNode {}

impl RobustNode {
    /// An unlinked node.
    pub(crate) const fn new() -> RobustNode {
        RobustNode { prev: core::cell::UnsafeCell::new(0), next: core::cell::UnsafeCell::new(0) }
    }
}

/// The calling thread as a lock owner: its TID, and access to its robust list.
#[derive(Copy, Clone)]
pub(crate) struct Me {
    #[cfg(not(loom))]
    id: crate::sys::robust::ThreadIdentity,
    #[cfg(loom)]
    tid: u32,
}

impl Me {
    /// The calling thread.
    #[inline]
    pub(crate) fn current() -> Me {
        #[cfg(not(loom))]
        {
            Me { id: crate::sys::robust::ThreadIdentity::current() }
        }
        #[cfg(loom)]
        {
            Me { tid: loom_model::tid() }
        }
    }

    /// The TID a futex word holds while this thread owns it (never 0, within `FUTEX_TID_MASK`).
    #[inline]
    pub(crate) fn tid(self) -> u32 {
        #[cfg(not(loom))]
        {
            self.id.tid
        }
        #[cfg(loom)]
        {
            self.tid
        }
    }

    /// Whether this thread may take one more robust lock: the kernel recovers at most
    /// [`MAX_HELD`](crate::sys::robust::MAX_HELD) of a dying thread's locks.
    #[inline]
    pub(crate) fn may_hold_another(self) -> bool {
        #[cfg(not(loom))]
        {
            self.id.may_hold_another()
        }
        #[cfg(loom)]
        {
            true
        }
    }

    /// Whether the lock owner `tid` is another live thread of this process, whose robust list
    /// links the lock (so its memory must stay mapped). Always false under loom.
    #[cfg(feature = "std")]
    pub(crate) fn is_sibling(self, tid: u32) -> bool {
        #[cfg(not(loom))]
        {
            tid != self.id.tid && crate::sys::robust::is_own_thread(tid)
        }
        #[cfg(loom)]
        {
            let _ = tid;
            false
        }
    }

    /// Marks the lock at `word` as this thread's operation in progress (`list_op_pending`).
    ///
    /// # Safety
    /// - `node` sits `NODE_NEXT_OFFSET - 8` bytes after `word` in the same `#[repr(C)]` lock,
    ///   which stays mapped until `clear_pending`.
    /// - `self` is the calling thread.
    #[inline]
    pub(crate) unsafe fn set_pending(self, word: &AtomicU32, node: &RobustNode) {
        #[cfg(not(loom))]
        {
            debug_node(word, node);
            // SAFETY: forwarded from this function's contract.
            unsafe { self.id.set_pending(node.next.get()) }
        }
        #[cfg(loom)]
        {
            let _ = node;
            loom_model::set_pending(word);
        }
    }

    /// Clears `list_op_pending`.
    ///
    /// # Safety
    /// - `self` is the calling thread.
    #[inline]
    pub(crate) unsafe fn clear_pending(self) {
        #[cfg(not(loom))]
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.id.clear_pending()
        }
        #[cfg(loom)]
        loom_model::clear_pending();
    }

    /// Links the lock at `word` into this thread's robust list.
    ///
    /// # Safety
    /// - The calling thread (`self`) has just acquired the lock at `word`; `node` is its node,
    ///   laid out as for `set_pending` and not linked anywhere.
    #[inline]
    pub(crate) unsafe fn enqueue(self, word: &AtomicU32, node: &RobustNode) {
        #[cfg(not(loom))]
        {
            debug_node(word, node);
            // SAFETY: forwarded from this function's contract.
            unsafe { self.id.enqueue(node.next.get()) }
        }
        #[cfg(loom)]
        {
            let _ = node;
            loom_model::hold(word);
        }
    }

    /// Unlinks the lock at `word` from this thread's robust list.
    ///
    /// # Safety
    /// - The calling thread (`self`) owns the lock and linked it with `enqueue`.
    #[inline]
    pub(crate) unsafe fn dequeue(self, word: &AtomicU32, node: &RobustNode) {
        #[cfg(not(loom))]
        {
            debug_node(word, node);
            // SAFETY: forwarded from this function's contract.
            unsafe { self.id.dequeue(node.next.get()) }
        }
        #[cfg(loom)]
        {
            let _ = node;
            loom_model::release(word);
        }
    }
}

/// Who claimed a queue slot, as the high half of the slot's state word records it: the claiming
/// thread's TID when the kernel will mark the half `FUTEX_OWNER_DIED` if that thread dies (a glibc
/// thread, with `std`: its TID and robust-list head are cached), else [`ANON_CLAIMANT`], whose
/// death nobody can see.
#[derive(Copy, Clone)]
pub(crate) struct Claimant {
    owner: u32,
    #[cfg(all(not(loom), feature = "std"))]
    id: crate::sys::robust::ThreadIdentity,
}

/// The owner half of a slot claimed by a thread whose death the kernel does not report: bit 29 is
/// never set in a TID (at most 2^22), so the kernel never matches it.
pub(crate) const ANON_CLAIMANT: u32 = 1 << 29;

impl Claimant {
    /// The calling thread. Without `std` there is no thread-local cache, and asking the kernel
    /// (two system calls) would cost more than the queue operation: the claimant is anonymous.
    #[inline]
    pub(crate) fn current() -> Claimant {
        #[cfg(loom)]
        {
            Claimant { owner: loom_model::tid() }
        }
        #[cfg(all(not(loom), feature = "std"))]
        {
            let id = crate::sys::robust::ThreadIdentity::current();
            Claimant { owner: if id.reports_death() { id.tid } else { ANON_CLAIMANT }, id }
        }
        #[cfg(all(not(loom), not(feature = "std")))]
        {
            Claimant { owner: ANON_CLAIMANT }
        }
    }

    /// What a slot's owner half holds while this thread has it claimed.
    #[inline(always)]
    pub(crate) fn owner(self) -> u32 {
        self.owner
    }

    /// Names the high half of `word` as this thread's robust operation in progress
    /// (`list_op_pending`): if the thread dies while that half holds its TID, the kernel sets it
    /// to `FUTEX_OWNER_DIED`. Call it before the CAS that puts the TID there.
    ///
    /// # Safety
    /// - `word` stays mapped until [`clear_pending`](Self::clear_pending); `self` is the calling thread.
    #[inline(always)]
    pub(crate) unsafe fn set_pending(self, word: &AtomicU64) {
        #[cfg(loom)]
        loom_model::set_pending_slot(word);
        #[cfg(all(not(loom), feature = "std"))]
        {
            // The kernel reads the futex word `NODE_NEXT_OFFSET` bytes before the pending entry;
            // the high half of a little-endian u64 is its second 4 bytes.
            let high = word as *const AtomicU64 as usize + 4;
            // SAFETY: forwarded from this function's contract; the kernel only reads the word.
            unsafe { self.id.set_pending((high + crate::sys::robust::NODE_NEXT_OFFSET) as *mut usize) }
        }
        #[cfg(all(not(loom), not(feature = "std")))]
        let _ = word;
    }

    /// Clears `list_op_pending` (after the claimed slot no longer holds this thread's TID).
    ///
    /// # Safety
    /// - `self` is the calling thread.
    #[inline(always)]
    pub(crate) unsafe fn clear_pending(self) {
        #[cfg(loom)]
        loom_model::clear_pending();
        #[cfg(all(not(loom), feature = "std"))]
        // SAFETY: forwarded from this function's contract.
        unsafe {
            self.id.clear_pending()
        }
    }
}

/// A point in a protocol where a loom model may kill the calling thread (see
/// [`loom_model::die_at`]); nothing outside loom.
#[inline(always)]
pub(crate) fn death_point(name: &'static str) {
    #[cfg(loom)]
    loom_model::death_point(name);
    #[cfg(not(loom))]
    let _ = name;
}

#[cfg(not(loom))]
#[inline(always)]
fn debug_node(word: &AtomicU32, node: &RobustNode) {
    debug_assert_eq!(
        node.next.get() as usize - word as *const AtomicU32 as usize,
        crate::sys::robust::NODE_NEXT_OFFSET,
        "robust node must sit where the kernel's futex_offset expects it"
    );
    debug_assert_eq!(
        node.prev.get() as usize - word as *const AtomicU32 as usize,
        crate::sys::robust::NODE_PREV_OFFSET
    );
}

/// loom models of the kernel services: futex wait/wake, thread ids, the robust list.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model {
    use super::{AtomicU32, AtomicU64, Deadline, FUTEX_OWNER_DIED, FUTEX_TID_MASK, FUTEX_WAITERS, Ordering};
    use crate::error::Error;
    use loom::sync::{Condvar, Mutex};
    use std::cell::{Cell, RefCell};
    use std::vec::Vec;

    struct Waiter {
        /// The words it sleeps on (one, or several for `futex_waitv`).
        addrs: Vec<usize>,
        id: u64,
        woken: bool,
    }

    #[derive(Default)]
    struct Table {
        waiters: Vec<Waiter>,
        next_id: u64,
    }

    loom::lazy_static! {
        static ref TABLE: Mutex<Table> = Mutex::new(Table::default());
        static ref WOKEN: Condvar = Condvar::new();
    }

    /// FUTEX_WAIT: the value check and the enqueue happen under the table lock, as the kernel
    /// does them under the hash-bucket lock. A timed wait times out at once (models have no clock).
    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, deadline: Deadline) -> Result<(), Error> {
        futex_waitv(&[(word, expected)], deadline)
    }

    /// `futex_waitv`: as `futex_wait`, over several words at once.
    pub(crate) fn futex_waitv(words: &[(&AtomicU32, u32)], deadline: Deadline) -> Result<(), Error> {
        let addrs = words.iter().map(|(w, _)| *w as *const AtomicU32 as usize).collect();
        let mut t = TABLE.lock().unwrap();
        if words.iter().any(|(w, expected)| w.load(Ordering::SeqCst) != *expected) {
            return Ok(());
        }
        if deadline != Deadline::FOREVER {
            // A timed wait is a re-check tick here: let the others run, then report the tick.
            drop(t);
            loom::thread::yield_now();
            return Err(Error::Timeout);
        }
        let id = t.next_id;
        t.next_id += 1;
        t.waiters.push(Waiter { addrs, id, woken: false });
        loop {
            t = WOKEN.wait(t).unwrap();
            let i = t.waiters.iter().position(|w| w.id == id).expect("waiter vanished");
            if t.waiters[i].woken {
                t.waiters.remove(i);
                return Ok(());
            }
        }
    }

    /// FUTEX_WAKE: marks up to `n` sleepers on `word` woken.
    pub(crate) fn futex_wake(word: &AtomicU32, n: u32) -> usize {
        let addr = word as *const AtomicU32 as usize;
        let mut t = TABLE.lock().unwrap();
        let mut woken = 0;
        for w in t.waiters.iter_mut().filter(|w| w.addrs.contains(&addr) && !w.woken) {
            if woken == n as usize {
                break;
            }
            w.woken = true;
            woken += 1;
        }
        if woken > 0 {
            WOKEN.notify_all();
        }
        woken
    }

    loom::thread_local! {
        static TID: Cell<u32> = Cell::new(0);
        static HELD: RefCell<Vec<usize>> = RefCell::new(Vec::new());
        static PENDING: Cell<usize> = Cell::new(0);
        static DIE_AT: Cell<Option<&'static str>> = Cell::new(None);
    }

    /// Low bit of `PENDING`: the address is a slot's `AtomicU64` (both kinds are 4-aligned).
    const SLOT_TAG: usize = 1;

    pub(crate) fn tid() -> u32 {
        // Not loom-tracked on purpose: allocating ids must not add interleavings to the model.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        TID.with(|t| {
            if t.get() == 0 {
                t.set(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & FUTEX_TID_MASK);
            }
            t.get()
        })
    }

    pub(crate) fn set_pending(word: &AtomicU32) {
        PENDING.with(|p| p.set(word as *const AtomicU32 as usize));
    }
    /// The pending operation is on the high (owner) half of a queue slot's state word.
    pub(crate) fn set_pending_slot(word: &AtomicU64) {
        PENDING.with(|p| p.set(word as *const AtomicU64 as usize | SLOT_TAG));
    }
    pub(crate) fn clear_pending() {
        PENDING.with(|p| p.set(0));
    }

    /// Kills the calling model thread when it next reaches [`death_point`] `name`.
    pub fn die_at(name: &'static str) {
        DIE_AT.with(|d| d.set(Some(name)));
    }

    /// The panic payload of a thread killed at a death point: catch it around the operation.
    #[derive(Debug)]
    pub struct Died(pub &'static str);

    pub(crate) fn death_point(name: &'static str) {
        if DIE_AT.with(|d| d.get()) == Some(name) {
            DIE_AT.with(|d| d.set(None));
            die();
            std::panic::resume_unwind(std::boxed::Box::new(Died(name)));
        }
    }
    pub(crate) fn hold(word: &AtomicU32) {
        HELD.with(|h| h.borrow_mut().push(word as *const AtomicU32 as usize));
    }
    pub(crate) fn release(word: &AtomicU32) {
        let addr = word as *const AtomicU32 as usize;
        HELD.with(|h| h.borrow_mut().retain(|&a| a != addr));
    }

    /// The kernel's exit-time cleanup (`exit_robust_list` → `handle_futex_death`) for the calling
    /// model thread, which must do nothing with mpkit afterwards: every lock it holds gets
    /// `FUTEX_OWNER_DIED` and one waiter is woken; a pending operation on a free word passes a
    /// wake-up on.
    pub fn die() {
        let me = tid();
        let held: Vec<usize> = HELD.with(|h| h.borrow_mut().drain(..).collect());
        let pending = PENDING.with(|p| p.replace(0));
        if pending & SLOT_TAG != 0 {
            // SAFETY (model only): as below, a live slot word of a ring the model keeps alive.
            let word = unsafe { &*((pending & !SLOT_TAG) as *const AtomicU64) };
            let v = word.load(Ordering::SeqCst);
            let owner = (v >> 32) as u32;
            if owner & FUTEX_TID_MASK == me {
                let dead = u64::from((owner & FUTEX_WAITERS) | FUTEX_OWNER_DIED) << 32 | (v & 0xffff_ffff);
                // Nobody else writes a slot while its owner half names a live claimant.
                assert!(word.compare_exchange(v, dead, Ordering::SeqCst, Ordering::SeqCst).is_ok());
            }
        }
        let pending = if pending & SLOT_TAG != 0 { 0 } else { pending };
        for addr in held.iter().copied().chain((pending != 0 && !held.contains(&pending)).then_some(pending)) {
            // SAFETY (model only): the address came from a live `&AtomicU32` of a lock this thread
            // held or was operating on, which the model keeps alive until its threads are joined.
            let word = unsafe { &*(addr as *const AtomicU32) };
            loop {
                let v = word.load(Ordering::SeqCst);
                if addr == pending && v & FUTEX_TID_MASK == 0 {
                    futex_wake(word, 1);
                    break;
                }
                if v & FUTEX_TID_MASK != me {
                    break;
                }
                let dead = (v & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
                if word.compare_exchange(v, dead, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    if v & FUTEX_WAITERS != 0 {
                        futex_wake(word, 1);
                    }
                    break;
                }
            }
        }
    }
}
