//! A tour of mpkit through the examples of the Python multiprocessing tutorial it is modelled
//! on, in order: Process, process ids, Queue, Pipe, Lock, Value/Array.
//!
//!     cargo run --release --example tour
//!
//! Each child prints and then flushes stdout before it returns, because children end with
//! `_exit`, which does not flush. This program is single-threaded when it forks, so its children
//! may use std I/O (see the fork rules in `mpkit::process`).

#![allow(clippy::approx_constant)] // the tutorial's 3.1415927

use std::io::Write;

use mpkit::{ByteQueue, Process, SharedArray, SharedValue, pipe};

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

fn main() -> Result<(), mpkit::Error> {
    println!("== Process(target=f, args=('john',))");
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
    let f = || {
        parent_conn.close(); // after fork both hold both ends: each closes the one it does not use
        let sent = child_conn.send(b"[42, None, 'hello']");
        child_conn.close();
        i32::from(sent.is_err())
    };
    // SAFETY: single-threaded parent.
    let p = unsafe { Process::spawn(f) }?;
    child_conn.close();
    let n = parent_conn.recv(&mut buf)?;
    println!("{}", String::from_utf8_lossy(&buf[..n]));
    assert_eq!(parent_conn.recv(&mut buf), Err(mpkit::Error::Closed), "then end-of-file");
    assert_eq!(p.join(), Ok(0));

    println!("\n== Lock: ten processes print under one lock");
    std::io::stdout().flush().unwrap();
    let lock = SharedValue::new(0u8)?; // a Value's lock is Python's Lock here
    let procs: Vec<Process> = (0..10)
        .map(|num| {
            let lock = &lock;
            let f = move || {
                let _held = lock.lock().expect("lock");
                print_flush(&format!("hello world {num}"));
                0
            };
            // SAFETY: single-threaded parent.
            unsafe { Process::spawn(f) }.expect("fork")
        })
        .collect();
    for p in &procs {
        assert_eq!(p.join(), Ok(0));
    }

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
    Ok(())
}
