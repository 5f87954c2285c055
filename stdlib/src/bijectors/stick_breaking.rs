//! Stick breaking: ℝ^(K−1) → the open simplex in ℝ^K.

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;
use ravi_backend::ops::softplus;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Bijector;

/// z_i = σ(x_i − log(K − 1 − i)) is the fraction of the stick left before i that
/// coordinate i takes: y_i = z_i Π_{j<i} (1 − z_j), and y_K = Π_j (1 − z_j). The offsets
/// send x = 0 to the centre of the simplex (as Pyro's and TFP's do).
///
/// log |det| is that of the map to the first K − 1 coordinates (the simplex has K − 1
/// dimensions): Σ_i [log z_i + log(1 − z_i) + log Π_{j<i} (1 − z_j)].
#[derive(Debug, Clone, Copy, Default)]
pub struct StickBreaking;

/// The stick-breaking map of [`StickBreaking`] on `(rows, K − 1)`, with its log |det| per
/// row; generated code maps simplex-valued latents with it.
pub fn stick_breaking<D: Backend, T: Tape<D>>(
    dev: &D,
    x: Particles<D, T>,
) -> (Particles<D, T>, PerParticle<D, T>) {
    let (s, k1) = *x.shape();
    let offsets: Vec<f32> = (0..k1).map(|i| ((k1 - i) as f32).ln()).collect();
    let offsets = dev
        .tensor_from_vec(offsets, (k1,))
        .broadcast_like::<_, Axis<0>>(&(s, k1));
    let shifted = x - offsets;
    // log z = −softplus(−u), log(1 − z) = −softplus(u)
    let log_z = softplus(shifted.retaped::<T>().negate()).negate();
    let log_rest = softplus(shifted).negate();
    // acc = log of the stick left before coordinate i (an exclusive cumulative sum of
    // log(1 − z)); each acc's own tape passes to the next, the last one's into y_K.
    let mut acc = log_rest.retaped::<T>().sum::<(usize,), Axis<1>>() * 0.0;
    let mut log_det = acc.retaped::<T>();
    let mut columns = Vec::with_capacity(k1 + 1);
    for i in 0..k1 {
        let lz = log_z
            .retaped::<T>()
            .slice((.., i..i + 1))
            .reshape_like(&(s,));
        let lr = log_rest
            .retaped::<T>()
            .slice((.., i..i + 1))
            .reshape_like(&(s,));
        columns.push((lz.retaped::<T>() + acc.retaped::<T>()).exp());
        log_det = log_det + lz + lr.retaped::<T>() + acc.retaped::<T>();
        acc = acc + lr;
    }
    columns.push(acc.exp());
    // log z and log(1 − z) were only read through re-taped slices: their own tapes
    // (the softplus ops) join here.
    let log_det =
        log_det + (log_z.sum::<(usize,), Axis<1>>() + log_rest.sum::<(usize,), Axis<1>>()) * 0.0;
    let y = columns
        .into_iter()
        .map(|c| c.broadcast_like::<_, Axis<1>>(&(s, 1usize)))
        .reduce(|a, b| (a, b).concat_along(Axis::<1>))
        .expect("at least one coordinate");
    (y, log_det)
}

impl<D: Backend> Bijector<D> for StickBreaking {
    fn forward<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        stick_breaking(params.device(), x)
    }

    /// z_i = y_i / (1 − Σ_{j<i} y_j), x_i = logit(z_i) + log(K − 1 − i).
    fn inverse(&self, params: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        let (s, k) = *y.shape();
        let values = y.as_vec();
        let mut out = Vec::with_capacity(s * (k - 1));
        for row in values.chunks(k) {
            let mut used = 0.0f64;
            for (i, &v) in row[..k - 1].iter().enumerate() {
                let z = f64::from(v) / (1.0 - used);
                used += f64::from(v);
                out.push(((z / (1.0 - z)).ln() + ((k - 1 - i) as f64).ln()) as f32);
            }
        }
        params.device().tensor_from_vec(out, (s, k - 1))
    }
}
