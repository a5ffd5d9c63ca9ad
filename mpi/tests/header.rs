//! `include/mpkit_mpi.h` must be exactly what cbindgen generates from `mpi/src/ffi.rs`, declare
//! only `mpk_mpi_*` functions, and compile (C99 and C11, `-Wall -Wextra -Wpedantic -Werror`) with
//! `mpicc` where it is installed. `MPK_BLESS=1 cargo test -p mpkit-mpi --test header` rewrites it.

use std::path::Path;

fn generated() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("mpi/cbindgen.toml is valid");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

fn header_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/mpkit_mpi.h")
}

#[test]
fn checked_in_header_matches_the_code() {
    let generated = generated();
    if std::env::var_os("MPK_BLESS").is_some() {
        std::fs::write(header_path(), &generated).expect("write include/mpkit_mpi.h");
        return;
    }
    let checked_in = std::fs::read_to_string(header_path()).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/mpkit_mpi.h is out of date with mpi/src/ffi.rs: run `MPK_BLESS=1 cargo test -p mpkit-mpi --test header` and commit it"
    );
}

#[test]
fn header_declares_only_mpk_mpi_functions() {
    let header = generated();
    let decls: Vec<&str> = header.lines().filter(|l| l.starts_with("mpk_status ")).collect();
    assert!(decls.iter().any(|l| l.contains("mpk_mpi_map(")), "{header}");
    for l in decls {
        assert!(l.starts_with("mpk_status mpk_mpi_"), "unprefixed declaration: {l}");
    }
}

#[test]
fn header_compiles_with_mpicc() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("mpkit-mpi-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("use.c");
    std::fs::write(
        &src,
        "#include \"mpkit_mpi.h\"\nint main(void) { return mpk_mpi_last_failure(NULL, NULL, NULL); }\n",
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/../include");
    for std in ["-std=c99", "-std=c11"] {
        match Command::new("mpicc")
            .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", std, "-I", include])
            .arg(&src)
            .output()
        {
            Ok(out) => {
                assert!(out.status.success(), "mpkit_mpi.h under {std}:\n{}", String::from_utf8_lossy(&out.stderr))
            }
            Err(_) => {
                eprintln!("skipped: no mpicc (mpi/run-tests.sh installs it)");
                break;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
