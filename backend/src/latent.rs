//! What the model declares of its latent sites: their shapes, supports, priors' medians and
//! how a `param` or a net's weights start. The guide works in unconstrained coordinates;
//! [`LatentSpec::constrain`] and [`LatentSpec::unconstrain`] map between them.

/// Where a latent site's values live. The guide works on ℝ; the model maps its draws here
/// (and adds the log-determinant of that map to the site's log density).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Support {
    /// ℝ, the identity.
    Real,
    /// (0, ∞), through exp.
    Positive,
    /// (0, 1), through the logistic function.
    UnitInterval,
    /// (low, high), through low + (high − low) · logistic.
    Interval {
        /// The lower bound.
        low: f32,
        /// The upper bound.
        high: f32,
    },
    /// The simplex along the last axis: K − 1 unconstrained values per event u, through
    /// y = softmax([u, 0]) (the additive log-ratio map).
    Simplex,
    /// Increasing along the last axis: x₀ = u₀, x_k = x_{k−1} + e^{u_k}.
    Ordered,
}

impl Support {
    /// The constrained value of an unconstrained one (elementwise supports; see
    /// [`LatentSpec::constrain`] for a whole draw).
    pub fn constrain(&self, u: f32) -> f32 {
        let logistic = |u: f32| 1.0 / (1.0 + (-u).exp());
        match *self {
            Support::Real => u,
            Support::Positive => u.exp(),
            Support::UnitInterval => logistic(u),
            Support::Interval { low, high } => low + (high - low) * logistic(u),
            Support::Simplex | Support::Ordered => {
                panic!("a simplex or an ordered vector is constrained per event, by LatentSpec::constrain")
            }
        }
    }
}

/// A latent site as the model declares it.
#[derive(Debug, Clone, Copy)]
pub struct LatentSpec {
    /// The site's name.
    pub name: &'static str,
    /// The site's shape; for a local site, the shape of one row's value.
    pub shape: &'static [usize],
    /// Where its values live (the guide draws on ℝ; this maps them there).
    pub support: Support,
    /// A local site (`z ~ .. [N, k]`): one value per data row, drawn for the rows of each
    /// minibatch, its prior term scaled like the likelihood.
    pub local: bool,
    /// A `param` of the model: a point learned by the optimiser, with no prior and no
    /// guide family (the guide holds it as a point mass).
    pub param: Option<ParamInit>,
    /// The median of the site's prior in the guide's unconstrained coordinate, when the
    /// prior's arguments are numbers: where a search for the mode starts.
    pub prior_median: Option<f32>,
    /// The layers of the net call whose weights the site is: a fit starts such a site's
    /// locations Glorot-uniform, so that no two hidden units start alike.
    pub net: Option<&'static [InitBlock]>,
}

/// How a model `param` starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamInit {
    /// Every value the same.
    Value(f32),
    /// The weights of a net: per layer, weights uniform in ±√(6 / (fan_in + fan_out))
    /// (Glorot & Bengio 2010), biases 0. A decoder started at zero would stay symmetric.
    Glorot(&'static [InitBlock]),
}

/// One layer's part of a net's weight vector, for [`ParamInit::Glorot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitBlock {
    /// The layer's inputs.
    pub fan_in: usize,
    /// The layer's outputs.
    pub fan_out: usize,
    /// The number of weights, drawn Glorot-uniform.
    pub weights: usize,
    /// The number of biases after them, started at 0.
    pub bias: usize,
}

impl InitBlock {
    /// Appends the block's starting values: weights uniform in ±√(6 / (fan_in + fan_out)),
    /// then zero biases; `uniform` gives draws from U(0, 1).
    pub fn fill(&self, out: &mut Vec<f32>, uniform: &mut dyn FnMut() -> f32) {
        let a = (6.0 / (self.fan_in + self.fan_out).max(1) as f32).sqrt();
        out.extend((0..self.weights).map(|_| (2.0 * uniform() - 1.0) * a));
        out.extend(std::iter::repeat_n(0.0, self.bias));
    }
}

impl ParamInit {
    /// `numel` starting values; `uniform` gives draws from U(0, 1).
    pub fn values(&self, numel: usize, uniform: &mut dyn FnMut() -> f32) -> Vec<f32> {
        match *self {
            ParamInit::Value(v) => vec![v; numel],
            ParamInit::Glorot(blocks) => {
                let mut out = Vec::with_capacity(numel);
                for b in blocks {
                    b.fill(&mut out, uniform);
                }
                out.resize(numel, 0.0);
                out
            }
        }
    }
}

impl LatentSpec {
    /// Values of the site (per row, for a local site).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// How many unconstrained values the guide draws for this site (fewer than `numel` on
    /// a simplex: K − 1 per event of K).
    pub fn unconstrained_numel(&self) -> usize {
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => self.numel() / k.max(1) * k.saturating_sub(1),
            _ => self.numel(),
        }
    }

    /// One draw of the guide's unconstrained values mapped onto the site's support.
    pub fn constrain(&self, u: &[f32]) -> Vec<f32> {
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => u
                .chunks(k - 1)
                .flat_map(|x| {
                    // y = softmax([x, 0]), the additive log-ratio map
                    let top = x.iter().fold(0.0f64, |m, &v| m.max(f64::from(v)));
                    let e: Vec<f64> = x
                        .iter()
                        .map(|&v| (f64::from(v) - top).exp())
                        .chain([(-top).exp()])
                        .collect();
                    let total: f64 = e.iter().sum();
                    e.into_iter().map(move |v| (v / total) as f32)
                })
                .collect(),
            (Support::Ordered, Some(&k)) => u
                .chunks(k.max(1))
                .flat_map(|u| {
                    let mut at = 0.0f32;
                    u.iter()
                        .enumerate()
                        .map(|(j, &v)| {
                            at = if j == 0 { v } else { at + v.exp() };
                            at
                        })
                        .collect::<Vec<_>>()
                })
                .collect(),
            _ => u.iter().map(|&v| self.support.constrain(v)).collect(),
        }
    }

    /// Values on the site's support in the guide's unconstrained coordinates (the inverse
    /// of [`LatentSpec::constrain`]); `None` when one is off the support or not a number (a
    /// simplex's events must be positive and sum to 1).
    pub fn unconstrain(&self, v: &[f32]) -> Option<Vec<f64>> {
        let logit = |p: f64| (p > 0.0 && p < 1.0).then(|| (p / (1.0 - p)).ln());
        match (self.support, self.shape.last()) {
            (Support::Simplex, Some(&k)) => {
                if k == 0 || !v.len().is_multiple_of(k) {
                    return None;
                }
                let mut out = Vec::with_capacity(v.len() / k * (k - 1));
                for event in v.chunks(k) {
                    let total: f64 = event.iter().map(|&x| f64::from(x)).sum();
                    let positive = event.iter().all(|&x| x > 0.0 && x.is_finite());
                    if !positive || !total.is_finite() || (total - 1.0).abs() > 1e-4 {
                        return None;
                    }
                    let last = f64::from(event[k - 1]);
                    out.extend(event[..k - 1].iter().map(|&x| (f64::from(x) / last).ln()));
                }
                Some(out)
            }
            (Support::Ordered, Some(&k)) => {
                if k == 0 || !v.len().is_multiple_of(k) {
                    return None;
                }
                let mut out = Vec::with_capacity(v.len());
                for event in v.chunks(k) {
                    out.push(f64::from(event[0]));
                    for w in event.windows(2) {
                        let gap = f64::from(w[1]) - f64::from(w[0]);
                        out.push((gap > 0.0 && gap.is_finite()).then(|| gap.ln())?);
                    }
                }
                out.iter().all(|u| u.is_finite()).then_some(out)
            }
            (support, _) => v
                .iter()
                .map(|&x| {
                    let x = f64::from(x);
                    match support {
                        Support::Real => x.is_finite().then_some(x),
                        Support::Positive => (x > 0.0 && x.is_finite()).then(|| x.ln()),
                        Support::UnitInterval => logit(x),
                        Support::Interval { low, high } => {
                            logit((x - f64::from(low)) / (f64::from(high) - f64::from(low)))
                        }
                        Support::Simplex | Support::Ordered => None,
                    }
                })
                .collect(),
        }
    }
}
