//! Where a fit starts.

mod start;

pub use start::{FamilyStart, Start};
