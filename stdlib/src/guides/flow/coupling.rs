//! RealNVP affine coupling (Dinh, Sohl-Dickstein & Bengio 2017).

use dfdx::prelude::*;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Dense;

/// y = x ⊙ exp(s(x_a)) + t(x_a) on the coordinates outside the mask, x_a = x ⊙ mask kept;
/// log |det| = Σ s. s and t share one tanh hidden layer; s is bounded by a tanh so one layer
/// scales by at most e. The mask alternates between even and odd coordinates from layer to
/// layer. The output layers start at zero: the layer starts as the identity.
///
/// On a one-dimensional z the even mask keeps everything and the odd one nothing, so the
/// stack is a learned affine map there.
#[derive(Debug, Clone)]
pub struct AffineCoupling {
    dim: usize,
    /// 1 on the coordinates that condition, 0 on those transformed.
    mask: Vec<f32>,
    hidden: Dense,
    shift: Dense,
    log_scale: Dense,
}

impl AffineCoupling {
    /// Registers the layer's nets under `{name}.hidden`, `.shift` and `.log_scale`; `odd`
    ///  chooses which half of the coordinates conditions.
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        dim: usize,
        hidden: usize,
        odd: bool,
    ) -> Self {
        let mask = (0..dim)
            .map(|j| if (j % 2 == 1) == odd { 1.0 } else { 0.0 })
            .collect();
        let scale = 1.0 / (dim as f32).sqrt();
        AffineCoupling {
            dim,
            mask,
            hidden: Dense::build(params, &format!("{name}.hidden"), dim, hidden, scale, 0.0),
            shift: Dense::build(params, &format!("{name}.shift"), hidden, dim, 0.0, 0.0),
            log_scale: Dense::build(params, &format!("{name}.log_scale"), hidden, dim, 0.0, 0.0),
        }
    }

    fn masks<D: Backend>(
        &self,
        dev: &D,
        particles: usize,
    ) -> (Particles<D, NoneTape>, Particles<D, NoneTape>) {
        let keep = dev.tensor_from_vec(self.mask.clone(), (self.dim,));
        let free = dev.tensor_from_vec(self.mask.iter().map(|m| 1.0 - m).collect(), (self.dim,));
        let shape = (particles, self.dim);
        (
            keep.broadcast_like::<_, Axis<0>>(&shape),
            free.broadcast_like::<_, Axis<0>>(&shape),
        )
    }

    /// s and t (zero on the kept coordinates) from the kept part of x.
    fn shift_and_log_scale<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        kept: Particles<D, T>,
        free: &Particles<D, NoneTape>,
    ) -> (Particles<D, T>, Particles<D, T>) {
        let h = self.hidden.apply(params, kept, None).tanh();
        let t = self.shift.apply(params, h.retaped::<T>(), None) * free.clone();
        let s = self.log_scale.apply(params, h, None).tanh() * free.clone();
        (t, s)
    }

    /// y and log |det ∂y/∂x| per particle.
    pub fn forward<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let (keep, free) = self.masks(params.device(), x.shape().0);
        let (t, s) = self.shift_and_log_scale(params, x.retaped::<T>() * keep, &free);
        let log_det = s.retaped::<T>().sum::<(usize,), Axis<1>>();
        (x * s.exp() + t, log_det)
    }

    /// x from y, exactly (one pass).
    pub fn inverse<D: Backend>(
        &self,
        params: &ParamStore<D>,
        y: Particles<D, NoneTape>,
    ) -> Particles<D, NoneTape> {
        let (keep, free) = self.masks(params.device(), y.shape().0);
        // The kept coordinates pass through unchanged, so s and t are those of the forward pass.
        let (t, s) = self.shift_and_log_scale(params, y.clone() * keep, &free);
        (y - t) * s.negate().exp()
    }
}
