//! Typed shared arrays and values: creation, bounds, locking, sharing across processes, owner
//! death through the array's lock, in-place views over caller memory.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![allow(clippy::approx_constant)] // the tutorial's 3.1415927

mod common;

use std::ptr::NonNull;

use common::{child, join, wait_until};
use mpkit::lock::LockError;
use mpkit::{ArrayView, ElemType, Error, SharedArray, SharedValue};

#[test]
fn type_codes_follow_python() {
    let pairs = [
        ("b", ElemType::I8),
        ("B", ElemType::U8),
        ("h", ElemType::I16),
        ("H", ElemType::U16),
        ("i", ElemType::I32),
        ("I", ElemType::U32),
        ("l", ElemType::I64),
        ("L", ElemType::U64),
        ("q", ElemType::I64),
        ("Q", ElemType::U64),
        ("f", ElemType::F32),
        ("d", ElemType::F64),
    ];
    for (code, ty) in pairs {
        assert_eq!(ElemType::from_code(code), Ok(ty));
    }
    for bad in ["", "x", "dd", "c", "u", "D"] {
        assert_eq!(ElemType::from_code(bad), Err(Error::Inval));
    }
    assert_eq!(ElemType::from_raw(0), Err(Error::Inval));
    assert_eq!(ElemType::from_raw(11), Err(Error::Inval));
    assert_eq!(ElemType::from_raw(10), Ok(ElemType::F64));
}

#[test]
fn create_zeroed_and_from_slice() {
    let a = SharedArray::<i32>::new(5).unwrap();
    assert_eq!(a.to_vec().unwrap(), vec![0; 5]);
    let b = SharedArray::from_slice(&[1.5f64, -2.0]).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![1.5, -2.0]);
    assert_eq!(SharedArray::<u8>::new(0).unwrap_err(), Error::Inval);
    assert_eq!(SharedArray::<u64>::new(usize::MAX / 2).unwrap_err(), Error::Inval);
    assert_eq!(b.get(2), Err(Error::Inval));
    assert_eq!(b.set(2, 0.0), Err(Error::Inval));
    b.set(1, 4.25).unwrap();
    assert_eq!(b.get(1), Ok(4.25));
}

#[test]
fn the_tutorial_value_and_array() {
    let num = SharedValue::new(0.0f64).unwrap();
    let arr = SharedArray::from_slice(&(0..10).collect::<Vec<i32>>()).unwrap();
    let c = child(|| {
        num.set(3.1415927).unwrap();
        for x in arr.lock().unwrap().iter_mut() {
            *x = -*x;
        }
        0
    });
    assert_eq!(join(&c), 0);
    assert_eq!(num.get().unwrap(), 3.1415927);
    assert_eq!(arr.to_vec().unwrap(), (0..10).map(|i: i32| -i).collect::<Vec<_>>());
}

#[test]
fn value_increments_under_its_lock_lose_nothing() {
    const PROCS: u64 = 4;
    const ITERS: u64 = 20_000;
    let v = SharedValue::new(0u64).unwrap();
    let kids: Vec<_> = (0..PROCS)
        .map(|_| {
            child(|| {
                for _ in 0..ITERS {
                    v.lock().unwrap()[0] += 1;
                }
                0
            })
        })
        .collect();
    for k in &kids {
        assert_eq!(join(k), 0);
    }
    assert_eq!(v.get().unwrap(), PROCS * ITERS);
}

#[test]
fn owner_death_through_the_array_lock() {
    let a = SharedArray::<u32>::new(4).unwrap();
    let ready = SharedValue::new(0u32).unwrap();
    let h = child(|| {
        let mut g = a.lock().unwrap();
        g[0] = 1; // half an update...
        ready.set(1).unwrap();
        std::mem::forget(g);
        loop {
            // SAFETY: sleeps until killed.
            unsafe { libc::pause() };
        }
    });
    wait_until("holder", || ready.get().unwrap() == 1);
    h.kill().unwrap();
    join(&h);
    match a.lock() {
        Err(LockError::OwnerDead(mut g)) => {
            assert_eq!(g[0], 1);
            g[0] = 0; // ...repaired
            g.make_consistent().unwrap();
        }
        other => panic!("expected OwnerDead, got {other:?}"),
    }
    assert_eq!(a.get(0), Ok(0));

    // The element accessors cannot repair: they report the death and the lock is lost.
    let h = child(|| {
        std::mem::forget(a.lock().unwrap());
        ready.set(2).unwrap();
        loop {
            // SAFETY: sleeps until killed.
            unsafe { libc::pause() };
        }
    });
    wait_until("holder", || ready.get().unwrap() == 2);
    h.kill().unwrap();
    join(&h);
    assert_eq!(a.get(0), Err(Error::OwnerDead));
    assert_eq!(a.get(0), Err(Error::NotRecoverable));
}

#[test]
fn named_array_between_processes() {
    let name = format!("/mpkit-array-{}", std::process::id());
    let a = SharedArray::<i64>::create_named(&name, 3).unwrap();
    let n = name.clone();
    let c = child(move || {
        let b = SharedArray::<i64>::open_named(&n).unwrap();
        b.set(2, -9).unwrap();
        0
    });
    assert_eq!(join(&c), 0);
    assert_eq!(a.to_vec().unwrap(), vec![0, 0, -9]);
}

#[test]
fn in_place_view_over_caller_memory() {
    let mut mem = vec![0u64; (ElemType::U16.bytes_needed(6).unwrap()).div_ceil(8)];
    let base = NonNull::new(mem.as_mut_ptr().cast::<u8>()).unwrap();
    // SAFETY: `mem` is 8-aligned, large enough, and used only through this view.
    let view = unsafe { ArrayView::<u16>::init(base, 6, Some(&[1, 2, 3, 4, 5, 6])) }.unwrap();
    assert_eq!(view.len(), 6);
    assert_eq!(view.get(5), Ok(6));
    view.lock().unwrap()[0] = 10;
    // SAFETY: same memory, initialised above.
    let again = unsafe { ArrayView::<u16>::from_raw(base, 6) };
    assert_eq!(again.get(0), Ok(10));
    assert!(again.try_lock().is_ok());
    // SAFETY: wrong init length is refused before anything is written.
    assert_eq!(unsafe { ArrayView::<u16>::init(base, 6, Some(&[1])) }.err(), Some(Error::Inval));
    let _g = view.lock().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert!(matches!(again.try_lock(), Err(LockError::Failed(Error::Timeout)))));
    });
}
