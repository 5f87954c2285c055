//! The posterior predictive: for new inputs, what each observed site's distribution says,
//! averaged over draws from the guide.

use dfdx::tensor::NoneTape;

use crate::density::Moments;
use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::{upload_all, Guide};
use crate::model::{Model, ObservedArgs, Predicts};

/// One observed site's predictive.
#[derive(Debug, Clone, PartialEq)]
pub enum SitePredictive {
    /// Categorical: the class probabilities of each element, averaged over draws
    /// (`probs[element][class]`).
    Classes {
        /// The observed site's name.
        site: &'static str,
        /// `probs[element][class]`.
        probs: Vec<Vec<f64>>,
    },
    /// Bernoulli: P(y = 1) of each element, averaged over draws.
    Binary {
        /// The observed site's name.
        site: &'static str,
        /// P(y = 1) of each element.
        probs: Vec<f64>,
    },
    /// Every other elementwise distribution: the mean of each element's predictive,
    /// E[mean(θ)], and its sd by the law of total variance, √(E[var(θ)] + Var[mean(θ)]),
    /// over draws θ from the guide, from the distribution's own moments (NaN where the
    /// distribution has no mean, as a Cauchy; ∞ where it is infinite).
    Continuous {
        /// The observed site's (or tracked value's) name.
        site: &'static str,
        /// Each element's predictive mean.
        mean: Vec<f64>,
        /// Each element's predictive sd.
        sd: Vec<f64>,
    },
}

impl SitePredictive {
    /// The name of the observed site (or tracked value) this predictive is of.
    pub fn site(&self) -> &'static str {
        match self {
            SitePredictive::Classes { site, .. }
            | SitePredictive::Binary { site, .. }
            | SitePredictive::Continuous { site, .. } => site,
        }
    }
}

/// The predictive of every observed site of `guide`'s model that has one per value (see
/// [`Predicts`]), then of every `track`ed value (as [`SitePredictive::Continuous`]: its
/// mean and sd over draws), on `data` (whose observed inputs are not read: pass zeros of the right
/// shape), from `draws` draws in chunks.
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
/// // new points: `y` is observed, so it is not read (zeros of the right shape)
/// let new = LineData { x: Array::vector(vec![4.0, 5.0]), y: Array::vector(vec![0.0, 0.0]) };
/// for p in ravi::predictive(&guide, &new, 1000)? {
///     if let ravi::SitePredictive::Continuous { site, mean, sd } = p {
///         assert_eq!((site, mean.len()), ("y", 2));
///         println!("{site}: {mean:?} ± {sd:?}");
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

/// A tracked value's "distribution" at one draw: the value itself, no spread (its
/// predictive sd is then the spread over draws).
struct PointMass;

impl Moments for PointMass {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        (a[0], 0.0)
    }
}

/// Running sums over draws for one site: Σ of the per-value statistic (class
/// probabilities, or means), Σ of squared means and Σ of variances.
struct Sums {
    site: &'static str,
    predicts: Predicts,
    first: Vec<f64>,
    squares: Vec<f64>,
    variances: Vec<f64>,
    draws: usize,
}

impl Sums {
    /// `width`: the values per draw of each argument (K per value for classes and
    /// mixtures).
    fn new(site: &'static str, predicts: Predicts, width: usize) -> Self {
        let width = match predicts {
            Predicts::Mixture(_, k) => width / k.max(1),
            _ => width,
        };
        Sums {
            site,
            predicts,
            first: vec![0.0; width],
            squares: vec![0.0; width],
            variances: vec![0.0; width],
            draws: 0,
        }
    }

    /// One draw's arguments, each `width` values (K per value for classes).
    fn add(&mut self, args: &[&[f32]]) {
        self.draws += 1;
        match self.predicts {
            Predicts::Classes(k) => {
                // softmax per value
                for (j, logits) in args[0].chunks(k).enumerate() {
                    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    let z: f64 = logits.iter().map(|&v| f64::from(v - m).exp()).sum();
                    for (c, &v) in logits.iter().enumerate() {
                        self.first[j * k + c] += f64::from(v - m).exp() / z;
                    }
                }
            }
            Predicts::Binary(moments) | Predicts::Moments(moments) => {
                for j in 0..self.first.len() {
                    let a: [f64; 3] =
                        std::array::from_fn(|i| args.get(i).map_or(0.0, |v| f64::from(v[j])));
                    let (mean, var) = moments.mean_variance(a);
                    self.first[j] += mean;
                    self.squares[j] += mean * mean;
                    self.variances[j] += var;
                }
            }
            Predicts::Mixture(moments, k) => {
                for j in 0..self.first.len() {
                    let logits = &args[0][j * k..(j + 1) * k];
                    let top = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    let w: Vec<f64> = logits.iter().map(|&l| f64::from(l - top).exp()).collect();
                    let total: f64 = w.iter().sum();
                    let (mut mean, mut second) = (0.0, 0.0);
                    for (c, w) in w.iter().enumerate() {
                        let a: [f64; 3] = std::array::from_fn(|i| {
                            args.get(i + 1).map_or(0.0, |v| f64::from(v[j * k + c]))
                        });
                        let (m, v) = moments.mean_variance(a);
                        mean += w / total * m;
                        second += w / total * (v + m * m);
                    }
                    self.first[j] += mean;
                    self.squares[j] += mean * mean;
                    self.variances[j] += second - mean * mean;
                }
            }
            Predicts::Nothing => {}
        }
    }

    fn finish(self) -> Option<SitePredictive> {
        let n = self.draws.max(1) as f64;
        let site = self.site;
        match self.predicts {
            Predicts::Classes(k) => Some(SitePredictive::Classes {
                site,
                probs: self
                    .first
                    .chunks(k)
                    .map(|c| c.iter().map(|v| v / n).collect())
                    .collect(),
            }),
            Predicts::Binary(_) => Some(SitePredictive::Binary {
                site,
                probs: self.first.iter().map(|v| v / n).collect(),
            }),
            Predicts::Moments(_) | Predicts::Mixture(..) => {
                let mean: Vec<f64> = self.first.iter().map(|v| v / n).collect();
                let sd = mean
                    .iter()
                    .zip(self.squares.iter().zip(&self.variances))
                    .map(|(m, (q, v))| (v / n + (q / n - m * m).max(0.0)).sqrt())
                    .collect();
                Some(SitePredictive::Continuous { site, mean, sd })
            }
            Predicts::Nothing => None,
        }
    }
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
    if draws == 0 {
        return Err(FitError::Options(
            "draws 0: a predictive needs at least 1 draw from the guide".into(),
        ));
    }
    let batch = upload_all(guide, data, temperature)?;
    // every pass holds all rows (a draw is joint over them): as many draws as fit
    let chunk = crate::passes::draws_per_pass(batch.rows(), 50);
    let mut sums: Vec<Sums> = Vec::new();
    let mut done = 0;
    while done < draws {
        let s = chunk.min(draws - done);
        let sample = guide.sample::<NoneTape>(s, &batch, Estimator::Standard, false);
        let tracked = G::Model::tracked_specs()
            .iter()
            .zip(G::Model::tracked::<D, NoneTape>(
                sample.latents.clone(),
                &batch,
            ))
            .map(|(spec, t)| ObservedArgs {
                site: spec.name,
                predicts: Predicts::Moments(&PointMass),
                args: vec![t],
            });
        let observed = G::Model::observed_args::<D, NoneTape>(sample.latents, &batch);
        for (k, obs) in observed.into_iter().chain(tracked).enumerate() {
            let values: Vec<Vec<f32>> = obs.args.iter().map(|a| a.as_vec()).collect();
            let width = values.first().map_or(0, |v| v.len() / s);
            if sums.len() <= k {
                sums.push(Sums::new(obs.site, obs.predicts, width));
            }
            for p in 0..s {
                let draw: Vec<&[f32]> = values
                    .iter()
                    .map(|v| &v[p * width..(p + 1) * width])
                    .collect();
                sums[k].add(&draw);
            }
        }
        done += s;
    }
    Ok(sums.into_iter().filter_map(Sums::finish).collect())
}
