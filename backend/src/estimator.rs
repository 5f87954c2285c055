//! How a guide family's log q enters the ELBO estimate.

/// How a guide family's log q enters the Monte Carlo ELBO. Every choice estimates the same
/// ELBO; they differ in the variance of its gradient.
///
/// - [`Estimator::PathDerivative`] (the default; "sticking the landing", Roeder, Wu &
///   Duvenaud 2017): log q(z) is evaluated with the family's parameters held fixed, so the
///   gradient flows only through the draw z. Its variance vanishes where q equals the
///   posterior, so a family that contains the posterior converges to it exactly (a
///   full-rank guide on a linear-Gaussian model). Use it by default.
/// - [`Estimator::AnalyticEntropy`]: −log q is replaced by the family's entropy in closed
///   form. No noise from the entropy term at all, but the model's term still carries the
///   noise that the path derivative would cancel; good far from the optimum and when the
///   family is far from the posterior (mean-field on strongly correlated posteriors).
/// - [`Estimator::Standard`]: log q of the draws with its full reparametrized gradient
///   (the plain `Trace_ELBO`), the reference the others are checked against.
///
/// A family that cannot do what is asked falls back to `Standard` (flows and implicit
/// generators have no closed-form entropy; the non-invertible flows cannot evaluate log q
/// at a given point). Each family's docs say what it supports.
/// - [`Estimator::AnalyticKl`]: for a site whose prior is Normal (or LogNormal, a Normal
///   of the unconstrained value) with numeric parameters and whose guide is mean-field,
///   E_q[log p(z)] − E_q[log q(z)] is replaced by −KL(q‖p) in closed form (Pyro's
///   `TraceMeanField_ELBO`); every other site uses the analytic entropy where its family
///   has one, else the standard estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Estimator {
    /// log q with the family's parameters held fixed ("sticking the landing").
    #[default]
    PathDerivative,
    /// The family's entropy in closed form, where it has one.
    AnalyticEntropy,
    /// log q of the draws with its full gradient.
    Standard,
    /// −KL(q‖p) in closed form for mean-field sites with Normal priors of numbers.
    AnalyticKl,
}
