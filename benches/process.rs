//! Criterion: start a process and join it.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mpkit::Process;

fn start_join(c: &mut Criterion) {
    c.bench_function("process/start_join", |b| {
        b.iter(|| {
            // SAFETY: the child only returns; criterion's harness threads are idle meanwhile.
            let p = unsafe { Process::spawn(|| 0) }.unwrap();
            assert_eq!(p.join(), Ok(0));
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3));
    targets = start_join
}
criterion_main!(benches);
