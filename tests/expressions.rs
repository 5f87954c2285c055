//! Generated code for expressions that use one value on both sides of an operation (dfdx
//! refuses one tensor id twice in an op; the compiler rewrites them): they compile, fit,
//! and their gradients reach the guide.

use ravi::prelude::*;

model! {
    /// y ≈ w²: the posterior of w has modes near ±2.
    model Square(y: [N]) {
        w ~ Normal(0.0, 3.0);
        y ~ Normal(w * w, 0.1);
    }
    /// y ≈ ‖a‖²
    model Dot(y: [N]) {
        a ~ Normal(0.0, 1.0) [2];
        y ~ Normal(a @ a, 0.1);
    }
}
guide! {
    guide SquareGuide for Square { w ~ MeanField; }
    guide DotGuide for Dot { a ~ MeanField; }
}

fn opts() -> FitOptions {
    FitOptions {
        steps: 2000,
        progress: false,
        ..FitOptions::default()
    }
}

#[test]
fn a_value_times_itself_has_its_gradient() {
    let data = SquareData {
        y: Array::vector(vec![4.0; 20]),
    };
    let mut g = SquareGuide::new(&Cpu::seeded(2));
    // Start away from w = 0, where the gradient of w² vanishes.
    let id = g.params().ids().next().expect("the location");
    g.params_mut().set(id, &[0.5]);
    ravi::fit(&mut g, &data, &opts()).unwrap();
    let w = Posterior::from_guide(&g, 4000).site("w").unwrap().mean[0];
    assert!((w.abs() - 2.0).abs() < 0.05, "w = {w}");
}

#[test]
fn a_vector_dotted_with_itself_has_its_gradient() {
    let data = DotData {
        y: Array::vector(vec![1.0; 20]),
    };
    let mut g = DotGuide::new(&Cpu::seeded(3));
    let id = g.params().ids().next().expect("the location");
    g.params_mut().set(id, &[0.3, -0.2]);
    ravi::fit(&mut g, &data, &opts()).unwrap();
    let post = Posterior::from_guide(&g, 4000);
    let a = &post.site("a").unwrap().mean;
    let norm2 = a[0] * a[0] + a[1] * a[1];
    assert!((norm2 - 1.0).abs() < 0.05, "‖a‖² = {norm2}");
}
