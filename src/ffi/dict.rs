//! `mpk_dict`: Python's `Manager().dict()` in shared memory, with no server process.

use core::ffi::{c_char, c_void};

use super::item::{item_arg, mpk_item, options, report_item, report_repr, report_value};
use super::queue::bytes_mut;
use super::{Fail, MPK_ERR_CLOSED, MPK_ERR_NULL, call, call_or, mpk_status, non_null, str_arg, write_out};
use crate::dict::{ContainerOptions, Cursor, SharedDict};
use crate::error::Error;

/// Options for `mpk_dict_create` and `mpk_dict_create_named`. Set
/// `struct_size = sizeof(mpk_dict_opts)` (`MPK_ERR_INVAL` if smaller); a field left 0 takes its
/// default.
#[repr(C)]
pub struct mpk_dict_opts {
    /// `sizeof(mpk_dict_opts)` as the caller was compiled.
    pub struct_size: usize,
    /// Bytes of address space reserved for the dict (default 1 GiB, at least 64 KiB): the most
    /// it can ever hold. Pages cost memory only once used; past it, writes fail with
    /// `MPK_ERR_NOMEM` and change nothing.
    pub reserve: usize,
}

/// A dict of `mpk_item` keys and values in shared memory (Python's `Manager().dict()`):
/// shared with children forked after its creation, or opened by name. Iteration is in insertion
/// order. Any thread of any process may use it at once; a process killed in the middle of a
/// call leaves it consistent (the call happened entirely or not at all).
pub struct mpk_dict {
    inner: SharedDict,
}

/// A cursor over an `mpk_dict`, a plain value (copy it, keep it anywhere): set it with
/// `mpk_dict_iter_begin`, step it with `mpk_dict_iter_next`. It survives concurrent changes:
/// it yields each key present from its start until reached at most once, never one inserted
/// after its start.
#[repr(C)]
#[derive(Copy, Clone)]
pub struct mpk_dict_iter {
    /// Where the cursor is (opaque).
    pub from: u64,
    /// Where it ends (opaque).
    pub end: u64,
}

/// # Safety
/// - `d` is NULL or a live handle.
unsafe fn dict<'a>(d: *const mpk_dict) -> Result<&'a SharedDict, Fail> {
    // SAFETY: forwarded caller duty.
    unsafe { d.as_ref() }.map(|d| &d.inner).ok_or(Fail(MPK_ERR_NULL))
}

fn opts_of(opts: *const mpk_dict_opts) -> Result<ContainerOptions, Fail> {
    // SAFETY: NULL or readable for `struct_size` bytes (C contract); `options` reads `reserve`
    // only if `struct_size` covers it.
    let Some(o) = (unsafe { opts.as_ref() }) else { return Ok(ContainerOptions::default()) };
    let min = core::mem::offset_of!(mpk_dict_opts, reserve) + size_of::<usize>();
    options(o.struct_size, min, || o.reserve)
}

fn publish(out: *mut *mut mpk_dict, inner: SharedDict) -> Result<(), Fail> {
    let p = Box::into_raw(Box::new(mpk_dict { inner }));
    // SAFETY: the callers check `out` non-NULL first; writable by the C contract.
    unsafe { write_out(out, p) }
}

/// Creates an empty dict in a new shared mapping, shared with children forked afterwards.
/// `opts` may be NULL (defaults). `MPK_ERR_INVAL` for a bad `struct_size` or a reserve under
/// 64 KiB; `MPK_ERR_NOMEM` if the mapping cannot be made.
///
/// # Safety
/// `opts` is NULL or a valid options struct; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_create(opts: *const mpk_dict_opts, out: *mut *mut mpk_dict) -> mpk_status {
    call(|| {
        non_null(out)?;
        publish(out, SharedDict::with_options(&opts_of(opts)?)?)
    })
}

/// Creates the named dict `name` (`"/name"` or `"name"`), which unrelated processes open with
/// `mpk_dict_open_named`; the name stays until `mpk_dict_unlink`. `opts` may be NULL.
/// `MPK_ERR_EXISTS` if the name is taken; `MPK_ERR_INVAL` for a bad name or options.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `opts` is NULL or a valid options struct; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_create_named(
    name: *const c_char,
    opts: *const mpk_dict_opts,
    out: *mut *mut mpk_dict,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let name = unsafe { str_arg(name) }?;
        let mut d = SharedDict::create_named(name, &opts_of(opts)?)?;
        d.persist();
        publish(out, d)
    })
}

/// Opens a named dict. `MPK_ERR_NOT_FOUND`; `MPK_ERR_BAD_OBJECT` if it is not an mpkit dict
/// (foreign, another kind such as a list or a queue, corrupted); `MPK_ERR_VERSION`.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_open_named(name: *const c_char, out: *mut *mut mpk_dict) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        publish(out, SharedDict::open_named(unsafe { str_arg(name) }?)?)
    })
}

/// Removes a dict's name; processes that have it open keep it. `MPK_ERR_NOT_FOUND`.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_unlink(name: *const c_char) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(SharedDict::unlink(unsafe { str_arg(name) }?)?))
}

/// Releases this process's handle and mapping (other processes keep theirs, and the data).
/// NULL is ignored. Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `d` is NULL or a live handle, not used after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_destroy(d: *mut mpk_dict) {
    if !d.is_null() {
        // SAFETY: `d` came from Box::into_raw in `publish` and is not used again (caller duty).
        call_or((), || drop(unsafe { Box::from_raw(d) }));
    }
}

/// `d[key] = value`. `MPK_ERR_NOMEM` if the reserve is used up (nothing changes).
///
/// # Safety
/// `d` is NULL or a live handle; `key` and `value` are NULL or valid items.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_set(d: *mut mpk_dict, key: *const mpk_item, value: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let key = unsafe { item_arg(key) }?;
        // SAFETY: forwarded caller duty.
        let value = unsafe { item_arg(value) }?;
        Ok(d.set(key, value)?)
    })
}

/// `d[key]`: the value into `*out`; a STR or BYTES value's bytes are copied to `buf` (`cap`
/// bytes; `out->ptr` = `buf`, not NUL-terminated) and `*out_len` is their count (0 for the other
/// kinds). `MPK_ERR_NOT_FOUND` if `key` is absent; `MPK_ERR_MSGSIZE` if `cap` is too small:
/// then `*out_len` is the size needed and `*out` is not written.
///
/// # Safety
/// `d` is NULL or a live handle; `key` is NULL or a valid item; `out` and `out_len` are NULL or
/// writable; `buf` is writable for `cap` bytes (or NULL with `cap` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_get(
    d: *const mpk_dict,
    key: *const mpk_item,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let key = unsafe { item_arg(key) }?;
        // SAFETY: forwarded caller duty.
        let b = unsafe { bytes_mut(buf, cap) }?;
        let head = d.get_into(&key, b)?.ok_or(Error::NotFound)?;
        // SAFETY: `out`, `out_len` checked non-NULL; writable by the caller's contract.
        unsafe { report_item(&head, out, buf, b, out_len) }
    })
}

/// `del d[key]`. `MPK_ERR_NOT_FOUND` if absent.
///
/// # Safety
/// `d` is NULL or a live handle; `key` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_del(d: *mut mpk_dict, key: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        Ok(d.del(unsafe { item_arg(key) }?)?)
    })
}

/// `key in d`, into `*out`.
///
/// # Safety
/// `d` is NULL or a live handle; `key` is NULL or a valid item; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_contains(d: *const mpk_dict, key: *const mpk_item, out: *mut bool) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let found = d.contains(unsafe { item_arg(key) }?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, found) }
    })
}

/// `len(d)` (0 if `d` is NULL).
///
/// # Safety
/// `d` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_len(d: *const mpk_dict) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { dict(d) }.map_or(0, SharedDict::len))
}

/// `d.clear()`: every item goes, and the memory they held is given back.
///
/// # Safety
/// `d` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_clear(d: *mut mpk_dict) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { dict(d) }?.clear()?))
}

/// `d.pop(key)`: removes `key` and gives its value as `mpk_dict_get` does. `MPK_ERR_NOT_FOUND`
/// if absent; `MPK_ERR_MSGSIZE` if `cap` is too small (`*out_len` = size needed), and then the
/// key stays.
///
/// # Safety
/// As `mpk_dict_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_pop(
    d: *mut mpk_dict,
    key: *const mpk_item,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let key = unsafe { item_arg(key) }?;
        // SAFETY: forwarded caller duty.
        let b = unsafe { bytes_mut(buf, cap) }?;
        let head = match d.pop_into(&key, b) {
            Ok(head) => head,
            Err(Error::MsgSize { needed }) => {
                // SAFETY: checked non-NULL; writable by the caller's contract.
                unsafe { out_len.write(needed) };
                return Err(Error::MsgSize { needed }.into());
            }
            Err(e) => return Err(e.into()),
        };
        // SAFETY: `out`, `out_len` checked non-NULL; writable by the caller's contract.
        unsafe { report_item(&head, out, buf, b, out_len) }
    })
}

/// `d.setdefault(key, default)`: sets `key` to `default` if it is absent, then gives the value
/// of `key` as `mpk_dict_get` does. On `MPK_ERR_MSGSIZE` (`*out_len` = size needed) the
/// default was still set if the key was absent: call again with a larger buffer.
///
/// # Safety
/// As `mpk_dict_get`; `dflt` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_setdefault(
    d: *mut mpk_dict,
    key: *const mpk_item,
    dflt: *const mpk_item,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let key = unsafe { item_arg(key) }?;
        // SAFETY: forwarded caller duty.
        let dflt = unsafe { item_arg(dflt) }?;
        // SAFETY: forwarded caller duty (checks `buf` before anything is set).
        unsafe { bytes_mut(buf, cap) }?;
        let v = d.setdefault(key, dflt)?;
        // SAFETY: forwarded caller duty; `out`, `out_len` checked non-NULL.
        unsafe { report_value(&v, out, buf, cap, out_len) }
    })
}

/// Sets `*it` to the start of `d` (the dict's insertion order).
///
/// # Safety
/// `d` is NULL or a live handle; `it` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_iter_begin(d: *const mpk_dict, it: *mut mpk_dict_iter) -> mpk_status {
    call(|| {
        non_null(it)?;
        // SAFETY: forwarded caller duty.
        let c = unsafe { dict(d) }?.cursor();
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(it, mpk_dict_iter { from: c.from, end: c.end }) }
    })
}

/// The next `(key, value)` pair of the cursor `*it`, which then moves on: each written as
/// `mpk_dict_get` writes a value (bytes to `kbuf` and `vbuf`, lengths to `*klen` and `*vlen`).
/// `MPK_ERR_CLOSED` when the cursor is past the end. `MPK_ERR_MSGSIZE` if either buffer is too
/// small: `*klen` and `*vlen` are then the sizes needed, `*it` and the items are left alone, and
/// the next call returns the same pair.
///
/// # Safety
/// `d` is NULL or a live handle; `it` is NULL or a cursor from `mpk_dict_iter_begin` on this
/// dict; `key_out`, `klen`, `val_out`, `vlen` are NULL or writable; `kbuf` and `vbuf` are
/// writable for `kcap` and `vcap` bytes (or NULL with a capacity of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_iter_next(
    d: *const mpk_dict,
    it: *mut mpk_dict_iter,
    key_out: *mut mpk_item,
    kbuf: *mut c_void,
    kcap: usize,
    klen: *mut usize,
    val_out: *mut mpk_item,
    vbuf: *mut c_void,
    vcap: usize,
    vlen: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(it)?;
        non_null(key_out)?;
        non_null(klen)?;
        non_null(val_out)?;
        non_null(vlen)?;
        // SAFETY: forwarded caller duty.
        let d = unsafe { dict(d) }?;
        // SAFETY: forwarded caller duty.
        let kb = unsafe { bytes_mut(kbuf, kcap) }?;
        // SAFETY: forwarded caller duty.
        let vb = unsafe { bytes_mut(vbuf, vcap) }?;
        // SAFETY: checked non-NULL; readable by the caller's contract.
        let c = unsafe { it.read() };
        let mut cursor = Cursor { from: c.from, end: c.end };
        let Some((k, v)) = d.next_into(&mut cursor, kb, vb)? else { return Err(Fail(MPK_ERR_CLOSED)) };
        if k.len > kcap || v.len > vcap {
            // SAFETY: checked non-NULL; writable by the caller's contract.
            unsafe { klen.write(k.len) };
            // SAFETY: as above.
            unsafe { vlen.write(v.len) };
            return Err(Error::MsgSize { needed: k.len.max(v.len) }.into());
        }
        // SAFETY: `key_out` and `klen` checked non-NULL; `k.len <= kcap`.
        unsafe { report_item(&k, key_out, kbuf, kb, klen) }?;
        // SAFETY: `val_out` and `vlen` checked non-NULL; `v.len <= vcap`.
        unsafe { report_item(&v, val_out, vbuf, vb, vlen) }?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(it, mpk_dict_iter { from: cursor.from, end: cursor.end }) }
    })
}

/// Python's `repr(d)`, e.g. `{1: '1', '2': 2, 0.25: None}`, NUL-terminated into `buf`;
/// `*out_len` is its length without the NUL. `MPK_ERR_MSGSIZE` if `cap` is too small: then
/// `*out_len` is the size needed, NUL included.
///
/// # Safety
/// `d` is NULL or a live handle; `buf` is writable for `cap` bytes (or NULL with `cap` 0);
/// `out_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_repr(
    d: *const mpk_dict,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let s = unsafe { dict(d) }?.repr()?;
        // SAFETY: forwarded caller duty; `out_len` checked non-NULL.
        unsafe { report_repr(&s, buf, cap, out_len) }
    })
}

/// How many operations of writers that died after committing them were finished by others
/// (0 if `d` is NULL).
///
/// # Safety
/// `d` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_dict_repairs(d: *const mpk_dict) -> u64 {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { dict(d) }.map_or(0, SharedDict::repairs))
}
