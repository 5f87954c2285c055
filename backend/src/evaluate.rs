//! The ELBO and its gradient at a guide's current state, outside a fit.

use dfdx::prelude::*;
use dfdx::tensor::{NoneTape, OwnedTape};

use crate::data::Batch;
use crate::device::Backend;
use crate::elbo::{elbo_particles, elbo_terms, sum_terms};
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::guide::{checked_rows, upload_all};
use crate::model::{Model, ModelData};

/// The ELBO of `guide` on all of `data`, averaged over `particles` draws (in chunks, so a
/// large count stays within memory). Returned in f64 for comparison with exact values.
pub fn elbo<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
) -> Result<f64, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    elbo_at(guide, data, particles, 1.0)
}

/// [`elbo`] at the relaxation `temperature` (for a model fitted with an annealed one).
pub fn elbo_at<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
    temperature: f32,
) -> Result<f64, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let draws = draws_at(guide, data, particles, temperature)?;
    Ok(draws.iter().sum::<f64>() / draws.len().max(1) as f64)
}

/// One ELBO estimate per draw, log p(x, z) − log q(z) with z ~ q: their mean is
/// [`elbo`], their spread gives its Monte Carlo standard error.
pub fn elbo_draws<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
) -> Result<Vec<f64>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    draws_at(guide, data, particles, 1.0)
}

fn draws_at<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    particles: usize,
    temperature: f32,
) -> Result<Vec<f64>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    if particles == 0 {
        return Err(FitError::Options(
            "particles 0: an ELBO estimate needs at least 1 draw".into(),
        ));
    }
    let batch = upload_all(guide, data, temperature)?;
    const CHUNK: usize = 250;
    let mut out = Vec::with_capacity(particles);
    while out.len() < particles {
        let s = CHUNK.min(particles - out.len());
        // The path-derivative value of log q is the exact density of the draw wherever a
        // family can evaluate one.
        let v = elbo_particles::<G, D, NoneTape>(guide, &batch, s, 1.0, Estimator::PathDerivative);
        out.extend(v.as_vec().into_iter().map(f64::from));
    }
    Ok(out)
}

/// One Monte Carlo estimate of the ELBO's gradient with respect to every guide parameter
/// (in the store's order), on the rows `batch` of `data` (all rows when `None`) with the
/// likelihood scaled to the whole data, as a fit step computes it. For studying estimators:
/// call it repeatedly at one guide state to measure the gradient's variance.
pub fn elbo_gradient<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    batch: Option<&[usize]>,
    particles: usize,
    estimator: Estimator,
) -> Result<Vec<Vec<f32>>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    if particles == 0 {
        return Err(FitError::Options(
            "particles 0: a gradient estimate needs at least 1 draw".into(),
        ));
    }
    let rows = checked_rows(guide, data)?;
    let batch_rows = batch.map_or(rows, <[usize]>::len);
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    let uploaded = Batch::upload(guide.params().device(), specs, &arrays, batch, rows);
    let scale = rows as f32 / batch_rows.max(1) as f32;
    let terms =
        elbo_terms::<G, D, OwnedTape<f32, D>>(guide, &uploaded, particles, scale, estimator, true);
    let grads = sum_terms(terms).mean::<(), _>().backward();
    // a constant (a frame) has no gradient: zeros, as the engine reports it
    let store = guide.params();
    Ok(store
        .ids()
        .map(|id| match store.is_constant(id) {
            true => vec![0.0; store.get(id).shape().0],
            false => grads.get(store.get(id)).as_vec(),
        })
        .collect())
}
