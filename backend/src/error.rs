//! What can go wrong in a fit, typed: bad data, bad options, a start that cannot be made, a
//! diverging or non-finite ELBO.

use std::fmt;

use crate::data::DataError;

/// Divergences a fit steps back from before it stops with [`FitError::Diverged`].
pub const MAX_DIVERGENCES: usize = 3;

#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    Data(DataError),
    /// The ELBO was NaN or infinite at `step`; `culprit` names the site or parameter at fault
    /// when a diagnostic pass finds one. The guide holds the best parameters seen before.
    NonFinite {
        step: usize,
        value: f32,
        culprit: Option<String>,
    },
    /// The ELBO estimate jumped far above everything before it again and again (see
    /// [`Divergence`]); the guide holds the parameters of step `back_to`.
    Diverged {
        step: usize,
        value: f32,
        back_to: usize,
    },
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
        steps: usize,
    },
    /// The fit ended with a guide parameter that is not a number (`value` at `index` of
    /// `parameter`): its results would be NaN.
    NonFiniteParameter {
        parameter: String,
        index: usize,
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
    NonFiniteStart { site: String },
    /// The log joint grows without bound as `site` goes towards `towards`: the posterior
    /// has no mode there (an improper posterior, or a funnel like a hierarchical scale
    /// going to 0).
    NoMode {
        site: String,
        towards: String,
        /// The search ran out of iterations while the log joint was still rising (rather
        /// than stopping where f32 could no longer follow the slope).
        still_climbing: bool,
    },
    /// At the mode the log joint is not curved downward along `site` (flat or a saddle).
    NotPositiveDefinite { site: String },
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
