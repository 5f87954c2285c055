use ravi::prelude::*;

model! {
    model LinReg(x: [N, 3], y: [N]) {
        w ~ Normal(0.0, 1.0) [3];
        y_obs ~ Normal(x @ w, 0.5);
    }
}

fn main() {}
