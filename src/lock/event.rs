//! The event (`mpk_event`, Python's `multiprocessing.Event`): a flag that processes wait on.
//!
//! # The futex word
//! | value     | meaning                                                        |
//! |-----------|----------------------------------------------------------------|
//! | `0`       | clear, nobody asleep                                           |
//! | `WAITERS` | clear; someone may sleep on the word, so `set` must wake       |
//! | `SET`     | set (never together with `WAITERS`)                            |
//!
//! A waiter spins briefly on the word, then arms ([`RawEvent::arm`]: sets `WAITERS` while the
//! event is clear) and futex-waits expecting exactly `WAITERS`. `set` swaps in `SET`, which clears
//! `WAITERS`, and wakes every sleeper only if `WAITERS` was there; `clear` clears `SET`. So neither
//! makes a system call while nobody sleeps. A waiter that timed out leaves `WAITERS` behind: the
//! next `set` then makes one needless wake call. A waiter that dies leaves nothing else: the
//! event stays usable.
//!
//! `mpk_wait` (one wait over many objects) uses [`arm`](RawEvent::arm) to sleep on several words.

use core::time::Duration;

use crate::error::Error;
use crate::sync::{AtomicU32, Deadline, Ordering, futex_wait, futex_wake, mutant, spin_hint};

/// Bit 0 of the word: the event is set.
const SET: u32 = 1;
/// Bit 1 of the word: a waiter may sleep on it.
const WAITERS: u32 = 2;

/// How many `pause` hints a waiter spends looking at the word before it sleeps: a hand-off
/// between two CPUs takes a few µs, a futex sleep and wake-up tens of µs. None under loom,
/// whose models check the sleeping protocol.
pub(crate) const SPIN: u32 = if cfg!(loom) { 0 } else { 4096 };

/// A process-shared event that lives in place in any memory: 8 bytes, `#[repr(C)]`, all-zero is a
/// valid clear event.
///
/// [`set`](Self::set) wakes every waiter; waiting on a set event returns at once. Like Python's,
/// it carries no counter: a `set` followed by a `clear` before a waiter looked may go unseen by it.
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, RawEvent};
///
/// let e = RawEvent::new();
/// assert_eq!(e.wait_timeout(Duration::from_millis(1)), Err(Error::Timeout));
/// e.set();
/// assert!(e.is_set());
/// e.wait()?; // returns at once
/// e.clear();
/// assert!(!e.is_set());
/// # Ok::<(), mpkit::Error>(())
/// ```
#[repr(C)]
pub struct RawEvent {
    /// The futex word: see the module table.
    word: AtomicU32,
    _reserved: u32,
}

#[cfg(not(loom))]
const _: () = {
    use static_assertions::const_assert_eq;
    const_assert_eq!(core::mem::size_of::<RawEvent>(), 8);
    const_assert_eq!(core::mem::align_of::<RawEvent>(), 4);
    const_assert_eq!(core::mem::offset_of!(RawEvent, word), 0);
};

impl Default for RawEvent {
    fn default() -> Self {
        Self::new()
    }
}

impl RawEvent {
    /// A clear event.
    #[cfg(not(loom))]
    pub const fn new() -> RawEvent {
        RawEvent { word: AtomicU32::new(0), _reserved: 0 }
    }

    /// A clear event (loom's atomics have no `const` constructor).
    #[cfg(loom)]
    pub fn new() -> RawEvent {
        RawEvent { word: AtomicU32::new(0), _reserved: 0 }
    }

    /// `BadObject` for bytes that are no event (foreign or corrupted): a word outside the module
    /// table, or a reserved word that is not zero.
    pub fn check(&self) -> Result<(), Error> {
        let v = self.word.load(Ordering::Relaxed);
        if v & !(SET | WAITERS) != 0 || v == SET | WAITERS || self._reserved != 0 {
            return Err(Error::BadObject);
        }
        Ok(())
    }

    /// Whether the event is set.
    #[inline]
    pub fn is_set(&self) -> bool {
        // Acquire pairs with the Release swap in `set`: what the setter wrote before is visible.
        self.word.load(Ordering::Acquire) & SET != 0
    }

    /// Sets the event and wakes every waiter (a system call only if one sleeps).
    #[inline]
    pub fn set(&self) {
        // Release pairs with the waiters' Acquire loads: the setter's writes are visible to them.
        let old = self.word.swap(SET, Ordering::Release);
        if old & WAITERS != 0 && !mutant("event_no_wake") {
            futex_wake(&self.word, i32::MAX as u32);
        }
    }

    /// Clears the event; waiters from now on block until the next [`set`](Self::set).
    #[inline]
    pub fn clear(&self) {
        // Relaxed: clearing publishes nothing; a waiter that arms afterwards sees 0 or WAITERS.
        self.word.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Prepares an external futex wait: `None` if the event is set; otherwise sets `WAITERS` and
    /// returns the word and the value to wait for (`futex_wait(word, value, ..)` or a futex_waitv
    /// entry). After waking, call `arm` again (or [`is_set`](Self::is_set)) to learn the state.
    pub(crate) fn arm(&self) -> Option<(&AtomicU32, u32)> {
        // Acquire, as in `is_set`.
        let mut v = self.word.load(Ordering::Acquire);
        loop {
            if v & SET != 0 {
                return None;
            }
            if v & WAITERS != 0 {
                return Some((&self.word, WAITERS));
            }
            // Acquire on failure: a SET read there is acted on, as in `is_set`. Relaxed on success:
            // setting WAITERS publishes nothing.
            match self.word.compare_exchange_weak(v, v | WAITERS, Ordering::Relaxed, Ordering::Acquire) {
                Ok(_) => return Some((&self.word, WAITERS)),
                Err(now) => v = now,
            }
        }
    }

    /// Waits until the event is set or `deadline` passes (`Timeout`).
    #[inline]
    pub fn wait_until(&self, deadline: Deadline) -> Result<(), Error> {
        if self.is_set() {
            return Ok(());
        }
        self.wait_contended(deadline)
    }

    #[cold]
    fn wait_contended(&self, deadline: Deadline) -> Result<(), Error> {
        if deadline.is_now() {
            return Err(Error::Timeout);
        }
        for _ in 0..SPIN {
            spin_hint();
            if self.is_set() {
                return Ok(());
            }
        }
        loop {
            let Some((word, expected)) = self.arm() else { return Ok(()) };
            // The futex re-checks `word == WAITERS` atomically with queueing us: a `set` after
            // `arm` either changed the word (we return at once) or finds us queued and wakes us.
            if let Err(e) = futex_wait(word, expected, deadline) {
                return if self.is_set() { Ok(()) } else { Err(e) };
            }
        }
    }

    /// Waits until the event is set.
    pub fn wait(&self) -> Result<(), Error> {
        self.wait_until(Deadline::FOREVER)
    }

    /// Waits at most `timeout` for the event (`Timeout`); Python's `wait(timeout)` returning False.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Error> {
        self.wait_until(Deadline::after(timeout))
    }
}

impl core::fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RawEvent").field("set", &self.is_set()).finish_non_exhaustive()
    }
}

#[cfg(feature = "std")]
pub use owned::Event;

#[cfg(feature = "std")]
mod owned {
    use core::ptr::NonNull;
    use core::time::Duration;

    use super::RawEvent;
    use crate::error::Error;
    use crate::shm::{Kind, Region};

    /// A cross-process event that owns its shared memory, as `mpk_event_create` makes in C
    /// (Python's `multiprocessing.Event`). Made before `fork`, it is shared with the children.
    /// For an event inside memory you already share, use [`RawEvent`] in place.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Event, Process};
    ///
    /// let go = Event::new()?;
    /// // SAFETY: the child only uses `go`, an mpkit object made before the fork.
    /// let child = unsafe { Process::spawn(|| if go.wait_timeout(Duration::from_secs(10)).is_ok() { 0 } else { 1 }) }?;
    /// go.set();
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct Event {
        /// Holds an initialised `RawEvent` at its payload.
        region: Region,
    }

    impl Event {
        /// A new, clear event in a fresh shared mapping.
        pub fn new() -> Result<Event, Error> {
            let region = Region::build(Kind::Event, [0; 4], size_of::<RawEvent>(), None, |mem| {
                // SAFETY: the fresh payload is 64-byte aligned and large enough for one RawEvent.
                unsafe { mem.cast::<RawEvent>().write(RawEvent::new()) }
            })?;
            Ok(Event { region })
        }

        /// The event itself.
        pub fn raw(&self) -> &RawEvent {
            // SAFETY: the payload holds the RawEvent written by `new`, mapped while `self` lives.
            unsafe { self.region.payload().cast::<RawEvent>().as_ref() }
        }

        /// See [`RawEvent::set`].
        pub fn set(&self) {
            self.raw().set()
        }

        /// See [`RawEvent::clear`].
        pub fn clear(&self) {
            self.raw().clear()
        }

        /// See [`RawEvent::is_set`].
        pub fn is_set(&self) -> bool {
            self.raw().is_set()
        }

        /// Waits until the event is set.
        pub fn wait(&self) -> Result<(), Error> {
            self.raw().wait()
        }

        /// Waits at most `timeout` for the event (`Timeout`).
        pub fn wait_timeout(&self, timeout: Duration) -> Result<(), Error> {
            self.raw().wait_timeout(timeout)
        }

        /// Gives up ownership of the mapping: the event stays mapped for the rest of the process.
        #[cfg_attr(not(feature = "ffi"), allow(dead_code))]
        pub(crate) fn into_raw(self) -> NonNull<RawEvent> {
            self.region.into_raw().cast()
        }
    }
}
