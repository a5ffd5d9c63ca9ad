//! Message queues in shared memory (Python's `Queue`, `SimpleQueue`, `JoinableQueue`).
//!
//! [`QueueRef`] is the in-place MPMC ring (no allocation, no_std); [`ByteQueue`] owns one in its
//! own shared region (anonymous, shared with forked children, or named); [`Queue<T>`] is a
//! `ByteQueue` of fixed-size `Pod` messages.

pub(crate) mod mpmc;
pub mod spsc;

pub use mpmc::{DEATH_TICK, MAX_CAPACITY, MAX_MSG, QueueRef, Repairs};

#[cfg(feature = "std")]
pub use owned::{ByteQueue, Queue};

#[cfg(feature = "std")]
mod owned {
    use core::marker::PhantomData;
    use core::time::Duration;

    use bytemuck::Pod;

    use super::{QueueRef, Repairs};
    use crate::error::Error;
    use crate::shm::{Kind, Region};
    use crate::sync::Deadline;

    /// A bounded MPMC queue of byte messages (0..=`max_msg` bytes) in its own shared region.
    /// Every method may be called from many threads of many processes at once.
    ///
    /// Messages keep their length, and a buffer too small for the next one leaves it queued.
    /// `task_done` and `join` give Python's `JoinableQueue`.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{ByteQueue, Error};
    ///
    /// let q = ByteQueue::new(4, 64)?; // 4 messages of up to 64 bytes
    /// q.put(b"hello")?;
    /// q.put(b"")?; // an empty message is a message too
    /// assert_eq!(q.try_put(&[0; 65]), Err(Error::MsgSize { needed: 64 }));
    /// let mut small = [0u8; 2];
    /// assert_eq!(q.try_get(&mut small), Err(Error::MsgSize { needed: 5 }));
    /// let mut buf = [0u8; 64];
    /// let n = q.get_timeout(&mut buf, Duration::from_secs(1))?;
    /// assert_eq!(&buf[..n], b"hello");
    /// assert_eq!(q.try_get(&mut buf), Ok(0));
    /// assert_eq!(q.try_get(&mut buf), Err(Error::Timeout)); // empty
    /// q.task_done()?;
    /// q.task_done()?;
    /// q.join_timeout(Duration::ZERO)?; // both messages were marked done
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct ByteQueue {
        region: Region,
        /// The ring in `region`'s payload; never handed out for longer than `&self`.
        ring: QueueRef<'static>,
    }

    impl ByteQueue {
        /// A queue of `capacity` messages of up to `max_msg` bytes, shared with children forked
        /// after this call. `Inval` if either is 0 or too large.
        pub fn new(capacity: usize, max_msg: usize) -> Result<ByteQueue, Error> {
            ByteQueue::build(capacity, max_msg, None)
        }

        /// A named queue that unrelated processes open with [`open_named`](Self::open_named)
        /// (see [`Region::create_named`] for names and their lifetime).
        pub fn create_named(name: &str, capacity: usize, max_msg: usize) -> Result<ByteQueue, Error> {
            ByteQueue::build(capacity, max_msg, Some(name))
        }

        fn build(capacity: usize, max_msg: usize, name: Option<&str>) -> Result<ByteQueue, Error> {
            let bytes = QueueRef::size_for(capacity, max_msg).ok_or(Error::Inval)?;
            let layout = [capacity as u64, max_msg as u64, 0, 0];
            let region = Region::build(Kind::Queue, layout, bytes, name, |mem| {
                // SAFETY: `mem` is the fresh, exclusive, 64-byte aligned payload of `bytes` bytes,
                // all zero (new pages of a new file): the slots need no writing, and stay
                // untouched (unallocated) until messages reach them.
                let built = unsafe { QueueRef::init_zeroed(mem, bytes, capacity, max_msg) };
                debug_assert!(built.is_ok());
            })?;
            ByteQueue::wrap(region)
        }

        fn wrap(region: Region) -> Result<ByteQueue, Error> {
            // SAFETY: the payload holds a ring (built or validated by the caller) and stays mapped
            // while `region` lives, which is as long as the ByteQueue that keeps both.
            let ring = unsafe { QueueRef::from_raw(region.payload()) }?;
            Ok(ByteQueue { region, ring })
        }

        /// Attaches to the named queue `name`. `BadObject` if it is not an mpkit queue, or if
        /// any layout word (in the region header or the ring) disagrees with the others or with
        /// the object's size; `Version` for a ring of another layout version.
        pub fn open_named(name: &str) -> Result<ByteQueue, Error> {
            let region = Region::attach(name, Kind::Queue)?;
            let [capacity, max_msg, zero_a, zero_b] = region.layout();
            let fits = usize::try_from(capacity)
                .ok()
                .zip(usize::try_from(max_msg).ok())
                .and_then(|(c, m)| QueueRef::size_for(c, m))
                .is_some_and(|bytes| bytes == region.payload_len());
            if !fits || zero_a != 0 || zero_b != 0 {
                return Err(Error::BadObject);
            }
            let payload_len = region.payload_len();
            let q = ByteQueue::wrap(region)?;
            q.ring.validate(payload_len, capacity, max_msg)?;
            Ok(q)
        }

        /// The region holding the ring (for handing it to C).
        pub(crate) fn into_region(self) -> Region {
            self.region
        }

        /// Keeps a named queue's name after this handle is dropped.
        pub fn persist(&mut self) {
            self.region.persist();
        }

        /// The in-place ring inside the region.
        #[inline]
        pub fn as_ref(&self) -> QueueRef<'_> {
            self.ring
        }

        /// Maximum number of messages.
        pub fn capacity(&self) -> usize {
            self.as_ref().capacity()
        }

        /// Largest message in bytes.
        pub fn max_msg(&self) -> usize {
            self.as_ref().max_msg()
        }

        /// Puts `msg`, waiting for room as long as needed.
        #[inline]
        pub fn put(&self, msg: &[u8]) -> Result<(), Error> {
            self.as_ref().put(msg, Deadline::FOREVER)
        }

        /// Puts `msg` if there is room now; `Timeout` if the queue is full.
        #[inline]
        pub fn try_put(&self, msg: &[u8]) -> Result<(), Error> {
            self.as_ref().try_put(msg)
        }

        /// Puts `msg`, waiting at most `timeout` for room.
        #[inline]
        pub fn put_timeout(&self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
            self.as_ref().put(msg, Deadline::after(timeout))
        }

        /// Takes a message into `buf`, waiting as long as needed; returns its length.
        /// `MsgSize { needed }` if `buf` is too small (the message stays queued), `Closed` once
        /// the queue is closed and drained.
        #[inline]
        pub fn get(&self, buf: &mut [u8]) -> Result<usize, Error> {
            self.as_ref().get(buf, Deadline::FOREVER)
        }

        /// Takes a message if one is there now; `Timeout` if the queue is empty.
        #[inline]
        pub fn try_get(&self, buf: &mut [u8]) -> Result<usize, Error> {
            self.as_ref().try_get(buf)
        }

        /// Takes a message, waiting at most `timeout`.
        #[inline]
        pub fn get_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error> {
            self.as_ref().get(buf, Deadline::after(timeout))
        }

        /// Messages in the queue now (Python's `qsize`).
        pub fn len(&self) -> usize {
            self.as_ref().len()
        }

        /// Slots repaired after a producer or consumer died holding them.
        pub fn repairs(&self) -> Repairs {
            self.as_ref().repairs()
        }

        /// True if [`len`](Self::len) is 0.
        pub fn is_empty(&self) -> bool {
            self.as_ref().is_empty()
        }

        /// Closes the queue for everyone: puts fail with `Closed`; gets drain, then fail with `Closed`.
        pub fn close(&self) {
            self.as_ref().close()
        }

        /// Marks one message as processed (Python's `JoinableQueue.task_done`).
        pub fn task_done(&self) -> Result<(), Error> {
            self.as_ref().task_done()
        }

        /// Waits until every message put so far was marked done (Python's `JoinableQueue.join`).
        pub fn join(&self) -> Result<(), Error> {
            self.as_ref().join(Deadline::FOREVER)
        }

        /// As [`join`](Self::join), waiting at most `timeout`.
        pub fn join_timeout(&self, timeout: Duration) -> Result<(), Error> {
            self.as_ref().join(Deadline::after(timeout))
        }
    }

    /// A message as a `T`: a fixed-size copy when it has `T`'s size (always, unless someone
    /// put shorter bytes into the ring through the byte API); shorter ones are zero-extended.
    #[inline(always)]
    fn value_of<T: Pod>(m: &[u8]) -> T {
        match bytemuck::try_pod_read_unaligned(m) {
            Ok(v) => v,
            Err(_) => {
                let mut v = T::zeroed();
                bytemuck::bytes_of_mut(&mut v)[..m.len()].copy_from_slice(m);
                v
            }
        }
    }

    /// A bounded MPMC queue of `T` values in shared memory (Python's `Queue` of one type).
    ///
    /// Made before `fork`, it connects the parent with its children.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Error, Process, Queue};
    ///
    /// let q = Queue::<[u32; 2]>::new(8)?;
    /// // The queue has room for all four values, so no `put` waits.
    /// let produce = || if (0..4).all(|i| q.put([i, i * i]).is_ok()) { 0 } else { 1 };
    /// // SAFETY: the child only uses `q`, an mpkit object made before the fork.
    /// let producer = unsafe { Process::spawn(produce) }?;
    /// let mut got = Vec::new();
    /// for _ in 0..4 {
    ///     got.push(q.get_timeout(Duration::from_secs(10))?);
    /// }
    /// assert_eq!(got, [[0, 0], [1, 1], [2, 4], [3, 9]]); // one producer: in order
    /// assert_eq!(producer.join_timeout(Duration::from_secs(10))?, 0);
    /// assert_eq!(q.try_get()?, None);
    /// q.close();
    /// assert_eq!(q.get(), Err(Error::Closed)); // closed and drained: never waits
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct Queue<T: Pod> {
        bytes: ByteQueue,
        _t: PhantomData<T>,
    }

    impl<T: Pod> Queue<T> {
        /// A queue of `capacity` values, shared with children forked after this call.
        /// `Inval` if `capacity` is 0 or too large, or `T` has size 0.
        pub fn new(capacity: usize) -> Result<Queue<T>, Error> {
            Ok(Queue { bytes: ByteQueue::new(capacity, size_of::<T>())?, _t: PhantomData })
        }

        /// The byte queue underneath (same ring: a C program can use it through `mpk_queue_*`).
        pub fn as_bytes(&self) -> &ByteQueue {
            &self.bytes
        }

        /// Puts `v`, waiting for room as long as needed.
        #[inline]
        pub fn put(&self, v: T) -> Result<(), Error> {
            self.bytes.put(bytemuck::bytes_of(&v))
        }

        /// Puts `v` if there is room now: `Ok(false)` if the queue is full.
        #[inline]
        pub fn try_put(&self, v: T) -> Result<bool, Error> {
            match self.bytes.try_put(bytemuck::bytes_of(&v)) {
                Ok(()) => Ok(true),
                Err(Error::Timeout) => Ok(false),
                Err(e) => Err(e),
            }
        }

        /// Puts `v`, waiting at most `timeout` for room.
        #[inline]
        pub fn put_timeout(&self, v: T, timeout: Duration) -> Result<(), Error> {
            self.bytes.put_timeout(bytemuck::bytes_of(&v), timeout)
        }

        /// Waits for room, then puts as many of `vs` as fit now (one claim); returns how many.
        #[inline]
        pub fn put_many(&self, vs: &[T]) -> Result<usize, Error> {
            self.bytes.as_ref().put_many(vs.len(), |i| bytemuck::bytes_of(&vs[i]), Deadline::FOREVER)
        }

        /// Takes a value, waiting as long as needed; `Closed` once closed and drained.
        #[inline]
        pub fn get(&self) -> Result<T, Error> {
            self.get_until(Deadline::FOREVER)
        }

        /// Takes a value if one is there now: `Ok(None)` if the queue is empty.
        #[inline]
        pub fn try_get(&self) -> Result<Option<T>, Error> {
            match self.get_until(Deadline::NOW) {
                Ok(v) => Ok(Some(v)),
                Err(Error::Timeout) => Ok(None),
                Err(e) => Err(e),
            }
        }

        /// Takes a value, waiting at most `timeout`.
        #[inline]
        pub fn get_timeout(&self, timeout: Duration) -> Result<T, Error> {
            self.get_until(Deadline::after(timeout))
        }

        #[inline]
        fn get_until(&self, deadline: Deadline) -> Result<T, Error> {
            let mut v = T::zeroed();
            self.bytes.as_ref().get_many(1, size_of::<T>(), |_, m| v = value_of(m), deadline)?;
            Ok(v)
        }

        /// Waits for a value, then takes as many as are there (up to `out.len()`, one claim);
        /// returns how many were written to the front of `out`.
        #[inline]
        pub fn get_many(&self, out: &mut [T]) -> Result<usize, Error> {
            let n = out.len();
            let fit = size_of::<T>();
            self.bytes.as_ref().get_many(n, fit, |i, m| out[i] = value_of(m), Deadline::FOREVER)
        }

        /// Values in the queue now.
        pub fn len(&self) -> usize {
            self.bytes.len()
        }

        /// Slots repaired after a producer or consumer died holding them.
        pub fn repairs(&self) -> Repairs {
            self.bytes.repairs()
        }

        /// True if the queue holds no value now.
        pub fn is_empty(&self) -> bool {
            self.bytes.is_empty()
        }

        /// Closes the queue for everyone (see [`ByteQueue::close`]).
        pub fn close(&self) {
            self.bytes.close()
        }

        /// Marks one value as processed (Python's `JoinableQueue.task_done`).
        pub fn task_done(&self) -> Result<(), Error> {
            self.bytes.task_done()
        }

        /// Waits until every value put so far was marked done.
        pub fn join(&self) -> Result<(), Error> {
            self.bytes.join()
        }
    }
}
