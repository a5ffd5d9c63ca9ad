//! mpkit: Python's `multiprocessing` model for C, C++ and Rust on Linux.
//!
//! Primitives live in shared memory and work across `fork` and between unrelated processes:
//! a robust futex [`Mutex`](lock::RawMutex), typed shared arrays ([`SharedArray`]),
//! named and anonymous [`Region`]s, and [`Process`].
//!
//! Layers (dependencies point one way): `ffi` → primitives (`lock`, `array`, `process`) → `shm` →
//! {`sync`, `sys`}. `sync` is the only module that names atomics or loom; `sys` the only one that
//! makes system calls. Without the default `std` feature the crate is `#![no_std]` and offers the
//! in-place primitives only.
//!
//! # Python's names
//! The objects of `multiprocessing` map onto these types, and onto the `mpk_*` handles of the C
//! ABI (`include/mpkit.h`). Where Python takes an optional `timeout`, Rust has a `_timeout`
//! variant of the method; Python's `TimeoutError` and `EOFError` are [`Error::Timeout`] and
//! [`Error::Closed`].
//!
//! | Rust (`mpkit::`) | Python (`multiprocessing`) | C (`mpkit.h`) |
//! |---|---|---|
//! | [`Process`]: [`spawn`](Process::spawn), [`join`](Process::join), [`is_alive`](Process::is_alive), [`exitcode`](Process::exitcode), [`pid`](Process::pid), [`terminate`](Process::terminate), [`kill`](Process::kill), [`sentinel`](Process::sentinel); [`ProcessOptions::daemon`] | `Process(target, args)`, `start`, `join/is_alive/exitcode/pid/terminate/kill`, `daemon`, `sentinel` | `mpk_process_*` |
//! | [`Lock`] (owned), [`RawMutex`] (in place); robust: [`LockError::OwnerDead`](lock::LockError::OwnerDead) when a holder died | `Lock` | `mpk_mutex_*` |
//! | [`SharedValue`], [`SharedArray`], [`ArrayView`] (in place); their `lock()` guard; [`ElemType::from_code`] | `Value`, `Array`, `get_lock()`, type codes `b B h H i I l L q Q f d` | `mpk_array_*`, `mpk_value_create`, `mpk_type_from_code` |
//! | [`Region`] | `shared_memory.SharedMemory(name)` | `mpk_shm_*` |
//! | [`Queue<T: Pod>`](Queue), [`ByteQueue`], [`QueueRef`] (in place): `put`, `get`, `len`, `close`, `task_done`, `join`; batches with `put_many`, `get_many` | `Queue`, `SimpleQueue`, `JoinableQueue`: `put/get(timeout)`, `qsize`, `close`, `task_done/join` | `mpk_queue_*` (in place, owned or named) |
//! | [`pipe()`] → `(`[`Conn`]`, Conn)`: [`send`](Conn::send), [`recv`](Conn::recv), [`poll`](Conn::poll), [`close`](Conn::close) | `Pipe(duplex)` → `send/recv/poll/close`, `EOFError` | `mpk_pipe_create`, `mpk_conn_*` |
//! | [`Pool`]: [`map`](Pool::map), [`map_async`](Pool::map_async), [`starmap`](Pool::starmap), [`imap`](Pool::imap), [`imap_unordered`](Pool::imap_unordered), [`apply`](Pool::apply), [`apply_async`](Pool::apply_async), [`close`](Pool::close), [`join`](Pool::join), [`terminate`](Pool::terminate); [`PoolOptions`] (`initializer`, `maxtasksperchild`) | `Pool(n)`: `map`, `map_async`, `starmap`, `imap`, `imap_unordered`, `apply`, `apply_async`, `close/join/terminate`, `initializer`, `maxtasksperchild` | `mpk_pool_*`, `mpk_iter_*` |
//! | [`AsyncResult`]: [`get`](AsyncResult::get), [`wait`](AsyncResult::wait), [`ready`](AsyncResult::ready), [`successful`](AsyncResult::successful); [`MapAsync`], [`Imap`](pool::Imap) | `AsyncResult`, `MapResult`: `get(timeout)/wait/ready/successful`; the `imap` iterators | `mpk_async_*` |
//! | [`SharedDict`], [`SharedList`]: items ([`dict::item::Item`], [`Value`]) with Python's equality and repr; insertion-ordered iteration; in shared memory, no server | `Manager().dict()`, `Manager().list()` | `mpk_dict_*`, `mpk_list_*`, `mpk_item_*` |
//! | Beyond Python: per-task time limits ([`PoolOptions::task_timeout`], [`Pool::apply_async_timeout`]) and [`AsyncResult::cancel`] | none | `task_timeout_ms`, `mpk_pool_apply_async_timeout`, `mpk_async_cancel` |
//!
//! # Example
//! ```
//! use mpkit::{Process, SharedValue};
//!
//! let hits = SharedValue::new(0u64)?;
//! let kids = (0..4)
//!     .map(|_| {
//!         let work = || {
//!             for _ in 0..1000 {
//!                 hits.lock().unwrap()[0] += 1;
//!             }
//!             0
//!         };
//!         // SAFETY: the children only use mpkit objects (see the fork rules below).
//!         unsafe { Process::spawn(work) }
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//! for k in &kids {
//!     assert_eq!(k.join()?, 0);
//! }
//! assert_eq!(hits.get()?, 4000);
//! # Ok::<(), mpkit::Error>(())
//! ```
//!
//! # Fork rules
//! Objects created before `fork` are shared with the child at the same address. After `fork` in a
//! process that has other threads, the child may only do what is async-signal-safe until it calls
//! `_exit` or `exec`: locks held by the parent's other threads (malloc arenas excepted, which glibc
//! resets) stay locked forever in the child. mpkit's own children end with `_exit`, never by
//! unwinding into the parent's code. See [`process`] for the full list.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
// Under loom only the algorithms are built for models: the kernel-facing code goes unused.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
compile_error!("mpkit supports Linux with glibc only (its robust lock joins glibc's robust list)");

#[cfg(feature = "std")]
extern crate std;

pub mod array;
pub mod dict;
pub mod error;
pub mod lock;
pub mod queue;
pub mod sync;
pub(crate) mod sys;

#[cfg(feature = "std")]
pub mod pipe;
#[cfg(feature = "std")]
pub mod pool;
#[cfg(feature = "std")]
pub mod process;
#[cfg(feature = "std")]
pub mod shm;
#[cfg(feature = "std")]
pub mod wait;

// The C ABI lays RawMutex out for C; loom's atomics have another layout, so no FFI under loom.
#[cfg(all(feature = "ffi", not(loom)))]
pub mod ffi;

pub use array::{ArrayView, ElemType, Element};
#[cfg(feature = "std")]
pub use array::{SharedArray, SharedValue};
#[cfg(feature = "std")]
pub use dict::{ContainerOptions, DictIter, SharedDict, SharedList, Value};
pub use error::Error;
#[cfg(feature = "std")]
pub use lock::Lock;
pub use lock::{Acquired, RawMutex};
#[cfg(feature = "std")]
pub use lock::{Barrier, Condvar, Event};
#[cfg(feature = "std")]
pub use lock::{RLock, Semaphore};
pub use lock::{RawBarrier, RawCondvar, RawEvent};
pub use lock::{RawRMutex, RawSemaphore};
/// The most robust locks one thread may hold at once (the kernel's `ROBUST_LIST_LIMIT`); a lock
/// beyond it is refused with [`Error::NoMem`]. The main thread of a child started by
/// [`Process`] holds one of them from its start: its life lock, which makes its exit visible to
/// [`wait()`].
pub const MAX_HELD_LOCKS: u32 = sys::robust::MAX_HELD;
#[cfg(feature = "std")]
pub use pipe::{Conn, pipe};
#[cfg(feature = "std")]
pub use pool::{AsyncResult, MapAsync, Pool, PoolOptions, StarArgs, TaskError};
#[cfg(feature = "std")]
pub use process::{Process, ProcessOptions};
pub use queue::QueueRef;
#[cfg(feature = "std")]
pub use queue::{ByteQueue, Queue};
#[cfg(feature = "std")]
pub use shm::Region;
pub use sync::Deadline;
#[cfg(feature = "std")]
pub use wait::{Waitable, wait, wait_until};
