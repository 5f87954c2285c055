//! `a[g]`, `a[k]` and `a[lo..hi]`: picking along a value's first axis. An index that is
//! not a number must be an integer input whose declared range fits that axis, so a fit can
//! never read outside it (the data are checked against the range when they arrive).

use super::Lowering;
use crate::ast::{self, ExprKind};
use crate::diagnostic::Span;
use crate::ir::*;

impl Lowering<'_> {
    /// The node `a[index]` computes.
    pub(super) fn index(
        &mut self,
        a: &ast::Expr,
        index: &ast::Index,
        span: Span,
    ) -> Option<NodeId> {
        let src = self.expr(a)?;
        let shape = self.nodes[src].shape.clone();
        let a_text = self.text(&a.span).to_string();
        let Some(first) = shape.0.first().map(|d| self.find(d)) else {
            self.err(
                a.span.clone(),
                format!("`{a_text}` is a scalar: only a value with an axis can be indexed"),
            );
            return None;
        };
        let size = match first {
            Dim::Lit(n) => n,
            Dim::Rows => {
                self.err(
                    a.span.clone(),
                    format!("`{a_text}` has the rows N for its first axis: index a value of a fixed size, like a latent `[J]`"),
                );
                return None;
            }
            Dim::Const(c) if self.is_size(&c) => {
                self.err(
                    a.span.clone(),
                    format!("the first axis of `{a_text}` is the size parameter `{c}`, which can be any size: index a value whose size is a number"),
                );
                return None;
            }
            Dim::Const(c) => {
                self.err(
                    a.span.clone(),
                    format!("the first axis of `{a_text}` is the Rust constant `{c}`, whose value the checks cannot see: index a value whose size is a number"),
                );
                return None;
            }
        };
        match index {
            ast::Index::Range(lo, hi, sp) => self.slice(src, size, *lo, *hi, true, sp, span),
            ast::Index::At(e) => match super::number(e) {
                Some(k) if k >= 0.0 && k.fract() == 0.0 => {
                    let k = k as usize;
                    self.slice(src, size, k, k.saturating_add(1), false, &e.span, span)
                }
                Some(_) => {
                    self.err(
                        e.span.clone(),
                        "an index is a whole number from 0, a range like `1..3`, or an integer input",
                    );
                    None
                }
                None => self.gather(src, size, &a_text, e, span),
            },
        }
    }

    /// `a[lo..hi]` (`keep`) or `a[lo]`, checked against the axis' `size`.
    #[allow(clippy::too_many_arguments)]
    fn slice(
        &mut self,
        src: NodeId,
        size: usize,
        lo: usize,
        hi: usize,
        keep: bool,
        index_span: &Span,
        span: Span,
    ) -> Option<NodeId> {
        if lo >= hi || hi > size {
            let what = if keep {
                format!("the range {lo}..{hi}")
            } else {
                format!("index {lo}")
            };
            self.err(
                index_span.clone(),
                format!("{what} is outside the first axis, of size {size} (indices 0..{size})"),
            );
            return None;
        }
        let node = &self.nodes[src];
        let mut dims = node.shape.0.clone();
        let (particles, constant) = (node.particles, node.constant);
        if keep {
            dims[0] = Dim::Lit(hi - lo);
        } else {
            dims.remove(0);
        }
        let op = Op::Slice {
            src,
            start: lo,
            len: hi - lo,
            keep,
        };
        Some(self.push(op, Shape(dims), particles, constant, span))
    }

    /// `a[g]` with `g` an integer input of one axis, its range within `a`'s first axis.
    fn gather(
        &mut self,
        src: NodeId,
        size: usize,
        a_text: &str,
        e: &ast::Expr,
        span: Span,
    ) -> Option<NodeId> {
        let g_text = self.text(&e.span).to_string();
        let input = match &e.kind {
            ExprKind::Name(_) => {
                let g = self.expr(e)?;
                match self.nodes[g].op {
                    Op::Input(i) => Some((g, i)),
                    _ => None,
                }
            }
            _ => None,
        };
        let Some((g, i)) = input else {
            self.err(
                e.span.clone(),
                format!("`{g_text}` cannot index: an index is an integer input (`{g_text}: [N] in 0..J`), a whole number or a range like `1..3`"),
            );
            return None;
        };
        let declared = self.inputs[i].clone();
        let range = match declared.integers {
            Some((lo, Some(hi))) if lo >= 0 => Some(hi),
            _ => None,
        };
        let Some(hi) = range else {
            self.err(
                e.span.clone(),
                format!("`{g_text}` indexes `{a_text}`, so it must be declared as integers within its first axis: `{g_text}: {} in 0..{size}`", declared.shape),
            );
            return None;
        };
        if hi > size as i64 {
            self.err(
                e.span.clone(),
                format!("`{g_text}` holds integers up to {} (declared `in {}..{hi}`), but `{a_text}` has {size} along its first axis", hi - 1, declared.integers.map_or(0, |d| d.0)),
            );
            return None;
        }
        if declared.shape.rank() != 1 {
            self.err(
                e.span.clone(),
                format!(
                    "an index has one axis, but `{g_text}` has shape {}",
                    declared.shape
                ),
            );
            return None;
        }
        let node = &self.nodes[src];
        let mut dims = node.shape.0.clone();
        dims[0] = declared.shape.0[0].clone();
        let particles = node.particles;
        Some(self.push(Op::Gather(src, g), Shape(dims), particles, false, span))
    }
}
