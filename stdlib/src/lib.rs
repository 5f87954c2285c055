//! ravi's standard library: distributions and guide families, built on `ravi-backend`'s
//! contracts. Each distribution and family is one small file.

#![deny(missing_docs)]

pub mod bijectors;
pub mod dist;
pub mod exact;
pub mod guides;
pub mod nn;
