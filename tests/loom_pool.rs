//! loom model of a pool job's word: the worker starts and ends it, the supervisor may declare
//! its worker dead at any moment, the parent waits for the end (and for the group's count). In
//! every interleaving exactly one party ends the job, the waiter is woken (a missed wake-up is a
//! loom deadlock), and the result written before the end is visible after it.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_pool`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=job_no_wake` and `group_no_wake` must deadlock;
//! `job_relaxed_end` must report a causality violation; `job_ignore_ticket` must let a late
//! death report end the slot's next task.
#![cfg(loom)]

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use mpkit::Deadline;
use mpkit::pool::job::{GroupWord, JobWord, Outcome};

struct Job {
    word: JobWord,
    group: GroupWord,
    /// Stands for the job's result bytes in shared memory.
    result: UnsafeCell<u64>,
}

// SAFETY: `result` is written by the worker before the job ends and read by the parent after.
unsafe impl Sync for Job {}
// SAFETY: as above.
unsafe impl Send for Job {}

/// A job with one task queued; its ticket.
fn job() -> (Arc<Job>, u32) {
    let j = Job { word: JobWord::new(), group: GroupWord::new(), result: UnsafeCell::new(0) };
    let ticket = j.word.queue(Some(0));
    (Arc::new(j), ticket)
}

fn worker(j: &Job, ticket: u32) -> bool {
    if !j.word.start(ticket) {
        return false;
    }
    // SAFETY: the job is ours between start and finish.
    j.result.with_mut(|r| unsafe { *r = 99 });
    j.word.finish(ticket, 0, 1, &|_| &j.group)
}

fn wait(j: &Job) -> Outcome {
    j.word.wait(Deadline::FOREVER, Duration::from_millis(1), &mut || true).unwrap()
}

/// The parent sleeps until the worker ends the job, then sees its result.
#[test]
fn waiter_sees_the_end_and_the_result() {
    loom::model(|| {
        let (j, t) = job();
        let w = {
            let j = j.clone();
            thread::spawn(move || worker(&j, t))
        };
        assert_eq!(wait(&j), Outcome::Done);
        // SAFETY: the job ended: the result is the parent's to read.
        assert_eq!(j.result.with(|r| unsafe { *r }), 99);
        assert!(w.join().unwrap());
    });
}

/// The pool is terminated (the parent cancels) while the worker starts or runs the job:
/// exactly one of them ends it, and a waiter learns which.
#[test]
fn cancel_races_the_worker() {
    loom::model(|| {
        let (j, t) = job();
        let w = {
            let j = j.clone();
            thread::spawn(move || worker(&j, t))
        };
        let c = {
            let j = j.clone();
            thread::spawn(move || j.word.cancel(&|_| &j.group))
        };
        let outcome = wait(&j);
        let (finished, cancelled) = (w.join().unwrap(), c.join().unwrap());
        assert!(finished != cancelled, "exactly one party ends the job");
        assert_eq!(outcome, if finished { Outcome::Done } else { Outcome::Cancelled });
    });
}

/// The worker dies after starting the job (its thread just stops); the supervisor, once it has
/// reaped it, declares the job dead while the parent is waiting.
#[test]
fn death_after_start_wakes_the_waiter() {
    loom::model(|| {
        let (j, t) = job();
        let supervisor = {
            let j = j.clone();
            thread::spawn(move || {
                let w = {
                    let j = j.clone();
                    thread::spawn(move || j.word.start(t))
                };
                assert!(w.join().unwrap());
                j.word.died(t, &|_| &j.group)
            })
        };
        assert_eq!(wait(&j), Outcome::Died { at: 0 });
        assert!(supervisor.join().unwrap());
    });
}

/// The parent waits on the group's count instead; the end still wakes it.
#[test]
fn group_waiter_is_woken() {
    loom::model(|| {
        let (j, t) = job();
        let w = {
            let j = j.clone();
            thread::spawn(move || worker(&j, t))
        };
        assert_eq!(j.group.wait_beyond(0, Deadline::FOREVER, Duration::from_millis(1), &mut || true), Ok(1));
        assert_eq!(j.word.outcome(), Some(Outcome::Done));
        w.join().unwrap();
    });
}

/// The supervisor reports a worker's death after that worker finished its task, the parent took
/// the result and queued the next task in the same slot: the late report names the old ticket
/// and must leave the new task alone (another worker runs it to the end).
#[test]
fn a_late_death_report_leaves_the_next_task_alone() {
    loom::model(|| {
        let (j, t1) = job();
        let supervisor = {
            let j = j.clone();
            thread::spawn(move || {
                let w = {
                    let j = j.clone();
                    thread::spawn(move || worker(&j, t1))
                };
                assert!(w.join().unwrap());
                j.word.died(t1, &|_| &j.group)
            })
        };
        assert_eq!(wait(&j), Outcome::Done);
        j.word.free();
        let t2 = j.word.queue(None);
        let w2 = {
            let j = j.clone();
            thread::spawn(move || worker(&j, t2))
        };
        assert_eq!(wait(&j), Outcome::Done, "the new task ran to its end");
        assert!(w2.join().unwrap());
        assert!(!supervisor.join().unwrap(), "the late report ended nothing");
    });
}
