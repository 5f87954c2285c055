//! ravi's runtime: the contracts generated code implements ([`Model`], [`Guide`]) and the
//! stdlib builds on ([`GuideFamily`]), ELBO estimators, the SVI loop, devices, posterior
//! summaries. Everything is generic over the dfdx device.

pub mod csv;
pub mod data;
pub mod device;
pub mod diagnose;
pub mod elbo;
pub mod family;
pub mod fit;
pub mod frame;
pub mod fused;
pub mod init;
pub mod iwae;
pub mod linalg;
pub mod model;
pub mod ops;
pub mod optim;
pub mod params;
pub mod posterior;
pub mod predictive;

pub use data::{Array, Batch, DataError, DimSpec, InputSpec};
#[cfg(feature = "cuda")]
pub use device::Cuda;
pub use device::{Backend, Cpu, Tape};
pub use diagnose::{diagnose, Diagnostics};
pub use family::{Estimator, FamilyArg, FamilyArgs, FamilyDraw, FlowLayer, GuideFamily};
pub use fit::{
    elbo, elbo_at, elbo_draws, elbo_gradient, fit, Convergence, Divergence, FitError, FitOptions,
    FitReport, Objective, OnNonFinite, Schedule, Step, Trainer,
};
pub use init::{FamilyStart, Init, InitError, InitReport, Start};
pub use iwae::iwae;
pub use model::{
    traced, GaussianWeights, Guide, GuideSample, InitBlock, LatentSpec, Model, ModelData,
    ObservedArgs, ParamInit, Particles, PerParticle, Rewrite, Rows, Support,
};
pub use optim::{Adam, AdamConfig};
pub use params::{ParamId, ParamStore};
pub use posterior::{Posterior, SiteSummary};
pub use predictive::{predictive, predictive_at, SitePredictive};

/// dfdx itself, for generated code and for users who need its tensors directly.
pub use dfdx;
