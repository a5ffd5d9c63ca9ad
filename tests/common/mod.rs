//! Helpers shared by the cross-process tests: children with a watchdog, bounded waits.
#![allow(clippy::multiple_unsafe_ops_per_block)] // tests group C-style calls
#![allow(dead_code)]

use std::time::{Duration, Instant};

use mpkit::Process;

/// Upper bound for any wait in a test: generous, since CI machines are shared and slow.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Forks a child running `f`. The child gets an `alarm` watchdog so it can never outlive a hung
/// test, and writes nothing through std I/O.
pub fn child(f: impl FnOnce() -> i32) -> Process {
    // SAFETY: test processes may have harness threads; the children below only touch mpkit
    // primitives, atomics and raw syscalls before they `_exit`.
    unsafe {
        Process::spawn(move || {
            libc::alarm(PATIENCE.as_secs() as u32);
            f()
        })
    }
    .expect("fork")
}

/// Joins `p` (bounded) and returns its exit code.
pub fn join(p: &Process) -> i32 {
    p.join_timeout(PATIENCE).expect("child did not finish in time")
}

/// Polls `cond` until it holds; panics after `PATIENCE`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `cmd` with piped stdout and stderr to its end and returns its output; kills it and
/// panics if it runs longer than `limit`.
pub fn output_within(cmd: &mut std::process::Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// Runs `cargo <args>` on this crate, in the profile and target directory this test was built
/// in (then `-- <rustc_args>`), and returns that profile's directory. Cargo's lock serialises
/// concurrent callers; all but the first find the outputs up to date.
pub fn cargo_in_my_profile(args: &[&str], rustc_args: &[&str]) -> std::path::PathBuf {
    // The test binary lives in target/<profile>/deps.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let mut build = std::process::Command::new(env!("CARGO"));
    build.args(args).args(["--quiet", "--manifest-path", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")]);
    build.arg("--target-dir").arg(profile_dir.parent().unwrap());
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    if !rustc_args.is_empty() {
        build.arg("--").args(rustc_args);
    }
    assert!(build.status().expect("cargo").success(), "cargo {args:?} failed");
    profile_dir
}

/// Builds the C libraries (`libmpkit.a`, `libmpkit.so`) of this test's profile as `make` does for
/// release (the crate's library type is rlib only, so that dependents build just that), and
/// returns the directory that holds them.
pub fn c_libraries() -> std::path::PathBuf {
    // As the Makefile links it: SONAME, and exports limited to mpk_*.
    let soname = concat!("link-arg=-Wl,-soname,libmpkit.so.", env!("CARGO_PKG_VERSION_MAJOR"));
    let script = concat!("link-arg=-Wl,--version-script=", env!("CARGO_MANIFEST_DIR"), "/src/ffi/exports.map");
    cargo_in_my_profile(&["rustc", "--lib", "--crate-type", "staticlib,cdylib"], &["-C", soname, "-C", script])
}

/// What the tutorial's examples print, in C and in C++ alike.
pub mod tutorial {
    pub const HELLO: &str = "hello john\n";
    pub const VALUE_ARRAY: &str = "3.1415927\n[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]\n";
    /// The queue and the pipe examples.
    pub const QUEUED: &str = "[42, None, 'hello']\n";
    pub const POOL_MAP: &str = "[1, 4, 9]\n";
    /// The Manager example: the dict and the list after the child changed them.
    pub const MANAGER: &str = "{1: '1', '2': 2, 0.25: None}\n[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]\n";

    /// The lock example: ten processes' lines, in any order.
    pub fn check_lock(out: &str) {
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_by_key(|l| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap());
        let want: Vec<String> = (0..10).map(|i| format!("hello world {i}")).collect();
        assert_eq!(lines, want);
    }

    /// The RLock example: ten processes' lines, each printed at depth 2, in any order.
    pub fn check_rlock(out: &str) {
        let mut lines: Vec<&str> = out.lines().filter(|l| l.starts_with("rlock: ")).collect();
        lines.sort_by_key(|l| l.split(' ').nth(3).unwrap().parse::<u32>().unwrap());
        let want: Vec<String> = (0..10).map(|i| format!("rlock: hello world {i} at depth 2")).collect();
        assert_eq!(lines, want, "{out}");
    }

    /// What the Event, Condition and Barrier examples (C++ sync.cpp, the tour) print after the
    /// four event workers' lines, in order.
    pub const SYNC_FAMILY: [&str; 11] = [
        "all 4 workers started, event set: true",
        "consumed 1",
        "consumed 4",
        "consumed 9",
        "consumed 16",
        "consumed 25",
        "sum 55",
        "round 0: all 4 parties arrived",
        "round 1: all 4 parties arrived",
        "round 2: all 4 parties arrived",
        "broken: false",
    ];

    /// What `wait.c` and the tour print: each pipe's message, then its end-of-file, and the
    /// worker's exit, in the order things happened (which varies).
    pub fn check_wait(out: &str) {
        let mut lines: Vec<&str> =
            out.lines().filter(|l| l.starts_with("pipe ") || l.starts_with("worker exited")).collect();
        lines.sort();
        let mut want: Vec<String> = (0..3).map(|i| format!("pipe {i}: hello from sender {i}")).collect();
        want.extend((0..3).map(|i| format!("pipe {i}: end of file")));
        want.push("worker exited with 7".into());
        want.sort();
        assert_eq!(lines, want, "{out}");
        for i in 0..3 {
            let hello = out.find(&format!("pipe {i}: hello")).unwrap();
            assert!(hello < out.find(&format!("pipe {i}: end of file")).unwrap(), "message before EOF: {out}");
        }
    }

    /// The Semaphore example: `procs` processes each enter once and leave once, never more
    /// than `permits` inside at once (each prints "enters" holding a permit, "leaves" still
    /// holding it, so the output order is an upper bound on who was inside).
    pub fn check_semaphore(out: &str, procs: usize, permits: usize) {
        let mut inside = std::collections::BTreeSet::new();
        let (mut entered, mut most) = (std::collections::BTreeSet::new(), 0);
        for line in out.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let [_, num, what] = words[..] else { continue };
            let Ok(num) = num.parse::<usize>() else { continue };
            match what {
                "enters" => {
                    assert!(entered.insert(num), "process {num} entered twice:\n{out}");
                    inside.insert(num);
                    most = most.max(inside.len());
                    assert!(inside.len() <= permits, "{inside:?} inside at once:\n{out}");
                }
                "leaves" => assert!(inside.remove(&num), "process {num} left without entering:\n{out}"),
                _ => continue,
            }
        }
        assert!(inside.is_empty(), "{inside:?} never left:\n{out}");
        assert_eq!(entered.len(), procs, "{out}");
        assert!(most >= 1);
    }
}

/// The two builds of every C/C++ example: plain, and under AddressSanitizer + UBSan.
pub const EXAMPLE_BUILDS: [(&str, &str); 2] =
    [("plain", "-O2 -g"), ("asan", "-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined")];

/// Builds example `name` of `c-examples/<dir>` with its Makefile against the static library, in
/// `target/<out>/<variant>`, with `flags_var=flags` (`CFLAGS` or `CXXFLAGS`); returns the binary.
pub fn build_example(
    dir: &str,
    out: &str,
    name: &str,
    variant: &str,
    flags_var: &str,
    flags: &str,
) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = root.join("target").join(out).join(variant);
    let status = std::process::Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(root.join(dir))
        .arg(format!("MPKIT_LIB={}", c_libraries().join("libmpkit.a").display()))
        .arg(format!("BUILD={}", build.display()))
        .arg(format!("{flags_var}={flags}"))
        .arg(build.join(name))
        .status()
        .expect("make (and a C and a C++ compiler) must be installed");
    assert!(status.success(), "building {dir}/{name} failed");
    build.join(name)
}

/// Runs an example binary with a deadline; returns its stdout after checking that it exited 0
/// with a quiet stderr (sanitizer reports included).
pub fn run_example(bin: &std::path::Path) -> String {
    let out = output_within(
        std::process::Command::new(bin)
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

/// A word in shared memory that processes use to signal progress to each other.
pub fn flag(region: &mpkit::Region, index: usize) -> &std::sync::atomic::AtomicU32 {
    assert!((index + 1) * 4 <= 1024, "flags live in the first KiB");
    // SAFETY: the region is at least 1 KiB, page-aligned, zero-initialised and lives as long as
    // the returned reference; AtomicU32 accepts any bit pattern.
    unsafe { &*(region.as_ptr().add(index * 4) as *const std::sync::atomic::AtomicU32) }
}
