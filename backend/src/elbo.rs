//! The evidence lower bound, with the particles as the leading tensor axis: one batched
//! pass through guide and model, never a loop over samples.

#[allow(unused_imports)]
use dfdx::prelude::*;
use dfdx::tensor::NoneTape;

use crate::data::Batch;
use crate::device::{Backend, Tape};
use crate::model::{Guide, Model, PerParticle};

/// log p(x, z_s) − log q(z_s) for each particle z_s ~ q (the Monte Carlo `Trace` ELBO).
///
/// For reparametrized families log q(z_s) = log N(ε_s) − log|det ∂z/∂ε|, so the gradient of
/// the guide's term is exact in ε and the estimator's noise comes from the model's terms.
pub fn elbo_particles<G, D, T>(guide: &G, batch: &Batch<D>, particles: usize, scale: f32) -> PerParticle<D, T>
where
    G: Guide<D>,
    D: Backend,
    T: Tape<D>,
{
    let draw = guide.sample::<T>(particles);
    let terms = G::Model::log_joint_terms(draw.latents, batch, scale);
    terms
        .into_iter()
        .fold(draw.log_q.negate(), |acc, (_, t)| acc.try_add(t).expect("per-particle shapes agree"))
}

/// Per-site mean log density over `particles` draws: used to name the site at fault when
/// the ELBO is not finite.
pub fn site_terms<G: Guide<D>, D: Backend>(guide: &G, batch: &Batch<D>, particles: usize) -> Vec<(&'static str, f32)> {
    let draw = guide.sample::<NoneTape>(particles);
    let mut out = vec![("log q (the guide)", draw.log_q.mean::<(), _>().array())];
    for (name, t) in G::Model::log_joint_terms(draw.latents, batch, 1.0) {
        out.push((name, t.mean::<(), _>().array()));
    }
    out
}
