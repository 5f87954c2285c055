//! The Dirichlet distribution on the simplex.

use dfdx::prelude::*;
use ravi_backend::{Backend, PerParticle, Tape};

use super::events::{off_the_faces, total, Events};
use super::special::ln_gamma;
use super::{Distribution, Parametrization};

/// Dirichlet(concentration) on the simplex: log Γ(Σα) − Σ log Γ(α_k) + Σ (α_k − 1) log y_k.
pub struct Dirichlet;

impl Distribution for Dirichlet {
    const NAME: &'static str = "Dirichlet";
    const PARAMETRIZATIONS: &'static [Parametrization] =
        &[Parametrization::graph_only("", &["concentration"])];
}

impl Dirichlet {
    /// Σ over events of log Dirichlet(y | concentration), per particle; `y` and
    ///  `concentration` are `(particles, events, K)`, each event of `y` on the simplex.
    pub fn log_prob_events<D: Backend, T: Tape<D>>(
        y: Events<D, T>,
        concentration: Events<D, T>,
    ) -> PerParticle<D, T> {
        let a = concentration;
        let power = total(off_the_faces(y).ln() * (a.retaped::<T>() - 1.0));
        let lg_sum = ln_gamma(a.retaped::<T>().sum::<(usize, usize), Axis<2>>());
        let sum_lg = ln_gamma(a);
        power + lg_sum.sum::<(usize,), Axis<1>>() - total(sum_lg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::events::testing::simplex_points;
    use rand::{Rng, SeedableRng};
    use statrs::distribution::{Continuous, Dirichlet as RefDirichlet};

    #[test]
    fn dirichlet_matches_statrs() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let (m, k) = (1000, 4);
        let y = simplex_points(&mut rng, m, k);
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(0.3f32..5.0)).collect();
        // one event per particle, to compare each
        let lp = Dirichlet::log_prob_events(
            dev.tensor_from_vec(y.clone(), (m, 1usize, k)),
            dev.tensor_from_vec(a.clone(), (m, 1usize, k)),
        )
        .as_vec();
        for i in 0..m {
            let alpha: Vec<f64> = a[i * k..(i + 1) * k]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let x: Vec<f64> = y[i * k..(i + 1) * k]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let want = RefDirichlet::new(alpha)
                .unwrap()
                .ln_pdf(&nalgebra::DVector::from_vec(x));
            assert!(
                (f64::from(lp[i]) - want).abs() < 2e-4 * (1.0 + want.abs()),
                "{} vs {want}",
                lp[i]
            );
        }
    }
}
