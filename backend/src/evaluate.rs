//! The ELBO and its gradient at a guide's current state, outside a fit.

use dfdx::prelude::*;
use dfdx::tensor::{NoneTape, OwnedTape};

use crate::data::Batch;
use crate::device::Backend;
use crate::elbo::{elbo_particles, elbo_terms, sum_terms};
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::{checked_rows, upload_all, Guide, GuideSample};
use crate::model::{Model, ModelData};
use crate::passes::{draws_per_pass, ranges, rows_per_pass};

/// The ELBO of `guide` on all of `data`, averaged over `particles` draws. Evaluated in
/// passes over draws and rows ([`crate::passes`]), so many rows and draws stay within
/// memory, with each row's terms summed in f64 (a sum of 10,000 image likelihoods in f32
/// is off by most of a nat per image).
///
/// # Example
///
/// ```
/// // `Line`, `LineGuide` and `data` as in the example of `ravi::fit`
/// # use ravi::prelude::*;
/// # model! {
/// #     model Line(x: [N], y: [N]) {
/// #         a ~ Normal(0.0, 10.0);
/// #         b ~ Normal(0.0, 10.0);
/// #         y ~ Normal(a * x + b, 0.5);
/// #     }
/// # }
/// # guide! { guide LineGuide for Line { (a, b) ~ FullRank; } }
/// # let data = LineData {
/// #     x: Array::vector(vec![0.0, 1.0, 2.0, 3.0]),
/// #     y: Array::vector(vec![0.9, 3.1, 4.8, 7.2]),
/// # };
/// let mut guide = LineGuide::new(&Cpu::seeded(0));
/// let before = ravi::elbo(&guide, &data, 1000)?;
/// let opts = FitOptions { steps: 300, progress: false, ..FitOptions::default() };
/// ravi::fit(&mut guide, &data, &opts)?;
/// let after = ravi::elbo(&guide, &data, 1000)?;
/// assert!(after > before, "{before} → {after}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    let rows = checked_rows(guide, data)?;
    let latents = G::Model::latents();
    let global = latents.iter().any(|l| !l.local && l.param.is_none());
    let local = latents.iter().any(|l| l.local);
    // A draw of global and local latents together is one joint draw over all rows: it
    // cannot be cut into passes by rows.
    if !(global && local) {
        if let Some(draws) = by_row_passes(guide, data, rows, particles, temperature, global)? {
            return Ok(draws);
        }
    }
    whole_rows(guide, data, rows, particles, temperature)
}

/// The ELBO draws in passes over the rows, each row's terms summed in f64, or `None`
/// where a site's density does not split by rows. Without global latents each pass draws
/// the latents of its own rows; with global latents only, one draw serves every pass (its
/// sites' prior and log q are counted once).
fn by_row_passes<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    rows: usize,
    particles: usize,
    temperature: f32,
    shared_draw: bool,
) -> Result<Option<Vec<f64>>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    let global_site = |name: &str| {
        G::Model::latents()
            .iter()
            .any(|l| l.name == name && !l.local && l.param.is_none())
    };
    let upload = |r: &std::ops::Range<usize>| {
        let idx: Vec<usize> = r.clone().collect();
        Batch::upload(guide.params().device(), specs, &arrays, Some(&idx), rows)
            .with_temperature(temperature)
    };
    let mut out = Vec::with_capacity(particles);
    // up to 64 draws of 64 rows per pass: the passes neither few-row nor few-draw
    for draws in ranges(particles, draws_per_pass(rows.min(64), 250)) {
        let s = draws.len();
        let row_ranges = ranges(rows, rows_per_pass(s, rows));
        let mut totals = vec![0.0f64; s];
        let mut shared = None;
        for (c, r) in row_ranges.iter().enumerate() {
            let batch = upload(r);
            // The path-derivative value of log q is the exact density of the draw wherever
            // a family can evaluate one.
            let fresh;
            let draw = match (&shared, shared_draw) {
                (Some(d), _) => d,
                (None, true) => shared.insert(sample::<G, D>(guide, s, &batch)),
                (None, false) => {
                    fresh = sample::<G, D>(guide, s, &batch);
                    &fresh
                }
            };
            if c == 0 {
                add_per_particle(&mut totals, &draw.log_q.as_vec(), -1.0);
                if shared_draw {
                    let terms = G::Model::log_joint_terms(draw.latents.clone(), &batch, 1.0);
                    for (_, t) in terms.iter().filter(|(n, _)| global_site(n)) {
                        add_per_particle(&mut totals, &t.as_vec(), 1.0);
                    }
                }
            }
            if let Some(q) = &draw.local_log_q {
                add_rows(&mut totals, &q.as_vec(), -1.0);
            }
            for (name, term) in G::Model::log_joint_rows(draw.latents.clone(), &batch) {
                match term {
                    Some(t) => add_rows(&mut totals, &t.as_vec(), 1.0),
                    None if global_site(name) => {}
                    None => return Ok(None),
                }
            }
        }
        out.extend(totals);
    }
    Ok(Some(out))
}

/// The ELBO draws over all rows at once (a joint draw of global and local latents, or a
/// site that does not split by rows): as many draws per pass as the budget allows.
fn whole_rows<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    rows: usize,
    particles: usize,
    temperature: f32,
) -> Result<Vec<f64>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let batch = upload_all(guide, data, temperature)?;
    let mut out = Vec::with_capacity(particles);
    for draws in ranges(particles, draws_per_pass(rows, 250)) {
        let v = elbo_particles::<G, D, NoneTape>(
            guide,
            &batch,
            draws.len(),
            1.0,
            Estimator::PathDerivative,
        );
        out.extend(v.as_vec().into_iter().map(f64::from));
    }
    Ok(out)
}

fn sample<G: Guide<D>, D: Backend>(
    guide: &G,
    particles: usize,
    batch: &Batch<D>,
) -> GuideSample<D, NoneTape> {
    guide.sample::<NoneTape>(particles, batch, Estimator::PathDerivative, false)
}

/// `totals[p] += sign · v[p]`.
fn add_per_particle(totals: &mut [f64], v: &[f32], sign: f64) {
    for (t, &v) in totals.iter_mut().zip(v) {
        *t += sign * f64::from(v);
    }
}

/// `totals[p] += sign · Σ_r v[p, r]` for `v` laid out particle-major, in f64.
fn add_rows(totals: &mut [f64], v: &[f32], sign: f64) {
    let per = v.len() / totals.len().max(1);
    if per == 0 {
        return;
    }
    for (t, row) in totals.iter_mut().zip(v.chunks(per)) {
        *t += sign * row.iter().map(|&x| f64::from(x)).sum::<f64>();
    }
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
