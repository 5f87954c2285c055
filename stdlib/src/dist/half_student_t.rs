//! The half Student's t distribution |StudentT(df, 0, scale)|.

use dfdx::shapes::Shape;
use ravi_backend::density::{elementwise, elementwise_with, ElementDensity, Moments, SitePass};
use ravi_backend::math::ln;
use ravi_backend::program::Density;
use ravi_backend::{Backend, Tape};
use statrs::function::gamma::{digamma, ln_gamma};

use super::arg::{add, div, Arg, Value};
use super::consts::LN_2;
use super::{draw, Distribution, Parametrization};

/// |StudentT(df, 0, scale)|: twice Student's t density on x > 0; support (0, ∞). A prior
/// for a scale with heavier tails than the half-normal (df = 1 is the half-Cauchy).
pub struct HalfStudentT;

impl Distribution for HalfStudentT {
    const NAME: &'static str = "HalfStudentT";
    const PARAMETRIZATIONS: &'static [Parametrization] = &[Parametrization {
        suffix: "",
        params: &["df", "scale"],
        host: Some(Density::Elementwise(&HalfStudentT)),
        moments: Some(&HalfStudentT),
    }];
}

impl HalfStudentT {
    /// log 2 + log Γ((ν+1)/2) − log Γ(ν/2) − ½ log νπ − log σ − (ν+1)/2 log(1 + z²/ν),
    /// z = x/σ
    pub fn log_prob<S: Shape, D: Backend, T: Tape<D>>(
        x: Value<S, D, T>,
        df: Arg<S, D, T>,
        scale: Arg<S, D, T>,
    ) -> Value<S, D, T> {
        let z = div(x, scale.again());
        let half_df_plus = df.again().add_scalar(1.0).mul_scalar(0.5);
        let tail = super::arg::mul(
            add(div(z.square(), df.again()), Arg::Scalar(1.0)).ln(),
            half_df_plus.again(),
        );
        let norm = half_df_plus
            .lgamma()
            .minus(df.again().mul_scalar(0.5).lgamma())
            .minus(df.mul_scalar(std::f32::consts::PI).ln().mul_scalar(0.5))
            .minus(scale.ln())
            .add_scalar(LN_2);
        add(tail.negate(), norm)
    }
}

/// What depends on ν alone: the normalizer log 2 + log Γ((ν+1)/2) − log Γ(ν/2) − ½ log νπ
/// and its derivative ½ ψ((ν+1)/2) − ½ ψ(ν/2) − 1/(2ν), in f64 (once per pass when ν is
/// one number).
fn df_terms(nu: f32) -> (f32, f32) {
    let nu = f64::from(nu);
    let norm = std::f64::consts::LN_2 + ln_gamma(0.5 * (nu + 1.0))
        - ln_gamma(0.5 * nu)
        - 0.5 * (nu * std::f64::consts::PI).ln();
    let d_norm = 0.5 * digamma(0.5 * (nu + 1.0)) - 0.5 * digamma(0.5 * nu) - 0.5 / nu;
    (norm as f32, d_norm as f32)
}

/// log p and its partials [x, ν, σ, –] given ν's terms.
#[inline(always)]
fn element_with(x: f32, nu: f32, s: f32, (norm, d_norm): (f32, f32)) -> (f32, [f32; 4]) {
    let z = x / s;
    let z2 = z * z;
    let q = 1.0 + z2 / nu;
    let lq = ln(q);
    let lp = norm - ln(s) - 0.5 * (nu + 1.0) * lq;
    let dz = -(nu + 1.0) * z / (nu * q); // d lp / dz
    let d_nu = d_norm - 0.5 * lq + 0.5 * (nu + 1.0) * z2 / (nu * nu * q);
    (lp, [dz / s, d_nu, -(dz * z + 1.0) / s, 0.0])
}

impl ElementDensity for HalfStudentT {
    fn name(&self) -> &'static str {
        "HalfStudentT"
    }

    fn element(&self, x: f32, a: [f32; 3]) -> (f32, [f32; 4]) {
        element_with(x, a[0], a[1], df_terms(a[0]))
    }

    /// ν one number (the usual case): its log Γ and ψ terms once, not per element.
    fn pass(&self, site: SitePass<'_>) -> f64 {
        let [df, _, _] = site.args;
        if df.len() != 1 {
            return elementwise(self, site);
        }
        let (nu, terms) = (df[0], df_terms(df[0]));
        elementwise_with(site, |x, a| element_with(x, nu, a[1], terms))
    }

    fn prior_pass(&self, z: &[f32], a: [f32; 3], weight: f32, g: &mut [f32]) -> f64 {
        let terms = df_terms(a[0]);
        let mut sum = 0.0f64;
        for (&z, g) in z.iter().zip(g) {
            let (lp, d) = element_with(z, a[0], a[1], terms);
            sum += f64::from(lp);
            *g += weight * d[0];
        }
        sum
    }
}

/// Mean σ 2√ν Γ((ν+1)/2) / (√π Γ(ν/2) (ν − 1)) for ν > 1, variance σ² ν/(ν − 2) − mean²
/// for ν > 2. On (0, ∞) the integrals that diverge diverge to +∞ (the tail ~ x^(−ν−1)):
/// the mean is infinite for ν ≤ 1 and the variance for ν ≤ 2, as the half-Cauchy's (ν = 1).
impl Moments for HalfStudentT {
    fn mean_variance(&self, a: [f64; 3]) -> (f64, f64) {
        let (nu, s) = (a[0], a[1]);
        if nu <= 1.0 {
            return (f64::INFINITY, f64::INFINITY);
        }
        let ratio = (ln_gamma(0.5 * (nu + 1.0)) - ln_gamma(0.5 * nu)).exp();
        let mean = s * 2.0 * nu.sqrt() * ratio / (std::f64::consts::PI.sqrt() * (nu - 1.0));
        let var = if nu > 2.0 {
            s * s * nu / (nu - 2.0) - mean * mean
        } else {
            f64::INFINITY
        };
        (mean, var)
    }

    fn draw(&self, a: [f64; 3], rng: &mut dyn rand::RngCore) -> f64 {
        (a[1] * draw::student_t(a[0], rng)).abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::check::{self, take, u, Reference};
    use statrs::distribution::{self as sd, Continuous};
    use statrs::function::beta::ln_beta;
    use statrs::statistics::Distribution as _;

    const REFERENCE: Reference = Reference {
        draw: |r| (u(r, 0.0, 10.0), vec![u(r, 0.5, 30.0), u(r, 0.2, 4.0)]),
        log_density: |x, p| 2f64.ln() + sd::StudentsT::new(0.0, p[1], p[0]).unwrap().ln_pdf(x),
        grad_x: true,
    };

    #[test]
    fn log_prob_matches_statrs() {
        check::graph_matches("HalfStudentT", &REFERENCE, |x, a| {
            let (df, s, _, _) = take(a);
            HalfStudentT::log_prob(x, df, s)
        });
    }

    #[test]
    fn host_density_matches_statrs() {
        check::host_matches("HalfStudentT", &REFERENCE, &HalfStudentT);
    }

    /// E X² is statrs' StudentsT variance (the square forgets the sign); E X = σ E|T_ν|
    /// = σ 2√ν / ((ν − 1) B(ν/2, ½)) by statrs' log B. Infinite where they diverge.
    #[test]
    fn moments_match_statrs() {
        check::moments_match("HalfStudentT", &REFERENCE, &HalfStudentT, |p| {
            let (nu, s) = (p[0], p[1]);
            if nu <= 1.0 {
                return (f64::INFINITY, f64::INFINITY);
            }
            let mean = s * 2.0 * nu.sqrt() / ((nu - 1.0) * ln_beta(0.5 * nu, 0.5).exp());
            let square = sd::StudentsT::new(0.0, s, nu)
                .unwrap()
                .variance()
                .unwrap_or(f64::INFINITY);
            (mean, square - mean * mean)
        });
    }

    /// The mean by quadrature of the reference (on a log grid out to e⁸ σ, where the tail
    /// ~ x^(−ν) left out is below 1e-6 of it for these ν), and the variance for ν ≥ 6.
    #[test]
    fn moments_match_quadrature() {
        for (nu, s) in [(2.5, 1.0), (4.0, 0.7), (6.0, 2.0), (12.0, 1.3), (30.0, 0.4)] {
            let density = |x: f64| (REFERENCE.log_density)(x, &[nu, s]).exp();
            let z = check::integrate_log_v(density);
            let m1 = check::integrate_log_v(|x| x * density(x)) / z;
            let (mean, var) = HalfStudentT.mean_variance([nu, s, 0.0]);
            assert!(
                (m1 - mean).abs() < 1e-4 * mean,
                "ν = {nu}: mean {mean} vs {m1}"
            );
            if nu >= 6.0 {
                let m2 = check::integrate_log_v(|x| x * x * density(x)) / z;
                let v = m2 - m1 * m1;
                assert!(
                    (v - var).abs() < 1e-4 * var,
                    "ν = {nu}: variance {var} vs {v}"
                );
            }
        }
    }

    #[test]
    fn draws_match_the_moments() {
        check::draws_match_moments("HalfStudentT", &HalfStudentT, &[[7.0, 2.0, 0.0]]);
    }
}
