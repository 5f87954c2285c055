//! Expressions of a model: names, numbers, arithmetic with broadcasting, `@` products,
//! elementwise functions and reductions.

use super::{Binding, Lowering};
use crate::ast::{self, BinOp, ExprKind};
use crate::catalogue;
use crate::diagnostic::Span;
use crate::ir::*;

impl Lowering<'_> {
    /// The node an expression computes (`None` after an error, reported or not).
    pub(super) fn expr(&mut self, e: &ast::Expr) -> Option<NodeId> {
        let span = e.span.clone();
        match &e.kind {
            ExprKind::Num(v) => Some(self.push(Op::Const(*v), Shape::scalar(), false, true, span)),
            ExprKind::Name(id) => match self.scope.get(&id.name) {
                Some(Binding::Node(n)) => Some(*n),
                Some(Binding::Poisoned) => None,
                // A size parameter, as a number (`D as f32` in the generated code).
                Some(Binding::Size) => Some(self.push(
                    Op::RustConst(id.name.clone()),
                    Shape::scalar(),
                    false,
                    true,
                    span,
                )),
                // The step's relaxation temperature: a number at run time.
                None if id.name == "temperature" => {
                    Some(self.push(Op::Temperature, Shape::scalar(), false, true, span))
                }
                None if is_rust_const(&id.name) => Some(self.push(
                    Op::RustConst(id.name.clone()),
                    Shape::scalar(),
                    false,
                    true,
                    span,
                )),
                None => {
                    // (sorted, so that a tie picks the same name every time)
                    let hint = if catalogue::suggestions_left() {
                        let mut names: Vec<&str> = self.scope.keys().map(String::as_str).collect();
                        names.sort_unstable();
                        catalogue::suggest(&id.name, names.iter().copied())
                            .map(|s| format!("; did you mean `{s}`?"))
                            .unwrap_or_default()
                    } else {
                        String::new()
                    };
                    self.err(
                        id.span.clone(),
                        format!(
                            "unknown name `{}`: not an input, a site or a `let` binding of model {} (a Rust constant in scope is written in UPPER_CASE){hint}",
                            id.name, self.model_name
                        ),
                    );
                    None
                }
            },
            ExprKind::Neg(a) => {
                let a = self.expr(a)?;
                let n = &self.nodes[a];
                let (shape, p, c) = (n.shape.clone(), n.particles, n.constant);
                Some(self.push(Op::Neg(a), shape, p, c, span))
            }
            ExprKind::Binary(BinOp::MatMul, a, b) => self.matmul(a, b, span),
            ExprKind::Binary(op, a, b) => {
                let (ia, ib) = (self.expr(a), self.expr(b));
                let (ia, ib) = (ia?, ib?);
                let (sa, sb) = (self.nodes[ia].shape.clone(), self.nodes[ib].shape.clone());
                let (ta, tb) = (self.text(&a.span), self.text(&b.span));
                let msg = || {
                    format!(
                        "shape mismatch: {ta} {} {tb} has {ta}: {sa} but {tb}: {sb}",
                        op.symbol()
                    )
                };
                let Some(shape) = self.broadcast(&sa, &sb, &msg, &span) else {
                    self.err(span, msg());
                    return None;
                };
                let p = self.nodes[ia].particles || self.nodes[ib].particles;
                let c = self.nodes[ia].constant && self.nodes[ib].constant;
                Some(self.push(Op::Binary(*op, ia, ib), shape, p, c, span))
            }
            ExprKind::Call(call) => self.call(call, span),
            ExprKind::Index(a, index) => self.index(a, index, span),
            ExprKind::List(_) => {
                self.err(
                    span,
                    "a list like `[64, 64]` is only an argument of a guide family",
                );
                None
            }
        }
    }

    /// `a @ b`: vectors or matrices, the contracted sizes unified.
    fn matmul(&mut self, a: &ast::Expr, b: &ast::Expr, span: Span) -> Option<NodeId> {
        let (ia, ib) = (self.expr(a), self.expr(b));
        let (ia, ib) = (ia?, ib?);
        let (sa, sb) = (self.nodes[ia].shape.clone(), self.nodes[ib].shape.clone());
        let (ta, tb) = (self.text(&a.span), self.text(&b.span));
        for (s, t, sp) in [(&sa, ta, &a.span), (&sb, tb, &b.span)] {
            if !(1..=2).contains(&s.rank()) {
                self.err(
                    sp.clone(),
                    format!("`@` needs a vector or a matrix on each side, but {t} has shape {s}"),
                );
                return None;
            }
        }
        let k_a = sa.0.last().expect("rank checked").clone();
        // The contracted axis of b is its first, whether b is a vector or a matrix.
        let k_b = sb.0[0].clone();
        let msg = || format!("shape mismatch: {ta} @ {tb} has {ta}: {sa} but {tb}: {sb}");
        if !self.unify(&k_a, &k_b, &msg, &span) {
            self.err(span, msg());
            return None;
        }
        let mut out = Vec::new();
        if sa.rank() == 2 {
            out.push(sa.0[0].clone());
        }
        if sb.rank() == 2 {
            out.push(sb.0[1].clone());
        }
        let p = self.nodes[ia].particles || self.nodes[ib].particles;
        // Compile-time constants are scalars, which the rank check above rejects.
        debug_assert!(!self.nodes[ia].constant && !self.nodes[ib].constant);
        Some(self.push(Op::MatMul(ia, ib), Shape(out), p, false, span))
    }

    /// `f(x)`: a net call, an elementwise function or a reduction (`sum`, `mean`).
    fn call(&mut self, call: &ast::Call, span: Span) -> Option<NodeId> {
        let fname = call.name.name.as_str();
        if let Some(idx) = self.nets.iter().position(|n| n.name == fname) {
            return self.net_call(idx, call, span);
        }
        if !call.weights.is_empty() {
            self.err(
                call.name.span.clone(),
                format!(
                    "`{fname}` is not a net (`Net(x; weights)` calls a net declared with `net`)"
                ),
            );
            return None;
        }
        if let Some(a) = call.args.iter().find_map(|a| a.name.as_ref()) {
            self.err(
                a.span.clone(),
                format!("`{fname}` takes no named arguments"),
            );
            return None;
        }
        if let Some(f) = Func::from_name(fname) {
            if call.args.len() != 1 {
                self.err(
                    call.span.clone(),
                    format!(
                        "`{fname}` takes 1 argument but {} were given",
                        call.args.len()
                    ),
                );
                return None;
            }
            let a = self.expr(&call.args[0].value)?;
            let n = &self.nodes[a];
            let (shape, p, c) = (n.shape.clone(), n.particles, n.constant);
            return Some(self.push(Op::Func(f, a), shape, p, c, span));
        }
        if fname == "pow" {
            return self.pow(call, span);
        }
        if let Some(f) = AxisFunc::from_name(fname) {
            return self.along(f, call, span);
        }
        match fname {
            "transpose" => return self.transpose(call, span),
            "concat" => return self.concat(call, span),
            _ => {}
        }
        let reduce = self.reduction(call)?;
        self.reduce_call(reduce, call, span)
    }

    /// `pow(e, p)` with p a number.
    fn pow(&mut self, call: &ast::Call, span: Span) -> Option<NodeId> {
        if call.args.len() != 2 {
            self.err(
                call.span.clone(),
                format!(
                    "`pow` takes 2 arguments, `pow(e, number)`, but {} were given",
                    call.args.len()
                ),
            );
            return None;
        }
        let a = self.expr(&call.args[0].value)?;
        let exponent = &call.args[1].value;
        let Some(p) = super::number(exponent).filter(|p| p.is_finite()) else {
            self.err(
                exponent.span.clone(),
                "the exponent of `pow(e, p)` is a number, like `pow(x, 1.5)` (for e^x write `exp(x)`)",
            );
            return None;
        };
        let n = &self.nodes[a];
        let (shape, particles, constant) = (n.shape.clone(), n.particles, n.constant);
        Some(self.push(Op::Pow(a, p), shape, particles, constant, span))
    }

    /// `logsumexp(e, axis)`, `softmax(e)`, ...: along the axis named, or the last.
    fn along(&mut self, f: AxisFunc, call: &ast::Call, span: Span) -> Option<NodeId> {
        let fname = f.name();
        if !(1..=2).contains(&call.args.len()) {
            self.err(
                call.span.clone(),
                format!("`{fname}` takes 1 or 2 arguments (a value, and optionally an axis; the last by default) but {} were given", call.args.len()),
            );
            return None;
        }
        let a = self.expr(&call.args[0].value)?;
        let n = self.nodes[a].clone();
        if n.shape.rank() == 0 {
            self.err(
                call.args[0].value.span.clone(),
                format!(
                    "`{fname}` works along an axis, but {} is a scalar",
                    self.text(&call.args[0].value.span)
                ),
            );
            return None;
        }
        let axis = match call.args.get(1) {
            None => n.shape.rank() - 1,
            Some(arg) => self.reduce_axis(fname, arg, &n.shape)?,
        };
        let mut dims = n.shape.0.clone();
        if f == AxisFunc::LogSumExp {
            dims.remove(axis);
        }
        Some(self.push(Op::Along(f, a, axis), Shape(dims), n.particles, false, span))
    }

    /// `transpose(m)`: a matrix's axes swapped.
    fn transpose(&mut self, call: &ast::Call, span: Span) -> Option<NodeId> {
        if call.args.len() != 1 {
            self.err(
                call.span.clone(),
                format!(
                    "`transpose` takes 1 argument, a matrix, but {} were given",
                    call.args.len()
                ),
            );
            return None;
        }
        let a = self.expr(&call.args[0].value)?;
        let n = self.nodes[a].clone();
        if n.shape.rank() != 2 {
            self.err(
                call.args[0].value.span.clone(),
                format!(
                    "`transpose` takes a matrix, but {} has shape {}",
                    self.text(&call.args[0].value.span),
                    n.shape
                ),
            );
            return None;
        }
        let dims = vec![n.shape.0[1].clone(), n.shape.0[0].clone()];
        Some(self.push(Op::Transpose(a), Shape(dims), n.particles, false, span))
    }

    /// `concat(a, b, ..)`: vectors of fixed sizes joined end to end, one of them at least
    /// depending on a latent (data are joined before the fit).
    fn concat(&mut self, call: &ast::Call, span: Span) -> Option<NodeId> {
        if call.args.len() < 2 {
            self.err(
                call.span.clone(),
                "`concat` joins two or more vectors: `concat(a, b)`",
            );
            return None;
        }
        let mut parts = Vec::new();
        let mut total = 0usize;
        for arg in &call.args {
            let id = self.expr(&arg.value)?;
            let shape = self.nodes[id].shape.clone();
            let size = match shape.0.as_slice() {
                [d] => match self.find(d) {
                    Dim::Lit(k) => Some(k),
                    _ => None,
                },
                _ => None,
            };
            let Some(size) = size else {
                self.err(
                    arg.value.span.clone(),
                    format!(
                        "`concat` joins vectors of sizes that are numbers, but {} has shape {}",
                        self.text(&arg.value.span),
                        shape
                    ),
                );
                return None;
            };
            total = total.saturating_add(size);
            parts.push(id);
        }
        if !parts.iter().any(|&p| self.nodes[p].particles) {
            self.err(
                call.span.clone(),
                "`concat` of data alone: join the data in Rust before the fit",
            );
            return None;
        }
        Some(self.push(
            Op::Concat(parts),
            Shape(vec![Dim::Lit(total)]),
            true,
            false,
            span,
        ))
    }

    /// `sum` or `mean` by name (an error, with a hint, for an unknown function).
    fn reduction(&mut self, call: &ast::Call) -> Option<Reduce> {
        let fname = call.name.name.as_str();
        match fname {
            "sum" => Some(Reduce::Sum),
            "mean" => Some(Reduce::Mean),
            _ => {
                let known = catalogue::ELEMENTWISE
                    .iter()
                    .chain(catalogue::REDUCTIONS)
                    .chain(catalogue::ALONG_AXIS)
                    .chain(catalogue::SHAPE_FUNCTIONS)
                    .copied();
                let hint = if catalogue::distribution(fname).is_some() {
                    format!("; `{fname}` is a distribution, used as `site ~ {fname}(...)`")
                } else {
                    catalogue::suggest(fname, known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default()
                };
                self.err(
                    call.name.span.clone(),
                    format!("unknown function `{fname}`{hint}"),
                );
                None
            }
        }
    }

    /// `sum(x)` or `mean(x, axis)`: over every axis, or the one named (negative from the end).
    fn reduce_call(&mut self, reduce: Reduce, call: &ast::Call, span: Span) -> Option<NodeId> {
        let fname = call.name.name.as_str();
        if !(1..=2).contains(&call.args.len()) {
            self.err(
                call.span.clone(),
                format!("`{fname}` takes 1 or 2 arguments (a value, and optionally an axis) but {} were given", call.args.len()),
            );
            return None;
        }
        let a = self.expr(&call.args[0].value)?;
        let n = self.nodes[a].clone();
        let axis = match call.args.get(1) {
            None => None,
            Some(arg) => Some(self.reduce_axis(fname, arg, &n.shape)?),
        };
        let shape = match axis {
            None => Shape::scalar(),
            Some(ax) => {
                let mut d = n.shape.0.clone();
                d.remove(ax);
                Shape(d)
            }
        };
        Some(self.push(
            Op::Reduce(reduce, a, axis),
            shape,
            n.particles,
            n.constant,
            span,
        ))
    }

    /// The axis a reduction names: an integer literal from −rank to rank − 1.
    fn reduce_axis(&mut self, fname: &str, arg: &ast::Arg, shape: &Shape) -> Option<usize> {
        let rank = shape.rank() as i64;
        let v = match &arg.value.kind {
            ExprKind::Num(v) => Some(*v),
            ExprKind::Neg(inner) => match inner.kind {
                ExprKind::Num(v) => Some(-v),
                _ => None,
            },
            _ => None,
        };
        match v {
            Some(v) if v.fract() == 0.0 && (-rank..rank).contains(&(v as i64)) => {
                Some(((v as i64 + rank) % rank.max(1)) as usize)
            }
            _ => {
                self.err(
                    arg.value.span.clone(),
                    format!(
                        "the axis of `{fname}` must be an integer from {} to {} for a value of shape {}",
                        -rank,
                        rank - 1,
                        shape
                    ),
                );
                None
            }
        }
    }
}

/// `D`, `SIGMA`, `N_HIDDEN`: the Rust convention for constants.
pub(super) fn is_rust_const(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
