//! Reading a fitted guide: draws and per-site summaries.

use dfdx::shapes::HasShape;
use dfdx::tensor::NoneTape;

use crate::data::{Batch, DimSpec};
use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::upload_all;
use crate::guide::Guide;
use crate::model::Model;

/// Summary of one latent site, each vector with one entry per element of the site (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSummary {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
    pub median: Vec<f32>,
    pub q05: Vec<f32>,
    pub q95: Vec<f32>,
}

/// Draws from the guide, per site `[draw][element]`, and their summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    pub sites: Vec<SiteSummary>,
    pub draws: Vec<Vec<Vec<f32>>>,
}

impl Posterior {
    /// `draws` samples from `guide`, summarised per site, then the model's `track`ed values
    /// that read no data. Local sites (one value per data row) are left out: they need the
    /// data, and an amortized guide's draws of them are read with [`crate::Guide::sample`]
    /// on a batch; so are tracked values that read the data ([`Posterior::with_data`]).
    /// `draws` 0 is taken as 1 (a summary needs a draw).
    pub fn from_guide<G: Guide<D>, D: Backend>(guide: &G, draws: usize) -> Self {
        let none = Batch::empty(guide.params().device(), G::Model::inputs().len());
        Self::drawn(guide, draws, &none, false)
    }

    /// [`Posterior::from_guide`] with every tracked value, those that read `data` too (a
    /// value per data row has one entry per row of `data`).
    pub fn with_data<G: Guide<D>, D: Backend>(
        guide: &G,
        data: &<G::Model as Model>::Data,
        draws: usize,
    ) -> Result<Self, FitError> {
        let batch = upload_all(guide, data, 1.0)?;
        Ok(Self::drawn(guide, draws, &batch, true))
    }

    fn drawn<G: Guide<D>, D: Backend>(
        guide: &G,
        draws: usize,
        batch: &Batch<D>,
        with_data: bool,
    ) -> Self {
        let sample = guide.sample::<NoneTape>(draws.max(1), batch, Estimator::Standard, false);
        let latents = sample.latents;
        let mut post = Posterior {
            sites: Vec::new(),
            draws: Vec::new(),
        };
        for (spec, t) in G::Model::latents().iter().zip(&latents) {
            if spec.local {
                continue;
            }
            // Summaries and draws are in the site's own space, not the guide's.
            let flat: Vec<f32> = t
                .as_vec()
                .chunks(spec.unconstrained_numel().max(1))
                .flat_map(|u| spec.constrain(u))
                .collect();
            post.push(spec.name, spec.shape.to_vec(), &flat, spec.numel());
        }
        let specs = G::Model::tracked_specs();
        let (values, kept): (Vec<_>, Vec<_>) = if with_data {
            (G::Model::tracked(latents, batch), specs.iter().collect())
        } else {
            (
                G::Model::tracked_globals(latents, batch),
                specs.iter().filter(|s| !s.reads_data).collect(),
            )
        };
        for (spec, t) in kept.into_iter().zip(values) {
            let numel = t.shape().1;
            let shape = spec
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Rows => batch.rows(),
                    DimSpec::Fixed(n) => *n,
                })
                .collect();
            post.push(spec.name, shape, &t.as_vec(), numel);
        }
        post
    }

    /// One site's draws (`numel` values per draw, concatenated) and their summary.
    fn push(&mut self, name: &'static str, shape: Vec<usize>, flat: &[f32], numel: usize) {
        let per_draw: Vec<Vec<f32>> = flat.chunks(numel.max(1)).map(<[f32]>::to_vec).collect();
        let mut s = SiteSummary {
            name,
            shape,
            mean: Vec::with_capacity(numel),
            sd: Vec::with_capacity(numel),
            median: Vec::with_capacity(numel),
            q05: Vec::with_capacity(numel),
            q95: Vec::with_capacity(numel),
        };
        for j in 0..numel {
            let mut col: Vec<f64> = per_draw.iter().map(|r| f64::from(r[j])).collect();
            let n = col.len() as f64;
            let mean = col.iter().sum::<f64>() / n;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            col.sort_by(f64::total_cmp);
            s.mean.push(mean as f32);
            s.sd.push(var.sqrt() as f32);
            s.median.push(quantile(&col, 0.5) as f32);
            s.q05.push(quantile(&col, 0.05) as f32);
            s.q95.push(quantile(&col, 0.95) as f32);
        }
        self.sites.push(s);
        self.draws.push(per_draw);
    }

    pub fn site(&self, name: &str) -> Option<&SiteSummary> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// Each draw with every site flattened and concatenated in the model's order (then the
    /// tracked values).
    pub fn joint_draws(&self) -> Vec<Vec<f64>> {
        let n = self.draws.first().map_or(0, Vec::len);
        (0..n)
            .map(|i| {
                self.draws
                    .iter()
                    .flat_map(|site| site[i].iter().map(|&v| f64::from(v)))
                    .collect()
            })
            .collect()
    }

    /// The sample covariance (n − 1 in the denominator) of [`Posterior::joint_draws`].
    pub fn covariance(&self) -> Vec<Vec<f64>> {
        covariance(&self.joint_draws())
    }
}

/// The sample covariance of rows of equal length.
pub fn covariance(rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let d = rows.first().map_or(0, Vec::len);
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let centred: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect())
        .collect();
    let denom = (n - 1.0).max(1.0);
    (0..d)
        .map(|i| {
            (0..d)
                .map(|j| centred.iter().map(|c| c[i] * c[j]).sum::<f64>() / denom)
                .collect()
        })
        .collect()
}

/// Linear interpolation between order statistics (the "type 7" rule of R and numpy).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    #[test]
    fn covariance_of_a_known_sample() {
        let rows = vec![vec![1.0, 2.0], vec![3.0, 2.0], vec![2.0, 5.0]];
        let c = super::covariance(&rows);
        // means 2, 3; deviations (-1,-1), (1,-1), (0,2)
        assert_eq!(c, vec![vec![1.0, 0.0], vec![0.0, 3.0]]);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(super::quantile(&v, 0.5), 3.0);
        assert!((super::quantile(&v, 0.05) - 1.2).abs() < 1e-12);
        assert!((super::quantile(&v, 0.95) - 4.8).abs() < 1e-12);
    }
}
