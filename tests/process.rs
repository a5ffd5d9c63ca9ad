//! Process: exit codes, signals, join timeouts, the pidfd sentinel, no zombies, daemonic children.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{PATIENCE, child, flag, join, wait_until};
use mpkit::{Error, Process, ProcessOptions, Region};

fn sleeper() -> Process {
    child(|| {
        loop {
            // SAFETY: sleeps until a signal arrives.
            unsafe { libc::pause() };
        }
    })
}

/// The state letter of `/proc/<pid>/stat`, or None if the process is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

#[test]
fn exit_code_is_the_return_value() {
    for code in [0, 1, 42, 255] {
        let p = child(move || code);
        assert_eq!(join(&p), code);
        assert_eq!(p.exitcode(), Some(code));
        assert!(!p.is_alive());
    }
}

#[test]
fn killed_by_signal_gives_minus_signal() {
    let p = sleeper();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    p.terminate().unwrap();
    assert_eq!(join(&p), -libc::SIGTERM);
    let p = sleeper();
    p.kill().unwrap();
    assert_eq!(join(&p), -libc::SIGKILL);
    p.kill().unwrap(); // after exit: no-op
}

#[test]
fn a_panicking_child_exits_101_not_0() {
    // SAFETY: the child only panics (the hook prints to stderr) and exits.
    let p = unsafe { Process::spawn(|| panic!("boom")) }.unwrap();
    assert_eq!(join(&p), mpkit::process::CHILD_PANIC_EXIT);
}

#[test]
fn join_timeout_returns_timeout_while_running() {
    let p = sleeper();
    let t0 = Instant::now();
    assert_eq!(p.join_timeout(Duration::from_millis(50)), Err(Error::Timeout));
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(p.join_until(mpkit::Deadline::NOW), Err(Error::Timeout));
    p.kill().unwrap();
    assert_eq!(p.join_timeout(PATIENCE), Ok(-libc::SIGKILL));
}

#[test]
fn sentinel_polls_readable_on_exit() {
    use std::os::fd::AsRawFd;
    let p = sleeper();
    let mut pfd = libc::pollfd { fd: p.sentinel().as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, 0) }, 0, "not readable while running");
    p.kill().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut pfd, 1, PATIENCE.as_millis() as i32) }, 1);
    assert_eq!(join(&p), -libc::SIGKILL);
}

#[test]
fn join_and_drop_leave_no_zombie() {
    let p = child(|| 0);
    let pid = p.pid();
    join(&p);
    assert_eq!(proc_state(pid), None, "joined child must be reaped");

    // Dropped after it exited, never joined: reaped by the drop.
    let p = child(|| 0);
    let pid = p.pid();
    wait_until("child to exit", || proc_state(pid) == Some('Z'));
    drop(p);
    assert_eq!(proc_state(pid), None);

    // Dropped while running: detached, then reaped by the next start or drop.
    let r = Region::new(4096).unwrap();
    let p = child(|| {
        while flag(&r, 0).load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        0
    });
    let pid = p.pid();
    drop(p);
    flag(&r, 0).store(1, Ordering::Release);
    wait_until("detached child to exit", || proc_state(pid) != Some('S') && proc_state(pid) != Some('R'));
    let q = child(|| 0);
    join(&q);
    assert_eq!(proc_state(pid), None, "the next start reaps detached children");
}

#[test]
fn two_threads_joining_one_process_both_get_the_code() {
    let p = child(|| {
        std::thread::sleep(Duration::from_millis(20));
        9
    });
    std::thread::scope(|s| {
        let a = s.spawn(|| p.join_timeout(PATIENCE));
        let b = s.spawn(|| p.join_timeout(PATIENCE));
        assert_eq!(a.join().unwrap(), Ok(9));
        assert_eq!(b.join().unwrap(), Ok(9));
    });
}

/// A middle process starts a grandchild and exits; a daemonic grandchild dies with it.
fn grandchild_after_parent_exits(daemon: bool) -> bool {
    let r = Region::new(4096).unwrap();
    let mid = child(|| {
        let opts = ProcessOptions { daemon };
        let sleep = || loop {
            // SAFETY: sleeps until a signal arrives; the alarm bounds a forgotten process.
            unsafe {
                libc::alarm(60);
                libc::pause();
            }
        };
        // SAFETY: the grandchild only sleeps.
        let g = unsafe { Process::spawn_with(&opts, sleep) }.unwrap();
        flag(&r, 0).store(g.pid() as u32, Ordering::Release);
        std::mem::forget(g);
        0
    });
    assert_eq!(join(&mid), 0);
    let pid = flag(&r, 0).load(Ordering::Acquire) as i32;
    assert!(pid > 0);
    let start = Instant::now();
    loop {
        // SAFETY: signal 0 only checks existence. The orphan is reaped by init (or a subreaper).
        let alive = unsafe { libc::kill(pid, 0) } == 0 && proc_state(pid) != Some('Z');
        if !alive {
            return false;
        }
        if start.elapsed() > Duration::from_millis(if daemon { PATIENCE.as_millis() as u64 } else { 300 }) {
            // SAFETY: kill the leftover grandchild so the test leaves nothing behind.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn daemonic_child_dies_with_its_parent() {
    assert!(!grandchild_after_parent_exits(true), "daemonic grandchild outlived its parent");
}

#[test]
fn non_daemonic_child_outlives_its_parent() {
    assert!(grandchild_after_parent_exits(false), "plain grandchild should keep running");
}

#[test]
fn cpu_count_is_positive() {
    assert!(mpkit::process::cpu_count() >= 1);
}

/// 100 children dropped while running (more than the old fixed 64-slot table held) are all
/// reaped once they exit: no zombie is left behind (issue 14.7).
#[test]
fn a_hundred_detached_children_are_all_reaped() {
    let r = Region::new(4096).unwrap();
    let pids: Vec<i32> = (0..100)
        .map(|_| {
            let p = child(|| {
                while flag(&r, 0).load(Ordering::Acquire) == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                0
            });
            p.pid()
        })
        .collect();
    flag(&r, 0).store(1, Ordering::Release);
    for &pid in &pids {
        wait_until("detached children to exit", || !matches!(proc_state(pid), Some('S' | 'R' | 'D')));
    }
    join(&child(|| 0));
    let zombies: Vec<i32> = pids.iter().copied().filter(|&pid| proc_state(pid).is_some()).collect();
    assert!(zombies.is_empty(), "{} of 100 detached children never reaped: {zombies:?}", zombies.len());
}

/// A thread starts a daemon child, drops its handle and exits at once: the child must die with
/// the thread whatever the timing, even when the thread is gone before the child could ask for
/// its death signal (issue 15.1). 100 times.
#[test]
fn a_daemon_of_a_thread_that_exits_at_once_always_dies() {
    let mut escaped = 0;
    for _ in 0..100 {
        let pidfd = std::thread::spawn(|| {
            let opts = ProcessOptions { daemon: true };
            // SAFETY: the child only sleeps (async-signal-safe); the alarm bounds a leftover.
            let p = unsafe {
                Process::spawn_with(&opts, || {
                    loop {
                        libc::alarm(60);
                        libc::pause();
                    }
                })
            }
            .unwrap();
            // SAFETY: dup of a live descriptor; the copy is owned by the returned OwnedFd.
            let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&p.sentinel())) };
            assert!(fd >= 0);
            (p.pid(), fd)
        })
        .join()
        .unwrap();
        let (pid, fd) = pidfd;
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let died = unsafe { libc::poll(&mut pfd, 1, 2_000) } == 1;
        if !died {
            escaped += 1;
            // SAFETY: kills the escaped child so the test leaves nothing behind.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // SAFETY: closes the dup made above.
        unsafe { libc::close(fd) };
        if escaped == 3 {
            break;
        }
    }
    join(&child(|| 0)); // reaps the detached children
    assert_eq!(escaped, 0, "daemon children outlived the thread that started them");
}
