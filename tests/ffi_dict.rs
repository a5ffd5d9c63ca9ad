//! `mpk_dict`, `mpk_list` and `mpk_item` through the C ABI: round trips of every kind, the
//! buffer-too-small paths, iteration under concurrent deletes, and every NULL and bad argument.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::ffi::{CString, c_void};
use std::ptr::{null, null_mut};

use mpkit::Value;
use mpkit::ffi::*;

fn name(tag: &str) -> CString {
    CString::new(format!("/mpkit-ffi-dict-{tag}-{}", std::process::id())).unwrap()
}

fn new_dict() -> *mut mpk_dict {
    let opts = mpk_dict_opts { struct_size: size_of::<mpk_dict_opts>(), reserve: 1 << 20 };
    let mut d = null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { mpk_dict_create(&opts, &mut d) }, MPK_OK);
    d
}

fn new_list() -> *mut mpk_list {
    let opts = mpk_list_opts { struct_size: size_of::<mpk_list_opts>(), reserve: 1 << 20 };
    let mut l = null_mut();
    // SAFETY: valid options and out-pointer.
    assert_eq!(unsafe { mpk_list_create(&opts, &mut l) }, MPK_OK);
    l
}

/// A C item over a value's bytes (valid while `v` lives).
fn item(v: &Value) -> mpk_item {
    match v {
        Value::None => mpk_item_none(),
        Value::Bool(b) => mpk_item_bool(*b),
        Value::Int(i) => mpk_item_int(*i),
        Value::Float(f) => mpk_item_float(*f),
        Value::Str(s) => mpk_item { kind: MPK_ITEM_STR, ptr: s.as_ptr().cast(), len: s.len(), ..mpk_item_none() },
        Value::Bytes(b) => mpk_item_bytes(b.as_ptr().cast(), b.len()),
    }
}

/// The value a C item read into `buf` holds, checking that its bytes are in `buf`.
fn value(it: &mpk_item, buf: &[u8]) -> Value {
    let bytes = || {
        assert_eq!(it.ptr, buf.as_ptr().cast(), "the bytes are in the caller's buffer");
        buf[..it.len].to_vec()
    };
    match it.kind {
        MPK_ITEM_NONE => Value::None,
        MPK_ITEM_BOOL => Value::Bool(it.i != 0),
        MPK_ITEM_INT => Value::Int(it.i),
        MPK_ITEM_FLOAT => Value::Float(it.f),
        MPK_ITEM_STR => Value::Str(String::from_utf8(bytes()).unwrap()),
        MPK_ITEM_BYTES => Value::Bytes(bytes()),
        k => panic!("kind {k}"),
    }
}

fn dict_get(d: *mut mpk_dict, key: &Value) -> Result<Value, mpk_status> {
    let mut buf = vec![0u8; 256];
    let mut out = mpk_item_none();
    let mut len = 0;
    // SAFETY: valid handle, item, buffers.
    let st = unsafe { mpk_dict_get(d, &item(key), &mut out, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    if st != MPK_OK {
        return Err(st);
    }
    assert_eq!(len, out.len);
    Ok(value(&out, &buf))
}

fn list_get(l: *mut mpk_list, index: i64) -> Result<Value, mpk_status> {
    let mut buf = vec![0u8; 256];
    let mut out = mpk_item_none();
    let mut len = 0;
    // SAFETY: valid handle and buffers.
    let st = unsafe { mpk_list_get(l, index, &mut out, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    if st != MPK_OK {
        return Err(st);
    }
    Ok(value(&out, &buf))
}

fn dict_repr(d: *const mpk_dict) -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    // SAFETY: valid handle and buffers.
    assert_eq!(unsafe { mpk_dict_repr(d, buf.as_mut_ptr().cast(), buf.len(), &mut len) }, MPK_OK);
    assert_eq!(buf[len], 0, "NUL-terminated");
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

fn list_repr(l: *const mpk_list) -> String {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    // SAFETY: valid handle and buffers.
    assert_eq!(unsafe { mpk_list_repr(l, buf.as_mut_ptr().cast(), buf.len(), &mut len) }, MPK_OK);
    assert_eq!(buf[len], 0, "NUL-terminated");
    String::from_utf8(buf[..len].to_vec()).unwrap()
}

fn every_kind() -> Vec<Value> {
    vec![
        Value::None,
        Value::Bool(true),
        Value::Int(-7),
        Value::Int(i64::MIN),
        Value::Float(0.25),
        Value::Str(String::new()),
        Value::Str("héllo\0wörld".into()),
        Value::Bytes(vec![]),
        Value::Bytes(vec![0, 255, 1, 2, 3, 4, 5, 6, 7, 8]),
    ]
}

#[test]
fn every_kind_round_trips_as_key_and_value() {
    let d = new_dict();
    let l = new_list();
    let kinds = every_kind();
    for (i, v) in kinds.iter().enumerate() {
        let k = Value::Int(100 + i as i64);
        // SAFETY: valid handles and items.
        unsafe {
            assert_eq!(mpk_dict_set(d, &item(&k), &item(v)), MPK_OK);
            assert_eq!(mpk_list_append(l, &item(v)), MPK_OK);
        }
        assert_eq!(dict_get(d, &k), Ok(v.clone()), "value {v:?}");
        assert_eq!(list_get(l, i as i64), Ok(v.clone()), "list item {v:?}");
        if !matches!(v, Value::Int(_)) {
            // SAFETY: as above.
            unsafe { assert_eq!(mpk_dict_set(d, &item(v), &item(&k)), MPK_OK) };
            assert_eq!(dict_get(d, v), Ok(k.clone()), "key {v:?}");
        }
    }
    // Python's equality: 1, 1.0 and True are one key.
    // SAFETY: as above.
    unsafe { assert_eq!(mpk_dict_set(d, &mpk_item_int(1), &mpk_item_int(11)), MPK_OK) };
    assert_eq!(dict_get(d, &Value::Float(1.0)), Ok(Value::Int(11)));
    assert_eq!(dict_get(d, &Value::Bool(true)), Ok(Value::Int(11)), "True was a key; 1 replaced its value");
    assert_eq!(dict_get(d, &Value::Str("1".into())), Err(MPK_ERR_NOT_FOUND));
    let s = c"abc";
    // SAFETY: a NUL-terminated string.
    let it = unsafe { mpk_item_str(s.as_ptr()) };
    assert_eq!((it.kind, it.len, it.ptr), (MPK_ITEM_STR, 3, s.as_ptr().cast()));
    assert_eq!(mpk_item_bool(true).i, 1);
    // SAFETY: valid handles.
    unsafe {
        assert_eq!(mpk_dict_len(d), 16, "nine int keys, seven others (True and 1 are one)");
        assert_eq!(mpk_list_len(l), kinds.len());
        assert_eq!(mpk_dict_repairs(d), 0);
        assert_eq!(mpk_list_repairs(l), 0);
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
        mpk_dict_destroy(null_mut());
        mpk_list_destroy(null_mut());
    }
}

#[test]
fn small_buffers_give_msgsize_and_the_size_needed() {
    let d = new_dict();
    let l = new_list();
    let long = Value::Str("x".repeat(100));
    let key = Value::Str("k".into());
    let mut buf = vec![0u8; 200];
    let sentinel = mpk_item_int(-12345);
    // SAFETY: valid handles, items and buffers.
    unsafe {
        assert_eq!(mpk_dict_set(d, &item(&key), &item(&long)), MPK_OK);
        assert_eq!(mpk_list_append(l, &item(&long)), MPK_OK);
        for cap in [0, 99] {
            let (mut out, mut len) = (sentinel, 0);
            let p = if cap == 0 { null_mut() } else { buf.as_mut_ptr().cast() };
            assert_eq!(mpk_dict_get(d, &item(&key), &mut out, p, cap, &mut len), MPK_ERR_MSGSIZE);
            assert_eq!((len, out.kind, out.i), (100, MPK_ITEM_INT, -12345), "size needed; out untouched");
            let (mut out, mut len) = (sentinel, 0);
            assert_eq!(mpk_dict_pop(d, &item(&key), &mut out, p, cap, &mut len), MPK_ERR_MSGSIZE);
            assert_eq!((len, out.i), (100, -12345));
            assert_eq!(mpk_list_get(l, 0, &mut out, p, cap, &mut len), MPK_ERR_MSGSIZE);
            assert_eq!(mpk_list_pop(l, -1, &mut out, p, cap, &mut len), MPK_ERR_MSGSIZE);
            assert_eq!((len, out.i), (100, -12345));
        }
        assert_eq!(mpk_dict_len(d), 1, "a failed pop leaves the key");
        assert_eq!(mpk_list_len(l), 1, "a failed pop leaves the item");
        let (mut out, mut len) = (sentinel, 0);
        assert_eq!(mpk_dict_get(d, &item(&key), &mut out, buf.as_mut_ptr().cast(), 100, &mut len), MPK_OK);
        assert_eq!((len, value(&out, &buf)), (100, long.clone()));
        assert_eq!(mpk_dict_pop(d, &item(&key), &mut out, buf.as_mut_ptr().cast(), 100, &mut len), MPK_OK);
        assert_eq!(value(&out, &buf), long);
        assert_eq!(mpk_dict_pop(d, &item(&key), &mut out, buf.as_mut_ptr().cast(), 100, &mut len), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_list_pop(l, -1, &mut out, buf.as_mut_ptr().cast(), 100, &mut len), MPK_OK);
        assert_eq!(value(&out, &buf), long);
        assert_eq!(mpk_list_pop(l, -1, &mut out, buf.as_mut_ptr().cast(), 100, &mut len), MPK_ERR_INVAL, "empty");

        // setdefault: the default is set even when the buffer is too small.
        let (mut out, mut len) = (sentinel, 0);
        let st = mpk_dict_setdefault(d, &item(&key), &item(&long), &mut out, buf.as_mut_ptr().cast(), 10, &mut len);
        assert_eq!((st, len, out.i), (MPK_ERR_MSGSIZE, 100, -12345));
        let other = Value::Int(5);
        let st = mpk_dict_setdefault(d, &item(&key), &item(&other), &mut out, buf.as_mut_ptr().cast(), 100, &mut len);
        assert_eq!((st, value(&out, &buf)), (MPK_OK, long.clone()));
        let st = mpk_dict_setdefault(d, &item(&other), &item(&other), &mut out, null_mut(), 0, &mut len);
        assert_eq!((st, len, value(&out, &[])), (MPK_OK, 0, other.clone()));

        // repr: NUL-terminated; the size needed counts the NUL.
        let want = format!("{{'k': '{}', 5: 5}}", "x".repeat(100));
        let mut rbuf = vec![0u8; 300];
        let mut rlen = 0;
        assert_eq!(mpk_dict_repr(d, rbuf.as_mut_ptr().cast(), want.len(), &mut rlen), MPK_ERR_MSGSIZE);
        assert_eq!(rlen, want.len() + 1);
        assert_eq!(mpk_dict_repr(d, null_mut(), 0, &mut rlen), MPK_ERR_MSGSIZE);
        assert_eq!(rlen, want.len() + 1);
        assert_eq!(mpk_dict_repr(d, rbuf.as_mut_ptr().cast(), want.len() + 1, &mut rlen), MPK_OK);
        assert_eq!((rlen, &rbuf[..rlen], rbuf[rlen]), (want.len(), want.as_bytes(), 0));
        assert_eq!(mpk_list_repr(l, rbuf.as_mut_ptr().cast(), 2, &mut rlen), MPK_ERR_MSGSIZE);
        assert_eq!(rlen, 3, "[] and the NUL");
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
    }
}

/// One step of a dict cursor with 64-byte buffers: `(key, value)`, or the status.
fn next(d: *mut mpk_dict, it: &mut mpk_dict_iter, cap: usize) -> Result<(Value, Value), (mpk_status, usize, usize)> {
    let (mut kb, mut vb) = (vec![0u8; cap], vec![0u8; cap]);
    let (mut k, mut v) = (mpk_item_none(), mpk_item_none());
    let (mut kl, mut vl) = (usize::MAX, usize::MAX);
    // SAFETY: valid handle, cursor and buffers.
    let st = unsafe {
        mpk_dict_iter_next(
            d,
            it,
            &mut k,
            kb.as_mut_ptr().cast(),
            cap,
            &mut kl,
            &mut v,
            vb.as_mut_ptr().cast(),
            cap,
            &mut vl,
        )
    };
    if st != MPK_OK {
        return Err((st, kl, vl));
    }
    Ok((value(&k, &kb), value(&v, &vb)))
}

#[test]
fn iteration_survives_concurrent_deletes_and_inserts() {
    let d = new_dict();
    for k in 0..100 {
        // SAFETY: valid handle and items.
        unsafe { assert_eq!(mpk_dict_set(d, &mpk_item_int(k), &mpk_item_int(k * 10)), MPK_OK) };
    }
    let mut it = mpk_dict_iter { from: 0, end: 0 };
    // SAFETY: valid handle and cursor.
    unsafe { assert_eq!(mpk_dict_iter_begin(d, &mut it), MPK_OK) };
    let mut seen = Vec::new();
    while let Ok((k, v)) = next(d, &mut it, 64) {
        let Value::Int(k) = k else { panic!("{k:?}") };
        assert_eq!(v, Value::Int(k * 10));
        seen.push(k);
        // SAFETY: valid handle and items.
        unsafe {
            mpk_dict_del(d, &mpk_item_int(k + 1)); // the next key goes before it is reached
            assert_eq!(mpk_dict_set(d, &mpk_item_int(1000 + k), &mpk_item_none()), MPK_OK);
        }
        assert!(seen.len() <= 100, "the cursor never reaches keys inserted after its start");
    }
    assert_eq!(seen, (0..100).step_by(2).collect::<Vec<_>>());
    assert_eq!(next(d, &mut it, 64).err().map(|e| e.0), Some(MPK_ERR_CLOSED), "exhausted stays exhausted");

    // A buffer too small: both sizes needed, and the cursor stays on the pair.
    // SAFETY: valid handle and items.
    unsafe {
        assert_eq!(mpk_dict_clear(d), MPK_OK);
        assert_eq!(mpk_dict_len(d), 0);
        let (k, v) = (Value::Str("key".into()), Value::Bytes(vec![7; 10]));
        assert_eq!(mpk_dict_set(d, &item(&k), &item(&v)), MPK_OK);
        assert_eq!(mpk_dict_iter_begin(d, &mut it), MPK_OK);
        assert_eq!(next(d, &mut it, 5).err(), Some((MPK_ERR_MSGSIZE, 3, 10)));
        assert_eq!(next(d, &mut it, 10), Ok((k, v)));
        assert_eq!(next(d, &mut it, 10).err().map(|e| e.0), Some(MPK_ERR_CLOSED));
        mpk_dict_destroy(d);
    }
}

#[test]
fn dict_and_list_operations() {
    let d = new_dict();
    let l = new_list();
    let mut found = false;
    let mut at = usize::MAX;
    // SAFETY: valid handles and items.
    unsafe {
        let x = c"x";
        assert_eq!(mpk_dict_set(d, &mpk_item_str(x.as_ptr()), &mpk_item_int(1)), MPK_OK);
        assert_eq!(mpk_dict_contains(d, &mpk_item_str(x.as_ptr()), &mut found), MPK_OK);
        assert!(found);
        assert_eq!(mpk_dict_contains(d, &mpk_item_bytes(x.as_ptr().cast(), 1), &mut found), MPK_OK);
        assert!(!found, "a bytes never equals a str");
        assert_eq!(mpk_dict_del(d, &mpk_item_int(1)), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_dict_del(d, &mpk_item_str(x.as_ptr())), MPK_OK);
        assert_eq!(mpk_dict_len(d), 0);

        let ten: Vec<mpk_item> = (0..10).map(|i| mpk_item_int(i)).collect();
        assert_eq!(mpk_list_extend(l, ten.as_ptr(), ten.len()), MPK_OK);
        assert_eq!(mpk_list_extend(l, null(), 0), MPK_OK);
        assert_eq!(mpk_list_reverse(l), MPK_OK);
        assert_eq!(list_repr(l), "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
        assert_eq!(mpk_list_insert(l, 1, &mpk_item_float(8.5)), MPK_OK);
        assert_eq!(mpk_list_insert(l, 1000, &mpk_item_bool(false)), MPK_OK);
        assert_eq!(list_get(l, -1), Ok(Value::Bool(false)));
        assert_eq!(mpk_list_set(l, -1, &mpk_item_int(-1)), MPK_OK);
        assert_eq!(mpk_list_index(l, &mpk_item_float(8.5), &mut at), MPK_OK);
        assert_eq!(at, 1);
        assert_eq!(mpk_list_index(l, &mpk_item_int(42), &mut at), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_list_remove(l, &mpk_item_int(42)), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_list_remove(l, &mpk_item_float(8.5)), MPK_OK);
        assert_eq!(mpk_list_sort(l), MPK_OK);
        assert_eq!(list_repr(l), "[-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");

        // Out of range: Python's IndexError.
        let n = mpk_list_len(l) as i64;
        for bad in [n, -n - 1, i64::MAX, i64::MIN] {
            assert_eq!(list_get(l, bad), Err(MPK_ERR_INVAL));
            assert_eq!(mpk_list_set(l, bad, &mpk_item_none()), MPK_ERR_INVAL);
        }
        assert_eq!(list_get(l, -n), Ok(Value::Int(-1)));

        // Sorting mixed types fails and changes nothing.
        assert_eq!(mpk_list_append(l, &mpk_item_str(x.as_ptr())), MPK_OK);
        let before = list_repr(l);
        assert_eq!(mpk_list_sort(l), MPK_ERR_INVAL);
        assert_eq!(list_repr(l), before);
        assert_eq!(mpk_list_set(l, -1, &mpk_item_none()), MPK_OK);
        assert_eq!(mpk_list_sort(l), MPK_ERR_INVAL, "None compares with nothing");
        assert_eq!(mpk_list_clear(l), MPK_OK);
        assert_eq!((mpk_list_len(l), list_repr(l)), (0, "[]".to_owned()));
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
    }
}

#[test]
fn bad_items_are_refused() {
    let d = new_dict();
    let l = new_list();
    let ok = mpk_item_int(1);
    let bad_utf8 = [0xffu8, 0xfe];
    let items = [
        (mpk_item { kind: 6, ..mpk_item_none() }, MPK_ERR_INVAL),
        (mpk_item { kind: -1, ..mpk_item_none() }, MPK_ERR_INVAL),
        (mpk_item { kind: MPK_ITEM_STR, ptr: bad_utf8.as_ptr().cast(), len: 2, ..mpk_item_none() }, MPK_ERR_INVAL),
        (mpk_item { kind: MPK_ITEM_STR, ptr: null(), len: 3, ..mpk_item_none() }, MPK_ERR_NULL),
        (mpk_item_bytes(null(), 1), MPK_ERR_NULL),
        // SAFETY: NULL is allowed; the item's use is what fails.
        (unsafe { mpk_item_str(null()) }, MPK_ERR_NULL),
    ];
    let mut buf = [0u8; 16];
    let (mut out, mut len, mut b, mut at) = (mpk_item_none(), 0, false, 0);
    // SAFETY: valid handles; the bad items are what is tested.
    unsafe {
        for (bad, want) in &items {
            assert_eq!(mpk_dict_set(d, bad, &ok), *want);
            assert_eq!(mpk_dict_set(d, &ok, bad), *want);
            assert_eq!(mpk_dict_get(d, bad, &mut out, buf.as_mut_ptr().cast(), 16, &mut len), *want);
            assert_eq!(mpk_dict_del(d, bad), *want);
            assert_eq!(mpk_dict_contains(d, bad, &mut b), *want);
            assert_eq!(mpk_dict_pop(d, bad, &mut out, buf.as_mut_ptr().cast(), 16, &mut len), *want);
            assert_eq!(mpk_dict_setdefault(d, bad, &ok, &mut out, buf.as_mut_ptr().cast(), 16, &mut len), *want);
            assert_eq!(mpk_dict_setdefault(d, &ok, bad, &mut out, buf.as_mut_ptr().cast(), 16, &mut len), *want);
            assert_eq!(mpk_list_append(l, bad), *want);
            assert_eq!(mpk_list_insert(l, 0, bad), *want);
            assert_eq!(mpk_list_extend(l, [ok, *bad].as_ptr(), 2), *want);
            assert_eq!(mpk_list_index(l, bad, &mut at), *want);
            assert_eq!(mpk_list_remove(l, bad), *want);
        }
        assert_eq!(mpk_dict_len(d), 0, "nothing was set");
        assert_eq!(mpk_list_len(l), 0, "extend adds all or nothing");
        assert_eq!(mpk_list_append(l, &ok), MPK_OK);
        for (bad, want) in &items {
            assert_eq!(mpk_list_set(l, 0, bad), *want);
        }
        assert_eq!(list_get(l, 0), Ok(Value::Int(1)));
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
    }
}

#[test]
fn options_are_checked() {
    let mut d = null_mut();
    let mut l = null_mut();
    // SAFETY: options structs valid for their struct_size; out-pointers valid.
    unsafe {
        let small = mpk_dict_opts { struct_size: size_of::<usize>(), reserve: 1 << 20 };
        assert_eq!(mpk_dict_create(&small, &mut d), MPK_ERR_INVAL);
        let zero = mpk_dict_opts { struct_size: 0, reserve: 0 };
        assert_eq!(mpk_dict_create(&zero, &mut d), MPK_ERR_INVAL);
        let tiny = mpk_dict_opts { struct_size: size_of::<mpk_dict_opts>(), reserve: 1000 };
        assert_eq!(mpk_dict_create(&tiny, &mut d), MPK_ERR_INVAL, "a reserve under 64 KiB");
        assert!(d.is_null(), "out is written only on success");
        let dflt = mpk_dict_opts { struct_size: size_of::<mpk_dict_opts>(), reserve: 0 };
        assert_eq!(mpk_dict_create(&dflt, &mut d), MPK_OK);
        mpk_dict_destroy(d);
        assert_eq!(mpk_dict_create(null(), &mut d), MPK_OK);
        mpk_dict_destroy(d);

        let small = mpk_list_opts { struct_size: size_of::<usize>(), reserve: 1 << 20 };
        assert_eq!(mpk_list_create(&small, &mut l), MPK_ERR_INVAL);
        let tiny = mpk_list_opts { struct_size: size_of::<mpk_list_opts>(), reserve: 1000 };
        assert_eq!(mpk_list_create(&tiny, &mut l), MPK_ERR_INVAL);
        assert!(l.is_null());
        assert_eq!(mpk_list_create(null(), &mut l), MPK_OK);
        mpk_list_destroy(l);
    }
}

#[test]
fn named_containers_and_foreign_objects() {
    let (dn, ln, shm, qn) = (name("d"), name("l"), name("shm"), name("q"));
    let (mut d, mut d2, mut l, mut l2) = (null_mut(), null_mut(), null_mut(), null_mut());
    let (mut r, mut q) = (null_mut(), null_mut());
    // SAFETY: NUL-terminated names, valid out-pointers, handles destroyed once.
    unsafe {
        assert_eq!(mpk_dict_open_named(dn.as_ptr(), &mut d2), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_dict_create_named(c"/a/b".as_ptr(), null(), &mut d), MPK_ERR_INVAL);
        assert_eq!(mpk_dict_create_named(dn.as_ptr(), null(), &mut d), MPK_OK);
        assert_eq!(mpk_dict_create_named(dn.as_ptr(), null(), &mut d2), MPK_ERR_EXISTS);
        assert_eq!(mpk_dict_set(d, &mpk_item_int(1), &mpk_item_int(2)), MPK_OK);
        mpk_dict_destroy(d);
        assert_eq!(mpk_dict_open_named(dn.as_ptr(), &mut d2), MPK_OK, "destroy keeps the name");
        assert_eq!(dict_get(d2, &Value::Int(1)), Ok(Value::Int(2)));
        mpk_dict_destroy(d2);

        let opts = mpk_list_opts { struct_size: size_of::<mpk_list_opts>(), reserve: 1 << 20 };
        assert_eq!(mpk_list_create_named(ln.as_ptr(), &opts, &mut l), MPK_OK);
        assert_eq!(mpk_list_append(l, &mpk_item_int(3)), MPK_OK);
        assert_eq!(mpk_list_open_named(ln.as_ptr(), &mut l2), MPK_OK);
        assert_eq!(list_get(l2, 0), Ok(Value::Int(3)));
        mpk_list_destroy(l);
        mpk_list_destroy(l2);

        // Another kind under the name: refused at once.
        assert_eq!(mpk_list_open_named(dn.as_ptr(), &mut l2), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_dict_open_named(ln.as_ptr(), &mut d2), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_shm_create_named(shm.as_ptr(), 1 << 16, &mut r), MPK_OK);
        assert_eq!(mpk_dict_open_named(shm.as_ptr(), &mut d2), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_list_open_named(shm.as_ptr(), &mut l2), MPK_ERR_BAD_OBJECT);
        mpk_shm_destroy(r);
        assert_eq!(mpk_queue_create_named(qn.as_ptr(), 4, 8, &mut q), MPK_OK);
        assert_eq!(mpk_dict_open_named(qn.as_ptr(), &mut d2), MPK_ERR_BAD_OBJECT);
        assert_eq!(mpk_list_open_named(qn.as_ptr(), &mut l2), MPK_ERR_BAD_OBJECT);
        mpk_queue_destroy(q);

        assert_eq!(mpk_dict_unlink(dn.as_ptr()), MPK_OK);
        assert_eq!(mpk_dict_unlink(dn.as_ptr()), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_list_unlink(ln.as_ptr()), MPK_OK);
        assert_eq!(mpk_list_unlink(ln.as_ptr()), MPK_ERR_NOT_FOUND);
        assert_eq!(mpk_shm_unlink(shm.as_ptr()), MPK_OK);
        assert_eq!(mpk_shm_unlink(qn.as_ptr()), MPK_OK);
    }
}

#[test]
fn null_for_every_pointer_argument() {
    let d = new_dict();
    let l = new_list();
    let nd: *mut mpk_dict = null_mut();
    let nl: *mut mpk_list = null_mut();
    let k = mpk_item_int(1);
    let ni: *const mpk_item = null();
    let no: *mut mpk_item = null_mut();
    let nz: *mut usize = null_mut();
    let n = name("null");
    let mut buf = [0u8; 16];
    let b: *mut c_void = buf.as_mut_ptr().cast();
    let (mut out, mut len, mut found, mut at) = (mpk_item_none(), 0usize, false, 0usize);
    let (mut od, mut ol) = (null_mut(), null_mut());
    let mut it = mpk_dict_iter { from: 0, end: 0 };
    let (mut ko, mut vo, mut kl, mut vl) = (mpk_item_none(), mpk_item_none(), 0usize, 0usize);
    // SAFETY: every pointer is NULL or valid; NULL ones are what is tested.
    unsafe {
        assert_eq!(mpk_dict_set(d, &k, &k), MPK_OK);
        assert_eq!(mpk_list_append(l, &k), MPK_OK);

        assert_eq!(mpk_dict_create(null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_create_named(null(), null(), &mut od), MPK_ERR_NULL);
        assert_eq!(mpk_dict_create_named(n.as_ptr(), null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_open_named(null(), &mut od), MPK_ERR_NULL);
        assert_eq!(mpk_dict_open_named(n.as_ptr(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_unlink(null()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_set(nd, &k, &k), MPK_ERR_NULL);
        assert_eq!(mpk_dict_set(d, ni, &k), MPK_ERR_NULL);
        assert_eq!(mpk_dict_set(d, &k, ni), MPK_ERR_NULL);
        assert_eq!(mpk_dict_get(nd, &k, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_get(d, ni, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_get(d, &k, no, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_get(d, &k, &mut out, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_get(d, &k, &mut out, b, 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_dict_del(nd, &k), MPK_ERR_NULL);
        assert_eq!(mpk_dict_del(d, ni), MPK_ERR_NULL);
        assert_eq!(mpk_dict_contains(nd, &k, &mut found), MPK_ERR_NULL);
        assert_eq!(mpk_dict_contains(d, ni, &mut found), MPK_ERR_NULL);
        assert_eq!(mpk_dict_contains(d, &k, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_len(nd), 0);
        assert_eq!(mpk_dict_clear(nd), MPK_ERR_NULL);
        assert_eq!(mpk_dict_pop(nd, &k, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_pop(d, ni, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_pop(d, &k, no, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_pop(d, &k, &mut out, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_pop(d, &k, &mut out, b, 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(nd, &k, &k, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(d, ni, &k, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(d, &k, ni, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(d, &k, &k, no, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(d, &k, &k, &mut out, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_setdefault(d, &k, &k, &mut out, b, 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_begin(nd, &mut it), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_begin(d, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_begin(d, &mut it), MPK_OK);
        let nit: *mut mpk_dict_iter = null_mut();
        assert_eq!(mpk_dict_iter_next(nd, &mut it, &mut ko, b, 8, &mut kl, &mut vo, b, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, nit, &mut ko, b, 8, &mut kl, &mut vo, b, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, no, b, 8, &mut kl, &mut vo, b, 8, &mut vl), MPK_ERR_NULL);
        let nb = null_mut();
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, nb, 8, &mut kl, &mut vo, b, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, b, 8, nz, &mut vo, b, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, b, 8, &mut kl, no, b, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, b, 8, &mut kl, &mut vo, nb, 8, &mut vl), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, b, 8, &mut kl, &mut vo, b, 8, nz), MPK_ERR_NULL);
        assert_eq!(mpk_dict_iter_next(d, &mut it, &mut ko, nb, 0, &mut kl, &mut vo, nb, 0, &mut vl), MPK_OK);
        assert_eq!((ko.i, vo.i), (1, 1), "ints need no buffer");
        assert_eq!(mpk_dict_repr(nd, b.cast(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_repr(d, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_dict_repr(d, b.cast(), 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_dict_repairs(nd), 0);

        assert_eq!(mpk_list_create(null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_list_create_named(null(), null(), &mut ol), MPK_ERR_NULL);
        assert_eq!(mpk_list_create_named(n.as_ptr(), null(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_list_open_named(null(), &mut ol), MPK_ERR_NULL);
        assert_eq!(mpk_list_open_named(n.as_ptr(), null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_list_unlink(null()), MPK_ERR_NULL);
        assert_eq!(mpk_list_append(nl, &k), MPK_ERR_NULL);
        assert_eq!(mpk_list_append(l, ni), MPK_ERR_NULL);
        assert_eq!(mpk_list_extend(nl, &k, 1), MPK_ERR_NULL);
        assert_eq!(mpk_list_extend(l, ni, 1), MPK_ERR_NULL);
        assert_eq!(mpk_list_insert(nl, 0, &k), MPK_ERR_NULL);
        assert_eq!(mpk_list_insert(l, 0, ni), MPK_ERR_NULL);
        assert_eq!(mpk_list_get(nl, 0, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_get(l, 0, no, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_get(l, 0, &mut out, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_get(l, 0, &mut out, b, 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_list_set(nl, 0, &k), MPK_ERR_NULL);
        assert_eq!(mpk_list_set(l, 0, ni), MPK_ERR_NULL);
        assert_eq!(mpk_list_pop(nl, 0, &mut out, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_pop(l, 0, no, b, 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_pop(l, 0, &mut out, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_pop(l, 0, &mut out, b, 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_list_len(nl), 0);
        assert_eq!(mpk_list_reverse(nl), MPK_ERR_NULL);
        assert_eq!(mpk_list_sort(nl), MPK_ERR_NULL);
        assert_eq!(mpk_list_index(nl, &k, &mut at), MPK_ERR_NULL);
        assert_eq!(mpk_list_index(l, ni, &mut at), MPK_ERR_NULL);
        assert_eq!(mpk_list_index(l, &k, null_mut()), MPK_ERR_NULL);
        assert_eq!(mpk_list_remove(nl, &k), MPK_ERR_NULL);
        assert_eq!(mpk_list_remove(l, ni), MPK_ERR_NULL);
        assert_eq!(mpk_list_clear(nl), MPK_ERR_NULL);
        assert_eq!(mpk_list_repr(nl, b.cast(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_repr(l, null_mut(), 16, &mut len), MPK_ERR_NULL);
        assert_eq!(mpk_list_repr(l, b.cast(), 16, nz), MPK_ERR_NULL);
        assert_eq!(mpk_list_repairs(nl), 0);

        assert!(od.is_null() && ol.is_null(), "out is written only on success");
        assert_eq!((mpk_dict_len(d), mpk_list_len(l)), (1, 1), "no failed call changed anything");
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
    }
}

unsafe extern "C" fn manager_child(arg: *mut c_void) -> std::ffi::c_int {
    // SAFETY: the handles were created before the fork; the items are valid.
    unsafe {
        let (d, l) = *arg.cast::<(*mut mpk_dict, *mut mpk_list)>();
        let one = c"1";
        let two = c"2";
        let mut st = mpk_dict_set(d, &mpk_item_int(1), &mpk_item_str(one.as_ptr()));
        st |= mpk_dict_set(d, &mpk_item_str(two.as_ptr()), &mpk_item_int(2));
        st |= mpk_dict_set(d, &mpk_item_float(0.25), &mpk_item_none());
        st |= mpk_list_reverse(l);
        i32::from(st != MPK_OK)
    }
}

#[test]
fn a_child_changes_what_the_parent_sees() {
    let d = new_dict();
    let l = new_list();
    let ten: Vec<mpk_item> = (0..10).map(|i| mpk_item_int(i)).collect();
    let mut args = (d, l);
    let mut p = null_mut();
    // SAFETY: valid handles; the child only calls mpkit and returns.
    unsafe {
        assert_eq!(mpk_list_extend(l, ten.as_ptr(), 10), MPK_OK);
        assert_eq!(mpk_process_start(Some(manager_child), (&raw mut args).cast(), null(), &mut p), MPK_OK);
        assert_eq!(mpk_process_join(p, 60_000), MPK_OK);
        let mut code = -1;
        assert_eq!(mpk_process_exitcode(p, &mut code), MPK_OK);
        assert_eq!(code, 0);
        mpk_process_destroy(p);
    }
    assert_eq!(format!("{}\n{}\n", dict_repr(d), list_repr(l)), common::tutorial::MANAGER);
    // SAFETY: handles destroyed once.
    unsafe {
        mpk_dict_destroy(d);
        mpk_list_destroy(l);
    }
}
