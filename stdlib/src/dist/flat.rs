//! Improper flat priors on ℝ and on (0, ∞).

use dfdx::shapes::Shape;
use ravi_backend::density::ElementDensity;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::Value;
use super::{Distribution, Parametrization};

/// The improper flat prior on ℝ: log density 0 everywhere, no parameters, no moments.
///
/// It is not a distribution (it does not integrate to 1), so a model with it is a density
/// only if its posterior is proper: the likelihood must make it so (it must be integrable
/// in this site over all of ℝ). It is for a latent site only: observing a value under it
/// scores nothing, and it has nothing to draw from.
pub struct Flat;

/// The improper flat prior on (0, ∞) (flat in x, not in log x): log density 0 everywhere,
/// no parameters, no moments.
///
/// As for [`Flat`], the posterior must be proper (the likelihood must make it so, over
/// all of (0, ∞)), and it is for a latent site only.
pub struct FlatPositive;

impl Distribution for Flat {
    const NAME: &'static str = "Flat";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &[],
        host: Some(Density::Elementwise(&Flat)),
        moments: None,
    }];
}

impl Distribution for FlatPositive {
    const NAME: &'static str = "FlatPositive";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &[],
        host: Some(Density::Elementwise(&FlatPositive)),
        moments: None,
    }];
}

/// Zeros of the value's shape on its tape (their gradient is 0).
fn zeros<S: Shape, D: Backend, T: Tape<D>>(x: Value<S, D, T>) -> Value<S, D, T> {
    x * 0.0
}

impl Flat {
    /// 0
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(x: Value<S, D, T>) -> Value<S, D, T> {
        zeros(x)
    }
}

impl FlatPositive {
    /// 0 (the support is the positive reals; the value is not checked)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(x: Value<S, D, T>) -> Value<S, D, T> {
        zeros(x)
    }
}

macro_rules! flat_host {
    ($ty:ident, $name:literal) => {
        impl ElementDensity for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn element(&self, _x: f32, _a: [f32; 3]) -> (f32, [f32; 4]) {
                (0.0, [0.0; 4])
            }

            /// Nothing to add: log p and its partial in the value are 0.
            fn prior_pass(&self, _z: &[f32], _a: [f32; 3], _weight: f32, _g: &mut [f32]) -> f64 {
                0.0
            }
        }
    };
}

flat_host!(Flat, "Flat");
flat_host!(FlatPositive, "FlatPositive");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, u, Reference};
    use dfdx::prelude::*;

    const REAL: Reference = Reference {
        draw: |r| (u(r, -1e3, 1e3), vec![]),
        log_density: |_, _| 0.0,
        grad_x: true,
    };

    const POSITIVE: Reference = Reference {
        draw: |r| (u(r, 1e-6, 1e3), vec![]),
        log_density: |_, _| 0.0,
        grad_x: true,
    };

    #[test]
    fn log_prob_is_zero() {
        check::graph_matches("Flat", &REAL, |x, _| Flat::log_prob(x));
        check::graph_matches("FlatPositive", &POSITIVE, |x, _| FlatPositive::log_prob(x));
    }

    #[test]
    fn host_density_is_zero() {
        check::host_matches("Flat", &REAL, &Flat);
        check::host_matches("FlatPositive", &POSITIVE, &FlatPositive);
    }

    /// Exactly 0, with a gradient of exactly 0, at 1000 points each.
    #[test]
    fn log_prob_and_its_gradient_are_exactly_zero() {
        let dev = Cpu::default();
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.37).collect();
        for positive in [false, true] {
            let xs: Vec<f32> = if positive {
                xs.iter().map(|x| x.abs() + 1e-3).collect()
            } else {
                xs.clone()
            };
            let x = dev.tensor_from_vec(xs.clone(), (xs.len(),));
            let lp = if positive {
                FlatPositive::log_prob(x.retaped::<check::Taped>())
            } else {
                Flat::log_prob(x.retaped::<check::Taped>())
            };
            assert!(lp.as_vec().iter().all(|&v| v == 0.0));
            let g = lp.sum::<(), _>().backward().get(&x).as_vec();
            assert!(g.iter().all(|&v| v == 0.0));
            for &x in &xs {
                assert_eq!(Flat.element(x, [0.0; 3]), (0.0, [0.0; 4]));
                assert_eq!(FlatPositive.element(x, [0.0; 3]), (0.0, [0.0; 4]));
            }
        }
        assert!(Flat::PARAMETRIZATIONS[0].moments.is_none());
        assert!(FlatPositive::PARAMETRIZATIONS[0].moments.is_none());
    }
}
