//! Pipes within one process and across forks: messages of every size (streaming through a small
//! ring), one-way ends, MsgSize, poll, close semantics (all holders), kill -9 of a peer, and
//! timeouts that hold for the whole call (an aborted send is never delivered, a timed-out receive
//! keeps what it got).

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{PATIENCE, child, join, wait_until};
use mpkit::pipe::{LIVENESS_TICK, pipe_with_capacity};
use mpkit::{Error, Process, pipe};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Slack allowed past a timeout before a call counts as not honouring it.
const SLACK: Duration = Duration::from_secs(3);

/// Runs `f` on a thread of its own and returns its result and how long it took; panics if that
/// is more than `bound` (the stuck thread ends with the test's process).
fn bounded<R: Send + 'static>(bound: Duration, f: impl FnOnce() -> R + Send + 'static) -> (R, Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let r = f();
        let _ = tx.send((r, t0.elapsed()));
    });
    rx.recv_timeout(bound).unwrap_or_else(|_| panic!("still blocked after {bound:?}"))
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

/// Issue 14.4: both ends send 8 MiB through 1 MiB rings at once and neither reads. Each send
/// gives up by its 2 s timeout (the message aborted: its peer never sees any of it), and the pipe
/// still carries small messages both ways afterwards, even into buffers too small for 8 MiB.
#[test]
fn duplex_big_sends_time_out_and_the_pipe_stays_usable() {
    const T: Duration = Duration::from_secs(2);
    let (a, b) = pipe(true).unwrap();
    let (done, results) = mpsc::channel();
    for (name, mut end) in [("a", a), ("b", b)] {
        let done = done.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let got = end.send_timeout(&pattern(8 << 20, 1), T);
            let _ = done.send((name, got, t0.elapsed(), end));
        });
    }
    let mut ends = Vec::new();
    for _ in 0..2 {
        let bound = T + Duration::from_secs(10);
        let (name, got, took, end) =
            results.recv_timeout(bound).unwrap_or_else(|_| panic!("a send({T:?}) still blocked after {bound:?}"));
        assert_eq!(got, Err(Error::Timeout), "send from {name}");
        assert!(took < T + SLACK, "send from {name} with a {T:?} timeout took {took:?}");
        ends.push((name, end));
    }
    ends.sort_by_key(|(name, _)| *name);
    let [(_, mut a), (_, mut b)] = <[_; 2]>::try_from(ends).unwrap();
    // The aborted messages fill both rings until their readers skip them, so one end receives
    // while the other sends (as with any full pipe, two blocking sends would wait for each other).
    let a_side = std::thread::spawn(move || {
        a.send_timeout(b"after a", PATIENCE).unwrap();
        let mut buf = [0u8; 16];
        let got = a.recv_timeout(&mut buf, PATIENCE).map(|n| buf[..n].to_vec());
        (got, a.poll(Some(Duration::ZERO)), a)
    });
    let mut buf = [0u8; 16];
    assert_eq!(b.recv_timeout(&mut buf, PATIENCE), Ok(7));
    assert_eq!(&buf[..7], b"after a");
    b.send_timeout(b"after b", PATIENCE).unwrap();
    let (got, then, _a) = a_side.join().unwrap(); // bounded: every call in it has a timeout
    assert_eq!(got.as_deref(), Ok(&b"after b"[..]));
    assert_eq!(then, Err(Error::Timeout), "nothing else left");
    assert_eq!(b.poll(Some(Duration::ZERO)), Err(Error::Timeout), "nothing else left");
}

/// A send that times out part-way leaves no trace for the reader, whether its buffer is too small
/// for the aborted message (skipped, never `MsgSize`) or large enough (its pieces are dropped).
#[test]
fn a_send_that_times_out_is_never_delivered() {
    const T: Duration = Duration::from_millis(50);
    let (r, w) = pipe_with_capacity(4096, false).unwrap();
    let ((mut r, mut w), took) = bounded(Duration::from_secs(10), move || {
        let mut w = w;
        assert_eq!(w.send_timeout(&pattern(16384, 2), T), Err(Error::Timeout));
        (r, w)
    });
    assert!(took < T + SLACK, "send({T:?}) took {took:?}");
    // Its pieces fill the ring until the reader skips them.
    let mut small = [0u8; 8];
    assert_eq!(r.recv_timeout(&mut small, T), Err(Error::Timeout), "skipped, then nothing");
    w.send_timeout(b"next", T).unwrap();
    assert_eq!(r.recv_timeout(&mut small, T), Ok(4));
    assert_eq!(&small[..4], b"next");
    assert_eq!(w.send_timeout(&pattern(16384, 3), T), Err(Error::Timeout));
    let mut buf = vec![0u8; 16384];
    assert_eq!(r.recv_timeout(&mut buf, T), Err(Error::Timeout), "read, dropped, then nothing");
    w.send_timeout(b"again", T).unwrap();
    assert_eq!(r.recv_timeout(&mut buf, T), Ok(5));
    assert_eq!(&buf[..5], b"again");
}

/// The reader has taken part of a message (its receive timed out) when the sender gives up on it:
/// the next receive drops the part and returns the following message.
#[test]
fn a_reader_part_way_through_an_aborted_message_drops_it() {
    let (mut r, w) = pipe_with_capacity(4096, false).unwrap();
    let msg = pattern(64 * 1024, 4);
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let mut w = w;
        let _ = done.send(w.send_timeout(&msg, Duration::from_millis(300)));
        w.send(b"next").unwrap();
    });
    // Once the ring is full, take what is there without waiting: part of the message.
    assert_eq!(r.poll(Some(PATIENCE)), Ok(()));
    std::thread::sleep(Duration::from_millis(50));
    let mut buf = vec![0u8; 64 * 1024];
    match r.recv_timeout(&mut buf, Duration::ZERO) {
        Err(Error::Timeout) => {
            // Not reading any more: the sender times out and aborts the message.
            assert_eq!(result.recv_timeout(PATIENCE), Ok(Err(Error::Timeout)));
        }
        // The sender kept up with the reader through 16 ring-fulls: the message is whole.
        got => {
            eprintln!("the reader never found the ring empty: no abort to drop this time");
            assert_eq!(got, Ok(buf.len()));
            assert_eq!(buf, pattern(64 * 1024, 4));
            assert_eq!(result.recv_timeout(PATIENCE), Ok(Ok(())));
        }
    }
    assert_eq!(r.recv_timeout(&mut buf, PATIENCE), Ok(4));
    assert_eq!(&buf[..4], b"next");
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// The state letter of `/proc/<pid>/stat`, or None if the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

fn signal(p: &Process, sig: i32) {
    // SAFETY: `p` is our child, not yet reaped.
    assert_eq!(unsafe { libc::kill(p.pid(), sig) }, 0);
}

/// Kills the child if the test fails while it is stopped (it would never finish by itself).
struct KillOnDrop<'a>(&'a Process);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

/// Issue 14.5: the sender is stopped (SIGSTOP) part-way through a message 4x the ring. A receive
/// with a 1 s timeout returns `Timeout` within bound, keeping what it took; after SIGCONT the next
/// receive (into another buffer) returns the whole message intact.
#[test]
fn recv_timeout_holds_when_the_sender_stops_mid_message() {
    const T: Duration = Duration::from_secs(1);
    let (mut r, mut w) = pipe_with_capacity(64 * 1024, false).unwrap();
    let msg = pattern(256 * 1024, 5);
    let c = child(|| {
        r.close();
        w.send(&msg).map_or(1, |()| 0)
    });
    let _kill = KillOnDrop(&c);
    w.close();
    // The ring fills and the child waits for room: stop it there.
    assert_eq!(r.poll(Some(PATIENCE)), Ok(()));
    std::thread::sleep(Duration::from_millis(100));
    signal(&c, libc::SIGSTOP);
    wait_until("the child to stop", || proc_state(c.pid()) == Some('T'));
    // Without the fix the receive waits for the child: let it go on after 5 s.
    let (received, watchdog) = mpsc::channel::<()>();
    let pid = c.pid();
    let rescue = std::thread::spawn(move || {
        if watchdog.recv_timeout(Duration::from_secs(5)).is_err() {
            // SAFETY: our child, still stopped and unreaped (the main thread is blocked in recv).
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    });
    let mut buf = vec![0u8; msg.len()];
    let t0 = Instant::now();
    let got = r.recv_timeout(&mut buf, T);
    let took = t0.elapsed();
    let _ = received.send(());
    rescue.join().unwrap();
    assert_eq!(got, Err(Error::Timeout), "recv({T:?}) from a stopped sender, after {took:?}");
    assert!(took < T + SLACK, "recv({T:?}) took {took:?}");
    let mut small = [0u8; 16];
    assert_eq!(r.recv_timeout(&mut small, Duration::ZERO), Err(Error::MsgSize { needed: msg.len() }));
    signal(&c, libc::SIGCONT);
    let mut whole = vec![0u8; msg.len()];
    assert_eq!(r.recv_timeout(&mut whole, PATIENCE), Ok(msg.len()));
    assert_eq!(checksum(&whole), checksum(&msg));
    assert!(whole == msg, "the message arrived intact");
    assert_eq!(join(&c), 0);
    assert_eq!(r.recv_timeout(&mut whole, PATIENCE), Err(Error::Closed));
}

/// Issue 15.2: end-of-file answers without waiting too. After an explicit close, and after a
/// peer that exited without closing, a zero timeout reads the data left, then `Closed`.
#[test]
fn eof_with_a_zero_timeout() {
    let mut buf = [0u8; 8];
    let (mut a, mut b) = pipe(true).unwrap();
    b.send(b"bye").unwrap();
    b.close();
    assert_eq!(a.poll(Some(Duration::ZERO)), Ok(()));
    assert_eq!(a.recv_timeout(&mut buf, Duration::ZERO), Ok(3));
    assert_eq!(a.poll(Some(Duration::ZERO)), Err(Error::Closed));
    assert_eq!(a.recv_timeout(&mut buf, Duration::ZERO), Err(Error::Closed));

    let (mut mine, mut theirs) = pipe(true).unwrap();
    let c = child(|| {
        mine.close();
        theirs.send(b"bye").map_or(1, |()| 0) // exiting drops the child's hold
    });
    theirs.close();
    assert_eq!(join(&c), 0);
    assert_eq!(mine.recv_timeout(&mut buf, Duration::ZERO), Ok(3));
    assert_eq!(mine.recv_timeout(&mut buf, Duration::ZERO), Err(Error::Closed));
    assert_eq!(mine.poll(Some(Duration::ZERO)), Err(Error::Closed));
    assert_eq!(mine.send_timeout(b"x", Duration::ZERO), Err(Error::Closed));
}
