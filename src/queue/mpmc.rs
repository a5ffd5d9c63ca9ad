//! The bounded MPMC message ring behind `mpk_queue`, [`ByteQueue`](crate::ByteQueue) and
//! [`Queue`](crate::Queue): any number of producer and consumer threads in any number of
//! processes, messages of 0..=`max_msg` bytes, in place in any (shared) memory.
//!
//! # Slots and positions (Vyukov / crossbeam `ArrayQueue`)
//! A position is `lap * one_lap + index` (`one_lap` = the power of two above `capacity`), so any
//! capacity works without division. Slot `index` carries a 64-bit state word: the message length
//! in the high half and a `stamp` in the low half. The stamp is the low 32 bits of the position
//! *relative to the slot*: `lap(pos) = pos - index = pos & !(one_lap - 1)`, the position of the
//! lap's first slot (stamps are only ever compared for equality with values one lap apart, so 32
//! bits cannot be confused while the 64-bit `tail`/`head` CASes decide every claim). One store
//! publishes stamp and length.
//!
//! | stamp (mod 2^32)      | meaning for position `pos` at this slot                           |
//! |-----------------------|-------------------------------------------------------------------|
//! | `lap(pos)`            | free: the producer that claims `pos` may write it                 |
//! | `lap(pos) + 1`        | published: the consumer that claims `pos` may read it             |
//! | `lap(pos) + one_lap`  | read and released: free for position `pos + one_lap`              |
//!
//! Storing the lap rather than the position (Vyukov's `seq[i] = i`) makes an all-zero slot a free
//! slot of lap 0, so a ring over fresh zeroed pages (an owned region) needs no pass over its
//! slots: [`QueueRef::init_zeroed`] writes the control block only, and a slot's page is touched
//! when a message first reaches it. A 2^30-slot ring costs nothing until used.
//!
//! Producers claim positions by CAS on `tail`, consumers by CAS on `head`; a batch claims several
//! slots of one lap at once. Only published slots are claimed by consumers and only free slots by
//! producers, so nobody ever waits inside a claimed range. Stamps are stored with Release after
//! the slot's bytes are written (or read) and loaded with Acquire before they are read (or
//! overwritten): each stamp store pairs with the next owner's stamp load.
//!
//! # Sleeping without a syscall on the fast path
//! Bit 63 of `tail` says "consumers may sleep on `not_empty`"; bit 63 of `head` says "producers
//! may sleep on `not_full`"; bit 63 of `done` says "joiners may sleep on `joined`". A waiter
//! reads the event word, then sets the bit with a CAS on the index word *at the value that proves
//! it must wait* (tail == head: nothing claimed). The other side's claim CAS therefore sees the
//! bit, clears it (its new value has no bit) and, after publishing, bumps the event and wakes
//! everyone on it. Both CASes are on one word, so their order is total: either the claim comes
//! first (the waiter's CAS fails and it retries) or it sees the bit. The waiter's event read
//! happens-before the bump (the claim CAS acquires the waiter's release CAS), so the futex either
//! sees a changed word or the wake. Put and get make no system call unless someone sleeps.
//!
//! Before sleeping a waiter spins (loads only) for a budget kept in the ring: grown when spinning
//! succeeded, halved when it had to sleep anyway.
//!
//! Peer death: a producer killed between claiming and publishing leaves its slot unpublished;
//! consumers then wait at that slot (with a timeout they return `Timeout`; they never spin
//! unboundedly: they sleep in 1 ms ticks). [`close`](QueueRef::close) releases them: once closed,
//! a get that finds nothing published at the head answers `Closed` (the unpublished slot counts
//! as not there, and so do messages published behind it: FIFO order keeps them unreachable). A
//! put still in progress when the queue is closed may thus land after a getter was told
//! `Closed`; a later get may still take it.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::error::Error;
use crate::lock::backoff::{ADAPTIVE_INITIAL, Backoff, adaptive_spin};
use crate::sync::{AccessCell, AtomicU32, AtomicU64, Deadline, Ordering, futex_wait, futex_wake, mutant, spin_hint};

/// The "someone may sleep" bit of `tail`, `head` and `done`.
const SLEEPERS: u64 = 1 << 63;
const MAGIC: u32 = u32::from_le_bytes(*b"MPKQ");
/// Layout version of the ring; part of the shared ABI.
/// 2: stamps hold the lap (`pos - index`), not the position, so a zeroed slot is free.
const VERSION: u32 = 2;
/// Largest capacity (messages): `one_lap` must fit the 32-bit stamps.
pub const MAX_CAPACITY: usize = 1 << 30;
/// Largest `max_msg` (bytes).
pub const MAX_MSG: usize = 1 << 30;

/// Most hints between two looks while spinning.
const SPIN_ROUND_MAX: u32 = 64;
/// While a slot is claimed but not yet published, waiters re-check at least this often.
const MID_WRITE_TICK: core::time::Duration = core::time::Duration::from_millis(1);

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
    /// Next position to claim for reading (`SLEEPERS`: producers may sleep).
    head: AtomicU64,
    _p2: [u8; 56],
    /// Futex words, bumped to wake consumers / producers.
    not_empty: AtomicU32,
    not_full: AtomicU32,
    /// Non-zero once closed.
    closed: AtomicU32,
    /// Adaptive spin budget before sleeping.
    spin: AtomicU32,
    _p3: [u8; 48],
    /// `task_done` calls so far (`SLEEPERS`: joiners may sleep).
    done: AtomicU64,
    /// Futex word, bumped to wake joiners.
    joined: AtomicU32,
    _p4: [u8; 52],
}

#[repr(C)]
struct Slot {
    /// Message length (high 32 bits) and stamp (low 32 bits).
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
    assert!(size_of::<Ring>() == 320);
    assert!(SLOTS_OFFSET == 320 && SLOT_HEADER == 8);
    assert!(core::mem::offset_of!(Ring, tail) == 64 && core::mem::offset_of!(Ring, head) == 128);
    assert!(core::mem::offset_of!(Ring, not_empty) == 192 && core::mem::offset_of!(Ring, done) == 256);
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
        let one_lap = (capacity as u64 + 1).next_power_of_two();
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
            head: AtomicU64::new(0),
            _p2: [0; 56],
            not_empty: AtomicU32::new(0),
            not_full: AtomicU32::new(0),
            closed: AtomicU32::new(0),
            spin: AtomicU32::new(ADAPTIVE_INITIAL),
            _p3: [0; 48],
            done: AtomicU64::new(0),
            joined: AtomicU32::new(0),
            _p4: [0; 52],
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
        let one_lap = (capacity + 1).next_power_of_two();
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
        let h1 = r.head.load(Ordering::Acquire) & !SLEEPERS;
        let t = r.tail.load(Ordering::Acquire) & !SLEEPERS;
        let h2 = r.head.load(Ordering::Acquire) & !SLEEPERS;
        let indices_ok = [h1, t, h2].iter().all(|&p| self.index(p) < capacity)
            && self.count(t) >= self.count(h1)
            && self.count(t).saturating_sub(self.count(h2)) <= capacity;
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

    /// The position `k` slots after `pos`, where `index(pos) + k <= capacity`.
    #[inline]
    fn advance(&self, pos: u64, k: u64) -> u64 {
        let cfg = self.cfg();
        let i = self.index(pos) + k;
        debug_assert!(i <= cfg.capacity);
        if i < cfg.capacity { pos + k } else { (pos & !(cfg.one_lap - 1)) + cfg.one_lap }
    }

    /// How many messages were ever claimed before position `pos`.
    #[inline]
    fn count(&self, pos: u64) -> u64 {
        (pos >> self.cfg().lap_shift) * self.cfg().capacity + self.index(pos)
    }

    /// Messages in the ring (claimed for writing, not yet claimed for reading): Python's `qsize`.
    pub fn len(self) -> usize {
        let r = self.ring();
        loop {
            let t = r.tail.load(Ordering::Acquire) & !SLEEPERS;
            let h = r.head.load(Ordering::Acquire) & !SLEEPERS;
            if r.tail.load(Ordering::Acquire) & !SLEEPERS == t {
                return self.count(t).saturating_sub(self.count(h)).min(self.cfg().capacity) as usize;
            }
        }
    }

    /// True if [`len`](Self::len) is 0.
    pub fn is_empty(self) -> bool {
        self.len() == 0
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

    /// Claims up to `max` free slots of one lap for writing; returns the first position and
    /// count, or None if the slot at the tail is not free (full, or still being read).
    #[inline]
    fn claim_write(self, max: usize) -> Option<(u64, u64)> {
        let r = self.ring();
        let cap = self.cfg().capacity;
        let mut t = r.tail.load(Ordering::Relaxed);
        loop {
            let pos = t & !SLEEPERS;
            let room = (cap - self.index(pos)).min(max as u64);
            // Every slot of a batch is in `pos`'s lap: one stamp means free for all of them.
            let free = low(self.lap(pos));
            let mut k = 0;
            while k < room && stamp(self.slot(self.index(pos) + k).state.load(Ordering::Acquire)) == free {
                k += 1;
            }
            if k == 0 {
                let now = r.tail.load(Ordering::Relaxed);
                if now != t {
                    t = now; // another producer moved on: try its position
                    continue;
                }
                // Our position is current but its slot is not free yet: last lap's message is
                // still there (or a consumer is still reading it).
                return None;
            }
            // AcqRel: Acquire pairs with a sleeping consumer's Release CAS that set SLEEPERS (its
            // read of `not_empty` happens-before our bump); the new value drops the bit.
            match r.tail.compare_exchange_weak(t, self.advance(pos, k), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    if t & SLEEPERS != 0 {
                        return Some((pos | SLEEPERS, k)); // the caller wakes after publishing
                    }
                    return Some((pos, k));
                }
                Err(cur) => {
                    t = cur;
                    spin_hint();
                }
            }
        }
    }

    /// Claims up to `max` published slots of one lap whose messages fit `fits`; returns the
    /// first position and count. `Err(Some(needed))` if the first message does not fit,
    /// `Err(None)` if nothing is published at the head.
    #[inline]
    fn claim_read(self, max: usize, fit: usize) -> Result<(u64, u64), Option<usize>> {
        let r = self.ring();
        let cap = self.cfg().capacity;
        let mut h = r.head.load(Ordering::Relaxed);
        loop {
            let pos = h & !SLEEPERS;
            let room = (cap - self.index(pos)).min(max as u64);
            let published = low(self.lap(pos) + 1);
            let mut k = 0;
            let mut too_big = None;
            while k < room {
                let state = self.slot(self.index(pos) + k).state.load(Ordering::Acquire);
                if stamp(state) != published {
                    break;
                }
                let len = (state >> 32) as usize;
                if len > fit {
                    too_big = Some(len);
                    break;
                }
                k += 1;
            }
            if k == 0 {
                let now = r.head.load(Ordering::Relaxed);
                if now & !SLEEPERS != pos {
                    h = now; // another consumer moved on: try its position
                    continue;
                }
                // Our position is current (head unchanged): a message too long for `fit` (it
                // stays), or nothing published there: empty, or a producer is still writing it.
                return Err(too_big);
            }
            // AcqRel: as in `claim_write`, for sleeping producers and `not_full`.
            match r.head.compare_exchange_weak(h, self.advance(pos, k), Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Ok((pos | (h & SLEEPERS), k)),
                Err(cur) => {
                    h = cur;
                    spin_hint();
                }
            }
        }
    }

    /// Writes message `msg` into the claimed position `pos` and publishes it.
    #[inline]
    fn publish(self, pos: u64, msg: &[u8]) {
        let index = self.index(pos);
        let slot = self.slot(index);
        let data = self.slot_data(index);
        // SAFETY: we claimed `pos` (its slot is free and ours until the stamp store below), and
        // msg fits: callers check msg.len() <= max_msg.
        slot.access.write(|| unsafe { data.copy_from_nonoverlapping(msg.as_ptr(), msg.len()) });
        // Release pairs with the consumer's Acquire state load: the bytes are visible.
        let release = if mutant("queue_relaxed_publish") { Ordering::Relaxed } else { Ordering::Release };
        slot.state.store(((msg.len() as u64) << 32) | u64::from(low(self.lap(pos) + 1)), release);
    }

    /// Hands the message at the claimed position `pos` to `out`, then frees the slot.
    #[inline]
    fn consume(self, pos: u64, out: impl FnOnce(&[u8])) {
        let index = self.index(pos);
        let slot = self.slot(index);
        let len = (slot.state.load(Ordering::Relaxed) >> 32) as usize;
        let data = self.slot_data(index);
        // SAFETY: we claimed `pos`, a published slot: its `len` bytes are initialised and ours
        // until the stamp store below.
        slot.access.read(|| out(unsafe { core::slice::from_raw_parts(data, len) }));
        // Release pairs with the producer's Acquire state load: we are done reading the bytes.
        slot.state.store(u64::from(low(self.lap(pos) + self.cfg().one_lap)), Ordering::Release);
    }

    // ---- non-blocking operations ------------------------------------------------------------

    /// Puts `msg` if there is room now. `Timeout` if full, `Closed`, `MsgSize` if longer than
    /// `max_msg`.
    #[inline]
    pub fn try_put(self, msg: &[u8]) -> Result<(), Error> {
        self.try_put_many(1, |_| msg).map(|_| ())
    }

    /// Puts messages `msg(0)`, `msg(1)`, ... (at most `n`) while there is room, claiming them
    /// with one CAS; returns how many. `Timeout` if none fit now.
    #[inline]
    pub fn try_put_many<'m>(self, n: usize, msg: impl Fn(usize) -> &'m [u8]) -> Result<usize, Error> {
        if (0..n).any(|i| msg(i).len() > self.max_msg()) {
            return Err(Error::MsgSize { needed: self.max_msg() });
        }
        if self.is_closed() {
            return Err(Error::Closed);
        }
        if n == 0 {
            return Ok(0);
        }
        match self.claim_write(n) {
            Some((pos, k)) => {
                let first = pos & !SLEEPERS;
                for i in 0..k {
                    self.publish(first + i, msg(i as usize));
                }
                if pos & SLEEPERS != 0 && !mutant("queue_no_wake") {
                    wake_all(&self.ring().not_empty);
                }
                Ok(k as usize)
            }
            None => Err(Error::Timeout),
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

    /// Takes up to `n` messages that are there now, each of at most `fit` bytes, claiming them
    /// with one CAS, and hands each to `out(i, bytes)`; returns how many. Stops before a message
    /// longer than `fit` (`MsgSize` if it is the first).
    #[inline]
    pub fn try_get_many(self, n: usize, fit: usize, mut out: impl FnMut(usize, &[u8])) -> Result<usize, Error> {
        if n == 0 {
            return Ok(0);
        }
        let mut claimed = self.claim_read(n, fit);
        if claimed == Err(None) && self.is_closed() {
            // Closed, and nothing published at the head: look once more (the Acquire load of
            // `closed` made every put completed before `close` visible, which the first look may
            // have missed), then answer `Closed` even if a slot was claimed and never published
            // (its producer died or stopped): close releases every waiter.
            if !mutant("queue_close_no_recheck") {
                claimed = self.claim_read(n, fit);
            }
            if claimed == Err(None) {
                return Err(Error::Closed);
            }
        }
        match claimed {
            Ok((pos, k)) => {
                let first = pos & !SLEEPERS;
                for i in 0..k {
                    self.consume(first + i, |m| out(i as usize, m));
                }
                if pos & SLEEPERS != 0 && !mutant("queue_no_wake") {
                    wake_all(&self.ring().not_full);
                }
                Ok(k as usize)
            }
            Err(Some(needed)) => Err(Error::MsgSize { needed }),
            Err(None) => Err(Error::Timeout),
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
            match attempt() {
                Err(Error::Timeout) => {}
                done => return done,
            }
            match self.must_sleep(side) {
                Some(w) => {
                    // Release pairs with the other side's AcqRel claim CAS (see module docs).
                    if w & SLEEPERS == 0
                        && word.compare_exchange(w, w | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_err()
                    {
                        continue;
                    }
                    futex_wait(event, seen, deadline)?;
                }
                None if !backoff.is_completed() => backoff.snooze(),
                // The other side is mid-way through a slot: re-check in short ticks.
                None => match futex_wait(event, seen, deadline.earliest(Deadline::after(MID_WRITE_TICK))) {
                    Err(Error::Timeout) if deadline.remaining().is_some() => {}
                    Err(e) => return Err(e),
                    Ok(()) => {}
                },
            }
        }
    }

    /// A cheap (loads only) guess that an attempt could succeed now.
    fn looks_ready(self, side: Side) -> bool {
        let r = self.ring();
        match side {
            Side::Consumer => {
                let pos = r.head.load(Ordering::Relaxed) & !SLEEPERS;
                stamp(self.slot(self.index(pos)).state.load(Ordering::Relaxed)) == low(self.lap(pos) + 1)
                    || self.is_closed()
            }
            Side::Producer => {
                let pos = r.tail.load(Ordering::Relaxed) & !SLEEPERS;
                stamp(self.slot(self.index(pos)).state.load(Ordering::Relaxed)) == low(self.lap(pos))
                    || self.is_closed()
            }
        }
    }

    /// If the side must sleep (nothing claimed by the other side that it waits for), the value of
    /// the index word on which to set SLEEPERS; `None` if the other side is mid-way.
    fn must_sleep(self, side: Side) -> Option<u64> {
        let r = self.ring();
        match side {
            Side::Consumer => {
                let t = r.tail.load(Ordering::Acquire);
                (t & !SLEEPERS == r.head.load(Ordering::Acquire) & !SLEEPERS).then_some(t)
            }
            Side::Producer => {
                let h = r.head.load(Ordering::Acquire);
                let t = r.tail.load(Ordering::Acquire) & !SLEEPERS;
                ((h & !SLEEPERS).wrapping_add(self.cfg().one_lap) == t).then_some(h)
            }
        }
    }

    // ---- JoinableQueue ------------------------------------------------------------------------

    /// Marks one message as processed (Python's `task_done`). `State` if called more often than
    /// messages were put.
    pub fn task_done(self) -> Result<(), Error> {
        let r = self.ring();
        let mut d = r.done.load(Ordering::Relaxed);
        loop {
            let puts = self.count(r.tail.load(Ordering::Acquire) & !SLEEPERS);
            let next = (d & !SLEEPERS) + 1;
            if next > puts {
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
            let puts = self.count(r.tail.load(Ordering::Acquire) & !SLEEPERS);
            if d & !SLEEPERS >= puts {
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

/// Bumps `event` and wakes everyone sleeping on it (in any process).
fn wake_all(event: &AtomicU32) {
    // Release pairs with the waiter's Acquire read of the event before it re-checks the ring.
    event.fetch_add(1, Ordering::Release);
    futex_wake(event, i32::MAX as u32);
}
