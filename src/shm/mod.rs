//! Shared memory regions: one `MAP_SHARED` mapping that starts with a validated header.
//!
//! Anonymous regions are memfd files mapped shared: a child of `fork` inherits the mapping at the
//! same address. Named regions are POSIX shared-memory objects (`/dev/shm/<name>`) that unrelated
//! processes attach to by name. Either way pages are allocated when first touched, so a large
//! region costs nothing until used. Nothing inside a region holds a pointer.

mod header;

use core::ptr::NonNull;
use std::boxed::Box;

pub(crate) use header::Header;
pub use header::{ABI_VERSION, HEADER_LEN, Kind};

use crate::error::Error;
use crate::sys::mman;

/// One shared mapping: header + payload. Unmapped on drop.
///
/// A region made by [`create_named`](Self::create_named) removes its name when the creating
/// process drops it, unless [`persist`](Self::persist) was called (handles inherited by children
/// never remove the name).
///
/// The payload is plain bytes behind a raw pointer: what lives there, and how access to it is
/// synchronised, is the caller's design (mpkit's own objects each build on a region).
/// ```
/// use mpkit::{Error, Region};
///
/// let name = format!("/mpkit-doc-region-{}", std::process::id());
/// let mut created = Region::create_named(&name, 4096)?;
/// assert_eq!(Region::create_named(&name, 4096).err(), Some(Error::Exists));
/// // SAFETY: the payload is 4096 bytes, and nothing else uses it yet.
/// unsafe { created.as_ptr().copy_from_nonoverlapping(b"hello".as_ptr(), 5) };
/// let opened = Region::open_named(&name)?; // as an unrelated process would
/// // SAFETY: the payload is at least 5 bytes, and nobody writes it now.
/// assert_eq!(unsafe { core::slice::from_raw_parts(opened.as_ptr(), 5) }, b"hello");
/// assert_eq!((opened.len(), opened.name()), (4096, Some(name.as_str())));
/// created.persist(); // keep the name past `created` ...
/// drop(created);
/// Region::unlink(&name)?; // ... until removed by hand; `opened` stays mapped
/// assert_eq!(Region::open_named(&name).err(), Some(Error::NotFound));
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct Region {
    base: NonNull<u8>,
    len: usize,
    kind: Kind,
    layout: [u64; 4],
    name: Option<Box<str>>,
    /// Process that removes the name on drop (the creator), if any.
    unlink_by: Option<u32>,
    /// Order of creation in this process (see [`next_generation`]).
    generation: u64,
}

/// Regions count their creation order: a process forked after region `g` was mapped has it
/// (pools use this to know which arrays their workers inherited).
static GENERATION: crate::sync::unmodelled::AtomicU64 = crate::sync::unmodelled::AtomicU64::new(0);

/// The generation the next region will get.
pub(crate) fn next_generation() -> u64 {
    // Relaxed: a counter; ordering with the mappings comes from fork itself.
    GENERATION.fetch_add(1, crate::sync::unmodelled::Ordering::Relaxed)
}

// SAFETY: a Region hands out only raw pointers into the mapping; the mapping itself is valid from
// any thread until drop, and the objects inside synchronise their own accesses.
unsafe impl Send for Region {}
// SAFETY: as above; &Region gives no access to the bytes except through raw pointers.
unsafe impl Sync for Region {}

impl Region {
    /// An anonymous region of `size` zero bytes, shared with children forked after this call.
    pub fn new(size: usize) -> Result<Region, Error> {
        Region::build(Kind::Raw, [size as u64, 0, 0, 0], size, None, |_| {})
    }

    /// Creates the named region `name` (`"/name"` or `"name"`, no other `/`) of `size` zero
    /// bytes. `Exists` if the name is taken.
    pub fn create_named(name: &str, size: usize) -> Result<Region, Error> {
        Region::build(Kind::Raw, [size as u64, 0, 0, 0], size, Some(name), |_| {})
    }

    /// Attaches to the named region `name`, validating its header. `NotFound`, `BadObject`
    /// (foreign, truncated, or another kind of mpkit object), `Version`.
    pub fn open_named(name: &str) -> Result<Region, Error> {
        let r = Region::attach(name, Kind::Raw)?;
        if r.layout[0] != r.payload_len() as u64 {
            return Err(Error::BadObject);
        }
        Ok(r)
    }

    /// Removes the name `name`; processes that have it mapped keep their mappings.
    pub fn unlink(name: &str) -> Result<(), Error> {
        mman::shm_unlink(name)
    }

    /// Keeps the name after this handle is dropped (then [`unlink`](Self::unlink) removes it).
    pub fn persist(&mut self) {
        self.unlink_by = None;
    }

    /// Start of the payload (after the header), 64-byte aligned.
    pub fn as_ptr(&self) -> *mut u8 {
        self.payload().as_ptr()
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload_len()
    }

    /// Always false: regions have at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The name, for named regions.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What the region holds.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Bytes of the mapping (header included) backed by memory now: the pages some process
    /// touched and nobody gave back.
    pub fn resident(&self) -> usize {
        // SAFETY: `base..base + len` is this handle's mapping, page-aligned.
        unsafe { mman::resident(self.base.as_ptr(), self.len) }
    }

    /// When this handle's mapping was made, relative to other regions of this process.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn layout(&self) -> [u64; 4] {
        self.layout
    }

    pub(crate) fn payload(&self) -> NonNull<u8> {
        // SAFETY: every region is at least HEADER_LEN + 1 bytes long (checked at build/attach).
        unsafe { self.base.add(HEADER_LEN) }
    }

    pub(crate) fn payload_len(&self) -> usize {
        self.len - HEADER_LEN
    }

    /// Gives up this handle without unmapping; returns the payload. [`from_payload`](Self::from_payload)
    /// takes it back (nameless: a named region must have been persisted).
    pub(crate) fn into_raw(mut self) -> NonNull<u8> {
        debug_assert!(self.unlink_by.is_none(), "a region given up keeps its name");
        self.name = None;
        let payload = self.payload();
        core::mem::forget(self);
        payload
    }

    /// Takes back a region given up with [`into_raw`](Self::into_raw), if `payload` is the payload
    /// of a READY region of `kind`; `None` for any other pointer.
    ///
    /// # Safety
    /// - `payload` points into mapped memory; if it is at page offset `HEADER_LEN`, the page it
    ///   lies in is readable (true of any valid pointer, since the check stays within that page).
    /// - If it is such a region, no other handle owns it.
    pub(crate) unsafe fn from_payload(payload: NonNull<u8>, kind: Kind) -> Option<Region> {
        if payload.as_ptr() as usize % mman::page_size() != HEADER_LEN {
            return None;
        }
        // SAFETY: the header would lie at the start of the same page, which is mapped.
        let base = unsafe { payload.sub(HEADER_LEN) };
        // SAFETY: as above; Header is plain data plus an atomic, valid for any bit pattern.
        let header = unsafe { base.cast::<Header>().as_ref() };
        let len = header.claimed_len();
        match header.check(len) {
            Ok((k, layout)) if k == kind && len > HEADER_LEN as u64 => {
                Some(Region { base, len: len as usize, kind, layout, name: None, unlink_by: None, generation: 0 })
            }
            _ => None,
        }
    }

    /// Maps a new region, lets `init` build the object in the (zeroed) payload, then publishes it.
    pub(crate) fn build(
        kind: Kind,
        layout: [u64; 4],
        payload_len: usize,
        name: Option<&str>,
        init: impl FnOnce(NonNull<u8>),
    ) -> Result<Region, Error> {
        if payload_len == 0 {
            return Err(Error::Inval);
        }
        let len = payload_len.checked_add(HEADER_LEN).filter(|&l| l <= isize::MAX as usize).ok_or(Error::Inval)?;
        // A named object is built unnamed and named only once READY (see `attach`).
        let (base, unnamed) = match name {
            Some(name) => {
                let u = mman::UnnamedShm::new(name, len as u64)?;
                (mman::map_shared(u.fd(), len)?, Some(u))
            }
            None => (mman::map_shared(mman::memfd(kind_label(kind), len as u64)?, len)?, None),
        };
        let header = base.cast::<Header>();
        // SAFETY: the mapping is fresh, page-aligned and at least HEADER_LEN bytes; nobody else can
        // reach it yet (a memfd is private to this process until a fork; a named object has no name).
        unsafe { header.write(Header::new(kind, len as u64, layout)) };
        let mut region = Region { base, len, kind, layout, name: None, unlink_by: None, generation: next_generation() };
        init(region.payload());
        // SAFETY: the header was written above and the mapping lives as long as `region`.
        unsafe { header.as_ref() }.set_ready();
        if let (Some(name), Some(unnamed)) = (name, unnamed) {
            // On failure (`Exists`: taken meanwhile) `region` unmaps and the object vanishes.
            unnamed.publish(name)?;
            region.name = Some(Box::from(name));
            region.unlink_by = Some(std::process::id());
        }
        Ok(region)
    }

    /// Maps the named region `name` and validates that it is a READY object of `kind`.
    ///
    /// Never waits: mpkit names an object only once it is complete (built unnamed, header READY,
    /// then linked to its name), so whatever an opener finds under a name is final. An object too
    /// short for a header, with a zero or foreign header, or not READY can never become valid:
    /// `BadObject` at once. (Objects of mpkit versions before this rule were named while still
    /// being built; an opener racing such a creator may now be refused.)
    pub(crate) fn attach(name: &str, kind: Kind) -> Result<Region, Error> {
        let (fd, size) = mman::shm_open(name)?;
        if size <= HEADER_LEN as u64 || size > isize::MAX as u64 {
            return Err(Error::BadObject);
        }
        let len = size as usize;
        let base = mman::map_shared(&fd, len)?;
        let mut region = Region {
            base,
            len,
            kind,
            layout: [0; 4],
            name: Some(Box::from(name)),
            unlink_by: None,
            generation: next_generation(),
        };
        // SAFETY: the mapping is at least HEADER_LEN bytes and lives as long as `region`.
        let (k, layout) = unsafe { base.cast::<Header>().as_ref() }.check(size)?;
        if k != kind {
            return Err(Error::BadObject);
        }
        region.layout = layout;
        Ok(region)
    }
}

fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Raw => "mpkit-shm",
        Kind::Mutex => "mpkit-mutex",
        Kind::Array => "mpkit-array",
        Kind::Queue => "mpkit-queue",
        Kind::Pipe => "mpkit-pipe",
        Kind::Pool => "mpkit-pool",
        Kind::RMutex => "mpkit-rmutex",
        Kind::Semaphore => "mpkit-sem",
        Kind::Event => "mpkit-event",
        Kind::Cond => "mpkit-cond",
        Kind::Barrier => "mpkit-barrier",
        Kind::Dict => "mpkit-dict",
        Kind::List => "mpkit-list",
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: base/len are the mapping this Region made or attached, used by nobody after drop.
        unsafe { mman::unmap(self.base, self.len) };
        if let (Some(name), Some(pid)) = (&self.name, self.unlink_by)
            && pid == std::process::id()
        {
            let _ = mman::shm_unlink(name);
        }
    }
}

impl core::fmt::Debug for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Region")
            .field("kind", &self.kind)
            .field("len", &self.payload_len())
            .field("name", &self.name)
            .finish()
    }
}
