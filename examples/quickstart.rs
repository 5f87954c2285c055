//! The README's first example, as it stands there: a regression on the bundled diabetes
//! data in its own units, at every default.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```

use ravi::prelude::*;

model! {
    /// Diabetes progression against ten baseline measurements, in their own units.
    model Diabetes(x: [N, 10], y: [N]) {
        w ~ Normal(0.0, 1000.0) [10];      // latent site, shape [10]
        b ~ Normal(0.0, 1000.0);           // scalar latent
        sigma ~ HalfCauchy(100.0);         // the noise sd, on (0, ∞)
        y ~ Normal(x @ w + b, sigma);      // observed: y is an input
    }
}

guide! {
    guide DiabetesGuide for Diabetes { (w, b, sigma) ~ FullRank; }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = ravi::csv::Table::read(concat!(env!("CARGO_MANIFEST_DIR"), "/data/diabetes.csv"))?;
    let x = table.columns_except(&["target"]);
    let y = table.column("target").ok_or("no target column")?;
    let data = DiabetesData {
        x: Array::from_rows_f64(&x)?,
        y: Array::vector(y.iter().map(|&v| v as f32).collect()),
    };
    let mut guide = DiabetesGuide::new(&Cpu::seeded(0));
    let report = ravi::fit(&mut guide, &data, &FitOptions::default())?;
    println!(
        "started at {:?}, converged: {}, {}",
        report.init.method,
        report.converged,
        report
            .diagnostics
            .map_or("no diagnostics".into(), |d| d.to_string())
    );
    let posterior = Posterior::from_guide(&guide, 10_000);
    for site in ["w", "b", "sigma"] {
        let s = posterior.site(site).unwrap(); // mean, sd, q05, q95, draws
        println!("{site}: {:?} ± {:?}", s.mean, s.sd);
    }
    Ok(())
}
