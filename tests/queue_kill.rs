//! Peer death in a queue, with real processes and SIGKILL.
//!
//! `kill_torture_4p4c`: 4 producer and 4 consumer processes share one queue of 64 slots (often
//! full, often empty, so kills land on producers blocked on a full ring, consumers blocked on an
//! empty one, and claims mid-way). The parent SIGKILLs a random one of the 8 after a random
//! delay and starts a replacement, `MPK_QUEUE_KILLS` times (default [`DEFAULT_KILLS`]; the long
//! run is `MPK_QUEUE_KILLS=1000 cargo nextest run --test queue_kill`). Every incarnation of a
//! producer has its own id; it records in shared memory how many puts it began (`started`) and
//! how many returned `Ok` (`done`). Messages carry (id, seq) and a body derived from them, and
//! consumers set bit (id, seq) of a shared bitmap. At the end (producers told to stop, the ring
//! drained, the queue closed, every process joined within a bound) the test checks:
//! - no message was torn, and none was received twice (a bit already set) or invented (a seq at
//!   or beyond its producer's `started`);
//! - every message whose put returned `Ok` was received, except at most one per killed consumer
//!   (the one it had claimed or taken and not yet recorded): so every message of a producer that
//!   was never killed arrives exactly once unless a killed consumer held it;
//! - messages lost in all (completed and in flight) ≤ kills, and repairs ≤ kills.
//!
//! `a_stopped_producer_is_not_robbed`: a producer of 256 KiB messages is stopped (SIGSTOP) until
//! a stop lands between its claim and its publish (seen as `len() > 0` with nothing to get), held
//! for 2 s while gets time out, then continued: nothing was repaired, and every message it put
//! arrives once, intact and in order.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use common::{PATIENCE, child};
use mpkit::{ByteQueue, Error, Process, Region};

const DEFAULT_KILLS: u64 = 150;
/// Messages per producer incarnation at most (its bitmap row).
const PER_PRODUCER: u64 = 1 << 14;
const MAX_MSG: usize = 64;
/// Bound of each call that must not time out.
const BOUND: Duration = Duration::from_secs(20);

fn kills() -> u64 {
    std::env::var("MPK_QUEUE_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_KILLS)
}

/// xorshift64.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as u64;
        Rng(t | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The message (id, seq): its length and every byte derive from the pair.
fn message(id: u64, seq: u64, buf: &mut [u8; MAX_MSG]) -> usize {
    let len = 8 + ((id * 31 + seq * 7) % (MAX_MSG as u64 - 7)) as usize;
    buf[..4].copy_from_slice(&(id as u32).to_le_bytes());
    buf[4..8].copy_from_slice(&(seq as u32).to_le_bytes());
    for (i, b) in buf[8..len].iter_mut().enumerate() {
        *b = (id as u8).wrapping_mul(13) ^ (seq as u8).wrapping_add(i as u8);
    }
    len
}

/// Shared records: words, then the bitmap.
struct Board {
    region: Region,
    ids: u64,
}

/// Word indices.
const STOP: usize = 0;
const ERRORS: usize = 1;
const FIRST_ERROR: usize = 2;
const WORDS: usize = 8;

impl Board {
    fn new(ids: u64) -> Board {
        let words = WORDS + 2 * ids as usize + (ids * PER_PRODUCER / 64) as usize;
        Board { region: Region::new(words * 8).unwrap(), ids }
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        let words = self.region.len() / 8;
        assert!(i < words);
        // SAFETY: in bounds (checked), 8-aligned in a page-aligned zeroed shared region that
        // lives as long as `self`; AtomicU64 accepts any bits.
        unsafe { &*self.region.as_ptr().cast::<AtomicU64>().wrapping_add(i) }
    }
    fn started(&self, id: u64) -> &AtomicU64 {
        self.word(WORDS + 2 * id as usize)
    }
    fn done(&self, id: u64) -> &AtomicU64 {
        self.word(WORDS + 2 * id as usize + 1)
    }
    fn bit(&self, id: u64, seq: u64) -> (&AtomicU64, u64) {
        let n = id * PER_PRODUCER + seq;
        (self.word(WORDS + 2 * self.ids as usize + (n / 64) as usize), 1 << (n % 64))
    }
    fn error(&self, code: u64) {
        self.word(ERRORS).fetch_add(1, Relaxed);
        let _ = self.word(FIRST_ERROR).compare_exchange(0, code, Relaxed, Relaxed);
    }
}

fn producer(q: &ByteQueue, b: &Board, id: u64) -> i32 {
    let mut buf = [0u8; MAX_MSG];
    for seq in 0..PER_PRODUCER {
        if b.word(STOP).load(Relaxed) != 0 {
            break;
        }
        let len = message(id, seq, &mut buf);
        b.started(id).store(seq + 1, Relaxed);
        match q.put_timeout(&buf[..len], BOUND) {
            Ok(()) => b.done(id).store(seq + 1, Relaxed),
            Err(_) => {
                b.error(1 << 32 | id);
                return 1;
            }
        }
    }
    while b.word(STOP).load(Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    0
}

fn consumer(q: &ByteQueue, b: &Board) -> i32 {
    let mut buf = [0u8; MAX_MSG];
    let mut want = [0u8; MAX_MSG];
    loop {
        match q.get_timeout(&mut buf, BOUND) {
            Ok(n) if n >= 8 => {
                let id = u64::from(u32::from_le_bytes(buf[..4].try_into().unwrap()));
                let seq = u64::from(u32::from_le_bytes(buf[4..8].try_into().unwrap()));
                if id >= b.ids || seq >= b.started(id).load(Relaxed) {
                    b.error(2 << 32 | id);
                    continue;
                }
                if message(id, seq, &mut want) != n || buf[..n] != want[..n] {
                    b.error(3 << 32 | id); // torn
                    continue;
                }
                let (word, bit) = b.bit(id, seq);
                if word.fetch_or(bit, Relaxed) & bit != 0 {
                    b.error(4 << 32 | id); // twice
                }
            }
            Ok(_) => b.error(5 << 32),
            Err(Error::Closed) => return 0,
            Err(_) => {
                b.error(6 << 32); // a get that must not time out did
                return 1;
            }
        }
    }
}

#[test]
fn kill_torture_4p4c() {
    let kills = kills();
    let ids = 4 + kills;
    let q = ByteQueue::new(64, MAX_MSG).unwrap();
    let b = Board::new(ids);
    let mut rng = Rng::seeded();
    let spawn_producer = |id: u64| child(|| producer(&q, &b, id));
    let spawn_consumer = || child(|| consumer(&q, &b));
    // Slots 0..4 are producers (with their ids), 4..8 consumers.
    let mut procs: Vec<(Process, Option<u64>)> = (0..4).map(|id| (spawn_producer(id), Some(id))).collect();
    procs.extend((0..4).map(|_| (spawn_consumer(), None)));
    let (mut next_id, mut killed_producers, mut consumer_kills) = (4, vec![false; ids as usize], 0);
    let start = Instant::now();
    for _ in 0..kills {
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let victim = rng.below(8) as usize;
        let (p, id) = &procs[victim];
        p.kill().unwrap();
        assert_eq!(p.join_timeout(PATIENCE), Ok(-libc::SIGKILL), "the victim did not die");
        procs[victim] = match *id {
            Some(id) => {
                killed_producers[id as usize] = true;
                next_id += 1;
                (spawn_producer(next_id - 1), Some(next_id - 1))
            }
            None => {
                consumer_kills += 1;
                (spawn_consumer(), None)
            }
        };
    }
    let torture = start.elapsed();
    b.word(STOP).store(1, Relaxed);
    for (p, _) in procs.iter().filter(|(_, id)| id.is_some()) {
        assert_eq!(p.join_timeout(PATIENCE), Ok(0), "a producer failed or hung");
    }
    common::wait_until("the consumers to drain the queue", || q.is_empty());
    q.close();
    for (p, _) in procs.iter().filter(|(_, id)| id.is_none()) {
        assert_eq!(p.join_timeout(PATIENCE), Ok(0), "a consumer failed or hung");
    }
    assert_eq!(b.word(ERRORS).load(Relaxed), 0, "first error {:#x}", b.word(FIRST_ERROR).load(Relaxed));

    let (mut missing_done, mut missing_in_flight, mut received) = (0, 0, 0);
    for id in 0..next_id {
        let (started, done) = (b.started(id).load(Relaxed), b.done(id).load(Relaxed));
        assert!(done == started || (done + 1 == started && killed_producers[id as usize]), "producer {id}");
        for seq in 0..PER_PRODUCER {
            let (word, bit) = b.bit(id, seq);
            let got = word.load(Relaxed) & bit != 0;
            received += u64::from(got);
            match (got, seq < done, seq < started) {
                (false, true, _) => missing_done += 1,
                (false, false, true) => missing_in_flight += 1,
                (true, _, false) => panic!("message ({id}, {seq}) was never put"),
                _ => {}
            }
        }
    }
    let repairs = q.repairs();
    eprintln!(
        "{kills} kills ({consumer_kills} consumers) in {torture:?}: {received} messages received, lost {missing_done} \
         completed + {missing_in_flight} in flight; repairs {repairs:?}"
    );
    assert!(missing_done <= consumer_kills, "completed puts lost beyond the killed consumers' one each");
    assert!(missing_done + missing_in_flight <= kills, "more messages lost than kills");
    assert!(repairs.dead_writers + repairs.dead_readers <= kills, "more repairs than kills");
    assert!(received > 0);
}

/// `/proc/<pid>/stat`'s state letter.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

fn signal(p: &Process, sig: i32) {
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(p.pid(), sig) }, 0);
}

#[test]
fn a_stopped_producer_is_not_robbed() {
    const BIG: usize = 256 << 10;
    let q = ByteQueue::new(8, BIG).unwrap();
    let b = Board::new(1);
    let body = |seq: u64, i: usize| (seq as u8) ^ (i as u8).wrapping_mul(7);
    let p = child(|| {
        let mut msg = vec![0u8; BIG];
        for seq in 0u64.. {
            if b.word(STOP).load(Relaxed) != 0 {
                return 0;
            }
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            msg[8..].iter_mut().enumerate().for_each(|(i, x)| *x = body(seq, i));
            if q.put_timeout(&msg, BOUND).is_err() {
                return 1;
            }
            b.done(0).store(seq + 1, Relaxed);
        }
        0
    });
    let mut buf = vec![0u8; BIG];
    let mut next = 0u64;
    // Checks a get's answer: true for the next message in order, intact.
    let take = |buf: &[u8], next: &mut u64, got: Result<usize, Error>| match got {
        Ok(n) => {
            assert_eq!(n, BIG);
            assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), *next, "out of order or duplicated");
            assert!(buf[8..].iter().enumerate().all(|(i, &x)| x == body(*next, i)), "torn message");
            *next += 1;
            true
        }
        Err(Error::Timeout) => false,
        Err(e) => panic!("{e}"),
    };
    let mut rng = Rng::seeded();
    let mut mid_claim = false;
    for _ in 0..500 {
        let until = Instant::now() + Duration::from_micros(200 + rng.below(2000));
        while Instant::now() < until {
            let got = q.try_get(&mut buf);
            take(&buf, &mut next, got);
        }
        signal(&p, libc::SIGSTOP);
        common::wait_until("the producer to stop", || proc_state(p.pid()) == Some('T'));
        while {
            let got = q.try_get(&mut buf);
            take(&buf, &mut next, got)
        } {}
        if !q.is_empty() {
            mid_claim = true; // claimed, not published, and its process stopped
            break;
        }
        signal(&p, libc::SIGCONT);
    }
    assert!(mid_claim, "no stop landed between a claim and its publish");
    let held = Instant::now();
    while held.elapsed() < Duration::from_secs(2) {
        let got = q.get_timeout(&mut buf, Duration::from_millis(100));
        assert!(!take(&buf, &mut next, got), "got a message its producer had not published");
    }
    assert_eq!(q.repairs(), mpkit::queue::Repairs::default(), "a stopped producer's slot was repaired");
    signal(&p, libc::SIGCONT);
    let resumed = next;
    while next < resumed + 16 {
        let got = q.get_timeout(&mut buf, BOUND);
        assert!(take(&buf, &mut next, got), "the continued producer's message did not come");
    }
    b.word(STOP).store(1, Relaxed);
    let drain = |buf: &mut Vec<u8>, next: &mut u64| {
        let got = q.get_timeout(buf, Duration::from_millis(200));
        take(buf, next, got)
    };
    while drain(&mut buf, &mut next) {}
    assert_eq!(p.join_timeout(PATIENCE), Ok(0));
    while drain(&mut buf, &mut next) {}
    assert_eq!(next, b.done(0).load(Relaxed), "a message put was not received");
    assert_eq!(q.repairs(), mpkit::queue::Repairs::default());
}
