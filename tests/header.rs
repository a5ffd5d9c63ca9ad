//! `include/mpkit.h` must be exactly what cbindgen generates from `src/ffi`.
//! `MPK_BLESS=1 cargo test --test header` rewrites the checked-in copy.

#[test]
fn checked_in_header_matches_the_code() {
    let generated = std::fs::read_to_string(env!("MPKIT_GENERATED_HEADER")).expect("build.rs wrote the header");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/mpkit.h");
    if std::env::var_os("MPK_BLESS").is_some() {
        std::fs::write(path, &generated).expect("write include/mpkit.h");
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/mpkit.h is out of date with src/ffi: run `MPK_BLESS=1 cargo test --test header` and commit it"
    );
}
