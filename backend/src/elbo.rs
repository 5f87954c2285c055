//! The evidence lower bound, with the particles as the leading tensor axis: one batched
//! pass through guide and model, never a loop over samples.

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;

use crate::data::Batch;
use crate::device::{Backend, Tape};
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::model::Model;
use crate::particles::PerParticle;

/// The name under which the guide's −log q term appears among the ELBO's terms.
pub const GUIDE_TERM: &str = "log q (the guide)";

/// The terms of log p(x, z_s) − log q(z_s) for each particle z_s ~ q: first −log q, then
/// one log density per model site. Their sum is the Monte Carlo (`Trace`) ELBO.
///
/// For reparametrized families log q(z_s) = log N(ε_s) − log|det ∂z/∂ε|, so the gradient of
/// the guide's term is exact in ε and the estimator's noise comes from the model's terms.
///
/// `weighted` applies the guide's prior and entropy weights (a fit's objective); without it the terms
/// are those of the true ELBO (what [`crate::elbo()`] reports).
pub fn elbo_terms<G, D, T>(
    guide: &G,
    batch: &Batch<D>,
    particles: usize,
    scale: f32,
    estimator: Estimator,
    weighted: bool,
) -> Vec<(&'static str, PerParticle<D, T>)>
where
    G: Guide<D>,
    D: Backend,
    T: Tape<D>,
{
    let draw = guide.sample::<T>(particles, batch, estimator, weighted);
    // Local sites' log q is per row: summed over the batch and scaled like their prior.
    let log_q = match draw.local_log_q {
        Some(rows) => draw.log_q + rows.sum::<(usize,), Axis<1>>() * scale,
        None => draw.log_q,
    };
    let mut terms = vec![(GUIDE_TERM, log_q.negate())];
    let site_terms = G::Model::log_joint_terms_rewritten(draw.latents, draw.rewrites, batch, scale);
    if weighted {
        let weights = guide.prior_weights();
        let latents = G::Model::latents();
        terms.extend(site_terms.into_iter().map(|(name, t)| {
            match latents.iter().position(|l| l.name == name) {
                Some(i) if weights[i] != 1.0 => (name, t * weights[i]),
                _ => (name, t),
            }
        }));
    } else {
        terms.extend(site_terms);
    }
    terms
}

/// The sum of [`elbo_terms`]: one ELBO estimate per particle.
pub fn sum_terms<D: Backend, T: Tape<D>>(
    terms: Vec<(&'static str, PerParticle<D, T>)>,
) -> PerParticle<D, T> {
    let mut it = terms.into_iter().map(|(_, t)| t);
    let first = it.next().expect("the guide term is always present");
    it.fold(first, |acc, t| {
        acc.try_add(t).expect("per-particle shapes agree")
    })
}

/// [`elbo_terms`] summed, unweighted: the ELBO itself.
pub fn elbo_particles<G, D, T>(
    guide: &G,
    batch: &Batch<D>,
    particles: usize,
    scale: f32,
    estimator: Estimator,
) -> PerParticle<D, T>
where
    G: Guide<D>,
    D: Backend,
    T: Tape<D>,
{
    sum_terms(elbo_terms(guide, batch, particles, scale, estimator, false))
}

/// Untaped views of the terms (they share storage, nothing is copied): kept beside a taped
/// pass so that a non-finite ELBO can be traced to the site that caused it in that pass.
pub fn untaped_views<D: Backend, T: Tape<D>>(
    terms: &[(&'static str, PerParticle<D, T>)],
) -> Vec<(&'static str, PerParticle<D, NoneTape>)> {
    terms
        .iter()
        .map(|(n, t)| (*n, t.retaped::<NoneTape>()))
        .collect()
}

/// The first term holding a NaN or an infinity, with that value.
pub fn first_non_finite<D: Backend>(
    terms: &[(&'static str, PerParticle<D, NoneTape>)],
) -> Option<(&'static str, f32)> {
    terms.iter().find_map(|(n, t)| {
        t.as_vec()
            .into_iter()
            .find(|v| !v.is_finite())
            .map(|v| (*n, v))
    })
}
