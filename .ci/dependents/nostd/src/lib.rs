//! Uses mpkit's in-place primitives, as an embedded system would over memory of its own.
#![no_std]

use core::ptr::NonNull;

use mpkit::{Deadline, QueueRef, RawMutex};

/// A lock in static memory.
static LOCK: RawMutex = RawMutex::new();

/// Puts `x` through a queue built in `mem` and returns what came out, under the lock.
///
/// # Safety
/// `mem` is valid for `len` bytes, 64-byte aligned, and used by nothing else during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn nostd_roundtrip(mem: *mut u8, len: usize, x: u64) -> u64 {
    let Some(mem) = NonNull::new(mem) else { return 0 };
    if LOCK.lock_until(Deadline::FOREVER).is_err() {
        return 0;
    }
    // SAFETY: caller duty.
    let got = match unsafe { QueueRef::init(mem, len, 4, 8) } {
        Ok(q) => {
            let mut out = [0u8; 8];
            match q.try_put(&x.to_ne_bytes()).and_then(|()| q.try_get(&mut out)) {
                Ok(8) => u64::from_ne_bytes(out),
                _ => 0,
            }
        }
        Err(_) => 0,
    };
    let _ = LOCK.unlock();
    got
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
