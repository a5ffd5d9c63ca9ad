//! The C shared library exports the `mpk_*` functions and nothing else (rustc's cdylib export
//! list, and `src/ffi/exports.map` on top), under the SONAME `libmpkit.so.<major>`.

mod common;

use std::process::Command;

#[test]
fn the_shared_library_exports_only_mpk_symbols() {
    let so = common::c_libraries().join("libmpkit.so");
    let out =
        Command::new("nm").args(["-D", "--defined-only"]).arg(&so).output().expect("nm (binutils) must be installed");
    assert!(out.status.success(), "nm failed on {}", so.display());
    let listing = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = listing.lines().filter_map(|l| l.split_whitespace().nth(2)).collect();
    assert!(names.contains(&"mpk_pool_create") && names.contains(&"mpk_async_cancel"), "{listing}");
    let stray: Vec<_> = names.iter().filter(|n| !n.starts_with("mpk_")).collect();
    assert!(stray.is_empty(), "libmpkit.so exports more than mpk_*: {stray:?}");
    let dynamic = Command::new("readelf").arg("-d").arg(&so).output().expect("readelf (binutils) must be installed");
    let major = env!("CARGO_PKG_VERSION_MAJOR");
    let want = format!("[libmpkit.so.{major}]");
    assert!(String::from_utf8_lossy(&dynamic.stdout).contains(&want), "SONAME is not {want}");
}
