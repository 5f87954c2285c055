//! ℝ^K → increasing vectors in ℝ^K: x₀ = u₀, x_k = x_{k−1} + e^{u_k}, so the gaps are
//! positive. Its log |det ∂x/∂u| is Σ_{k≥1} u_k. What an `ordered` latent site (mixture
//! component locations, cut points) is drawn through.

use dfdx::prelude::*;
use ravi_backend::{Backend, Particles, PerParticle, Tape};

/// `(rows, K)` unconstrained values to `(rows, K)` increasing ones, and each row's
/// log-determinant `(rows,)`. The cumulative sum is a product with the K × K matrix of ones
/// on and above the diagonal (dfdx has no cumsum); the first value's exponential is never
/// formed (e^{0} × 0), so a large u₀ cannot overflow.
pub fn ordered<D: Backend, T: Tape<D>>(u: Particles<D, T>) -> (Particles<D, T>, PerParticle<D, T>) {
    let (rows, k) = *u.shape();
    let dev = u.device().clone();
    let gaps: Vec<f32> = (0..k).map(|j| f32::from(j > 0)).collect();
    let first: Vec<f32> = (0..k).map(|j| f32::from(j == 0)).collect();
    let gaps = dev
        .tensor_from_vec(gaps, (k,))
        .broadcast_like::<(usize, usize), Axis<0>>(&(rows, k));
    let first = dev
        .tensor_from_vec(first, (k,))
        .broadcast_like::<(usize, usize), Axis<0>>(&(rows, k));
    let upper: Vec<f32> = (0..k * k).map(|i| f32::from(i / k <= i % k)).collect();
    let upper = dev.tensor_from_vec(upper, (k, k));
    let log_det = (u.retaped::<T>() * gaps.clone()).sum::<(usize,), Axis<1>>();
    let steps = (u.retaped::<T>() * gaps.clone()).exp() * gaps + u * first;
    (steps.matmul(upper), log_det)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravi_backend::Cpu;

    /// Increasing values, their inverse, and the log-determinant against the Jacobian's
    /// determinant computed by finite differences.
    #[test]
    fn ordered_is_increasing_with_its_log_det() {
        let dev = Cpu::default();
        let u = vec![0.3f32, -1.0, 0.5, -2.0, 1.2, 0.0];
        let (x, ld) =
            ordered::<Cpu, dfdx::tensor::NoneTape>(dev.tensor_from_vec(u.clone(), (2, 3)));
        let (x, ld) = (x.as_vec(), ld.as_vec());
        for row in 0..2 {
            let (u, x) = (&u[row * 3..row * 3 + 3], &x[row * 3..row * 3 + 3]);
            assert!((x[0] - u[0]).abs() < 1e-6);
            for j in 1..3 {
                assert!((x[j] - x[j - 1] - u[j].exp()).abs() < 1e-5);
            }
            // the Jacobian is lower triangular with diagonal (1, e^{u1}, e^{u2})
            let want = u[1] + u[2];
            assert!((ld[row] - want).abs() < 1e-6, "{} vs {want}", ld[row]);
        }
    }
}
