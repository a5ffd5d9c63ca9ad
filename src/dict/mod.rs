//! Manager dict and list in shared memory, with no server process ([`SharedDict`], [`SharedList`]).
//!
//! Python's `Manager().dict()` runs a server process and pickles every operation over a socket;
//! here the container lives in one shared region that every process maps, so an operation is a
//! few loads and stores, and no process's death takes the data with it.
//!
//! # Items
//! Keys and values are [`Item`](item::Item)s (none, bool, int64, float64, str, bytes) with Python's
//! equality: `1`, `1.0` and `True` are one key, str and bytes never equal. [`Value`] is the
//! owned form that reads return.
//!
//! # Memory
//! A container reserves its address space at creation ([`ContainerOptions::reserve`], 1 GiB by
//! default) in a memfd or POSIX shm object: pages are committed when first touched, so every
//! process keeps its mapping and nothing is ever remapped. Keys, values and arrays live in
//! blocks of an allocator inside the region (size classes with free lists, offsets only); freed
//! space is reused, and freed blocks of 64 KiB or more give their pages back. When the reserve
//! is used up an operation fails with [`Error::NoMem`](crate::Error::NoMem) and changes nothing.
//!
//! # Concurrency and process death
//! Writers take the container's robust mutex and publish through a redo journal; readers take
//! no lock and validate their copy against a sequence word (protocol: `txn` below). A process
//! killed at any instant of any operation leaves the container consistent: the operation
//! happened entirely or not at all; the next user finishes a committed one
//! ([`SharedDict::repairs`] counts them). At worst a dead writer's prepared block leaks until
//! `clear`. A writer that is stopped (`SIGSTOP`) holds the lock: writers wait for it, readers
//! do not. Operations are safe from any thread of any process.
//!
//! The protocols are written down, with their states, in the sources of `txn` (journal,
//! sequence word, allocator), `map` (the dict's tables) and `list` (its cells).

pub mod item;
#[cfg(feature = "std")]
mod list;
#[cfg(feature = "std")]
mod map;
#[cfg(all(loom, feature = "std"))]
mod model;
#[cfg(feature = "std")]
mod txn;
#[cfg(feature = "std")]
mod words;

#[cfg(feature = "std")]
mod owned;
#[cfg(all(feature = "ffi", not(loom)))]
pub(crate) use owned::Cursor;
#[cfg(feature = "std")]
pub use owned::{ContainerOptions, DictIter, SharedDict, SharedList, Value};
#[cfg(all(feature = "ffi", not(loom)))]
pub(crate) use words::Head;

#[cfg(all(loom, feature = "std"))]
#[doc(hidden)]
pub use model::ModelDict;
