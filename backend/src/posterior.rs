//! Reading a fitted guide: draws and per-site summaries.

use dfdx::tensor::NoneTape;

use crate::data::Batch;
use crate::device::Backend;
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::model::Model;

/// Summary of one latent site, each vector with one entry per element of the site (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSummary {
    pub name: &'static str,
    pub shape: Vec<usize>,
    pub mean: Vec<f32>,
    pub sd: Vec<f32>,
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
    /// `draws` samples from `guide`, summarised per site. Local sites (one value per data
    /// row) are left out: they need the data, and an amortized guide's draws of them are
    /// read with [`crate::Guide::sample`] on a batch.
    pub fn from_guide<G: Guide<D>, D: Backend>(guide: &G, draws: usize) -> Self {
        let dev = guide.params().device();
        let none = Batch::empty(dev, G::Model::inputs().len());
        let sample = guide.sample::<NoneTape>(draws.max(1), &none, Estimator::Standard, false);
        let mut sites = Vec::new();
        let mut all = Vec::new();
        for (spec, t) in G::Model::latents().iter().zip(sample.latents) {
            if spec.local {
                continue;
            }
            let d = spec.numel();
            // Summaries and draws are in the site's own space, not the guide's.
            let flat: Vec<f32> = t
                .as_vec()
                .chunks(spec.unconstrained_numel().max(1))
                .flat_map(|u| spec.constrain(u))
                .collect();
            let per_draw: Vec<Vec<f32>> = flat.chunks(d).map(<[f32]>::to_vec).collect();
            let mut s = SiteSummary {
                name: spec.name,
                shape: spec.shape.to_vec(),
                mean: Vec::with_capacity(d),
                sd: Vec::with_capacity(d),
                q05: Vec::with_capacity(d),
                q95: Vec::with_capacity(d),
            };
            for j in 0..d {
                let mut col: Vec<f64> = per_draw.iter().map(|r| f64::from(r[j])).collect();
                let n = col.len() as f64;
                let mean = col.iter().sum::<f64>() / n;
                let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
                col.sort_by(f64::total_cmp);
                s.mean.push(mean as f32);
                s.sd.push(var.sqrt() as f32);
                s.q05.push(quantile(&col, 0.05) as f32);
                s.q95.push(quantile(&col, 0.95) as f32);
            }
            sites.push(s);
            all.push(per_draw);
        }
        Posterior { sites, draws: all }
    }

    pub fn site(&self, name: &str) -> Option<&SiteSummary> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// Each draw with every site flattened and concatenated in the model's order.
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
fn quantile(sorted: &[f64], q: f64) -> f64 {
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
