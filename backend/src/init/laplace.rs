//! The posterior's mode in the guide's unconstrained coordinates and the Laplace
//! approximation there: N(mode, H⁻¹) with H the Hessian of −log p(x, z) at the mode.
//!
//! The mode: L-BFGS in f64 (`lbfgs`) from the prior's median, then Newton steps with the
//! Hessian, which need gradients only and so reach the mode to the precision of f32
//! gradients where the L-BFGS line search stalls on the noise of f32 values. The Hessian:
//! central differences of the gradient, one coordinate at a time, all of them in batched
//! passes; each step is half the coordinate's conditional posterior sd, found from a first
//! pass, so that it stays above the gradient's rounding and below the scale on which the
//! curvature changes (central differences are exact for a quadratic).

use super::lbfgs::{self, Status};
use super::log_joint::{evaluate, Layout};
use super::InitError;
use crate::data::Batch;
use crate::device::Backend;
use crate::linalg::Matrix;
use crate::model::{LatentSpec, Model, Support};

/// The most coordinates the Laplace approximation covers (its Hessian is dense).
pub const MAX_LAPLACE_DIM: usize = 1024;

/// A problem: the model on all its data, which coordinates the search moves, which the
/// approximation covers.
pub(crate) struct Problem<'a, D: Backend> {
    pub dev: &'a D,
    pub batch: &'a Batch<D>,
    pub layout: &'a Layout,
    pub latents: &'static [LatentSpec],
    /// Per coordinate: moved by the mode search.
    pub free: &'a [bool],
    /// The coordinates the approximation covers, in order (a subset of the free ones).
    pub covered: &'a [usize],
}

/// The mode and the approximation.
pub(crate) struct Laplace {
    pub point: Vec<f64>,
    /// H⁻¹ over the covered coordinates.
    pub cov: Matrix,
    pub precision_diag: Vec<f64>,
    /// The log joint at the mode.
    pub log_joint: f64,
}

impl<D: Backend> Problem<'_, D> {
    fn site(&self, k: usize) -> &'static LatentSpec {
        &self.latents[self.layout.site_of(k)]
    }

    /// −log p and its gradient at a full point.
    fn negative_log_joint<M: Model>(&self, point: &[f64]) -> (f64, Vec<f64>) {
        let e = evaluate::<M, D>(self.dev, self.batch, self.layout, &[point.to_vec()]);
        let e = &e[0];
        (-e.value, e.gradient.iter().map(|g| -g).collect())
    }

    /// The mode, from `start`: the free coordinates by L-BFGS (and Newton steps on the
    /// covered ones when there are not too many).
    pub fn mode<M: Model>(&self, start: Vec<f64>) -> Result<(Vec<f64>, f64), InitError> {
        let first = &evaluate::<M, D>(
            self.dev,
            self.batch,
            self.layout,
            std::slice::from_ref(&start),
        )[0];
        if !first.value.is_finite() {
            return Err(InitError::NonFiniteStart {
                site: first.culprit.unwrap_or("?").to_string(),
            });
        }
        let free: Vec<usize> = (0..start.len()).filter(|&k| self.free[k]).collect();
        let full = |x: &[f64]| {
            let mut p = start.clone();
            for (&k, &v) in free.iter().zip(x) {
                p[k] = v;
            }
            p
        };
        let mut objective = |x: &[f64]| {
            let (v, g) = self.negative_log_joint::<M>(&full(x));
            (v, free.iter().map(|&k| g[k]).collect())
        };
        let x0: Vec<f64> = free.iter().map(|&k| start[k]).collect();
        let out = lbfgs::minimize(&mut objective, x0.clone(), 2000);
        if out.status == Status::NonFinite {
            return Err(InitError::NonFiniteStart {
                site: first.culprit.unwrap_or("?").to_string(),
            });
        }
        let point = full(&out.x);
        self.check_bounded(&point, &start, out.status)?;
        Ok((point, -out.f))
    }

    /// A mode that ran off towards a boundary of a constrained site (log σ → −∞, say) is
    /// no mode: the log joint grows without bound there.
    fn check_bounded(&self, point: &[f64], start: &[f64], status: Status) -> Result<(), InitError> {
        let mut worst: Option<(usize, f64)> = None;
        for (k, (&u, &u0)) in point.iter().zip(start).enumerate() {
            if !self.free[k] {
                continue;
            }
            let far = match self.site(k).support {
                Support::Real => (u - u0).abs() > 1e12 * (1.0 + u0.abs()),
                _ => u.abs() > 25.0,
            };
            if far && worst.is_none_or(|(_, w)| u.abs() > w) {
                worst = Some((k, u.abs()));
            }
        }
        match worst {
            Some((k, _)) => {
                let site = self.site(k);
                let u = point[k];
                let towards = match (site.support, u < 0.0) {
                    (Support::Positive, true) => "0".to_string(),
                    (Support::Positive, false) | (Support::Real, false) => "+∞".to_string(),
                    (Support::Real, true) => "−∞".to_string(),
                    (Support::Interval { low, .. }, true) => format!("its lower bound {low}"),
                    (Support::Interval { high, .. }, false) => format!("its upper bound {high}"),
                    (Support::UnitInterval, true) => "0".to_string(),
                    (Support::UnitInterval, false) => "1".to_string(),
                    (Support::Simplex, _) => "a vertex of the simplex".to_string(),
                };
                Err(InitError::NoMode {
                    site: site.name.to_string(),
                    towards,
                    still_climbing: status == Status::MaxIterations,
                })
            }
            None => Ok(()),
        }
    }

    /// H over the covered coordinates at `point`, by central differences of the gradient
    /// with steps `h` (one per covered coordinate), symmetrized.
    fn hessian_with_steps<M: Model>(&self, point: &[f64], h: &[f64]) -> Matrix {
        let n = self.covered.len();
        let mut points = Vec::with_capacity(2 * n);
        for (&k, &step) in self.covered.iter().zip(h) {
            let mut up = point.to_vec();
            up[k] += step;
            let mut down = point.to_vec();
            down[k] -= step;
            points.push(up);
            points.push(down);
        }
        let evals = evaluate::<M, D>(self.dev, self.batch, self.layout, &points);
        let mut hess = Matrix::zeros(n);
        for (col, step) in h.iter().enumerate() {
            let (up, down) = (&evals[2 * col].gradient, &evals[2 * col + 1].gradient);
            for (row, &k) in self.covered.iter().enumerate() {
                // H = −∂² log p
                hess.set(row, col, -(up[k] - down[k]) / (2.0 * step));
            }
        }
        for i in 0..n {
            for j in 0..i {
                let v = 0.5 * (hess.get(i, j) + hess.get(j, i));
                hess.set(i, j, v);
                hess.set(j, i, v);
            }
        }
        hess
    }

    /// H at `point`: a first pass with steps of 10⁻⁴ of each coordinate's size gives the
    /// conditional sds 1/√H_jj; the second steps by half of them.
    pub fn hessian<M: Model>(&self, point: &[f64]) -> Matrix {
        let first: Vec<f64> = self
            .covered
            .iter()
            .map(|&k| 1e-4 * point[k].abs().max(1.0))
            .collect();
        let rough = self.hessian_with_steps::<M>(point, &first);
        let steps: Vec<f64> = (0..self.covered.len())
            .map(|j| {
                let h = rough.get(j, j);
                if h.is_finite() && h > 0.0 {
                    0.5 / h.sqrt()
                } else {
                    first[j]
                }
            })
            .collect();
        self.hessian_with_steps::<M>(point, &steps)
    }

    /// The Laplace approximation at the mode found from `point`, after Newton steps on the
    /// covered coordinates.
    pub fn laplace<M: Model>(&self, mut point: Vec<f64>) -> Result<Laplace, InitError> {
        let mut hess = self.hessian::<M>(&point);
        let (mut f, mut g) = self.negative_log_joint::<M>(&point);
        for _ in 0..8 {
            let chol = self.cholesky(&hess)?;
            let grad: Vec<f64> = self.covered.iter().map(|&k| g[k]).collect();
            let step: Vec<f64> = chol
                .solve_lower_transpose(&chol.solve_lower(&grad))
                .iter()
                .map(|v| -v)
                .collect();
            let decrement: f64 = -grad.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
            if decrement < 1e-10 {
                break;
            }
            // backtracking: accept a step that does not raise −log p beyond its f32 noise
            let noise = 1e-6 * f.abs().max(1.0);
            let mut t = 1.0;
            let mut moved = false;
            for _ in 0..10 {
                let mut trial = point.clone();
                for (&k, s) in self.covered.iter().zip(&step) {
                    trial[k] += t * s;
                }
                let (f_new, g_new) = self.negative_log_joint::<M>(&trial);
                if f_new.is_finite() && f_new <= f + noise {
                    point = trial;
                    (f, g) = (f_new, g_new);
                    moved = true;
                    break;
                }
                t *= 0.5;
            }
            if !moved {
                break;
            }
            // far from the mode the curvature is another; near it the same Hessian serves
            if decrement > 1e-3 || t < 1.0 {
                hess = self.hessian::<M>(&point);
            }
        }
        let chol = self.cholesky(&hess)?;
        let inverse = chol.lower_inverse();
        let cov = inverse.transpose().matmul(&inverse);
        Ok(Laplace {
            precision_diag: (0..hess.n).map(|i| hess.get(i, i)).collect(),
            point,
            cov,
            log_joint: -f,
        })
    }

    /// H's Cholesky factor, or the site along which the curvature is not positive.
    fn cholesky(&self, hess: &Matrix) -> Result<Matrix, InitError> {
        hess.cholesky().map_err(|e| {
            let k = self.covered[e.pivot];
            InitError::NotPositiveDefinite {
                site: self.site(k).name.to_string(),
            }
        })
    }
}
