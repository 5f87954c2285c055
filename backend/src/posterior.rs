//! Reading a fitted guide: draws and per-site summaries.

use dfdx::tensor::NoneTape;

use crate::data::{Batch, DimSpec};
use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::upload_all;
use crate::guide::Guide;
use crate::latent::LatentSpec;
use crate::model::{Model, TrackedSpec};
use crate::passes::{draws_per_pass, ranges};

/// Summary of one latent site, each vector with one entry per element of the site (row-major).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSummary {
    /// The site's (or tracked value's) name.
    pub name: &'static str,
    /// Its shape (a local site's starts with the data's rows).
    pub shape: Vec<usize>,
    /// The mean of the draws.
    pub mean: Vec<f32>,
    /// The sample standard deviation of the draws (n − 1 in the denominator).
    pub sd: Vec<f32>,
    /// The median of the draws.
    pub median: Vec<f32>,
    /// The 5% quantile of the draws.
    pub q05: Vec<f32>,
    /// The 95% quantile of the draws.
    pub q95: Vec<f32>,
}

/// Draws from the guide, per site `[draw][element]`, and their summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Posterior {
    /// One summary per site, in the model's order, then the tracked values.
    pub sites: Vec<SiteSummary>,
    /// The draws, in the order of `sites`: `draws[site][draw][element]`, on the site's support.
    pub draws: Vec<Vec<Vec<f32>>>,
}

impl Posterior {
    /// `draws` samples from `guide`, summarised per site, then the model's `track`ed values
    /// that read no data. Local sites (one value per data row) are left out: they need the
    /// data, as do tracked values that read it — [`Posterior::with_data`] has both.
    /// `draws` 0 is taken as 1 (a summary needs a draw).
    ///
    /// # Example
    ///
    /// ```
    /// // `Line`, `LineGuide` and `data` as in the example of `ravi::fit`, and `guide` fitted
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
    /// # let mut guide = LineGuide::new(&Cpu::seeded(0));
    /// # let opts = FitOptions { steps: 300, progress: false, ..FitOptions::default() };
    /// # ravi::fit(&mut guide, &data, &opts)?;
    /// let posterior = Posterior::from_guide(&guide, 4000);
    /// let a = posterior.site("a").unwrap(); // the slope
    /// println!("a: {:.2} ± {:.2}", a.mean[0], a.sd[0]);
    /// println!("90% of the draws within [{:.2}, {:.2}]", a.q05[0], a.q95[0]);
    /// assert_eq!(posterior.draws[0].len(), 4000); // draws of `a`, the model's first site
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_guide<G: Guide<D>, D: Backend>(guide: &G, draws: usize) -> Self {
        let none = Batch::empty(guide.params().device(), G::Model::inputs().len());
        Self::drawn(guide, draws, &none, false)
    }

    /// [`Posterior::from_guide`] with the local latent sites and every tracked value, those
    /// that read `data` too (a site or value per data row has shape `[rows, ..]`, its rows
    /// those of `data`; an amortized guide draws them for any rows). Drawn in passes, so
    /// many rows stay within memory.
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
        let draws = draws.max(1);
        let rows = batch.rows();
        // local sites have a value per row of the data: only a posterior given data has them
        let latents: Vec<(usize, &LatentSpec)> = G::Model::latents()
            .iter()
            .enumerate()
            .filter(|(_, l)| with_data || !l.local)
            .collect();
        let tracked: Vec<&TrackedSpec> = G::Model::tracked_specs()
            .iter()
            .filter(|t| with_data || !t.reads_data)
            .collect();
        let mut flats = vec![Vec::new(); latents.len() + tracked.len()];
        // Draws in passes: a pass holds every row, as many draws as the budget allows.
        for pass in ranges(draws, draws_per_pass(rows, draws)) {
            let sample = guide.sample::<NoneTape>(pass.len(), batch, Estimator::Standard, false);
            // Summaries and draws are in the site's own space, not the guide's.
            for (flat, (i, spec)) in flats.iter_mut().zip(&latents) {
                let u = sample.latents[*i].as_vec();
                for event in u.chunks(spec.unconstrained_numel().max(1)) {
                    flat.extend(spec.constrain(event));
                }
            }
            let values = match with_data {
                true => G::Model::tracked(sample.latents, batch),
                false => G::Model::tracked_globals(sample.latents, batch),
            };
            for (flat, t) in flats[latents.len()..].iter_mut().zip(values) {
                flat.extend(t.as_vec());
            }
        }
        let mut post = Posterior {
            sites: Vec::new(),
            draws: Vec::new(),
        };
        let mut flats = flats.into_iter();
        for (_, spec) in &latents {
            let flat = flats.next().expect("one per kept site");
            let (shape, numel) = match spec.local {
                true => {
                    let shape = std::iter::once(rows).chain(spec.shape.iter().copied());
                    (shape.collect(), rows * spec.numel())
                }
                false => (spec.shape.to_vec(), spec.numel()),
            };
            post.push(spec.name, shape, &flat, numel);
        }
        for (spec, flat) in tracked.into_iter().zip(flats) {
            let shape: Vec<usize> = spec
                .dims
                .iter()
                .map(|d| match d {
                    DimSpec::Rows => rows,
                    DimSpec::Fixed(n) => *n,
                })
                .collect();
            let numel = shape.iter().product();
            post.push(spec.name, shape, &flat, numel);
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

    /// The summary of the site (or tracked value) called `name`; `None` if there is none.
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
    // q outside [0, 1] is taken at the nearest end (a NaN q gives NaN), never past the draws
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
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
