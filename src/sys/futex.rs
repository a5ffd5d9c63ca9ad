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
