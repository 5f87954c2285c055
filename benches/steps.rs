//! One full fit step (ELBO forward, backward, Adam) of each problem, on the CPU.
//! `cargo bench --bench steps` (add `-- NAME` to run one). Peak memory: the `bench_step`
//! example, one process per problem.

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "problems.rs"]
mod problems;

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("step");
    for &name in problems::PROBLEMS {
        // The large nets take long per step: fewer samples keep the run short.
        if name.contains("784") || name.starts_with("mnist") {
            group.sample_size(10);
        } else {
            group.sample_size(50);
        }
        problems::with_problem(name, &mut |step| {
            group.bench_function(name, |b| b.iter(&mut *step));
        });
    }
    group.finish();
}

criterion_group!(benches, steps);
criterion_main!(benches);
