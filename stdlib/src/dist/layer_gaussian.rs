//! A prior for the weights of a network layer: the density of the whole site at once.
//! Generated code calls `log_prob_joint(x, params...)` with `x` of shape `(particles, n)` (the
//! site flattened) and numeric parameters; it returns one log density per particle.

use dfdx::prelude::*;
use ravi_backend::{Backend, Particles, PerParticle, Tape};

use super::consts::HALF_LN_2PI;
use super::{Distribution, Parametrization};

/// N(0, 1/n) on each of the site's n weights: the variance that keeps a layer's outputs at
/// the scale of its inputs.
pub struct LayerGaussian;

impl Distribution for LayerGaussian {
    const NAME: &'static str = "LayerGaussian";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization::graph_only("", &[])];
}

impl LayerGaussian {
    /// Σᵢ log N(xᵢ; 0, 1/n) = −n/2 Σ xᵢ² + n/2 log n − n/2 log 2π
    pub fn log_prob_joint<D: Backend, T: Tape<D>>(x: Particles<D, T>) -> PerParticle<D, T> {
        let n = x.shape().1 as f32;
        x.square().sum::<(usize,), Axis<1>>() * (-0.5 * n) + n * (0.5 * n.ln() - HALF_LN_2PI)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{joint_at, JOINT_POINT};
    use statrs::distribution::{Continuous, Normal};

    #[test]
    fn layer_gaussian_is_the_product_of_normals_with_variance_one_over_n() {
        let got = joint_at(LayerGaussian::log_prob_joint);
        let sd = (1.0f64 / 3.0).sqrt();
        let want: f64 = JOINT_POINT
            .iter()
            .map(|&x| Normal::new(0.0, sd).unwrap().ln_pdf(f64::from(x)))
            .sum();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }
}
