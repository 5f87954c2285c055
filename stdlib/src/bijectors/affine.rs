//! Affine bijectors with fixed parameters.

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;
use ravi_backend::linalg::Matrix;
use ravi_backend::{Backend, ParamStore, Particles, PerParticle, Tape};

use super::Bijector;

/// y = loc + scale ⊙ x (every scale non-zero); log |det| = Σ log |scale|.
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    /// The shift, one value per coordinate.
    pub loc: Vec<f32>,
    /// The scale, one non-zero value per coordinate.
    pub scale: Vec<f32>,
}

/// y = loc + L x with L lower triangular (non-zero diagonal); log |det| = Σ log |L_ii|.
#[derive(Debug, Clone, PartialEq)]
pub struct LowerCholeskyAffine {
    /// The shift, one value per coordinate.
    pub loc: Vec<f32>,
    /// d×d, row-major; entries above the diagonal are ignored.
    pub scale_tril: Vec<f32>,
}

fn row<D: Backend>(dev: &D, v: &[f32], s: usize) -> Particles<D, NoneTape> {
    dev.tensor_from_vec(v.to_vec(), (v.len(),))
        .broadcast_like::<_, Axis<0>>(&(s, v.len()))
}

impl<D: Backend> Bijector<D> for Affine {
    fn forward<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let s = x.shape().0;
        let dev = params.device();
        let ld: f32 = self.scale.iter().map(|v| v.abs().ln()).sum();
        let zero = x.retaped::<T>().sum::<(usize,), Axis<1>>() * 0.0;
        (
            x * row(dev, &self.scale, s) + row(dev, &self.loc, s),
            zero + ld,
        )
    }
    fn inverse(&self, params: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        let s = y.shape().0;
        let inv: Vec<f32> = self.scale.iter().map(|v| 1.0 / v).collect();
        (y - row(params.device(), &self.loc, s)) * row(params.device(), &inv, s)
    }
}

impl LowerCholeskyAffine {
    fn lower(&self) -> Matrix {
        let d = self.loc.len();
        let mut l = Matrix::from_f32(d, &self.scale_tril);
        for i in 0..d {
            for j in i + 1..d {
                l.set(i, j, 0.0);
            }
        }
        l
    }
}

impl<D: Backend> Bijector<D> for LowerCholeskyAffine {
    fn forward<T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        x: Particles<D, T>,
    ) -> (Particles<D, T>, PerParticle<D, T>) {
        let (s, d) = *x.shape();
        let l = self.lower();
        let ld: f64 = (0..d).map(|i| l.get(i, i).abs().ln()).sum();
        let dev = params.device();
        // rows: y = x Lᵀ + loc
        let lt = dev.tensor_from_vec(l.transpose().to_f32(), (d, d));
        let zero = x.retaped::<T>().sum::<(usize,), Axis<1>>() * 0.0;
        (x.matmul(lt) + row(dev, &self.loc, s), zero + ld as f32)
    }
    fn inverse(&self, params: &ParamStore<D>, y: Particles<D, NoneTape>) -> Particles<D, NoneTape> {
        let (s, d) = *y.shape();
        let inv_t = params
            .device()
            .tensor_from_vec(self.lower().lower_inverse().transpose().to_f32(), (d, d));
        (y - row(params.device(), &self.loc, s)).matmul(inv_t)
    }
}
