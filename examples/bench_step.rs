//! Time per fit step and peak resident memory of a problem of `benches/steps.rs`:
//! `cargo run --release --example bench_step -- NAME [STEPS]` runs STEPS/10 warm-up steps,
//! then STEPS timed ones, and prints `NAME us_per_step=T peak_rss_mib=M`. One process per
//! problem, so each peak is its own (`bench/compare/run.sh` uses it beside NumPyro).

#[path = "../benches/problems.rs"]
mod problems;

/// Times fit steps of one problem of `benches/steps.rs` in its own process.
#[derive(clap::Parser, Debug)]
#[command(name = "bench_step")]
struct Args {
    /// The problem (one of `benches/problems.rs`'s `PROBLEMS`).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(problems::PROBLEMS))]
    name: String,
    /// Timed steps, after STEPS/10 warm-up steps (at least 1).
    #[arg(default_value_t = 200)]
    steps: usize,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let name = args.name;
    let steps = args.steps.max(1);
    let mut per_step = f64::NAN;
    problems::with_problem(&name, &mut |step| {
        for _ in 0..steps / 10 {
            step();
        }
        let started = std::time::Instant::now();
        for _ in 0..steps {
            step();
        }
        per_step = started.elapsed().as_secs_f64() / steps as f64 * 1e6;
    });
    println!(
        "{name} us_per_step={per_step:.1} peak_rss_mib={:.1}",
        ravi::memory::peak_resident_mib()
    );
}
