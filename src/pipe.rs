//! Pipes: a pair of connected ends (Python's `multiprocessing.Pipe`).
//!
//! Data moves through one SPSC byte ring per direction in a shared region, in frames: an 8-byte
//! header, then a payload padded to 8 bytes, published in one step. A message that fits the ring
//! is one frame, headed by its length. A larger one streams through in pieces: a frame holding
//! only its length, then `PIECE` frames of up to `piece_len` bytes each; and the receiver
//! still gets it whole.
//!
//! Timeouts hold for the whole call, streaming included:
//! - a `send` that cannot finish in time, or whose peer goes away mid-message, ends the message
//!   with an `ABORT` frame and fails (`Timeout`, `Closed`). The receiver drops what it had of
//!   that message and goes on to the next one: it never delivers an aborted message, nor reports
//!   `MsgSize` for one whose `ABORT` is in the ring. Until its last piece is in, a streamed
//!   message leaves one unit of the ring free, so that the `ABORT` always fits. The aborted
//!   pieces take room in the ring until the receiver gets past them;
//! - a `recv` that times out mid-message keeps what it took (in this handle, not in the ring):
//!   the next `recv` or `poll` on the handle continues that message, and `poll` says it is there.
//!   If the sender dies mid-message, what arrived of it is dropped and `recv` returns `Closed`.
//!
//! Each end also owns one socket of a socketpair, used only for its file-descriptor semantics:
//! after `fork` both processes hold both ends, each closes the end it does not use, and an end is
//! closed once every process holding it has closed it or died. Then the peer's `recv` returns
//! `Closed` once the data is drained (Python's `EOFError`).
//!
//! How quickly an end notices that its peer is gone:
//! - an explicit `close` bumps a counter in the region and wakes the peer: a blocked peer returns
//!   at once, and the next `send` checks the socket before writing;
//! - a peer that died (kill -9) is noticed by `recv`/`poll` within [`LIVENESS_TICK`] while
//!   waiting, and by `send` as soon as the ring is full (until then a send to a dead peer
//!   succeeds, its bytes unread, as with a pipe whose reader died unnoticed);
//! - a call with a zero timeout that finds nothing to do asks the socket once (one `poll`
//!   system call), so that end-of-file is `Closed` there too, not `Timeout`.
//!
//! An end serves one user at a time (methods take `&mut self`; in C, one thread per end).

use core::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use rustix::fd::OwnedFd;

use crate::error::Error;
use crate::queue::spsc::{RingRef, UNIT, Want};
use crate::shm::{Kind, Region};
use crate::sync::{Arm, AtomicU32, Deadline, Ordering};
use crate::sys::sock;

/// Longest a waiting end sleeps before it checks whether its peer still exists.
pub const LIVENESS_TICK: Duration = Duration::from_millis(10);
/// Ring capacity of [`pipe`] (per direction).
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// Header of each frame after the first of a streamed message (whose header is its length).
const PIECE: u64 = u64::MAX;
/// Header of the frame that ends a streamed message early: its sender gave up on it.
const ABORT: u64 = u64::MAX - 1;

/// Payload bytes in each piece of a streamed message through a ring of `capacity` bytes: two
/// pieces with their headers and the unit kept for an [`ABORT`] fit at once, so that the reader
/// copies one while the writer fills the next.
fn piece_len(capacity: usize) -> usize {
    capacity / 2 - 2 * UNIT
}

/// Whether a message of `len` bytes streams through a ring of `capacity` bytes in pieces.
fn streamed(len: usize, capacity: usize) -> bool {
    UNIT + padded(len) > capacity
}

/// A streamed message whose receipt timed out part-way: the rest is still to come.
#[derive(Debug)]
struct Partial {
    /// The message's length.
    len: usize,
    /// What arrived so far.
    bytes: Vec<u8>,
}

/// Shared header of a pipe's region, before the rings.
#[repr(C)]
struct Control {
    /// Bumped by every explicit close, so that senders know to look at their socket.
    close_gen: AtomicU32,
    _pad: [u8; 60],
}
const RINGS_OFFSET: usize = 64;

/// One end of a pipe.
///
/// After `fork` both processes hold both ends: each closes the one it does not use, so that
/// the peer sees end-of-file ([`Error::Closed`], Python's `EOFError`) once the other side is done.
/// ```
/// use std::time::Duration;
/// use mpkit::{Error, Process, pipe};
///
/// let (mut here, mut there) = pipe(true)?;
/// let echo = || {
///     here.close();
///     let mut buf = [0u8; 16];
///     let got = there.recv_timeout(&mut buf, Duration::from_secs(10));
///     let echoed = got.and_then(|n| there.send(&buf[..n]));
///     i32::from(echoed.is_err()) // the child's `there` closes when it exits
/// };
/// // SAFETY: the child only uses the pipe's ends, mpkit objects made before the fork.
/// let child = unsafe { Process::spawn(echo) }?;
/// there.close();
/// here.send(b"ping")?;
/// let mut buf = [0u8; 16];
/// let n = here.recv_timeout(&mut buf, Duration::from_secs(10))?;
/// assert_eq!(&buf[..n], b"ping");
/// assert_eq!(here.recv_timeout(&mut buf, Duration::from_secs(10)), Err(Error::Closed));
/// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
/// # Ok::<(), mpkit::Error>(())
/// ```
#[derive(Debug)]
pub struct Conn {
    region: Arc<Region>,
    /// This end's socket; `None` once closed.
    fd: Option<OwnedFd>,
    /// The ring this end reads (None: send-only end) and the cached writer position.
    rx: Option<RingRef<'static>>,
    rx_tail: u64,
    /// The message this end's last `recv` took part of before it timed out.
    partial: Option<Partial>,
    /// The ring this end writes (None: receive-only end) and the cached reader position.
    tx: Option<RingRef<'static>>,
    tx_head: u64,
    /// `close_gen` as of our last socket check.
    close_gen: u32,
    /// Spin before sleeping when waiting (see [`Conn::set_spinning`]).
    spin: bool,
}

/// A connected pair `(a, b)` with rings of [`DEFAULT_CAPACITY`] bytes. `duplex`: both ends send
/// and receive; otherwise `a` only receives and `b` only sends (Python's `Pipe(duplex=False)`).
/// See [`Conn`] for an example with a child process.
pub fn pipe(duplex: bool) -> Result<(Conn, Conn), Error> {
    pipe_with_capacity(DEFAULT_CAPACITY, duplex)
}

/// As [`pipe`], with rings of `capacity_bytes` (rounded up to a power of two, at least 64).
/// `Inval` if 0 or above 2^40.
pub fn pipe_with_capacity(capacity_bytes: usize, duplex: bool) -> Result<(Conn, Conn), Error> {
    let cap = RingRef::capacity_for(capacity_bytes).ok_or(Error::Inval)?;
    let ring_len = RingRef::size_for(cap).next_multiple_of(64);
    let rings = if duplex { 2 } else { 1 };
    let bytes = RINGS_OFFSET + rings * ring_len;
    let region = Region::build(Kind::Pipe, [cap as u64, duplex as u64, 0, 0], bytes, None, |mem| {
        // SAFETY: the fresh payload is exclusive, 64-byte aligned and `bytes` long.
        unsafe { mem.cast::<Control>().write(Control { close_gen: AtomicU32::new(0), _pad: [0; 60] }) };
        for i in 0..rings {
            let at = NonNull::new(mem.as_ptr().wrapping_add(RINGS_OFFSET + i * ring_len)).expect("inside the payload");
            // SAFETY: each ring gets its own `ring_len` bytes after the control block.
            unsafe { RingRef::init(at, cap) };
        }
    })?;
    let (fa, fb) = sock::liveness_pair()?;
    let region = Arc::new(region);
    let ring = |i: usize| {
        let at = region.as_ptr().wrapping_add(RINGS_OFFSET + i * ring_len);
        let at = NonNull::new(at).expect("inside the payload");
        // SAFETY: built above; the rings live as long as the region, which every Conn keeps alive.
        unsafe { RingRef::from_raw(at) }.ok()
    };
    // Ring 0 carries b -> a; ring 1 (duplex only) carries a -> b.
    let (b_to_a, a_to_b) = (ring(0), if duplex { ring(1) } else { None });
    let end = |fd, rx, tx| Conn {
        region: region.clone(),
        fd: Some(fd),
        rx,
        rx_tail: 0,
        partial: None,
        tx,
        tx_head: 0,
        close_gen: 0,
        spin: true,
    };
    Ok((end(fa, b_to_a, a_to_b), end(fb, a_to_b, b_to_a)))
}

/// Bytes a message of `len` bytes occupies in a ring after its header.
fn padded(len: usize) -> usize {
    len.next_multiple_of(UNIT)
}

impl Conn {
    fn control(&self) -> &Control {
        // SAFETY: the control block starts the payload of every pipe region.
        unsafe { self.region.payload().cast::<Control>().as_ref() }
    }

    /// True if this end can send (false for the receive-only end of a one-way pipe).
    pub fn writable(&self) -> bool {
        self.tx.is_some()
    }

    /// True if this end can receive.
    pub fn readable(&self) -> bool {
        self.rx.is_some()
    }

    /// Whether a waiting call spins briefly before it sleeps (the default: a busy peer then sees
    /// sub-microsecond hand-offs). Turn it off where CPUs are oversubscribed.
    pub fn set_spinning(&mut self, on: bool) {
        self.spin = on;
    }

    /// True once [`close`](Self::close) was called on this handle.
    pub fn is_closed(&self) -> bool {
        self.fd.is_none()
    }

    /// Sends one message of any length, waiting for room as long as needed.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<(), Error> {
        self.send_until(msg, Deadline::FOREVER)
    }

    /// Sends one message, waiting at most `timeout` in all. A message larger than the ring that
    /// cannot finish in time is aborted: the receiver never sees any of it.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_until(msg, Deadline::after(timeout))
    }

    /// As [`send`](Self::send), until `deadline`. Errors: `Closed` (the other end is closed
    /// everywhere), `State` (this end is closed or receive-only), `Timeout`. After an error the
    /// receiver gets nothing of `msg` (see the module docs: a started message is aborted).
    #[inline]
    pub fn send_until(&mut self, msg: &[u8], deadline: Deadline) -> Result<(), Error> {
        let tx = self.tx.ok_or(Error::State)?;
        let fd = self.fd.as_ref().ok_or(Error::State)?;
        let generation = self.control().close_gen.load(Ordering::Acquire);
        if generation != self.close_gen {
            self.close_gen = generation;
            if sock::peer_gone(fd) {
                return Err(Error::Closed);
            }
        }
        let mut alive = || !sock::peer_gone(fd);
        if !streamed(msg.len(), tx.capacity_bytes()) {
            let whole = UNIT + padded(msg.len());
            while tx.free(&mut self.tx_head, whole) < whole {
                tx.wait(Want::Space, whole, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
            }
            tx.write_frame(Some(msg.len() as u64), msg);
            return Ok(());
        }
        // The length, with a unit to spare for an ABORT; then the pieces as room appears.
        while tx.free(&mut self.tx_head, 2 * UNIT) < 2 * UNIT {
            tx.wait(Want::Space, 2 * UNIT, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
        }
        tx.write_frame(Some(msg.len() as u64), &[]);
        let piece = piece_len(tx.capacity_bytes());
        let pieces = msg.len().div_ceil(piece);
        for (i, part) in msg.chunks(piece).enumerate() {
            // Every piece but the last leaves a unit free after it.
            let need = UNIT + padded(part.len()) + if i + 1 < pieces { UNIT } else { 0 };
            while tx.free(&mut self.tx_head, need) < need {
                if let Err(e) = tx.wait(Want::Space, need, deadline, self.spin, Some(LIVENESS_TICK), &mut alive) {
                    // Fits: the frame before left a unit free, and the reader only frees more.
                    tx.write_frame(Some(ABORT), &[]);
                    return Err(e);
                }
            }
            tx.write_frame(Some(PIECE), part);
        }
        Ok(())
    }

    /// Receives one message into `buf`, waiting as long as needed; returns its length.
    /// `MsgSize { needed }` if `buf` is too small (the message stays), `Closed` once the other
    /// end is closed everywhere and everything it sent was received.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv_until(buf, Deadline::FOREVER)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` in all. A message larger than the ring
    /// may time out part-way: this handle keeps what arrived, and the next receive continues it.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error> {
        self.recv_until(buf, Deadline::after(timeout))
    }

    /// As [`recv_timeout`](Self::recv_timeout), until `deadline` (`State` if this end is closed
    /// or send-only).
    #[inline]
    pub fn recv_until(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, Error> {
        loop {
            let len = self.next_len(deadline)?;
            if len > buf.len() {
                if self.drop_if_aborted(len) {
                    continue;
                }
                return Err(Error::MsgSize { needed: len });
            }
            let rx = self.rx.ok_or(Error::State)?;
            if !streamed(len, rx.capacity_bytes()) {
                // One frame, published whole with the header `next_len` saw (and never partial).
                rx.read_frame(UNIT, &mut buf[..len]);
                return Ok(len);
            }
            if self.recv_pieces(&mut buf[..len], deadline)? {
                return Ok(len);
            }
            // Its sender aborted it: on to the next message.
        }
    }

    /// Takes the streamed message at the head into `buf` (exactly its length), or the rest of
    /// the one taken part-way. `Ok(false)`: its sender aborted it, and it is dropped. On
    /// `Timeout` what arrived is kept for the next call; on other errors it is dropped.
    fn recv_pieces(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<bool, Error> {
        let rx = self.rx.ok_or(Error::State)?;
        let fd = self.fd.as_ref().ok_or(Error::State)?;
        let mut got = match self.partial.take() {
            Some(p) => {
                buf[..p.bytes.len()].copy_from_slice(&p.bytes);
                p.bytes.len()
            }
            None => {
                rx.read_frame(UNIT, &mut []); // the length
                0
            }
        };
        let mut alive = || !sock::peer_gone(fd);
        let piece = piece_len(rx.capacity_bytes());
        while got < buf.len() {
            while rx.available(&mut self.rx_tail, UNIT) < UNIT {
                let waited = rx.wait(Want::Data, UNIT, deadline, self.spin, Some(LIVENESS_TICK), &mut alive);
                if let Err(e) = waited {
                    if e == Error::Timeout {
                        self.partial = Some(Partial { len: buf.len(), bytes: buf[..got].to_vec() });
                    }
                    return Err(e);
                }
            }
            match rx.peek_unit(0) {
                PIECE => {}
                ABORT => {
                    rx.read_frame(UNIT, &mut []);
                    return Ok(false);
                }
                _ => return Err(Error::BadObject),
            }
            // Published whole with its header.
            let part = piece.min(buf.len() - got);
            rx.read_frame(UNIT, &mut buf[got..got + part]);
            got += part;
        }
        Ok(true)
    }

    /// True if the streamed message of `len` bytes at the head (or the one taken part-way) was
    /// aborted and its `ABORT` is in the ring already; then it is dropped.
    #[cold]
    fn drop_if_aborted(&mut self, len: usize) -> bool {
        let Some(rx) = self.rx else { return false };
        let (mut got, mut at) = match &self.partial {
            Some(p) => (p.bytes.len(), 0),
            None if streamed(len, rx.capacity_bytes()) => (0, UNIT),
            None => return false,
        };
        let there = rx.available(&mut self.rx_tail, usize::MAX);
        let piece = piece_len(rx.capacity_bytes());
        while got < len && at + UNIT <= there {
            match rx.peek_unit(at) {
                PIECE => {
                    let part = piece.min(len - got);
                    at += UNIT + padded(part);
                    got += part;
                }
                ABORT => {
                    rx.read_frame(at + UNIT, &mut []);
                    self.partial = None;
                    return true;
                }
                _ => return false,
            }
        }
        false
    }

    /// Waits until a message is there (at most `timeout`; `None`: forever). `Ok(())` if one is
    /// (or has begun: a message larger than the ring may take longer to arrive whole), `Timeout`
    /// if not, `Closed` if the other end is gone and nothing is left.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.next_len(timeout.map_or(Deadline::FOREVER, Deadline::after)).map(|_| ())
    }

    /// As [`poll`](Self::poll), until `deadline`.
    pub fn poll_until(&mut self, deadline: Deadline) -> Result<(), Error> {
        self.next_len(deadline).map(|_| ())
    }

    /// Waits for the next message's header and returns its length, without consuming anything
    /// (the length of the message taken part-way, if there is one).
    #[inline]
    fn next_len(&mut self, deadline: Deadline) -> Result<usize, Error> {
        let rx = self.rx.ok_or(Error::State)?;
        let fd = self.fd.as_ref().ok_or(Error::State)?;
        if let Some(p) = &self.partial {
            return Ok(p.len);
        }
        let mut alive = || !sock::peer_gone(fd);
        while rx.available(&mut self.rx_tail, UNIT) < UNIT {
            rx.wait(Want::Data, UNIT, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
        }
        match rx.peek_unit(0) {
            len @ ..ABORT => usize::try_from(len).map_err(|_| Error::BadObject),
            _ => Err(Error::BadObject),
        }
    }

    /// For a wait over many objects: `Ready` if `recv` would not block now (a message, or the
    /// start of one, is there; the peer is gone; or this end cannot receive), else the reader's
    /// sleep armed on the ring. A dead peer is seen by looking at the socket, which a
    /// `thorough` look and an explicit close elsewhere trigger (at least every
    /// [`LIVENESS_TICK`]).
    pub(crate) fn arm_readable(&mut self, thorough: bool) -> Arm<'_> {
        let (Some(rx), Some(fd)) = (self.rx, self.fd.as_ref()) else { return Arm::Ready };
        if self.partial.is_some() {
            return Arm::Ready;
        }
        let Some((word, expected)) = rx.arm_data() else { return Arm::Ready };
        let generation = self.control().close_gen.load(Ordering::Acquire);
        if thorough || generation != self.close_gen {
            self.close_gen = generation;
            if sock::peer_gone(fd) {
                return Arm::Ready;
            }
        }
        Arm::Sleep { word, expected, tick: Some(LIVENESS_TICK) }
    }

    /// Drops this process's hold on the end (Python's `close`); afterwards the handle only
    /// answers `State`. The end is closed for the peer once every holder closed it or died.
    /// Idempotent.
    pub fn close(&mut self) {
        if self.fd.take().is_some() {
            // Release pairs with the Acquire load in `send_until`: peers re-check their socket.
            self.control().close_gen.fetch_add(1, Ordering::Release);
            for ring in [self.rx, self.tx].into_iter().flatten() {
                ring.wake_everyone();
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.close();
    }
}
