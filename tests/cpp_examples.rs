//! Builds `c-examples/cpp/` (the tutorial's examples over `include/mpkit.hpp`) with `c++ -std=c++17
//! -Wall -Wextra -Wpedantic -Werror` against the static library, plainly and under
//! AddressSanitizer + UBSan, runs each example and checks its output (as `tests/c_examples.rs`
//! does for the C ones). `header_check.cpp` includes the header twice and checks the wrapper's
//! documented behaviour; `header_strict` compiles it with stricter warnings, as C++17 and C++20.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The static library cargo built next to this test binary (`deps/`, or the profile directory).
fn staticlib() -> PathBuf {
    common::c_libraries().join("libmpkit.a")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `name` with make for `variant` and returns the binary.
fn build(name: &str, variant: &str, cxxflags: &str) -> PathBuf {
    let out = root().join("target/cpp-examples").join(variant);
    let status = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root().join("c-examples/cpp"))
        .arg("CXX=c++")
        .arg(format!("MPKIT_LIB={}", staticlib().display()))
        .arg(format!("BUILD={}", out.display()))
        .arg(format!("CXXFLAGS={cxxflags}"))
        .arg(out.join(name))
        .status()
        .expect("make (and a C++ compiler) must be installed");
    assert!(status.success(), "building c-examples/cpp/{name}.cpp failed");
    out.join(name)
}

/// Runs `bin` with a deadline; returns its stdout after checking it exited 0 with a quiet stderr.
fn run(bin: &Path) -> String {
    let out = common::output_within(
        Command::new(bin)
            .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
            .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", bin.display(), out.status);
    assert!(stderr.is_empty(), "{} wrote to stderr:\n{stderr}", bin.display());
    stdout
}

const PLAIN: (&str, &str) = ("plain", "-O2 -g");
const ASAN: (&str, &str) = ("asan", "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined");

fn check(name: &str, verify: fn(&str)) {
    for (variant, cxxflags) in [PLAIN, ASAN] {
        let out = run(&build(name, variant, cxxflags));
        verify(&out);
    }
}

#[test]
fn hello() {
    check("hello", |out| assert_eq!(out, "hello john\n"));
}

#[test]
fn lock() {
    check("lock", |out| {
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_by_key(|l| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap());
        let want: Vec<String> = (0..10).map(|i| format!("hello world {i}")).collect();
        assert_eq!(lines, want);
    });
}

#[test]
fn value_array() {
    check("value_array", |out| assert_eq!(out, "3.1415927\n[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]\n"));
}

#[test]
fn queue() {
    check("queue", |out| assert_eq!(out, "[42, None, 'hello']\n"));
}

#[test]
fn pipe() {
    check("pipe", |out| assert_eq!(out, "[42, None, 'hello']\n"));
}

#[test]
fn pool_map() {
    check("pool_map", |out| assert_eq!(out, "[1, 4, 9]\n"));
}

#[test]
fn header_check() {
    check("header_check", |out| {
        assert_eq!(out, "errors ok\nmutex ok\nprocess ok\nqueue ok\npipe ok\narrays ok\npool ok\n")
    });
}

/// The header stays quiet under the warnings careful C++ users turn on, in C++17 and C++20.
#[test]
fn header_strict() {
    let strict = [
        "-Wall",
        "-Wextra",
        "-Wpedantic",
        "-Werror",
        "-Wshadow",
        "-Wconversion",
        "-Wsign-conversion",
        "-Wold-style-cast",
        "-Wzero-as-null-pointer-constant",
        "-Wnon-virtual-dtor",
        "-Woverloaded-virtual",
        "-Wcast-qual",
        "-Wextra-semi",
        "-Wundef",
    ];
    let version = Command::new("c++").arg("--version").output().expect("a C++ compiler must be installed");
    let gcc_only: &[&str] =
        if String::from_utf8_lossy(&version.stdout).contains("clang") { &[] } else { &["-Wuseless-cast"] };
    for std in ["-std=c++17", "-std=c++20"] {
        let out = common::output_within(
            Command::new("c++")
                .arg(std)
                .args(strict)
                .args(gcc_only)
                .arg("-fsyntax-only")
                .arg(format!("-I{}", root().join("include").display()))
                .arg(root().join("c-examples/cpp/header_check.cpp")),
            Duration::from_secs(60),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && stderr.is_empty(), "mpkit.hpp with {std} and strict warnings:\n{stderr}");
    }
}
