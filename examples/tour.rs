//! A tour of mpkit through the examples of the Python multiprocessing tutorial it is modelled
//! on, in order: Process, process ids, Lock, Value/Array.
//!
//!     cargo run --release --example tour
//!
//! Each child prints and then flushes stdout before it returns, because children end with
//! `_exit`, which does not flush. This program is single-threaded when it forks, so its children
//! may use std I/O (see the fork rules in `mpkit::process`).

#![allow(clippy::approx_constant)] // the tutorial's 3.1415927

use std::io::Write;

use mpkit::{Process, SharedArray, SharedValue};

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
