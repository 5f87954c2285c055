//! # ravi
//!
//! Variational inference as a probabilistic-programming language embedded in Rust. Write a
//! model and a guide in [`model!`] and [`guide!`] blocks; they are compiled at macro-expansion
//! time to typed dfdx compute graphs, and [`fit`] maximises the ELBO on the CPU (or on CUDA
//! with the `cuda` feature).
//!
//! ```
//! use ravi::prelude::*;
//!
//! model! {
//!     /// Bayesian linear regression with known noise.
//!     model LinReg(x: [N, 2], y: [N]) {
//!         w ~ Normal(0.0, 1.0) [2];
//!         b ~ Normal(0.0, 1.0);
//!         y ~ Normal(x @ w + b, 0.5);
//!     }
//! }
//! guide! { guide MeanFieldLinReg for LinReg { w ~ MeanField; b ~ MeanField; } }
//!
//! let data = LinRegData {
//!     x: Array::from_rows(&[[0.0f32, 1.0], [1.0, 0.5], [2.0, -1.0]]).unwrap(),
//!     y: Array::vector(vec![0.9, 1.6, 1.1]),
//! };
//! let mut guide = MeanFieldLinReg::new(&Cpu::seeded(0));
//! let opts = FitOptions { steps: 200, progress: false, ..FitOptions::default() };
//! let report = ravi::fit(&mut guide, &data, &opts).unwrap();
//! assert_eq!(report.elbo.len(), 200);
//! let posterior = Posterior::from_guide(&guide, 1000);
//! assert_eq!(posterior.site("w").unwrap().mean.len(), 2);
//! ```
//!
//! The crates behind it, and which way they depend, are described in `ARCHITECTURE.md`.

pub use ravi_backend::*;
pub use ravi_dsl::{guide, model};
pub use ravi_stdlib::{bijectors, dist, exact, guides, nn};

/// Everything a program using ravi usually needs.
pub mod prelude {
    pub use crate::{
        fit, guide, model, Array, Backend, Convergence, Cpu, Estimator, FitOptions, Guide, Init,
        Model, OnNonFinite, Posterior, Schedule,
    };
}

/// Paths the generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ravi_backend::dfdx::prelude;
    pub use ravi_backend::dfdx::shapes::{Axes2, Axes3, Axes4, Axes5, Axes6, Axis, Const};
    pub use ravi_backend::dfdx::tensor::{NoneTape, Tensor};
    pub use ravi_backend::ops;
    pub use ravi_dsl::__guide_impl as guide_impl;
}
