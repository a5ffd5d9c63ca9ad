//! Typed shared arrays: Python's `Value`, `Array` and `get_lock()`.
//!
//! An array is a [`RawMutex`] followed by `len` elements of one [`Element`] type. In place over
//! caller memory ([`ArrayView`], available without `std`) or owned in its own shared region
//! ([`SharedArray`], [`SharedValue`]), created anonymously (shared with forked children) or by name.
//!
//! Soundness: safe Rust reaches the elements only while holding the lock ([`ArrayGuard`]) or by
//! copying single elements under it (`get`/`set`). Memory that other processes write needs the
//! same discipline from them; [`ArrayView::as_ptr`] is the raw escape hatch, whose dereference is
//! the caller's `unsafe` promise to follow it (or to use atomics).

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::time::Duration;

use bytemuck::Pod;

use crate::error::Error;
use crate::lock::{LockResult, MutexGuard, RawMutex};

/// Bytes from the start of an array's memory to its first element: the lock, one cache line.
pub const ARRAY_DATA_OFFSET: usize = 64;
const _: () = assert!(core::mem::size_of::<RawMutex>() <= ARRAY_DATA_OFFSET || cfg!(loom));

/// Element types, with Python's `array`/`ctypes` type codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum ElemType {
    /// `'b'`: `int8_t`
    I8 = 1,
    /// `'B'`: `uint8_t`
    U8 = 2,
    /// `'h'`: `int16_t`
    I16 = 3,
    /// `'H'`: `uint16_t`
    U16 = 4,
    /// `'i'`: `int32_t`
    I32 = 5,
    /// `'I'`: `uint32_t`
    U32 = 6,
    /// `'q'`, and `'l'` (C `long` on 64-bit Linux): `int64_t`
    I64 = 7,
    /// `'Q'`, and `'L'`: `uint64_t`
    U64 = 8,
    /// `'f'`: `float`
    F32 = 9,
    /// `'d'`: `double`
    F64 = 10,
}

impl ElemType {
    const ALL: [ElemType; 10] = [
        ElemType::I8,
        ElemType::U8,
        ElemType::I16,
        ElemType::U16,
        ElemType::I32,
        ElemType::U32,
        ElemType::I64,
        ElemType::U64,
        ElemType::F32,
        ElemType::F64,
    ];

    /// From a Python type code: `b B h H i I l L q Q f d`. Anything else is `Inval`.
    pub fn from_code(code: &str) -> Result<ElemType, Error> {
        Ok(match code {
            "b" => ElemType::I8,
            "B" => ElemType::U8,
            "h" => ElemType::I16,
            "H" => ElemType::U16,
            "i" => ElemType::I32,
            "I" => ElemType::U32,
            "l" | "q" => ElemType::I64,
            "L" | "Q" => ElemType::U64,
            "f" => ElemType::F32,
            "d" => ElemType::F64,
            _ => return Err(Error::Inval),
        })
    }

    /// From the C enum value (`MPK_TYPE_*`). Anything else is `Inval`.
    pub fn from_raw(raw: i64) -> Result<ElemType, Error> {
        ElemType::ALL.into_iter().find(|t| *t as i64 == raw).ok_or(Error::Inval)
    }

    /// Size of one element in bytes.
    pub const fn size(self) -> usize {
        match self {
            ElemType::I8 | ElemType::U8 => 1,
            ElemType::I16 | ElemType::U16 => 2,
            ElemType::I32 | ElemType::U32 | ElemType::F32 => 4,
            ElemType::I64 | ElemType::U64 | ElemType::F64 => 8,
        }
    }

    /// Bytes needed by an array of `len` elements, lock included; `None` on overflow.
    pub const fn bytes_needed(self, len: usize) -> Option<usize> {
        match len.checked_mul(self.size()) {
            Some(n) => n.checked_add(ARRAY_DATA_OFFSET),
            None => None,
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A type that can live in a shared array: the ten numeric types of [`ElemType`].
pub trait Element: Pod + sealed::Sealed {
    /// Its element type.
    const TYPE: ElemType;
}

macro_rules! element {
    ($($t:ty => $e:ident),*) => {$(
        impl sealed::Sealed for $t {}
        impl Element for $t {
            const TYPE: ElemType = ElemType::$e;
        }
        const _: () = assert!(core::mem::size_of::<$t>() == ElemType::$e.size());
    )*};
}
element!(i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64, f32 => F32, f64 => F64);

/// Writes a fresh array into `mem`: an unlocked mutex, then the element bytes from `init`, if any.
/// Without `init` the elements are left as they are: callers zero them, unless the memory is a
/// fresh mapping (already zero, and left untouched so that its pages are not allocated).
///
/// # Safety
/// - `mem` is valid for writes of `ARRAY_DATA_OFFSET + bytes` bytes, 8-aligned, used by nobody else.
unsafe fn build_in_place(mem: NonNull<u8>, bytes: usize, init: Option<&[u8]>) {
    // SAFETY: the lock's 64 bytes lie at the start of the caller's exclusive memory.
    unsafe { mem.cast::<RawMutex>().write(RawMutex::new()) };
    if let Some(src) = init {
        debug_assert_eq!(src.len(), bytes);
        // SAFETY: the elements start ARRAY_DATA_OFFSET bytes in, inside the same memory.
        let data = unsafe { mem.add(ARRAY_DATA_OFFSET) };
        // SAFETY: `bytes` bytes fit after the lock; `src` is a separate slice of that length.
        unsafe { data.copy_from_nonoverlapping(NonNull::from(src).cast(), bytes) };
    }
}

/// A typed array with its lock, in place over caller memory laid out as
/// `[RawMutex][T; len]` ([`ARRAY_DATA_OFFSET`] bytes, then the elements).
///
/// One process builds the array with [`init`](Self::init); the others attach to the same bytes
/// with [`from_raw`](Self::from_raw). Any 8-byte aligned memory will do; in real use it is
/// shared (a region, or a mapping made by C).
/// ```
/// use core::ptr::NonNull;
/// use mpkit::{ArrayView, Element};
///
/// let mut mem = [0u64; 10]; // 80 bytes, 8-byte aligned
/// assert!(u32::TYPE.bytes_needed(3).expect("no overflow") <= size_of_val(&mem));
/// let at = NonNull::from(&mut mem).cast::<u8>();
/// // SAFETY: `mem` is large enough and aligned, used only through the views, and outlives them.
/// let view = unsafe { ArrayView::<u32>::init(at, 3, Some(&[7, 8, 9])) }?;
/// view.set(1, 80)?;
/// // SAFETY: `at` holds the array built above, written only under its lock.
/// let peer = unsafe { ArrayView::<u32>::from_raw(at, 3) }; // as another process would attach
/// assert_eq!(peer.get(1)?, 80);
/// let mut elems = peer.lock()?; // Python's `with arr.get_lock():`
/// elems[2] += 1;
/// assert_eq!(*elems, [7, 80, 10]);
/// assert!(view.try_lock().is_err()); // held through `peer`
/// # Ok::<(), mpkit::Error>(())
/// ```
pub struct ArrayView<'a, T: Element> {
    mutex: &'a RawMutex,
    data: NonNull<T>,
    len: usize,
    _elems: PhantomData<&'a [T]>,
}

// SAFETY: the elements are reached only under the lock (or through raw pointers whose use is the
// caller's unsafe promise); T is Pod, so any thread may read or write copies of it.
unsafe impl<T: Element> Send for ArrayView<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Element> Sync for ArrayView<'_, T> {}

impl<'a, T: Element> ArrayView<'a, T> {
    /// Builds a new array in `mem`: an unlocked lock, then the elements copied from `init`
    /// (or zeroed if `None`). `Inval` if `init` is not `len` long.
    ///
    /// # Safety
    /// - `mem` is valid for reads and writes of `T::TYPE.bytes_needed(len)` bytes, aligned to 8,
    ///   for `'a`, and nothing else uses those bytes during this call.
    pub unsafe fn init(mem: NonNull<u8>, len: usize, init: Option<&[T]>) -> Result<ArrayView<'a, T>, Error> {
        if init.is_some_and(|i| i.len() != len) {
            return Err(Error::Inval);
        }
        let bytes = len * size_of::<T>();
        // SAFETY: the caller gives us exclusive, aligned memory of `bytes_needed(len)` bytes.
        unsafe { build_in_place(mem, bytes, init.map(bytemuck::cast_slice)) };
        if init.is_none() {
            // SAFETY: as above; the elements follow the lock.
            let data = unsafe { mem.add(ARRAY_DATA_OFFSET) };
            // SAFETY: `bytes` element bytes fit in the caller's memory after the lock.
            unsafe { data.write_bytes(0, bytes) };
        }
        // SAFETY: the array was just built in `mem`, which lives for `'a`.
        Ok(unsafe { Self::from_raw(mem, len) })
    }

    /// Attaches to an array that [`init`](Self::init) (or C's `mpk_array_*`) built in `mem`.
    ///
    /// # Safety
    /// - `mem` holds an initialised array of `len` elements of `T`, stays mapped for `'a`, and is
    ///   written by others only under its lock (or with atomics).
    pub unsafe fn from_raw(mem: NonNull<u8>, len: usize) -> ArrayView<'a, T> {
        debug_assert!((mem.as_ptr() as usize).is_multiple_of(8));
        ArrayView {
            // SAFETY: caller duty: an initialised RawMutex sits at the start of `mem` for `'a`.
            mutex: unsafe { mem.cast::<RawMutex>().as_ref() },
            // SAFETY: the elements follow the lock inside the same allocation.
            data: unsafe { mem.add(ARRAY_DATA_OFFSET).cast::<T>() },
            len,
            _elems: PhantomData,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The array's lock (Python's `get_lock()`).
    pub fn mutex(&self) -> &'a RawMutex {
        self.mutex
    }

    /// The first element. Reading or writing through it without holding the lock races with
    /// lock holders in this and other processes unless every access is atomic.
    pub fn as_ptr(&self) -> *mut T {
        self.data.as_ptr()
    }

    /// Locks the array and gives access to all elements.
    pub fn lock(&self) -> LockResult<ArrayGuard<'a, T>> {
        self.guard(self.mutex.lock())
    }

    /// Locks the array if it is free now (`Failed(Timeout)` otherwise).
    pub fn try_lock(&self) -> LockResult<ArrayGuard<'a, T>> {
        self.guard(self.mutex.try_lock())
    }

    /// Locks the array, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<ArrayGuard<'a, T>> {
        self.guard(self.mutex.lock_timeout(timeout))
    }

    fn guard(&self, r: LockResult<MutexGuard<'a>>) -> LockResult<ArrayGuard<'a, T>> {
        let wrap = |guard| ArrayGuard { _guard: guard, data: self.data, len: self.len, _elems: PhantomData };
        r.map(wrap).map_err(|e| e.map(wrap))
    }

    /// Element `i`, read under the lock. `Inval` if out of range. If a previous holder died, the
    /// lock is released unrepaired (it becomes `NotRecoverable`) and `OwnerDead` is returned: use
    /// [`lock`](Self::lock) to repair instead.
    pub fn get(&self, i: usize) -> Result<T, Error> {
        if i >= self.len {
            return Err(Error::Inval);
        }
        Ok(self.lock().map_err(Error::from)?[i])
    }

    /// Sets element `i` under the lock; errors as for [`get`](Self::get).
    pub fn set(&self, i: usize, v: T) -> Result<(), Error> {
        if i >= self.len {
            return Err(Error::Inval);
        }
        self.lock().map_err(Error::from)?[i] = v;
        Ok(())
    }
}

/// The locked elements of an array; unlocks when dropped.
#[must_use = "the lock is released when the guard is dropped"]
pub struct ArrayGuard<'a, T: Element> {
    _guard: MutexGuard<'a>,
    data: NonNull<T>,
    len: usize,
    _elems: PhantomData<&'a mut [T]>,
}

impl<T: Element> ArrayGuard<'_, T> {
    /// Declares the elements repaired after [`Error::OwnerDead`].
    pub fn make_consistent(&self) -> Result<(), Error> {
        self._guard.make_consistent()
    }
}

impl<T: Element> core::fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ArrayGuard").field("type", &T::TYPE).field("len", &self.len).finish()
    }
}

impl<T: Element> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the guard holds the array's lock, so no one else accesses the elements; they are
        // `len` initialised Pod values in live memory.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len) }
    }
}

impl<T: Element> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`; `&mut self` makes this the only view through the guard.
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr(), self.len) }
    }
}

#[cfg(feature = "std")]
pub use owned::{AnyArray, SharedArray, SharedValue};

#[cfg(feature = "std")]
mod owned {
    use super::*;
    use crate::shm::{Kind, Region};

    /// An array in its own shared region, its element type known at run time (the C handle).
    ///
    /// Dropping it while the calling thread holds its lock releases the lock as if its owner had
    /// died; while another thread of this process holds it, the mapping is leaked instead, since
    /// that thread's robust list links the lock.
    #[derive(Debug)]
    pub struct AnyArray {
        region: core::mem::ManuallyDrop<Region>,
        ty: ElemType,
        len: usize,
    }

    impl AnyArray {
        /// A new anonymous array, shared with children forked later; `init` is `len` elements'
        /// bytes, or `None` for zeroes.
        pub fn new(ty: ElemType, len: usize, init: Option<&[u8]>) -> Result<AnyArray, Error> {
            AnyArray::build(ty, len, init, None)
        }

        /// A new named array (see [`Region::create_named`]).
        pub fn create_named(name: &str, ty: ElemType, len: usize, init: Option<&[u8]>) -> Result<AnyArray, Error> {
            AnyArray::build(ty, len, init, Some(name))
        }

        fn build(ty: ElemType, len: usize, init: Option<&[u8]>, name: Option<&str>) -> Result<AnyArray, Error> {
            let bytes = ty.bytes_needed(len).ok_or(Error::Inval)?;
            if len == 0 || init.is_some_and(|i| i.len() != len * ty.size()) {
                return Err(Error::Inval);
            }
            let layout = [ty as u64, len as u64, ty.size() as u64, 0];
            let region = Region::build(Kind::Array, layout, bytes, name, |mem| {
                // SAFETY: `mem` is the fresh (zeroed), exclusive, 64-byte-aligned payload of
                // `bytes` bytes.
                unsafe { build_in_place(mem, len * ty.size(), init) }
            })?;
            Ok(AnyArray { region: core::mem::ManuallyDrop::new(region), ty, len })
        }

        /// Attaches to the named array `name`; its type and length come from its header.
        /// `BadObject` if it is not an array or its layout does not add up.
        pub fn open_named(name: &str) -> Result<AnyArray, Error> {
            let region = Region::attach(name, Kind::Array)?;
            let [ty, len, size, _] = region.layout();
            let ty = ElemType::from_raw(ty as i64).map_err(|_| Error::BadObject)?;
            let len = usize::try_from(len).map_err(|_| Error::BadObject)?;
            if size != ty.size() as u64 || len == 0 || ty.bytes_needed(len) != Some(region.payload_len()) {
                return Err(Error::BadObject);
            }
            Ok(AnyArray { region: core::mem::ManuallyDrop::new(region), ty, len })
        }

        /// Keeps the name of a named array after this handle is dropped (see [`Region::persist`]).
        pub fn persist(&mut self) {
            self.region.persist();
        }

        /// The element type.
        pub fn elem_type(&self) -> ElemType {
            self.ty
        }

        /// Number of elements.
        pub fn len(&self) -> usize {
            self.len
        }

        /// Always false: arrays have at least one element.
        pub fn is_empty(&self) -> bool {
            false
        }

        /// The first element's address (see [`ArrayView::as_ptr`] for the rules).
        pub fn data(&self) -> *mut u8 {
            // SAFETY: the payload holds the lock and then the elements.
            unsafe { self.region.payload().add(ARRAY_DATA_OFFSET).as_ptr() }
        }

        /// The array's lock.
        pub fn mutex(&self) -> &RawMutex {
            // SAFETY: `build` (or the opened object's creator) placed an initialised RawMutex at
            // the start of the payload, and the region outlives `&self`.
            unsafe { self.region.payload().cast::<RawMutex>().as_ref() }
        }

        /// The region holding the array.
        pub fn region(&self) -> &Region {
            &self.region
        }

        fn view<T: Element>(&self) -> ArrayView<'_, T> {
            debug_assert_eq!(T::TYPE, self.ty);
            // SAFETY: the region holds an initialised array of `len` elements of `T` (checked by
            // the typed constructors) and lives as long as the returned borrow.
            unsafe { ArrayView::from_raw(self.region.payload(), self.len) }
        }
    }

    impl Drop for AnyArray {
        fn drop(&mut self) {
            if self.mutex().prepare_unmap() {
                // SAFETY: `region` is dropped once, here, and not used afterwards.
                unsafe { core::mem::ManuallyDrop::drop(&mut self.region) }
            }
        }
    }

    /// A typed array in shared memory (Python's `multiprocessing.Array`).
    ///
    /// Made before `fork`, it is shared with the children; [`create_named`](Self::create_named)
    /// and [`open_named`](Self::open_named) share it with unrelated processes.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Error, Process, SharedArray};
    ///
    /// let arr = SharedArray::from_slice(&[1i32, 2, 3, 4])?;
    /// let negate = || match arr.lock() {
    ///     Ok(mut elems) => {
    ///         elems.iter_mut().for_each(|x| *x = -*x);
    ///         0
    ///     }
    ///     Err(_) => 1,
    /// };
    /// // SAFETY: the child only uses `arr`, an mpkit object made before the fork.
    /// let child = unsafe { Process::spawn(negate) }?;
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
    /// assert_eq!(arr.to_vec()?, [-1, -2, -3, -4]);
    /// arr.set(0, 10)?;
    /// assert_eq!((arr.get(0)?, arr.len()), (10, 4));
    /// assert_eq!(arr.get(4), Err(Error::Inval)); // out of range
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct SharedArray<T: Element> {
        raw: AnyArray,
        _t: PhantomData<T>,
    }

    impl<T: Element> SharedArray<T> {
        /// `len` zeroed elements, shared with children forked after this call. `Inval` if `len` is 0.
        pub fn new(len: usize) -> Result<SharedArray<T>, Error> {
            Self::wrap(AnyArray::new(T::TYPE, len, None))
        }

        /// A copy of `init`, shared with children forked after this call.
        pub fn from_slice(init: &[T]) -> Result<SharedArray<T>, Error> {
            Self::wrap(AnyArray::new(T::TYPE, init.len(), Some(bytemuck::cast_slice(init))))
        }

        /// A new named array of `len` zeroed elements (see [`Region::create_named`]).
        pub fn create_named(name: &str, len: usize) -> Result<SharedArray<T>, Error> {
            Self::wrap(AnyArray::create_named(name, T::TYPE, len, None))
        }

        /// Attaches to the named array `name`; `BadObject` if it holds another element type.
        pub fn open_named(name: &str) -> Result<SharedArray<T>, Error> {
            let raw = AnyArray::open_named(name)?;
            if raw.elem_type() != T::TYPE {
                return Err(Error::BadObject);
            }
            Self::wrap(Ok(raw))
        }

        fn wrap(raw: Result<AnyArray, Error>) -> Result<SharedArray<T>, Error> {
            Ok(SharedArray { raw: raw?, _t: PhantomData })
        }

        /// The array as an in-place view: `lock`, `get`, `set`, `mutex`, `as_ptr`, `len`.
        pub fn view(&self) -> ArrayView<'_, T> {
            self.raw.view()
        }

        /// Locks the array and gives access to all elements.
        pub fn lock(&self) -> LockResult<ArrayGuard<'_, T>> {
            self.view().lock()
        }

        /// Element `i`, read under the lock (see [`ArrayView::get`]).
        pub fn get(&self, i: usize) -> Result<T, Error> {
            self.view().get(i)
        }

        /// Sets element `i` under the lock (see [`ArrayView::get`]).
        pub fn set(&self, i: usize, v: T) -> Result<(), Error> {
            self.view().set(i, v)
        }

        /// Copies all elements out under the lock (Python's `arr[:]`).
        pub fn to_vec(&self) -> Result<std::vec::Vec<T>, Error> {
            Ok(self.lock().map_err(Error::from)?.to_vec())
        }

        /// Number of elements.
        pub fn len(&self) -> usize {
            self.raw.len()
        }

        /// Always false: arrays have at least one element.
        pub fn is_empty(&self) -> bool {
            false
        }

        /// The untyped handle.
        pub fn as_any(&self) -> &AnyArray {
            &self.raw
        }
    }

    /// One shared value with its lock (Python's `multiprocessing.Value`).
    ///
    /// `get` and `set` each take the lock once; a read-modify-write needs [`lock`](Self::lock),
    /// or another process may update the value in between.
    /// ```
    /// use std::time::Duration;
    /// use mpkit::{Process, SharedValue};
    ///
    /// let total = SharedValue::new(0.5f64)?;
    /// total.set(2.0)?;
    /// let add_one = || match total.lock() {
    ///     Ok(mut v) => {
    ///         v[0] += 1.0; // under one lock, as `with v.get_lock(): v.value += 1`
    ///         0
    ///     }
    ///     Err(_) => 1,
    /// };
    /// // SAFETY: the child only uses `total`, an mpkit object made before the fork.
    /// let child = unsafe { Process::spawn(add_one) }?;
    /// assert_eq!(child.join_timeout(Duration::from_secs(10))?, 0);
    /// assert_eq!(total.get()?, 3.0);
    /// # Ok::<(), mpkit::Error>(())
    /// ```
    #[derive(Debug)]
    pub struct SharedValue<T: Element>(SharedArray<T>);

    impl<T: Element> SharedValue<T> {
        /// A shared `v`, shared with children forked after this call.
        pub fn new(v: T) -> Result<SharedValue<T>, Error> {
            Ok(SharedValue(SharedArray::from_slice(&[v])?))
        }

        /// The value, read under the lock (see [`ArrayView::get`] for errors).
        pub fn get(&self) -> Result<T, Error> {
            self.0.get(0)
        }

        /// Sets the value under the lock.
        pub fn set(&self, v: T) -> Result<(), Error> {
            self.0.set(0, v)
        }

        /// Locks the value for a read-modify-write (`guard[0] += 1`).
        pub fn lock(&self) -> LockResult<ArrayGuard<'_, T>> {
            self.0.lock()
        }

        /// The value's lock.
        pub fn array(&self) -> &SharedArray<T> {
            &self.0
        }
    }
}
