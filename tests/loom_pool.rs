//! loom models of the pool's protocols. The job word: workers claim and end it, the supervisor
//! may declare its worker dead or its call timed out at any moment, the parent cancels and
//! waits for the end (and for the group's count). In every interleaving exactly one party ends
//! the job, the waiter is woken (a missed wake-up is a loom deadlock), and the result written
//! before the end is visible after it. The task board: a queued task reaches a worker that went
//! to sleep before it was announced, and one whose announcement was taken by a worker that then
//! died (found through the pending bits).
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_pool`.
//! Mutation checks (.ci/loom): `MPK_MUTANT=job_no_wake`, `group_no_wake`, `board_no_wake` and
//! `board_no_scan` must deadlock; `job_relaxed_end` must report a causality violation;
//! `job_ignore_ticket` must let a late death report end the slot's next task, and
//! `job_ignore_owner` a death report about one worker end the task another runs.
#![cfg(loom)]

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;
use mpkit::Deadline;
use mpkit::pool::board::{Board, BoardCtl};
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

/// Worker 1 runs the task to its end.
fn worker(j: &Job, ticket: u32) -> bool {
    if !j.word.start(ticket, 1) {
        return false;
    }
    // SAFETY: the job is ours between start and finish.
    j.result.with_mut(|r| unsafe { *r = 99 });
    j.word.finish(ticket, 0, 1, &|_| &j.group)
}

fn wait(j: &Job) -> Outcome {
    j.word.wait(Deadline::FOREVER, Duration::from_millis(1), &mut || true, &|_| false).unwrap()
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
            thread::spawn(move || j.word.cancel(&|_| &j.group).is_some())
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
                    thread::spawn(move || j.word.start(t, 1))
                };
                assert!(w.join().unwrap());
                j.word.died(t, 1, &|_| &j.group)
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
                j.word.died(t1, 1, &|_| &j.group)
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

/// Two workers race to claim one task; the supervisor then reports the loser dead (it had only
/// named the task, about to claim it). The report must leave the winner's task alone.
#[test]
fn a_death_report_ends_only_its_own_workers_task() {
    loom::model(|| {
        let (j, t) = job();
        let claim = |owner: u32| {
            let j = j.clone();
            thread::spawn(move || j.word.start(t, owner))
        };
        let (a, b) = (claim(1), claim(2));
        let (won_a, won_b) = (a.join().unwrap(), b.join().unwrap());
        assert!(won_a != won_b, "exactly one worker claims the task");
        let loser = if won_a { 2 } else { 1 };
        let winner = {
            let j = j.clone();
            thread::spawn(move || {
                // SAFETY: the job is the winner's between start and finish.
                j.result.with_mut(|r| unsafe { *r = 99 });
                j.word.finish(t, 0, 1, &|_| &j.group)
            })
        };
        assert!(!j.word.died(t, loser, &|_| &j.group), "the loser's death ends nothing");
        assert!(winner.join().unwrap());
        assert_eq!(wait(&j), Outcome::Done, "the winner's task ran to its end");
    });
}

/// The supervisor times the call out while its worker finishes it: exactly one ends the job.
#[test]
fn a_time_limit_races_the_finish() {
    loom::model(|| {
        let (j, t) = job();
        assert!(j.word.start(t, 1));
        let w = {
            let j = j.clone();
            thread::spawn(move || j.word.finish(t, 0, 1, &|_| &j.group))
        };
        let stopped = j.word.time_out(t, 1, &|_| &j.group);
        let finished = w.join().unwrap();
        assert!(finished != stopped, "exactly one party ends the job");
        assert_eq!(wait(&j), if finished { Outcome::Done } else { Outcome::TimedOut { at: 1 } });
    });
}

/// A job slot, the board over it, and the parent's queueing.
struct Pool1 {
    job: Job,
    ctl: BoardCtl,
    cells: [AtomicU64; 2],
    bits: [AtomicU64; 1],
}

impl Pool1 {
    fn new() -> Arc<Pool1> {
        let job = Job { word: JobWord::new(), group: GroupWord::new(), result: UnsafeCell::new(0) };
        Arc::new(Pool1 {
            job,
            ctl: BoardCtl::new(),
            cells: [AtomicU64::new(0), AtomicU64::new(0)],
            bits: [AtomicU64::new(0)],
        })
    }

    fn board(&self) -> Board<'_> {
        Board::new(&self.ctl, &self.cells, &self.bits)
    }

    /// The parent: offer, queue, announce (as `Pool::queue`).
    fn submit(&self) {
        self.board().offer(0);
        self.job.word.queue(Some(0));
        self.board().publish(0, 0);
    }

    /// A worker's claim of job 0 (as the worker's `claim`).
    fn claim(&self, owner: u32) -> bool {
        match self.job.word.queued() {
            Some(t) if self.job.word.start(t, owner) => {
                self.board().unpend(0);
                true
            }
            _ => false,
        }
    }

    /// A worker's loop until it claimed the task (as `next_task`).
    fn work(&self, owner: u32) {
        let board = self.board();
        loop {
            if board.take().is_some_and(|_| self.claim(owner)) || board.scan(0, |_| self.claim(owner)) {
                return;
            }
            board.idle(Deadline::FOREVER, &|| 1); // not the parent's CPU
        }
    }
}

/// A worker that went idle before the task was announced is woken by the announcement.
#[test]
fn an_idle_worker_is_woken_by_the_announcement() {
    loom::model(|| {
        let p = Pool1::new();
        let w = {
            let p = p.clone();
            thread::spawn(move || p.work(1))
        };
        p.submit();
        w.join().unwrap();
        assert_eq!(p.board().pending(), 0, "the claim cleared the pending bit");
    });
}

/// A worker takes the announcement and dies before claiming; the supervisor wakes the idle
/// ones (as after any death), and one of them finds the task through its pending bit.
#[test]
fn a_lost_announcement_is_found_by_the_pending_bits() {
    loom::model(|| {
        let p = Pool1::new();
        let survivor = {
            let p = p.clone();
            thread::spawn(move || p.work(2))
        };
        p.submit();
        let supervisor = {
            let p = p.clone();
            thread::spawn(move || {
                let doomed = {
                    let p = p.clone();
                    thread::spawn(move || {
                        let _ = p.board().take(); // ... and dies here
                    })
                };
                doomed.join().unwrap();
                p.board().wake_all();
            })
        };
        survivor.join().unwrap();
        supervisor.join().unwrap();
    });
}
