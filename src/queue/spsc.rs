//! The single-producer single-consumer byte ring under each direction of a pipe, usable in place
//! over any (shared) memory without `std`: one writer and one reader, in any processes.
//!
//! `tail` counts bytes written, `head` bytes read; both only grow, and every write and read is a
//! multiple of 8 bytes, so positions stay 8-aligned and an 8-byte frame header never wraps.
//! The writer publishes `tail` and the reader `head` with a Release CAS that pairs with the other
//! side's Acquire load: the writer's bytes are visible before the reader sees the new tail, and
//! the reader is done with bytes before the writer sees them freed.
//!
//! Sleeping follows the queue's protocol (see `queue::mpmc`): bit 63 of `tail` says "the reader
//! may sleep on `readable`", bit 63 of `head` says "the writer may sleep on `writable`". A waiter
//! reads the event word, then sets the bit with a CAS at the value that proves it must wait; the
//! other side's publishing CAS clears it and wakes. No system call unless someone sleeps.
//!
//! Each end keeps a cached copy of the other side's position (a hint: stale means "less
//! available", and is refreshed before giving up); its own position it always reads from the
//! ring, so handles copied by `fork` cannot disagree with it.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::time::Duration;

use crate::error::Error;
use crate::lock::backoff::{ADAPTIVE_INITIAL, Backoff, adaptive_spin};
use crate::sync::{AccessCell, AtomicU32, AtomicU64, Deadline, Ordering, futex_wait, futex_wake, mutant};

const SLEEPERS: u64 = 1 << 63;
const MAGIC: u32 = u32::from_le_bytes(*b"MPKS");
/// Smallest data capacity in bytes.
pub const MIN_CAPACITY: usize = 64;
/// Largest data capacity in bytes.
pub const MAX_CAPACITY: usize = 1 << 40;
/// Unit of every write and read, and the frame header size.
pub const UNIT: usize = 8;

/// Most hints between two looks while spinning.
const SPIN_ROUND_MAX: u32 = 4;

#[repr(C)]
pub(crate) struct ByteRing {
    magic: u32,
    _r: u32,
    /// Data bytes, a power of two.
    capacity: u64,
    _p0: [u8; 48],
    /// Bytes written (`SLEEPERS`: the reader may sleep on `readable`).
    tail: AtomicU64,
    _p1: [u8; 56],
    /// Bytes read (`SLEEPERS`: the writer may sleep on `writable`).
    head: AtomicU64,
    _p2: [u8; 56],
    readable: AtomicU32,
    writable: AtomicU32,
    /// Adaptive spin budget before sleeping.
    spin: AtomicU32,
    _p3: [u8; 52],
}

/// Where the data starts.
const DATA_OFFSET: usize = size_of::<ByteRing>().next_multiple_of(64);

#[cfg(not(loom))]
const _: () = assert!(size_of::<ByteRing>() == 256 && DATA_OFFSET == 256);

/// A ring in place over caller memory. Copyable; borrows the memory for `'a`.
#[derive(Copy, Clone, Debug)]
pub struct RingRef<'a> {
    base: NonNull<ByteRing>,
    _mem: PhantomData<&'a ByteRing>,
}

// SAFETY: shared fields are atomics (or read-only after init); data bytes are touched only by the
// writer (free bytes) or the reader (published bytes), ordered by the tail/head protocol.
unsafe impl Send for RingRef<'_> {}
// SAFETY: as above.
unsafe impl Sync for RingRef<'_> {}

/// What a waiting end waits for.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Want {
    /// The reader: at least one unit of data.
    Data,
    /// The writer: at least one unit of free space.
    Space,
}

impl<'a> RingRef<'a> {
    /// The capacity `init` uses for a request of `bytes`, or `None` if out of range.
    pub fn capacity_for(bytes: usize) -> Option<usize> {
        if bytes == 0 || bytes > MAX_CAPACITY {
            return None;
        }
        Some(bytes.max(MIN_CAPACITY).next_power_of_two())
    }

    /// Bytes of memory a ring of `capacity` (from `capacity_for`) occupies.
    pub fn size_for(capacity: usize) -> usize {
        DATA_OFFSET + capacity + Self::cells_len(capacity)
    }

    /// Loom's access cells, one per unit, after the data (zero bytes outside loom).
    fn cells_len(capacity: usize) -> usize {
        capacity / UNIT * size_of::<AccessCell>()
    }

    /// Builds an empty ring of `capacity` data bytes in `mem`.
    ///
    /// # Safety
    /// - `mem` is 8-aligned, valid for `size_for(capacity)` bytes for `'a`, used by nothing else
    ///   during the call; `capacity` came from `capacity_for`.
    pub unsafe fn init(mem: NonNull<u8>, capacity: usize) -> RingRef<'a> {
        debug_assert!(capacity.is_power_of_two() && capacity >= MIN_CAPACITY);
        let ring = ByteRing {
            magic: MAGIC,
            _r: 0,
            capacity: capacity as u64,
            _p0: [0; 48],
            tail: AtomicU64::new(0),
            _p1: [0; 56],
            head: AtomicU64::new(0),
            _p2: [0; 56],
            readable: AtomicU32::new(0),
            writable: AtomicU32::new(0),
            spin: AtomicU32::new(ADAPTIVE_INITIAL),
            _p3: [0; 52],
        };
        // SAFETY: exclusive, aligned, large enough (caller duty).
        unsafe { mem.cast::<ByteRing>().write(ring) };
        let r = RingRef { base: mem.cast(), _mem: PhantomData };
        for unit in 0..Self::cells_len(capacity) / size_of::<AccessCell>().max(1) {
            // SAFETY: the cells lie after the data, inside `size_for(capacity)` bytes.
            unsafe { r.cell_ptr(unit).write(AccessCell::new()) };
        }
        r
    }

    /// Attaches to a ring built by `init` in `mem`; `BadObject` if there is none.
    ///
    /// # Safety
    /// - `mem` is readable and, if it holds a ring, stays mapped for `'a`.
    pub unsafe fn from_raw(mem: NonNull<u8>) -> Result<RingRef<'a>, Error> {
        // SAFETY: readable (caller duty); `magic` is never rewritten after init.
        if unsafe { mem.cast::<u32>().read() } != MAGIC {
            return Err(Error::BadObject);
        }
        Ok(RingRef { base: mem.cast(), _mem: PhantomData })
    }

    #[inline]
    fn ring(&self) -> &'a ByteRing {
        // SAFETY: `base` holds an initialised ring for 'a (constructor contracts).
        unsafe { self.base.as_ref() }
    }

    #[inline]
    fn capacity(&self) -> u64 {
        self.ring().capacity
    }

    /// Data capacity in bytes.
    pub fn capacity_bytes(&self) -> usize {
        self.ring().capacity as usize
    }

    #[inline]
    fn data(&self) -> *mut u8 {
        // SAFETY: the data follows the control block inside the ring's memory.
        unsafe { self.base.cast::<u8>().add(DATA_OFFSET).as_ptr() }
    }

    fn cell_ptr(&self, unit: usize) -> *mut AccessCell {
        let offset = DATA_OFFSET + self.capacity() as usize + unit * size_of::<AccessCell>();
        // SAFETY: within `size_for(capacity)` bytes (units < capacity / UNIT).
        unsafe { self.base.cast::<u8>().add(offset).cast::<AccessCell>().as_ptr() }
    }

    /// Tells loom about an access to `len` bytes at ring position `pos` (a no-op outside loom).
    #[inline]
    fn mark(&self, pos: u64, len: usize, write: bool) {
        if size_of::<AccessCell>() == 0 {
            return;
        }
        for u in 0..len.div_ceil(UNIT) {
            let unit = ((pos as usize + u * UNIT) & (self.capacity() as usize - 1)) / UNIT;
            // SAFETY: initialised by `init`, lives as long as the ring.
            let cell = unsafe { &*self.cell_ptr(unit) };
            if write { cell.write(|| ()) } else { cell.read(|| ()) }
        }
    }

    /// Copies `src` into the ring at position `pos` (wrapping).
    #[inline]
    fn copy_in(&self, pos: u64, src: &[u8]) {
        self.mark(pos, src.len(), true);
        let cap = self.capacity() as usize;
        let at = pos as usize & (cap - 1);
        let first = src.len().min(cap - at);
        let data = self.data();
        // SAFETY: [at, at+first) lies in the data area; the writer owns free bytes.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), data.wrapping_add(at), first) };
        if first < src.len() {
            // SAFETY: [0, rest) lies in the data area (rest <= at); `src` has `rest` more bytes.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr().wrapping_add(first), data, src.len() - first) };
        }
    }

    /// Copies bytes at ring position `pos` (wrapping) into `dst`.
    #[inline]
    fn copy_out(&self, pos: u64, dst: &mut [u8]) {
        self.mark(pos, dst.len(), false);
        let cap = self.capacity() as usize;
        let at = pos as usize & (cap - 1);
        let first = dst.len().min(cap - at);
        let data = self.data();
        // SAFETY: [at, at+first) lies in the data area; the reader owns published bytes.
        unsafe { core::ptr::copy_nonoverlapping(data.wrapping_add(at), dst.as_mut_ptr(), first) };
        if first < dst.len() {
            // SAFETY: [0, rest) lies in the data area; `dst` has room for `rest` more bytes.
            unsafe { core::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().wrapping_add(first), dst.len() - first) };
        }
    }

    /// The 8-byte unit at position `pos` (8-aligned: a unit never wraps).
    fn unit_ptr(&self, pos: u64) -> *mut u64 {
        debug_assert!(pos.is_multiple_of(UNIT as u64));
        self.data().wrapping_add(pos as usize & (self.capacity() as usize - 1)).cast()
    }

    /// Moves `word` (tail or head) forward by `n`, dropping SLEEPERS; wakes `event` if it was set.
    #[inline]
    fn publish(&self, word: &AtomicU64, n: u64, event: &AtomicU32) {
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            // Release pairs with the other side's Acquire load of this word; AcqRel also acquires
            // a waiter's Release CAS that set SLEEPERS (its event read happens-before our bump).
            let order = if mutant("spsc_relaxed_publish") { Ordering::Relaxed } else { Ordering::AcqRel };
            match word.compare_exchange_weak(cur, (cur & !SLEEPERS) + n, order, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if cur & SLEEPERS != 0 && !mutant("spsc_no_wake") {
            // Release pairs with the waiter's Acquire event read.
            event.fetch_add(1, Ordering::Release);
            futex_wake(event, 1);
        }
    }

    // ---- the writer's side ------------------------------------------------------------------

    /// Free bytes (a multiple of 8), refreshing `head_hint` from the ring if it says fewer
    /// than `want`.
    #[inline]
    pub fn free(&self, head_hint: &mut u64, want: usize) -> usize {
        let t = self.ring().tail.load(Ordering::Relaxed) & !SLEEPERS;
        let mut free = self.capacity() - (t - *head_hint);
        if free < want as u64 {
            // Acquire pairs with the reader's publish: it is done with the bytes it freed.
            *head_hint = self.ring().head.load(Ordering::Acquire) & !SLEEPERS;
            free = self.capacity() - (t - *head_hint);
        }
        free as usize
    }

    /// Writes a frame and publishes it in one step: the 8-byte `header` (if any), then
    /// `payload`, padded to 8 bytes. The whole must fit `free()`.
    #[inline]
    pub fn write_frame(&self, header: Option<u64>, payload: &[u8]) {
        let t = self.ring().tail.load(Ordering::Relaxed) & !SLEEPERS;
        let mut at = t;
        if let Some(h) = header {
            self.mark(at, UNIT, true);
            // SAFETY: the unit at `at` is free and ours (fits `free()`, caller duty); 8-aligned.
            unsafe { self.unit_ptr(at).write(h) };
            at += UNIT as u64;
        }
        self.copy_in(at, payload);
        let end = at + payload.len().next_multiple_of(UNIT) as u64;
        self.publish(&self.ring().tail, end - t, &self.ring().readable);
    }

    // ---- the reader's side ------------------------------------------------------------------

    /// Readable bytes (a multiple of 8), refreshing `tail_hint` from the ring if it says fewer
    /// than `want`.
    #[inline]
    pub fn available(&self, tail_hint: &mut u64, want: usize) -> usize {
        let h = self.ring().head.load(Ordering::Relaxed) & !SLEEPERS;
        if *tail_hint - h < want as u64 {
            // Acquire pairs with the writer's publish: the bytes below the new tail are written.
            *tail_hint = self.ring().tail.load(Ordering::Acquire) & !SLEEPERS;
        }
        (*tail_hint - h) as usize
    }

    /// The 8-byte unit `offset` bytes (a multiple of 8) past the next unread byte, e.g. a frame
    /// header, without consuming anything. `offset + 8` bytes must be `available()`.
    #[inline]
    pub fn peek_unit(&self, offset: usize) -> u64 {
        debug_assert!(offset.is_multiple_of(UNIT) && offset < self.capacity() as usize);
        let at = (self.ring().head.load(Ordering::Relaxed) & !SLEEPERS) + offset as u64;
        self.mark(at, UNIT, false);
        // SAFETY: the unit at `at` is published and ours to read (caller duty); 8-aligned.
        unsafe { self.unit_ptr(at).read() }
    }

    /// Skips `skip` bytes (a multiple of 8), copies the next `dst.len()` bytes out, and consumes
    /// all that padded to 8 bytes, in one step. All of it must be `available()`.
    #[inline]
    pub fn read_frame(&self, skip: usize, dst: &mut [u8]) {
        debug_assert!(skip.is_multiple_of(UNIT));
        let h = self.ring().head.load(Ordering::Relaxed) & !SLEEPERS;
        self.mark(h, skip, false);
        self.copy_out(h + skip as u64, dst);
        let consume = skip + dst.len().next_multiple_of(UNIT);
        self.publish(&self.ring().head, consume as u64, &self.ring().writable);
    }

    /// Wakes whoever sleeps on either side (used when an end closes, so that peers re-check).
    pub fn wake_everyone(&self) {
        for event in [&self.ring().readable, &self.ring().writable] {
            event.fetch_add(1, Ordering::Release);
            futex_wake(event, i32::MAX as u32);
        }
    }

    // ---- waiting ----------------------------------------------------------------------------

    /// For a wait over many objects: `None` if at least `UNIT` bytes of data are there, else
    /// the reader's sleep armed as in [`wait`](Self::wait) (`SLEEPERS` set on `tail`): the word
    /// and value to sleep on.
    #[cfg(feature = "std")]
    pub(crate) fn arm_data(&self) -> Option<(&'a AtomicU32, u32)> {
        let r = self.ring();
        loop {
            let seen = r.readable.load(Ordering::Acquire);
            let w = r.tail.load(Ordering::Acquire);
            if (w & !SLEEPERS) - (r.head.load(Ordering::Relaxed) & !SLEEPERS) >= UNIT as u64 {
                return None;
            }
            // Release pairs with the writer's AcqRel publish, which then sees the bit.
            if w & SLEEPERS != 0
                || r.tail.compare_exchange(w, w | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_ok()
            {
                return Some((&r.readable, seen));
            }
        }
    }

    /// Waits until at least `min` bytes of `want` are there (`min` <= capacity): spins first
    /// (if `spin`), then sleeps with the SLEEPERS protocol. It asks `alive()` before it sleeps
    /// and, while asleep, at least every `tick` (if given); once that says no, returns `Closed`.
    /// `Timeout` after `deadline`; with `Deadline::NOW` it asks `alive()` once instead of waiting,
    /// so that end-of-file is an answer even then.
    pub fn wait(
        &self,
        want: Want,
        min: usize,
        deadline: Deadline,
        spin: bool,
        tick: Option<Duration>,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<(), Error> {
        let r = self.ring();
        let (word, other, event) = match want {
            Want::Data => (&r.tail, &r.head, &r.readable),
            Want::Space => (&r.head, &r.tail, &r.writable),
        };
        debug_assert!(min > 0 && min as u64 <= self.capacity());
        // Bytes of `want` there are when `word` (the other side's position) is `w`.
        let amount = |w: u64| {
            let o = other.load(Ordering::Relaxed) & !SLEEPERS;
            match want {
                Want::Data => w - o,
                Want::Space => self.capacity() - (o - w),
            }
        };
        let ready = || amount(word.load(Ordering::Acquire) & !SLEEPERS) >= min as u64;
        if ready() {
            return Ok(());
        }
        if deadline.is_now() {
            // Data sent before the other end went away is still data: look again after `alive`.
            return if alive() {
                Err(Error::Timeout)
            } else if ready() && !mutant("spsc_eof_before_data") {
                Ok(())
            } else {
                Err(Error::Closed)
            };
        }
        if spin && adaptive_spin(&r.spin, SPIN_ROUND_MAX, || ready().then_some(())).is_some() {
            return Ok(());
        }
        let mut backoff = Backoff::new();
        loop {
            let seen = event.load(Ordering::Acquire);
            if ready() {
                return Ok(());
            }
            if spin && !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            // About to sleep (and after every wake): is the other end still there?
            if !alive() {
                return if ready() { Ok(()) } else { Err(Error::Closed) };
            }
            // The reader sleeps on tail, the writer on head: set SLEEPERS at the value that
            // proves the wait (Release pairs with the other side's AcqRel publish).
            // Flag the word the other side moves (tail for the reader, head for the writer) at
            // a value that proves the wait; its next publication then sees the flag.
            let w = word.load(Ordering::Relaxed);
            if amount(w & !SLEEPERS) >= min as u64 {
                continue;
            }
            if w & SLEEPERS == 0 && word.compare_exchange(w, w | SLEEPERS, Ordering::AcqRel, Ordering::Relaxed).is_err()
            {
                continue;
            }
            let until = match tick {
                Some(t) => deadline.earliest(Deadline::after(t)),
                None => deadline,
            };
            match futex_wait(event, seen, until) {
                Ok(()) => {}
                Err(Error::Timeout) if deadline.remaining().is_some() => {}
                Err(e) => return Err(e),
            }
        }
    }
}
