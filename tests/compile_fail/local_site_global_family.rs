use ravi::prelude::*;

model! {
    model Local(y: [N]) {
        z ~ Normal(0.0, 1.0) [N];
        y ~ Normal(z, 1.0);
    }
}
guide! { guide G for Local { z ~ FullRank; } }

fn main() {}
