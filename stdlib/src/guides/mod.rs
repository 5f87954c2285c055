//! Guide families. Each works on a vector `z` of some dimension: one site, or several sites
//! flattened and concatenated, which is how a family becomes joint over sites.

mod mean_field;

pub use mean_field::MeanField;

/// Every family of the stdlib by name, as the compiler's catalogue names them.
pub const IMPLEMENTED: &[&str] = &["MeanField"];

/// Initial guide scale: small, so the first steps are not swamped by noise (the value
/// Pyro's and NumPyro's autoguides use too).
pub const INIT_SCALE: f32 = 0.1;
/// Scales never fall below this (softplus(ρ) + floor), so log q stays finite.
pub const SCALE_FLOOR: f32 = 1e-5;
