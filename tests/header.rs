//! `include/mpkit.h` must be exactly what cbindgen generates from `src/ffi`, and name nothing
//! outside mpkit's prefixes (a stray `#define DONE 3` would break the programs that include it).
//! `MPK_BLESS=1 cargo test --test header` rewrites the checked-in copy. (cbindgen runs here, a
//! dev-dependency: dependents of the crate never build it.)

/// The header cbindgen generates from `src/ffi` and `cbindgen.toml` now.
fn generated() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml is valid");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn checked_in_header_matches_the_code() {
    let generated = generated();
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

#[test]
fn header_names_only_prefixed_items() {
    let header = generated();
    let ident = |s: &str| {
        s.trim_start_matches('*').split(|c: char| !(c.is_alphanumeric() || c == '_')).next().map(str::to_owned)
    };
    let last_ident =
        |s: &str| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).rfind(|w| !w.is_empty()).map(str::to_owned);
    let mut names = Vec::new();
    for line in header.lines() {
        let name = if line.contains("extern \"C\"") {
            None // the C++ guard
        } else if let Some(rest) = line.strip_prefix("#define ") {
            ident(rest)
        } else if let Some((_, rest)) = line.split_once("(*") {
            ident(rest) // a function-pointer typedef
        } else if line.starts_with("typedef ") && line.ends_with(';') || line.starts_with("} ") {
            last_ident(line.trim_end_matches(';'))
        } else if line.starts_with(|c: char| c.is_ascii_lowercase()) && line.contains('(') {
            last_ident(line.split('(').next().unwrap_or("")) // a function declaration
        } else {
            None
        };
        names.extend(name);
    }
    assert!(names.iter().any(|n| n == "mpk_task_fn") && names.iter().any(|n| n == "mpk_pool_map"), "{names:?}");
    let stray: Vec<_> =
        names.iter().filter(|n| *n != "MPKIT_H" && !n.starts_with("mpk_") && !n.starts_with("MPK_")).collect();
    assert!(stray.is_empty(), "unprefixed names in the generated header: {stray:?} (exclude them in cbindgen.toml)");
}

/// The header compiles cleanly as C89, C99 and C11 (`-Wall -Wextra -Wpedantic -Werror`), and as
/// C++ where a C++ compiler is installed (`c++`; otherwise that one check says it was skipped).
#[test]
fn header_compiles_as_c89_c99_c11_and_cpp() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("mpkit-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("use.c");
    std::fs::write(
        &src,
        "#include \"mpkit.h\"\nint main(void) { return mpk_abi_version() == MPK_ABI_VERSION ? 0 : 1; }\n",
    )
    .unwrap();
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/include");
    let compile = |cc: &str, lang: &[&str], std: &str| {
        Command::new(cc)
            .args(["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-fsyntax-only", std, "-I", include])
            .args(lang)
            .arg(&src)
            .output()
    };
    for std in ["-std=c89", "-std=c99", "-std=c11"] {
        let out = compile("cc", &[], std).expect("a C compiler (cc) must be installed");
        assert!(out.status.success(), "mpkit.h under {std}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    match compile("c++", &["-x", "c++"], "-std=c++11") {
        Ok(out) => assert!(out.status.success(), "mpkit.h as C++11:\n{}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => eprintln!("skipped: no c++ compiler"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
