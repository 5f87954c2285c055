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
    /// The posterior mean of the coefficients.
    pub mean: Vec<f64>,
    /// Their posterior covariance.
    pub cov: Vec<Vec<f64>>,
    /// The posterior precision, the covariance's inverse.
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

/// The posterior of Bayesian linear regression whose noise sd σ is unknown too: the
/// coefficients' mean and covariance, σ's mean and sd, and the log evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownNoisePosterior {
    /// The coefficients' posterior mean.
    pub mean: Vec<f64>,
    /// The coefficients' posterior covariance.
    pub cov: Vec<Vec<f64>>,
    /// σ's posterior mean.
    pub sigma_mean: f64,
    /// σ's posterior sd.
    pub sigma_sd: f64,
    /// log p(y), the marginal likelihood.
    pub log_evidence: f64,
}

/// y = X w (+ b) + ε, ε ~ N(0, σ²), every coefficient ~ N(0, prior_sd²), σ with the prior
/// density exp(`log_prior_sigma`(σ)) on (0, ∞). Given σ the posterior is
/// [`linear_regression`]'s, so the joint one is a mixture over σ of those, with weights
/// p(σ) p(y | σ): computed by quadrature on a grid of 4001 values of log σ spanning ±15
/// sds of log σ's posterior around its mode (found on a coarse grid over 10⁻⁶ to 10³ times
/// y's spread), by Simpson's rule. Exact to far below any Monte Carlo error.
pub fn linear_regression_unknown_noise(
    x: &[Vec<f64>],
    y: &[f64],
    prior_sd: f64,
    log_prior_sigma: impl Fn(f64) -> f64,
    intercept: bool,
) -> UnknownNoisePosterior {
    let n = y.len() as f64;
    let mean_y = y.iter().sum::<f64>() / n;
    let spread = (y.iter().map(|v| (v - mean_y).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-12);
    // log p(σ) + log p(y | σ) + log σ: the density of t = log σ
    let log_density = |t: f64| {
        let sigma = t.exp();
        log_prior_sigma(sigma)
            + linear_regression(x, y, prior_sd, sigma, intercept).log_evidence
            + t
    };
    // the mode of t on a coarse grid, then its curvature
    let (lo, hi) = ((1e-6 * spread).ln(), (1e3 * spread).ln());
    let coarse: Vec<(f64, f64)> = (0..=400)
        .map(|i| {
            let t = lo + (hi - lo) * i as f64 / 400.0;
            (t, log_density(t))
        })
        .collect();
    let (t0, _) = coarse.iter().copied().filter(|(_, v)| v.is_finite()).fold(
        (0.0, f64::NEG_INFINITY),
        |a, b| if b.1 > a.1 { b } else { a },
    );
    let h = 1e-3;
    let curvature = -(log_density(t0 + h) - 2.0 * log_density(t0) + log_density(t0 - h)) / (h * h);
    let sd = if curvature > 0.0 {
        1.0 / curvature.sqrt()
    } else {
        0.1
    };
    let points = 4001;
    let (a, b) = (t0 - 15.0 * sd, t0 + 15.0 * sd);
    let step = (b - a) / (points - 1) as f64;
    let grid: Vec<(f64, f64)> = (0..points)
        .map(|i| {
            let t = a + step * i as f64;
            // Simpson's weights 1, 4, 2, 4, ..., 4, 1
            let w = if i == 0 || i == points - 1 {
                1.0
            } else if i % 2 == 1 {
                4.0
            } else {
                2.0
            };
            (t, w * step / 3.0)
        })
        .collect();
    let logs: Vec<f64> = grid.iter().map(|&(t, _)| log_density(t)).collect();
    let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = grid
        .iter()
        .zip(&logs)
        .map(|(&(_, w), &l)| w * (l - top).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let p = linear_regression(x, y, prior_sd, 1.0, intercept).mean.len();
    let mut mean = vec![0.0; p];
    let mut second = vec![vec![0.0; p]; p];
    let (mut s1, mut s2) = (0.0, 0.0);
    for (&(t, _), &w) in grid.iter().zip(&weights) {
        if w == 0.0 {
            continue;
        }
        let w = w / total;
        let sigma = t.exp();
        let post = linear_regression(x, y, prior_sd, sigma, intercept);
        for (i, row) in second.iter_mut().enumerate() {
            mean[i] += w * post.mean[i];
            for (j, v) in row.iter_mut().enumerate() {
                *v += w * (post.cov[i][j] + post.mean[i] * post.mean[j]);
            }
        }
        s1 += w * sigma;
        s2 += w * sigma * sigma;
    }
    let cov = (0..p)
        .map(|i| (0..p).map(|j| second[i][j] - mean[i] * mean[j]).collect())
        .collect();
    UnknownNoisePosterior {
        mean,
        cov,
        sigma_mean: s1,
        sigma_sd: (s2 - s1 * s1).max(0.0).sqrt(),
        log_evidence: top + total.ln(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mixture over σ against importance sampling of (w, σ) from a wide proposal: a
    /// check of the quadrature by a method that shares nothing with it but the model.
    #[test]
    fn unknown_noise_matches_importance_sampling() {
        let (x, y) = problem(30, 2);
        let prior_sd = 2.0;
        // HalfCauchy(1) on σ
        let log_prior = |s: f64| (2.0 / std::f64::consts::PI).ln() - (1.0 + s * s).ln();
        let exact = linear_regression_unknown_noise(&x, &y, prior_sd, log_prior, true);
        // proposal: σ log-uniform-ish via t ~ N(t̂, 0.5²), w from the conditional posterior
        let mut state = 7u64;
        let mut normal = || {
            // Box–Muller from the test's generator
            let (u1, u2) = ((lcg(&mut state) + 1.0) / 2.0, (lcg(&mut state) + 1.0) / 2.0);
            (-2.0 * u1.max(1e-300).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let t_hat = exact.sigma_mean.ln();
        let (mut sw, mut sm, mut ss) = (0.0, 0.0, 0.0);
        for _ in 0..100_000 {
            let t = t_hat + 0.5 * normal();
            let log_q = -0.5 * ((t - t_hat) / 0.5).powi(2);
            let sigma = t.exp();
            let evidence = linear_regression(&x, &y, prior_sd, sigma, true).log_evidence;
            let w = (log_prior(sigma) + evidence + t - log_q - exact.log_evidence).exp();
            sw += w;
            sm += w * sigma;
            ss += w * sigma * sigma;
        }
        let (m, sd) = (sm / sw, (ss / sw - (sm / sw).powi(2)).sqrt());
        // the proposal is five times wider than the posterior of log σ: an effective sample
        // of about 20,000, so the se of the mean is below 0.01 sd; 3 se allowed
        assert!(
            (m - exact.sigma_mean).abs() < 0.03 * exact.sigma_sd,
            "{m} vs {}",
            exact.sigma_mean
        );
        assert!(
            (sd / exact.sigma_sd - 1.0).abs() < 0.03,
            "{sd} vs {}",
            exact.sigma_sd
        );
    }

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
