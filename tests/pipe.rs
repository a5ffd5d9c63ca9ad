//! Pipes within one process and across forks: messages of every size (streaming through a small
//! ring), one-way ends, MsgSize, poll, close semantics (all holders), and kill -9 of a peer.

mod common;

use std::time::{Duration, Instant};

use common::{child, join};
use mpkit::pipe::{LIVENESS_TICK, pipe_with_capacity};
use mpkit::{Error, pipe};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn duplex_round_trip() {
    let (mut a, mut b) = pipe(true).unwrap();
    a.send(b"ping").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.recv(&mut buf), Ok(4));
    assert_eq!(&buf[..4], b"ping");
    b.send(b"").unwrap();
    assert_eq!(a.recv(&mut buf), Ok(0));
}

#[test]
fn messages_larger_than_the_ring_stream_through() {
    let (mut a, mut b) = pipe_with_capacity(64, true).unwrap();
    let sizes = [0, 1, 7, 8, 9, 56, 57, 64, 65, 1000, 4096, 100_000];
    std::thread::scope(|s| {
        s.spawn(move || {
            for (i, &n) in sizes.iter().enumerate() {
                a.send(&pattern(n, i as u8)).unwrap();
            }
        });
        let mut buf = vec![0u8; 100_000];
        for (i, &n) in sizes.iter().enumerate() {
            assert_eq!(b.recv(&mut buf), Ok(n));
            assert_eq!(&buf[..n], &pattern(n, i as u8)[..], "message {i} ({n} bytes)");
        }
    });
}

#[test]
fn small_buffer_keeps_the_message() {
    let (mut a, mut b) = pipe(false).unwrap();
    b.send(b"twelve bytes").unwrap();
    let mut small = [0u8; 5];
    assert_eq!(a.recv(&mut small), Err(Error::MsgSize { needed: 12 }));
    let mut buf = [0u8; 12];
    assert_eq!(a.recv(&mut buf), Ok(12));
    // Also for a message larger than the ring, before any of it is consumed.
    let (mut a, mut b) = pipe_with_capacity(64, false).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || b.send(&pattern(1000, 3)).unwrap());
        let mut small = [0u8; 999];
        assert_eq!(a.recv(&mut small), Err(Error::MsgSize { needed: 1000 }));
        let mut buf = [0u8; 1000];
        assert_eq!(a.recv(&mut buf), Ok(1000));
        assert_eq!(&buf[..], &pattern(1000, 3)[..]);
    });
}

#[test]
fn one_way_pipe_has_a_receive_end_and_a_send_end() {
    let (mut r, mut w) = pipe(false).unwrap();
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    assert_eq!(r.send(b"x"), Err(Error::State));
    let mut buf = [0u8; 4];
    assert_eq!(w.recv(&mut buf), Err(Error::State));
    w.send(b"ok").unwrap();
    assert_eq!(r.recv(&mut buf), Ok(2));
}

#[test]
fn poll_and_timeouts() {
    let (mut a, mut b) = pipe(true).unwrap();
    assert_eq!(a.poll(Some(Duration::ZERO)), Err(Error::Timeout));
    let t0 = Instant::now();
    assert_eq!(a.poll(Some(Duration::from_millis(40))), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(40));
    let mut buf = [0u8; 8];
    assert_eq!(a.recv_timeout(&mut buf, Duration::from_millis(10)), Err(Error::Timeout));
    b.send(b"x").unwrap();
    assert_eq!(a.poll(None), Ok(()));
    assert_eq!(a.poll(Some(Duration::ZERO)), Ok(()), "poll does not consume");
    assert_eq!(a.recv(&mut buf), Ok(1));
    // A full ring: send times out.
    let (_r, mut w) = pipe_with_capacity(64, false).unwrap();
    w.send(&[0u8; 56]).unwrap();
    assert_eq!(w.send_timeout(b"more", Duration::from_millis(20)), Err(Error::Timeout));
}

#[test]
fn close_gives_eof_after_the_data() {
    let (mut a, mut b) = pipe(true).unwrap();
    b.send(b"last words").unwrap();
    b.close();
    assert!(b.is_closed());
    assert_eq!(b.send(b"x"), Err(Error::State));
    let mut buf = [0u8; 16];
    assert_eq!(a.recv(&mut buf), Ok(10));
    assert_eq!(a.recv(&mut buf), Err(Error::Closed));
    assert_eq!(a.poll(None), Err(Error::Closed));
    assert_eq!(a.send(b"anyone?"), Err(Error::Closed));
}

#[test]
fn close_wakes_a_blocked_receiver() {
    let (mut a, mut b) = pipe(true).unwrap();
    std::thread::scope(|s| {
        let r = s.spawn(move || {
            let mut buf = [0u8; 8];
            a.recv(&mut buf)
        });
        std::thread::sleep(Duration::from_millis(50));
        b.close();
        assert_eq!(r.join().unwrap(), Err(Error::Closed));
    });
}

/// Python's pattern: after fork both processes hold both ends; each closes the one it does not
/// use. The parent sees EOF only once the child's copy of its end is closed too.
#[test]
fn end_is_closed_only_when_every_holder_closed_it() {
    let (mut parent_end, mut child_end) = pipe(true).unwrap();
    let c = child(|| {
        parent_end.close(); // the child's copy
        child_end.send(b"[42, None, 'hello']").unwrap();
        0 // exit closes the child's copy of child_end
    });
    assert_eq!(join(&c), 0);
    let mut buf = [0u8; 64];
    assert_eq!(parent_end.recv(&mut buf), Ok(19));
    assert_eq!(&buf[..19], b"[42, None, 'hello']");
    // The parent still holds child_end itself: not closed yet.
    assert_eq!(parent_end.recv_timeout(&mut buf, Duration::from_millis(30)), Err(Error::Timeout));
    child_end.close();
    assert_eq!(parent_end.recv(&mut buf), Err(Error::Closed));
}

#[test]
fn kill_9_of_the_peer_reads_as_closed_in_bounded_time() {
    let (mut mine, mut theirs) = pipe(true).unwrap();
    let c = child(|| {
        mine.close();
        theirs.send(b"alive").unwrap();
        loop {
            // SAFETY: sleeps until killed.
            unsafe { libc::pause() };
        }
    });
    theirs.close();
    let mut buf = [0u8; 8];
    assert_eq!(mine.recv(&mut buf), Ok(5));
    std::thread::scope(|s| {
        let r = s.spawn(|| {
            let t0 = Instant::now();
            (mine.recv(&mut buf), t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(30));
        c.kill().unwrap();
        let (got, waited) = r.join().unwrap();
        assert_eq!(got, Err(Error::Closed));
        eprintln!("noticed the death after {waited:?} (tick {LIVENESS_TICK:?})");
    });
    join(&c);
}

#[test]
fn sender_to_a_dead_reader_gets_closed_once_the_ring_fills() {
    let (mut r, mut w) = pipe_with_capacity(4096, false).unwrap();
    let c = child(|| {
        w.close();
        loop {
            // SAFETY: sleeps until killed; holds the read end.
            unsafe { libc::pause() };
        }
    });
    r.close();
    c.kill().unwrap();
    join(&c);
    let mut sent = 0;
    let result = loop {
        match w.send(&[7u8; 100]) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 100, "a dead reader must stop the sender once the ring is full");
    };
    assert_eq!(result, Error::Closed);
}
