//! Thin wrappers over the kernel: the only module that makes system calls.
//!
//! rustix first; `libc` only where rustix has no wrapper (`fork`, `get_robust_list`, `prctl`
//! death signals, `pthread_atfork`).

pub(crate) mod futex;
pub(crate) mod robust;
pub(crate) mod time;

#[cfg(feature = "std")]
pub(crate) mod mman;
#[cfg(feature = "std")]
pub(crate) mod proc;
#[cfg(feature = "std")]
pub(crate) mod sock;
