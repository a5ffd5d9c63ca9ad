//! Builds and runs the tour (the demo of the README's first command) and checks what it prints:
//! the tutorial's results, in order, and what mpkit adds to them.

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn the_tour_prints_the_tutorials_results() {
    let tour = common::cargo_in_my_profile(&["build", "--example", "tour"], &[]).join("examples/tour");
    let out = common::output_within(Command::new(&tour).env("MPKIT_TOUR_ROUNDS", "20000"), Duration::from_secs(120));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "tour failed: {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let expected = [
        "== Pool(5).map(f, [1, 2, 3])",
        "[1, 4, 9]",
        "hello john",
        "[42, None, 'hello']",
        "3.1415927",
        "[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]",
    ]
    .into_iter()
    .chain(common::tutorial::MANAGER.lines())
    .chain([
        "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]",
        "400",
        "We lacked patience and got a multiprocessing.TimeoutError",
        "sleep_s(10) with a 1 s limit -> Err(TaskTimeout)",
        "then map -> [1, 4, 9, 16]",
        "map_async -> [1, 4, 9, 16]",
        "sleep_s(10) cancelled -> Err(Cancelled)",
        "starmap(add, [(1, 2), (3, 4)]) -> Ok([3, 7])",
    ])
    .chain(common::tutorial::SYNC_FAMILY)
    .chain(["== serial, threads, pool: 8 x burn(20M)"]);
    let lines: Vec<&str> = stdout.lines().collect();
    let mut at = 0;
    for want in expected {
        let found = lines[at..].iter().position(|l| *l == want);
        assert!(found.is_some(), "missing (in order) {want:?} in:\n{stdout}");
        at += found.unwrap() + 1;
    }
    let hellos = lines.iter().filter(|l| l.starts_with("hello world ")).count();
    assert_eq!(hellos, 10, "ten processes printed under the lock");
    common::tutorial::check_rlock(&stdout);
    common::tutorial::check_semaphore(&stdout, 8, 3);
    common::tutorial::check_wait(&stdout);
    let workers = lines.iter().filter(|l| l.starts_with("worker ") && l.ends_with(" started")).count();
    assert_eq!(workers, 4, "four processes passed the event");
}
