//! Shared (never `FUTEX_PRIVATE_FLAG`) futex wait and wake: the words live in memory that other
//! processes map, and a private futex would hash by this process's address space only.
#![allow(clippy::disallowed_types)] // rustix's futex API takes `core`'s AtomicU32 by definition.

use core::sync::atomic::AtomicU32;
use core::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use crate::error::Error;

/// Sleeps while `*word == expected`, at most `timeout` (None: forever).
///
/// `Ok(())` means "woken, value changed, or interrupted": the caller re-checks its condition.
/// `Err(Error::Timeout)` when the time ran out.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<(), Error> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(()),
        Err(Errno::TIMEDOUT) => Err(Error::Timeout),
        Err(e) => {
            debug_assert!(false, "futex wait: unexpected errno {e:?}");
            Err(Error::Sys(e.raw_os_error()))
        }
    }
}

/// Wakes at most `n` sleepers on `word`; returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    match futex::wake(word, futex::Flags::empty(), n) {
        Ok(woken) => woken,
        Err(e) => {
            // EFAULT/EINVAL would mean a bad address: a bug, not a runtime condition.
            debug_assert!(false, "futex wake: unexpected errno {e:?}");
            0
        }
    }
}

/// The most words one `futex_waitv` call takes (the kernel's `FUTEX_WAITV_MAX`).
#[cfg(feature = "std")]
pub(crate) const WAITV_MAX: usize = 128;

/// Sleeps until one of `words` (at most [`WAITV_MAX`]) no longer holds its expected value, or a
/// wake-up, at most `timeout` (None: forever); answers as [`wait`], and `Sys(ENOSYS)` on kernels
/// before 5.16, which lack `futex_waitv`.
#[cfg(feature = "std")]
pub(crate) fn waitv(words: &[(&AtomicU32, u32)], timeout: Option<Duration>) -> Result<(), Error> {
    debug_assert!(!words.is_empty() && words.len() <= WAITV_MAX);
    let mut waiters = [futex::Wait::new(); WAITV_MAX];
    for (w, &(word, expected)) in waiters.iter_mut().zip(words) {
        w.val = u64::from(expected);
        w.uaddr = futex::WaitPtr::new(word.as_ptr().cast());
        // Shared (no FUTEX2_PRIVATE): the words live in memory that other processes map.
        w.flags = futex::WaitFlags::SIZE_U32;
    }
    // futex_waitv takes an absolute time on the clock it is given.
    let at = timeout.map(|d| {
        let ns = super::time::monotonic_ns().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        rustix::time::Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as _ }
    });
    let waiters = &waiters[..words.len()];
    match futex::waitv(waiters, futex::WaitvFlags::empty(), at.as_ref(), rustix::time::ClockId::Monotonic) {
        Ok(_) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(()),
        Err(Errno::TIMEDOUT) => Err(Error::Timeout),
        Err(Errno::NOSYS) => Err(Error::Sys(Errno::NOSYS.raw_os_error())),
        Err(e) => {
            debug_assert!(false, "futex_waitv: unexpected errno {e:?}");
            Err(Error::Sys(e.raw_os_error()))
        }
    }
}
