//! Liveness of pipe ends: one socket per end, used only for its fd semantics. A socket is closed
//! when every process holding it has closed it or died, and then its peer polls as hung up.

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::error::Error;

/// A connected pair of sockets, close-on-exec.
pub(crate) fn liveness_pair() -> Result<(OwnedFd, OwnedFd), Error> {
    Ok(rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?)
}

/// True once the socket at the other end of `fd` is closed everywhere. Nothing is ever written to
/// these sockets, so any readiness means end-of-file or hang-up.
pub(crate) fn peer_gone(fd: impl AsFd) -> bool {
    let mut fds = [PollFd::new(&fd, PollFlags::IN | PollFlags::RDHUP)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    match poll(&mut fds, Some(&zero)) {
        Ok(n) => n > 0,
        // EINTR: ask again next time; other errors mean the fd is unusable, i.e. gone.
        Err(rustix::io::Errno::INTR) => false,
        Err(_) => true,
    }
}
