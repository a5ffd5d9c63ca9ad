//! `mpk_array`: typed shared arrays and values (Python's `Array`, `Value`, `get_lock()`).

use core::ffi::{c_char, c_void};

use super::mutex::mpk_mutex;
use super::{Fail, call, call_or, mpk_status, non_null, str_arg, write_out};
use crate::array::{AnyArray, ElemType};

/// An element type: one of the `MPK_TYPE_*` values.
pub type mpk_type = i32;

/// `int8_t` (Python `'b'`).
pub const MPK_TYPE_I8: mpk_type = 1;
/// `uint8_t` (`'B'`).
pub const MPK_TYPE_U8: mpk_type = 2;
/// `int16_t` (`'h'`).
pub const MPK_TYPE_I16: mpk_type = 3;
/// `uint16_t` (`'H'`).
pub const MPK_TYPE_U16: mpk_type = 4;
/// `int32_t` (`'i'`).
pub const MPK_TYPE_I32: mpk_type = 5;
/// `uint32_t` (`'I'`).
pub const MPK_TYPE_U32: mpk_type = 6;
/// `int64_t` (`'q'`, and `'l'`: C `long` on 64-bit Linux).
pub const MPK_TYPE_I64: mpk_type = 7;
/// `uint64_t` (`'Q'`, `'L'`).
pub const MPK_TYPE_U64: mpk_type = 8;
/// `float` (`'f'`).
pub const MPK_TYPE_F32: mpk_type = 9;
/// `double` (`'d'`).
pub const MPK_TYPE_F64: mpk_type = 10;

const _: () = {
    assert!(MPK_TYPE_I8 == ElemType::I8 as i32 && MPK_TYPE_U8 == ElemType::U8 as i32);
    assert!(MPK_TYPE_I16 == ElemType::I16 as i32 && MPK_TYPE_U16 == ElemType::U16 as i32);
    assert!(MPK_TYPE_I32 == ElemType::I32 as i32 && MPK_TYPE_U32 == ElemType::U32 as i32);
    assert!(MPK_TYPE_I64 == ElemType::I64 as i32 && MPK_TYPE_U64 == ElemType::U64 as i32);
    assert!(MPK_TYPE_F32 == ElemType::F32 as i32 && MPK_TYPE_F64 == ElemType::F64 as i32);
};

/// A typed array (or value) in shared memory, with its lock. Thread-safe handle; the elements
/// follow the lock discipline of the caller (lock with `mpk_array_lock`, or use atomics).
pub struct mpk_array {
    inner: AnyArray,
}

/// The array behind a handle, or `MPK_ERR_NULL`.
///
/// # Safety
/// - `a` is NULL or a live handle from `mpk_array_create*`/`mpk_value_create`/`mpk_array_open_named`.
pub(super) unsafe fn array<'a>(a: *const mpk_array) -> Option<&'a AnyArray> {
    // SAFETY: forwarded caller duty.
    unsafe { a.as_ref() }.map(|a| &a.inner)
}

fn element_bytes<'a>(ty: ElemType, len: usize, init: *const c_void) -> Result<Option<&'a [u8]>, Fail> {
    if init.is_null() {
        return Ok(None);
    }
    let bytes = len.checked_mul(ty.size()).ok_or(crate::error::Error::Inval)?;
    // SAFETY: the caller promises `init` points to `len` elements of `ty` (see the C docs).
    Ok(Some(unsafe { core::slice::from_raw_parts(init.cast::<u8>(), bytes) }))
}

fn publish(out: *mut *mut mpk_array, inner: AnyArray) -> Result<(), Fail> {
    let p = Box::into_raw(Box::new(mpk_array { inner }));
    // SAFETY: `out` was checked non-NULL by the caller of `publish`; valid by the C contract.
    unsafe { write_out(out, p) }
}

/// Parses a Python type code (`"b" "B" "h" "H" "i" "I" "l" "L" "q" "Q" "f" "d"`).
/// `MPK_ERR_INVAL` for anything else.
///
/// # Safety
/// `typecode` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_type_from_code(typecode: *const c_char, out: *mut mpk_type) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let code = unsafe { str_arg(typecode) }?;
        let ty = ElemType::from_code(code)?;
        // SAFETY: non-NULL (checked) and writable (caller duty).
        unsafe { write_out(out, ty as mpk_type) }
    })
}

/// Size in bytes of one element of `type`, or 0 if `type` is not an `MPK_TYPE_*` value.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_type_size(r#type: mpk_type) -> usize {
    ElemType::from_raw(r#type.into()).map_or(0, ElemType::size)
}

/// Creates an array of `len` elements of `type` in a new shared mapping, shared with children
/// forked afterwards. `init` points to `len` elements to copy, or is NULL for zeroes.
/// `MPK_ERR_INVAL` for an unknown type, `len` 0 or too large.
///
/// # Safety
/// `init` is NULL or readable for `len` elements; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_create(
    r#type: mpk_type,
    len: usize,
    init: *const c_void,
    out: *mut *mut mpk_array,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        let ty = ElemType::from_raw(r#type.into())?;
        publish(out, AnyArray::new(ty, len, element_bytes(ty, len, init)?)?)
    })
}

/// Creates one shared value of `type` (an array of one), initialised from `*init` or zero.
///
/// # Safety
/// `init` is NULL or readable for one element; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_value_create(
    r#type: mpk_type,
    init: *const c_void,
    out: *mut *mut mpk_array,
) -> mpk_status {
    // SAFETY: forwarded caller duty, with len = 1.
    unsafe { mpk_array_create(r#type, 1, init, out) }
}

/// Creates a named array that unrelated processes open with `mpk_array_open_named`. The name
/// stays until `mpk_shm_unlink(name)`. `MPK_ERR_EXISTS` if the name is taken.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `init` is NULL or readable for `len` elements; `out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_create_named(
    name: *const c_char,
    r#type: mpk_type,
    len: usize,
    init: *const c_void,
    out: *mut *mut mpk_array,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let name = unsafe { str_arg(name) }?;
        let ty = ElemType::from_raw(r#type.into())?;
        let mut a = AnyArray::create_named(name, ty, len, element_bytes(ty, len, init)?)?;
        a.persist();
        publish(out, a)
    })
}

/// Opens a named array; its type and length come from the object (see `mpk_array_type`,
/// `mpk_array_len`). `MPK_ERR_NOT_FOUND`; `MPK_ERR_BAD_OBJECT` if it is not an mpkit array
/// (foreign, truncated, another kind); `MPK_ERR_VERSION`.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_open_named(name: *const c_char, out: *mut *mut mpk_array) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let name = unsafe { str_arg(name) }?;
        publish(out, AnyArray::open_named(name)?)
    })
}

/// The first element (NULL if `a` is NULL). Valid until `mpk_array_destroy`. Access elements
/// while holding `mpk_array_lock(a)` when other threads or processes may write them.
///
/// # Safety
/// `a` is NULL or a live array handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_data(a: *mut mpk_array) -> *mut c_void {
    // SAFETY: forwarded caller duty.
    call_or(core::ptr::null_mut(), || unsafe { array(a) }.map_or(core::ptr::null_mut(), |a| a.data().cast()))
}

/// Number of elements (0 if `a` is NULL).
///
/// # Safety
/// `a` is NULL or a live array handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_len(a: *const mpk_array) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { array(a) }.map_or(0, AnyArray::len))
}

/// The element type (0, not a valid type, if `a` is NULL).
///
/// # Safety
/// `a` is NULL or a live array handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_type(a: *const mpk_array) -> mpk_type {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { array(a) }.map_or(0, |a| a.elem_type() as mpk_type))
}

/// The array's lock (Python's `get_lock()`), shared by every process using the array; NULL if
/// `a` is NULL. Valid until `mpk_array_destroy`; never pass it to `mpk_mutex_destroy`.
///
/// # Safety
/// `a` is NULL or a live array handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_lock(a: *mut mpk_array) -> *mut mpk_mutex {
    call_or(core::ptr::null_mut(), || {
        // SAFETY: forwarded caller duty.
        unsafe { array(a) }.map_or(core::ptr::null_mut(), |a| core::ptr::from_ref(a.mutex()).cast_mut().cast())
    })
}

/// Releases this process's handle and mapping (other processes keep theirs). NULL is ignored.
/// Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `a` is NULL or a live array handle, not used after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_array_destroy(a: *mut mpk_array) {
    if !a.is_null() {
        // SAFETY: `a` came from Box::into_raw in `publish` and is not used again (caller duty).
        call_or((), || drop(unsafe { Box::from_raw(a) }));
    }
}
