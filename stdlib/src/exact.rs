//! Exact, closed-form posteriors in f64: the references variational fits are checked
//! against (and a baseline for users).

/// Lower Cholesky factor of the SPD matrix `a` (row-major p×p), or `None` if it is not
/// positive definite.
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let p = a.len();
    let mut l = vec![vec![0.0; p]; p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = a[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// Solves L Lᵀ x = b.
fn cholesky_solve(l: &[Vec<f64>], b: &[f64]) -> Vec<f64> {
    let p = l.len();
    let mut y = vec![0.0; p];
    for i in 0..p {
        y[i] = (b[i] - (0..i).map(|k| l[i][k] * y[k]).sum::<f64>()) / l[i][i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        x[i] = (y[i] - (i + 1..p).map(|k| l[k][i] * x[k]).sum::<f64>()) / l[i][i];
    }
    x
}

fn log_det(l: &[Vec<f64>]) -> f64 {
    2.0 * (0..l.len()).map(|i| l[i][i].ln()).sum::<f64>()
}

/// The exact posterior of Bayesian linear regression with a Gaussian prior and known noise.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGaussianPosterior {
    pub mean: Vec<f64>,
    pub cov: Vec<Vec<f64>>,
    pub precision: Vec<Vec<f64>>,
    /// log p(y), the marginal likelihood.
    pub log_evidence: f64,
    /// The sds of the best mean-field Gaussian, 1/sqrt(P_ii).
    pub mean_field_sd: Vec<f64>,
    /// The ELBO of the best mean-field Gaussian: log p(y) − ½(Σ log P_ii − log det P).
    pub mean_field_elbo: f64,
}

/// y = X w (+ b) + ε, ε ~ N(0, noise_sd²), every coefficient ~ N(0, prior_sd²); with
/// `intercept`, b is the last coordinate.
pub fn linear_regression(
    x: &[Vec<f64>],
    y: &[f64],
    prior_sd: f64,
    noise_sd: f64,
    intercept: bool,
) -> LinearGaussianPosterior {
    assert_eq!(
        x.len(),
        y.len(),
        "x has {} rows but y has {}",
        x.len(),
        y.len()
    );
    let xt: Vec<Vec<f64>> = x
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if intercept {
                r.push(1.0);
            }
            r
        })
        .collect();
    let n = y.len();
    let p = xt.first().map_or(usize::from(intercept), Vec::len);
    let (s2, v2) = (noise_sd * noise_sd, prior_sd * prior_sd);
    let mut prec = vec![vec![0.0; p]; p];
    let mut xty = vec![0.0; p];
    for (r, &yi) in xt.iter().zip(y) {
        for i in 0..p {
            xty[i] += r[i] * yi / s2;
            for j in 0..p {
                prec[i][j] += r[i] * r[j] / s2;
            }
        }
    }
    for (i, row) in prec.iter_mut().enumerate() {
        row[i] += 1.0 / v2;
    }
    let l = cholesky(&prec).expect("the posterior precision is positive definite");
    let mean = cholesky_solve(&l, &xty);
    let cov: Vec<Vec<f64>> = (0..p)
        .map(|j| {
            let e: Vec<f64> = (0..p).map(|i| f64::from(u8::from(i == j))).collect();
            cholesky_solve(&l, &e)
        })
        .collect();
    let ld = log_det(&l);
    let yty: f64 = y.iter().map(|v| v * v).sum();
    let mpm: f64 = (0..p).map(|i| mean[i] * xty[i]).sum(); // mᵀ P m = mᵀ Xᵀy/σ²
    let log_evidence = -0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln()
        - n as f64 * noise_sd.ln()
        - p as f64 * prior_sd.ln()
        - 0.5 * ld
        - 0.5 * (yty / s2 - mpm);
    let mean_field_sd = (0..p).map(|i| 1.0 / prec[i][i].sqrt()).collect();
    let sum_log_diag: f64 = (0..p).map(|i| prec[i][i].ln()).sum();
    LinearGaussianPosterior {
        mean,
        cov,
        log_evidence,
        mean_field_sd,
        mean_field_elbo: log_evidence - 0.5 * (sum_log_diag - ld),
        precision: prec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn problem(n: usize, d: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
        let mut s = 42;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..d).map(|_| lcg(&mut s)).collect())
            .collect();
        let y = (0..n).map(|_| lcg(&mut s) * 2.0).collect();
        (x, y)
    }

    /// log evidence against the direct n-dimensional density N(y; 0, σ²I + s² X̃X̃ᵀ).
    #[test]
    fn log_evidence_matches_the_marginal_density() {
        for intercept in [false, true] {
            let (x, y) = problem(7, 3);
            let (s, sigma) = (1.3, 0.7);
            let post = linear_regression(&x, &y, s, sigma, intercept);
            let xt: Vec<Vec<f64>> = x
                .iter()
                .map(|r| r.iter().copied().chain(intercept.then_some(1.0)).collect())
                .collect();
            let n = y.len();
            let cov: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    (0..n)
                        .map(|j| {
                            let dot: f64 = xt[i].iter().zip(&xt[j]).map(|(a, b)| a * b).sum();
                            s * s * dot + if i == j { sigma * sigma } else { 0.0 }
                        })
                        .collect()
                })
                .collect();
            let l = cholesky(&cov).unwrap();
            let alpha = cholesky_solve(&l, &y);
            let quad: f64 = alpha.iter().zip(&y).map(|(a, b)| a * b).sum();
            let direct = -0.5 * (n as f64 * (2.0 * std::f64::consts::PI).ln() + log_det(&l) + quad);
            assert!(
                (post.log_evidence - direct).abs() < 1e-9 * direct.abs(),
                "{} vs {direct}",
                post.log_evidence
            );
        }
    }

    /// P·cov = I, and the mean satisfies the normal equations P m = X̃ᵀy/σ².
    #[test]
    fn covariance_inverts_precision() {
        let (x, y) = problem(9, 2);
        let post = linear_regression(&x, &y, 1.0, 0.5, true);
        let p = post.mean.len();
        for i in 0..p {
            for j in 0..p {
                let v: f64 = (0..p).map(|k| post.precision[i][k] * post.cov[k][j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-10);
            }
        }
        for i in 0..p {
            let lhs: f64 = (0..p).map(|k| post.precision[i][k] * post.mean[k]).sum();
            let rhs: f64 = x
                .iter()
                .zip(&y)
                .map(|(r, yi)| r.get(i).copied().unwrap_or(1.0) * yi / 0.25)
                .sum();
            assert!((lhs - rhs).abs() < 1e-9);
        }
    }

    /// The optimal mean-field ELBO against E_q[log p(y|w)] + E_q[log p(w)] + H[q] in closed
    /// form; a perturbed sd must give a lower ELBO.
    #[test]
    fn mean_field_elbo_matches_direct_expectation() {
        let (x, y) = problem(8, 2);
        let (s, sigma) = (1.0, 0.5);
        let post = linear_regression(&x, &y, s, sigma, true);
        let elbo = |sd: &[f64]| {
            let m = &post.mean;
            let ln2pi = (2.0 * std::f64::consts::PI).ln();
            let mut e = 0.0;
            for (r, yi) in x.iter().zip(&y) {
                let xr: Vec<f64> = r.iter().copied().chain([1.0]).collect();
                let mu: f64 = xr.iter().zip(m).map(|(a, b)| a * b).sum();
                let var: f64 = xr.iter().zip(sd).map(|(a, b)| a * a * b * b).sum();
                e += -0.5 * ln2pi - sigma.ln() - 0.5 * ((yi - mu).powi(2) + var) / (sigma * sigma);
            }
            for (mi, si) in m.iter().zip(sd) {
                e += -0.5 * ln2pi - f64::ln(s) - 0.5 * (mi * mi + si * si) / (s * s);
                e += 0.5 * (1.0 + ln2pi) + si.ln();
            }
            e
        };
        let direct = elbo(&post.mean_field_sd);
        assert!(
            (post.mean_field_elbo - direct).abs() < 1e-9 * direct.abs(),
            "{} vs {direct}",
            post.mean_field_elbo
        );
        let mut worse = post.mean_field_sd.clone();
        worse[0] *= 1.1;
        assert!(elbo(&worse) < direct);
    }
}
