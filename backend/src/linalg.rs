//! Small dense linear algebra on the host, in f64: Cholesky, triangular solves, inverses
//! and log-determinants of the k×k and d×d matrices that guide families need (a full-rank
//! scale, a low-rank capacitance matrix, an implicit generator's JᵀJ).
//!
//! dfdx 0.13 has no decompositions. Where a family needs one *with its gradient*, it
//! computes the value here and enters the gradient through a linear surrogate built from
//! dfdx ops: for a scalar f(M) with ∂f/∂M = G known in closed form,
//! `f ≈ stop(f) + ⟨stop(G), M⟩ − stop(⟨G, M⟩)` has the value f and the gradient G.
//! (∂ log det M / ∂M = M⁻ᵀ is the case that matters.)

/// How far L⁻ᵀ ε may exceed max |ε| / min L_ii before the path derivative gives way to the
/// standard estimator for a step (the same exact log q, the analytic entropy's gradient) (a random lower-triangular matrix's inverse grows
/// exponentially with its size even where its diagonal is moderate).
pub const PATH_DERIVATIVE_LIMIT: f64 = 1e4;

/// The path derivative of a Gaussian z = μ + L ε (the stdlib's `FullRank` and the host
/// engine both compute it here, so they agree): per particle of `eps` (rows of d), −L⁻ᵀ ε
/// (the slope of log q in z, by back substitution in f64) and log N(ε) − Σ log L_ii. The
/// buffers are kept between calls (a fit computes it every step).
#[derive(Debug, Clone, Default)]
pub struct PathDerivativeTerms {
    /// −L⁻ᵀ ε per particle, rows of d.
    pub slope: Vec<f32>,
    /// log N(ε) − Σ log L_ii per particle.
    pub value: Vec<f32>,
    lower: Vec<f64>,
    x: Vec<f64>,
}

impl PathDerivativeTerms {
    /// The terms for L (`l`, d × d row-major, lower triangular) and `eps`; `false` when the
    /// slope passes [`PATH_DERIVATIVE_LIMIT`] (the step should take the standard estimator).
    pub fn compute(&mut self, l: &[f32], d: usize, eps: &[f32]) -> bool {
        self.lower.clear();
        self.lower.extend(l.iter().map(|&v| f64::from(v)));
        let diag = |i: usize| self.lower[i * d + i];
        let log_det: f64 = (0..d).map(|i| diag(i).ln()).sum();
        let min_diag = (0..d).map(diag).fold(f64::INFINITY, f64::min);
        let max_eps = eps.iter().fold(0.0f64, |m, &e| m.max(f64::from(e).abs()));
        let limit = PATH_DERIVATIVE_LIMIT * max_eps.max(1.0) / min_diag;
        let constant = d as f64 * 0.5 * (2.0 * std::f64::consts::PI).ln() + log_det;
        self.slope.clear();
        self.value.clear();
        for e in eps.chunks(d) {
            // back substitution: Lᵀ x = ε
            self.x.clear();
            self.x.extend(e.iter().map(|&v| f64::from(v)));
            for i in (0..d).rev() {
                self.x[i] /= self.lower[i * d + i];
                let xi = self.x[i];
                for k in 0..i {
                    self.x[k] -= self.lower[i * d + k] * xi;
                }
            }
            if self.x.iter().any(|v| v.is_nan() || v.abs() > limit) {
                return false;
            }
            let sq: f64 = e.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            self.value.push((-0.5 * sq - constant) as f32);
            self.slope.extend(self.x.iter().map(|&v| -v as f32));
        }
        true
    }
}

/// A square matrix stored row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// The number of rows (and columns).
    pub n: usize,
    /// The `n × n` entries, row-major.
    pub data: Vec<f64>,
}

/// A matrix that is not (numerically) positive definite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotPositiveDefinite {
    /// The pivot at which the factorization failed.
    pub pivot: usize,
}

impl Matrix {
    /// The `n × n` zero matrix.
    pub fn zeros(n: usize) -> Self {
        Matrix {
            n,
            data: vec![0.0; n * n],
        }
    }

    /// The `n × n` identity.
    pub fn identity(n: usize) -> Self {
        let mut m = Self::zeros(n);
        for i in 0..n {
            m.data[i * n + i] = 1.0;
        }
        m
    }

    /// An `n × n` matrix from `n²` row-major `f32` values (panics on another length).
    pub fn from_f32(n: usize, data: &[f32]) -> Self {
        assert_eq!(data.len(), n * n, "a {n}×{n} matrix");
        Matrix {
            n,
            data: data.iter().map(|&v| f64::from(v)).collect(),
        }
    }

    /// The entry at row `i`, column `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j]
    }

    /// Sets the entry at row `i`, column `j`.
    pub fn set(&mut self, i: usize, j: usize, v: f64) {
        self.data[i * self.n + j] = v;
    }

    /// The transpose.
    pub fn transpose(&self) -> Self {
        let mut t = Self::zeros(self.n);
        for i in 0..self.n {
            for j in 0..self.n {
                t.set(j, i, self.get(i, j));
            }
        }
        t
    }

    /// The product `self · other` (both `n × n`).
    pub fn matmul(&self, other: &Matrix) -> Self {
        let n = self.n;
        let mut out = Self::zeros(n);
        for i in 0..n {
            for k in 0..n {
                let a = self.get(i, k);
                if a == 0.0 {
                    continue;
                }
                for j in 0..n {
                    out.data[i * n + j] += a * other.get(k, j);
                }
            }
        }
        out
    }

    /// The lower Cholesky factor L with L Lᵀ = self (self symmetric positive definite).
    pub fn cholesky(&self) -> Result<Matrix, NotPositiveDefinite> {
        let n = self.n;
        let mut l = Self::zeros(n);
        for j in 0..n {
            let mut d = self.get(j, j);
            for k in 0..j {
                d -= l.get(j, k).powi(2);
            }
            if d.is_nan() || d <= 0.0 || d.is_infinite() {
                return Err(NotPositiveDefinite { pivot: j });
            }
            let d = d.sqrt();
            l.set(j, j, d);
            for i in j + 1..n {
                let mut s = self.get(i, j);
                for k in 0..j {
                    s -= l.get(i, k) * l.get(j, k);
                }
                l.set(i, j, s / d);
            }
        }
        Ok(l)
    }

    /// A square root of a covariance that should be positive definite but may have lost it
    /// to rounding: its Cholesky factor, else that of self + εI for ε from 10⁻¹⁰ to 10⁻⁴ of
    /// its mean diagonal, else the diagonal of standard deviations √Σ_jj (the correlations
    /// given up rather than the scales).
    pub fn cholesky_or_diagonal(&self) -> Matrix {
        if let Ok(l) = self.cholesky() {
            return l;
        }
        let n = self.n;
        let mean_diag = (0..n).map(|i| self.get(i, i).abs()).sum::<f64>() / n.max(1) as f64;
        for exponent in [-10, -8, -6, -4] {
            let mut jittered = self.clone();
            for i in 0..n {
                jittered.data[i * n + i] += mean_diag * 10f64.powi(exponent);
            }
            if let Ok(l) = jittered.cholesky() {
                return l;
            }
        }
        let mut l = Self::zeros(n);
        for i in 0..n {
            let v = self.get(i, i);
            l.set(
                i,
                i,
                if v.is_finite() && v > 0.0 {
                    v.sqrt()
                } else {
                    1.0
                },
            );
        }
        l
    }

    /// The inverse of a lower-triangular matrix with a non-zero diagonal.
    pub fn lower_inverse(&self) -> Matrix {
        let n = self.n;
        let mut inv = Self::zeros(n);
        for col in 0..n {
            // Solve L x = e_col by forward substitution.
            for i in col..n {
                let mut s = if i == col { 1.0 } else { 0.0 };
                for k in col..i {
                    s -= self.get(i, k) * inv.get(k, col);
                }
                inv.set(i, col, s / self.get(i, i));
            }
        }
        inv
    }

    /// x with L x = b, for L = self lower triangular (forward substitution).
    pub fn solve_lower(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = vec![0.0; n];
        for i in 0..n {
            let row = &self.data[i * n..i * n + i];
            let s: f64 = row.iter().zip(&x).map(|(l, x)| l * x).sum();
            x[i] = (b[i] - s) / self.get(i, i);
        }
        x
    }

    /// x with Lᵀ x = b, for L = self lower triangular (back substitution; Lᵀ is never
    /// formed, let alone L⁻¹).
    pub fn solve_lower_transpose(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = b.to_vec();
        for i in (0..n).rev() {
            x[i] /= self.get(i, i);
            let xi = x[i];
            for (k, xk) in x.iter_mut().enumerate().take(i) {
                *xk -= self.data[i * n + k] * xi;
            }
        }
        x
    }

    /// The inverse and log-determinant of a symmetric positive-definite matrix.
    pub fn spd_inverse_logdet(&self) -> Result<(Matrix, f64), NotPositiveDefinite> {
        let l = self.cholesky()?;
        let logdet = 2.0 * (0..self.n).map(|i| l.get(i, i).ln()).sum::<f64>();
        let li = l.lower_inverse();
        Ok((li.transpose().matmul(&li), logdet))
    }

    /// log |det| of any square matrix, by LU with partial pivoting (−∞ when singular).
    pub fn log_abs_det(&self) -> f64 {
        let n = self.n;
        let mut u = self.clone();
        let mut sum = 0.0;
        for k in 0..n {
            let p = (k..n)
                .max_by(|&a, &b| u.get(a, k).abs().total_cmp(&u.get(b, k).abs()))
                .expect("k < n");
            if u.get(p, k) == 0.0 {
                return f64::NEG_INFINITY;
            }
            if p != k {
                for j in 0..n {
                    let t = u.get(k, j);
                    u.set(k, j, u.get(p, j));
                    u.set(p, j, t);
                }
            }
            let pivot = u.get(k, k);
            sum += pivot.abs().ln();
            for i in k + 1..n {
                let f = u.get(i, k) / pivot;
                for j in k..n {
                    u.set(i, j, u.get(i, j) - f * u.get(k, j));
                }
            }
        }
        sum
    }

    /// The smallest eigenvalue of a symmetric matrix and a unit eigenvector for it:
    /// Householder reduction to tridiagonal form, then the implicit QL iteration with
    /// Wilkinson shifts (`tred2` and `tqli`, Press et al., Numerical Recipes §11.2–11.3),
    /// about 4k³ operations in all, where cyclic Jacobi rotations took 3k³ per sweep and
    /// several sweeps (an implicit guide factors a k × k matrix per particle per step).
    pub fn symmetric_min_eigen(&self) -> (f64, Vec<f64>) {
        let n = self.n;
        assert!(n > 0, "a non-empty matrix");
        let (mut d, mut e, q) = self.tridiagonal();
        // the eigenvectors as the rows of zt (Qᵀ rotated), so that each rotation of two
        // of them runs along contiguous memory
        let mut zt = vec![0.0f64; n * n];
        for i in 0..n {
            for k in 0..n {
                zt[i * n + k] = q[k * n + i];
            }
        }
        tridiagonal_ql(&mut d, &mut e, &mut zt, n);
        let i = (0..n)
            .min_by(|&x, &y| d[x].total_cmp(&d[y]))
            .expect("a non-empty matrix");
        let v = &zt[i * n..(i + 1) * n];
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        (d[i], v.iter().map(|x| x / norm).collect())
    }

    /// Householder's reduction Qᵀ A Q = T (`tred2`): T's diagonal, its off-diagonal
    /// (`e[i]` joins rows i − 1 and i; `e[0]` = 0) and Q, row-major.
    fn tridiagonal(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let n = self.n;
        let mut a = self.data.clone();
        let (mut d, mut e) = (vec![0.0f64; n], vec![0.0f64; n]);
        let at = |i: usize, j: usize| i * n + j;
        for i in (1..n).rev() {
            let l = i - 1;
            let mut h = 0.0;
            if l > 0 {
                let scale: f64 = (0..=l).map(|k| a[at(i, k)].abs()).sum();
                if scale == 0.0 {
                    e[i] = a[at(i, l)];
                } else {
                    for k in 0..=l {
                        a[at(i, k)] /= scale;
                        h += a[at(i, k)] * a[at(i, k)];
                    }
                    let f = a[at(i, l)];
                    let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
                    e[i] = scale * g;
                    h -= f * g;
                    a[at(i, l)] = f - g;
                    let mut f = 0.0;
                    for j in 0..=l {
                        a[at(j, i)] = a[at(i, j)] / h;
                        let mut g = 0.0;
                        for k in 0..=j {
                            g += a[at(j, k)] * a[at(i, k)];
                        }
                        for k in j + 1..=l {
                            g += a[at(k, j)] * a[at(i, k)];
                        }
                        e[j] = g / h;
                        f += e[j] * a[at(i, j)];
                    }
                    let hh = f / (h + h);
                    for j in 0..=l {
                        let f = a[at(i, j)];
                        let g = e[j] - hh * f;
                        e[j] = g;
                        for k in 0..=j {
                            a[at(j, k)] -= f * e[k] + g * a[at(i, k)];
                        }
                    }
                }
            } else {
                e[i] = a[at(i, l)];
            }
            d[i] = h;
        }
        d[0] = 0.0;
        e[0] = 0.0;
        // Q from the stored reflections
        for i in 0..n {
            if d[i] != 0.0 {
                for j in 0..i {
                    let g: f64 = (0..i).map(|k| a[at(i, k)] * a[at(k, j)]).sum();
                    for k in 0..i {
                        a[at(k, j)] -= g * a[at(k, i)];
                    }
                }
            }
            d[i] = a[at(i, i)];
            a[at(i, i)] = 1.0;
            for j in 0..i {
                a[at(j, i)] = 0.0;
                a[at(i, j)] = 0.0;
            }
        }
        (d, e, a)
    }

    /// The entries as `f32`, row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }
}

/// The implicit QL iteration on a symmetric tridiagonal matrix (`tqli`): `d` becomes its
/// eigenvalues, and each rotation is applied to the rows of `zt` (n × n, row-major), whose
/// row i becomes the eigenvector of `d[i]` where `zt` held Qᵀ of the reduction. `e` holds
/// the off-diagonal as [`Matrix::tridiagonal`] gives it.
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64], zt: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        // (a symmetric tridiagonal matrix converges in a few iterations per eigenvalue; the
        // cap only bounds the loop)
        for _iteration in 0..60 {
            // the first negligible off-diagonal entry at or after l
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut deflated = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    // underflow: deflate and start over
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                let (upper, lower) = zt.split_at_mut((i + 1) * n);
                let (zi, zj) = (&mut upper[i * n..], &mut lower[..n]);
                for (a, b) in zi.iter_mut().zip(zj.iter_mut()) {
                    let f = *b;
                    *b = s * *a + c * f;
                    *a = c * *a - s * f;
                }
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Matrix {
        // A Aᵀ + n I for a fixed A: symmetric positive definite.
        let mut a = Matrix::zeros(n);
        for i in 0..n {
            for j in 0..n {
                a.set(i, j, ((i * 7 + j * 3) % 5) as f64 - 2.0);
            }
        }
        let mut m = a.matmul(&a.transpose());
        for i in 0..n {
            m.set(i, i, m.get(i, i) + n as f64);
        }
        m
    }

    #[test]
    fn cholesky_reconstructs_and_inverse_inverts() {
        let m = spd(5);
        let l = m.cholesky().unwrap();
        let back = l.matmul(&l.transpose());
        for (a, b) in back.data.iter().zip(&m.data) {
            assert!((a - b).abs() < 1e-10);
        }
        let (inv, logdet) = m.spd_inverse_logdet().unwrap();
        let eye = m.matmul(&inv);
        for i in 0..5 {
            for j in 0..5 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((eye.get(i, j) - want).abs() < 1e-10);
            }
        }
        // log det by cofactor-free elimination (LU without pivoting on an SPD matrix).
        let mut u = m.clone();
        let mut det_log = 0.0;
        for k in 0..5 {
            det_log += u.get(k, k).ln();
            for i in k + 1..5 {
                let f = u.get(i, k) / u.get(k, k);
                for j in k..5 {
                    u.set(i, j, u.get(i, j) - f * u.get(k, j));
                }
            }
        }
        assert!((logdet - det_log).abs() < 1e-10);
        assert!((m.log_abs_det() - det_log).abs() < 1e-10);
    }

    #[test]
    fn log_abs_det_of_a_permuted_triangular_matrix() {
        // rows of diag(2, −3, 0.5) with an upper entry, swapped: |det| = 3
        let mut m = Matrix::zeros(3);
        m.set(0, 1, -3.0);
        m.set(1, 0, 2.0);
        m.set(1, 2, 7.0);
        m.set(2, 2, 0.5);
        assert!((m.log_abs_det() - 3f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn smallest_eigenpair() {
        let m = spd(5);
        let (lambda, v) = m.symmetric_min_eigen();
        let norm: f64 = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-10);
        for i in 0..5 {
            let mv: f64 = (0..5).map(|j| m.get(i, j) * v[j]).sum();
            assert!((mv - lambda * v[i]).abs() < 1e-9, "row {i}");
        }
        // the smallest: every other Rayleigh quotient is at least λ, and e.g. the unit
        // vectors' quotients (the diagonal) are too
        for i in 0..5 {
            assert!(m.get(i, i) >= lambda - 1e-12);
        }
        // det = product of eigenvalues ≥ λ^n
        assert!(m.log_abs_det() >= 5.0 * lambda.ln() - 1e-9);
    }

    /// The smallest eigenvalue λ of symmetric matrices of several sizes (positive definite
    /// and not, with repeated eigenvalues): A − (λ − ε) I is positive definite and
    /// A − (λ + ε) I is not (Cholesky decides), and A v = λ v.
    #[test]
    fn smallest_eigenvalue_against_cholesky() {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        };
        for n in [1, 2, 3, 7, 40] {
            for kind in 0..3 {
                let mut a = Matrix::zeros(n);
                for i in 0..n {
                    for j in 0..=i {
                        let v = match kind {
                            0 => next(),
                            1 => f64::from(u8::from(i == j)) * 2.0, // 2 I: all repeated
                            _ => next() + if i == j { 3.0 } else { 0.0 },
                        };
                        a.set(i, j, v);
                        a.set(j, i, v);
                    }
                }
                let (lambda, v) = a.symmetric_min_eigen();
                let shifted = |t: f64| {
                    let mut b = a.clone();
                    for i in 0..n {
                        b.set(i, i, a.get(i, i) - t);
                    }
                    b.cholesky().is_ok()
                };
                let eps = 1e-7 * (1.0 + lambda.abs());
                assert!(
                    shifted(lambda - eps),
                    "n = {n}, kind {kind}: λ = {lambda} too large"
                );
                assert!(
                    !shifted(lambda + eps),
                    "n = {n}, kind {kind}: λ = {lambda} not the smallest"
                );
                for i in 0..n {
                    let av: f64 = (0..n).map(|j| a.get(i, j) * v[j]).sum();
                    assert!(
                        (av - lambda * v[i]).abs() < 1e-9,
                        "n = {n}, kind {kind}, row {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn indefinite_matrices_are_refused() {
        let mut m = Matrix::identity(3);
        m.set(2, 2, -1.0);
        assert_eq!(m.cholesky(), Err(NotPositiveDefinite { pivot: 2 }));
    }
}
