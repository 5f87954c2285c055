//! The continuous distributions with scalar parameters, each a log density elementwise in
//! the value and every parameter (all differentiable). Formulas are the standard ones
//! (those of statrs, which the tests compare against).

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::{add, div, mul, sub, Arg, Value};
use super::Distribution;

/// ½ log 2π
pub(crate) const HALF_LN_2PI: f32 = 0.918_938_5;
const LN_2: f32 = std::f32::consts::LN_2;
const LN_PI: f32 = 1.144_729_9;

macro_rules! distribution {
    ($name:ident, [$($param:literal),*], $doc:literal) => {
        #[doc = $doc]
        pub struct $name;
        impl Distribution for $name {
            const NAME: &'static str = stringify!($name);
            const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] = &[("", &[$($param),*])];
        }
    };
}

distribution!(
    LogNormal,
    ["loc", "scale"],
    "exp of N(loc, scale²); support (0, ∞)."
);
distribution!(HalfNormal, ["scale"], "|N(0, scale²)|; support [0, ∞).");
distribution!(HalfCauchy, ["scale"], "|Cauchy(0, scale)|; support [0, ∞).");
distribution!(
    Cauchy,
    ["loc", "scale"],
    "The Cauchy distribution; support ℝ."
);
distribution!(
    Laplace,
    ["loc", "scale"],
    "The Laplace (double exponential) distribution; support ℝ."
);
distribution!(
    StudentT,
    ["df", "loc", "scale"],
    "Student's t with `df` degrees of freedom, located and scaled; support ℝ."
);
distribution!(
    Exponential,
    ["rate"],
    "The exponential distribution; support [0, ∞)."
);
distribution!(
    Gamma,
    ["concentration", "rate"],
    "The gamma distribution (shape α = concentration, rate β); support (0, ∞)."
);
distribution!(
    InverseGamma,
    ["concentration", "scale"],
    "1/Gamma(α, β): density ∝ x^(−α−1) e^(−β/x); support (0, ∞)."
);
distribution!(
    Beta,
    ["concentration1", "concentration0"],
    "The beta distribution, Beta(a, b); support (0, 1)."
);
distribution!(
    Uniform,
    ["low", "high"],
    "The uniform distribution on (low, high)."
);
distribution!(RelaxedBernoulli, ["temperature", "logits"], "The binary concrete (relaxed Bernoulli) distribution of Maddison et al. (2017) on (0, 1): y = σ((logits + log u − log(1 − u))/temperature), u ~ Uniform(0, 1); as the temperature falls it approaches Bernoulli(σ(logits)).");
distribution!(ScaleMixtureNormal, ["mix", "scale1", "scale2"], "π N(0, σ₁²) + (1 − π) N(0, σ₂²), the scale-mixture prior of Blundell et al. (2015); support ℝ.");

/// (x − loc)/scale
fn standardize<S: Shape, D: Backend, T: Tape<D>>(
    x: Value<S, D, T>,
    loc: Arg<S, D, T>,
    scale: Arg<S, D, T>,
) -> Value<S, D, T> {
    div(sub(x, loc), scale)
}

impl LogNormal {
    /// −log x − log σ − ½ log 2π − ½ ((log x − μ)/σ)²
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let log_x = x.ln();
        let z = standardize(log_x.retaped::<T>(), loc, scale.again());
        sub(z.square() * -0.5 - log_x - HALF_LN_2PI, scale.ln())
    }
}

impl HalfNormal {
    /// log 2 − log σ − ½ log 2π − ½ (x/σ)²
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(x, scale.again());
        sub(z.square() * -0.5 + (LN_2 - HALF_LN_2PI), scale.ln())
    }
}

impl HalfCauchy {
    /// log 2 − log π − log σ − log(1 + (x/σ)²)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(x, scale.again());
        sub(
            (z.square() + 1.0).ln().negate() + (LN_2 - LN_PI),
            scale.ln(),
        )
    }
}

impl Cauchy {
    /// −log π − log σ − log(1 + ((x − μ)/σ)²)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = standardize(x, loc, scale.again());
        sub((z.square() + 1.0).ln().negate() - LN_PI, scale.ln())
    }
}

impl Laplace {
    /// −log 2σ − |x − μ|/σ
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = standardize(x, loc, scale.again());
        sub(z.abs().negate() - LN_2, scale.ln())
    }
}

impl StudentT {
    /// log Γ((ν+1)/2) − log Γ(ν/2) − ½ log νπ − log σ − (ν+1)/2 log(1 + z²/ν)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        df: Arg<S, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = standardize(x, loc, scale.again());
        let half_df_plus = df.again().add_scalar(1.0).mul_scalar(0.5);
        let tail = mul(
            add(div(z.square(), df.again()), Arg::Scalar(1.0)).ln(),
            half_df_plus.again(),
        );
        let norm = half_df_plus
            .lgamma()
            .minus(df.again().mul_scalar(0.5).lgamma())
            .minus(df.mul_scalar(std::f32::consts::PI).ln().mul_scalar(0.5))
            .minus(scale.ln());
        add(tail.negate(), norm)
    }
}

impl Exponential {
    /// log λ − λ x
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(x, rate.again()).negate(), rate.ln())
    }
}

impl Gamma {
    /// α log β + (α − 1) log x − β x − log Γ(α)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration: Arg<S, D, T>,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let a = concentration;
        let power = mul(x.retaped::<T>().ln(), a.again().add_scalar(-1.0));
        let norm = a.again().times(rate.again().ln()).minus(a.lgamma());
        add(power - mul(x, rate), norm)
    }
}

impl InverseGamma {
    /// α log β − (α + 1) log x − β/x − log Γ(α)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let a = concentration;
        let power = mul(x.retaped::<T>().ln(), a.again().add_scalar(1.0));
        let norm = a.again().times(scale.again().ln()).minus(a.lgamma());
        add(power.negate() - mul(x.recip(), scale), norm)
    }
}

impl Beta {
    /// (a − 1) log x + (b − 1) log(1 − x) − log B(a, b)
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        concentration1: Arg<S, D, T>,
        concentration0: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let (a, b) = (concentration1, concentration0);
        let left = mul(x.retaped::<T>().ln(), a.again().add_scalar(-1.0));
        let right = mul((x.negate() + 1.0).ln(), b.again().add_scalar(-1.0));
        let log_beta = a
            .again()
            .lgamma()
            .plus(b.again().lgamma())
            .minus(a.plus(b).lgamma());
        sub(left + right, log_beta)
    }
}

impl Uniform {
    /// −log(high − low) inside (low, high), −∞ outside. The indicator is flat inside, so
    /// it carries no gradient; it is read on the host.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        low: Arg<S, D, T>,
        high: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let values = |a: &Arg<S, D, T>, n: usize| match a {
            Arg::Scalar(c) => vec![*c; n],
            Arg::Tensor(t) => t.as_vec(),
        };
        let xs = x.as_vec();
        let (lo, hi) = (values(&low, xs.len()), values(&high, xs.len()));
        let outside: Vec<f32> = (0..xs.len())
            .map(|i| {
                if xs[i] > lo[i] && xs[i] < hi[i] {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let outside = x.device().tensor_from_vec(outside, *x.shape());
        let flat = x * 0.0 + outside;
        sub(flat, high.minus(low).ln())
    }
}

impl RelaxedBernoulli {
    /// log λ + l − (λ + 1)(log y + log(1 − y)) − 2 log(e^l y^−λ + (1 − y)^−λ), written with
    /// t = l − λ (log y − log(1 − y)) as log λ + t − log y − log(1 − y) − 2 softplus(t).
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        y: Value<S, D, T>,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        // y within f32 reach of 0 or 1 (a latent mapped from |u| ≳ 17) would make the
        // terms below ∞ − ∞; the density there is negligible, so y is kept off the ends.
        let y = y.clamp(1e-7, 1.0 - 1e-7);
        let log_y = y.retaped::<T>().ln();
        let log_1my = (y.negate() + 1.0).ln();
        let logit_y = log_y.retaped::<T>() - log_1my.retaped::<T>();
        let t = add(mul(logit_y, temperature.again()).negate(), logits);
        let soft = ravi_backend::ops::softplus(t.retaped::<T>()) * 2.0;
        add(t - soft - log_y - log_1my, temperature.ln())
    }
}

impl RelaxedBernoulli {
    /// The density of the logit u = log y − log(1 − y) of a relaxed Bernoulli value:
    /// log λ + l − λu − 2 softplus(l − λu). It is the density of y with the log-Jacobian of
    /// y = σ(u) added, written so that it stays exact where y rounds to 0 or 1 in f32; a
    /// relaxed Bernoulli latent is scored this way (the guide draws u).
    pub fn log_prob_logit_space<S: Shape, D: Backend, T: Tape<D>>(
        u: Value<S, D, T>,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let t = add(mul(u, temperature.again()).negate(), logits);
        let soft = ravi_backend::ops::softplus(t.retaped::<T>()) * 2.0;
        add(t - soft, temperature.ln())
    }
}

impl ScaleMixtureNormal {
    /// log(π N(x; 0, σ₁²) + (1 − π) N(x; 0, σ₂²)), as logaddexp of the two terms.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        mix: Arg<S, D, T>,
        scale1: Arg<S, D, T>,
        scale2: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let one = add(
            super::normal::Normal::log_prob(x.retaped::<T>(), Arg::Scalar(0.0), scale1),
            mix.again().ln(),
        );
        let other = add(
            super::normal::Normal::log_prob(x, Arg::Scalar(0.0), scale2),
            mix.negated().add_scalar(1.0).ln(),
        );
        log_add_exp(one, other)
    }
}

/// log(eᵃ + eᵇ) = max(a, b) + log(1 + e^−|a − b|).
pub(crate) fn log_add_exp<S: Shape, D: Backend, T: Tape<D>>(
    a: Value<S, D, T>,
    b: Value<S, D, T>,
) -> Value<S, D, T> {
    let gap = (a.retaped::<T>() - b.retaped::<T>()).abs();
    a.maximum(b) + (gap.negate().exp() + 1.0).ln()
}
