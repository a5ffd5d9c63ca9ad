//! Kill-torture for pipes: two forked children talk through a pipe with a 4 KiB ring, and the
//! parent kills one of them (SIGKILL) at a random moment: before it started, mid-send of a small
//! message, part-way through streaming a large one (up to 16x the ring), mid-receive, or asleep.
//! Every message is numbered (sender, sequence number) and its length and every byte derive from
//! that number, so a torn, mixed, duplicated or reordered message is detected. Per round:
//! - the survivor gets `Closed` from `recv` once it has read everything the dead peer finished
//!   sending, and meanwhile exactly the messages 0, 1, .., n-1, each intact, where
//!   `done <= n <= started` (the victim's sends that returned `Ok`, and that it began): at most
//!   one message is lost per kill, the one the killed process had in flight;
//! - a peer killed mid-receive does not wedge its sender: the survivor's sends end with `Closed`
//!   (after at most a ring-full of successes), never `Timeout`, also mid-way through a streamed
//!   message;
//! - what the victim received before its death was intact and in order too (the survivor's
//!   messages go to the victim only, so "every message of a process never killed arrives exactly
//!   once" comes down to this: a gap-free prefix, no duplicate, nothing torn);
//! - every wait is bounded ([`BOUND`] per call that must not time out, [`JOIN`] per child), and
//!   both children end: the survivor with 0, the victim by the kill.
//!
//! `duplex_kill_torture` interleaves sends and receives at both ends (short timeouts, so that
//! sends to a busy peer time out and are aborted, then retried under the same number);
//! `one_way_kill_torture` streams only large messages and alternates killing the reader and the
//! writer. Rounds per test: `MPK_PIPE_KILLS` (default [`DEFAULT_KILLS`]); the long run is
//! `MPK_PIPE_KILLS=1000 cargo nextest run --test pipe_kill`. A summary goes to stderr.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use common::{child, flag, wait_until};
use mpkit::pipe::{Conn, pipe_with_capacity};
use mpkit::{Error, Process, Region};

/// Ring bytes per direction.
const RING: usize = 4096;
/// Sender, sequence number and length, as little-endian u32s.
const HEADER: usize = 12;
/// Longest message: 16 ring-fulls (the one-way test's largest).
const MAX_LEN: usize = 16 * RING;
/// Bound of each call that must not time out (the peer is known gone, or always ready).
const BOUND: Duration = Duration::from_secs(10);
/// Bound of each join, and of a child's wait to see its peer gone.
const JOIN: Duration = Duration::from_secs(20);
const DEFAULT_KILLS: u32 = 100;

fn kills() -> u32 {
    std::env::var("MPK_PIPE_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_KILLS)
}

/// splitmix64's finaliser.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// xorshift64, for timings.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
    fn micros(&mut self, n: u64) -> Duration {
        Duration::from_micros(self.below(n))
    }
}

fn key(sender: u32, seq: u32) -> u64 {
    mix(u64::from(sender) << 32 | u64::from(seq))
}

/// The length of message (sender, seq). `big`: 4 to 16 ring-fulls; otherwise mostly small, a
/// quarter up to 3 ring-fulls (streamed if over one).
fn len_of(big: bool, sender: u32, seq: u32) -> usize {
    let k = key(sender, seq);
    let r = (k >> 8) as usize;
    match (big, k % 4) {
        (true, _) => 4 * RING + r % (12 * RING),
        (false, 0) => HEADER + r % (3 * RING - HEADER),
        (false, _) => HEADER + r % 256,
    }
}

/// The body word `i` of message `k`: one to one in `k ^ i`, so that a word from another message
/// or another place in this one shows.
fn word(k: u64, i: usize) -> [u8; 8] {
    (k ^ i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()
}

/// Writes message (sender, seq) at the start of `out` and returns it.
fn compose(out: &mut [u8], big: bool, sender: u32, seq: u32) -> &[u8] {
    let len = len_of(big, sender, seq);
    let msg = &mut out[..len];
    for (i, v) in [sender, seq, len as u32].into_iter().enumerate() {
        msg[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    let k = key(sender, seq);
    for (i, chunk) in msg[HEADER..].chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&word(k, i)[..chunk.len()]);
    }
    msg
}

/// A child's first fault: its code (an index in [`FAULTS`]) and a detail.
#[derive(Debug)]
struct Fault(u32, u32);

const FAULTS: [&str; 12] = [
    "none",
    "message shorter than its header (detail: its length)",
    "message from the wrong sender (detail: the sender in it)",
    "sequence number out of order: gap or duplicate (detail: the one received)",
    "wrong length (detail: the length received)",
    "torn or mixed body (detail: its sequence number)",
    "recv timed out although the peer is gone or always sending",
    "send timed out although the peer is gone or always receiving",
    "send failed (detail: error code)",
    "recv failed (detail: error code)",
    "the peer's end never read as gone",
    "sends to a dead peer never ended in Closed",
];
const SHORT: u32 = 1;
const SENDER: u32 = 2;
const ORDER: u32 = 3;
const LENGTH: u32 = 4;
const TORN: u32 = 5;
const RECV_TIMEOUT: u32 = 6;
const SEND_TIMEOUT: u32 = 7;
const SEND_FAILED: u32 = 8;
const RECV_FAILED: u32 = 9;
const NEVER_CLOSED: u32 = 10;
const SENDS_NEVER_CLOSED: u32 = 11;

fn code_of(e: Error) -> u32 {
    match e {
        Error::Timeout => 1,
        Error::Closed => 2,
        Error::MsgSize { .. } => 3,
        Error::BadObject => 4,
        Error::State => 5,
        _ => 99,
    }
}

/// Checks that `msg` is message (sender, seq), whole.
fn check(msg: &[u8], big: bool, sender: u32, seq: u32) -> Result<(), Fault> {
    if msg.len() < HEADER {
        return Err(Fault(SHORT, msg.len() as u32));
    }
    let field = |i: usize| u32::from_le_bytes(msg[4 * i..4 * i + 4].try_into().unwrap());
    if field(0) != sender {
        return Err(Fault(SENDER, field(0)));
    }
    if field(1) != seq {
        return Err(Fault(ORDER, field(1)));
    }
    if field(2) as usize != msg.len() || msg.len() != len_of(big, sender, seq) {
        return Err(Fault(LENGTH, msg.len() as u32));
    }
    let k = key(sender, seq);
    if !msg[HEADER..].chunks(8).enumerate().all(|(i, c)| *c == word(k, i)[..c.len()]) {
        return Err(Fault(TORN, seq));
    }
    Ok(())
}

/// The words each child keeps in the shared board, for the parent to read after the round.
#[derive(Clone, Copy)]
enum W {
    /// `seq + 1` of the message it is sending, stored before each attempt.
    Started,
    /// Its sends that returned `Ok`.
    Done,
    /// The messages it received, all checked.
    Got,
    /// Its first fault and the detail.
    Fault,
    Detail,
    /// What it is doing: one of [`PHASES`].
    Phase,
    /// Its sends that timed out (aborted, then retried under the same number).
    Retries,
}
const PHASES: [&str; 5] =
    ["not started", "between calls", "sending a small message", "sending a streamed message", "receiving"];
const BETWEEN: u32 = 1;
const SENDING: u32 = 2;
const STREAMING: u32 = 3;
const RECEIVING: u32 = 4;

/// A shared anonymous region, inherited by the children.
struct Board(Region);

impl Board {
    fn at(&self, who: u32, w: W) -> &AtomicU32 {
        flag(&self.0, who as usize * 8 + w as usize)
    }
}

/// What a child does with its end.
#[derive(Clone, Copy)]
struct Mode {
    send: bool,
    recv: bool,
    /// Only large messages (4 to 16 ring-fulls).
    big: bool,
}
const DUPLEX: Mode = Mode { send: true, recv: true, big: false };
const READER: Mode = Mode { send: false, recv: true, big: true };
const WRITER: Mode = Mode { send: true, recv: false, big: true };

#[derive(PartialEq)]
enum Outcome {
    Done,
    Later,
    Closed,
}

/// One child: its end, its buffers (allocated before the fork) and its counters.
struct Peer<'a> {
    me: u32,
    mode: Mode,
    end: &'a mut Conn,
    board: &'a Board,
    out: &'a mut [u8],
    inbox: &'a mut [u8],
    rng: Rng,
    next: u32,
    expect: u32,
}

impl<'a> Peer<'a> {
    fn new(
        me: u32,
        mode: Mode,
        end: &'a mut Conn,
        board: &'a Board,
        out: &'a mut [u8],
        inbox: &'a mut [u8],
        seed: u64,
    ) -> Self {
        Peer { me, mode, end, board, out, inbox, rng: Rng::new(seed), next: 0, expect: 0 }
    }

    fn word(&self, w: W) -> &AtomicU32 {
        self.board.at(self.me, w)
    }

    /// Tries to send message `next`; `patient`: a timeout is a fault, else it is retried later.
    fn send(&mut self, timeout: Duration, patient: bool) -> Result<Outcome, Fault> {
        let msg = compose(self.out, self.mode.big, self.me, self.next);
        // Streamed as the pipe does it: header and padded payload larger than the ring.
        let phase = if 8 + msg.len().next_multiple_of(8) > RING { STREAMING } else { SENDING };
        self.board.at(self.me, W::Started).store(self.next + 1, Relaxed);
        self.board.at(self.me, W::Phase).store(phase, Relaxed);
        let sent = self.end.send_timeout(msg, timeout);
        self.word(W::Phase).store(BETWEEN, Relaxed);
        match sent {
            Ok(()) => {
                self.next += 1;
                self.word(W::Done).store(self.next, Relaxed);
                Ok(Outcome::Done)
            }
            Err(Error::Timeout) if !patient => {
                self.word(W::Retries).fetch_add(1, Relaxed);
                Ok(Outcome::Later)
            }
            Err(Error::Timeout) => Err(Fault(SEND_TIMEOUT, self.next)),
            Err(Error::Closed) => Ok(Outcome::Closed),
            Err(e) => Err(Fault(SEND_FAILED, code_of(e))),
        }
    }

    /// Receives one message and checks it is the next one from the peer.
    fn recv(&mut self, timeout: Duration, patient: bool) -> Result<Outcome, Fault> {
        self.word(W::Phase).store(RECEIVING, Relaxed);
        let got = self.end.recv_timeout(self.inbox, timeout);
        self.word(W::Phase).store(BETWEEN, Relaxed);
        match got {
            Ok(n) => {
                check(&self.inbox[..n], self.mode.big, 1 - self.me, self.expect)?;
                self.expect += 1;
                self.word(W::Got).store(self.expect, Relaxed);
                Ok(Outcome::Done)
            }
            Err(Error::Timeout) if !patient => Ok(Outcome::Later),
            Err(Error::Timeout) => Err(Fault(RECV_TIMEOUT, self.expect)),
            Err(Error::Closed) => Ok(Outcome::Closed),
            Err(e) => Err(Fault(RECV_FAILED, code_of(e))),
        }
    }

    /// Talks until the peer is gone, then checks that both directions say so in bounded time.
    fn run(&mut self) -> Result<(), Fault> {
        self.word(W::Phase).store(BETWEEN, Relaxed);
        // Duplex ends wait briefly (a send to a peer that is sending too times out and is
        // retried); a one-way end waits up to BOUND, its peer always being ready.
        let duplex = self.mode.send && self.mode.recv;
        let give_up = Instant::now() + JOIN;
        'talk: loop {
            if Instant::now() > give_up {
                return Err(Fault(NEVER_CLOSED, 0));
            }
            // Duplex: a burst of 1 to 4 sends, then what has come.
            let burst = if duplex { 1 + self.rng.below(4) } else { u64::from(self.mode.send) };
            for _ in 0..burst {
                let t = if duplex { self.rng.micros(2000) } else { BOUND };
                if self.send(t, !duplex)? == Outcome::Closed {
                    break 'talk;
                }
            }
            // Now and then a slow reader, so that finished messages wait in the ring while their
            // sender dies (then the reader must get them before `Closed`).
            if duplex && self.rng.below(8) == 0 {
                std::thread::sleep(self.rng.micros(300));
            }
            while self.mode.recv {
                let t = if duplex { self.rng.micros(100) } else { BOUND };
                match self.recv(t, !duplex)? {
                    Outcome::Done => {}
                    Outcome::Later => break,
                    Outcome::Closed => return self.after_eof(),
                }
            }
        }
        // A send said Closed: what the peer sent before it died is still to be read.
        if self.mode.recv {
            while self.recv(BOUND, true)? != Outcome::Closed {}
            return self.after_eof();
        }
        Ok(())
    }

    /// `recv` said `Closed`: sends succeed while the ring has room, then say `Closed`.
    fn after_eof(&mut self) -> Result<(), Fault> {
        if !self.mode.send {
            return Ok(());
        }
        for _ in 0..RING / 8 {
            if self.send(BOUND, true)? == Outcome::Closed {
                return Ok(());
            }
        }
        Err(Fault(SENDS_NEVER_CLOSED, self.next))
    }
}

/// A child's body: runs `peer` and returns its exit code, its fault recorded on the board.
fn body(mut peer: Peer) -> i32 {
    match peer.run() {
        Ok(()) => 0,
        Err(Fault(code, detail)) => {
            peer.word(W::Detail).store(detail, Relaxed);
            peer.word(W::Fault).store(code, Relaxed);
            code as i32
        }
    }
}

/// Kills the children if the test fails part-way.
struct KillOnDrop<'a>([&'a Process; 2]);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        for p in self.0 {
            let _ = p.kill();
        }
    }
}

/// What the rounds did, for the summary.
#[derive(Default)]
struct Tally {
    /// By what the victim was doing when it died.
    victim_phase: [u32; 5],
    /// Rounds whose survivor was sending when the kill was sent (its view just after).
    survivor_sending: u32,
    /// Rounds where the survivor had finished messages left to read when the kill came.
    unread_at_kill: u32,
    /// Messages from victims received by survivors, and lost.
    received: u64,
    lost: u64,
    /// Sends that timed out and were retried.
    retries: u64,
    /// Longest time from the kill to the survivor's exit.
    slowest: Duration,
}

/// One round: children 0 and 1 on the two ends of a fresh pipe (one-way: 0 reads, 1 writes);
/// `victim` is killed after a random delay.
fn round(r: u32, duplex: bool, victim: u32, tally: &mut Tally) {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    let mut rng = Rng::new(u64::from(r) << 32 | u64::from(nanos));
    let board = Board(Region::new(4096).unwrap());
    let (mut a, mut b) = pipe_with_capacity(RING, duplex).unwrap();
    let modes = if duplex { [DUPLEX, DUPLEX] } else { [READER, WRITER] };
    let [mut out0, mut in0, mut out1, mut in1] = [(); 4].map(|()| vec![0u8; MAX_LEN]);
    let seeds = [rng.below(u64::MAX), rng.below(u64::MAX)];
    let c0 = child(|| {
        b.close();
        body(Peer::new(0, modes[0], &mut a, &board, &mut out0, &mut in0, seeds[0]))
    });
    let c1 = child(|| {
        a.close();
        body(Peer::new(1, modes[1], &mut b, &board, &mut out1, &mut in1, seeds[1]))
    });
    let children = [&c0, &c1];
    let _guard = KillOnDrop(children);
    // The parent's copies: each end now lives in one child only.
    a.close();
    b.close();
    let survivor = 1 - victim;
    let (v, s) = (children[victim as usize], children[survivor as usize]);
    // Most kills come 0 to 5 ms after both children started, one in 8 at once.
    if rng.below(8) != 0 {
        wait_until("the children to start", || (0..2).all(|c| board.at(c, W::Phase).load(Relaxed) != 0));
        std::thread::sleep(rng.micros(5000));
    }
    v.kill().unwrap();
    let killed = Instant::now();
    let unread = board.at(victim, W::Done).load(Relaxed).saturating_sub(board.at(survivor, W::Got).load(Relaxed));
    tally.unread_at_kill += u32::from(unread > 0);
    if matches!(board.at(survivor, W::Phase).load(Relaxed), SENDING | STREAMING) {
        tally.survivor_sending += 1;
    }
    let joined = |p: &Process, who: &str| {
        p.join_timeout(JOIN).unwrap_or_else(|e| panic!("round {r}: the {who} did not end within {JOIN:?} ({e:?})"))
    };
    let s_code = joined(s, "survivor");
    tally.slowest = tally.slowest.max(killed.elapsed());
    let v_code = joined(v, "victim");
    let get = |who: u32, w: W| board.at(who, w).load(Relaxed);
    let fault = |who: u32| {
        let (code, detail) = (get(who, W::Fault), get(who, W::Detail));
        format!("{} ({detail})", FAULTS.get(code as usize).unwrap_or(&"?"))
    };
    let what = if duplex { "duplex" } else { "one-way" };
    assert_eq!(s_code, 0, "{what} round {r}: the survivor (child {survivor}) exited with: {}", fault(survivor));
    assert_eq!(get(victim, W::Fault), 0, "{what} round {r}: the victim (child {victim}) found: {}", fault(victim));
    assert_eq!(v_code, -9, "{what} round {r}: the victim (child {victim}) was not killed: {}", fault(victim));
    tally.victim_phase[get(victim, W::Phase) as usize] += 1;
    tally.retries += u64::from(get(0, W::Retries) + get(1, W::Retries));
    if modes[survivor as usize].recv {
        let (n, started, done) = (get(survivor, W::Got), get(victim, W::Started), get(victim, W::Done));
        assert!(
            done <= n && n <= started && started <= done + 1,
            "{what} round {r}: the survivor received {n} messages from the victim, which finished {done} \
             and began {started}"
        );
        tally.received += u64::from(n);
        tally.lost += u64::from(started - n);
    }
}

fn torture(duplex: bool) {
    let (rounds, t0) = (kills(), Instant::now());
    let mut tally = Tally::default();
    for r in 0..rounds {
        // One-way: even rounds kill the reader (0), odd ones the writer (1).
        round(r, duplex, r % 2, &mut tally);
    }
    let phases: Vec<String> = PHASES.iter().zip(tally.victim_phase).map(|(p, n)| format!("{n} {p}")).collect();
    let Tally { survivor_sending, unread_at_kill, received, lost, retries, slowest, .. } = tally;
    eprintln!(
        "{rounds} kills in {:?}; victims died: {}; survivors sending when the kill came: {survivor_sending}; \
         with finished messages still unread: {unread_at_kill}; messages from victims received: {received}, \
         lost: {lost} (at most one per kill); sends timed out and retried: {retries}; longest kill-to-exit of \
         a survivor: {slowest:?}",
        t0.elapsed(),
        phases.join(", "),
    );
}

#[test]
fn duplex_kill_torture() {
    torture(true);
}

#[test]
fn one_way_kill_torture() {
    torture(false);
}
