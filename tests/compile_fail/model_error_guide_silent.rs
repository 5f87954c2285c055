// A model with an error gives that error alone: its guide adds none (no "cannot find
// macro" at the guide).
use ravi::prelude::*;

model! {
    model LinReg(x: [N, 3], y: [N]) {
        w ~ Normal(0.0, 1.0) [3];
        y ~ Normal(x @ v, 0.5);
    }
}

guide! { guide LinRegGuide for LinReg { w ~ MeanField; } }

fn main() {}
