//! The posterior predictive: for new inputs, what each observed site's distribution says,
//! averaged over draws from the guide.

use dfdx::tensor::NoneTape;

use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::Guide;
use crate::model::Model;

/// One observed site's predictive.
#[derive(Debug, Clone, PartialEq)]
pub enum SitePredictive {
    /// Categorical: the class probabilities of each element, averaged over draws
    /// (`probs[element][class]`).
    Classes {
        site: &'static str,
        probs: Vec<Vec<f64>>,
    },
    /// Bernoulli: P(y = 1) of each element, averaged over draws.
    Binary { site: &'static str, probs: Vec<f64> },
    /// Normal (and other location families): the mean of each element's predictive and, for
    /// Normal, its sd √(E[scale²] + Var[loc]); for others the sd of the location over draws.
    Continuous {
        site: &'static str,
        mean: Vec<f64>,
        sd: Vec<f64>,
    },
}

impl SitePredictive {
    pub fn site(&self) -> &'static str {
        match self {
            SitePredictive::Classes { site, .. }
            | SitePredictive::Binary { site, .. }
            | SitePredictive::Continuous { site, .. } => site,
        }
    }
}

/// The predictive of every observed site of `guide`'s model on `data` (whose observed
/// inputs are not read: pass zeros of the right shape), from `draws` draws in chunks.
pub fn predictive<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    draws: usize,
) -> Result<Vec<SitePredictive>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    predictive_at(guide, data, draws, 1.0)
}

/// [`predictive`] at the relaxation `temperature` (for a model fitted with an annealed one).
pub fn predictive_at<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    draws: usize,
    temperature: f32,
) -> Result<Vec<SitePredictive>, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let batch = crate::guide::upload_all(guide, data, temperature)?;
    const CHUNK: usize = 50;
    // Per site: Σ over draws of the statistic, elementwise, and Σ of squares where needed.
    type Sums = (&'static str, &'static str, usize, Vec<f64>, Vec<f64>, usize);
    let mut sums: Vec<Sums> = Vec::new();
    let mut done = 0;
    while done < draws.max(1) {
        let s = CHUNK.min(draws.max(1) - done);
        let sample = guide.sample::<NoneTape>(s, &batch, Estimator::Standard, false);
        for (k, obs) in G::Model::observed_args::<D, NoneTape>(sample.latents, &batch)
            .into_iter()
            .enumerate()
        {
            let values: Vec<Vec<f32>> = obs.args.iter().map(|a| a.as_vec()).collect();
            let Some(first) = values.first() else {
                continue;
            };
            let width = first.len() / s;
            if sums.len() <= k {
                sums.push((
                    obs.site,
                    obs.distribution,
                    obs.classes,
                    vec![0.0; width],
                    vec![0.0; width],
                    0,
                ));
            }
            let entry = &mut sums[k];
            for p in 0..s {
                let row = |a: usize| &values[a][p * width..(p + 1) * width];
                match obs.distribution {
                    "Categorical" => {
                        // softmax per element
                        let logits = row(0);
                        let k_classes = entry.2;
                        for (j, chunk) in logits.chunks(k_classes).enumerate() {
                            let m = chunk.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                            let z: f64 = chunk.iter().map(|&v| f64::from(v - m).exp()).sum();
                            for (c, &v) in chunk.iter().enumerate() {
                                entry.3[j * k_classes + c] += f64::from(v - m).exp() / z;
                            }
                        }
                    }
                    "Bernoulli" => {
                        for (j, &v) in row(0).iter().enumerate() {
                            entry.3[j] += f64::from(v);
                        }
                    }
                    "Bernoulli_logits" => {
                        for (j, &v) in row(0).iter().enumerate() {
                            entry.3[j] += 1.0 / (1.0 + f64::from(-v).exp());
                        }
                    }
                    "Normal" => {
                        let (loc, scale) = (row(0), row(1));
                        for j in 0..width {
                            let (l, sc) = (f64::from(loc[j]), f64::from(scale[j]));
                            entry.3[j] += l;
                            entry.4[j] += l * l + sc * sc;
                        }
                    }
                    _ => {
                        for (j, &v) in row(0).iter().enumerate() {
                            entry.3[j] += f64::from(v);
                            entry.4[j] += f64::from(v) * f64::from(v);
                        }
                    }
                }
            }
            entry.5 += s;
        }
        done += s;
    }
    Ok(sums
        .into_iter()
        .map(|(site, dist, k, sum, sq, n)| {
            let n = n.max(1) as f64;
            match dist {
                "Categorical" => SitePredictive::Classes {
                    site,
                    probs: sum
                        .chunks(k)
                        .map(|c| c.iter().map(|v| v / n).collect())
                        .collect(),
                },
                "Bernoulli" | "Bernoulli_logits" => SitePredictive::Binary {
                    site,
                    probs: sum.iter().map(|v| v / n).collect(),
                },
                _ => {
                    let mean: Vec<f64> = sum.iter().map(|v| v / n).collect();
                    let sd = sq
                        .iter()
                        .zip(&mean)
                        .map(|(q, m)| (q / n - m * m).max(0.0).sqrt())
                        .collect();
                    SitePredictive::Continuous { site, mean, sd }
                }
            }
        })
        .collect())
}
