//! Did the fit work? The importance ratios p(x, z)/q(z) of draws from the fitted guide say
//! how far q is from the posterior (Yao, Vehtari, Simpson and Gelman, "Yes, but did it
//! work?", 2018): the Pareto shape k̂ of their upper tail ([`psis::pareto_k`]), and the
//! importance-weighted ELBO log (1/S Σ p/q), a tighter bound on log p(x) than the ELBO.
//!
//! k̂ < 0.5: q is close to the posterior and importance sampling from it is reliable;
//! 0.5 ≤ k̂ ≤ 0.7: usable; k̂ > 0.7: q misses mass the posterior has (its sds and tails,
//! maybe its means, are not to be trusted).

pub mod psis;

use std::fmt;

use crate::device::Backend;
use crate::error::FitError;
use crate::evaluate::elbo_draws;
use crate::guide::Guide;
use crate::model::Model;

/// The fewest draws a diagnosis takes (k̂ fits the largest 3√S of them; with fewer than a
/// hundred there is no tail to fit). `FitOptions::diagnostic_draws` is 0 or at least this.
pub const MIN_DIAGNOSTIC_DRAWS: usize = 100;

/// The threshold above which k̂ says the fit is not to be trusted.
pub const K_HAT_THRESHOLD: f64 = 0.7;

/// What the importance ratios of a fitted guide say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Diagnostics {
    /// The Pareto shape of the ratios' upper tail (−∞ when every ratio is the same: q is
    /// the posterior).
    pub k_hat: f64,
    /// The ELBO, the mean of log p(x, z) − log q(z), and its Monte Carlo standard error.
    pub elbo: f64,
    /// The Monte Carlo standard error of `elbo`.
    pub elbo_se: f64,
    /// log (1/S Σ p(x, z)/q(z)): between the ELBO and log p(x).
    pub iw_elbo: f64,
    /// The number of draws from the guide the figures are computed from.
    pub draws: usize,
}

impl Diagnostics {
    /// Does k̂ say the guide is far from the posterior?
    pub fn is_poor(&self) -> bool {
        self.k_hat > K_HAT_THRESHOLD
    }

    /// A plain warning when k̂ is above the threshold.
    pub fn warning(&self) -> Option<String> {
        self.is_poor().then(|| {
            format!(
                "k̂ = {:.2} > {K_HAT_THRESHOLD} ({} draws): the guide misses posterior mass its importance ratios reveal (Yao et al. 2018). Its means may be usable, its sds and intervals are not to be trusted: try `FullRank` (a mean-field guide cannot follow correlations), a `Flow` for skewed or heavy-tailed posteriors, or more steps.",
                self.k_hat, self.draws
            )
        })
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "k̂ {:.2}, ELBO {:.3} ± {:.3}, importance-weighted ELBO {:.3} ({} draws)",
            self.k_hat, self.elbo, self.elbo_se, self.iw_elbo, self.draws
        )
    }
}

/// k̂ and the importance-weighted ELBO of `guide` on `data` from `draws` draws (a few
/// thousand for a k̂ to trust; 4000 is what a fit uses). A guide whose log q is not a density
/// (the implicit family's is a linearisation) is an [`FitError::Unsupported`].
pub fn diagnose<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    draws: usize,
) -> Result<Diagnostics, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    check_draws(draws)?;
    if !G::exact_log_q() {
        return Err(FitError::Unsupported(
            "diagnose: the guide's log q is not a density (the implicit family's entropy is a linearisation), so its importance ratios mean nothing".into(),
        ));
    }
    let ratios = elbo_draws(guide, data, draws)?;
    Ok(from_log_ratios(&ratios))
}

/// At least [`MIN_DIAGNOSTIC_DRAWS`] draws: k̂ needs a tail to fit.
pub fn check_draws(draws: usize) -> Result<(), FitError> {
    if draws < MIN_DIAGNOSTIC_DRAWS {
        return Err(FitError::Options(format!(
            "diagnose: {draws} draws; k̂ needs at least {} (a few thousand to trust it)",
            MIN_DIAGNOSTIC_DRAWS
        )));
    }
    Ok(())
}

/// The diagnostics of given log importance ratios log p(x, z_s) − log q(z_s), z_s ~ q.
pub fn from_log_ratios(ratios: &[f64]) -> Diagnostics {
    let s = ratios.len().max(1) as f64;
    let elbo = ratios.iter().sum::<f64>() / s;
    let var = ratios.iter().map(|v| (v - elbo).powi(2)).sum::<f64>() / (s - 1.0).max(1.0);
    let top = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let iw_elbo = top + (ratios.iter().map(|v| (v - top).exp()).sum::<f64>() / s).ln();
    Diagnostics {
        k_hat: psis::pareto_k(ratios),
        elbo,
        elbo_se: (var / s).sqrt(),
        iw_elbo,
        draws: ratios.len(),
    }
}
