//! Shared mappings: memfd (regions shared through fork), POSIX shm (named regions), mmap.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{self, MemfdFlags, Mode};
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

use crate::error::Error;
use crate::sync::unmodelled;

/// An anonymous shared file of `len` zero bytes (pages are allocated when first touched).
/// `name` shows in `/proc/<pid>/maps` as `/memfd:<name>`.
pub(crate) fn memfd(name: &str, len: u64) -> Result<OwnedFd, Error> {
    let fd = fs::memfd_create(name, MemfdFlags::CLOEXEC)?;
    fs::ftruncate(&fd, len)?;
    Ok(fd)
}

/// Where POSIX shared-memory objects live on Linux (glibc's and rustix's `shm_open` use it).
const SHM_DIR: &str = "/dev/shm/";

/// The path of the shared-memory object `name`: `Inval` for an empty name, `.`, `..`, any `/`
/// after one leading `/` (the system would quietly strip more: `"//a"` would be `"a"`), or a
/// name over 255 bytes.
fn shm_path(name: &str) -> Result<String, Error> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if name.len() > 255 || bare.is_empty() || bare == "." || bare == ".." || bare.contains('/') {
        return Err(Error::Inval);
    }
    Ok(format!("{SHM_DIR}{name}"))
}

/// A POSIX shared-memory object under construction: `len` zero bytes, not yet reachable by its
/// name. [`publish`](Self::publish) gives it the name at once, complete, so an opener never sees
/// it half-built. Dropped unpublished, it vanishes.
pub(crate) struct UnnamedShm {
    fd: OwnedFd,
    /// The temporary name it has until published, where the system lacks `O_TMPFILE` or
    /// `/proc/self/fd` (otherwise it has no name at all).
    tmp: Option<String>,
}

/// Distinct temporary names within this process.
static TMP_SEQ: unmodelled::AtomicU64 = unmodelled::AtomicU64::new(0);

impl UnnamedShm {
    /// A new object of `len` zero bytes, to be published as `name` (checked now: `Inval` for a
    /// bad name, `Exists` if the name is already taken — `publish` checks that again, atomically).
    pub(crate) fn new(name: &str, len: u64) -> Result<UnnamedShm, Error> {
        let path = shm_path(name)?;
        match fs::access(path.as_str(), fs::Access::EXISTS) {
            Ok(()) => return Err(Error::Exists),
            Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(shm_error(e)),
        }
        let built = match UnnamedShm::tmpfile() {
            Some(fd) => UnnamedShm { fd, tmp: None },
            None => {
                // Relaxed: only distinctness matters.
                let seq = TMP_SEQ.fetch_add(1, unmodelled::Ordering::Relaxed);
                let tmp = format!("{SHM_DIR}.mpkit-build-{}-{seq}", rustix::process::getpid().as_raw_nonzero());
                let flags = fs::OFlags::CREATE | fs::OFlags::EXCL | fs::OFlags::RDWR | fs::OFlags::CLOEXEC;
                let fd = fs::open(tmp.as_str(), flags, Mode::RUSR | Mode::WUSR).map_err(shm_error)?;
                UnnamedShm { fd, tmp: Some(tmp) }
            }
        };
        fs::ftruncate(&built.fd, len)?;
        Ok(built)
    }

    /// An unnamed file in the shm directory, if the system can later name it through
    /// `/proc/self/fd` (`linkat` with `AT_SYMLINK_FOLLOW`, which needs no privilege).
    fn tmpfile() -> Option<OwnedFd> {
        let flags = fs::OFlags::TMPFILE | fs::OFlags::RDWR | fs::OFlags::CLOEXEC;
        let fd = fs::open(SHM_DIR, flags, Mode::RUSR | Mode::WUSR).ok()?;
        fs::stat(UnnamedShm::proc_path(&fd).as_str()).ok()?;
        Some(fd)
    }

    fn proc_path(fd: &OwnedFd) -> String {
        use rustix::fd::AsRawFd;
        format!("/proc/self/fd/{}", fd.as_raw_fd())
    }

    /// The object's file.
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Gives the complete object the name `name`, atomically: `Exists` if it was taken meanwhile
    /// (`link` never replaces a name). The caller removes the name later with `shm_unlink`.
    pub(crate) fn publish(mut self, name: &str) -> Result<(), Error> {
        let path = shm_path(name)?;
        let (from, follow) = match &self.tmp {
            Some(tmp) => (tmp.clone(), fs::AtFlags::empty()),
            None => (UnnamedShm::proc_path(&self.fd), fs::AtFlags::SYMLINK_FOLLOW),
        };
        fs::linkat(fs::CWD, from.as_str(), fs::CWD, path.as_str(), follow).map_err(shm_error)?;
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::unlink(tmp.as_str());
        }
        Ok(())
    }
}

impl Drop for UnnamedShm {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = fs::unlink(tmp.as_str());
        }
    }
}

/// Opens the existing POSIX shared-memory object `name`; returns it with its current size.
pub(crate) fn shm_open(name: &str) -> Result<(OwnedFd, u64), Error> {
    shm_path(name)?;
    let fd = shm::open(name, shm::OFlags::RDWR, Mode::empty()).map_err(shm_error)?;
    let size = fs::fstat(&fd)?.st_size as u64;
    Ok((fd, size))
}

/// Removes the name `name`; mappings stay valid.
pub(crate) fn shm_unlink(name: &str) -> Result<(), Error> {
    shm_path(name)?;
    shm::unlink(name).map_err(shm_error)
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

/// Gives the pages wholly inside `ptr..ptr + len` of a shared mapping back to the system
/// (`MADV_REMOVE`): they read as zeros afterwards, in every process that maps them.
///
/// # Safety
/// - the range lies inside one `map_shared` mapping, and nothing relies on its contents.
pub(crate) unsafe fn discard(ptr: *mut u8, len: usize) {
    let page = page_size();
    let start = (ptr as usize).next_multiple_of(page);
    let end = (ptr as usize + len) / page * page;
    if end > start {
        // SAFETY: a page-aligned sub-range of the caller's mapping (caller duty); MADV_REMOVE
        // only frees backing pages. A failure (an old kernel) just keeps the pages.
        let _ = unsafe { rustix::mm::madvise(start as *mut c_void, end - start, rustix::mm::Advice::LinuxRemove) };
    }
}

/// Bytes of `ptr..ptr + len` (a page-aligned start of a mapping) backed by memory now (`mincore`).
///
/// # Safety
/// - the range lies inside one mapping.
pub(crate) unsafe fn resident(ptr: *const u8, len: usize) -> usize {
    let page = page_size();
    let mut vec = [0u8; 4096];
    let mut total = 0;
    let mut off = 0;
    while off < len {
        let chunk = (len - off).min(vec.len() * page);
        let start = ptr.wrapping_add(off) as *mut c_void;
        // SAFETY: the sub-range lies in the caller's mapping, `vec` has a byte per page of it.
        let r = unsafe { libc::mincore(start, chunk, vec.as_mut_ptr()) };
        if r != 0 {
            return 0;
        }
        total += vec[..chunk.div_ceil(page)].iter().filter(|&&b| b & 1 != 0).count() * page;
        off += chunk;
    }
    total
}
