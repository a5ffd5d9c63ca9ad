//! Shared regions: sharing across fork, named regions, header validation of foreign, truncated,
//! wrong-kind and wrong-version objects, lazy allocation.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;

use common::{child, flag, join};
use mpkit::{Error, Region, SharedArray};

fn unique(tag: &str) -> String {
    format!("/mpkit-shm-{tag}-{}", std::process::id())
}

/// Writes `bytes` as the whole content of `/dev/shm/<name>`.
fn plant(name: &str, bytes: &[u8]) {
    let mut f = std::fs::File::create(format!("/dev/shm{name}")).unwrap();
    f.write_all(bytes).unwrap();
}

#[test]
fn anonymous_region_is_shared_with_a_child() {
    let r = Region::new(4096).unwrap();
    assert_eq!(r.len(), 4096);
    assert_eq!(r.as_ptr() as usize % 64, 0);
    let c = child(|| {
        flag(&r, 0).store(77, Ordering::Release);
        0
    });
    assert_eq!(join(&c), 0);
    assert_eq!(flag(&r, 0).load(Ordering::Acquire), 77);
}

#[test]
fn zero_size_is_invalid() {
    assert_eq!(Region::new(0).unwrap_err(), Error::Inval);
    assert_eq!(Region::create_named(&unique("zero"), 0).unwrap_err(), Error::Inval);
}

#[test]
fn named_region_create_open_unlink() {
    let name = unique("named");
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::NotFound);
    let a = Region::create_named(&name, 100).unwrap();
    assert_eq!(a.name(), Some(name.as_str()));
    assert_eq!(Region::create_named(&name, 100).unwrap_err(), Error::Exists);
    let b = Region::open_named(&name).unwrap();
    assert_eq!(b.len(), 100);
    // SAFETY: both map the same 100 bytes; a single writer, read after.
    unsafe {
        a.as_ptr().add(99).write(5);
        assert_eq!(b.as_ptr().add(99).read(), 5);
    }
    // An unrelated process (a child that opens by name, not by inheritance) sees it too.
    let n = name.clone();
    let c = child(move || match Region::open_named(&n) {
        // SAFETY: the region has 100 bytes.
        Ok(r) if unsafe { r.as_ptr().add(99).read() } == 5 => 0,
        _ => 1,
    });
    assert_eq!(join(&c), 0);
    drop(b);
    drop(a); // the creator removes the name
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::NotFound);
}

#[test]
fn persisted_name_outlives_the_creator_handle() {
    let name = unique("persist");
    let mut a = Region::create_named(&name, 8).unwrap();
    a.persist();
    drop(a);
    assert!(Region::open_named(&name).is_ok());
    Region::unlink(&name).unwrap();
    assert_eq!(Region::unlink(&name).unwrap_err(), Error::NotFound);
}

#[test]
fn bad_names_are_invalid() {
    for bad in ["", "/", "a/b", "/a/b", ".", "..", "//a", "///a"] {
        assert_eq!(Region::create_named(bad, 8).unwrap_err(), Error::Inval, "{bad:?}");
    }
    let long = format!("/{}", "x".repeat(300));
    assert_eq!(Region::create_named(&long, 8).unwrap_err(), Error::Inval);
}

#[test]
fn foreign_object_is_bad_object() {
    let name = unique("foreign");
    plant(&name, &[0x5a; 4096]);
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::BadObject);
    assert_eq!(SharedArray::<i32>::open_named(&name).unwrap_err(), Error::BadObject);
    Region::unlink(&name).unwrap();
}

#[test]
fn truncated_object_is_bad_object() {
    // Shorter than a header: waits out the creator's grace period, then refuses.
    let name = unique("short");
    plant(&name, b"MPKITSHM");
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::BadObject);
    Region::unlink(&name).unwrap();

    // A valid header whose object was cut short afterwards.
    let name = unique("cut");
    let mut a = Region::create_named(&name, 4096).unwrap();
    a.persist();
    drop(a);
    let f = std::fs::OpenOptions::new().write(true).open(format!("/dev/shm{name}")).unwrap();
    f.set_len(1000).unwrap();
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::BadObject);
    Region::unlink(&name).unwrap();
}

#[test]
fn wrong_kind_is_bad_object() {
    let name = unique("kind");
    let _arr = SharedArray::<f64>::create_named(&name, 10).unwrap();
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::BadObject);
    assert_eq!(SharedArray::<i32>::open_named(&name).unwrap_err(), Error::BadObject, "wrong element type");
    let same = SharedArray::<f64>::open_named(&name).unwrap();
    assert_eq!(same.len(), 10);
}

#[test]
fn other_abi_version_is_version_error() {
    let name = unique("version");
    let mut a = Region::create_named(&name, 64).unwrap();
    a.persist();
    drop(a);
    let path = format!("/dev/shm{name}");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes()); // the header's ABI version field
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(Region::open_named(&name).unwrap_err(), Error::Version);
    Region::unlink(&name).unwrap();
}

#[test]
fn corrupted_layout_is_bad_object() {
    let name2 = unique("layout2");
    let mut b = mpkit::array::AnyArray::create_named(&name2, mpkit::ElemType::U16, 8, None).unwrap();
    b.persist();
    drop(b);
    let path = format!("/dev/shm{name2}");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[40..48].copy_from_slice(&1_000_000u64.to_le_bytes()); // claims more elements than it holds
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(mpkit::array::AnyArray::open_named(&name2).unwrap_err(), Error::BadObject);
    Region::unlink(&name2).unwrap();
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_4_gib_array_costs_nothing_until_touched() {
    let before = rss_kib();
    let a = SharedArray::<u8>::new(4 << 30).unwrap();
    assert_eq!(a.len(), 4 << 30);
    {
        let mut g = a.lock().unwrap();
        for gib in 0..4 {
            g[gib << 30] = 1; // one page per GiB
        }
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB for 4 touched pages");
}
