use ravi::prelude::*;

model! {
    /// Bayesian linear regression with known noise.
    model LinReg(x: [N, 2], y: [N]) {
        w ~ Normal(0.0, 1.0) [2];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
}
guide! { guide MeanFieldLinReg for LinReg { w ~ MeanField; b ~ MeanField; } }

#[test]
fn smoke() {
    let data = LinRegData {
        x: Array::from_rows(&[[0.0f32, 1.0], [1.0, 0.5], [2.0, -1.0]]).unwrap(),
        y: Array::vector(vec![0.9, 1.6, 1.1]),
    };
    let mut guide = MeanFieldLinReg::new(&Cpu::seeded(0));
    let opts = FitOptions { steps: 200, progress: false, ..FitOptions::default() };
    let report = ravi::fit(&mut guide, &data, &opts).unwrap();
    println!("{:?}", &report.elbo[190..]);
}
