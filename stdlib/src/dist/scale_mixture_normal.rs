//! The scale-mixture prior of Blundell et al. (2015): a mixture of two centred normals.

use dfdx::shapes::Shape;
use ravi_backend::density::{ElementDensity, Moments};
use ravi_backend::math::{exp, ln};
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};

use super::arg::{add, Arg, Value};
use super::consts::HALF_LN_2PI;
use super::{draw, Distribution, Normal, Parametrization};

/// π N(0, σ₁²) + (1 − π) N(0, σ₂²), the scale-mixture prior of Blundell et al. (2015);
/// support ℝ.
pub struct ScaleMixtureNormal;

impl Distribution for ScaleMixtureNormal {
    const NAME: &'static str = "ScaleMixtureNormal";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["mix", "scale1", "scale2"],
        host: Some(Density::Elementwise(&ScaleMixtureNormal)),
        moments: Some(&ScaleMixtureNormal),
    }];
}

impl ScaleMixtureNormal {
    /// log(π N(x; 0, σ₁²) + (1 − π) N(x; 0, σ₂²)), as logaddexp of the two terms.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        mix: Arg<S, D, T>,
        scale1: Arg<S, D, T>,
        scale2: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let one = add(
            Normal::log_prob(x.retaped::<T>(), Arg::Scalar(0.0), scale1),
            mix.again().ln(),
        );
        let other = add(
            Normal::log_prob(x, Arg::Scalar(0.0), scale2),
            mix.negated().add_scalar(1.0).ln(),
        );
        log_add_exp(one, other)
    }
}

/// log(eᵃ + eᵇ) = max(a, b) + log(1 + e^−|a − b|).
fn log_add_exp<S: Shape, D: Backend, T: Tape<D>>(
    a: Value<S, D, T>,
    b: Value<S, D, T>,
) -> Value<S, D, T> {
    let gap = (a.retaped::<T>() - b.retaped::<T>()).abs();
    a.maximum(b) + (gap.negate().exp() + 1.0).ln()
}

impl ElementDensity for ScaleMixtureNormal {
    fn name(&self) -> &'static str {
        "ScaleMixtureNormal"
    }

    /// With rₖ the log of each weighted component and wₖ its responsibility
    /// e^(rₖ − log p): ∂x = −Σ wₖ x/σₖ², ∂π = w₁/π − w₂/(1 − π), ∂σₖ = wₖ (x²/σₖ³ − 1/σₖ).
    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        let (pi, s1, s2) = (a[0], a[1], a[2]);
        let (z1, z2) = (x / s1, x / s2);
        let r1 = ln(pi) - 0.5 * z1 * z1 - ln(s1) - HALF_LN_2PI;
        let r2 = ln(1.0 - pi) - 0.5 * z2 * z2 - ln(s2) - HALF_LN_2PI;
        let top = r1.max(r2);
        let (e1, e2) = (exp(r1 - top), exp(r2 - top));
        let total = e1 + e2;
        let (w1, w2) = (e1 / total, e2 / total);
        let lp = top + ln(total);
        (
            lp,
            [
                -(w1 * z1 / s1 + w2 * z2 / s2),
                w1 / pi - w2 / (1.0 - pi),
                w1 * (z1 * z1 - 1.0) / s1,
                w2 * (z2 * z2 - 1.0) / s2,
            ],
        )
    }
}

impl Moments for ScaleMixtureNormal {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (pi, s1, s2) = (a[0], a[1], a[2]);
        (0.0, pi * s1 * s1 + (1.0 - pi) * s2 * s2)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        let scale = if draw::uniform(rng) < a[0] {
            a[1]
        } else {
            a[2]
        };
        scale * draw::standard_normal(rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};

    const REFERENCE: Reference = Reference {
        draw: |r| {
            (
                u(r, -4.0, 4.0),
                vec![u(r, 0.05, 0.95), u(r, 0.5, 3.0), u(r, 0.01, 0.3)],
            )
        },
        log_density: |x, p| {
            let a = sd::Normal::new(0.0, p[1]).unwrap().pdf(x);
            let b = sd::Normal::new(0.0, p[2]).unwrap().pdf(x);
            (p[0] * a + (1.0 - p[0]) * b).ln()
        },
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_the_mixture_of_statrs_normals() {
        check::graph_matches("ScaleMixtureNormal", &REFERENCE, |x, a| {
            let (m, s1, s2, _) = take(a);
            ScaleMixtureNormal::log_prob(x, m, s1, s2)
        });
    }

    #[test]
    fn host_density_matches_the_mixture() {
        check::host_matches("ScaleMixtureNormal", &REFERENCE, &ScaleMixtureNormal);
    }

    /// The moments of a mixture from its components' (statrs): Σ πₖ μₖ and Σ πₖ (σₖ² + μₖ²)
    /// less the mean squared.
    #[test]
    fn moments_match_the_components() {
        use statrs::statistics::Distribution as _;
        check::moments_match("ScaleMixtureNormal", &REFERENCE, &ScaleMixtureNormal, |p| {
            let (a, b) = (
                sd::Normal::new(0.0, p[1]).unwrap(),
                sd::Normal::new(0.0, p[2]).unwrap(),
            );
            let (ma, mb) = (a.mean().unwrap(), b.mean().unwrap());
            let mean = p[0] * ma + (1.0 - p[0]) * mb;
            let second = p[0] * (a.variance().unwrap() + ma * ma)
                + (1.0 - p[0]) * (b.variance().unwrap() + mb * mb);
            (mean, second - mean * mean)
        });
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments(
            "ScaleMixtureNormal",
            &ScaleMixtureNormal,
            &[[0.3, 1.0, 0.01]],
        );
    }
}
