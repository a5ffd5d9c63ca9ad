//! One wait over many objects: Python's `multiprocessing.connection.wait`, for queues, pipe
//! ends, events, processes and the pool's results.
//!
//! # How it sleeps
//! Every waitable object already sleeps on a futex word with a "sleepers" bit that its waker
//! checks. [`wait_until`] asks each object to *arm*: either it is ready now, or it sets that bit
//! exactly as its own blocking call would and names the word and the value it saw. If none is
//! ready, one `futex_waitv` (Linux 5.16) sleeps on all those words at once, and whatever makes any
//! object ready changes its word and wakes it. Then every object is asked again. No polling loop
//! and no helper thread: a wake-up costs what a plain futex wake-up costs.
//!
//! What no futex reports is looked at on a tick: a pipe peer that died without closing (its
//! socket, at least every [`LIVENESS_TICK`](crate::pipe::LIVENESS_TICK)), a pool whose supervisor
//! died (the same tick), a queue slot a producer is mid-way through (1 ms), and a child in its
//! first microseconds, before it took its *life lock*. That lock is how a process's exit
//! becomes a futex wake-up: each child takes a robust lock first thing and never releases it, so
//! the kernel marks it `FUTEX_OWNER_DIED` and wakes a sleeper when the child exits, however it
//! exits (also at `exec`, which therefore counts as an exit here).
//!
//! Kernels before 5.16 lack `futex_waitv`: there the wait sleeps on the first armed word only and
//! asks every object again each millisecond. At most 128 words are slept on at once; with more
//! objects, those beyond are asked again each millisecond.
//!
//! An arm leaves the sleepers bit set when the wait returns for another object's sake: that
//! object's next waker then makes one futex wake-up call, as after any wait.

// `Waitable` is sealed: its arming method, and the crate-private `Arm` it returns, cannot be
// named or called outside mpkit.
#![allow(private_interfaces)]

use core::time::Duration;
use std::vec::Vec;

use crate::error::Error;
use crate::sync::{Arm, AtomicU32, Deadline, Ordering, WAITV_FALLBACK_TICK, WAITV_MAX, futex_waitv, mutant};

#[cfg(all(feature = "ffi", not(loom)))]
pub(crate) use private::Arming;

mod private {
    use crate::sync::Arm;

    /// The arming step of [`super::Waitable`]. `thorough`: on the first look and after a tick,
    /// also look at what needs a system call (sockets, the supervisor).
    pub trait Arming {
        fn arm(&mut self, thorough: bool) -> Arm<'_>;
    }
}

/// An object [`wait`] can wait on, ready when its blocking call would not block:
/// [`QueueRef`](crate::QueueRef), [`ByteQueue`](crate::ByteQueue), [`Queue`](crate::Queue) (a
/// message is there, or closed); [`Conn`](crate::Conn) (a message, or the peer is gone);
/// [`Event`](crate::Event), [`RawEvent`](crate::RawEvent) and `&RawEvent` (set);
/// [`Process`](crate::Process) and `&Process` (exited); [`AsyncResult`](crate::AsyncResult),
/// [`MapAsync`](crate::MapAsync), [`MapBytesAsync`](crate::pool::MapBytesAsync) (ended);
/// [`Imap`](crate::pool::Imap), [`ImapBytes`](crate::pool::ImapBytes) (`next` has a result).
/// Sealed: the kinds are mpkit's.
pub trait Waitable: private::Arming {}
impl<T: private::Arming + ?Sized> Waitable for T {}

/// Waits until at least one of `items` is ready, or `deadline`; marks `ready[i]` for each ready
/// item (all others false) and returns how many. `Timeout` if none became ready in time; `Inval`
/// if `items` is empty or `ready` is shorter.
pub fn wait_until(items: &mut [&mut dyn Waitable], ready: &mut [bool], deadline: Deadline) -> Result<usize, Error> {
    if items.is_empty() || ready.len() < items.len() {
        return Err(Error::Inval);
    }
    let mut thorough = true;
    // Per armed item, the word it sleeps on, the value it saw and its tick. After a wake-up (not
    // a tick), an item whose word still holds that value is still armed and not ready, since
    // whatever makes it ready changes the word, so it is not asked again: a wake-up costs one
    // load per object. Raw pointers, because the items are asked again (borrowed mutably) while
    // these are kept.
    let mut armed: Vec<Option<(*const AtomicU32, u32, Option<Duration>)>> = std::vec![None; items.len()];
    loop {
        let mut count = 0;
        for ((item, r), kept) in items.iter_mut().zip(ready.iter_mut()).zip(armed.iter_mut()) {
            *r = false;
            if let Some((word, expected, _)) = *kept {
                // SAFETY: the word lives in the item's shared mapping, which the item (borrowed
                // for this whole call) keeps mapped.
                if !thorough && unsafe { &*word }.load(Ordering::Relaxed) == expected {
                    continue;
                }
            }
            *kept = match item.arm(thorough) {
                Arm::Ready => {
                    *r = true;
                    count += 1;
                    None
                }
                Arm::Sleep { word, expected, tick } => Some((word as *const AtomicU32, expected, tick)),
            };
        }
        if count > 0 {
            return Ok(count);
        }
        let first_only = mutant("wait_first_word_only"); // the others' wake-ups are lost
        let words: Vec<(&AtomicU32, u32)> = armed
            .iter()
            .flatten()
            .take(if first_only { 1 } else { WAITV_MAX })
            // SAFETY: as above.
            .map(|&(word, expected, _)| (unsafe { &*word }, expected))
            .collect();
        let mut tick = armed.iter().flatten().filter_map(|a| a.2).min();
        if words.len() < armed.iter().flatten().count() && !first_only {
            // Beyond WAITV_MAX words: the rest are asked again on a tick.
            tick = Some(tick.map_or(WAITV_FALLBACK_TICK, |t| t.min(WAITV_FALLBACK_TICK)));
        }
        let until = tick.map_or(deadline, |t| deadline.earliest(Deadline::after(t)));
        match futex_waitv(&words, until) {
            Ok(()) => thorough = false,
            Err(Error::Timeout) if deadline.remaining().is_some() => thorough = true,
            Err(e) => return Err(e),
        }
    }
}

/// Waits until at least one of `items` is ready (at most `timeout`; `None`: forever) and returns
/// the indices of the ready ones, in order (Python's `connection.wait`). `Timeout` if none became
/// ready in time.
pub fn wait(items: &mut [&mut dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>, Error> {
    let mut ready = std::vec![false; items.len()];
    wait_until(items, &mut ready, timeout.map_or(Deadline::FOREVER, Deadline::after))?;
    Ok(ready.iter().enumerate().filter_map(|(i, &r)| r.then_some(i)).collect())
}

impl private::Arming for crate::QueueRef<'_> {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        self.arm_get()
    }
}

impl private::Arming for crate::ByteQueue {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        self.as_ref().arm_get()
    }
}

impl<T: bytemuck::Pod> private::Arming for crate::Queue<T> {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        self.as_bytes().as_ref().arm_get()
    }
}

impl private::Arming for crate::Conn {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        self.arm_readable(thorough)
    }
}

impl private::Arming for crate::RawEvent {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        arm_event(self)
    }
}

impl private::Arming for &crate::RawEvent {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        arm_event(self)
    }
}

impl private::Arming for crate::Event {
    fn arm(&mut self, _: bool) -> Arm<'_> {
        arm_event(self.raw())
    }
}

/// An event is ready once set; else armed on its word (its `set` wakes every sleeper).
pub(crate) fn arm_event(e: &crate::RawEvent) -> Arm<'_> {
    e.arm().map_or(Arm::Ready, |(word, expected)| Arm::Sleep { word, expected, tick: None })
}

impl private::Arming for crate::Process {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        self.arm_exited(thorough)
    }
}

impl private::Arming for &crate::Process {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        self.arm_exited(thorough)
    }
}

impl<Out: bytemuck::Pod> private::Arming for crate::AsyncResult<'_, Out> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        crate::AsyncResult::arm(self, thorough)
    }
}

impl<Out: bytemuck::Pod> private::Arming for crate::MapAsync<'_, Out> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        crate::MapAsync::arm(self, thorough)
    }
}

impl private::Arming for crate::pool::MapBytesAsync<'_> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        crate::pool::MapBytesAsync::arm(self, thorough)
    }
}

impl<Out: bytemuck::Pod> private::Arming for crate::pool::Imap<'_, Out> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        crate::pool::Imap::arm(self, thorough)
    }
}

impl private::Arming for crate::pool::ImapBytes<'_> {
    fn arm(&mut self, thorough: bool) -> Arm<'_> {
        crate::pool::ImapBytes::arm(self, thorough)
    }
}
