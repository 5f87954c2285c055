//! The model's log joint and its gradient at given points of the guide's unconstrained
//! coordinates, several points in one batched pass (the points are the particles): on the
//! dfdx graph ([`Graph`], any model and device) or on the host engine ([`Host`], where the
//! guide has a program for it).

use dfdx::prelude::*;
use dfdx::tensor::OwnedTape;

use crate::data::Batch;
use crate::device::Backend;
use crate::latent::LatentSpec;
use crate::model::Model;

/// A point's log joint, its gradient (in the layout of the points), and the first site
/// whose log density is not finite there (when the log joint is not).
#[derive(Debug, Clone)]
pub(crate) struct Evaluation {
    pub value: f64,
    pub gradient: Vec<f64>,
    pub culprit: Option<&'static str>,
}

/// Each latent site's unconstrained values, concatenated in the model's order: where a
/// site's coordinates sit in a point.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub offsets: Vec<usize>,
    pub sizes: Vec<usize>,
}

impl Layout {
    pub fn of(latents: &[LatentSpec]) -> Layout {
        let sizes: Vec<usize> = latents
            .iter()
            .map(LatentSpec::unconstrained_numel)
            .collect();
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut at = 0;
        for s in &sizes {
            offsets.push(at);
            at += s;
        }
        Layout { offsets, sizes }
    }

    pub fn len(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The site that coordinate `k` belongs to.
    pub fn site_of(&self, k: usize) -> usize {
        self.offsets
            .iter()
            .rposition(|&o| o <= k)
            .expect("a coordinate of some site")
    }
}

/// Evaluates the log joint at points.
pub(crate) trait LogJoint {
    fn evaluate(&self, points: &[Vec<f64>]) -> Vec<Evaluation>;
}

/// The model's own code on the dfdx graph, all rows of the data uploaded once.
pub(crate) struct Graph<M: Model, D: Backend> {
    pub dev: D,
    pub batch: Batch<D>,
    pub layout: Layout,
    pub model: std::marker::PhantomData<M>,
}

impl<M: Model, D: Backend> LogJoint for Graph<M, D> {
    fn evaluate(&self, points: &[Vec<f64>]) -> Vec<Evaluation> {
        evaluate::<M, D>(&self.dev, &self.batch, &self.layout, points)
    }
}

/// The host engine's passes ([`crate::fused`]).
pub(crate) struct Host<'a> {
    pub engine: std::cell::RefCell<crate::fused::step::Fused>,
    pub specs: &'static [crate::data::InputSpec],
    pub arrays: Vec<&'a crate::data::Array>,
    pub sizes: Vec<usize>,
}

impl LogJoint for Host<'_> {
    fn evaluate(&self, points: &[Vec<f64>]) -> Vec<Evaluation> {
        let mut engine = self.engine.borrow_mut();
        let data = (self.specs, self.arrays.as_slice());
        points
            .chunks(CHUNK)
            .flat_map(|chunk| engine.log_joint(data, chunk, &self.sizes))
            .map(|(value, gradient, culprit)| Evaluation {
                value,
                gradient,
                culprit,
            })
            .collect()
    }
}

/// The most points evaluated in one pass (their tensors are `points × numel` per site, and
/// the model's intermediate values `points × rows`).
const CHUNK: usize = 64;

/// log p(x, z) and ∂/∂z at each point of `points` (full points in [`Layout`] order), on all
/// of `batch`'s rows, unscaled. Latent sites with rows (local sites) are not supported: the
/// initialisation only searches models whose latent sites are all global.
pub(crate) fn evaluate<M: Model, D: Backend>(
    dev: &D,
    batch: &Batch<D>,
    layout: &Layout,
    points: &[Vec<f64>],
) -> Vec<Evaluation> {
    let mut out = Vec::with_capacity(points.len());
    for chunk in points.chunks(CHUNK) {
        out.extend(evaluate_chunk::<M, D>(dev, batch, layout, chunk));
    }
    out
}

fn evaluate_chunk<M: Model, D: Backend>(
    dev: &D,
    batch: &Batch<D>,
    layout: &Layout,
    points: &[Vec<f64>],
) -> Vec<Evaluation> {
    let p = points.len();
    let values: Vec<Tensor<(usize, usize), f32, D>> = layout
        .offsets
        .iter()
        .zip(&layout.sizes)
        .map(|(&off, &n)| {
            let v: Vec<f32> = points
                .iter()
                .flat_map(|x| x[off..off + n].iter().map(|&v| v as f32))
                .collect();
            dev.tensor_from_vec(v, (p, n))
        })
        .collect();
    let taped = values
        .iter()
        .map(|t| t.retaped::<OwnedTape<f32, D>>())
        .collect();
    let terms = M::log_joint_terms(taped, batch, 1.0);
    let per_site: Vec<(&'static str, Vec<f32>)> = terms
        .iter()
        .map(|(name, t)| (*name, t.retaped::<dfdx::tensor::NoneTape>().as_vec()))
        .collect();
    // Every coordinate takes part (with weight 0 where the model does not read it), so
    // each has a gradient even when a `param` feeds no site.
    let mut total: Option<crate::particles::PerParticle<D, OwnedTape<f32, D>>> = None;
    let present = values
        .iter()
        .map(|t| t.retaped::<OwnedTape<f32, D>>().sum::<(usize,), Axis<1>>() * 0.0);
    for t in terms.into_iter().map(|(_, t)| t).chain(present) {
        total = Some(match total {
            None => t,
            Some(acc) => acc + t,
        });
    }
    let Some(total) = total else {
        // a model with no terms at all: every point has log joint 0
        return points
            .iter()
            .map(|x| Evaluation {
                value: 0.0,
                gradient: vec![0.0; x.len()],
                culprit: None,
            })
            .collect();
    };
    let grads = total.sum::<(), _>().backward();
    let site_grads: Vec<Vec<f32>> = values.iter().map(|t| grads.get(t).as_vec()).collect();
    (0..p)
        .map(|i| {
            let value: f64 = per_site.iter().map(|(_, v)| f64::from(v[i])).sum();
            let mut gradient = vec![0.0; layout.len()];
            for ((g, &off), &n) in site_grads.iter().zip(&layout.offsets).zip(&layout.sizes) {
                for (out, &v) in gradient[off..off + n]
                    .iter_mut()
                    .zip(&g[i * n..(i + 1) * n])
                {
                    *out = f64::from(v);
                }
            }
            let culprit = (!value.is_finite())
                .then(|| {
                    per_site
                        .iter()
                        .find(|(_, v)| !v[i].is_finite())
                        .map(|(name, _)| *name)
                })
                .flatten();
            Evaluation {
                value,
                gradient,
                culprit,
            }
        })
        .collect()
}
