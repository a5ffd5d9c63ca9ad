//! Processes: fork, pidfd, waitid, signals, `_exit`, CPU count.

use core::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, Signal, WaitId, WaitIdOptions};

use crate::error::Error;

/// Which side of a fork we are on.
pub(crate) enum Forked {
    Child,
    Parent(i32),
}

/// `fork()` through glibc, so that its fork handlers (and ours) run.
///
/// # Safety
/// - In the child, if the parent had other threads, only async-signal-safe work may happen
///   until `_exit` or `exec` (see the crate's fork rules).
pub(crate) unsafe fn fork() -> Result<Forked, Error> {
    // SAFETY: forwarded caller duty about what the child does.
    match unsafe { libc::fork() } {
        -1 => Err(Error::from_errno(Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::AGAIN))),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends the calling process at once: no atexit handlers, no stdio flush, no unwinding.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and takes no pointers.
    unsafe { libc::_exit(code) }
}

/// A pidfd for process `pid`. For our own child it cannot refer to another process (the pid is
/// not recycled before we reap it); for any other process, check afterwards that it is still the
/// one meant.
pub(crate) fn pidfd_open(pid: i32) -> Result<OwnedFd, Error> {
    let pid = Pid::from_raw(pid).ok_or(Error::Inval)?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// How a child ended, as Python's `exitcode`: its exit status, or `-N` if signal N killed it.
pub(crate) fn wait_pidfd(pidfd: impl AsFd, block: bool) -> Result<Option<i32>, Error> {
    let mut opts = WaitIdOptions::EXITED;
    if !block {
        opts |= WaitIdOptions::NOHANG;
    }
    loop {
        match rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), opts) {
            Ok(None) => return Ok(None),
            Ok(Some(st)) => {
                if let Some(sig) = st.terminating_signal() {
                    return Ok(Some(-sig));
                }
                return Ok(Some(st.exit_status().unwrap_or(0)));
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::from_errno(e)),
        }
    }
}

/// Waits until `fd` is readable (a pidfd: the process has exited), at most `timeout`.
/// Returns whether it is readable.
pub(crate) fn poll_readable(fd: impl AsFd, timeout: Option<Duration>) -> Result<bool, Error> {
    let ts = timeout.map(|d| rustix::time::Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ });
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, ts.as_ref()) {
        Ok(n) => Ok(n > 0),
        Err(Errno::INTR) => Ok(false),
        Err(e) => Err(Error::from_errno(e)),
    }
}

/// Sends `SIGTERM` (`kill == false`) or `SIGKILL` through a pidfd. A process that already exited
/// is not an error.
pub(crate) fn pidfd_signal(pidfd: impl AsFd, kill: bool) -> Result<(), Error> {
    let sig = if kill { Signal::KILL } else { Signal::TERM };
    match rustix::process::pidfd_send_signal(pidfd, sig) {
        Ok(()) | Err(Errno::SRCH) => Ok(()),
        Err(e) => Err(Error::from_errno(e)),
    }
}

/// Reaps child `pid` if it has exited; true once it is gone (reaped now, or not our child).
pub(crate) fn reap_nohang(pid: i32) -> bool {
    let Some(pid) = Pid::from_raw(pid) else { return true };
    !matches!(rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::NOHANG), Ok(None))
}

/// SIGKILLs our child `pid` and waits for it (used when it cannot be managed).
pub(crate) fn kill_and_reap(pid: i32) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, Signal::KILL);
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
}

/// This process's id, cached: a `pthread_atfork` child handler clears the cache, so a forked
/// child asks the kernel again. (A child made by a raw `clone` that skips glibc's fork handlers
/// would see its parent's id; mpkit forks only through [`fork`].)
pub(crate) fn process_id() -> i32 {
    use core::sync::atomic::{AtomicI32, Ordering};
    static PID: AtomicI32 = AtomicI32::new(0);
    static ATFORK: std::sync::Once = std::sync::Once::new();
    extern "C" fn clear_in_child() {
        PID.store(0, Ordering::Relaxed);
    }
    // Relaxed: the id is a value of this process alone, written by whichever thread asks first.
    match PID.load(Ordering::Relaxed) {
        0 => {
            ATFORK.call_once(|| {
                // SAFETY: registers a handler that only stores to a static atomic.
                let rc = unsafe { libc::pthread_atfork(None, None, Some(clear_in_child)) };
                assert_eq!(rc, 0, "pthread_atfork failed");
            });
            let pid = rustix::process::getpid().as_raw_nonzero().get();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// The calling thread's id (for [`die_with_parent`]).
pub(crate) fn thread_id() -> i32 {
    rustix::thread::gettid().as_raw_nonzero().get()
}

/// Asks for SIGKILL when the thread that forked us exits, then checks that it has not exited
/// already. Returns false if it has. `getppid()` alone cannot tell: a thread's children are
/// handed to another thread of the same process when it exits, so the parent process id stays
/// the same, and a thread that exited before our `prctl` sends no signal. Checking the thread
/// after the `prctl` closes that window: it either exits later (and the kernel signals us) or is
/// already gone (and `tgkill` says so).
pub(crate) fn die_with_parent(parent: i32, parent_tid: i32) -> bool {
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
    super::robust::thread_lives(parent, parent_tid)
        && rustix::process::getppid().is_some_and(|p| p.as_raw_nonzero().get() == parent)
}

/// CPUs this process may run on.
pub(crate) fn cpu_count() -> usize {
    rustix::thread::sched_getaffinity(None).map_or(1, |set| set.count().max(1) as usize)
}

/// Waits until at least one of `fds` is readable (at most `timeout`; `None`: forever) and
/// returns which are. EINTR counts as "none yet".
pub(crate) fn poll_readable_many(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> Result<std::vec::Vec<bool>, Error> {
    let ts = timeout.map(|d| rustix::time::Timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as _ });
    let mut polls: std::vec::Vec<PollFd<'_>> = fds.iter().map(|fd| PollFd::new(fd, PollFlags::IN)).collect();
    match poll(&mut polls, ts.as_ref()) {
        Ok(_) => Ok(polls.iter().map(|p| !p.revents().is_empty()).collect()),
        Err(Errno::INTR) => Ok(std::vec![false; fds.len()]),
        Err(e) => Err(Error::from_errno(e)),
    }
}

/// An eventfd: a counter another process can bump to wake a `poll` on it.
pub(crate) fn eventfd() -> Result<OwnedFd, Error> {
    Ok(rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK)?)
}

/// Bumps an eventfd (wakes its pollers).
pub(crate) fn eventfd_signal(fd: impl AsFd) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// Resets an eventfd to zero.
pub(crate) fn eventfd_drain(fd: impl AsFd) {
    let mut buf = [0u8; 8];
    let _ = rustix::io::read(fd, &mut buf);
}

/// This process's parent, if any.
pub(crate) fn parent_pid() -> Option<i32> {
    rustix::process::getppid().map(|p| p.as_raw_nonzero().get())
}

/// Sends SIGKILL to `pid` (no error if it is gone).
pub(crate) fn kill(pid: i32) {
    if let Some(p) = Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, Signal::KILL);
    }
}
