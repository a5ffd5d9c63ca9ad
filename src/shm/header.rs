//! The header every mpkit region starts with.
//!
//! The creator writes the fields with `state = INITIALIZING`, builds the object in place, then
//! Release-stores `READY`; an opener Acquire-loads `state` and validates everything else before
//! it touches the object. No field holds a pointer.
//!
//! A named object gets its name only after it is READY (`Region::build`), so an opener never
//! has to wait for a creator: a header that is not READY (all zero, foreign, or left
//! INITIALIZING by a creator that died) never becomes valid, and is refused at once.

use crate::error::Error;
use crate::sync::{AtomicU32, Ordering};

/// `b"MPKITSHM"` read as a little-endian u64.
const MAGIC: u64 = u64::from_le_bytes(*b"MPKITSHM");
/// Bumped whenever a shared layout changes; objects of another version are refused.
pub const ABI_VERSION: u32 = 1;
/// Bytes before the payload: the header, padded to a cache line.
pub const HEADER_LEN: usize = 64;

const INITIALIZING: u32 = 1;
const READY: u32 = 2;

/// What a region holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Untyped bytes (`mpk_shm_*`).
    Raw = 1,
    /// One [`RawMutex`](crate::RawMutex) (`mpk_mutex_create`).
    Mutex = 2,
    /// A typed array with its lock (`mpk_array_*`, [`SharedArray`](crate::SharedArray)).
    Array = 3,
    /// An MPMC message queue (`mpk_queue_*`, [`ByteQueue`](crate::ByteQueue)).
    Queue = 4,
    /// A pipe's rings (`mpk_pipe_create`, [`pipe`](crate::pipe())).
    Pipe = 5,
    /// A worker pool's shared state (`mpk_pool_create`, [`Pool`](crate::Pool)).
    Pool = 6,
    /// One [`RawRMutex`](crate::RawRMutex) (`mpk_rmutex_create`, [`RLock`](crate::RLock)).
    RMutex = 7,
    /// One [`RawSemaphore`](crate::RawSemaphore) (`mpk_sem_create`, [`Semaphore`](crate::Semaphore)).
    Semaphore = 8,
    /// An event (`mpk_event_create`, [`Event`](crate::Event)).
    Event = 9,
    /// A condition variable (`mpk_cond_create`, [`Condvar`](crate::Condvar)).
    Cond = 10,
    /// A barrier (`mpk_barrier_create`, [`Barrier`](crate::Barrier)).
    Barrier = 11,
    /// A dict (`mpk_dict_*`, [`SharedDict`](crate::SharedDict)).
    Dict = 12,
    /// A list (`mpk_list_*`, [`SharedList`](crate::SharedList)).
    List = 13,
}

/// The first [`HEADER_LEN`] bytes of a region.
#[repr(C)]
pub(crate) struct Header {
    magic: u64,
    abi_version: u32,
    kind: u32,
    /// 0 (nothing written yet), `INITIALIZING`, `READY`.
    state: AtomicU32,
    header_len: u32,
    /// Length of the whole region in bytes, header included.
    len: u64,
    /// Kind-specific layout parameters (array: element type and count), checked by openers.
    layout: [u64; 4],
}

#[cfg(not(loom))]
static_assertions::const_assert_eq!(core::mem::size_of::<Header>(), HEADER_LEN);

impl Header {
    /// A header for a region under construction.
    pub(crate) fn new(kind: Kind, len: u64, layout: [u64; 4]) -> Header {
        Header {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            kind: kind as u32,
            state: AtomicU32::new(INITIALIZING),
            header_len: HEADER_LEN as u32,
            len,
            layout,
        }
    }

    /// The region length this header claims (validated by `check`).
    pub(crate) fn claimed_len(&self) -> u64 {
        self.len
    }

    /// Publishes the object built after the header.
    pub(crate) fn set_ready(&self) {
        // Release pairs with the Acquire load in `check`: the object's bytes are visible to openers.
        self.state.store(READY, Ordering::Release);
    }

    /// Validates a header found in a mapping of `mapped_len` bytes; returns the object's kind
    /// and layout parameters. Anything but a READY mpkit header of this ABI is final (module docs).
    pub(crate) fn check(&self, mapped_len: u64) -> Result<(Kind, [u64; 4]), Error> {
        // Acquire pairs with `set_ready`: once READY is seen, every other field and the object are.
        let state = self.state.load(Ordering::Acquire);
        if self.magic != MAGIC {
            return Err(Error::BadObject);
        }
        if self.abi_version != ABI_VERSION {
            return Err(Error::Version);
        }
        if state != READY {
            return Err(Error::BadObject); // not from a complete build: its creator wrote it elsewhere
        }
        let kind = match self.kind {
            1 => Kind::Raw,
            2 => Kind::Mutex,
            3 => Kind::Array,
            4 => Kind::Queue,
            5 => Kind::Pipe,
            6 => Kind::Pool,
            7 => Kind::RMutex,
            8 => Kind::Semaphore,
            9 => Kind::Event,
            10 => Kind::Cond,
            11 => Kind::Barrier,
            12 => Kind::Dict,
            13 => Kind::List,
            _ => return Err(Error::BadObject),
        };
        if self.header_len as usize != HEADER_LEN || self.len != mapped_len {
            return Err(Error::BadObject);
        }
        Ok((kind, self.layout))
    }
}
