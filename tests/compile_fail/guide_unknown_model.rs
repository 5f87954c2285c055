// A guide of a model that is not in scope, or of a type that is not a model: rustc says
// so at the model's name.
use ravi::prelude::*;

pub struct NotAModel;

guide! { guide G1 for NotAModel { mu ~ MeanField; } }
guide! { guide G2 for Missing { mu ~ MeanField; } }

fn main() {}
