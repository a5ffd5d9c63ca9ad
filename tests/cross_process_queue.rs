//! The queue and the pipe under real multi-process load: every message delivered exactly once
//! (per-message flags, counts and a checksum), mixed sizes, blocking and non-blocking calls and
//! batches on both sides.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use common::{child, flag, join, wait_until};
use mpkit::{ByteQueue, Error, Region, pipe};

const PRODUCERS: u64 = 3;
const CONSUMERS: u64 = 2;
const PER_PRODUCER: u64 = 200_000;
const MAX_MSG: usize = 256;

/// Length of message `seq` of producer `p`: 8..=256 bytes, mixed.
fn msg_len(p: u64, seq: u64) -> usize {
    8 + ((seq * 7 + p * 13) % (MAX_MSG as u64 - 7)) as usize
}

/// Writes message (p, seq): its id in the first 8 bytes, then a pattern derived from it.
fn fill(buf: &mut [u8], p: u64, seq: u64) -> usize {
    let len = msg_len(p, seq);
    buf[..8].copy_from_slice(&((p << 32) | seq).to_le_bytes());
    for (i, b) in buf[8..len].iter_mut().enumerate() {
        *b = (seq as u8).wrapping_mul(31).wrapping_add(p as u8).wrapping_add(i as u8);
    }
    len
}

/// Checks a received message and returns its (p, seq).
fn check(msg: &[u8]) -> (u64, u64) {
    let id = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let (p, seq) = (id >> 32, id & 0xffff_ffff);
    assert!(p < PRODUCERS && seq < PER_PRODUCER, "bad id {id:#x}");
    let mut want = [0u8; MAX_MSG];
    let len = fill(&mut want, p, seq);
    assert_eq!(msg, &want[..len], "message ({p}, {seq}) corrupted");
    (p, seq)
}

fn weight(p: u64, seq: u64) -> u64 {
    (p + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(seq.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}

/// Shared bookkeeping: one flag per message, and per-consumer counts and checksums.
struct Book {
    region: Region,
}

impl Book {
    fn new() -> Book {
        Book { region: Region::new(1024 + (PRODUCERS * PER_PRODUCER) as usize).unwrap() }
    }
    fn stat(&self, i: usize) -> &AtomicU64 {
        // SAFETY: the first KiB holds the counters, 8-aligned, zeroed, living with `self`.
        unsafe { &*(self.region.as_ptr().add(i * 8) as *const AtomicU64) }
    }
    fn flag(&self, p: u64, seq: u64) -> &AtomicU8 {
        // SAFETY: one byte per message after the first KiB, zeroed, living with `self`.
        unsafe { &*(self.region.as_ptr().add(1024 + (p * PER_PRODUCER + seq) as usize) as *const AtomicU8) }
    }
    /// Records message (p, seq) as received by consumer `c`; fails on a duplicate.
    fn receive(&self, c: u64, p: u64, seq: u64) {
        let before = self.flag(p, seq).fetch_add(1, Ordering::Relaxed);
        assert_eq!(before, 0, "message ({p}, {seq}) delivered twice");
        self.stat(2 * c as usize).fetch_add(1, Ordering::Relaxed);
        self.stat(2 * c as usize + 1).fetch_add(weight(p, seq), Ordering::Relaxed);
    }
}

#[test]
fn queue_3_producers_2_consumers_exactly_once() {
    let q = ByteQueue::new(64, MAX_MSG).unwrap();
    let book = Book::new();
    let (q, book) = (&q, &book);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            child(move || {
                let mut buf = [0u8; MAX_MSG];
                let mut batch = vec![[0u8; MAX_MSG]; 8];
                let mut seq = 0;
                while seq < PER_PRODUCER {
                    match seq % 5 {
                        // Non-blocking: retry while full.
                        0 => {
                            let len = fill(&mut buf, p, seq);
                            loop {
                                match q.try_put(&buf[..len]) {
                                    Ok(()) => break,
                                    Err(Error::Timeout) => std::thread::yield_now(),
                                    Err(e) => panic!("{e}"),
                                }
                            }
                            seq += 1;
                        }
                        // A batch of up to 8 (it may put fewer).
                        1 => {
                            let n = (PER_PRODUCER - seq).min(8);
                            let lens: Vec<usize> = (0..n).map(|i| fill(&mut batch[i as usize], p, seq + i)).collect();
                            let put = q
                                .as_ref()
                                .put_many(n as usize, |i| &batch[i][..lens[i]], mpkit::Deadline::FOREVER)
                                .unwrap();
                            seq += put as u64;
                        }
                        // Blocking.
                        _ => {
                            let len = fill(&mut buf, p, seq);
                            q.put(&buf[..len]).unwrap();
                            seq += 1;
                        }
                    }
                }
                0
            })
        })
        .collect();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|c| {
            child(move || {
                let mut buf = [0u8; MAX_MSG];
                let mut round = 0u64;
                loop {
                    round += 1;
                    let r = match round % 4 {
                        0 => q.try_get(&mut buf).map(|n| {
                            let (p, seq) = check(&buf[..n]);
                            book.receive(c, p, seq);
                        }),
                        1 => q
                            .as_ref()
                            .get_many(
                                8,
                                MAX_MSG,
                                |_, m| {
                                    let (p, seq) = check(m);
                                    book.receive(c, p, seq);
                                },
                                mpkit::Deadline::FOREVER,
                            )
                            .map(|_| ()),
                        _ => q.get(&mut buf).map(|n| {
                            let (p, seq) = check(&buf[..n]);
                            book.receive(c, p, seq);
                        }),
                    };
                    match r {
                        Ok(()) | Err(Error::Timeout) => {}
                        Err(Error::Closed) => return 0,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    for p in &producers {
        assert_eq!(join(p), 0, "producer failed");
    }
    q.close();
    for c in &consumers {
        assert_eq!(join(c), 0, "consumer failed");
    }
    let total = PRODUCERS * PER_PRODUCER;
    let count: u64 = (0..CONSUMERS).map(|c| book.stat(2 * c as usize).load(Ordering::Relaxed)).sum();
    let sum = (0..CONSUMERS).fold(0u64, |s, c| s.wrapping_add(book.stat(2 * c as usize + 1).load(Ordering::Relaxed)));
    let want = (0..PRODUCERS).flat_map(|p| (0..PER_PRODUCER).map(move |s| weight(p, s))).fold(0u64, u64::wrapping_add);
    assert_eq!(count, total, "messages lost");
    assert_eq!(sum, want, "checksum");
    for p in 0..PRODUCERS {
        for s in 0..PER_PRODUCER {
            assert_eq!(book.flag(p, s).load(Ordering::Relaxed), 1, "message ({p}, {s})");
        }
    }
}

/// A duplex pipe between two processes, both directions in use: the parent sends each message,
/// the child checks it and answers with another, from 0 bytes to four times the ring (so large
/// ones stream); both sides check every message, in order, then see EOF when the other closes.
#[test]
fn pipe_request_reply_mixed_sizes() {
    const N: u64 = 20_000;
    let size = |i: u64| ((i * 977) % 4100) as usize + if i.is_multiple_of(100) { 16_000 } else { 0 };
    let pattern = |i: u64, len: usize| -> Vec<u8> { (0..len).map(|k| (i as u8).wrapping_add((k * 7) as u8)).collect() };
    let (mut a, mut b) = mpkit::pipe::pipe_with_capacity(4096, true).unwrap();
    let c = child(|| {
        a.close();
        let mut buf = vec![0u8; 20_000];
        for i in 0..N {
            let n = b.recv(&mut buf).unwrap();
            assert!(n == size(i) && buf[..n] == pattern(i, n)[..], "request {i} corrupted");
            b.send(&pattern(i + 1, size(N - i))).unwrap();
        }
        assert_eq!(b.recv(&mut buf), Err(Error::Closed), "EOF after the parent closed");
        0
    });
    b.close();
    let mut buf = vec![0u8; 20_000];
    for i in 0..N {
        a.send(&pattern(i, size(i))).unwrap();
        let n = a.recv(&mut buf).unwrap();
        assert!(n == size(N - i) && buf[..n] == pattern(i + 1, n)[..], "reply {i} corrupted");
    }
    a.close();
    assert_eq!(join(&c), 0);
}

/// One-way streaming from a child: many messages back to back, the parent checks each.
#[test]
fn pipe_one_way_stream() {
    const N: u64 = 100_000;
    let (mut r, mut w) = pipe(false).unwrap();
    let c = child(|| {
        r.close();
        let mut msg = [0u8; 300];
        for i in 0..N {
            let len = (i % 300) as usize;
            for (k, b) in msg[..len].iter_mut().enumerate() {
                *b = (i as u8) ^ (k as u8);
            }
            w.send(&msg[..len]).unwrap();
        }
        0
    });
    w.close();
    let mut buf = [0u8; 300];
    for i in 0..N {
        let n = r.recv(&mut buf).unwrap();
        assert_eq!(n, (i % 300) as usize);
        assert!(buf[..n].iter().enumerate().all(|(k, &b)| b == (i as u8) ^ (k as u8)), "message {i}");
    }
    assert_eq!(r.recv(&mut buf), Err(Error::Closed));
    assert_eq!(join(&c), 0);
}

/// Issue 14.8: a putter that claimed a slot and died before publishing it leaves getters waiting
/// at that slot; `close` must release them: gets answer `Closed` at once (the unpublished slot
/// counts as not there), now and later, through the Rust API and the C ABI.
#[test]
fn close_releases_getters_behind_a_dead_putter() {
    use std::time::{Duration, Instant};
    let q = ByteQueue::new(4, 8).unwrap();
    let flags = Region::new(1024).unwrap();
    let (qr, fl) = (&q, &flags);
    // The child claims a slot, then stops forever inside the put (the message closure runs
    // between claim and publish; its first call is the length check before the claim).
    let putter = child(move || {
        let calls = std::cell::Cell::new(0);
        let _ = qr.as_ref().put_many(
            1,
            |_| {
                calls.set(calls.get() + 1);
                if calls.get() == 2 {
                    flag(fl, 0).store(1, Ordering::Release);
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
                b"never"
            },
            mpkit::Deadline::FOREVER,
        );
        1
    });
    wait_until("the putter to claim its slot", || flag(&flags, 0).load(Ordering::Acquire) == 1);
    putter.kill().unwrap();
    assert_eq!(join(&putter), -9, "killed mid-put");
    assert_eq!(q.len(), 1, "the dead putter's claim counts");
    let mut buf = [0u8; 8];
    assert_eq!(q.try_get(&mut buf), Err(Error::Timeout), "nothing published yet");

    std::thread::scope(|s| {
        let getter = s.spawn(|| {
            let mut buf = [0u8; 8];
            let r = q.get_timeout(&mut buf, Duration::from_secs(10));
            (r, Instant::now())
        });
        std::thread::sleep(Duration::from_millis(100)); // let it wait at the stuck slot
        let closed_at = Instant::now();
        q.close();
        let (r, returned_at) = getter.join().unwrap();
        let after = returned_at.saturating_duration_since(closed_at);
        assert_eq!(r, Err(Error::Closed), "the waiting getter, {after:?} after close");
        // The bug is "does not answer in time" (it waited out its whole timeout): a generous bound.
        assert!(after < Duration::from_millis(500), "the getter returned {after:?} after close");
    });
    assert_eq!(q.try_get(&mut buf), Err(Error::Closed), "a later try_get");
    let t0 = Instant::now();
    assert_eq!(q.get_timeout(&mut buf, Duration::from_secs(5)), Err(Error::Closed), "a later get");
    assert!(t0.elapsed() < Duration::from_millis(500), "a later get took {:?}", t0.elapsed());
    let mut len = 0;
    let ring = q.as_ref().as_ptr().cast::<mpkit::ffi::mpk_queue>();
    // SAFETY: `ring` is the live queue; `buf` has 8 bytes.
    let st = unsafe { mpkit::ffi::mpk_queue_get(ring, buf.as_mut_ptr().cast(), 8, &mut len, 5000) };
    assert_eq!(st, mpkit::ffi::MPK_ERR_CLOSED, "a later C get");
    assert!(t0.elapsed() < Duration::from_secs(1), "later gets took {:?}", t0.elapsed());
    assert_eq!(q.try_put(b"x"), Err(Error::Closed));
}
