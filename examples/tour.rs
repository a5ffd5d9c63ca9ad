//! A tour of mpkit through the examples of the Python multiprocessing tutorial it is modelled
//! on, in order: Pool.map, Process, process ids, Queue, Pipe, Lock (then RLock and Semaphore),
//! Value/Array, Manager's dict and list, the Pool(processes=4) walk-through, what mpkit adds to
//! it (time limits, map_async, cancel, starmap), and the closing serial/threads/pool comparison.
//!
//!     cargo run --release --example tour
//!
//! Each child prints and then flushes stdout before it returns, because children end with
//! `_exit`, which does not flush. This program is single-threaded when it forks, so its children
//! may use std I/O (see the fork rules in `mpkit::process`).

#![allow(clippy::approx_constant)] // the tutorial's 3.1415927

use std::io::Write;

use std::time::{Duration, Instant};

use mpkit::dict::item::Item;
use mpkit::{
    Barrier, ByteQueue, Condvar, Error, Event, Lock, Pool, PoolOptions, Process, SharedArray, SharedValue, pipe,
};
use mpkit::{Conn, RLock, Semaphore, SharedDict, SharedList, Waitable};

/// Starts `f` in a child and waits for it, like `p.start(); p.join()`.
fn run_child(f: impl FnOnce() -> i32) {
    std::io::stdout().flush().unwrap(); // nothing buffered may be duplicated into the child
    // SAFETY: the tour never starts a thread, so the child may do anything.
    let p = unsafe { Process::spawn(f) }.expect("fork");
    assert_eq!(p.join(), Ok(0), "child failed");
}

fn print_flush(s: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").unwrap();
    out.flush().unwrap();
}

fn info(title: &str) {
    print_flush(title);
    print_flush("module name: __main__");
    print_flush(&format!("parent process: {}", std::os::unix::process::parent_id()));
    print_flush(&format!("process id: {}", std::process::id()));
}

fn f(x: i64) -> i64 {
    x * x
}

fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn getpid(_: u8) -> u32 {
    std::process::id()
}

fn sleep_s(secs: u64) -> u64 {
    std::thread::sleep(Duration::from_secs(secs));
    secs
}

/// CPU-heavy work: `rounds` dependent multiply/xor steps.
fn burn(rounds: u64) -> u64 {
    let mut h = rounds;
    for _ in 0..rounds {
        h = h.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        h ^= h >> 33;
    }
    h
}

fn pool(workers: usize) -> Result<Pool, Error> {
    std::io::stdout().flush().unwrap();
    // SAFETY: the tour starts no thread before its pools; tasks are plain functions.
    unsafe { Pool::new(&PoolOptions { workers, ..PoolOptions::default() }) }
}

/// Event, Condition and Barrier, printing what `c-examples/{event,condition,barrier}.c` print.
/// `multiprocessing.connection.wait` over three pipes and a process: three senders each send one
/// message and exit (their pipe then reads as end-of-file), a worker exits with 7; the parent
/// handles whichever is ready, in the order things happen (c-examples/wait.c prints the same).
fn wait_for_any() -> Result<(), Error> {
    println!("\n== wait(): three pipes and a process, whichever is ready first");
    let (mut rx, mut tx): (Vec<Conn>, Vec<Conn>) =
        (0..3).map(|_| pipe(false)).collect::<Result<Vec<_>, _>>()?.into_iter().unzip();
    std::io::stdout().flush().unwrap();
    let senders: Vec<Process> = (0..3)
        .map(|i| {
            // SAFETY: single-threaded parent.
            unsafe {
                Process::spawn(|| {
                    std::thread::sleep(Duration::from_millis(10 * i as u64));
                    i32::from(tx[i].send(format!("hello from sender {i}").as_bytes()).is_err())
                })
            }
        })
        .collect::<Result<_, _>>()?;
    // SAFETY: single-threaded parent.
    let mut worker = Some(unsafe {
        Process::spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            7
        })
    }?);
    tx.iter_mut().for_each(Conn::close); // only the senders write
    let mut open = [true; 3];
    loop {
        let pipes: Vec<usize> = (0..3).filter(|&i| open[i]).collect();
        let mut items: Vec<&mut dyn Waitable> = Vec::new();
        for (i, c) in rx.iter_mut().enumerate() {
            if open[i] {
                items.push(c);
            }
        }
        if let Some(w) = worker.as_mut() {
            items.push(w);
        }
        if items.is_empty() {
            break;
        }
        let ready = mpkit::wait(&mut items, Some(Duration::from_secs(10)))?;
        drop(items);
        for k in ready {
            let Some(&i) = pipes.get(k) else {
                let code = worker.take().expect("the worker").join()?;
                println!("worker exited with {code}");
                continue;
            };
            let mut buf = [0u8; 64];
            match rx[i].recv_until(&mut buf, mpkit::Deadline::NOW) {
                Ok(n) => println!("pipe {i}: {}", String::from_utf8_lossy(&buf[..n])),
                Err(Error::Closed) => {
                    println!("pipe {i}: end of file");
                    open[i] = false;
                }
                Err(e) => return Err(e),
            }
        }
    }
    for p in senders {
        assert_eq!(p.join(), Ok(0), "a sender failed");
    }
    Ok(())
}

fn sync_family() -> Result<(), Error> {
    let patience = Duration::from_secs(10);
    let spawn = |f: &dyn Fn() -> i32| {
        std::io::stdout().flush().unwrap();
        // SAFETY: single-threaded parent.
        unsafe { Process::spawn(f) }.expect("fork")
    };

    println!("\n== Event: a start signal for four processes");
    let go = Event::new()?;
    let procs: Vec<Process> = (0..4)
        .map(|i| {
            spawn(&|| match go.wait_timeout(patience) {
                Ok(()) => {
                    print_flush(&format!("worker {i} started"));
                    0
                }
                Err(_) => 1,
            })
        })
        .collect();
    go.set(); // wakes every waiter at once
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }
    println!("all 4 workers started, event set: {}", go.is_set());

    println!("\n== Condition: a producer puts five items into a one-slot box");
    let (lock, changed) = (Lock::new()?, Condvar::new()?);
    let (full, item) = (SharedValue::new(0i32)?, SharedValue::new(0i32)?);
    let producer = spawn(&|| {
        for i in 1..=5 {
            let g = lock.lock().expect("lock");
            if changed.wait_for_timeout(&g, patience, || full.get() == Ok(0)).is_err() {
                return 1;
            }
            item.set(i * i).unwrap();
            full.set(1).unwrap();
            changed.notify_all();
        }
        0
    });
    let mut sum = 0;
    for _ in 0..5 {
        let g = lock.lock().expect("lock");
        changed.wait_for_timeout(&g, patience, || full.get() == Ok(1))?;
        let v = item.get()?;
        println!("consumed {v}");
        sum += v;
        full.set(0)?;
        changed.notify_all();
    }
    assert_eq!(producer.join(), Ok(0));
    println!("sum {sum}");

    println!("\n== Barrier: four processes, three rounds");
    let barrier = Barrier::new(4)?;
    let party = || {
        for round in 0..3 {
            match barrier.wait_timeout(patience) {
                Ok(0) => print_flush(&format!("round {round}: all 4 parties arrived")),
                Ok(_) => {}
                Err(_) => return 1,
            }
        }
        0
    };
    let procs: Vec<Process> = (0..3).map(|_| spawn(&party)).collect();
    assert_eq!(party(), 0, "the parent is the fourth party");
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }
    println!("broken: {}", barrier.broken());
    Ok(())
}

fn main() -> Result<(), mpkit::Error> {
    println!("== Pool(5).map(f, [1, 2, 3])");
    println!("{:?}", pool(5)?.map(f, &[1, 2, 3]).map_err(|e| e.error)?);

    println!("\n== Process(target=f, args=('john',))");
    run_child(|| {
        print_flush("hello john");
        0
    });

    println!("\n== process ids");
    info("main line");
    run_child(|| {
        info("function f");
        print_flush("hello john");
        0
    });

    println!("\n== Queue: a child puts [42, None, 'hello'], the parent gets it");
    let q = ByteQueue::new(16, 256)?;
    std::io::stdout().flush().unwrap();
    // SAFETY: single-threaded parent.
    let p = unsafe { Process::spawn(|| i32::from(q.put(b"[42, None, 'hello']").is_err())) }?;
    let mut buf = [0u8; 256];
    let n = q.get(&mut buf)?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(p.join(), Ok(0));

    println!("\n== Pipe: the child sends on its end, the parent receives on its own");
    let (mut parent_conn, mut child_conn) = pipe(true)?;
    std::io::stdout().flush().unwrap();
    let child = || {
        parent_conn.close(); // after fork both hold both ends: each closes the one it does not use
        let sent = child_conn.send(b"[42, None, 'hello']");
        child_conn.close();
        i32::from(sent.is_err())
    };
    // SAFETY: single-threaded parent.
    let p = unsafe { Process::spawn(child) }?;
    child_conn.close();
    let n = parent_conn.recv(&mut buf)?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(parent_conn.recv(&mut buf), Err(mpkit::Error::Closed), "then end-of-file");
    assert_eq!(p.join(), Ok(0));

    println!("\n== Lock: ten processes print under one lock");
    std::io::stdout().flush().unwrap();
    let lock = Lock::new()?; // Python's multiprocessing.Lock()
    let procs: Vec<Process> = (0..10)
        .map(|num| {
            let lock = &lock;
            let child = move || {
                let _held = lock.lock().expect("lock");
                print_flush(&format!("hello world {num}"));
                0
            };
            // SAFETY: single-threaded parent.
            unsafe { Process::spawn(child) }.expect("fork")
        })
        .collect();
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }

    println!("\n== RLock: ten processes print under one lock, taking it twice");
    std::io::stdout().flush().unwrap();
    let rlock = RLock::new()?; // Python's multiprocessing.RLock()
    let procs: Vec<Process> = (0..10)
        .map(|num| {
            let rlock = &rlock;
            let child = move || {
                let _outer = rlock.lock().expect("lock");
                let _inner = rlock.lock().expect("relock"); // already ours: depth 2
                print_flush(&format!("rlock: hello world {num} at depth {}", rlock.raw().depth()));
                0
            };
            // SAFETY: single-threaded parent.
            unsafe { Process::spawn(child) }.expect("fork")
        })
        .collect();
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }

    println!("\n== Semaphore(3): eight processes, never more than three inside");
    std::io::stdout().flush().unwrap();
    let sem = Semaphore::new(3, 0)?; // Python's multiprocessing.Semaphore(3)
    let procs: Vec<Process> = (0..8)
        .map(|num| {
            let sem = &sem;
            let child = move || {
                let _permit = sem.acquire_timeout(Duration::from_secs(30)).expect("acquire");
                print_flush(&format!("process {num} enters"));
                std::thread::sleep(Duration::from_millis(50));
                print_flush(&format!("process {num} leaves"));
                0
            };
            // SAFETY: single-threaded parent.
            unsafe { Process::spawn(child) }.expect("fork")
        })
        .collect();
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }
    assert_eq!(sem.value(), 3);

    println!("\n== Value('d', 0.0) and Array('i', range(10))");
    let num = SharedValue::new(0.0f64)?;
    let arr = SharedArray::from_slice(&(0..10).collect::<Vec<i32>>())?;
    run_child(|| {
        num.set(3.1415927).expect("set");
        for x in arr.lock().expect("lock").iter_mut() {
            *x = -*x;
        }
        0
    });
    println!("{}", num.get()?);
    println!("{:?}", arr.to_vec()?);

    println!("\n== Manager().dict() and Manager().list(range(10)): the child changes them");
    let d = SharedDict::new()?; // no server process: the dict lives in shared memory
    let l = SharedList::new()?;
    l.extend(&(0..10i64).map(Item::Int).collect::<Vec<_>>())?;
    run_child(|| {
        let changed = (|| {
            d.set(1, "1")?;
            d.set("2", 2)?;
            d.set(0.25, Item::None)?;
            l.reverse()
        })();
        i32::from(changed.is_err())
    });
    println!("{d}"); // {1: '1', '2': 2, 0.25: None}
    println!("{l}"); // [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]

    println!("\n== Pool(processes=4)");
    let p = pool(4)?;
    let range: Vec<i64> = (0..10).collect();
    println!("{:?}", p.map(f, &range).map_err(|e| e.error)?); // [0, 1, 4, ..., 81]
    for r in p.imap_unordered(f, &range, 1)? {
        println!("{}", r.map_err(|e| e.error)?.1); // the same numbers in arbitrary order
    }
    let mut res = p.apply_async(f, 20)?;
    println!("{}", res.get_timeout(Duration::from_secs(1))?); // 400
    let mut res = p.apply_async(getpid, 0)?;
    println!("{}", res.get_timeout(Duration::from_secs(1))?); // a worker's pid
    let multiple: Vec<_> = (0..4).map(|_| p.apply_async(getpid, 0)).collect::<Result<_, _>>()?;
    let pids: Vec<u32> =
        multiple.into_iter().map(|mut r| r.get_timeout(Duration::from_secs(1))).collect::<Result<_, _>>()?;
    println!("{pids:?}");
    let mut res = p.apply_async(sleep_s, 10)?;
    if res.get_timeout(Duration::from_secs(1)) == Err(Error::Timeout) {
        println!("We lacked patience and got a multiprocessing.TimeoutError");
    }
    drop(res);
    p.terminate(); // do not wait for the sleeper

    println!("\n== Beyond the tutorial: a time limit, map_async, cancel, starmap");
    let p = pool(2)?;
    let mut res = p.apply_async_timeout(sleep_s, 10, Duration::from_secs(1))?;
    println!("sleep_s(10) with a 1 s limit -> {:?}", res.get_timeout(Duration::from_secs(60)));
    println!("then map -> {:?}", p.map(f, &[1, 2, 3, 4]).map_err(|e| e.error)?);
    let later = p.map_async(f, &[1, 2, 3, 4], 0)?;
    println!("map_async -> {:?}", later.get().map_err(|e| e.error)?);
    let res = p.apply_async(sleep_s, 10)?;
    res.cancel()?;
    println!("sleep_s(10) cancelled -> {:?}", res.get());
    println!("starmap(add, [(1, 2), (3, 4)]) -> {:?}", p.starmap(add as fn(i64, i64) -> i64, &[(1, 2), (3, 4)]));

    sync_family()?;
    wait_for_any()?;

    println!("\n== serial, threads, pool: 8 x burn(20M)");
    let workers = mpkit::process::cpu_count();
    let p = pool(workers)?;
    // MPKIT_TOUR_ROUNDS shrinks the work (the tests run the tour in debug builds).
    let rounds = std::env::var("MPKIT_TOUR_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20_000_000);
    let args: Vec<u64> = (0..8).map(|i| rounds + i).collect();
    let t0 = Instant::now();
    let serial: Vec<u64> = args.iter().map(|&a| burn(a)).collect();
    let t_serial = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let threaded: Vec<u64> = std::thread::scope(|s| {
        let per = args.len().div_ceil(workers);
        let hs: Vec<_> =
            args.chunks(per).map(|c| s.spawn(move || c.iter().map(|&a| burn(a)).collect::<Vec<_>>())).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let t_threads = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let pooled = p.map_chunked(burn, &args, 1).map_err(|e| e.error)?;
    let t_pool = t0.elapsed().as_secs_f64();
    assert!(serial == threaded && serial == pooled);
    println!("serial:  {t_serial:.3} s");
    println!("threads: {t_threads:.3} s (speed-up {:.2}x)", t_serial / t_threads);
    println!("pool:    {t_pool:.3} s (speed-up {:.2}x, {workers} workers)", t_serial / t_pool);
    Ok(())
}
