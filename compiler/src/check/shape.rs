//! Shapes: written shapes resolved, sizes unified (union-find, static assertions for Rust
//! constants, size parameters equal only to themselves) and shapes broadcast.

use super::Lowering;
use crate::ast::{DimAst, ShapeAst};
use crate::diagnostic::Span;
use crate::ir::*;

impl Lowering<'_> {
    /// A written shape; `N` (the rows) only where `allow_rows`, and only as the first axis.
    pub(super) fn shape(&mut self, s: &ShapeAst, allow_rows: bool) -> Shape {
        let mut dims = Vec::new();
        for d in &s.dims {
            dims.push(match d {
                DimAst::Lit(0, sp) => {
                    self.err(sp.clone(), "a size must be at least 1");
                    Dim::Lit(1)
                }
                DimAst::Lit(n, _) => Dim::Lit(*n),
                DimAst::Named(id) if id.name == "N" => {
                    if !allow_rows {
                        self.err(
                            id.span.clone(),
                            "the row dimension `N` belongs to inputs; local (per-row) latent sites are not supported yet",
                        );
                    }
                    Dim::Rows
                }
                DimAst::Named(id) => Dim::Const(id.name.clone()),
                DimAst::ParamsOf(net, layer, _) => match crate::check_net::params_of(self.nets, net, *layer) {
                    Ok(d) => d,
                    Err(e) => {
                        self.errors.push(e);
                        Dim::Lit(1)
                    }
                },
            });
        }
        if dims.iter().filter(|d| **d == Dim::Rows).count() > 1 {
            self.err(s.span.clone(), "only one axis can be the row dimension `N`");
        }
        if allow_rows && dims.iter().skip(1).any(|d| *d == Dim::Rows) {
            self.err(
                s.span.clone(),
                "the row dimension `N` must be the first axis",
            );
        }
        Shape(dims)
    }

    // ---- sizes -----------------------------------------------------------------------

    /// The representative of a size (itself when unified with none).
    pub(super) fn find(&self, d: &Dim) -> Dim {
        let mut d = d.clone();
        while let Some(p) = self.parent.get(&d) {
            d = p.clone();
        }
        d
    }

    /// Are two sizes equal? Literal sizes are compared now; a Rust `const` is assumed equal
    /// and checked by a static assertion in the generated code; a size parameter equals
    /// only itself (any other size is an error reported here, and the sizes count as equal
    /// so that the caller adds none of its own).
    pub(super) fn unify(
        &mut self,
        a: &Dim,
        b: &Dim,
        message: &dyn Fn() -> String,
        span: &Span,
    ) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        // A size parameter is any size: it equals itself only. (It is never a child in the
        // union-find, so it is its own representative.)
        let size = |d: &Dim| matches!(d, Dim::Const(c) if self.is_size(c));
        if size(&ra) || size(&rb) {
            let (param, other) = if size(&ra) { (&ra, b) } else { (&rb, a) };
            // The other side as written, unless it is itself a size parameter's.
            let other = if size(&self.find(other)) {
                self.find(other)
            } else {
                other.clone()
            };
            self.err(
                span.clone(),
                format!(
                    "`{param}` is a size parameter of {} and can be any size; it cannot be {other} here ({})",
                    self.model_name,
                    message()
                ),
            );
            // Reported: the caller goes on as if the sizes agreed, adding no second error.
            return true;
        }
        match (&ra, &rb) {
            (Dim::Rows, _) | (_, Dim::Rows) | (Dim::Lit(_), Dim::Lit(_)) => false,
            (Dim::Const(_), _) | (_, Dim::Const(_)) => {
                // Literals win as representatives: the generated types then use the literal.
                let (child, rep) = if matches!(rb, Dim::Lit(_)) {
                    (ra, rb)
                } else {
                    (rb, ra)
                };
                self.asserts.push(DimAssert {
                    lhs: a.clone(),
                    rhs: b.clone(),
                    message: message(),
                    span: span.clone(),
                });
                self.parent.insert(child, rep);
                true
            }
        }
    }

    /// Numpy-style broadcasting of two per-particle shapes, trailing axes aligned.
    pub(super) fn broadcast(
        &mut self,
        a: &Shape,
        b: &Shape,
        message: &dyn Fn() -> String,
        span: &Span,
    ) -> Option<Shape> {
        let rank = a.rank().max(b.rank());
        let mut out = Vec::with_capacity(rank);
        for i in 0..rank {
            let da = (i + a.rank()).checked_sub(rank).map(|j| &a.0[j]);
            let db = (i + b.rank()).checked_sub(rank).map(|j| &b.0[j]);
            out.push(match (da, db) {
                (Some(x), Some(y)) => {
                    if !self.unify(x, y, message, span) {
                        return None;
                    }
                    x.clone()
                }
                (Some(x), None) | (None, Some(x)) => x.clone(),
                (None, None) => unreachable!(),
            });
        }
        Some(Shape(out))
    }

    /// A shape as the messages write it.
    pub(super) fn show(&self, s: &Shape) -> String {
        s.to_string()
    }
}
