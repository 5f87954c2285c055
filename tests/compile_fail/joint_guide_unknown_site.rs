use ravi::prelude::*;

model! {
    model LinReg(x: [N, 3], y: [N]) {
        w ~ Normal(0.0, 1.0) [3];
        b ~ Normal(0.0, 1.0);
        y ~ Normal(x @ w + b, 0.5);
    }
}
guide! { guide G for LinReg { (w, c) ~ FullRank; } }

fn main() {}
