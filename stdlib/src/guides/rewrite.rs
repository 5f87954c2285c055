//! `Flipout(MeanField)` and `Lrt(MeanField)`: a mean-field Gaussian over a net's weights
//! whose net call the model rewrites (Flipout perturbations, or pre-activations drawn by the
//! local reparametrization) instead of running one draw of the weights for a whole batch.
//! Both lower the variance of the likelihood's gradient; the prior term still uses a draw
//! (or the closed-form KL with `Estimator::AnalyticKl`).

use ravi_backend::{
    Backend, Estimator, FamilyArgs, FamilyDraw, FamilyStart, GaussianWeights, GuideFamily,
    HostGaussian, ParamStore, Particles, PerParticle, Rewrite, Tape,
};

use super::MeanField;

macro_rules! rewrite_family {
    ($name:ident, $rewrite:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub MeanField);

        impl $name {
            /// The Gaussian the model's net call uses.
            pub fn gaussian<D: Backend, T: Tape<D>>(
                &self,
                params: &ParamStore<D>,
            ) -> GaussianWeights<D, T> {
                let (loc, scale) = self.0.gaussian::<D, T>(params);
                GaussianWeights {
                    loc,
                    scale,
                    rewrite: $rewrite,
                }
            }

            /// See [`MeanField::analytic_kl_term`].
            pub fn analytic_kl_term<D: Backend, T: Tape<D>>(
                &self,
                params: &ParamStore<D>,
                z: Particles<D, T>,
                prior_loc: &[f32],
                prior_scale: &[f32],
            ) -> PerParticle<D, T> {
                self.0.analytic_kl_term(params, z, prior_loc, prior_scale)
            }

            /// The current location μ and scale σ of the weights, on the host.
            pub fn loc_scale<D: Backend>(&self, params: &ParamStore<D>) -> (Vec<f32>, Vec<f32>) {
                self.0.loc_scale(params)
            }
        }

        impl<D: Backend> GuideFamily<D> for $name {
            // The model's likelihood runs on rewritten weights (a perturbation per row, or
            // pre-activations drawn directly), not on the one draw whose log q the family
            // gives, so log p − log q of a particle is not an importance ratio of q.
            const EXACT_LOG_Q: bool = false;

            fn build(
                params: &mut ParamStore<D>,
                name: &str,
                dim: usize,
                args: &FamilyArgs,
            ) -> Self {
                $name(<MeanField as GuideFamily<D>>::build(
                    params, name, dim, args,
                ))
            }

            fn host_gaussian(&self) -> Option<HostGaussian> {
                <MeanField as GuideFamily<D>>::host_gaussian(&self.0)
            }

            fn start(&mut self, params: &mut ParamStore<D>, label: &str, start: &FamilyStart) {
                <MeanField as GuideFamily<D>>::start(&mut self.0, params, label, start)
            }

            fn sample<T: Tape<D>>(
                &self,
                params: &ParamStore<D>,
                particles: usize,
                estimator: Estimator,
            ) -> FamilyDraw<D, T> {
                self.0.sample(params, particles, estimator)
            }
        }
    };
}

rewrite_family!(
    Flipout,
    Rewrite::Flipout,
    "A mean-field Gaussian over a net's weights, used through Flipout."
);
rewrite_family!(
    Lrt,
    Rewrite::Lrt,
    "A mean-field Gaussian over a net's weights, used through the local reparametrization."
);
