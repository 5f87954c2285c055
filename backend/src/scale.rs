//! How a Gaussian family holds a scale, stated once for both paths: σ = softplus(ρ) +
//! [`SCALE_FLOOR`] for an unconstrained parameter ρ (a full-rank diagonal also capped at
//! [`SCALE_CEILING`]). The stdlib's families build their dfdx graphs from [`scale_of`] and
//! [`capped_scale_of`]; the host engine computes the same numbers with
//! [`capped_scale_and_slope`] and [`softplus_and_slope`].

use dfdx::prelude::*;

use crate::device::{Backend, Tape};
use crate::math;

/// Scales never fall below this, so log q stays finite.
pub const SCALE_FLOOR: f32 = 1e-5;

/// The ceiling of a full-rank scale's diagonal (see [`capped_scale_of`]).
pub const SCALE_CEILING: f32 = 1e6;

/// ρ with softplus(ρ) + floor = `scale`.
pub fn rho_for(scale: f32) -> f32 {
    let s = scale - SCALE_FLOOR;
    s + (-(-s).exp_m1()).ln() // softplus⁻¹(s) = s + log(1 − e^{−s})
}

/// σ = softplus(ρ) + floor, on the graph.
pub fn scale_of<D: Backend, T: Tape<D>>(
    rho: Tensor<(usize,), f32, D, T>,
) -> Tensor<(usize,), f32, D, T> {
    crate::ops::softplus(rho) + SCALE_FLOOR
}

/// A full-rank scale's diagonal floor + c·softplus(ρ)/(c + softplus(ρ)), c =
/// [`SCALE_CEILING`], on the graph: softplus(ρ) + floor wherever it matters, but bounded, so
/// that no step can make L's diagonal, log det L or the draws overflow.
pub fn capped_scale_of<D: Backend, T: Tape<D>>(
    rho: Tensor<(usize,), f32, D, T>,
) -> Tensor<(usize,), f32, D, T> {
    let sp = crate::ops::softplus(rho);
    let shrink = (sp.retaped::<T>() + SCALE_CEILING).recip() * SCALE_CEILING;
    sp * shrink + SCALE_FLOOR
}

/// softplus(ρ) and its derivative sigmoid(ρ) from one exponential, softplus as the graph
/// computes it (max(ρ, 0) + log(1 + e^{−|ρ|})).
#[inline(always)]
pub fn softplus_and_slope(r: f32) -> (f32, f32) {
    let e = math::exp(-r.abs());
    let sp = r.max(0.0) + math::ln(e + 1.0);
    let slope = if r >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (sp, slope)
}

/// [`capped_scale_of`] on the host, with dσ/dρ (`floor` the family's).
#[inline(always)]
pub fn capped_scale_and_slope(r: f32, floor: f32) -> (f32, f32) {
    let (sp, slope) = softplus_and_slope(r);
    let shrink = (sp + SCALE_CEILING).recip() * SCALE_CEILING;
    (sp * shrink + floor, slope * shrink * shrink)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host values and slopes against the graph's, and ρ for a scale inverts both. (Not
    /// at ρ = 0 exactly, where dfdx takes the derivative of |ρ| and of max(ρ, 0) as 0.)
    #[test]
    fn host_and_graph_scales_agree() {
        let dev = Cpu::default();
        let rho: Vec<f32> = (-40..40).map(|i| i as f32 * 0.5 + 0.25).collect();
        let t = dev.tensor_from_vec(rho.clone(), (rho.len(),));
        let plain = scale_of(t.retaped::<dfdx::tensor::OwnedTape<f32, Cpu>>());
        let plain_grad = plain.retaped::<dfdx::tensor::NoneTape>().as_vec();
        let g = plain.sum::<(), _>().backward().get(&t).as_vec();
        let capped = capped_scale_of(t.retaped::<dfdx::tensor::OwnedTape<f32, Cpu>>());
        let capped_values = capped.retaped::<dfdx::tensor::NoneTape>().as_vec();
        let cg = capped.sum::<(), _>().backward().get(&t).as_vec();
        for (i, &r) in rho.iter().enumerate() {
            let (sp, slope) = softplus_and_slope(r);
            assert!((sp + SCALE_FLOOR - plain_grad[i]).abs() <= 1e-6 * (1.0 + sp));
            assert!((slope - g[i]).abs() <= 1e-6, "ρ = {r}: {slope} vs {}", g[i]);
            let (c, cs) = capped_scale_and_slope(r, SCALE_FLOOR);
            assert!((c - capped_values[i]).abs() <= 1e-6 * (1.0 + c));
            assert!((cs - cg[i]).abs() <= 1e-6);
        }
        for s in [1e-3f32, 0.1, 1.0, 30.0] {
            let back = softplus_and_slope(rho_for(s)).0 + SCALE_FLOOR;
            assert!((back - s).abs() <= 1e-4 * s, "{s}: {back}");
        }
    }
}
