//! Constants the densities share.

/// ½ log 2π
pub(crate) const HALF_LN_2PI: f32 = 0.918_938_5;
/// log 2
pub(crate) const LN_2: f32 = std::f32::consts::LN_2;
/// log π
pub(crate) const LN_PI: f32 = 1.144_729_9;
