use ravi::prelude::*;

const D: usize = 9;

model! {
    model LinReg(x: [N, D], y: [N]) {
        w ~ Normal(0.0, 1.0) [10];
        y ~ Normal(x @ w, 0.5);
    }
}

fn main() {}
