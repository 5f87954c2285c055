//! The importance-weighted bound (Burda, Grosse & Salakhutdinov 2016): for each data row,
//! log (1/K Σ_k p(x, z_k) / q(z_k)) with z_k drawn from the guide. It lies between the ELBO
//! (K = 1) and log p(x), and rises towards log p(x) as K grows.
//!
//! It is a bound per row, so every latent site must be local (one value per row) or a
//! model `param`, and every site's density must split by rows
//! ([`Model::log_joint_rows`]).

use dfdx::prelude::*;
use dfdx::tensor::NoneTape;

use crate::data::Batch;
use crate::device::{Backend, Tape};
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::model::{Model, ModelData};

/// Why `M` has no importance-weighted bound, if it has none: a global latent site.
pub fn check_supported<M: Model>() -> Result<(), FitError> {
    match M::latents()
        .iter()
        .find(|l| !l.local && l.param.is_none())
    {
        Some(l) => Err(FitError::Unsupported(format!(
            "the importance-weighted bound is per data row, but the latent site `{}` of model {} is global (declare it per row, `[N, ..]`, or as a `param`)",
            l.name,
            M::NAME
        ))),
        None => Ok(()),
    }
}

/// The bound of each row of `batch` with `particles` = K draws per row: `(rows,)`, unscaled.
/// The guide's log q enters with its full reparametrized gradient (the standard estimator;
/// the path derivative would bias the IWAE gradient).
pub fn iwae_rows<G, D, T>(
    guide: &G,
    batch: &Batch<D>,
    particles: usize,
) -> Result<Tensor<(usize,), f32, D, T>, FitError>
where
    G: Guide<D>,
    D: Backend,
    T: Tape<D>,
{
    check_supported::<G::Model>()?;
    let draw = guide.sample::<T>(particles, batch, Estimator::Standard, false);
    let mut log_w = match draw.local_log_q {
        Some(q) => q.negate(),
        None => {
            return Err(FitError::Unsupported(format!(
                "model {} has no local latent sites: its importance-weighted bound is its evidence",
                G::Model::NAME
            )))
        }
    };
    // The guide's global term is the point masses of `param`s: log q = 0, but it carries
    // their tape, which must reach the loss.
    let global = draw.log_q * 0.0;
    let rows = batch.rows();
    log_w = log_w + global.broadcast_like::<(usize, usize), Axis<1>>(&(particles, rows));
    for (site, term) in G::Model::log_joint_rows::<D, T>(draw.latents, batch) {
        match term {
            Some(t) => log_w = log_w + t,
            None => {
                return Err(FitError::Unsupported(format!(
                    "the density of site `{site}` of model {} does not split by data rows, so it has no importance-weighted bound",
                    G::Model::NAME
                )))
            }
        }
    }
    Ok(log_w.logsumexp::<(usize,), Axis<0>>() - (particles as f32).ln())
}

/// The importance-weighted bound on log p(data) with `k` draws per row, summed over all
/// rows, at the relaxation `temperature` (1 unless the model was fitted annealed). Rows
/// are taken in chunks so that a large `k` stays within memory.
///
/// # Example
///
/// ```
/// use ravi::prelude::*;
///
/// model! {
///     net Enc(x: [B, 1]) -> [B, 2] { Linear(1, 2) }
///     /// One latent per row: z ~ N(0, 1), x ~ N(2 z, 0.5).
///     model Latent(x: [N, 1]) {
///         z ~ Normal(0.0, 1.0) [N, 1];
///         x ~ Normal(z * 2.0, 0.5);
///     }
/// }
/// guide! { guide Encoder for Latent { z ~ Amortized(Enc(x)); } }
///
/// let data = LatentData { x: Array::from_rows(&[[0.5f32], [-1.0], [2.0]])? };
/// let guide = Encoder::new(&Cpu::seeded(0));
/// let elbo = ravi::elbo(&guide, &data, 2000)?;
/// let bound = ravi::iwae(&guide, &data, 100, 1.0)?; // K = 100 draws per row
/// assert!(bound > elbo, "{bound} ≤ {elbo}"); // tighter: closer to log p(x)
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn iwae<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    k: usize,
    temperature: f32,
) -> Result<f64, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    if k == 0 {
        return Err(FitError::Options(
            "k 0: the importance-weighted bound needs at least 1 draw per row".into(),
        ));
    }
    let rows = crate::guide::checked_rows(guide, data)?;
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    let chunk = crate::passes::rows_per_pass(k, rows);
    let mut total = 0.0f64;
    let mut start = 0;
    while start < rows {
        let idx: Vec<usize> = (start..(start + chunk).min(rows)).collect();
        start += idx.len();
        let batch = Batch::upload(guide.params().device(), specs, &arrays, Some(&idx), rows)
            .with_temperature(temperature);
        let per_row = iwae_rows::<G, D, NoneTape>(guide, &batch, k)?;
        total += per_row.as_vec().into_iter().map(f64::from).sum::<f64>();
    }
    Ok(total)
}
