//! ravi's runtime: the contracts generated code implements ([`Model`], [`Guide`]) and the
//! stdlib builds on ([`GuideFamily`]), ELBO estimators, the SVI loop, devices, posterior
//! summaries. Everything is generic over the dfdx device.

#![deny(missing_docs)]

// In layers: each module uses only those declared before it (`tests/layers.rs` holds them
// to it).
//
// Leaves: devices, dense linear algebra and matrix products, host ops on the tape, CSV, the
// parameter store.
pub mod csv;
pub mod device;
pub mod linalg;
pub mod math;
pub mod memory;
pub mod metrics;
pub mod params;
pub mod passes;
pub mod simd;
pub mod threads;
pub mod gemm;
pub mod host_op;
// What a fit's pieces exchange: data, errors, latent specs, tensors, the engine's program.
pub mod data;
pub mod mnist;
pub mod error;
pub mod estimator;
pub mod latent;
pub mod particles;
pub mod density;
pub mod program;
pub mod optim;
pub mod normals;
// The contracts generated code and the stdlib implement.
pub mod frame;
pub mod start;
pub mod family;
pub mod model;
pub mod guide;
// What is computed from a model and a guide: ELBO terms, the bound, summaries, the engine.
pub mod elbo;
pub mod iwae;
pub mod ops;
pub mod scale;
pub mod posterior;
pub mod summary;
pub mod evaluate;
pub mod fused;
// The fit: its start, its diagnostics, its loop, and what comes after it.
pub mod init;
pub mod diagnose;
pub mod fit;
pub mod predictive;
pub mod save;

pub use data::{
    check_observed, Array, Batch, DataError, DimSpec, InputSpec, ObservedSpec, ObservedSupport,
};
#[cfg(feature = "cuda")]
pub use device::Cuda;
pub use device::{Backend, Cpu, Tape};
pub use diagnose::{diagnose, Diagnostics};
pub use error::{FitError, InitError};
pub use estimator::Estimator;
pub use evaluate::{elbo, elbo_at, elbo_draws, elbo_gradient};
pub use family::{FamilyArg, FamilyArgs, FamilyDraw, FlowLayer, GuideFamily, HostGaussian};
pub use fit::{
    fit, Convergence, Divergence, FitOptions, FitReport, Objective, OnNonFinite, Schedule, Step,
    Trainer,
};
pub use fused::EngineChoice;
pub use guide::{Guide, GuideSample};
pub use init::{Init, InitReport};
pub use iwae::iwae;
pub use latent::{InitBlock, LatentSpec, ParamInit, Support};
pub use model::{GaussianWeights, Model, ModelData, ObservedArgs, Predicts, Rewrite, TrackedSpec};
pub use optim::{Adam, AdamConfig, OptimizerState};
pub use params::{ParamId, ParamStore};
pub use particles::{traced, Particles, PerParticle, Rows};
pub use posterior::{Posterior, SiteSummary};
pub use predictive::{
    predictive, predictive_at, predictive_draws, prior_predictive, PredictiveDraws, SiteDraws,
    SitePredictive,
};
pub use save::SaveError;
pub use start::{FamilyStart, Start, INIT_SCALE};

/// dfdx itself, for generated code and for users who need its tensors directly.
pub use dfdx;
