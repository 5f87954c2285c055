//! # ravi
//!
//! Variational inference as a probabilistic-programming language embedded in Rust. Write a
//! model and a guide in [`model!`] and [`guide!`] blocks; they are compiled at macro-expansion
//! time to typed dfdx compute graphs, and [`fit()`] maximises the ELBO on the CPU (or on CUDA
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

#![deny(missing_docs)]

pub use ravi_backend::*;
pub use ravi_dsl::{guide, model};
pub use ravi_stdlib::{bijectors, dist, exact, guides, nn};

#[cfg(feature = "plot")]
pub mod plot;

/// Everything a program using ravi usually needs.
pub mod prelude {
    pub use crate::{
        fit, guide, model, Array, Backend, Convergence, Cpu, Estimator, FitOptions, Guide, Init,
        Model, OnNonFinite, Posterior, Schedule,
    };
}

/// The README's code blocks, compiled (and those not marked `no_run`, run) as doctests by
/// `cargo test --doc -p ravi`, so that every example there builds against the API as it is.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Paths the generated code uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use ravi_backend::dfdx::prelude;
    pub use ravi_backend::dfdx::shapes::{Axes2, Axes3, Axes4, Axes5, Axes6, Axis, Const};
    pub use ravi_backend::dfdx::tensor::{NoneTape, Tensor};
    pub use ravi_backend::ops;
    pub use ravi_dsl::__guide_impl as guide_impl;

    /// `Reg<3, 10>`: the name of a model with size parameters at given sizes, written at
    /// compile time (`Model::NAME` is a `&'static str`, and a const generic cannot be
    /// formatted into one otherwise).
    pub struct SizedName {
        bytes: [u8; Self::CAPACITY],
        len: usize,
    }

    impl SizedName {
        const CAPACITY: usize = 256;

        /// `name<s0, s1, ..>`, cut short where it would not fit in 256 bytes.
        pub const fn new(name: &str, sizes: &[usize]) -> SizedName {
            let mut out = SizedName {
                bytes: [0; Self::CAPACITY],
                len: 0,
            };
            // Room for the sizes: 22 bytes each at most, and the closing `>`.
            let (sizes, _) = sizes.split_at(if sizes.len() < 8 { sizes.len() } else { 8 });
            let room = Self::CAPACITY - 1 - 22 * sizes.len();
            let name = name.as_bytes();
            let mut i = 0;
            while i < name.len() && out.len < room {
                out.bytes[out.len] = name[i];
                out.len += 1;
                i += 1;
            }
            let mut k = 0;
            while k < sizes.len() {
                if k == 0 {
                    out.bytes[out.len] = b'<';
                    out.len += 1;
                } else {
                    out.bytes[out.len] = b',';
                    out.bytes[out.len + 1] = b' ';
                    out.len += 2;
                }
                let mut digits = [0u8; 20];
                let (mut n, mut v) = (0, sizes[k]);
                loop {
                    digits[n] = b'0' + (v % 10) as u8;
                    n += 1;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                while n > 0 {
                    n -= 1;
                    out.bytes[out.len] = digits[n];
                    out.len += 1;
                }
                k += 1;
            }
            if !sizes.is_empty() {
                out.bytes[out.len] = b'>';
                out.len += 1;
            }
            out
        }

        pub const fn as_str(&self) -> &str {
            let (bytes, _) = self.bytes.split_at(self.len);
            match ::core::str::from_utf8(bytes) {
                Ok(s) => s,
                // a name cut inside a multi-byte character
                Err(_) => "a model with size parameters",
            }
        }
    }
}
