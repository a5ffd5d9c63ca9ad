//! `mpk_item`: the tagged keys and values of `mpk_dict` and `mpk_list`, and their conversions.

use core::ffi::{CStr, c_char, c_void};

use super::queue::bytes;
use super::{Fail, MPK_ERR_INVAL, MPK_ERR_NULL, non_null};
use crate::dict::item::{Item, ItemKind};
use crate::dict::{ContainerOptions, Head, Value};
use crate::error::Error;

/// The kind of an `mpk_item`: one of the `MPK_ITEM_*` values.
pub type mpk_item_kind = i32;
/// Python's `None` (no payload).
pub const MPK_ITEM_NONE: mpk_item_kind = 0;
/// A bool in `i`: 0 is `False`, anything else `True` (reads give 0 or 1).
pub const MPK_ITEM_BOOL: mpk_item_kind = 1;
/// An int in `i`.
pub const MPK_ITEM_INT: mpk_item_kind = 2;
/// A float (double) in `f`.
pub const MPK_ITEM_FLOAT: mpk_item_kind = 3;
/// A str: `len` bytes of UTF-8 at `ptr`, not NUL-terminated (it may contain NUL bytes).
pub const MPK_ITEM_STR: mpk_item_kind = 4;
/// A bytes: `len` bytes at `ptr`.
pub const MPK_ITEM_BYTES: mpk_item_kind = 5;

const _: () = {
    assert!(MPK_ITEM_NONE == ItemKind::None as i32 && MPK_ITEM_BOOL == ItemKind::Bool as i32);
    assert!(MPK_ITEM_INT == ItemKind::Int as i32 && MPK_ITEM_FLOAT == ItemKind::Float as i32);
    assert!(MPK_ITEM_STR == ItemKind::Str as i32 && MPK_ITEM_BYTES == ItemKind::Bytes as i32);
};

/// A key or value of an `mpk_dict` or `mpk_list`, with Python's equality: the int 1, the float
/// 1.0 and `True` are one dict key; a str never equals a bytes.
///
/// As an argument: `kind` says which fields are read (`i` for BOOL and INT, `f` for FLOAT,
/// `ptr` and `len` for STR and BYTES; the others are ignored). `ptr` may be NULL only when
/// `len` is 0 (`MPK_ERR_NULL` otherwise); a STR must be valid UTF-8 and a kind must be an
/// `MPK_ITEM_*` value (`MPK_ERR_INVAL` otherwise). The bytes are copied: they need to live only
/// for the call.
///
/// As a result: every field is written; STR and BYTES point at the caller's buffer (`ptr` = the
/// `buf` passed, `len` = the byte count), and a STR there is not NUL-terminated; the unused
/// fields are 0 (`ptr` NULL).
#[repr(C)]
#[derive(Copy, Clone)]
pub struct mpk_item {
    /// `MPK_ITEM_*`.
    pub kind: mpk_item_kind,
    /// The value of a BOOL (0 or not) or an INT.
    pub i: i64,
    /// The value of a FLOAT.
    pub f: f64,
    /// The bytes of a STR or BYTES.
    pub ptr: *const c_void,
    /// How many bytes `ptr` holds.
    pub len: usize,
}

impl mpk_item {
    const NONE: mpk_item = mpk_item { kind: MPK_ITEM_NONE, i: 0, f: 0.0, ptr: core::ptr::null(), len: 0 };
}

/// An item of kind NONE.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_item_none() -> mpk_item {
    mpk_item::NONE
}

/// An item of kind BOOL.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_item_bool(v: bool) -> mpk_item {
    mpk_item { kind: MPK_ITEM_BOOL, i: i64::from(v), ..mpk_item::NONE }
}

/// An item of kind INT.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_item_int(v: i64) -> mpk_item {
    mpk_item { kind: MPK_ITEM_INT, i: v, ..mpk_item::NONE }
}

/// An item of kind FLOAT.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_item_float(v: f64) -> mpk_item {
    mpk_item { kind: MPK_ITEM_FLOAT, f: v, ..mpk_item::NONE }
}

/// A STR item over the NUL-terminated string `s` (the NUL not included; the item points at `s`,
/// which must outlive its uses). UTF-8 is checked when the item is used. `s` NULL gives a STR
/// with `ptr` NULL and `len` `SIZE_MAX`, which every call taking it refuses with `MPK_ERR_NULL`.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_item_str(s: *const c_char) -> mpk_item {
    let len = if s.is_null() {
        usize::MAX
    } else {
        // SAFETY: non-NULL and NUL-terminated by the caller's contract.
        unsafe { CStr::from_ptr(s) }.count_bytes()
    };
    mpk_item { kind: MPK_ITEM_STR, ptr: s.cast(), len, ..mpk_item::NONE }
}

/// A BYTES item over `len` bytes at `p` (NULL allowed when `len` is 0); the item points at `p`.
#[unsafe(no_mangle)]
pub extern "C" fn mpk_item_bytes(p: *const c_void, len: usize) -> mpk_item {
    mpk_item { kind: MPK_ITEM_BYTES, ptr: p, len, ..mpk_item::NONE }
}

/// The item a C `mpk_item` argument describes (see `mpk_item` for the statuses).
///
/// # Safety
/// - `p` is NULL or a readable `mpk_item` whose `ptr` (for STR/BYTES) is readable for `len`
///   bytes for `'a`.
pub(super) unsafe fn item_arg<'a>(p: *const mpk_item) -> Result<Item<'a>, Fail> {
    non_null(p)?;
    // SAFETY: non-NULL and readable (caller duty); `mpk_item` is `Copy` and every bit pattern of
    // its fields is valid.
    let it = unsafe { p.read() };
    // SAFETY: forwarded caller duty.
    unsafe { item_of(&it) }
}

/// The item `it` describes.
///
/// # Safety
/// - for STR/BYTES, `it.ptr` is readable for `it.len` bytes for `'a` (or NULL).
pub(super) unsafe fn item_of<'a>(it: &mpk_item) -> Result<Item<'a>, Fail> {
    Ok(match it.kind {
        MPK_ITEM_NONE => Item::None,
        MPK_ITEM_BOOL => Item::Bool(it.i != 0),
        MPK_ITEM_INT => Item::Int(it.i),
        MPK_ITEM_FLOAT => Item::Float(it.f),
        MPK_ITEM_STR | MPK_ITEM_BYTES => {
            if it.ptr.is_null() && it.len != 0 {
                return Err(Fail(MPK_ERR_NULL));
            }
            // SAFETY: readable for `len` bytes (caller duty), or NULL with `len` 0.
            let b = unsafe { bytes(it.ptr, it.len) }?;
            if it.kind == MPK_ITEM_BYTES {
                Item::Bytes(b)
            } else {
                Item::Str(core::str::from_utf8(b).map_err(|_| Fail(MPK_ERR_INVAL))?)
            }
        }
        _ => return Err(Fail(MPK_ERR_INVAL)),
    })
}

/// The C form of an item whose bytes (for STR/BYTES) are at `buf`.
fn item_out(item: &Item<'_>, buf: *mut c_void) -> mpk_item {
    match *item {
        Item::None => mpk_item::NONE,
        Item::Bool(b) => mpk_item_bool(b),
        Item::Int(i) => mpk_item_int(i),
        Item::Float(f) => mpk_item_float(f),
        Item::Str(s) => mpk_item { kind: MPK_ITEM_STR, ptr: buf.cast_const(), len: s.len(), ..mpk_item::NONE },
        Item::Bytes(b) => mpk_item { kind: MPK_ITEM_BYTES, ptr: buf.cast_const(), len: b.len(), ..mpk_item::NONE },
    }
}

/// Writes a read item, whose bytes were copied to `b` (the caller's `buf`) if they fit, to the
/// out-parameters: `*out_len` = its length and `*out`. If `b` is too small, `MPK_ERR_MSGSIZE`
/// with `*out_len` = the size needed, and `*out` is left alone. A STR that is not UTF-8 (only a
/// foreign writer can leave one) is `MPK_ERR_BAD_OBJECT`, so C always gets valid UTF-8.
///
/// # Safety
/// - `out` and `out_len` are non-NULL and writable.
pub(super) unsafe fn report_item(
    head: &Head,
    out: *mut mpk_item,
    buf: *mut c_void,
    b: &[u8],
    out_len: *mut usize,
) -> Result<(), Fail> {
    if head.len > b.len() {
        // SAFETY: non-NULL and writable (caller duty).
        unsafe { out_len.write(head.len) };
        return Err(Error::MsgSize { needed: head.len }.into());
    }
    let item = head.item(&b[..head.len])?;
    // SAFETY: non-NULL and writable (caller duty).
    unsafe { out_len.write(head.len) };
    // SAFETY: non-NULL and writable (caller duty).
    unsafe { out.write(item_out(&item, buf)) };
    Ok(())
}

/// Writes a repr to the caller's buffer, NUL-terminated: `*out_len` is its length without the
/// NUL; if `cap` is less than that plus one, `MPK_ERR_MSGSIZE` with `*out_len` the size needed,
/// NUL included, and nothing written to `buf`.
///
/// # Safety
/// - `buf` is writable for `cap` bytes (or NULL with `cap` 0); `out_len` is non-NULL and writable.
pub(super) unsafe fn report_repr(s: &str, buf: *mut c_char, cap: usize, out_len: *mut usize) -> Result<(), Fail> {
    let needed = s.len() + 1;
    if needed > cap {
        // SAFETY: non-NULL and writable (caller duty).
        unsafe { out_len.write(needed) };
        return Err(Error::MsgSize { needed }.into());
    }
    // SAFETY: writable for `cap` bytes (caller duty), `cap >= needed > 0` so `buf` is non-NULL
    // (checked by `bytes_mut`).
    let dst = unsafe { super::queue::bytes_mut(buf.cast(), needed) }?;
    dst[..s.len()].copy_from_slice(s.as_bytes());
    dst[s.len()] = 0;
    // SAFETY: non-NULL and writable (caller duty).
    unsafe { out_len.write(s.len()) };
    Ok(())
}

/// The reserve an options struct asks for: `struct_size` must be at least `min_size` (the end of
/// its `reserve` field; `MPK_ERR_INVAL` otherwise), and only then is `reserve` read; 0 is the
/// default (1 GiB).
pub(super) fn options(
    struct_size: usize,
    min_size: usize,
    reserve: impl FnOnce() -> usize,
) -> Result<ContainerOptions, Fail> {
    if struct_size < min_size {
        return Err(Fail(MPK_ERR_INVAL));
    }
    let mut o = ContainerOptions::default();
    let r = reserve();
    if r != 0 {
        o.reserve = r;
    }
    Ok(o)
}

/// Writes an owned value as `report_item` writes a read one, copying its bytes to `buf` when
/// they fit.
///
/// # Safety
/// - `buf` is writable for `cap` bytes (or NULL with `cap` 0); `out` and `out_len` are non-NULL
///   and writable.
pub(super) unsafe fn report_value(
    v: &Value,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> Result<(), Fail> {
    // SAFETY: writable for `cap` bytes (caller duty).
    let dst = unsafe { super::queue::bytes_mut(buf, cap) }?;
    let (scalar, data): (u64, &[u8]) = match v {
        Value::None => (0, &[]),
        Value::Bool(b) => (u64::from(*b), &[]),
        Value::Int(i) => (*i as u64, &[]),
        Value::Float(f) => (f.to_bits(), &[]),
        Value::Str(s) => (0, s.as_bytes()),
        Value::Bytes(b) => (0, b),
    };
    if data.len() <= cap {
        dst[..data.len()].copy_from_slice(data);
    }
    let head = Head { kind: v.as_item().kind(), len: data.len(), scalar };
    // SAFETY: forwarded caller duty.
    unsafe { report_item(&head, out, buf, dst, out_len) }
}
