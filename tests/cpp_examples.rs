//! Builds `c-examples/cpp/` (the tutorial's examples over `include/mpkit.hpp`) with `c++ -std=c++17
//! -Wall -Wextra -Wpedantic -Werror` against the static library, plainly and under
//! AddressSanitizer + UBSan, runs each example and checks its output (as `tests/c_examples.rs`
//! does for the C ones). `header_check.cpp` includes the header twice and checks the wrapper's
//! documented behaviour; `header_strict` compiles it with stricter warnings, as C++17 and C++20.

mod common;

use common::tutorial;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(name: &str, verify: fn(&str)) {
    for (variant, flags) in common::EXAMPLE_BUILDS {
        verify(&common::run_example(&common::build_example(
            "c-examples/cpp",
            "cpp-examples",
            name,
            variant,
            "CXXFLAGS",
            flags,
        )));
    }
}

#[test]
fn hello() {
    check("hello", |out| assert_eq!(out, tutorial::HELLO));
}

#[test]
fn lock() {
    check("lock", tutorial::check_lock);
}

#[test]
fn rlock() {
    check("rlock", tutorial::check_rlock);
}

#[test]
fn semaphore() {
    check("semaphore", |out| tutorial::check_semaphore(out, 8, 3));
}

#[test]
fn value_array() {
    check("value_array", |out| assert_eq!(out, tutorial::VALUE_ARRAY));
}

#[test]
fn queue() {
    check("queue", |out| assert_eq!(out, tutorial::QUEUED));
}

#[test]
fn pipe() {
    check("pipe", |out| assert_eq!(out, tutorial::QUEUED));
}

#[test]
fn pool_map() {
    check("pool_map", |out| assert_eq!(out, tutorial::POOL_MAP));
}

#[test]
fn manager() {
    check("manager", |out| assert_eq!(out, tutorial::MANAGER));
}

#[test]
fn header_check() {
    check("header_check", |out| {
        assert_eq!(out, "errors ok\nmutex ok\nprocess ok\nqueue ok\npipe ok\narrays ok\ndict ok\npool ok\n")
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

#[test]
fn sync() {
    check("sync", |out| {
        let lines: Vec<&str> = out.lines().collect();
        let mut workers = lines[..4].to_vec();
        workers.sort();
        assert_eq!(workers, ["worker 0 started", "worker 1 started", "worker 2 started", "worker 3 started"], "{out}");
        assert_eq!(lines[4..], tutorial::SYNC_FAMILY);
    });
}
