use ravi::prelude::*;

model! {
    net Enc(x: [B, 4]) -> [B, 4] { Linear(4, 8) -> tanh -> Linear(8, 4) }
    net Dec(z: [B, 3]) -> [B, 4] { Linear(3, 4) }
    model Vae(x: [N, 4]) {
        param dec [params(Dec)];
        z ~ Normal(0.0, 1.0) [N, 3];
        x ~ Normal(Dec(z; dec), 1.0);
    }
}
guide! { guide G for Vae { z ~ Amortized(Enc(x)); } }

fn main() {}
