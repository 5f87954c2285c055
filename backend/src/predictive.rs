//! The posterior predictive: for new inputs, what each observed site's distribution says,
//! averaged over draws from the guide.

use dfdx::tensor::NoneTape;

use rand::SeedableRng;

use crate::data::{check_inputs, fill_unobserved, Array, Batch};
use crate::density::Moments;
use crate::device::Backend;
use crate::error::FitError;
use crate::estimator::Estimator;
use crate::guide::{check_rows, Guide};
use crate::latent::Support;
use crate::model::{Model, ModelData, ObservedArgs, Predicts};

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
/// mean and sd over draws), on `data`, from `draws` draws of the guide. The observed inputs
/// are not read: pass [`Array::none`](crate::Array::none) for them to predict at new
/// inputs. Draws of the sites themselves, with any quantile: [`predictive_draws`].
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
/// // new points: `y` is observed, so it is not given
/// let new = LineData { x: Array::vector(vec![4.0, 5.0]), y: Array::none() };
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

    fn draw(&self, a: [f64; 3], _: &mut dyn rand::RngCore) -> f64 {
        a[0]
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
    let mut sums: Vec<Sums> = Vec::new();
    in_passes(guide, data, draws, temperature, |s, sites| {
        for (k, obs) in sites.into_iter().enumerate() {
            let values: Vec<Vec<f32>> = obs.args.iter().map(|a| a.as_vec()).collect();
            if sums.len() <= k {
                let width = values.first().map_or(0, |v| v.len() / s);
                sums.push(Sums::new(obs.site, obs.predicts, width));
            }
            for draw in per_draw(&values, s) {
                sums[k].add(&draw);
            }
        }
    })?;
    Ok(sums.into_iter().filter_map(Sums::finish).collect())
}

/// Draws of one observed site (or `track`ed value), `draws[d][element]`, its elements in
/// row-major order of the site's shape (a Categorical's draws are class indices).
#[derive(Debug, Clone, PartialEq)]
pub struct SiteDraws {
    /// The site's name.
    pub site: &'static str,
    /// One vector of the site's values per draw.
    pub draws: Vec<Vec<f32>>,
}

impl SiteDraws {
    /// The values of element `j` over the draws.
    fn column(&self, j: usize) -> Vec<f64> {
        self.draws.iter().map(|d| f64::from(d[j])).collect()
    }

    fn per_element(&self, f: impl Fn(Vec<f64>) -> f64) -> Vec<f64> {
        let width = self.draws.first().map_or(0, Vec::len);
        (0..width).map(|j| f(self.column(j))).collect()
    }

    /// The mean of each element over the draws.
    pub fn mean(&self) -> Vec<f64> {
        self.per_element(|c| c.iter().sum::<f64>() / c.len().max(1) as f64)
    }

    /// The standard deviation of each element over the draws.
    pub fn sd(&self) -> Vec<f64> {
        self.per_element(|c| {
            let n = c.len() as f64;
            let m = c.iter().sum::<f64>() / n;
            (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt()
        })
    }

    /// The `q`-quantile of each element over the draws (linear interpolation between order
    /// statistics, NumPy's default), `q` in [0, 1] (one outside is taken at the nearest
    /// end, as [`crate::Posterior::quantile`] takes it).
    pub fn quantile(&self, q: f64) -> Vec<f64> {
        self.per_element(|mut c| {
            c.sort_by(f64::total_cmp);
            crate::posterior::quantile(&c, q)
        })
    }
}

/// Predictive draws of every observed site and tracked value, in the model's order.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictiveDraws {
    /// One entry per site with draws.
    pub sites: Vec<SiteDraws>,
}

impl PredictiveDraws {
    /// The draws of the site or tracked value `name`.
    pub fn site(&self, name: &str) -> Option<&SiteDraws> {
        self.sites.iter().find(|s| s.site == name)
    }
}

/// The posterior predictive as draws: at each of `draws` draws θ of the guide, one draw of
/// every observed site from its distribution at θ (a class from a Categorical's
/// probabilities, a component then a value from a mixture), and every `track`ed value at
/// θ, on `data` (pass [`Array::none`](crate::Array::none) for the observed inputs to predict
/// at new inputs). The site draws come from a generator seeded with `seed`, the guide's from
/// its device. Sites with no per-value distribution (a density of vectors or of a whole
/// site) have none.
///
/// # Example
///
/// ```
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
/// let new = LineData { x: Array::vector(vec![4.0, 5.0]), y: Array::none() };
/// let pred = ravi::predictive_draws(&guide, &new, 1000, 0)?;
/// let y = pred.site("y").expect("y is observed");
/// let (low, high) = (y.quantile(0.05), y.quantile(0.95));
/// assert!(low[0] < y.mean()[0] && y.mean()[0] < high[0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn predictive_draws<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    draws: usize,
    seed: u64,
) -> Result<PredictiveDraws, FitError>
where
    G: Guide<D>,
    D: Backend,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sites: Vec<SiteDraws> = Vec::new();
    in_passes(guide, data, draws, 1.0, |s, observed| {
        draw_sites(&mut sites, s, observed, &mut rng);
    })?;
    sites.retain(|s| !s.draws.is_empty());
    Ok(PredictiveDraws { sites })
}

/// One draw of a site's values given one posterior draw's arguments (`width` values each,
/// K per value for classes and mixtures); `None` where the site has no per-value draw.
fn draw_site(predicts: Predicts, args: &[&[f32]], rng: &mut dyn rand::RngCore) -> Option<Vec<f32>> {
    let arg = |i: usize, j: usize| args.get(i).map_or(0.0, |v| f64::from(v[j]));
    let uniform = |rng: &mut dyn rand::RngCore| rand::Rng::gen::<f64>(rng);
    // a class by its logits: the first whose cumulative softmax passes a uniform draw
    let class = |logits: &[f32], rng: &mut dyn rand::RngCore| {
        let top = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let w: Vec<f64> = logits.iter().map(|&l| f64::from(l - top).exp()).collect();
        let mut u = uniform(rng) * w.iter().sum::<f64>();
        w.iter()
            .position(|&wk| {
                u -= wk;
                u < 0.0
            })
            .unwrap_or(w.len().saturating_sub(1))
    };
    match predicts {
        Predicts::Classes(k) => Some(
            args[0]
                .chunks(k.max(1))
                .map(|logits| class(logits, rng) as f32)
                .collect(),
        ),
        Predicts::Binary(m) | Predicts::Moments(m) => {
            let width = args.first().map_or(0, |v| v.len());
            Some(
                (0..width)
                    .map(|j| m.draw([arg(0, j), arg(1, j), arg(2, j)], rng) as f32)
                    .collect(),
            )
        }
        Predicts::Mixture(m, k) => {
            let width = args.first().map_or(0, |v| v.len()) / k.max(1);
            Some(
                (0..width)
                    .map(|j| {
                        let c = class(&args[0][j * k..(j + 1) * k], rng);
                        let a = [1, 2, 3].map(|i| arg(i, j * k + c));
                        m.draw(a, rng) as f32
                    })
                    .collect(),
            )
        }
        Predicts::Nothing => None,
    }
}

/// Draws of the guide in passes that hold every row of `data` (a draw is joint over the
/// rows) and as many draws as the budget allows; for each pass, the number of draws and
/// every observed site's arguments then every tracked value (a point mass) at them.
fn in_passes<G, D>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    draws: usize,
    temperature: f32,
    mut visit: impl FnMut(usize, Vec<ObservedArgs<D, NoneTape>>),
) -> Result<(), FitError>
where
    G: Guide<D>,
    D: Backend,
{
    if draws == 0 {
        return Err(FitError::Options(
            "draws 0: a predictive needs at least 1 draw from the guide".into(),
        ));
    }
    let batch = upload_for_prediction(guide, data, temperature)?;
    for pass in crate::passes::ranges(draws, crate::passes::draws_per_pass(batch.rows(), 50)) {
        let s = pass.len();
        let sample = guide.sample::<NoneTape>(s, &batch, Estimator::Standard, false);
        visit(
            s,
            observed_and_tracked::<G::Model, D>(sample.latents, &batch),
        );
    }
    Ok(())
}

/// Every observed site's arguments at `latents`, then every tracked value as a point
/// mass (its predictive is its spread over draws).
fn observed_and_tracked<M: Model, D: Backend>(
    latents: Vec<crate::particles::Particles<D, NoneTape>>,
    batch: &Batch<D>,
) -> Vec<ObservedArgs<D, NoneTape>> {
    let tracked = M::tracked_specs()
        .iter()
        .zip(M::tracked::<D, NoneTape>(latents.clone(), batch))
        .map(|(spec, t)| ObservedArgs {
            site: spec.name,
            predicts: Predicts::Moments(&PointMass),
            args: vec![t],
        });
    let observed = M::observed_args::<D, NoneTape>(latents, batch);
    observed.into_iter().chain(tracked).collect()
}

/// Each of `s` draws' arguments of one site: `width` values of every argument per draw.
fn per_draw(values: &[Vec<f32>], s: usize) -> impl Iterator<Item = Vec<&[f32]>> {
    let width = values.first().map_or(0, |v| v.len() / s.max(1));
    (0..s).map(move |p| {
        values
            .iter()
            .map(|v| &v[p * width..(p + 1) * width])
            .collect()
    })
}

/// One draw of every site of `sites_args` at each of the pass's `s` draws, appended to
/// `sites` (in the same order, created on the first pass).
fn draw_sites<D: Backend>(
    sites: &mut Vec<SiteDraws>,
    s: usize,
    sites_args: Vec<ObservedArgs<D, NoneTape>>,
    rng: &mut dyn rand::RngCore,
) {
    for (k, obs) in sites_args.into_iter().enumerate() {
        let values: Vec<Vec<f32>> = obs.args.iter().map(|a| a.as_vec()).collect();
        if sites.len() <= k {
            sites.push(SiteDraws {
                site: obs.site,
                draws: Vec::new(),
            });
        }
        for args in per_draw(&values, s) {
            if let Some(d) = draw_site(obs.predicts, &args, rng) {
                sites[k].draws.push(d);
            }
        }
    }
}

/// `data` on the guide's device, each [`Array::none`](crate::Array::none) of an observed
/// input filled (its values are not read), checked as a fit checks it.
fn upload_for_prediction<G: Guide<D>, D: Backend>(
    guide: &G,
    data: &<G::Model as Model>::Data,
    temperature: f32,
) -> Result<Batch<D>, FitError> {
    if let Some(e) = guide.params().refusal() {
        return Err(FitError::Memory(e.clone()));
    }
    let (specs, arrays) = (G::Model::inputs(), data.arrays());
    let filled = fill_unobserved(G::Model::NAME, specs, &arrays)?;
    let arrays: Vec<&Array> = filled.iter().map(|a| a.as_ref()).collect();
    let rows = check_inputs(G::Model::NAME, specs, &arrays)?;
    check_rows(guide, rows)?;
    Ok(
        Batch::upload(guide.params().device(), specs, &arrays, None, rows)
            .with_temperature(temperature),
    )
}

/// The prior predictive as draws: every latent site drawn from its prior in turn (each
/// given the draws of the sites before it), then every observed site from its
/// distribution at those draws, and every `track`ed value; on `data` (pass
/// [`Array::none`](crate::Array::none) for the observed inputs), on the device `dev`, from
/// a generator seeded with `seed`. The latent sites' draws come first in the result, in
/// their own space. A model with a `param` (no prior: its value comes from a fit), an
/// `ordered` site or a prior over vectors or a whole site (Dirichlet, MultivariateNormal,
/// the layer priors) has no prior predictive here: a typed error names the site.
///
/// # Example
///
/// ```
/// # use ravi::prelude::*;
/// # model! {
/// #     model Line(x: [N], y: [N]) {
/// #         a ~ Normal(0.0, 10.0);
/// #         b ~ Normal(0.0, 10.0);
/// #         y ~ Normal(a * x + b, 0.5);
/// #     }
/// # }
/// let new = LineData { x: Array::vector(vec![0.0, 1.0]), y: Array::none() };
/// let prior = ravi::prior_predictive::<Line, _>(&Cpu::default(), &new, 2000, 0)?;
/// let a = prior.site("a").expect("latent sites come first");
/// assert!((a.sd()[0] - 10.0).abs() < 1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn prior_predictive<M, D>(
    dev: &D,
    data: &M::Data,
    draws: usize,
    seed: u64,
) -> Result<PredictiveDraws, FitError>
where
    M: Model,
    D: Backend,
{
    if draws == 0 {
        return Err(FitError::Options(
            "draws 0: a prior predictive needs at least 1 draw".into(),
        ));
    }
    let specs = M::latents();
    if let Some(l) = specs
        .iter()
        .find(|l| l.param.is_some() || l.support == Support::Ordered)
    {
        return Err(FitError::Unsupported(format!(
            "site `{}` of model {} is {}: it has no prior to draw from (its value comes from a fit)",
            l.name,
            M::NAME,
            if l.param.is_some() { "a `param`" } else { "`ordered`" }
        )));
    }
    let (inputs, arrays) = (M::inputs(), data.arrays());
    let filled = fill_unobserved(M::NAME, inputs, &arrays)?;
    let arrays: Vec<&Array> = filled.iter().map(|a| a.as_ref()).collect();
    let rows = check_inputs(M::NAME, inputs, &arrays)?;
    let batch = Batch::upload(dev, inputs, &arrays, None, rows);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut sites: Vec<SiteDraws> = specs
        .iter()
        .map(|l| SiteDraws {
            site: l.name,
            draws: Vec::with_capacity(draws),
        })
        .collect();
    let latents_numel: Vec<usize> = specs
        .iter()
        .map(|l| l.unconstrained_numel() * if l.local { rows } else { 1 })
        .collect();
    let mut observed_sites: Vec<SiteDraws> = Vec::new();
    for pass in crate::passes::ranges(draws, crate::passes::draws_per_pass(rows, 50)) {
        let s = pass.len();
        let mut latents: Vec<Vec<f32>> = latents_numel.iter().map(|&n| vec![0.0; s * n]).collect();
        let on_device = |latents: &[Vec<f32>]| -> Vec<crate::particles::Particles<D, NoneTape>> {
            latents
                .iter()
                .zip(&latents_numel)
                .map(|(v, &n)| dev.tensor_from_vec(v.clone(), (s, n)))
                .collect()
        };
        for (k, spec) in specs.iter().enumerate() {
            let prior = M::latent_args::<D, NoneTape>(on_device(&latents), &batch)
                .into_iter()
                .nth(k)
                .ok_or_else(|| no_prior(spec.name, M::NAME))?;
            let values: Vec<Vec<f32>> = prior.args.iter().map(|a| a.as_vec()).collect();
            let numel = latents_numel[k];
            for (p, args) in per_draw(&values, s).enumerate() {
                let x = match prior.predicts {
                    Predicts::Moments(_) | Predicts::Binary(_) => {
                        draw_site(prior.predicts, &args, &mut rng)
                    }
                    _ => None,
                }
                .ok_or_else(|| no_prior(spec.name, M::NAME))?;
                let u = spec
                    .unconstrain(&x)
                    .filter(|u| u.len() == numel)
                    .ok_or_else(|| {
                        FitError::Unsupported(format!(
                            "a prior draw of site `{}` of model {} is off its support",
                            spec.name,
                            M::NAME
                        ))
                    })?;
                latents[k][p * numel..(p + 1) * numel]
                    .iter_mut()
                    .zip(u)
                    .for_each(|(slot, v)| *slot = v as f32);
                sites[k].draws.push(x);
            }
        }
        let observed = observed_and_tracked::<M, D>(on_device(&latents), &batch);
        draw_sites(&mut observed_sites, s, observed, &mut rng);
    }
    sites.extend(observed_sites.into_iter().filter(|s| !s.draws.is_empty()));
    Ok(PredictiveDraws { sites })
}

fn no_prior(site: &str, model: &str) -> FitError {
    FitError::Unsupported(format!(
        "site `{site}` of model {model} has a prior over vectors or over the whole site: the prior predictive draws elementwise priors only"
    ))
}
