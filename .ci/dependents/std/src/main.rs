//! The README's Rust example: a child process sends through a queue, the parent receives.

fn main() -> Result<(), mpkit::Error> {
    let q = mpkit::Queue::<u64>::new(16)?;
    // SAFETY: single-threaded when it forks; the child only uses the queue.
    let child = unsafe { mpkit::Process::spawn(|| i32::from(q.put(42).is_err())) }?;
    println!("got {}", q.get()?);
    assert_eq!(child.join(), Ok(0));
    Ok(())
}
