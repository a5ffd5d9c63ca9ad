//! Pipes: a pair of connected ends (Python's `multiprocessing.Pipe`).
//!
//! Data moves through one SPSC byte ring per direction in a shared region; each message is an
//! 8-byte length header and its payload padded to 8 bytes. A message that does not fit the ring
//! streams through it in pieces, and the receiver still gets it whole.
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
//!   succeeds, its bytes unread, as with a pipe whose reader died unnoticed).
//!
//! An end serves one user at a time (methods take `&mut self`; in C, one thread per end).

use core::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use rustix::fd::OwnedFd;

use crate::error::Error;
use crate::queue::spsc::{RingRef, UNIT, Want};
use crate::shm::{Kind, Region};
use crate::sync::{AtomicU32, Deadline, Ordering};
use crate::sys::sock;

/// Longest a waiting end sleeps before it checks whether its peer still exists.
pub const LIVENESS_TICK: Duration = Duration::from_millis(10);
/// Ring capacity of [`pipe`] (per direction).
pub const DEFAULT_CAPACITY: usize = 1 << 20;

/// Shared header of a pipe's region, before the rings.
#[repr(C)]
struct Control {
    /// Bumped by every explicit close, so that senders know to look at their socket.
    close_gen: AtomicU32,
    _pad: [u8; 60],
}
const RINGS_OFFSET: usize = 64;

/// One end of a pipe.
#[derive(Debug)]
pub struct Conn {
    region: Arc<Region>,
    /// This end's socket; `None` once closed.
    fd: Option<OwnedFd>,
    /// The ring this end reads (None: send-only end) and the cached writer position.
    rx: Option<RingRef<'static>>,
    rx_tail: u64,
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

    /// Sends one message, waiting at most `timeout` for the room to start it (a message larger
    /// than the ring, once started, is completed or fails with `Closed`).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), Error> {
        self.send_until(msg, Deadline::after(timeout))
    }

    /// As [`send`](Self::send), until `deadline`. Errors: `Closed` (the other end is closed
    /// everywhere), `State` (this end is closed or receive-only), `Timeout`.
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
        let whole = UNIT + padded(msg.len());
        let mut alive = || !sock::peer_gone(fd);
        if whole <= tx.capacity_bytes() {
            while tx.free(&mut self.tx_head, whole) < whole {
                tx.wait(Want::Space, whole, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
            }
            tx.write_frame(Some(msg.len() as u64), msg);
            return Ok(());
        }
        // Larger than the ring: the header, then pieces as room appears.
        while tx.free(&mut self.tx_head, UNIT) < UNIT {
            tx.wait(Want::Space, UNIT, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
        }
        tx.write_frame(Some(msg.len() as u64), &[]);
        // Pieces of at least half the ring (or the rest): tiny pieces would cost a publication
        // and a cache-line hand-off each while both ends chase each other.
        let piece = tx.capacity_bytes() / 2;
        let mut rest = msg;
        loop {
            let want = piece.min(padded(rest.len()));
            while tx.free(&mut self.tx_head, want) < want {
                tx.wait(Want::Space, want, Deadline::FOREVER, self.spin, Some(LIVENESS_TICK), &mut alive)?;
            }
            if want == padded(rest.len()) {
                tx.write_frame(None, rest);
                return Ok(());
            }
            // At most `piece`, so the reader copies one half while we fill the other.
            tx.write_frame(None, &rest[..piece]);
            rest = &rest[piece..];
        }
    }

    /// Receives one message into `buf`, waiting as long as needed; returns its length.
    /// `MsgSize { needed }` if `buf` is too small (the message stays), `Closed` once the other
    /// end is closed everywhere and everything it sent was received.
    #[inline]
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv_until(buf, Deadline::FOREVER)
    }

    /// As [`recv`](Self::recv), waiting at most `timeout` for a message to start.
    pub fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, Error> {
        self.recv_until(buf, Deadline::after(timeout))
    }

    /// As [`recv`](Self::recv), until `deadline` (`State` if this end is closed or send-only).
    #[inline]
    pub fn recv_until(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, Error> {
        let len = self.next_len(deadline)?;
        if len > buf.len() {
            return Err(Error::MsgSize { needed: len });
        }
        let rx = self.rx.ok_or(Error::State)?;
        let fd = self.fd.as_ref().ok_or(Error::State)?;
        let whole = UNIT + padded(len);
        if rx.available(&mut self.rx_tail, whole) >= whole {
            rx.read_frame(UNIT, &mut buf[..len]);
            return Ok(len);
        }
        // Not all here yet (or larger than the ring): take the header, then pieces as they come.
        rx.read_frame(UNIT, &mut []);
        let mut got = 0;
        let mut alive = || !sock::peer_gone(fd);
        let piece = rx.capacity_bytes() / 2;
        while got < len {
            let want = piece.min(padded(len - got));
            while rx.available(&mut self.rx_tail, want) < want {
                rx.wait(Want::Data, want, Deadline::FOREVER, self.spin, Some(LIVENESS_TICK), &mut alive)?;
            }
            let copy = want.min(len - got);
            rx.read_frame(0, &mut buf[got..got + copy]);
            got += copy;
        }
        Ok(len)
    }

    /// Waits until a message is there (at most `timeout`; `None`: forever). `Ok(())` if one is,
    /// `Timeout` if not, `Closed` if the other end is gone and nothing is left.
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.next_len(timeout.map_or(Deadline::FOREVER, Deadline::after)).map(|_| ())
    }

    /// As [`poll`](Self::poll), until `deadline`.
    pub fn poll_until(&mut self, deadline: Deadline) -> Result<(), Error> {
        self.next_len(deadline).map(|_| ())
    }

    /// Waits for the next message's header and returns its length, without consuming anything.
    #[inline]
    fn next_len(&mut self, deadline: Deadline) -> Result<usize, Error> {
        let rx = self.rx.ok_or(Error::State)?;
        let fd = self.fd.as_ref().ok_or(Error::State)?;
        let mut alive = || !sock::peer_gone(fd);
        while rx.available(&mut self.rx_tail, UNIT) < UNIT {
            rx.wait(Want::Data, UNIT, deadline, self.spin, Some(LIVENESS_TICK), &mut alive)?;
        }
        usize::try_from(rx.peek_unit()).map_err(|_| Error::BadObject)
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
