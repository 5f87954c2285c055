//! Elementwise bijectors: y_i = f(x_i), log |det| = Σ_i log |f'(x_i)|.

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;
use ravi_backend::ops::softplus;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Bijector;

/// y = x
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;
/// y = eˣ: ℝ → (0, ∞); log |det| = Σ x.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exp;
/// y = log(1 + eˣ): ℝ → (0, ∞); log |det| = Σ log σ(x) = −Σ softplus(−x).
#[derive(Debug, Clone, Copy, Default)]
pub struct Softplus;
/// y = σ(x): ℝ → (0, 1); log |det| = −Σ [softplus(−x) + softplus(x)].
#[derive(Debug, Clone, Copy, Default)]
pub struct Sigmoid;
/// y = tanh x: ℝ → (−1, 1); log |det| = Σ 2 (log 2 − x − softplus(−2x)).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tanh;

fn per_particle<D: Backend, T: Tape<D>>(x: Particles<D, T>) -> PerParticle<D, T> {
    x.sum::<(usize,), Axis<1>>()
}

impl<D: Backend> Bijector<D> for Identity {
    fn forward<T: Tape<D>>(
        &self,
        _: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let zero = per_particle(x.retaped::<T>() * 0.0);
        (x, zero)
    }
    fn inverse(&self, _: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        y
    }
}

impl<D: Backend> Bijector<D> for Exp {
    fn forward<T: Tape<D>>(
        &self,
        _: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let ld = per_particle(x.retaped::<T>());
        (x.exp(), ld)
    }
    fn inverse(&self, _: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        y.ln()
    }
}

impl<D: Backend> Bijector<D> for Softplus {
    fn forward<T: Tape<D>>(
        &self,
        _: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let ld = per_particle(softplus(x.retaped::<T>().negate())).negate();
        (softplus(x), ld)
    }
    /// softplus⁻¹(y) = y + log(1 − e^−y)
    fn inverse(&self, _: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        y.clone() + (y.negate().exp().negate() + 1.0).ln()
    }
}

impl<D: Backend> Bijector<D> for Sigmoid {
    fn forward<T: Tape<D>>(
        &self,
        _: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let ld =
            per_particle(softplus(x.retaped::<T>().negate()) + softplus(x.retaped::<T>())).negate();
        (x.sigmoid(), ld)
    }
    /// logit(y) = log y − log(1 − y)
    fn inverse(&self, _: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        y.clone().ln() - (y.negate() + 1.0).ln()
    }
}

impl<D: Backend> Bijector<D> for Tanh {
    fn forward<T: Tape<D>>(
        &self,
        _: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        // log(1 − tanh² x) = 2 (log 2 − x − softplus(−2x)), stable for large |x|.
        let inner = (x.retaped::<T>() + softplus(x.retaped::<T>() * -2.0)).negate()
            + std::f32::consts::LN_2;
        let ld = per_particle(inner) * 2.0;
        (x.tanh(), ld)
    }
    /// atanh(y) = ½ log((1 + y)/(1 − y))
    fn inverse(&self, _: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        ((y.clone() + 1.0).ln() - (y.negate() + 1.0).ln()) * 0.5
    }
}
