//! Writer death in a `SharedDict` and a `SharedList`, with real processes and SIGKILL.
//!
//! `kill_torture_dict`: 4 writer processes share one dict with 2 reader processes. The parent
//! SIGKILLs a random writer after a random delay (0–3 ms) and starts a replacement,
//! `MPK_DICT_KILLS` times (default [`DEFAULT_KILLS`]). Every writer incarnation has its own id
//! `w` and a deterministic plan of operations (a generator seeded by `w`): insert key `(w, s)`,
//! overwrite one of its live keys, delete one; keys are ints or strs (some over 256 bytes),
//! values ints or strs of varied lengths (some over 256 bytes, now and then 64 KiB and more, so
//! big blocks and page discards are exercised), each value derived from its key and the
//! operation that wrote it. Before an operation the writer records in shared memory that it
//! began it (`started`), after it returns that it is done (`done`). Readers `get` random keys
//! and iterate, checking every value against its key (a torn read shows as a mismatch), that
//! no key repeats in one iteration, and that no key was invented. At the end (every join
//! bounded) the parent replays each incarnation's plan: the dict holds exactly the effects of
//! its `done` operations, plus possibly all of the one in flight when it was killed; nothing
//! else; `len()` is the number of keys iterated and `repairs()` ≤ kills.
//!
//! `kill_torture_list`: the same with appends to a `SharedList`; every incarnation's items
//! appear in order, its completed appends all there, at most one more (the one in flight).
//!
//! `a_stopped_writer_does_not_block_readers`: a writer of 256 KiB values is stopped (SIGSTOP)
//! at random moments while a reader and a second writer run. What the design promises, and the
//! test asserts: while it is stopped outside its apply window, the reader's gets keep
//! returning; the other writer waits while the stopped one holds the lock and goes on after
//! SIGCONT; nothing is repaired. A stop that lands inside the apply window (`SEQ` odd) blocks
//! readers too (after their optimistic tries they wait for the lock): counted and printed.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime};

use common::{PATIENCE, child};
use mpkit::dict::item::Item;
use mpkit::{Process, Region, SharedDict, SharedList, Value};

const DEFAULT_KILLS: u64 = 500;
/// Operations per writer incarnation at most (then it idles until told to stop).
const MAX_OPS: u64 = 1 << 14;
/// Live keys an incarnation keeps at most (it deletes more often above).
const LIVE: usize = 12;
const WRITERS: usize = 4;
const READERS: usize = 2;

fn kills() -> u64 {
    std::env::var("MPK_DICT_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_KILLS)
}

/// splitmix64: a hash of the words given.
fn mix(words: &[u64]) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for &w in words {
        h = (h ^ w).wrapping_add(0x9e37_79b9_7f4a_7c15);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
    }
    h
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

/// The key `(w, s)`: an int for one `s` in three, else a str, one in eleven padded past 256 bytes.
fn key(w: u64, s: u64) -> Value {
    if s.is_multiple_of(3) {
        return Value::Int((w << 32 | s) as i64);
    }
    let mut k = format!("k{w}:{s}:");
    if s % 11 == 1 {
        k.extend(std::iter::repeat_n('#', 300));
    }
    Value::Str(k)
}

/// The `(w, s)` a key names, if it is one `key` makes.
fn parse_key(k: &Value) -> Option<(u64, u64)> {
    let (w, s) = match k {
        Value::Int(i) => ((*i as u64) >> 32, *i as u64 & 0xffff_ffff),
        Value::Str(st) => {
            let mut parts = st.strip_prefix('k')?.splitn(3, ':');
            (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?)
        }
        _ => return None,
    };
    (key(w, s) == *k).then_some((w, s))
}

/// The value operation `ver` writes at key `(w, s)`: its kind, length and bytes derive from the
/// three. Ints hold `ver` in their low half; strs start with `"{ver}:"`.
fn value(w: u64, s: u64, ver: u64) -> Value {
    let h = mix(&[w, s, ver]);
    if h.is_multiple_of(5) {
        return Value::Int(((h >> 16) << 32 | ver) as i64);
    }
    let len = match h % 97 {
        0 => 65536 + (h >> 8) as usize % 8192, // a big block: its pages are discarded when freed
        1..=20 => 257 + (h >> 8) as usize % 2000,
        21..=40 => 16, // one fixed size: overwritten in place
        _ => (h >> 8) as usize % 64,
    };
    let mut v = format!("{ver}:");
    v.extend((0..len).map(|i| (b'a' + (mix(&[h, i as u64 / 64]) as u8 ^ i as u8) % 26) as char));
    Value::Str(v)
}

/// Whether `v` is a value `value` makes for key `(w, s)` (some version).
fn well_formed(w: u64, s: u64, v: &Value) -> bool {
    let ver = match v {
        Value::Int(i) => *i as u64 & 0xffff_ffff,
        Value::Str(st) => match st.split_once(':').and_then(|(ver, _)| ver.parse().ok()) {
            Some(ver) => ver,
            None => return false,
        },
        _ => return false,
    };
    value(w, s, ver) == *v
}

/// One step of a writer's plan.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// `d[(w, s)] = value(w, s, ver)`.
    Set { s: u64, ver: u64 },
    /// `del d[(w, s)]`.
    Del { s: u64 },
}

/// An incarnation's deterministic plan (the writer and the checker run the same one).
struct Plan {
    rng: Rng,
    i: u64,
    live: Vec<u64>,
}

impl Plan {
    fn new(w: u64, seed: u64) -> Plan {
        Plan { rng: Rng(mix(&[seed, w]) | 1), i: 0, live: Vec::new() }
    }

    fn next(&mut self) -> Op {
        let i = self.i;
        self.i += 1;
        let r = self.rng.below(100);
        let n = self.live.len() as u64;
        if n > 0 && (r < 20 || (self.live.len() > LIVE && r < 60)) {
            Op::Del { s: self.live.swap_remove(self.rng.below(n) as usize) }
        } else if n > 0 && r < 50 {
            Op::Set { s: self.live[self.rng.below(n) as usize], ver: i }
        } else {
            self.live.push(i);
            Op::Set { s: i, ver: i }
        }
    }
}

/// Applies `op` of incarnation `w` to the model `m`.
fn model_apply(m: &mut BTreeMap<u64, u64>, op: Op) {
    match op {
        Op::Set { s, ver } => {
            m.insert(s, ver);
        }
        Op::Del { s } => {
            m.remove(&s);
        }
    }
}

/// Shared records: a few words, then `started` and `done` per incarnation.
struct Board {
    region: Region,
}

const STOP: usize = 0;
const ERRORS: usize = 1;
const FIRST_ERROR: usize = 2;
/// Incarnations spawned so far (ids below it are valid).
const IDS: usize = 3;
const READS: usize = 4;
const ITERS: usize = 5;
const WORDS: usize = 8;

impl Board {
    fn new(ids: u64) -> Board {
        Board { region: Region::new((WORDS + 2 * ids as usize) * 8).unwrap() }
    }
    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.region.len() / 8);
        // SAFETY: in bounds (checked), 8-aligned in a page-aligned zeroed shared region that
        // lives as long as `self`; AtomicU64 accepts any bits.
        unsafe { &*self.region.as_ptr().cast::<AtomicU64>().wrapping_add(i) }
    }
    fn started(&self, w: u64) -> &AtomicU64 {
        self.word(WORDS + 2 * w as usize)
    }
    fn done(&self, w: u64) -> &AtomicU64 {
        self.word(WORDS + 2 * w as usize + 1)
    }
    fn error(&self, code: u64) {
        self.word(ERRORS).fetch_add(1, Relaxed);
        let _ = self.word(FIRST_ERROR).compare_exchange(0, code, Relaxed, Relaxed);
    }
    fn stopped(&self) -> bool {
        self.word(STOP).load(Relaxed) != 0
    }
    fn idle_until_stop(&self) {
        while !self.stopped() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn dict_writer(d: &SharedDict, b: &Board, w: u64, seed: u64) -> i32 {
    let mut plan = Plan::new(w, seed);
    for i in 0..MAX_OPS {
        if b.stopped() {
            return 0;
        }
        let op = plan.next();
        b.started(w).store(i + 1, Relaxed);
        let r = match op {
            Op::Set { s, ver } => d.set(&key(w, s), &value(w, s, ver)),
            Op::Del { s } => d.del(&key(w, s)),
        };
        if r.is_err() {
            b.error(1 << 32 | w);
            return 1;
        }
        b.done(w).store(i + 1, Relaxed);
    }
    b.idle_until_stop();
    0
}

/// Checks a key and value a reader saw: a key `key` makes, of an incarnation that began the
/// operation with that key, with a well-formed value.
fn check_seen(b: &Board, k: &Value, v: &Value) -> Option<(u64, u64)> {
    let Some((w, s)) = parse_key(k) else {
        b.error(2 << 32);
        return None;
    };
    if w >= b.word(IDS).load(Relaxed) || s >= b.started(w).load(Relaxed) {
        b.error(3 << 32 | w); // invented
    } else if !well_formed(w, s, v) {
        b.error(4 << 32 | w); // torn or foreign
    }
    Some((w, s))
}

fn dict_reader(d: &SharedDict, b: &Board, seed: u64) -> i32 {
    let mut rng = Rng(seed | 1);
    while !b.stopped() {
        for _ in 0..200 {
            let ids = b.word(IDS).load(Relaxed);
            let w = rng.below(ids);
            let s = rng.below(b.started(w).load(Relaxed).max(1));
            let k = key(w, s);
            match d.get(&k) {
                Ok(Some(v)) => {
                    check_seen(b, &k, &v);
                }
                Ok(None) => {}
                Err(_) => b.error(5 << 32 | w),
            }
            b.word(READS).fetch_add(1, Relaxed);
        }
        let mut seen = HashSet::new();
        for kv in d.iter() {
            match kv {
                Ok((k, v)) => {
                    if let Some(ws) = check_seen(b, &k, &v)
                        && !seen.insert(ws)
                    {
                        b.error(6 << 32 | ws.0); // a key twice in one iteration
                    }
                }
                Err(_) => b.error(7 << 32),
            }
        }
        b.word(ITERS).fetch_add(1, Relaxed);
    }
    0
}

/// Kills a random writer `kills` times (after 0–3 ms each), replacing it with a new incarnation
/// from `spawn(id)`; returns the ids spawned and the time it took.
fn torture(b: &Board, kills: u64, writers: &mut [(Process, u64)], spawn: impl Fn(u64) -> Process) -> (u64, Duration) {
    let mut rng = Rng::seeded();
    let mut next_id = writers.len() as u64;
    let start = Instant::now();
    for _ in 0..kills {
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        let victim = rng.below(writers.len() as u64) as usize;
        let p = &writers[victim].0;
        p.kill().unwrap();
        assert_eq!(p.join_timeout(PATIENCE), Ok(-libc::SIGKILL), "the victim did not die");
        b.word(IDS).store(next_id + 1, Relaxed);
        writers[victim] = (spawn(next_id), next_id);
        next_id += 1;
    }
    (next_id, start.elapsed())
}

fn stop_all(b: &Board, writers: &[(Process, u64)], readers: &[Process]) {
    b.word(STOP).store(1, Relaxed);
    for (p, _) in writers {
        assert_eq!(p.join_timeout(PATIENCE), Ok(0), "a writer failed or hung");
    }
    for p in readers {
        assert_eq!(p.join_timeout(PATIENCE), Ok(0), "a reader failed or hung");
    }
    assert_eq!(b.word(ERRORS).load(Relaxed), 0, "first error {:#x}", b.word(FIRST_ERROR).load(Relaxed));
}

#[test]
fn kill_torture_dict() {
    let kills = kills();
    let ids = WRITERS as u64 + kills;
    let d = SharedDict::new().unwrap();
    let b = Board::new(ids);
    let seed = Rng::seeded().0;
    b.word(IDS).store(WRITERS as u64, Relaxed);
    let spawn = |w: u64| child(|| dict_writer(&d, &b, w, seed));
    let mut writers: Vec<(Process, u64)> = (0..WRITERS as u64).map(|w| (spawn(w), w)).collect();
    let readers: Vec<Process> = (0..READERS as u64).map(|r| child(|| dict_reader(&d, &b, mix(&[seed, r])))).collect();
    let (next_id, took) = torture(&b, kills, &mut writers, spawn);
    stop_all(&b, &writers, &readers);

    // What the dict holds, by incarnation.
    let mut held: Vec<BTreeMap<u64, Value>> = vec![BTreeMap::new(); next_id as usize];
    let mut iterated = 0;
    for kv in d.iter() {
        let (k, v) = kv.unwrap();
        let (w, s) = parse_key(&k).unwrap_or_else(|| panic!("a key no writer makes: {k}"));
        assert!(w < next_id, "a key of an incarnation never spawned: {k}");
        assert!(held[w as usize].insert(s, v).is_none(), "key {k} iterated twice");
        iterated += 1;
    }
    assert_eq!(d.len(), iterated, "len() is not the number of keys iterated");
    let (mut ops, mut in_flight_done, mut in_flight_not) = (0, 0, 0);
    for w in 0..next_id {
        let (started, done) = (b.started(w).load(Relaxed), b.done(w).load(Relaxed));
        assert!(done == started || done + 1 == started, "incarnation {w}: started {started}, done {done}");
        ops += done;
        let mut plan = Plan::new(w, seed);
        let mut m = BTreeMap::new();
        for _ in 0..done {
            model_apply(&mut m, plan.next());
        }
        let as_values = |m: &BTreeMap<u64, u64>| -> BTreeMap<u64, Value> {
            m.iter().map(|(&s, &ver)| (s, value(w, s, ver))).collect()
        };
        let got = &held[w as usize];
        if *got == as_values(&m) {
            in_flight_not += u64::from(started > done);
            continue;
        }
        assert!(started > done, "incarnation {w} (never in flight at a kill): the dict differs from its ops");
        let op = plan.next();
        model_apply(&mut m, op);
        assert!(*got == as_values(&m), "incarnation {w}: neither without nor with its in-flight {op:?}");
        in_flight_done += 1;
    }
    let repairs = d.repairs();
    eprintln!(
        "dict: {kills} kills in {took:?}, {next_id} incarnations, {ops} ops completed, {iterated} keys at the end; \
         in flight at a kill: {in_flight_done} done, {in_flight_not} not done; repairs {repairs}; \
         readers: {} gets, {} iterations; heap {} KiB, resident {} KiB",
        b.word(READS).load(Relaxed),
        b.word(ITERS).load(Relaxed),
        d.heap_bytes() >> 10,
        d.memory_used() >> 10,
    );
    assert!(repairs <= kills, "more repairs than kills");
    assert!(ops > 0);
}

/// The item incarnation `w` appends `s`-th: `key(w, s)` encodes `(w, s)`; one in three is an int.
fn list_item(w: u64, s: u64) -> Value {
    key(w, s)
}

fn list_writer(l: &SharedList, b: &Board, w: u64) -> i32 {
    for i in 0..MAX_OPS / 4 {
        if b.stopped() {
            return 0;
        }
        b.started(w).store(i + 1, Relaxed);
        if l.append(&list_item(w, i)).is_err() {
            b.error(1 << 32 | w);
            return 1;
        }
        b.done(w).store(i + 1, Relaxed);
    }
    b.idle_until_stop();
    0
}

fn list_reader(l: &SharedList, b: &Board, seed: u64) -> i32 {
    let mut rng = Rng(seed | 1);
    while !b.stopped() {
        for _ in 0..200 {
            let n = l.len() as u64;
            if n == 0 {
                continue;
            }
            match l.get(rng.below(n) as i64) {
                Ok(v) => {
                    if parse_key(&v)
                        .is_none_or(|(w, s)| w >= b.word(IDS).load(Relaxed) || s >= b.started(w).load(Relaxed))
                    {
                        b.error(2 << 32);
                    }
                }
                Err(_) => b.error(5 << 32), // the list only grows: every index below len() exists
            }
            b.word(READS).fetch_add(1, Relaxed);
        }
        b.word(ITERS).fetch_add(1, Relaxed);
    }
    0
}

#[test]
fn kill_torture_list() {
    let kills = kills();
    let ids = WRITERS as u64 + kills;
    let l = SharedList::new().unwrap();
    let b = Board::new(ids);
    let seed = Rng::seeded().0;
    b.word(IDS).store(WRITERS as u64, Relaxed);
    let spawn = |w: u64| child(|| list_writer(&l, &b, w));
    let mut writers: Vec<(Process, u64)> = (0..WRITERS as u64).map(|w| (spawn(w), w)).collect();
    let readers: Vec<Process> = (0..READERS as u64).map(|r| child(|| list_reader(&l, &b, mix(&[seed, r])))).collect();
    let (next_id, took) = torture(&b, kills, &mut writers, spawn);
    stop_all(&b, &writers, &readers);

    let items = l.to_vec().unwrap();
    assert_eq!(items.len(), l.len());
    let mut count = vec![0u64; next_id as usize];
    for v in &items {
        let (w, s) = parse_key(v).unwrap_or_else(|| panic!("an item no writer appends: {v}"));
        assert!(w < next_id, "an item of an incarnation never spawned: {v}");
        assert_eq!(s, count[w as usize], "incarnation {w}'s items out of order, repeated or missing");
        count[w as usize] += 1;
    }
    let (mut in_flight_done, mut in_flight_not) = (0, 0);
    for w in 0..next_id {
        let (started, done, n) = (b.started(w).load(Relaxed), b.done(w).load(Relaxed), count[w as usize]);
        assert!(
            n == done || (n == done + 1 && started == n),
            "incarnation {w}: {n} items, started {started}, done {done}"
        );
        in_flight_done += u64::from(n > done);
        in_flight_not += u64::from(started > n);
    }
    let repairs = l.repairs();
    eprintln!(
        "list: {kills} kills in {took:?}, {next_id} incarnations, {} items at the end; in flight at a kill: \
         {in_flight_done} done, {in_flight_not} not done; repairs {repairs}; readers: {} gets",
        items.len(),
        b.word(READS).load(Relaxed),
    );
    assert!(repairs <= kills, "more repairs than kills");
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
fn a_stopped_writer_does_not_block_readers() {
    const BIG: usize = 256 << 10;
    // Progress counters: the reader's gets, the small writer's sets.
    const R: usize = WORDS;
    const W2: usize = WORDS + 1;
    let d = SharedDict::new().unwrap();
    let b = Board::new(4);
    d.set(0, 0).unwrap();
    let big = child(|| {
        let mut v = vec![b'x'; BIG];
        for i in 0u64.. {
            if b.stopped() {
                return 0;
            }
            v[..8].copy_from_slice(&(i % 10_000_000 + 10_000_000).to_string().as_bytes()[..8]);
            if d.set(1 + i as i64 % 4, Item::Bytes(&v)).is_err() {
                return 1;
            }
        }
        0
    });
    let small = child(|| {
        for i in 0u64.. {
            if b.stopped() {
                return 0;
            }
            if d.set(0, i as i64).is_err() {
                return 1;
            }
            b.word(W2).fetch_add(1, Relaxed);
        }
        0
    });
    let reader = child(|| {
        while !b.stopped() {
            match d.get(0) {
                Ok(Some(Value::Int(_))) => {}
                _ => return 1,
            }
            b.word(R).fetch_add(1, Relaxed);
        }
        0
    });
    let progress = |i: usize| {
        let b = &b;
        let before = b.word(i).load(Relaxed);
        move || b.word(i).load(Relaxed) > before
    };
    common::wait_until("the reader and the small writer to start", || {
        b.word(R).load(Relaxed) > 0 && b.word(W2).load(Relaxed) > 0
    });
    let mut rng = Rng::seeded();
    let (mut stops, mut promised, mut readers_blocked, mut unlocked) = (0, 0, 0, 0);
    while promised < 5 && stops < 500 {
        std::thread::sleep(Duration::from_micros(200 + rng.below(2000)));
        signal(&big, libc::SIGSTOP);
        common::wait_until("the writer to stop", || proc_state(big.pid()) == Some('T'));
        stops += 1;
        let (r0, w0) = (b.word(R).load(Relaxed), b.word(W2).load(Relaxed));
        std::thread::sleep(Duration::from_millis(30));
        let (r1, w1) = (b.word(R).load(Relaxed), b.word(W2).load(Relaxed));
        match (r1 > r0, w1 > w0) {
            (true, false) => promised += 1, // it holds the lock outside its apply: readers go on
            (false, false) => readers_blocked += 1, // stopped inside its apply window (SEQ odd)
            (_, true) => unlocked += 1,     // stopped between two operations
        }
        let (reader_goes, writer_goes) = (progress(R), progress(W2));
        signal(&big, libc::SIGCONT);
        common::wait_until("the reader to go on after SIGCONT", reader_goes);
        common::wait_until("the small writer to go on after SIGCONT", writer_goes);
    }
    eprintln!(
        "stopped writer: {stops} stops: {promised} holding the lock (readers went on, the other writer waited), \
         {readers_blocked} inside the apply window (readers waited too), {unlocked} not holding it"
    );
    assert!(promised >= 5, "no stop landed while the writer held the lock outside its apply window");
    b.word(STOP).store(1, Relaxed);
    for p in [&big, &small, &reader] {
        assert_eq!(p.join_timeout(PATIENCE), Ok(0), "a process failed or hung");
    }
    assert_eq!(d.repairs(), 0, "a stopped writer's operation was repaired");
    for k in 1..5 {
        if let Some(v) = d.get(k).unwrap() {
            assert!(matches!(v, Value::Bytes(ref b) if b.len() == BIG && b[8..].iter().all(|&x| x == b'x')));
        }
    }
}
