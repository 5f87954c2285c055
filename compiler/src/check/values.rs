//! What the checks know of a node's values (positive, in (0, 1), any real, unknown), and
//! the value of a node built only from numbers.

use super::Lowering;
use crate::ast::BinOp;
use crate::catalogue::Constraint;
use crate::ir::*;

impl Lowering<'_> {
    /// What the checks know of a node's values: `None` where they depend on data or Rust
    /// constants (unknown at compile time), else a set they lie in. Each node is worked out
    /// once (kept in `values_known`) and its operands before it, without recursion: shared
    /// subexpressions cost nothing more, and long chains need no stack.
    pub(super) fn values(&self, id: NodeId) -> Option<Constraint> {
        let mut known = self.values_known.borrow_mut();
        if known.len() < self.nodes.len() {
            known.resize(self.nodes.len(), None);
        }
        let mut stack = vec![id];
        while let Some(&n) = stack.last() {
            if known[n].is_some() {
                stack.pop();
                continue;
            }
            let pending: Vec<NodeId> = self.nodes[n]
                .op
                .operands()
                .into_iter()
                .filter(|&o| known[o].is_none())
                .collect();
            if pending.is_empty() {
                let v = self.values_of(n, &|o| known[o].expect("operands first"));
                known[n] = Some(v);
                stack.pop();
            } else {
                stack.extend(pending);
            }
        }
        known[id].expect("worked out above")
    }

    /// One node's values, from its operands' (`of`).
    fn values_of(
        &self,
        id: NodeId,
        of: &dyn Fn(NodeId) -> Option<Constraint>,
    ) -> Option<Constraint> {
        use Constraint::{Positive, Real, UnitInterval};
        let positive = |c: Constraint| c.within(Positive);
        Some(match &self.nodes[id].op {
            Op::Input(_) | Op::RustConst(_) => return None,
            // A fit checks its temperatures are positive.
            Op::Temperature => Positive,
            Op::Const(v) => {
                if *v > 0.0 {
                    Positive
                } else {
                    Real
                }
            }
            Op::Sample(_) => {
                let site = self.sites.iter().find(|s| s.value == id)?;
                match site.dist.support {
                    Positive | UnitInterval => site.dist.support,
                    Constraint::Simplex => UnitInterval,
                    _ => Real,
                }
            }
            Op::Neg(a) => {
                of(*a)?;
                Real
            }
            Op::Binary(op, a, b) => {
                let (x, y) = (of(*a)?, of(*b)?);
                match op {
                    BinOp::Mul if x == UnitInterval && y == UnitInterval => UnitInterval,
                    // c − w with w in (0, 1): the other weight of a convex combination
                    BinOp::Sub if y == UnitInterval => match self.const_value(*a) {
                        Some(1.0) => UnitInterval,
                        Some(c) if c > 1.0 => Positive,
                        _ => Real,
                    },
                    BinOp::Add | BinOp::Mul | BinOp::Div | BinOp::MatMul
                        if positive(x) && positive(y) =>
                    {
                        Positive
                    }
                    _ => Real,
                }
            }
            Op::MatMul(a, b) => {
                let (x, y) = (of(*a)?, of(*b)?);
                if positive(x) && positive(y) {
                    Positive
                } else {
                    Real
                }
            }
            Op::Func(f, a) => match f {
                Func::Exp | Func::Softplus => Positive,
                Func::Sigmoid => UnitInterval,
                Func::Log | Func::Tanh => {
                    of(*a)?;
                    Real
                }
                // positive in, positive out (abs and square of a real may be 0)
                Func::Sqrt | Func::Abs | Func::Square | Func::Log1p | Func::Expm1 => {
                    let x = of(*a)?;
                    match (f, x) {
                        (Func::Sqrt | Func::Abs | Func::Square, UnitInterval) => UnitInterval,
                        (_, x) if positive(x) => Positive,
                        _ => Real,
                    }
                }
            },
            Op::Pow(a, p) => match of(*a)? {
                UnitInterval if *p > 0.0 => UnitInterval,
                x if positive(x) => Positive,
                _ => Real,
            },
            Op::Gather(a, _) | Op::Slice { src: a, .. } | Op::Transpose(a) => of(*a)?,
            Op::Along(f, a, _) => {
                of(*a)?;
                match f {
                    AxisFunc::Softmax => UnitInterval,
                    AxisFunc::LogSumExp | AxisFunc::LogSoftmax => Real,
                }
            }
            Op::Net(_, x, w) => {
                of(*x)?;
                of(*w)?;
                Real
            }
            Op::Concat(parts) => {
                for p in parts {
                    of(*p)?;
                }
                Real
            }
            Op::Reduce(r, a, _) => {
                let x = of(*a)?;
                match (r, x) {
                    (Reduce::Mean, UnitInterval) => UnitInterval,
                    (_, x) if positive(x) => Positive,
                    _ => Real,
                }
            }
        })
    }

    /// The value of a node built only from numeric literals (Rust constants are unknown here).
    pub(super) fn const_value(&self, id: NodeId) -> Option<f64> {
        const_value(&self.nodes, id)
    }
}
