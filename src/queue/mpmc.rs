//! The bounded MPMC message ring behind `mpk_queue`, [`ByteQueue`](crate::ByteQueue) and
//! [`Queue`](crate::Queue): any number of producer and consumer threads in any number of
//! processes, messages of 0..=`max_msg` bytes, in place in any (shared) memory.
//!
//! # Slots and positions (Vyukov / crossbeam `ArrayQueue`)
//! A position is `lap * one_lap + index` (`one_lap` = the power of two above `capacity`, at
//! least 4), kept in 32 bits that wrap (`one_lap` divides 2^32), so any capacity works without
//! division. Slot `index` carries a 64-bit state word: an *owner half* (high 32 bits) and a
//! `stamp` (low 32 bits), `lap(pos) + phase` with `lap(pos) = pos - index`, the position of the
//! lap's first slot. Stamps are only compared for equality with values less than a lap apart.
//!
//! | phase (stamp − lap)  | owner half                 | meaning for position `pos`              |
//! |----------------------|----------------------------|-----------------------------------------|
//! | 0 `FREE`             | 0                          | a producer may claim it                 |
//! | 1 `WRITING`          | claimant, or dead          | a producer is writing the message       |
//! | 2 `PUBLISHED`        | `LEN_TAG` \| length        | a consumer may claim it                 |
//! | 3 `READING`          | claimant, or dead          | a consumer is reading the message       |
//! | `one_lap` (next lap) | 0                          | done: free for position `pos + one_lap` |
//!
//! Storing the lap rather than the position (Vyukov's `seq[i] = i`) makes an all-zero slot a free
//! slot of lap 0, so a ring over fresh zeroed pages (an owned region) needs no pass over its
//! slots: [`QueueRef::init_zeroed`] writes the control block only, and a slot's page is touched
//! when a message first reaches it. A 2^30-slot ring costs nothing until used.
//!
//! `tail` and `head` are index words: the next position to claim (low half) and an owner half
//! naming the last claimant, plus the sleepers bit. A producer claims the position at `tail` with
//! one CAS once its slot is `FREE`, a consumer the one at `head` once it is `PUBLISHED`; only
//! free (published) slots are claimed, so nobody waits inside a claimed range. Stamps are stored
//! with Release after the slot's bytes are written (or read) and loaded with Acquire before they
//! are read (or overwritten): each stamp store pairs with the next owner's stamp load.
//!
//! # Peer death: every claim names its claimant where the kernel can mark it
//! A thread that dies holding a slot must leave a mark that the next waiter can see, without any
//! system call on the fast path and without robbing a live (slow, or `SIGSTOP`ped) claimant. The
//! kernel gives one such mark per thread: before a thread exits, for any reason, it checks the
//! word named by the thread's robust-list `list_op_pending` (shared with glibc, see
//! `sys::robust`) and, if that word holds the thread's TID, replaces the TID with
//! `FUTEX_OWNER_DIED` (keeping `FUTEX_WAITERS`). So a claim runs:
//! 1. pending := the index word's owner half; CAS the index word to (next position, our TID);
//! 2. slot := `WRITING` (`READING`) with our TID; pending := the slot's owner half; then the
//!    claim is *covered*: `tail_covered` (`head_covered`) := position + 1;
//! 3. write (read) the message; publish (free) the slot; clear pending.
//!
//! At each instant the pending word holds our TID: the index word until step 2 (nobody
//! overwrites it, see below), then the slot until step 3 replaces our TID by a length (with
//! `LEN_TAG`, bit 29, never set in a TID) or by 0. Whoever claims next through the same index
//! word overwrites the last claimant's TID there, so first it checks that the last claim is
//! covered (the covered word has reached it, or its slot is marked dead), and waits if not (a
//! live claimant is a few stores away). The covered word has a cache line of its own (in
//! the index word's line, its store would take that contended line back from the next claimant),
//! and the slot takes one store more than a plain Vyukov ring. If the index word's owner half is `FUTEX_OWNER_DIED`, the last claimant died
//! before covering: the checker *settles* it (marks that slot dead). Waiters settle too, so a
//! dead claim is marked even if no one claims after it. Then a dead claim is ended by the side
//! that waits for it:
//! - a consumer that finds the slot at `head` `WRITING` with a dead owner turns it into the next
//!   lap's `FREE` (the write is abandoned; its message never existed), then claims the position
//!   for nothing and goes on;
//! - a producer that finds the slot at `tail` still `READING` from the last lap with a dead
//!   owner turns it into this lap's `FREE` (the message is lost with its reader) and claims it.
//!
//! Each repair is counted ([`QueueRef::repairs`]) and counts as a `task_done` (nobody will finish
//! that message), so `join` does not wait for it. What a death loses is at most the one message
//! its claimant was writing or reading: never a duplicate, a torn message, or a live process's
//! message. Threads whose death the kernel does not report (no robust-list head, or a build
//! without `std`) claim as `ANON_CLAIMANT`: their claims are never repaired, and a waiter behind
//! one waits as it would for a live claimant ([`close`](QueueRef::close) releases it). Limit: a
//! thread stopped for 2^32 claims between reading an index word and its CAS could find the same
//! word again (the positions wrap) and claim a position it did not check.
//!
//! # Sleeping without a syscall on the fast path
//! Bit 63 of `tail` (the owner half's `FUTEX_WAITERS`, which the kernel keeps) says "consumers may
//! sleep on `not_empty`"; bit 63 of `head` says "producers may sleep on `not_full`"; bit 63 of
//! `done` says "joiners may sleep on `joined`". A waiter reads the event word, then sets the bit
//! with a CAS on the index word *at the value that proves it must wait* (tail == head: no position
//! handed to producers; head + capacity == tail: none handed to consumers). Claims keep the bit.
//! A claimant whose claim CAS saw the bit, once it published (freed) its slot, clears the bit,
//! bumps the event and wakes everyone on it. The waiter's CAS comes before the claim of the
//! position it waits for (both need the index at that position), so that claim CAS sees the bit
//! (no load after publishing is needed); and the waiter's event read happens-before the bump (the
//! claim CAS reads the waiter's Release CAS), so the futex either sees a changed word or the wake. Since
//! only a claimant that finished clears the bit, a claimant that dies cannot take a wake-up with
//! it: the next one to finish wakes the sleepers, who then repair the dead slot. A producer
//! blocked on a full ring re-checks every [`DEATH_TICK`] even so, for the one case no later
//! claimant fixes: the only reader died holding a slot.
//!
//! Before sleeping a waiter spins (loads only) for a budget kept in the ring: grown when spinning
//! succeeded, halved when it had to sleep anyway. While the slot a waiter needs is claimed by a
//! live peer, it re-checks in [`MID_WRITE_TICK`]s.
//!
//! [`close`](QueueRef::close) releases every waiter: once closed, a get that finds nothing
//! published at the head answers `Closed` (an unpublished slot of an anonymous or stopped
//! claimant counts as not there, and so do messages published behind it: FIFO order keeps them
//! unreachable). A put still in progress when the queue is closed may thus land after a getter
//! was told `Closed`; a later get may still take it.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::error::Error;
use crate::lock::backoff::{ADAPTIVE_INITIAL, Backoff, adaptive_spin};
#[cfg(feature = "std")]
use crate::sync::Arm;
use crate::sync::{
    AccessCell, AtomicU32, AtomicU64, Claimant, Deadline, FUTEX_OWNER_DIED, FUTEX_WAITERS, Ordering, death_point,
    futex_wait, futex_wake, mutant,
};

/// The "someone may sleep" bit of `tail`, `head` and `done`.
const SLEEPERS: u64 = 1 << 63;
const MAGIC: u32 = u32::from_le_bytes(*b"MPKQ");
/// Layout version of the ring; part of the shared ABI.
/// 2: stamps hold the lap (`pos - index`), not the position, so a zeroed slot is free.
/// 3: slots are claimed by a CAS that names the claimant; four phases per lap; repair counters.
/// 4: the covered words have cache lines of their own (a 448-byte control block).
const VERSION: u32 = 4;
/// Largest capacity (messages): `one_lap` must fit the 32-bit stamps.
pub const MAX_CAPACITY: usize = 1 << 30;
/// Largest `max_msg` (bytes): a length must fit below `LEN_TAG` in the owner half.
pub const MAX_MSG: usize = 1 << 28;

/// Slot phases: a slot's stamp is its lap plus one of these (see the module docs).
const FREE: u32 = 0;
const WRITING: u32 = 1;
const PUBLISHED: u32 = 2;
const READING: u32 = 3;
/// Phases per lap.
const PHASES: u32 = 4;
/// The position half of an index word; the high half is its owner half (last claimant, and
/// `SLEEPERS` as its `FUTEX_WAITERS` bit).
const POS: u64 = 0xffff_ffff;
/// Set in the owner half of a published slot, beside the length: never set in a TID, so the
/// kernel's death cleanup cannot take a length for its thread's claim.
const LEN_TAG: u32 = crate::sync::ANON_CLAIMANT;

/// Most hints between two looks while spinning.
const SPIN_ROUND_MAX: u32 = 64;
/// While a slot is claimed but not yet published, waiters re-check at least this often.
const MID_WRITE_TICK: core::time::Duration = core::time::Duration::from_millis(1);
/// A producer blocked on a full ring re-checks this often for a reader that died (module docs).
pub const DEATH_TICK: core::time::Duration = core::time::Duration::from_millis(50);

/// Read-only after `init`.
#[repr(C)]
struct Config {
    magic: u32,
    version: u32,
    capacity: u64,
    /// Power of two above `capacity`: positions advance by it per lap.
    one_lap: u64,
    lap_shift: u32,
    _r: u32,
    max_msg: u64,
    /// Bytes per slot: header plus `max_msg`, rounded up to 8.
    stride: u64,
}

/// The ring's control block; `capacity` slots follow it at `SLOTS_OFFSET`. One cache line per
/// group of fields that different parties write.
#[repr(C)]
pub(crate) struct Ring {
    cfg: Config,
    _p0: [u8; 64 - size_of::<Config>()],
    /// Next position to claim for writing (`SLEEPERS`: consumers may sleep).
    tail: AtomicU64,
    _p1: [u8; 56],
    /// One more than the last position claimed through `tail` whose claim is covered (module
    /// docs); 0 for none yet. A line of its own: written once per claim after the claim's CAS,
    /// it would otherwise take the contended index line back from the next claimant.
    tail_covered: AtomicU64,
    _p1c: [u8; 56],
    /// Next position to claim for reading (`SLEEPERS`: producers may sleep).
    head: AtomicU64,
    _p2: [u8; 56],
    /// As `tail_covered`, for `head`.
    head_covered: AtomicU64,
    _p2c: [u8; 56],
    /// Futex words, bumped to wake consumers / producers.
    not_empty: AtomicU32,
    not_full: AtomicU32,
    /// Non-zero once closed.
    closed: AtomicU32,
    /// Adaptive spin budget before sleeping.
    spin: AtomicU32,
    _p3: [u8; 48],
    /// `task_done` calls and repairs so far (`SLEEPERS`: joiners may sleep).
    done: AtomicU64,
    /// Futex word, bumped to wake joiners.
    joined: AtomicU32,
    _r4: u32,
    /// Slots repaired after their writer died / their reader died (see the module docs).
    dead_writers: AtomicU64,
    dead_readers: AtomicU64,
    _p4: [u8; 32],
}

/// How many slots a ring repaired after a claimant's death ([`QueueRef::repairs`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Repairs {
    /// Writes abandoned by a dead producer, stepped over by a consumer (no message was lost
    /// but the one being put).
    pub dead_writers: u64,
    /// Reads abandoned by a dead consumer, whose slot a producer took back (the message is lost).
    pub dead_readers: u64,
}

#[repr(C)]
struct Slot {
    /// Owner half (high 32 bits) and stamp (low 32 bits).
    state: AtomicU64,
    /// Loom's view of the message bytes that follow the slot header.
    access: AccessCell,
}

/// The low half of a position (or lap): what a slot's stamp holds.
#[inline(always)]
fn low(pos: u64) -> u32 {
    pos as u32
}

/// The stamp of a slot state word.
#[inline(always)]
fn stamp(state: u64) -> u32 {
    state as u32
}

/// The owner half of a slot state word.
#[inline(always)]
fn owner(state: u64) -> u32 {
    (state >> 32) as u32
}

/// A slot state word.
#[inline(always)]
fn state(stamp: u32, owner: u32) -> u64 {
    (u64::from(owner) << 32) | u64::from(stamp)
}

/// Whether a claimed slot's claimant died (the kernel marked its owner half).
#[inline(always)]
fn dead(state: u64) -> bool {
    owner(state) & FUTEX_OWNER_DIED != 0
}

/// `one_lap` of a ring of `capacity` slots: above every index, and room for the phases.
fn one_lap_for(capacity: u64) -> u64 {
    (capacity + 1).next_power_of_two().max(PHASES as u64)
}

const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// Where the slots start, and the size of a slot header.
const SLOTS_OFFSET: usize = round8(size_of::<Ring>());
const SLOT_HEADER: usize = round8(size_of::<Slot>());

#[cfg(not(loom))]
const _: () = {
    // A slot is its state word alone, so all-zero bytes are a valid (free, lap 0) slot.
    assert!(size_of::<Slot>() == 8 && align_of::<Slot>() == 8);
    assert!(size_of::<Ring>() == 448);
    assert!(SLOTS_OFFSET == 448 && SLOT_HEADER == 8);
    assert!(core::mem::offset_of!(Ring, tail) == 64 && core::mem::offset_of!(Ring, tail_covered) == 128);
    assert!(core::mem::offset_of!(Ring, head) == 192 && core::mem::offset_of!(Ring, head_covered) == 256);
    assert!(core::mem::offset_of!(Ring, not_empty) == 320 && core::mem::offset_of!(Ring, done) == 384);
    assert!(core::mem::offset_of!(Ring, dead_writers) == 400);
    assert!(MAX_MSG < LEN_TAG as usize);
};

/// A ring laid over caller memory: in place, allocation-free, usable from any process that maps
/// the memory (at any address). Copy it freely; it borrows the memory for `'a`.
///
/// One process builds the ring with [`init`](Self::init); the others attach to the same bytes
/// with [`from_raw`](Self::from_raw). Any 8-byte aligned memory will do; here it is a [`Region`].
///
/// [`Region`]: crate::Region
/// ```
/// use core::ptr::NonNull;
/// use std::time::Duration;
/// use mpkit::{Deadline, QueueRef, Region};
///
/// let bytes = QueueRef::size_for(8, 32).expect("small sizes fit");
/// let region = Region::new(bytes)?;
/// let mem = NonNull::new(region.as_ptr()).expect("a mapping is never at 0");
/// // SAFETY: `mem` is 64-byte aligned, `bytes` long, unused by anyone else, and mapped while
/// // `region` lives, which is longer than `q` and `peer`.
/// let q = unsafe { QueueRef::init(mem, bytes, 8, 32) }?;
/// q.try_put(b"ping")?;
/// // SAFETY: as above; `mem` now holds the ring built by `init`.
/// let peer = unsafe { QueueRef::from_raw(mem) }?; // as another process would attach
/// let mut buf = [0u8; 32];
/// let n = peer.get(&mut buf, Deadline::after(Duration::from_secs(1)))?;
/// assert_eq!(&buf[..n], b"ping");
/// assert!(q.is_empty());
/// # Ok::<(), mpkit::Error>(())
/// ```
#[derive(Copy, Clone, Debug)]
pub struct QueueRef<'a> {
    base: NonNull<Ring>,
    _mem: PhantomData<&'a Ring>,
}

// SAFETY: every shared field is atomic or read-only after init, and slot bytes are accessed only
// by the thread that claimed the slot (ordered by the stamp protocol above).
unsafe impl Send for QueueRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for QueueRef<'_> {}

/// `(stride, total bytes)` for a ring of `capacity` messages of up to `max_msg` bytes.
fn layout(capacity: usize, max_msg: usize) -> Option<(usize, usize)> {
    if capacity == 0 || capacity > MAX_CAPACITY || max_msg == 0 || max_msg > MAX_MSG {
        return None;
    }
    let stride = round8(SLOT_HEADER + max_msg);
    let total = capacity.checked_mul(stride)?.checked_add(SLOTS_OFFSET)?;
    (total <= isize::MAX as usize).then_some((stride, total))
}

impl<'a> QueueRef<'a> {
    /// Bytes needed for a ring of `capacity` messages of up to `max_msg` bytes; `None` if either
    /// is 0, too large, or the total overflows.
    pub fn size_for(capacity: usize, max_msg: usize) -> Option<usize> {
        layout(capacity, max_msg).map(|(_, total)| total)
    }

    /// Builds an empty ring in `mem`. `Inval` for sizes that [`size_for`](Self::size_for)
    /// refuses, for `mem_len` below its answer, or for `mem` not 8-byte aligned.
    ///
    /// Writes every slot's state word (one store per slot), since `mem` may hold anything; over
    /// memory known to be zero, [`init_zeroed`](Self::init_zeroed) writes the control block only.
    ///
    /// # Safety
    /// - `mem` is valid for reads and writes of `mem_len` bytes for `'a`, and nothing else uses
    ///   them during this call. Afterwards they may be shared with any thread or process.
    pub unsafe fn init(
        mem: NonNull<u8>,
        mem_len: usize,
        capacity: usize,
        max_msg: usize,
    ) -> Result<QueueRef<'a>, Error> {
        // SAFETY: forwarded caller duty; `zeroed: false` writes every slot.
        unsafe { Self::build(mem, mem_len, capacity, max_msg, false) }
    }

    /// As [`init`](Self::init) over memory whose slot area is all zero bytes (fresh pages of a
    /// shared mapping): writes the control block only, so the slots' pages stay untouched (and
    /// unallocated) until messages reach them. An all-zero slot is a free slot of lap 0.
    ///
    /// # Safety
    /// - As for [`init`](Self::init), and the `size_for(capacity, max_msg)` bytes at `mem` are
    ///   all zero.
    pub unsafe fn init_zeroed(
        mem: NonNull<u8>,
        mem_len: usize,
        capacity: usize,
        max_msg: usize,
    ) -> Result<QueueRef<'a>, Error> {
        // SAFETY: forwarded caller duty, including the zeroed slots.
        unsafe { Self::build(mem, mem_len, capacity, max_msg, true) }
    }

    /// # Safety
    /// - As for [`init`](Self::init); with `zeroed`, the slot area is all zero bytes.
    unsafe fn build(
        mem: NonNull<u8>,
        mem_len: usize,
        capacity: usize,
        max_msg: usize,
        zeroed: bool,
    ) -> Result<QueueRef<'a>, Error> {
        let (stride, total) = layout(capacity, max_msg).ok_or(Error::Inval)?;
        if mem_len < total || !(mem.as_ptr() as usize).is_multiple_of(8) {
            return Err(Error::Inval);
        }
        let one_lap = one_lap_for(capacity as u64);
        let ring = Ring {
            cfg: Config {
                magic: MAGIC,
                version: VERSION,
                capacity: capacity as u64,
                one_lap,
                lap_shift: one_lap.trailing_zeros(),
                _r: 0,
                max_msg: max_msg as u64,
                stride: stride as u64,
            },
            _p0: [0; 64 - size_of::<Config>()],
            tail: AtomicU64::new(0),
            _p1: [0; 56],
            tail_covered: AtomicU64::new(0),
            _p1c: [0; 56],
            head: AtomicU64::new(0),
            _p2: [0; 56],
            head_covered: AtomicU64::new(0),
            _p2c: [0; 56],
            not_empty: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            spin: AtomicU32::new(ADAPTIVE_INITIAL),
            _p3: [0; 48],
            done: AtomicU64::new(0),
            joined: AtomicU32::new(0),
            _r4: 0,
            dead_writers: AtomicU64::new(0),
            dead_readers: AtomicU64::new(0),
            _p4: [0; 32],
        };
        // SAFETY: exclusive, aligned memory of at least `total` bytes (caller duty + checks above).
        unsafe { mem.cast::<Ring>().write(ring) };
        let q = QueueRef { base: mem.cast(), _mem: PhantomData };
        // Zero bytes are a free lap-0 slot (state 0) outside loom; loom's cells must be built.
        if !zeroed || cfg!(loom) {
            for i in 0..capacity {
                let slot = Slot { state: AtomicU64::new(0), access: AccessCell::new() };
                // SAFETY: slot `i` lies inside the `total` bytes checked above, 8-aligned.
                unsafe { q.slot_ptr(i as u64).write(slot) };
            }
        }
        Ok(q)
    }

    /// Attaches to a ring built by [`init`](Self::init). `BadObject` if `mem` does not start
    /// with one (a cheap sanity check, not a proof).
    ///
    /// # Safety
    /// - `mem` is NULL-free and, if it holds a ring, the ring stays mapped for `'a`.
    /// - `mem` is readable for at least 8 bytes.
    pub unsafe fn from_raw(mem: NonNull<u8>) -> Result<QueueRef<'a>, Error> {
        let words = mem.cast::<u32>().as_ptr();
        // SAFETY: readable (caller duty); magic and version are plain, never-rewritten words.
        let magic = unsafe { words.read() };
        // SAFETY: as above (the second word).
        let version = unsafe { words.wrapping_add(1).read() };
        if magic != MAGIC {
            return Err(Error::BadObject);
        }
        if version != VERSION {
            return Err(Error::Version);
        }
        Ok(QueueRef { base: mem.cast(), _mem: PhantomData })
    }

    /// Checks a ring found in shared memory (a named queue being opened) before it is used:
    /// every layout word of the control block must be what `capacity` and `max_msg` imply
    /// (`one_lap`, `lap_shift`, `stride`, the reserved word), the ring must fit `mem_len`, and
    /// `tail`/`head` must be positions such a ring can reach. `BadObject` otherwise: a corrupted
    /// word would otherwise send slot accesses outside the mapping.
    #[cfg(feature = "std")] // named queues
    pub(crate) fn validate(self, mem_len: usize, capacity: u64, max_msg: u64) -> Result<(), Error> {
        let cfg = self.cfg();
        let (c, m) = usize::try_from(capacity).ok().zip(usize::try_from(max_msg).ok()).ok_or(Error::BadObject)?;
        let (stride, total) = layout(c, m).ok_or(Error::BadObject)?;
        let one_lap = one_lap_for(capacity);
        let words_ok = cfg.capacity == capacity
            && cfg.max_msg == max_msg
            && cfg.stride == stride as u64
            && cfg.one_lap == one_lap
            && cfg.lap_shift == one_lap.trailing_zeros()
            && cfg._r == 0
            && total <= mem_len;
        if !words_ok {
            return Err(Error::BadObject);
        }
        // Live indices: another process may move them while we look, but never against these
        // invariants (an index stays below capacity; head <= tail <= head + capacity). Acquire
        // keeps the loads in order: head, then tail, then head again.
        let r = self.ring();
        let h1 = r.head.load(Ordering::Acquire) & POS;
        let t = r.tail.load(Ordering::Acquire) & POS;
        let h2 = r.head.load(Ordering::Acquire) & POS;
        // A discarded slot lets a producer run one ahead of a full ring for a moment.
        let indices_ok = [h1, t, h2].iter().all(|&p| self.index(p) < capacity)
            && self.distance(h1, t) <= capacity + 1
            && self.distance(h2, t) <= capacity + 1;
        if !indices_ok {
            return Err(Error::BadObject);
        }
        Ok(())
    }

    /// The ring's first byte (what C's `mpk_queue *` points to).
    pub fn as_ptr(self) -> *mut u8 {
        self.base.as_ptr().cast()
    }

    #[inline]
    fn ring(&self) -> &'a Ring {
        // SAFETY: `base` points to an initialised Ring that lives for 'a (constructor contracts).
        unsafe { self.base.as_ref() }
    }

    #[inline]
    fn cfg(&self) -> &'a Config {
        &self.ring().cfg
    }

    /// Maximum number of messages.
    #[inline]
    pub fn capacity(self) -> usize {
        self.cfg().capacity as usize
    }

    /// Largest message in bytes.
    #[inline]
    pub fn max_msg(self) -> usize {
        self.cfg().max_msg as usize
    }

    #[inline]
    fn slot_ptr(&self, index: u64) -> *mut Slot {
        debug_assert!(index < self.cfg().capacity);
        let offset = SLOTS_OFFSET + index as usize * self.cfg().stride as usize;
        // SAFETY: within the ring's memory (index < capacity, layout checked at init).
        unsafe { self.base.cast::<u8>().add(offset).cast::<Slot>().as_ptr() }
    }

    #[inline]
    fn slot(&self, index: u64) -> &'a Slot {
        // SAFETY: slots are initialised by `init` and live as long as the ring.
        unsafe { &*self.slot_ptr(index) }
    }

    #[inline]
    fn slot_data(&self, index: u64) -> *mut u8 {
        // SAFETY: the message bytes follow the slot header, inside the same stride.
        unsafe { self.slot_ptr(index).cast::<u8>().add(SLOT_HEADER) }
    }

    #[inline]
    fn index(&self, pos: u64) -> u64 {
        pos & (self.cfg().one_lap - 1)
    }

    /// The first position of `pos`'s lap (`pos - index(pos)`): what the slot's stamp is
    /// compared with (see the module docs).
    #[inline]
    fn lap(&self, pos: u64) -> u64 {
        pos & !(self.cfg().one_lap - 1)
    }

    /// The position `k` slots after `pos`, where `index(pos) + k <= capacity` (positions are
    /// 32 bits and wrap; `one_lap` divides 2^32).
    #[inline]
    fn advance(&self, pos: u64, k: u64) -> u64 {
        let cfg = self.cfg();
        let i = self.index(pos) + k;
        debug_assert!(i <= cfg.capacity);
        let next = if i < cfg.capacity { pos + k } else { self.lap(pos) + cfg.one_lap };
        next & POS
    }

    /// The position before `pos`.
    #[inline]
    fn prev(&self, pos: u64) -> u64 {
        let cfg = self.cfg();
        let before =
            if self.index(pos) == 0 { self.lap(pos).wrapping_sub(cfg.one_lap) + cfg.capacity - 1 } else { pos - 1 };
        before & POS
    }

    /// How many positions the 32-bit position space holds (`count` wraps at this).
    #[inline]
    fn span(&self) -> u64 {
        ((POS + 1) >> self.cfg().lap_shift) * self.cfg().capacity
    }

    /// How many messages were claimed before position `pos`, modulo [`span`](Self::span).
    #[inline]
    fn count(&self, pos: u64) -> u64 {
        (pos >> self.cfg().lap_shift) * self.cfg().capacity + self.index(pos)
    }

    /// Messages claimed from position `from` up to position `to`.
    #[inline]
    fn distance(&self, from: u64, to: u64) -> u64 {
        (self.count(to) + self.span() - self.count(from)) % self.span()
    }

    /// Messages in the ring (claimed for writing, not yet claimed for reading): Python's `qsize`.
    pub fn len(self) -> usize {
        let r = self.ring();
        loop {
            let t = r.tail.load(Ordering::Acquire) & POS;
            let h = r.head.load(Ordering::Acquire) & POS;
            if r.tail.load(Ordering::Acquire) & POS == t {
                return self.distance(h, t).min(self.cfg().capacity) as usize;
            }
        }
    }

    /// True if [`len`](Self::len) is 0.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// How many slots this ring repaired after their claimant died (see the module docs).
    pub fn repairs(self) -> Repairs {
        let r = self.ring();
        Repairs {
            dead_writers: r.dead_writers.load(Ordering::Relaxed),
            dead_readers: r.dead_readers.load(Ordering::Relaxed),
        }
    }

    /// True once [`close`](Self::close) was called (by any process).
    #[inline]
    pub fn is_closed(self) -> bool {
        self.ring().closed.load(Ordering::Acquire) != 0
    }

    /// Closes the ring: puts fail with `Closed` from now on, gets drain what is left and then
    /// fail with `Closed`. Sleepers on both sides are woken. Idempotent.
    pub fn close(self) {
        let r = self.ring();
        // Release pairs with the Acquire loads of `closed` after a waiter reads its event word.
        r.closed.store(1, Ordering::Release);
        wake_all(&r.not_empty);
        wake_all(&r.not_full);
    }

    // ---- claiming -------------------------------------------------------------------------

    /// The index word of `side` and its covered word.
    #[inline(always)]
    fn words(self, side: Side) -> (&'a AtomicU64, &'a AtomicU64) {
        let r = self.ring();
        match side {
            Side::Producer => (&r.tail, &r.tail_covered),
            Side::Consumer => (&r.head, &r.head_covered),
        }
    }

    /// Whether the last claim through the index word of `side`, seen as `w`, is covered: its
    /// claimant's pending operation has moved to its slot, so that our claim may overwrite the
    /// claimant's name in the index word. A claim whose thread died before covering it (the
    /// kernel marked the index word) is settled here: its slot is marked dead.
    #[inline]
    fn covered(self, side: Side, w: u64, me: Claimant) -> bool {
        let last = owner(w) & !FUTEX_WAITERS;
        if last == 0 || last == me.owner() {
            return true; // nobody before us, or our own claim (covered before we went on)
        }
        let p = self.prev(w & POS);
        // Covered at `p` or later (positions wrap: compare within half the space).
        let covered = self.words(side).1.load(Ordering::Acquire);
        if covered != 0 && (covered - 1).wrapping_sub(p) & POS < 1 << 31 {
            return true;
        }
        let slot = self.slot(self.index(p));
        let lap = low(self.lap(p));
        let s = slot.state.load(Ordering::Acquire);
        let (unnamed, named) = match side {
            Side::Producer => (FREE, WRITING),
            Side::Consumer => (PUBLISHED, READING),
        };
        let phase = stamp(s).wrapping_sub(lap);
        if (phase != unnamed && phase != named) || dead(s) {
            return true; // done with, or marked dead by the kernel
        }
        if last & FUTEX_OWNER_DIED == 0 || mutant("queue_no_settle") {
            return false; // its claimant is live, a few stores from covering: wait for it
        }
        // The claimant died with the index word as its pending operation: mark its slot dead.
        // AcqRel: as in `repair`. If the slot changed meanwhile, look again.
        let dead_claim = state(lap + named, FUTEX_OWNER_DIED);
        slot.state.compare_exchange(s, dead_claim, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            || self.covered(side, w, me)
    }

    /// Claims position `pos` through the index word of `side` seen as `w` (one CAS; the new
    /// owner half names `me`, keeping `SLEEPERS`), with the index word as `me`'s pending
    /// operation.
    #[inline]
    fn claim_index(self, side: Side, w: u64, me: Claimant) -> bool {
        let word = self.words(side).0;
        // SAFETY: the ring outlives the operation, which clears the pending operation before
        // it returns.
        unsafe { me.set_pending(word) };
        let next = self.advance(w & POS, 1) | (u64::from(me.owner() | (owner(w) & FUTEX_WAITERS)) << 32);
        // AcqRel: `len` and `join` read claimed positions behind the index.
        word.compare_exchange(w, next, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// Names `me` in the slot of position `pos`, just claimed through `side`'s index word (its
    /// `named` phase), moves the pending operation to the slot, and marks the claim covered.
    #[inline]
    fn cover(self, side: Side, pos: u64, named: u32, me: Claimant, what: [&'static str; 3]) {
        let slot = self.slot(self.index(pos));
        death_point(what[0]);
        slot.state.store(state(low(self.lap(pos)) + named, me.owner()), Ordering::Relaxed);
        death_point(what[1]);
        // SAFETY: as in `claim_index`.
        unsafe { me.set_pending(&slot.state) };
        death_point(what[2]);
        // Release: the slot's name is visible to whoever sees the claim covered. `pos + 1`, so
        // that 0 (a new ring) means nothing covered yet.
        self.words(side).1.store(pos + 1, Ordering::Release);
    }

    /// If the slot at `index` holds `s`, a claim whose claimant died, end it: `to` is the state
    /// it takes, `counter` the repair count.
    #[cold]
    fn repair(self, slot: &Slot, s: u64, to: u64, counter: &AtomicU64) {
        // AcqRel: Acquire orders the dead claimant's mark before our write; Release orders ours
        // before the slot's next claimant.
        if slot.state.compare_exchange(s, to, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = self.count_done(false);
        }
    }

    /// After publishing (freeing) the slots claimed through `word`, where one of our claim CASes
    /// saw `SLEEPERS` (the module docs say why that is enough): clears the bit and wakes the other
    /// side sleeping on `event`.
    #[cold]
    fn wake_sleepers(self, word: &AtomicU64, event: &AtomicU32) {
        if !mutant("queue_no_wake") {
            // Our claim CAS (AcqRel) read the sleeper's Release CAS, so its event read
            // happens-before the bump; AcqRel here does the same for one that set the bit again
            // since. Clearing it spares later finishers the syscall.
            word.fetch_and(!SLEEPERS, Ordering::AcqRel);
            wake_all(event);
        }
    }

    /// Claims the slot at the tail for writing (covered when this returns), adding the
    /// `SLEEPERS` bit its claim CAS saw to `sleepers`; returns its position, or None if it is not free (full, last lap's message still being read, or the
    /// last claimant not yet covered).
    #[inline]
    fn claim_write(self, me: Claimant, sleepers: &mut u64) -> Option<u64> {
        let r = self.ring();
        let one_lap = self.cfg().one_lap as u32;
        loop {
            let t = r.tail.load(Ordering::Acquire);
            let pos = t & POS;
            let slot = self.slot(self.index(pos));
            let lap = low(self.lap(pos));
            let s = slot.state.load(Ordering::Acquire);
            let phase = stamp(s).wrapping_sub(lap);
            if phase == FREE {
                if !self.covered(Side::Producer, t, me) {
                    return None;
                }
                if self.claim_index(Side::Producer, t, me) {
                    self.cover(Side::Producer, pos, WRITING, me, ["put: claimed", "put: named", "put: pending"]);
                    *sleepers |= t & SLEEPERS;
                    return Some(pos);
                }
                continue;
            }
            let last_lap = phase.wrapping_add(one_lap);
            if last_lap == READING && dead(s) && !mutant("queue_no_repair") {
                // Last lap's reader died holding the slot: its message is lost; take it back.
                self.repair(slot, s, state(lap + FREE, 0), &r.dead_readers);
                continue;
            }
            if r.tail.load(Ordering::Relaxed) == t {
                return None;
            }
        }
    }

    /// Claims the published slot at the head for reading if its message fits `fit` (covered
    /// when this returns); returns the position and the message length. `Err(Some(needed))` if
    /// it does not fit, `Err(None)` if nothing is published at the head (empty, or still being
    /// written). Slots of dead writers on the way are discarded. Every claim CAS adds the
    /// `SLEEPERS` bit it saw to `sleepers`.
    #[inline]
    fn claim_read(self, me: Claimant, fit: usize, sleepers: &mut u64) -> Result<(u64, usize), Option<usize>> {
        let r = self.ring();
        let one_lap = self.cfg().one_lap as u32;
        loop {
            let h = r.head.load(Ordering::Acquire);
            let pos = h & POS;
            let slot = self.slot(self.index(pos));
            let lap = low(self.lap(pos));
            let s = slot.state.load(Ordering::Acquire);
            let phase = stamp(s).wrapping_sub(lap);
            if phase == PUBLISHED {
                let len = (owner(s) & !LEN_TAG) as usize;
                if len > fit {
                    if r.head.load(Ordering::Relaxed) == h {
                        return Err(Some(len)); // too long for `fit`: it stays
                    }
                    continue;
                }
                if !self.covered(Side::Consumer, h, me) {
                    return Err(None);
                }
                if self.claim_index(Side::Consumer, h, me) {
                    self.cover(Side::Consumer, pos, READING, me, ["get: claimed", "get: named", "get: pending"]);
                    *sleepers |= h & SLEEPERS;
                    return Ok((pos, len));
                }
                continue;
            }
            if phase == WRITING && dead(s) && !mutant("queue_no_repair") {
                // The producer died before publishing: no message; the slot is done for this lap.
                let done = state(lap.wrapping_add(one_lap) + FREE, 0);
                self.repair(slot, s, done, &r.dead_writers);
                continue;
            }
            if phase.wrapping_sub(one_lap) < PHASES {
                // Discarded (its slot is in the next lap): claim the position for nothing.
                if self.covered(Side::Consumer, h, me) && self.claim_index(Side::Consumer, h, me) {
                    death_point("get: skipped");
                    *sleepers |= h & SLEEPERS;
                }
                continue;
            }
            if r.head.load(Ordering::Relaxed) == h {
                return Err(None);
            }
        }
    }

    /// Writes message `msg` into the claimed position `pos` and publishes it.
    #[inline]
    fn publish(self, pos: u64, msg: &[u8]) {
        let index = self.index(pos);
        let slot = self.slot(index);
        let data = self.slot_data(index);
        // SAFETY: we claimed `pos` (its slot is ours until the stamp store below), and msg fits:
        // callers check msg.len() <= max_msg.
        slot.access.write(|| unsafe { data.copy_from_nonoverlapping(msg.as_ptr(), msg.len()) });
        death_point("put: written");
        // Release pairs with the consumer's Acquire state load: the bytes are visible.
        let release = if mutant("queue_relaxed_publish") { Ordering::Relaxed } else { Ordering::Release };
        let published = state(low(self.lap(pos)) + PUBLISHED, LEN_TAG | msg.len() as u32);
        slot.state.store(published, release);
        death_point("put: published");
    }

    /// Hands the message (of `len` bytes) at the claimed position `pos` to `out`, then frees the
    /// slot for the next lap.
    #[inline]
    fn consume(self, pos: u64, len: usize, out: impl FnOnce(&[u8])) {
        let index = self.index(pos);
        let slot = self.slot(index);
        let data = self.slot_data(index);
        // SAFETY: we claimed `pos`, a published slot: its `len` bytes are initialised and ours
        // until the stamp store below.
        slot.access.read(|| out(unsafe { core::slice::from_raw_parts(data, len) }));
        death_point("get: read");
        // Release pairs with the producer's Acquire load: we are done reading the bytes.
        let next = low(self.lap(pos) + self.cfg().one_lap) + FREE;
        slot.state.store(state(next, 0), Ordering::Release);
        death_point("get: freed");
    }

    // ---- non-blocking operations ------------------------------------------------------------

    /// Puts `msg` if there is room now. `Timeout` if full, `Closed`, `MsgSize` if longer than
    /// `max_msg`.
    #[inline]
    pub fn try_put(self, msg: &[u8]) -> Result<(), Error> {
        self.try_put_many(1, |_| msg).map(|_| ())
    }

    /// Puts messages `msg(0)`, `msg(1)`, ... (at most `n`) while there is room; returns how
    /// many. `Timeout` if none fit now. Each message is claimed and published on its own, so a
    /// death mid-way loses at most the one being written.
    #[inline]
    pub fn try_put_many<'m>(self, n: usize, msg: impl Fn(usize) -> &'m [u8]) -> Result<usize, Error> {
        if (0..n).any(|i| msg(i).len() > self.max_msg()) {
            return Err(Error::MsgSize { needed: self.max_msg() });
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let (r, me) = (self.ring(), Claimant::current());
        let (mut k, mut sleepers) = (0, 0);
        while k < n {
            let Some(pos) = self.claim_write(me, &mut sleepers) else { break };
            self.publish(pos, msg(k));
            k += 1;
        }
        // SAFETY: `me` is the calling thread; every slot it claimed is published.
        unsafe { me.clear_pending() };
        if sleepers != 0 {
            self.wake_sleepers(&r.tail, &r.not_empty);
        }
        if k > 0 {
            Ok(k)
        } else if n == 0 {
            Ok(0)
        } else {
            Err(Error::Timeout)
        }
    }

    /// Takes one message into `buf` if one is there now; returns its length. `Timeout` if empty,
    /// `Closed` once closed and drained, `MsgSize { needed }` if `buf` is too small (the message
    /// stays queued).
    #[inline]
    pub fn try_get(self, buf: &mut [u8]) -> Result<usize, Error> {
        let mut got = 0;
        self.try_get_many(1, buf.len(), |_, msg| {
            // SAFETY: `msg` fits `buf` (claimed with fit = buf.len()); distinct memory.
            unsafe { buf.as_mut_ptr().copy_from_nonoverlapping(msg.as_ptr(), msg.len()) };
            got = msg.len();
        })?;
        Ok(got)
    }

    /// Takes up to `n` messages that are there now, each of at most `fit` bytes, and hands each
    /// to `out(i, bytes)`; returns how many. Stops before a message longer than `fit`
    /// (`MsgSize` if it is the first).
    #[inline]
    pub fn try_get_many(self, n: usize, fit: usize, mut out: impl FnMut(usize, &[u8])) -> Result<usize, Error> {
        if n == 0 {
            return Ok(0);
        }
        let (r, me) = (self.ring(), Claimant::current());
        let (mut k, mut last, mut closed, mut sleepers) = (0, Err(None), false, 0);
        while k < n {
            last = self.claim_read(me, fit, &mut sleepers);
            if last == Err(None) && k == 0 && self.is_closed() {
                // Closed, and nothing published at the head: look once more (the Acquire load
                // of `closed` made every put completed before `close` visible, which the first
                // look may have missed), then answer `Closed` even if a slot is claimed and
                // never published (its producer stopped): close releases every waiter.
                if !mutant("queue_close_no_recheck") {
                    last = self.claim_read(me, fit, &mut sleepers);
                }
                closed = last == Err(None);
            }
            let Ok((pos, len)) = last else { break };
            self.consume(pos, len, |m| out(k, m));
            k += 1;
        }
        // SAFETY: `me` is the calling thread; every slot it claimed is freed.
        unsafe { me.clear_pending() };
        if sleepers != 0 {
            self.wake_sleepers(&r.head, &r.not_full);
        }
        if k > 0 {
            return Ok(k);
        }
        match last {
            Err(Some(needed)) => Err(Error::MsgSize { needed }),
            Err(None) if closed => Err(Error::Closed),
            _ => Err(Error::Timeout),
        }
    }

    // ---- blocking operations ----------------------------------------------------------------

    /// Puts `msg`, waiting for room until `deadline`.
    #[inline]
    pub fn put(self, msg: &[u8], deadline: Deadline) -> Result<(), Error> {
        self.put_many(1, |_| msg, deadline).map(|_| ())
    }

    /// Waits until at least one of the `n` messages fits (until `deadline`), then puts as many
    /// as fit without waiting again; returns how many.
    #[inline]
    pub fn put_many<'m>(self, n: usize, msg: impl Fn(usize) -> &'m [u8], deadline: Deadline) -> Result<usize, Error> {
        self.wait(Side::Producer, deadline, || self.try_put_many(n, &msg))
    }

    /// Takes one message into `buf`, waiting until `deadline`; returns its length.
    #[inline]
    pub fn get(self, buf: &mut [u8], deadline: Deadline) -> Result<usize, Error> {
        self.wait(Side::Consumer, deadline, || self.try_get(buf))
    }

    /// Waits until at least one message is there (until `deadline`), then takes up to `n`
    /// without waiting again (see [`try_get_many`](Self::try_get_many)).
    #[inline]
    pub fn get_many(
        self,
        n: usize,
        fit: usize,
        mut out: impl FnMut(usize, &[u8]),
        deadline: Deadline,
    ) -> Result<usize, Error> {
        self.wait(Side::Consumer, deadline, || self.try_get_many(n, fit, &mut out))
    }

    /// Retries `attempt` while it returns `Timeout` (would block): spins for the adaptive budget,
    /// then sleeps on the side's event with the SLEEPERS protocol, until `deadline`.
    #[inline]
    fn wait<R>(
        self,
        side: Side,
        deadline: Deadline,
        mut attempt: impl FnMut() -> Result<R, Error>,
    ) -> Result<R, Error> {
        match attempt() {
            Err(Error::Timeout) if !deadline.is_now() => self.wait_slow(side, deadline, &mut attempt),
            done => done,
        }
    }

    #[cold]
    fn wait_slow<R>(
        self,
        side: Side,
        deadline: Deadline,
        attempt: &mut dyn FnMut() -> Result<R, Error>,
    ) -> Result<R, Error> {
        let r = self.ring();
        let spun = adaptive_spin(&r.spin, SPIN_ROUND_MAX, || {
            if !self.looks_ready(side) {
                return None;
            }
            match attempt() {
                Err(Error::Timeout) => None,
                done => Some(done),
            }
        });
        if let Some(done) = spun {
            return done;
        }

        let (event, word) = match side {
            Side::Consumer => (&r.not_empty, &r.tail),
            Side::Producer => (&r.not_full, &r.head),
        };
        let mut backoff = Backoff::new();
        loop {
            // Read the event before looking at the ring: a wake after this read changes it.
            let seen = event.load(Ordering::Acquire);
            if !mutant("queue_no_settle") {
                self.settle_other(side);
            }
            match attempt() {
                Err(Error::Timeout) => {}
                done => return done,
            }
            match self.must_sleep(side) {
                Some(w) => {
                    // Release pairs with the AcqRel RMW that clears the bit (see module docs).
                    if w & SLEEPERS == 0
                        && word.compare_exchange(w, w | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_err()
                    {
                        continue;
                    }
                    match side {
                        Side::Consumer => futex_wait(event, seen, deadline)?,
                        Side::Producer => tick(event, seen, deadline, DEATH_TICK)?,
                    }
                }
                None if !backoff.is_completed() => backoff.snooze(),
                // The other side is mid-way through a slot: re-check in short ticks.
                None => tick(event, seen, deadline, MID_WRITE_TICK)?,
            }
        }
    }

    /// For a wait over many objects: `Ready` if a get would not block now (a message, a dead
    /// claim to step over, or closed), else armed as `get` sleeps: `SLEEPERS` set on `tail`, so
    /// the next publication wakes `not_empty` (or, while a producer is mid-way, a short tick).
    #[cfg(feature = "std")]
    pub(crate) fn arm_get(self) -> Arm<'a> {
        let r = self.ring();
        loop {
            // Read the event before looking at the ring, as `wait_slow` does.
            let seen = r.not_empty.load(Ordering::Acquire);
            self.settle_other(Side::Consumer);
            if self.looks_ready(Side::Consumer) {
                return Arm::Ready;
            }
            let Some(w) = self.must_sleep(Side::Consumer) else {
                return Arm::Sleep { word: &r.not_empty, expected: seen, tick: Some(MID_WRITE_TICK) };
            };
            // Release pairs with the AcqRel claim CAS that then sees the bit (module docs).
            if w & SLEEPERS != 0
                || r.tail.compare_exchange(w, w | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return Arm::Sleep { word: &r.not_empty, expected: seen, tick: None };
            }
        }
    }

    /// A cheap (loads only) guess that an attempt could get on now: the slot at the index is
    /// not one the side must wait for. (It reads the slot, not the other side's index: that
    /// index is the other side's to write, on every message.)
    fn looks_ready(self, side: Side) -> bool {
        let r = self.ring();
        let word = match side {
            Side::Consumer => &r.head,
            Side::Producer => &r.tail,
        };
        let pos = word.load(Ordering::Relaxed) & POS;
        let s = self.slot(self.index(pos)).state.load(Ordering::Relaxed);
        let phase = stamp(s).wrapping_sub(low(self.lap(pos)));
        let ready = match side {
            Side::Consumer => phase == PUBLISHED || dead(s) || phase.wrapping_sub(self.cfg().one_lap as u32) < PHASES,
            Side::Producer => phase == FREE || dead(s),
        };
        ready || self.is_closed()
    }

    /// While waiting: settles the other side's last claim if its claimant died before covering
    /// it (a dead writer's slot a consumer waits at, or a dead reader's slot a producer waits
    /// for, that no later claim will settle).
    #[cold]
    fn settle_other(self, side: Side) {
        let r = self.ring();
        let me = Claimant::current();
        match side {
            Side::Consumer => self.covered(Side::Producer, r.tail.load(Ordering::Acquire), me),
            Side::Producer => self.covered(Side::Consumer, r.head.load(Ordering::Acquire), me),
        };
    }

    /// If the side must sleep (nothing claimed by the other side that it waits for), the value of
    /// the index word on which to set SLEEPERS; `None` if the other side is mid-way.
    fn must_sleep(self, side: Side) -> Option<u64> {
        let r = self.ring();
        match side {
            Side::Consumer => {
                let t = r.tail.load(Ordering::Acquire);
                (t & POS == r.head.load(Ordering::Acquire) & POS).then_some(t)
            }
            Side::Producer => {
                let h = r.head.load(Ordering::Acquire);
                let t = r.tail.load(Ordering::Acquire) & POS;
                (self.distance(h & POS, t) >= self.cfg().capacity).then_some(h)
            }
        }
    }

    // ---- JoinableQueue ------------------------------------------------------------------------

    /// Marks one message as processed (Python's `task_done`). `State` if called more often than
    /// messages were put.
    pub fn task_done(self) -> Result<(), Error> {
        self.count_done(true)
    }

    /// Adds one to `done` (`checked`: only while below the number of puts) and wakes joiners.
    fn count_done(self, checked: bool) -> Result<(), Error> {
        let r = self.ring();
        let mut d = r.done.load(Ordering::Relaxed);
        loop {
            // Counts modulo `span`, as positions are.
            let puts = self.count(r.tail.load(Ordering::Acquire) & POS);
            let finished = d & !SLEEPERS;
            let next = (finished + 1) % self.span();
            if checked && finished == puts {
                return Err(Error::State);
            }
            // AcqRel: pairs with a joiner's Release CAS that set SLEEPERS; drops the bit.
            match r.done.compare_exchange_weak(d, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if d & SLEEPERS != 0 {
                        wake_all(&r.joined);
                    }
                    return Ok(());
                }
                Err(cur) => d = cur,
            }
        }
    }

    /// Waits until every message put so far has been marked done (Python's `join`).
    pub fn join(self, deadline: Deadline) -> Result<(), Error> {
        let r = self.ring();
        loop {
            let seen = r.joined.load(Ordering::Acquire);
            let d = r.done.load(Ordering::Acquire);
            let puts = self.count(r.tail.load(Ordering::Acquire) & POS);
            if d & !SLEEPERS == puts {
                return Ok(());
            }
            if deadline.is_now() {
                return Err(Error::Timeout);
            }
            if d & SLEEPERS == 0
                && r.done.compare_exchange(d, d | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_err()
            {
                continue;
            }
            futex_wait(&r.joined, seen, deadline)?;
        }
    }
}

#[derive(Copy, Clone)]
enum Side {
    Producer,
    Consumer,
}

/// Sleeps on `event` (seen as `seen`) for at most `tick`; a tick that ends before `deadline`
/// is not an error.
fn tick(event: &AtomicU32, seen: u32, deadline: Deadline, tick: core::time::Duration) -> Result<(), Error> {
    match futex_wait(event, seen, deadline.earliest(Deadline::after(tick))) {
        Err(Error::Timeout) if deadline.remaining().is_some() => Ok(()),
        done => done,
    }
}

/// Bumps `event` and wakes everyone sleeping on it (in any process).
fn wake_all(event: &AtomicU32) {
    // Release pairs with the waiter's Acquire read of the event before it re-checks the ring.
    event.fetch_add(1, Ordering::Release);
    futex_wake(event, i32::MAX as u32);
}
