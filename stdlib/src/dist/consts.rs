//! Constants the densities share.

pub(crate) use ravi_backend::math::HALF_LN_2PI;
/// log 2
pub(crate) const LN_2: f32 = std::f32::consts::LN_2;
/// log π
pub(crate) const LN_PI: f32 = 1.144_729_9;
