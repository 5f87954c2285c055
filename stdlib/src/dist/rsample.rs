//! Reparametrized sampling: x = g(θ, ε) with parameter-free noise ε, so that gradients
//! flow from x to θ. Defined for the distributions that have such a g in closed form;
//! Gamma, Beta, InverseGamma and StudentT (whose samplers need rejection steps) and the
//! discrete distributions have none. Latent sites never need one (the guide draws them on
//! ℝ and the model maps them onto the support); these serve guide programs and users.

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use ravi_backend::{Backend, Tape};

use super::arg::{add, mul, Arg, Value};
use super::{
    Cauchy, Exponential, HalfCauchy, HalfNormal, Laplace, LogNormal, Normal, RelaxedBernoulli,
    Uniform,
};

/// Standard-normal noise of `shape`, on the tape `T` (it carries no gradient itself).
fn normal_noise<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let e: Tensor<S, f32, D> = dev.sample_normal_like(&shape);
    e.retaped::<T>()
}

/// Uniform(0, 1) noise of `shape`, on the tape `T`.
fn uniform_noise<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let u: Tensor<S, f32, D> = dev.sample_uniform_like(&shape);
    // Keep away from the ends, where the inverse-CDF maps are infinite.
    u.clamp(1e-7, 1.0 - 1e-7).retaped::<T>()
}

/// tan(π(u − ½)): standard Cauchy noise.
fn cauchy_noise<S: Shape, D: Backend, T: Tape<D>>(dev: &D, shape: S) -> Value<S, D, T> {
    let a = (uniform_noise::<S, D, T>(dev, shape) - 0.5) * std::f32::consts::PI;
    a.retaped::<T>().sin() / a.cos()
}

impl Normal {
    /// loc + scale ε
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(normal_noise(dev, shape), scale), loc)
    }
}

impl LogNormal {
    /// exp(loc + scale ε)
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        Normal::rsample(dev, shape, loc, scale).exp()
    }
}

impl HalfNormal {
    /// scale |ε|
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(normal_noise::<S, D, T>(dev, shape).abs(), scale)
    }
}

impl Cauchy {
    /// loc + scale tan(π(u − ½))
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        add(mul(cauchy_noise(dev, shape), scale), loc)
    }
}

impl HalfCauchy {
    /// scale |tan(π(u − ½))|
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(cauchy_noise::<S, D, T>(dev, shape).abs(), scale)
    }
}

impl Laplace {
    /// loc − scale sign(v) log(1 − 2|v|), v = u − ½
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let v = uniform_noise::<S, D, T>(dev, shape) - 0.5;
        let magnitude = v.retaped::<T>().abs();
        let sign = v / magnitude.retaped::<T>();
        let noise = sign * (magnitude * -2.0 + 1.0).ln().negate();
        add(mul(noise, scale), loc)
    }
}

impl Exponential {
    /// −log(u) / rate
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        rate: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        mul(
            uniform_noise::<S, D, T>(dev, shape).ln().negate(),
            rate.recip(),
        )
    }
}

impl Uniform {
    /// low + (high − low) u
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        low: Arg<S, D, T>,
        high: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let width = high.minus(low.again());
        add(mul(uniform_noise(dev, shape), width), low)
    }
}

impl RelaxedBernoulli {
    /// σ((logits + log u − log(1 − u)) / temperature)
    pub fn rsample<S: Shape, D: Backend, T: Tape<D>>(
        dev: &D,
        shape: S,
        temperature: Arg<S, D, T>,
        logits: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let u = uniform_noise::<S, D, T>(dev, shape);
        let logistic = u.retaped::<T>().ln() - (u.negate() + 1.0).ln();
        super::arg::div(add(logistic, logits), temperature).sigmoid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfdx::tensor::OwnedTape;

    const N: usize = 400_000;

    fn moments(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
        let var = v
            .iter()
            .map(|&x| (f64::from(x) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        (mean, var)
    }

    fn quantile(v: &[f32], q: f64) -> f64 {
        let mut s: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
        s.sort_by(f64::total_cmp);
        s[((s.len() - 1) as f64 * q) as usize]
    }

    /// Sample mean and variance within 5 standard errors of the closed forms (the se of a
    /// variance estimate uses the fourth moment, `kurtosis` × var²).
    fn check(name: &str, v: &[f32], mean: f64, var: f64, kurtosis: f64) {
        let n = v.len() as f64;
        let (m, s2) = moments(v);
        assert!(
            (m - mean).abs() < 5.0 * (var / n).sqrt(),
            "{name}: mean {m} vs {mean}"
        );
        let se = ((kurtosis - 1.0) * var * var / n).sqrt();
        assert!(
            (s2 - var).abs() < 5.0 * se,
            "{name}: variance {s2} vs {var}"
        );
    }

    #[test]
    fn moments_match_the_closed_forms() {
        let dev = Cpu::seed_from_u64(3);
        let s = (N,);
        let pi = std::f64::consts::PI;
        let x =
            Normal::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(1.5), Arg::Scalar(2.0)).as_vec();
        check("Normal", &x, 1.5, 4.0, 3.0);
        let x = LogNormal::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(0.2), Arg::Scalar(0.3))
            .as_vec();
        let (m, v) = (
            (0.2f64 + 0.045).exp(),
            (0.09f64.exp() - 1.0) * (0.4f64 + 0.09).exp(),
        );
        // kurtosis of a log-normal: e^(4σ²) + 2e^(3σ²) + 3e^(2σ²) − 3
        let k =
            (4.0f64 * 0.09).exp() + 2.0 * (3.0f64 * 0.09).exp() + 3.0 * (2.0f64 * 0.09).exp() - 3.0;
        check("LogNormal", &x, m, v, k);
        let x = HalfNormal::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(2.0)).as_vec();
        check(
            "HalfNormal",
            &x,
            2.0 * (2.0 / pi).sqrt(),
            4.0 * (1.0 - 2.0 / pi),
            4.0,
        );
        let x = Laplace::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(-1.0), Arg::Scalar(0.5))
            .as_vec();
        check("Laplace", &x, -1.0, 2.0 * 0.25, 6.0);
        let x = Exponential::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(2.5)).as_vec();
        check("Exponential", &x, 0.4, 0.16, 9.0);
        let x = Uniform::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(-1.0), Arg::Scalar(3.0))
            .as_vec();
        check("Uniform", &x, 1.0, 16.0 / 12.0, 1.8);
        // No moments: quartiles of Cauchy(loc, scale) are loc ± scale; HalfCauchy's median
        // is its scale.
        let x =
            Cauchy::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(0.5), Arg::Scalar(2.0)).as_vec();
        for (q, want) in [(0.25, -1.5), (0.5, 0.5), (0.75, 2.5)] {
            assert!(
                (quantile(&x, q) - want).abs() < 0.03,
                "Cauchy q{q}: {}",
                quantile(&x, q)
            );
        }
        // Relaxed Bernoulli: P(y > ½) = σ(logits) at every temperature; at a low
        // temperature the draws crowd the ends.
        let x = RelaxedBernoulli::rsample::<_, _, NoneTape>(
            &dev,
            s,
            Arg::Scalar(0.5),
            Arg::Scalar(0.8),
        )
        .as_vec();
        let above = x.iter().filter(|&&v| v > 0.5).count() as f64 / N as f64;
        let p = 1.0 / (1.0 + (-0.8f64).exp());
        assert!(
            (above - p).abs() < 5.0 * (p * (1.0 - p) / N as f64).sqrt(),
            "{above} vs {p}"
        );
        let cold = RelaxedBernoulli::rsample::<_, _, NoneTape>(
            &dev,
            s,
            Arg::Scalar(0.05),
            Arg::Scalar(0.8),
        )
        .as_vec();
        let near_ends = cold
            .iter()
            .filter(|&&v| !(0.01..=0.99).contains(&v))
            .count() as f64
            / N as f64;
        assert!(near_ends > 0.9, "{near_ends}");
        let x = HalfCauchy::rsample::<_, _, NoneTape>(&dev, s, Arg::Scalar(1.5)).as_vec();
        assert!(
            (quantile(&x, 0.5) - 1.5).abs() < 0.02,
            "HalfCauchy median {}",
            quantile(&x, 0.5)
        );
    }

    /// The pathwise gradient: d E[x]/d loc = 1 and d E[x]/d scale = E[ε] ≈ 0 for a Normal;
    /// d E[x]/d rate = −1/rate² for an Exponential.
    /// Relaxed Bernoulli draws approach {0, 1} as the temperature falls, and the logit-space
    /// density is the density of y = σ(u) plus log σ'(u).
    #[test]
    fn relaxed_bernoulli_approaches_binary_and_its_logit_density() {
        let dev = Cpu::seed_from_u64(5);
        let n = 4000;
        let mut previous = 1.0f32;
        for lam in [2.0f32, 1.0, 0.5, 0.2, 0.05] {
            let x = RelaxedBernoulli::rsample::<_, _, NoneTape>(
                &dev,
                (n,),
                Arg::Scalar(lam),
                Arg::Scalar(0.7),
            )
            .as_vec();
            let dist = x.iter().map(|&v| v.min(1.0 - v)).sum::<f32>() / n as f32;
            assert!(
                dist < previous,
                "λ = {lam}: mean distance to {{0, 1}} {dist} after {previous}"
            );
            previous = dist;
        }
        assert!(previous < 0.02, "{previous}");
        let u: Vec<f32> = (0..200).map(|i| -6.0 + 0.06 * i as f32).collect();
        let t = || dev.tensor_from_vec(u.clone(), (u.len(),));
        let logit = RelaxedBernoulli::log_prob_logit_space::<_, Cpu, NoneTape>(
            t(),
            Arg::Scalar(0.6),
            Arg::Scalar(-0.4),
        )
        .as_vec();
        let y = t().sigmoid();
        let on_y =
            RelaxedBernoulli::log_prob::<_, Cpu, NoneTape>(y, Arg::Scalar(0.6), Arg::Scalar(-0.4))
                .as_vec();
        for (i, &v) in u.iter().enumerate() {
            let s = 1.0 / (1.0 + (-f64::from(v)).exp());
            let want = f64::from(on_y[i]) + (s * (1.0 - s)).ln();
            assert!(
                (f64::from(logit[i]) - want).abs() < 1e-3,
                "u = {v}: {} vs {want}",
                logit[i]
            );
        }
        // Far out, where y rounds to 1 in f32, the logit density stays finite.
        let far = RelaxedBernoulli::log_prob_logit_space::<_, Cpu, NoneTape>(
            dev.tensor_from_vec(vec![60.0f32], (1,)),
            Arg::Scalar(0.5),
            Arg::Scalar(0.0),
        )
        .as_vec();
        assert!(far[0].is_finite() && far[0] < -20.0, "{far:?}");
    }

    #[test]
    fn gradients_flow_to_the_parameters() {
        let dev = Cpu::seed_from_u64(4);
        let loc = dev.tensor_from_vec(vec![0.5f32; N], (N,));
        let scale = dev.tensor_from_vec(vec![2.0f32; N], (N,));
        let x = Normal::rsample(
            &dev,
            (N,),
            Arg::Tensor(loc.retaped::<OwnedTape<f32, Cpu>>()),
            Arg::Tensor(scale.retaped()),
        );
        let g = x.mean::<(), _>().backward();
        let (gl, gs) = (g.get(&loc).as_vec(), g.get(&scale).as_vec());
        let sum_l: f64 = gl.iter().map(|&v| f64::from(v)).sum();
        let sum_s: f64 = gs.iter().map(|&v| f64::from(v)).sum();
        assert!((sum_l - 1.0).abs() < 1e-3, "{sum_l}");
        assert!(sum_s.abs() < 5.0 / (N as f64).sqrt(), "{sum_s}");
        let rate = dev.tensor_from_vec(vec![2.5f32; N], (N,));
        let x = Exponential::rsample(
            &dev,
            (N,),
            Arg::Tensor(rate.retaped::<OwnedTape<f32, Cpu>>()),
        );
        let g: f64 = x
            .mean::<(), _>()
            .backward()
            .get(&rate)
            .as_vec()
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        assert!((g + 1.0 / 6.25).abs() < 0.005, "{g}");
    }
}
