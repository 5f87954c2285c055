//! The model's log joint and its gradient at given points of the guide's unconstrained
//! coordinates, several points in one batched pass (the points are the particles): on the
//! dfdx graph ([`Graph`], any model and device) or on the host engine ([`Host`], where the
//! guide has a program for it).

use dfdx::prelude::*;
use dfdx::tensor::{NoneTape, OwnedTape};

use crate::data::{Array, Batch};
use crate::device::Backend;
use crate::latent::LatentSpec;
use crate::model::Model;
use crate::passes::{ranges, rows_per_pass};

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

/// The model's own code on the dfdx graph, the rows taken in passes of bounded memory
/// ([`crate::passes`]): each pass uploads its rows, and the data is not copied whole.
pub(crate) struct Graph<'a, M: Model, D: Backend> {
    pub dev: D,
    pub arrays: Vec<&'a Array>,
    pub rows: usize,
    pub layout: Layout,
    pub model: std::marker::PhantomData<M>,
    /// Whether every site but the latent priors splits by rows: a property of the model's
    /// code, found at the first evaluation that has several passes.
    pub splits_by_rows: std::cell::OnceCell<bool>,
}

impl<M: Model, D: Backend> LogJoint for Graph<'_, M, D> {
    fn evaluate(&self, points: &[Vec<f64>]) -> Vec<Evaluation> {
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(CHUNK) {
            out.extend(self.evaluate_chunk(chunk));
        }
        out
    }
}

/// The host engine's passes ([`crate::fused`]).
pub(crate) struct Host<'a> {
    pub engine: std::cell::RefCell<crate::fused::model_engine::ModelEngine>,
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

impl<M: Model, D: Backend> Graph<'_, M, D> {
    /// The rows of one pass on the device.
    fn upload(&self, rows: std::ops::Range<usize>) -> Batch<D> {
        let idx: Vec<usize> = rows.collect();
        Batch::upload(&self.dev, M::inputs(), &self.arrays, Some(&idx), self.rows)
    }

    /// The passes over the rows for `p` points: several when every site that is not a
    /// latent site's prior splits by rows (`Model::log_joint_rows`), else one over all.
    fn passes(
        &self,
        values: &[Tensor<(usize, usize), f32, D>],
        p: usize,
    ) -> Vec<std::ops::Range<usize>> {
        let passes = ranges(self.rows, rows_per_pass(p, self.rows));
        if passes.len() == 1 {
            return passes;
        }
        let splits = *self.splits_by_rows.get_or_init(|| {
            let latent = |name: &str| M::latents().iter().any(|l| l.name == name);
            let untaped: Vec<_> = values.iter().map(|t| t.retaped::<NoneTape>()).collect();
            let batch = self.upload(passes[0].clone());
            M::log_joint_rows::<D, NoneTape>(untaped, &batch)
                .into_iter()
                .all(|(name, rows)| rows.is_some() || latent(name))
        });
        match splits {
            true => passes,
            false => ranges(self.rows, self.rows),
        }
    }

    /// log p(x, z) and ∂/∂z at each point of `points` (full points in [`Layout`] order),
    /// on all the rows, unscaled: the latent sites' priors from the first pass, the rows'
    /// terms summed over the passes. Latent sites with rows (local sites) are not
    /// supported: the initialisation only searches models whose latent sites are all global.
    fn evaluate_chunk(&self, points: &[Vec<f64>]) -> Vec<Evaluation> {
        let (dev, layout) = (&self.dev, &self.layout);
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
        let latent = |name: &str| M::latents().iter().any(|l| l.name == name);
        let mut per_site: Vec<(&'static str, Vec<f64>)> = Vec::new();
        let mut site_grads: Vec<Vec<f32>> =
            layout.sizes.iter().map(|&n| vec![0.0; p * n]).collect();
        let mut any_term = false;
        for (c, rows) in self.passes(&values, p).into_iter().enumerate() {
            let batch = self.upload(rows);
            let taped: Vec<_> = values
                .iter()
                .map(|t| t.retaped::<OwnedTape<f32, D>>())
                .collect();
            // the priors once, the rows' terms in every pass
            let terms: Vec<_> = M::log_joint_terms(taped, &batch, 1.0)
                .into_iter()
                .filter(|(name, _)| c == 0 || !latent(name))
                .collect();
            for (name, t) in &terms {
                let v = t.retaped::<NoneTape>().as_vec();
                match per_site.iter_mut().find(|(n, _)| n == name) {
                    Some((_, acc)) => acc.iter_mut().zip(v).for_each(|(a, v)| *a += f64::from(v)),
                    None => per_site.push((name, v.into_iter().map(f64::from).collect())),
                }
            }
            // Every coordinate takes part (with weight 0 where the model does not read it),
            // so each has a gradient even when a `param` feeds no site.
            let present = values
                .iter()
                .map(|t| t.retaped::<OwnedTape<f32, D>>().sum::<(usize,), Axis<1>>() * 0.0);
            let mut total: Option<crate::particles::PerParticle<D, OwnedTape<f32, D>>> = None;
            any_term |= !terms.is_empty();
            for t in terms.into_iter().map(|(_, t)| t).chain(present) {
                total = Some(match total {
                    None => t,
                    Some(acc) => acc + t,
                });
            }
            let Some(total) = total else { continue };
            let grads = total.sum::<(), _>().backward();
            for (acc, t) in site_grads.iter_mut().zip(&values) {
                acc.iter_mut()
                    .zip(grads.get(t).as_vec())
                    .for_each(|(a, g)| *a += g);
            }
        }
        if !any_term {
            // a model with no terms at all: every point has log joint 0
            return points
                .iter()
                .map(|x| Evaluation {
                    value: 0.0,
                    gradient: vec![0.0; x.len()],
                    culprit: None,
                })
                .collect();
        }
        (0..p)
            .map(|i| {
                let value: f64 = per_site.iter().map(|(_, v)| v[i]).sum();
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
}
