//! Shared mappings: memfd (regions shared through fork), POSIX shm (named regions), mmap.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, MemfdFlags, Mode};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

use crate::error::Error;

/// An anonymous shared file of `len` zero bytes (pages are allocated when first touched).
/// `name` shows in `/proc/<pid>/maps` as `/memfd:<name>`.
pub(crate) fn memfd(name: &str, len: u64) -> Result<OwnedFd, Error> {
    let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC)?;
    fs::ftruncate(&fd, len)?;
    Ok(fd)
}

/// Creates the POSIX shared-memory object `name` (which must not exist), `len` zero bytes.
/// On failure after creation the name is removed again.
pub(crate) fn shm_create(name: &str, len: u64) -> Result<OwnedFd, Error> {
    check_name(name)?;
    let flags = shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR;
    let fd = shm::open(name, flags, Mode::RUSR | Mode::WUSR).map_err(shm_error)?;
    if let Err(e) = fs::ftruncate(&fd, len) {
        let _ = shm::unlink(name);
        return Err(e.into());
    }
    Ok(fd)
}

/// Opens the existing POSIX shared-memory object `name`; returns it with its current size.
pub(crate) fn shm_open(name: &str) -> Result<(OwnedFd, u64), Error> {
    check_name(name)?;
    let fd = shm::open(name, shm::OFlags::RDWR, Mode::empty()).map_err(shm_error)?;
    let size = fs::fstat(&fd)?.st_size as u64;
    Ok((fd, size))
}

/// Current size of an open object.
pub(crate) fn size_of_fd(fd: impl AsFd) -> Result<u64, Error> {
    Ok(fs::fstat(fd)?.st_size as u64)
}

/// Removes the name `name`; mappings stay valid.
pub(crate) fn shm_unlink(name: &str) -> Result<(), Error> {
    check_name(name)?;
    shm::unlink(name).map_err(shm_error)
}

/// A name is one optional leading `/` and a plain file name. The system would quietly strip
/// further leading slashes (`"//a"` is `"a"`), so they are refused here (`Inval`).
fn check_name(name: &str) -> Result<(), Error> {
    let base = name.strip_prefix('/').unwrap_or(name);
    if base.starts_with('/') { Err(Error::Inval) } else { Ok(()) }
}

/// rustix reports an invalid name (empty, `.`, a `/` inside) as EINVAL, too long as ENAMETOOLONG.
fn shm_error(e: rustix::io::Errno) -> Error {
    match e {
        rustix::io::Errno::INVAL | rustix::io::Errno::NAMETOOLONG => Error::Inval,
        e => Error::from_errno(e),
    }
}

/// Maps `len` bytes of `fd`, readable and writable, shared with every other mapping of it.
pub(crate) fn map_shared(fd: impl AsFd, len: usize) -> Result<NonNull<u8>, Error> {
    // SAFETY: a fresh mapping chosen by the kernel (null hint) aliases no Rust allocation.
    let p =
        unsafe { rustix::mm::mmap(ptr::null_mut(), len, ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED, fd, 0) }?;
    NonNull::new(p.cast()).ok_or(Error::NoMem)
}

/// Unmaps a mapping made by `map_shared`.
///
/// # Safety
/// - `ptr`/`len` are exactly one mapping returned by `map_shared`, not used afterwards.
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, len: usize) {
    // SAFETY: forwarded caller duty.
    let r = unsafe { rustix::mm::munmap(ptr.as_ptr().cast::<c_void>(), len) };
    debug_assert!(r.is_ok(), "munmap of our own mapping failed: {r:?}");
}

/// The system page size.
pub(crate) fn page_size() -> usize {
    rustix::param::page_size()
}
