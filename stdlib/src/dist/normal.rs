use dfdx::prelude::*;
use ravi_backend::{Backend, Tape};

pub(crate) use super::continuous::HALF_LN_2PI;
use super::{Arg, Distribution};

/// The normal distribution N(loc, scale²).
pub struct Normal;

impl Distribution for Normal {
    const NAME: &'static str = "Normal";
    const PARAMETRIZATIONS: &'static [(&'static str, &'static [&'static str])] =
        &[("", &["loc", "scale"])];
}

impl Normal {
    /// log N(x; loc, scale) = −½ ((x − loc)/scale)² − log scale − ½ log 2π, elementwise.
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Tensor<S, f32, D, T>,
        loc: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Tensor<S, f32, D, T> {
        let centred = match loc {
            Arg::Scalar(c) => x - c,
            Arg::Tensor(l) => x - l,
        };
        match scale {
            Arg::Scalar(s) => (centred / s).square() * -0.5 - (s.ln() + HALF_LN_2PI),
            Arg::Tensor(s) => {
                let z = centred / s.retaped::<T>();
                z.square() * -0.5 - s.ln() - HALF_LN_2PI
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{Continuous, Normal as Reference};

    /// Against statrs at 2000 random points, with loc and scale as tensors and as scalars.
    /// Tolerance: f32 carries ~7 digits; |log p| here is at most ~60, so 1e-4 relative (plus
    /// 1e-4 absolute near zero) is a few ulps of the largest intermediate.
    #[test]
    fn log_prob_matches_statrs() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 2000;
        let x: Vec<f32> = (0..n).map(|_| rng.gen_range(-10.0..10.0)).collect();
        let loc: Vec<f32> = (0..n).map(|_| rng.gen_range(-5.0..5.0)).collect();
        let scale: Vec<f32> = (0..n).map(|_| rng.gen_range(0.05..5.0)).collect();
        let tx = dev.tensor_from_vec(x.clone(), (n,));
        let tl = dev.tensor_from_vec(loc.clone(), (n,));
        let ts = dev.tensor_from_vec(scale.clone(), (n,));
        let lp = Normal::log_prob(tx.clone(), Arg::Tensor(tl), Arg::Tensor(ts)).as_vec();
        for i in 0..n {
            let r = Reference::new(loc[i] as f64, scale[i] as f64)
                .unwrap()
                .ln_pdf(x[i] as f64);
            let tol = 1e-4 * r.abs().max(1.0);
            assert!(
                (lp[i] as f64 - r).abs() < tol,
                "x={} loc={} scale={}: {} vs {r}",
                x[i],
                loc[i],
                scale[i],
                lp[i]
            );
        }
        let lp = Normal::log_prob(tx, Arg::Scalar(0.5), Arg::Scalar(2.0)).as_vec();
        for i in 0..n {
            let r = Reference::new(0.5, 2.0).unwrap().ln_pdf(x[i] as f64);
            assert!((lp[i] as f64 - r).abs() < 1e-4 * r.abs().max(1.0));
        }
    }

    /// The gradient in loc and scale against the closed forms
    /// ∂/∂loc = (x − loc)/scale², ∂/∂scale = ((x − loc)² − scale²)/scale³.
    #[test]
    fn gradients_match_closed_form() {
        let dev = Cpu::default();
        let x = dev.tensor_from_vec(vec![0.3f32, -1.2, 2.5], (3,));
        let loc = dev.tensor_from_vec(vec![0.1f32, 0.4, -0.7], (3,));
        let scale = dev.tensor_from_vec(vec![0.5f32, 1.5, 2.0], (3,));
        let lp = Normal::log_prob(
            x.retaped::<OwnedTape<f32, Cpu>>(),
            Arg::Tensor(loc.retaped()),
            Arg::Tensor(scale.retaped()),
        );
        let g = lp.sum::<(), _>().backward();
        let (gl, gs) = (g.get(&loc).as_vec(), g.get(&scale).as_vec());
        let (x, l, s) = (x.as_vec(), loc.as_vec(), scale.as_vec());
        for i in 0..3 {
            let d = x[i] - l[i];
            assert!((gl[i] - d / (s[i] * s[i])).abs() < 1e-5);
            assert!((gs[i] - (d * d - s[i] * s[i]) / s[i].powi(3)).abs() < 1e-5);
        }
    }
}
