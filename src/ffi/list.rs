//! `mpk_list`: Python's `Manager().list()` in shared memory, with no server process.

use core::ffi::{c_char, c_void};

use super::item::{item_arg, item_of, mpk_item, options, report_item, report_repr};
use super::queue::bytes_mut;
use super::{Fail, MPK_ERR_NULL, call, call_or, mpk_status, non_null, str_arg, write_out};
use crate::dict::{ContainerOptions, SharedList};
use crate::error::Error;

/// Options for `mpk_list_create` and `mpk_list_create_named`. Set
/// `struct_size = sizeof(mpk_list_opts)` (`MPK_ERR_INVAL` if smaller); a field left 0 takes its
/// default.
#[repr(C)]
pub struct mpk_list_opts {
    /// `sizeof(mpk_list_opts)` as the caller was compiled.
    pub struct_size: usize,
    /// Bytes of address space reserved for the list (default 1 GiB, at least 64 KiB): the most
    /// it can ever hold. Pages cost memory only once used; past it, writes fail with
    /// `MPK_ERR_NOMEM` and change nothing.
    pub reserve: usize,
}

/// A list of `mpk_item`s in shared memory (Python's `Manager().list()`): shared with children
/// forked after its creation, or opened by name. Indexes are `int64_t`, negative ones counting
/// from the end as in Python; an index out of range is `MPK_ERR_INVAL` (Python's IndexError).
/// Any thread of any process may use it at once; a process killed in the middle of a call
/// leaves it consistent (the call happened entirely or not at all).
pub struct mpk_list {
    inner: SharedList,
}

/// # Safety
/// - `l` is NULL or a live handle.
unsafe fn list<'a>(l: *const mpk_list) -> Result<&'a SharedList, Fail> {
    // SAFETY: forwarded caller duty.
    unsafe { l.as_ref() }.map(|l| &l.inner).ok_or(Fail(MPK_ERR_NULL))
}

fn opts_of(opts: *const mpk_list_opts) -> Result<ContainerOptions, Fail> {
    // SAFETY: NULL or readable for `struct_size` bytes (C contract); `options` reads `reserve`
    // only if `struct_size` covers it.
    let Some(o) = (unsafe { opts.as_ref() }) else { return Ok(ContainerOptions::default()) };
    let min = core::mem::offset_of!(mpk_list_opts, reserve) + size_of::<usize>();
    options(o.struct_size, min, || o.reserve)
}

fn publish(out: *mut *mut mpk_list, inner: SharedList) -> Result<(), Fail> {
    let p = Box::into_raw(Box::new(mpk_list { inner }));
    // SAFETY: the callers check `out` non-NULL first; writable by the C contract.
    unsafe { write_out(out, p) }
}

/// Creates an empty list in a new shared mapping, shared with children forked afterwards.
/// `opts` may be NULL (defaults). `MPK_ERR_INVAL` for a bad `struct_size` or a reserve under
/// 64 KiB; `MPK_ERR_NOMEM` if the mapping cannot be made.
///
/// # Safety
/// `opts` is NULL or a valid options struct; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_create(opts: *const mpk_list_opts, out: *mut *mut mpk_list) -> mpk_status {
    call(|| {
        non_null(out)?;
        publish(out, SharedList::with_options(&opts_of(opts)?)?)
    })
}

/// Creates the named list `name` (`"/name"` or `"name"`), which unrelated processes open with
/// `mpk_list_open_named`; the name stays until `mpk_list_unlink`. `opts` may be NULL.
/// `MPK_ERR_EXISTS` if the name is taken; `MPK_ERR_INVAL` for a bad name or options.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `opts` is NULL or a valid options struct; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_create_named(
    name: *const c_char,
    opts: *const mpk_list_opts,
    out: *mut *mut mpk_list,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let name = unsafe { str_arg(name) }?;
        let mut l = SharedList::create_named(name, &opts_of(opts)?)?;
        l.persist();
        publish(out, l)
    })
}

/// Opens a named list. `MPK_ERR_NOT_FOUND`; `MPK_ERR_BAD_OBJECT` if it is not an mpkit list
/// (foreign, another kind such as a dict or a queue, corrupted); `MPK_ERR_VERSION`.
///
/// # Safety
/// `name` is NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_open_named(name: *const c_char, out: *mut *mut mpk_list) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        publish(out, SharedList::open_named(unsafe { str_arg(name) }?)?)
    })
}

/// Removes a list's name; processes that have it open keep it. `MPK_ERR_NOT_FOUND`.
///
/// # Safety
/// `name` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_unlink(name: *const c_char) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(SharedList::unlink(unsafe { str_arg(name) }?)?))
}

/// Releases this process's handle and mapping (other processes keep theirs, and the data).
/// NULL is ignored. Destroying the same handle twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `l` is NULL or a live handle, not used after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_destroy(l: *mut mpk_list) {
    if !l.is_null() {
        // SAFETY: `l` came from Box::into_raw in `publish` and is not used again (caller duty).
        call_or((), || drop(unsafe { Box::from_raw(l) }));
    }
}

/// `l.append(v)`. `MPK_ERR_NOMEM` if the reserve is used up (nothing changes).
///
/// # Safety
/// `l` is NULL or a live handle; `v` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_append(l: *mut mpk_list, v: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        Ok(l.append(unsafe { item_arg(v) }?)?)
    })
}

/// `l.extend(items[0..n])`: all of them, or (on any error) none. `items` may be NULL when `n`
/// is 0.
///
/// # Safety
/// `l` is NULL or a live handle; `items` is readable for `n` valid items.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_extend(l: *mut mpk_list, items: *const mpk_item, n: usize) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        if n == 0 {
            return Ok(());
        }
        non_null(items)?;
        // SAFETY: non-NULL and readable for `n` items (caller duty).
        let c = unsafe { core::slice::from_raw_parts(items, n) };
        // SAFETY: forwarded caller duty (each item's bytes are readable).
        let all = c.iter().map(|it| unsafe { item_of(it) }).collect::<Result<Vec<_>, Fail>>()?;
        Ok(l.extend(&all)?)
    })
}

/// `l.insert(index, v)`: an index past either end inserts at that end, as in Python.
///
/// # Safety
/// `l` is NULL or a live handle; `v` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_insert(l: *mut mpk_list, index: i64, v: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        Ok(l.insert(index, unsafe { item_arg(v) }?)?)
    })
}

/// `l[index]`: the item into `*out`; a STR or BYTES item's bytes are copied to `buf` (`cap`
/// bytes; `out->ptr` = `buf`, not NUL-terminated) and `*out_len` is their count (0 for the other
/// kinds). `MPK_ERR_INVAL` if `index` is out of range; `MPK_ERR_MSGSIZE` if `cap` is too small:
/// then `*out_len` is the size needed and `*out` is not written.
///
/// # Safety
/// `l` is NULL or a live handle; `out` and `out_len` are NULL or writable; `buf` is writable for
/// `cap` bytes (or NULL with `cap` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_get(
    l: *const mpk_list,
    index: i64,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        let b = unsafe { bytes_mut(buf, cap) }?;
        let head = l.get_into(index, b)?;
        // SAFETY: `out`, `out_len` checked non-NULL; writable by the caller's contract.
        unsafe { report_item(&head, out, buf, b, out_len) }
    })
}

/// `l[index] = v`. `MPK_ERR_INVAL` if `index` is out of range.
///
/// # Safety
/// `l` is NULL or a live handle; `v` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_set(l: *mut mpk_list, index: i64, v: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        Ok(l.set(index, unsafe { item_arg(v) }?)?)
    })
}

/// `l.pop(index)` (`-1`: the last): removes the item and gives it as `mpk_list_get` does.
/// `MPK_ERR_INVAL` if `index` is out of range (or the list is empty); `MPK_ERR_MSGSIZE` if `cap`
/// is too small (`*out_len` = size needed), and then the item stays.
///
/// # Safety
/// As `mpk_list_get`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_pop(
    l: *mut mpk_list,
    index: i64,
    out: *mut mpk_item,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out)?;
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        let b = unsafe { bytes_mut(buf, cap) }?;
        let head = match l.pop_into(index, b) {
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

/// `len(l)` (0 if `l` is NULL).
///
/// # Safety
/// `l` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_len(l: *const mpk_list) -> usize {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { list(l) }.map_or(0, SharedList::len))
}

/// `l.reverse()`.
///
/// # Safety
/// `l` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_reverse(l: *mut mpk_list) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { list(l) }?.reverse()?))
}

/// `l.sort()`: stable, in Python's order (numbers by value, str and bytes by content).
/// `MPK_ERR_INVAL` if two items cannot be compared (a str and an int, None with anything:
/// Python's TypeError); then the list is unchanged.
///
/// # Safety
/// `l` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_sort(l: *mut mpk_list) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { list(l) }?.sort()?))
}

/// `l.index(v)`: the index of the first item equal to `v`, into `*out`. `MPK_ERR_NOT_FOUND`
/// (Python's ValueError) if there is none.
///
/// # Safety
/// `l` is NULL or a live handle; `v` is NULL or a valid item; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_index(l: *const mpk_list, v: *const mpk_item, out: *mut usize) -> mpk_status {
    call(|| {
        non_null(out)?;
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        let i = l.index(unsafe { item_arg(v) }?)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, i) }
    })
}

/// `l.remove(v)`: removes the first item equal to `v`. `MPK_ERR_NOT_FOUND` if there is none.
///
/// # Safety
/// `l` is NULL or a live handle; `v` is NULL or a valid item.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_remove(l: *mut mpk_list, v: *const mpk_item) -> mpk_status {
    call(|| {
        // SAFETY: forwarded caller duty.
        let l = unsafe { list(l) }?;
        // SAFETY: forwarded caller duty.
        Ok(l.remove(unsafe { item_arg(v) }?)?)
    })
}

/// `l.clear()`: every item goes, and the memory they held is given back.
///
/// # Safety
/// `l` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_clear(l: *mut mpk_list) -> mpk_status {
    // SAFETY: forwarded caller duty.
    call(|| Ok(unsafe { list(l) }?.clear()?))
}

/// Python's `repr(l)`, e.g. `[9, 8, 'a', None]`, NUL-terminated into `buf`; `*out_len` is its
/// length without the NUL. `MPK_ERR_MSGSIZE` if `cap` is too small: then `*out_len` is the size
/// needed, NUL included.
///
/// # Safety
/// `l` is NULL or a live handle; `buf` is writable for `cap` bytes (or NULL with `cap` 0);
/// `out_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_repr(
    l: *const mpk_list,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> mpk_status {
    call(|| {
        non_null(out_len)?;
        // SAFETY: forwarded caller duty.
        let s = unsafe { list(l) }?.repr()?;
        // SAFETY: forwarded caller duty; `out_len` checked non-NULL.
        unsafe { report_repr(&s, buf, cap, out_len) }
    })
}

/// How many operations of writers that died after committing them were finished by others
/// (0 if `l` is NULL).
///
/// # Safety
/// `l` is NULL or a live handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mpk_list_repairs(l: *const mpk_list) -> u64 {
    // SAFETY: forwarded caller duty.
    call_or(0, || unsafe { list(l) }.map_or(0, SharedList::repairs))
}
