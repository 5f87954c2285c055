//! What can go wrong in a fit, typed: bad data, bad options, a start that cannot be made, a
//! diverging or non-finite ELBO.

use std::fmt;

use crate::data::DataError;

/// Divergences a fit steps back from before it stops with [`FitError::Diverged`].
pub const MAX_DIVERGENCES: usize = 3;

/// Why a fit (or an evaluation of a guide on data) stopped or could not start.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// The data do not fit the model: a shape, the rows, a non-finite value, a value off its
    /// support or declared integers.
    Data(DataError),
    /// The ELBO was NaN or infinite at `step`; `culprit` names the site or parameter at fault
    /// when a diagnostic pass finds one. The guide holds the best parameters seen before.
    NonFinite {
        /// The step (from 0) whose ELBO was not finite.
        step: usize,
        /// The ELBO estimate there (NaN or ±∞).
        value: f32,
        /// The guide parameter or model site found at fault, in words; `None` if the diagnostic
        /// pass found none.
        culprit: Option<String>,
    },
    /// The ELBO estimate jumped far above everything before it again and again (see
    /// [`Divergence`](crate::Divergence)); the guide holds the parameters of step `back_to`.
    Diverged {
        /// The step (from 0) at which the fit gave up.
        step: usize,
        /// The ELBO estimate at that step.
        value: f32,
        /// The step whose parameters the guide was returned to.
        back_to: usize,
    },
    /// A [`crate::FitOptions`] field (or an evaluation's argument) it cannot take, the message
    /// naming it and its value: 0 particles, an unknown frozen parameter, an initial value off its
    /// site's support, ...
    Options(String),
    /// What was asked cannot be done for this model, guide or data (a bound the model has
    /// no form for; a guide with per-row parameters for other rows); the message says why.
    Unsupported(String),
    /// The initialisation found no mode to start from (see [`crate::init`]).
    Init(InitError),
    /// The host engine's program for the guide and the guide's parameters disagree (a
    /// bug in ravi or in a hand-written guide, reported rather than run on the graph).
    EngineMismatch(String),
    /// A guide family would not fit in the machine's memory (see [`crate::memory`]): its
    /// parameters were not allocated when the guide was built.
    Memory(crate::memory::MemoryError),
    /// Under [`crate::OnNonFinite::Skip`], every one of the `steps` steps had a non-finite
    /// ELBO: nothing was learned.
    AllSkipped {
        /// The number of steps the fit ran.
        steps: usize,
    },
    /// The fit ended with a guide parameter that is not a number (`value` at `index` of
    /// `parameter`): its results would be NaN.
    NonFiniteParameter {
        /// The parameter's name in the guide's store (`w,b.loc`, ...).
        parameter: String,
        /// The flat index of the first non-finite value.
        index: usize,
        /// That value.
        value: f32,
    },
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::Data(e) => write!(f, "{e}"),
            FitError::NonFinite {
                step,
                value,
                culprit,
            } => {
                write!(f, "the ELBO is {value} at step {step}")?;
                match culprit {
                    Some(c) => write!(f, "; {c}"),
                    None => Ok(()),
                }
            }
            FitError::Diverged {
                step,
                value,
                back_to,
            } => {
                write!(
                    f,
                    "the fit diverged: at step {step} the ELBO estimate was {value}, far above every earlier one, after stepping back {} times; ",
                    MAX_DIVERGENCES
                )?;
                write!(f, "the guide holds the parameters of step {back_to}")
            }
            FitError::Options(m) => write!(f, "invalid fit options: {m}"),
            FitError::Unsupported(m) => f.write_str(m),
            FitError::Init(e) => write!(f, "{e}"),
            FitError::EngineMismatch(m) => f.write_str(m),
            FitError::Memory(e) => write!(f, "{e}"),
            FitError::AllSkipped { steps } => write!(
                f,
                "every one of the {steps} steps had a non-finite ELBO and was skipped: nothing was learned (look at the model's scales and the learning rate, or use OnNonFinite::Stop to see the first culprit)"
            ),
            FitError::NonFiniteParameter {
                parameter,
                index,
                value,
            } => write!(
                f,
                "the fit ended with guide parameter `{parameter}` holding {value} at index {index}"
            ),
        }
    }
}

impl std::error::Error for FitError {}

impl From<DataError> for FitError {
    fn from(e: DataError) -> Self {
        FitError::Data(e)
    }
}

/// A mode that could not be found.
#[derive(Debug, Clone, PartialEq)]
pub enum InitError {
    /// The log joint is not finite at the search's starting point.
    NonFiniteStart {
        /// The site whose log density is not finite there (`?` when none is known).
        site: String,
    },
    /// The log joint grows without bound as `site` goes towards `towards`: the posterior
    /// has no mode there (an improper posterior, or a funnel like a hierarchical scale
    /// going to 0).
    NoMode {
        /// The site along which the log joint keeps growing.
        site: String,
        /// Where the site's value was heading, in words (`0`, `+∞`, `its upper bound 1`, ...).
        towards: String,
        /// The search ran out of iterations while the log joint was still rising (rather
        /// than stopping where f32 could no longer follow the slope).
        still_climbing: bool,
    },
    /// At the mode the log joint is not curved downward along `site` (flat or a saddle).
    NotPositiveDefinite {
        /// The site along which the curvature is not negative.
        site: String,
    },
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NonFiniteStart { site } => write!(
                f,
                "the log density of site `{site}` is not finite where the search for the mode starts"
            ),
            InitError::NoMode { site, towards, .. } => write!(
                f,
                "the posterior has no mode: the log joint keeps growing as site `{site}` goes to {towards} (an improper posterior, or a funnel); start with `Init::Prior` or `Init::Zero`, or reparametrize the model (non-centred)"
            ),
            InitError::NotPositiveDefinite { site } => write!(
                f,
                "at the mode the log joint is not curved downward along site `{site}` (flat or a saddle), so there is no Laplace approximation; start with `Init::Map` or give the site a proper prior"
            ),
        }
    }
}
