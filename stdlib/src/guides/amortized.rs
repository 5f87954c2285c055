//! Amortized guides for local sites: `z ~ Amortized(Encoder(x))`. An encoder net maps each
//! data row to the parameters of that row's q(z | x), so one set of weights serves every
//! row, minibatches included (Kingma & Welling 2014).
//!
//! | the site's prior | the encoder gives, per value | q(z | x) |
//! |---|---|---|
//! | real (Normal, ...) | location, then ρ (scale = softplus ρ + floor) | Normal |
//! | RelaxedBernoulli | logits | RelaxedBernoulli, in logit space |
//! | RelaxedOneHotCategorical | logits, K per event | concrete, in log-ratio space |
//!
//! The draws are in the guide's unconstrained space like every family's: a relaxed
//! Bernoulli value y ∈ (0, 1) is drawn as its logit u = (logits + L)/τ, L ~ Logistic(0, 1),
//! whose log density, log τ + l − τu − 2 softplus(l − τu), is exact in f32 where y itself
//! would round to 0 or 1 (the model scores its prior in the same space).

use dfdx::prelude::*;
use ravi_backend::ops::{softplus, split_columns};
use ravi_backend::{traced, Backend, Estimator, ParamId, ParamStore, Particles, Rows, Tape};

use super::held;
use super::rows::{gaussian_rows, NormalPrior};
use super::SCALE_FLOOR;
use crate::nn::{forward_rows, glorot_init, Layer};

/// What q(z | x) is for each value of the site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalKind {
    /// A Normal per value: the encoder gives a location, then ρ (scale softplus ρ + floor).
    Gaussian,
    /// At this temperature, or at the batch's (`temperature` in the DSL) when `None`.
    RelaxedBernoulli {
        /// The temperature, or `None` for the batch's.
        temperature: Option<f32>,
    },
    /// Concrete (Gumbel-softmax) events of `classes` components each, drawn as their
    /// additive log-ratio coordinates (K − 1 per event; see
    /// [`crate::bijectors::SoftmaxSimplex`]).
    Concrete {
        /// The temperature, or `None` for the batch's.
        temperature: Option<f32>,
        /// K, the components of each event.
        classes: usize,
    },
}

impl LocalKind {
    /// Encoder outputs per value of the site.
    pub fn outputs_per_value(self) -> usize {
        match self {
            LocalKind::Gaussian => 2,
            LocalKind::RelaxedBernoulli { .. } | LocalKind::Concrete { .. } => 1,
        }
    }
}

/// An amortized guide of a local site (`z ~ Amortized(Encoder(x))`): a net of each row of
///  an input, whose weights are the guide's parameters, gives q(z | x) of that row's values.
#[derive(Debug, Clone)]
pub struct Amortized {
    layers: &'static [Layer],
    encoder: ParamId,
    /// Values of the site per row.
    per_row: usize,
    kind: LocalKind,
    /// The site's prior when it is Normal with numbers: a Gaussian encoder's closed-form
    /// KL then replaces log q under [`Estimator::AnalyticKl`].
    kl_prior: Option<NormalPrior>,
}

impl Amortized {
    /// Registers the encoder's weights (Glorot-uniform from the store's device) under
    /// `{name}.encoder`.
    pub fn build<D: Backend>(
        params: &mut ParamStore<D>,
        name: &str,
        layers: &'static [Layer],
        per_row: usize,
        kind: LocalKind,
    ) -> Self {
        let n: usize = layers.iter().map(Layer::num_params).sum();
        let dev = params.device().clone();
        let u: Tensor<(usize,), f32, D> = dev.sample_uniform_like(&(n,));
        let mut draws = u.as_vec().into_iter();
        let init = glorot_init(layers, &mut || draws.next().unwrap_or(0.5));
        Amortized {
            layers,
            encoder: params.add(format!("{name}.encoder"), init),
            per_row,
            kind,
            kl_prior: None,
        }
    }

    /// The site's Normal prior, for a Gaussian encoder's closed-form KL under
    /// [`Estimator::AnalyticKl`] (other kinds have none and ignore it).
    pub fn with_kl_prior(mut self, prior: Option<NormalPrior>) -> Self {
        self.kl_prior = prior;
        self
    }

    /// The parameter holding the encoder's weights (the host engine steps it in place).
    pub fn encoder(&self) -> ParamId {
        self.encoder
    }

    /// What q(z | x) is for each value.
    pub fn kind(&self) -> LocalKind {
        self.kind
    }

    /// `particles` draws of the site for each row of the flat input `x` (rows × features,
    /// row-major): the values
    /// `(particles, rows · per_row)` (row-major) and log q per particle and row under
    /// `estimator` (the analytic entropy where the kind has one, else the standard).
    pub fn sample<D: Backend, T: Tape<D>>(
        &self,
        params: &ParamStore<D>,
        particles: usize,
        x: Tensor<(usize,), f32, D>,
        temperature: f32,
        estimator: Estimator,
    ) -> (Particles<D, T>, Rows<D, T>) {
        let features = match self.layers.first() {
            Some(Layer::Linear { inputs, .. }) => *inputs,
            _ => x.shape().0 / self.per_row.max(1),
        };
        let rows = x.shape().0 / features.max(1);
        let x = x.reshape_like(&(rows, features));
        let k = self.per_row;
        let (s, full) = (particles, (particles, rows, k));
        let out = forward_rows(self.layers, x, traced::<D, T>(params, self.encoder));
        let dev = params.device().clone();
        match self.kind {
            LocalKind::Gaussian => {
                let mut parts = split_columns(out, &[k, k]).into_iter();
                let (loc, rho) = (
                    parts.next().expect("two blocks"),
                    parts.next().expect("two blocks"),
                );
                gaussian_rows(
                    loc,
                    softplus(rho) + SCALE_FLOOR,
                    particles,
                    estimator,
                    self.kl_prior,
                )
            }
            LocalKind::RelaxedBernoulli { temperature: fixed } => {
                let tau = fixed.unwrap_or(temperature);
                let u01: Tensor<(usize, usize, usize), f32, D> = dev.sample_uniform_like(&full);
                let u01 = u01.clamp(1e-7, 1.0 - 1e-7);
                // L = log U − log(1 − U) ~ Logistic(0, 1)
                let logistic = u01.clone().ln() - (u01.negate() + 1.0).ln();
                let held = held(&out);
                let logits = out.broadcast_like::<_, Axis<0>>(&full);
                let at = match estimator {
                    // log q with the encoder held: the gradient flows through the draw only
                    Estimator::PathDerivative => {
                        held.broadcast_like::<_, Axis<0>>(&full).retaped::<T>()
                    }
                    _ => logits.retaped::<T>(),
                };
                // The draw takes the logits' own tape (the encoder's ops).
                let u = (logits + logistic) / tau;
                let log_q = crate::dist::RelaxedBernoulli::log_prob_logit_space(
                    u.retaped::<T>(),
                    crate::dist::Arg::Scalar(tau),
                    crate::dist::Arg::Tensor(at),
                )
                .sum::<(usize, usize), Axis<2>>();
                (u.reshape_like(&(s, rows * k)), log_q)
            }
            LocalKind::Concrete {
                temperature: fixed,
                classes,
            } => {
                let tau = fixed.unwrap_or(temperature);
                let events = rows * k / classes;
                let flat = (s * events, classes);
                let ev = (s, events, classes);
                let held_logits = held(&out)
                    .broadcast_like::<_, Axis<0>>(&full)
                    .reshape_like(&ev);
                let logits = out.broadcast_like::<_, Axis<0>>(&full).reshape_like(&flat);
                let u01: Tensor<(usize, usize), f32, D> = dev.sample_uniform_like(&flat);
                // g = −log(−log U) ~ Gumbel(0, 1)
                let gumbel = u01.clamp(1e-20, 1.0 - 1e-7).ln().negate().ln().negate();
                let at = match estimator {
                    Estimator::PathDerivative => held_logits.retaped::<T>(),
                    _ => logits.retaped::<T>().reshape_like(&ev),
                };
                // The draw takes the logits' own tape (the encoder's ops).
                let log_y = ((logits + gumbel) / tau).log_softmax::<Axis<1>>();
                let u = crate::bijectors::log_ratio(log_y.retaped::<T>());
                let taus: Tensor<(usize, usize, usize), f32, D> = dev.ones_like(&ev) * tau;
                let per_event = crate::dist::RelaxedOneHotCategorical::log_prob_alr_events(
                    log_y.reshape_like(&ev),
                    taus.retaped::<T>(),
                    at,
                );
                let log_q = per_event
                    .reshape_like(&(s, rows, events / rows.max(1)))
                    .sum::<(usize, usize), Axis<2>>();
                (u.reshape_like(&(s, events * (classes - 1))), log_q)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ravi_backend::Cpu;

    static ENCODER: [Layer; 1] = [Layer::Linear {
        inputs: 1,
        outputs: 2,
    }];

    /// Every estimator's gradient of E[−log q] (with the draws kept on the tape, as the
    /// model keeps them) is the entropy's: for ρ's bias, Σ over rows and particles of
    /// σ'(ρ)/σ = sigmoid(ρ)/σ.
    #[test]
    fn estimators_agree_on_the_entropy_gradient() {
        let dev = Cpu::seed_from_u64(0);
        let mut store = ParamStore::new(&dev);
        let a = Amortized::build(&mut store, "z", &ENCODER, 1, LocalKind::Gaussian);
        let id = store.ids().next().expect("the encoder");
        // loc = 0, ρ = 0.3 x − 1
        store.set(id, &[0.0, 0.3, 0.0, -1.0]);
        let x: Tensor<(usize,), f32, Cpu> = dev.tensor_from_vec(vec![0.5, -1.0], (2,));
        let s = 20_000;
        let exact: f64 = [0.5f64, -1.0]
            .iter()
            .map(|x| {
                let rho = 0.3 * x - 1.0;
                let sigma = (1.0 + rho.exp()).ln() + f64::from(SCALE_FLOOR);
                (1.0 / (1.0 + (-rho).exp())) / sigma
            })
            .sum::<f64>()
            * s as f64;
        for est in [
            Estimator::Standard,
            Estimator::AnalyticEntropy,
            Estimator::PathDerivative,
        ] {
            let (z, lq) = a.sample::<Cpu, OwnedTape<f32, Cpu>>(&store, s, x.clone(), 1.0, est);
            let g = (lq.sum::<(), _>().negate() + z.sum::<(), _>() * 0.0).backward();
            let g = g.get(store.get(id)).as_vec();
            assert!(
                (f64::from(g[3]) / exact - 1.0).abs() < 0.03,
                "{est:?}: ∂(−log q)/∂ρ-bias {} vs {exact}",
                g[3]
            );
        }
    }

    /// For every kind, the standard and path-derivative estimators give the same expected
    /// gradient of E[h(z) − log q(z)] (here h(z) = −0.1 Σ z²), and the gradient reaches
    /// the encoder.
    #[test]
    fn estimators_agree_for_every_kind() {
        static ENC: [Layer; 2] = [
            Layer::Linear {
                inputs: 2,
                outputs: 6,
            },
            Layer::Tanh,
        ];
        for kind in [
            LocalKind::Gaussian,
            LocalKind::RelaxedBernoulli {
                temperature: Some(0.7),
            },
            LocalKind::Concrete {
                temperature: Some(0.7),
                classes: 3,
            },
        ] {
            let per_row = if kind == LocalKind::Gaussian { 3 } else { 6 };
            let dev = Cpu::seed_from_u64(1);
            let mut store = ParamStore::new(&dev);
            let a = Amortized::build(&mut store, "z", &ENC, per_row, kind);
            let id = store.ids().next().expect("the encoder");
            let x: Tensor<(usize,), f32, Cpu> =
                dev.tensor_from_vec(vec![0.5, -1.0, 1.2, 0.3], (4,));
            let grad = |est: Estimator| -> Vec<f32> {
                let (z, lq) =
                    a.sample::<Cpu, OwnedTape<f32, Cpu>>(&store, 40_000, x.clone(), 1.0, est);
                let h = z.square().sum::<(), _>() * -0.1;
                let g = (lq.sum::<(), _>().negate() + h).backward();
                g.get(store.get(id))
                    .as_vec()
                    .iter()
                    .map(|v| v / 40_000.0)
                    .collect()
            };
            let (standard, path) = (grad(Estimator::Standard), grad(Estimator::PathDerivative));
            let scale = standard.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(scale > 1e-3, "{kind:?}: no gradient reaches the encoder");
            for (s, p) in standard.iter().zip(&path) {
                assert!(
                    (s - p).abs() < 0.05 * scale + 0.01,
                    "{kind:?}: standard {s} vs path derivative {p}"
                );
            }
        }
    }
}
