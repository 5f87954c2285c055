//! Distribution parameters: a compile-time number or a tensor of the value's shape, and the
//! arithmetic between them and values, so each density is written once for both.

use dfdx::prelude::*;
use dfdx::shapes::Shape;
use dfdx::tensor::Tensor;
use ravi_backend::{Backend, Tape};

use super::special;

/// A distribution parameter: a compile-time number or a tensor of the value's shape.
pub enum Arg<S: Shape, D: Backend, T: Tape<D>> {
    /// A number, the same for every element.
    Scalar(f32),
    /// One value per element.
    Tensor(Tensor<S, f32, D, T>),
}

/// A tensor of the value's shape on the value's tape.
pub type Value<S, D, T> = Tensor<S, f32, D, T>;

impl<S: Shape, D: Backend, T: Tape<D>> Arg<S, D, T> {
    /// A second use of the same parameter (a re-taped view for a tensor).
    pub fn again(&self) -> Self {
        match self {
            Arg::Scalar(c) => Arg::Scalar(*c),
            Arg::Tensor(t) => Arg::Tensor(t.retaped::<T>()),
        }
    }

    fn map(
        self,
        s: impl FnOnce(f32) -> f32,
        t: impl FnOnce(Value<S, D, T>) -> Value<S, D, T>,
    ) -> Self {
        match self {
            Arg::Scalar(c) => Arg::Scalar(s(c)),
            Arg::Tensor(x) => Arg::Tensor(t(x)),
        }
    }

    /// The natural logarithm, elementwise.
    pub fn ln(self) -> Self {
        self.map(f32::ln, |t| t.ln())
    }

    /// −x, elementwise.
    pub fn negated(self) -> Self {
        self.map(|c| -c, |t| t.negate())
    }

    /// 1 / x, elementwise.
    pub fn recip(self) -> Self {
        self.map(f32::recip, |t| t.recip())
    }

    /// x², elementwise.
    pub fn square(self) -> Self {
        self.map(|c| c * c, |t| t.square())
    }

    /// log Γ, for positive arguments.
    pub fn lgamma(self) -> Self {
        self.map(special::ln_gamma_f32, special::ln_gamma)
    }

    /// log(1 + eˣ)
    pub fn softplus(self) -> Self {
        self.map(ravi_backend::ops::softplus_f32, ravi_backend::ops::softplus)
    }

    /// x + c, elementwise.
    pub fn add_scalar(self, c: f32) -> Self {
        self.map(|v| v + c, |t| t + c)
    }

    /// x · c, elementwise.
    pub fn mul_scalar(self, c: f32) -> Self {
        self.map(|v| v * c, |t| t * c)
    }
}

macro_rules! arg_binary {
    ($fn_arg:ident, $fn_value:ident, $op:tt, $try:ident, |$a:ident, $b:ident| $scalar_left:expr) => {
        impl<S: Shape, D: Backend, T: Tape<D>> Arg<S, D, T> {
            /// Elementwise, between two parameters.
            pub fn $fn_arg(self, other: Self) -> Self {
                match (self, other) {
                    (Arg::Scalar(a), Arg::Scalar(b)) => Arg::Scalar(a $op b),
                    (Arg::Tensor(a), Arg::Scalar(b)) => Arg::Tensor(a $op b),
                    (Arg::Scalar($a), Arg::Tensor($b)) => Arg::Tensor($scalar_left),
                    (Arg::Tensor(a), Arg::Tensor(b)) => Arg::Tensor(a.$try(b).expect("same shapes")),
                }
            }
        }

        /// Elementwise, a value and a parameter.
        pub fn $fn_value<S: Shape, D: Backend, T: Tape<D>>(x: Value<S, D, T>, a: Arg<S, D, T>) -> Value<S, D, T> {
            match a {
                Arg::Scalar(c) => x $op c,
                Arg::Tensor(t) => x.$try(t).expect("same shapes"),
            }
        }
    };
}

arg_binary!(plus, add, +, try_add, |a, b| b + a);
arg_binary!(minus, sub, -, try_sub, |a, b| b.negate() + a);
arg_binary!(times, mul, *, try_mul, |a, b| b * a);
arg_binary!(over, div, /, try_div, |a, b| b.recip() * a);

impl<S: Shape, D: Backend, T: Tape<D>> Arg<S, D, T> {
    /// This parameter as a tensor of `like`'s shape (a constant holds no gradient).
    pub fn to_value(self, like: &Value<S, D, T>) -> Value<S, D, T> {
        match self {
            Arg::Tensor(t) => t,
            Arg::Scalar(c) => {
                let dev = like.device().clone();
                let t: Tensor<S, f32, D> = dev.ones_like(like) * c;
                t.retaped::<T>()
            }
        }
    }
}
