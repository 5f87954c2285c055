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
use super::log_joint::{Layout, LogJoint};
use crate::error::InitError;
use crate::latent::{LatentSpec, Support};
use crate::linalg::Matrix;

/// The most coordinates the Laplace approximation covers (its Hessian is dense).
pub const MAX_LAPLACE_DIM: usize = 1024;

/// A problem: the model on all its data, which coordinates the search moves, which the
/// approximation covers.
pub(crate) struct Problem<'a> {
    pub log_joint: &'a dyn LogJoint,
    pub layout: &'a Layout,
    pub latents: &'static [LatentSpec],
    /// Per coordinate: moved by the mode search.
    pub free: &'a [bool],
    /// The coordinates the approximation covers, in order (a subset of the free ones).
    pub covered: &'a [usize],
    /// Per coordinate, its conditional sd 1/√H_jj from the last Hessian: the scale of the
    /// next one's finite differences.
    pub conditional_sd: std::cell::RefCell<Vec<Option<f64>>>,
    /// Where the search started (the priors' medians).
    pub origin: &'a [f64],
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

impl Problem<'_> {
    fn site(&self, k: usize) -> &'static LatentSpec {
        &self.latents[self.layout.site_of(k)]
    }

    /// −log p and its gradient at a full point.
    fn negative_log_joint(&self, point: &[f64]) -> (f64, Vec<f64>) {
        let e = self.log_joint.evaluate(&[point.to_vec()]);
        let e = &e[0];
        (-e.value, e.gradient.iter().map(|g| -g).collect())
    }

    /// The mode, from `start`, over the free coordinates: L-BFGS in coordinates whitened
    /// by the Hessian at its starting point (so that a problem whose scales span 10⁷ is a
    /// round one), restarted from where it stops with the Hessian there until a round moves
    /// the point by less than a hundredth of a posterior sd. Without whitening (more free
    /// coordinates than [`MAX_LAPLACE_DIM`]), one round of plain L-BFGS.
    pub fn mode(&self, start: Vec<f64>) -> Result<(Vec<f64>, f64), InitError> {
        let first = &self.log_joint.evaluate(std::slice::from_ref(&start))[0];
        if !first.value.is_finite() {
            return Err(InitError::NonFiniteStart {
                site: first.culprit.unwrap_or("?").to_string(),
            });
        }
        let free: Vec<usize> = (0..start.len()).filter(|&k| self.free[k]).collect();
        let whiten = free.len() <= MAX_LAPLACE_DIM;
        let mut point = start.clone();
        let mut value = -first.value;
        let mut status = Status::Converged;
        for _ in 0..6 {
            let basis = if whiten {
                Whitening::at(&self.hessian(&point, &free))
            } else {
                Whitening::Identity
            };
            let origin = point.clone();
            let full = |x: &[f64]| {
                let mut p = origin.clone();
                for (&k, v) in free.iter().zip(basis.to_coordinates(x)) {
                    p[k] += v;
                }
                p
            };
            let mut objective = |x: &[f64]| {
                let (v, g) = self.negative_log_joint(&full(x));
                let g: Vec<f64> = free.iter().map(|&k| g[k]).collect();
                (v, basis.gradient(&g))
            };
            let out = lbfgs::minimize(&mut objective, vec![0.0; free.len()], 2000);
            if out.status == Status::NonFinite {
                return Err(InitError::NonFiniteStart {
                    site: first.culprit.unwrap_or("?").to_string(),
                });
            }
            let moved = out.x.iter().map(|v| v * v).sum::<f64>().sqrt();
            point = full(&out.x);
            value = out.f;
            status = out.status;
            if !whiten || moved < 1e-2 {
                break;
            }
        }
        self.check_bounded(&point, &start, status)?;
        self.check_stationary(&point, &free, status)?;
        Ok((point, -value))
    }

    /// Where the search stopped, the log joint must be flat to within its curvature: a
    /// gradient of more than ten conditional sds' worth (|∂ log p/∂x_k| · sd_k > 10) means the
    /// search stalled on a slope that goes on (a funnel whose scale runs to 0, which f32
    /// cannot follow to the end), not at a mode.
    fn check_stationary(
        &self,
        point: &[f64],
        free: &[usize],
        status: Status,
    ) -> Result<(), InitError> {
        let (_, g) = self.negative_log_joint(point);
        let sds = self.conditional_sd.borrow();
        let worst = free
            .iter()
            .filter_map(|&k| sds[k].map(|sd| (k, g[k].abs() * sd)))
            .filter(|(_, z)| z.is_finite())
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match worst {
            Some((k, z)) if z > 10.0 => {
                let site = self.site(k);
                // log p grows along −g
                let down = g[k] > 0.0;
                let towards = boundary(site.support, down);
                Err(InitError::NoMode {
                    site: site.name.to_string(),
                    towards,
                    still_climbing: status != Status::Converged,
                })
            }
            _ => Ok(()),
        }
    }

    /// A mode that ran off towards a boundary of a constrained site (log σ → −∞, say) is
    /// no mode: the log joint grows without bound there.
    fn check_bounded(&self, point: &[f64], start: &[f64], status: Status) -> Result<(), InitError> {
        // how far the search went from where it started, in the unconstrained coordinate:
        // e²⁵ ≈ 7·10¹⁰-fold for a scale, 10¹² times its size for a real site
        let far = |k: usize, u: f64, u0: f64| match self.site(k).support {
            Support::Real => (u - u0).abs() > 1e12 * (1.0 + u0.abs()),
            _ => (u - u0).abs() > 25.0,
        };
        let worst = point
            .iter()
            .zip(start)
            .enumerate()
            .filter(|&(k, (&u, &u0))| self.free[k] && far(k, u, u0))
            .max_by(|(_, (a, a0)), (_, (b, b0))| (*a - *a0).abs().total_cmp(&(*b - *b0).abs()));
        match worst {
            Some((k, (&u, &u0))) => Err(InitError::NoMode {
                site: self.site(k).name.to_string(),
                towards: boundary(self.site(k).support, u < u0),
                still_climbing: status == Status::MaxIterations,
            }),
            None => Ok(()),
        }
    }

    /// H over the coordinates `coords` at `point`, by central differences of the gradient
    /// with steps `h` (one per coordinate), symmetrized.
    fn hessian_with_steps(&self, point: &[f64], coords: &[usize], h: &[f64]) -> Matrix {
        let n = coords.len();
        let mut points = Vec::with_capacity(2 * n);
        for (&k, &step) in coords.iter().zip(h) {
            let mut up = point.to_vec();
            up[k] += step;
            let mut down = point.to_vec();
            down[k] -= step;
            points.push(up);
            points.push(down);
        }
        let evals = self.log_joint.evaluate(&points);
        let mut hess = Matrix::zeros(n);
        for (col, step) in h.iter().enumerate() {
            let (up, down) = (&evals[2 * col].gradient, &evals[2 * col + 1].gradient);
            for (row, &k) in coords.iter().enumerate() {
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

    /// H over `coords` at `point`, each coordinate stepped by half its conditional sd
    /// 1/√H_jj: known from an earlier Hessian, or found by [`Problem::curvatures`].
    pub fn hessian(&self, point: &[f64], coords: &[usize]) -> Matrix {
        let known = self.conditional_sd.borrow().clone();
        let unknown: Vec<usize> = coords
            .iter()
            .copied()
            .filter(|&k| known[k].is_none())
            .collect();
        if !unknown.is_empty() {
            let found = self.curvatures(point, &unknown);
            let mut known = self.conditional_sd.borrow_mut();
            for (&k, c) in unknown.iter().zip(found) {
                known[k] = Some(if c > 0.0 {
                    1.0 / c.sqrt()
                } else {
                    1e-4 * point[k].abs().max(1.0)
                });
            }
        }
        let steps: Vec<f64> = {
            let known = self.conditional_sd.borrow();
            coords
                .iter()
                .map(|&k| 0.5 * known[k].expect("found above"))
                .collect()
        };
        let hess = self.hessian_with_steps(point, coords, &steps);
        let mut known = self.conditional_sd.borrow_mut();
        for (j, &k) in coords.iter().enumerate() {
            let h = hess.get(j, j);
            if h.is_finite() && h > 0.0 {
                known[k] = Some(1.0 / h.sqrt());
            }
        }
        hess
    }

    /// Each coordinate's curvature H_jj where nothing tells its scale: central differences
    /// at steps 10⁻⁶ … 10⁴ times the coordinate's size (all in one batch), the largest step
    /// that is still within one conditional sd (h √H_jj(h) ≤ 1) chosen, so that a
    /// coefficient whose sd is 10⁴ is not stepped by 10⁻⁴ (where f32 gradients cannot see
    /// its curvature) and one whose sd is 10⁻³ is not stepped by 1.
    fn curvatures(&self, point: &[f64], coords: &[usize]) -> Vec<f64> {
        const SCALES: [f64; 6] = [1e-6, 1e-4, 1e-2, 1.0, 1e2, 1e4];
        let mut points = Vec::with_capacity(2 * SCALES.len() * coords.len());
        for &k in coords {
            for scale in SCALES {
                let h = scale * point[k].abs().max(1.0);
                let mut up = point.to_vec();
                up[k] += h;
                let mut down = point.to_vec();
                down[k] -= h;
                points.push(up);
                points.push(down);
            }
        }
        let evals = self.log_joint.evaluate(&points);
        coords
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                let mut chosen = f64::NAN;
                for (s, scale) in SCALES.iter().enumerate() {
                    let h = scale * point[k].abs().max(1.0);
                    let at = 2 * (j * SCALES.len() + s);
                    let (up, down) = (&evals[at].gradient, &evals[at + 1].gradient);
                    let c = -(up[k] - down[k]) / (2.0 * h);
                    if c.is_finite() && c > 0.0 && h * c.sqrt() <= 1.0 {
                        chosen = c;
                    }
                }
                chosen
            })
            .collect()
    }

    /// The Laplace approximation at the mode found from `point`, after Newton steps on the
    /// covered coordinates.
    pub fn laplace(&self, mut point: Vec<f64>) -> Result<Laplace, InitError> {
        let mut hess = self.hessian(&point, self.covered);
        let (mut f, mut g) = self.negative_log_joint(&point);
        for _ in 0..8 {
            let chol = self.cholesky(&hess, &point)?;
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
                let (f_new, g_new) = self.negative_log_joint(&trial);
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
                hess = self.hessian(&point, self.covered);
            }
        }
        let chol = self.cholesky(&hess, &point)?;
        let inverse = chol.lower_inverse();
        let cov = inverse.transpose().matmul(&inverse);
        Ok(Laplace {
            precision_diag: (0..hess.n).map(|i| hess.get(i, i)).collect(),
            point,
            cov,
            log_joint: -f,
        })
    }

    /// H's Cholesky factor, or the site along which the curvature is not positive. Where
    /// that site is a scale (on (0, ∞) or an interval) gone more than ten e-folds below
    /// its prior's median, the search has followed a funnel towards its neck, where the log
    /// joint grows without bound: no mode, rather than a flat one.
    fn cholesky(&self, hess: &Matrix, point: &[f64]) -> Result<Matrix, InitError> {
        hess.cholesky().map_err(|e| {
            let k = self.covered[e.pivot];
            let site = self.site(k);
            let collapsed = (self.layout.offsets[self.layout.site_of(k)]
                ..self.layout.offsets[self.layout.site_of(k)]
                    + self.layout.sizes[self.layout.site_of(k)])
                .any(|j| point[j] - self.origin[j] < -10.0);
            match site.support {
                Support::Positive | Support::Interval { .. } | Support::UnitInterval
                    if collapsed =>
                {
                    InitError::NoMode {
                        site: site.name.to_string(),
                        towards: boundary(site.support, true),
                        still_climbing: true,
                    }
                }
                _ => InitError::NotPositiveDefinite {
                    site: site.name.to_string(),
                },
            }
        })
    }
}

/// Where an unconstrained coordinate of a site on `support` goes as it runs down (`down`)
/// or up without end, in the site's own terms.
fn boundary(support: Support, down: bool) -> String {
    match (support, down) {
        (Support::Positive, true) | (Support::UnitInterval, true) => "0".to_string(),
        (Support::UnitInterval, false) => "1".to_string(),
        (Support::Interval { low, .. }, true) => format!("its lower bound {low}"),
        (Support::Interval { high, .. }, false) => format!("its upper bound {high}"),
        (Support::Simplex, _) => "a vertex of the simplex".to_string(),
        (Support::Ordered, _) => "two equal neighbours".to_string(),
        (_, true) => "−∞".to_string(),
        (_, false) => "+∞".to_string(),
    }
}

/// Coordinates in which a Hessian H is the identity: x = P x̃ with Pᵀ H P = I, P = L⁻ᵀ for
/// H = L Lᵀ; where H is not positive definite, P = diag(1/√|H_jj|) (1 where H_jj is 0).
enum Whitening {
    Identity,
    Cholesky(Matrix),
    Diagonal(Vec<f64>),
}

impl Whitening {
    fn at(hess: &Matrix) -> Whitening {
        match hess.cholesky() {
            Ok(l) => Whitening::Cholesky(l),
            Err(_) => Whitening::Diagonal(
                (0..hess.n)
                    .map(|j| {
                        let h = hess.get(j, j).abs();
                        if h.is_finite() && h > 0.0 {
                            1.0 / h.sqrt()
                        } else {
                            1.0
                        }
                    })
                    .collect(),
            ),
        }
    }

    /// P x̃.
    fn to_coordinates(&self, x: &[f64]) -> Vec<f64> {
        match self {
            Whitening::Identity => x.to_vec(),
            Whitening::Cholesky(l) => l.solve_lower_transpose(x),
            Whitening::Diagonal(d) => x.iter().zip(d).map(|(x, d)| x * d).collect(),
        }
    }

    /// Pᵀ g: a gradient in x taken to x̃.
    fn gradient(&self, g: &[f64]) -> Vec<f64> {
        match self {
            Whitening::Identity => g.to_vec(),
            Whitening::Cholesky(l) => l.solve_lower(g),
            Whitening::Diagonal(d) => g.iter().zip(d).map(|(g, d)| g * d).collect(),
        }
    }
}
