use ravi::prelude::*;

model! {
    model LinReg(x: [N, 10], y: [N]) {
        w ~ Normal(0.0, 1.0) [9];
        y ~ Normal(x @ w, 0.5);
    }
}

fn main() {}
