//! What the C shared library needs from the link: its SONAME (`libmpkit.so.<major>`) and a
//! version script that exports the `mpk_*` functions only. Cargo passes these to cdylib links
//! alone (`make` builds the C libraries with `cargo rustc --crate-type staticlib,cdylib`); the
//! Rust library and its dependents are unaffected. The C header is not generated here: see
//! `tests/header.rs`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = out.join("mpkit.map");
    std::fs::write(&script, "{\n  global: mpk_*;\n  local: *;\n};\n").expect("write the version script");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={}", script.display());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmpkit.so.{major}");
}
