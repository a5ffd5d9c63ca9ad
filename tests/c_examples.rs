//! Builds `c-examples/` with `-Wall -Wextra -Wpedantic -Werror` against the static library, plainly
//! and under AddressSanitizer + UBSan, runs each example and checks its output.

mod common;

use common::tutorial;

fn check(name: &str, verify: fn(&str)) {
    for (variant, flags) in common::EXAMPLE_BUILDS {
        verify(&common::run_example(&common::build_example(
            "c-examples",
            "c-examples",
            name,
            variant,
            "CFLAGS",
            flags,
        )));
    }
}

#[test]
fn hello() {
    check("hello", |out| assert_eq!(out, tutorial::HELLO));
}

#[test]
fn pids() {
    check("pids", |out| {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 9, "{out}");
        assert_eq!(lines[0], "main line");
        assert_eq!(lines[4], "function f");
        assert_eq!(lines[8], "hello john");
        let value = |line: &str, key: &str| -> i32 {
            line.strip_prefix(key).unwrap_or_else(|| panic!("{line:?} lacks {key:?}")).trim().parse().unwrap()
        };
        let main_pid = value(lines[3], "process id:");
        assert_eq!(value(lines[6], "parent process:"), main_pid, "the child's parent is the main process");
        assert_ne!(value(lines[7], "process id:"), main_pid);
        assert_eq!(lines[1], "module name: __main__");
    });
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
fn manager() {
    check("manager", |out| assert_eq!(out, tutorial::MANAGER));
}

#[test]
fn pool_map() {
    check("pool_map", |out| assert_eq!(out, tutorial::POOL_MAP));
}

#[test]
fn pool_timeout() {
    check("pool_timeout", |out| {
        assert_eq!(
            out,
            "sleep 10 s with a 1000 ms limit -> task ran past its time limit and was stopped\n\
             then map -> [1, 4, 9, 16]\n\
             map_async -> 4 results [1, 4, 9, 16]\n\
             cancelled task -> task was cancelled\n\
             cancel again -> invalid in the object's current state\n"
        )
    });
}

#[test]
fn pool_walkthrough() {
    check("pool_walkthrough", |out| {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 15, "{out}");
        assert_eq!(lines[0], "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]");
        let mut unordered: Vec<i64> = lines[1..11].iter().map(|l| l.parse().unwrap()).collect();
        unordered.sort();
        assert_eq!(unordered, (0..10).map(|i| i * i).collect::<Vec<i64>>());
        assert_eq!(lines[11], "400");
        let pid: i32 = lines[12].parse().unwrap();
        let pids: Vec<i32> = lines[13].trim_matches(['[', ']']).split(", ").map(|p| p.parse().unwrap()).collect();
        assert_eq!(pids.len(), 4);
        assert!(pid > 0 && pids.iter().all(|&p| p > 0));
        assert_eq!(lines[14], "We lacked patience and got a multiprocessing.TimeoutError");
    });
}

#[test]
fn pool_benchmark() {
    check("pool_benchmark", |out| {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(lines[0].starts_with("8 tasks of burn("));
        assert!(lines[1].starts_with("serial:"));
        for (line, name) in [(lines[2], "threads:"), (lines[3], "pool:")] {
            assert!(line.starts_with(name), "{line}");
            let speedup: f64 = line.rsplit("speed-up ").next().unwrap().trim_end_matches("x)").parse().unwrap();
            assert!(speedup > 0.0, "{line}");
        }
    });
}

#[test]
fn wait() {
    check("wait", tutorial::check_wait);
}

/// What `event.c` and the tour's event part print: the workers in any order, then the parent.
fn check_event(out: &str) {
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.pop(), Some("all 4 workers started, event set: true"), "{out}");
    lines.sort();
    assert_eq!(lines, ["worker 0 started", "worker 1 started", "worker 2 started", "worker 3 started"]);
}

#[test]
fn event() {
    check("event", check_event);
}

#[test]
fn condition() {
    check("condition", |out| {
        assert_eq!(out, "consumed 1\nconsumed 4\nconsumed 9\nconsumed 16\nconsumed 25\nsum 55\n");
    });
}

#[test]
fn barrier() {
    check("barrier", |out| {
        assert_eq!(
            out,
            "round 0: all 4 parties arrived\nround 1: all 4 parties arrived\nround 2: all 4 parties arrived\nbroken: false\n"
        );
    });
}
