//! `Net(x; theta)` in a model: the net's input rows and its weights (one vector, or one
//! per layer with weights, joined) checked against the net's declaration.

use super::Lowering;
use crate::ast;
use crate::diagnostic::Span;
use crate::ir::*;

impl Lowering<'_> {
    /// `Net(x; theta)`: x [R, F] rows of features, theta [params(Net)] → [R, O].
    pub(super) fn net_call(&mut self, idx: usize, call: &ast::Call, span: Span) -> Option<NodeId> {
        let net = &self.nets[idx];
        let (name, outputs) = (net.name.clone(), net.outputs);
        if call.weights.is_empty() {
            self.err(
                call.span.clone(),
                format!("a net call names its weights after a semicolon: `{name}(x; theta)` with theta of shape [params({name})]"),
            );
            return None;
        }
        if call.args.len() != 1 || call.args[0].name.is_some() {
            self.err(
                call.span.clone(),
                format!("net {name} takes one input: `{name}(x; theta)`"),
            );
            return None;
        }
        let x = self.net_input(idx, call)?;
        let xs = self.nodes[x].shape.clone();
        let w = self.net_weights(idx, call, &span)?;
        let p = self.nodes[x].particles || self.nodes[w].particles;
        let shape = Shape(vec![xs.0[0].clone(), Dim::Lit(outputs)]);
        Some(self.push(Op::Net(idx, x, w), shape, p, false, span))
    }

    /// The net's input: rows of what the net reads, [R, ..].
    fn net_input(&mut self, idx: usize, call: &ast::Call) -> Option<NodeId> {
        let net = &self.nets[idx];
        let (name, input) = (net.name.clone(), net.input);
        let x = self.expr(&call.args[0].value)?;
        let xs = self.nodes[x].shape.clone();
        let x_text = self.text(&call.args[0].value.span);
        let per_row: Vec<usize> = self.nets[idx].row_dims.clone();
        let dims = per_row
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let wanted = match input {
            NetInput::Features(f) if per_row.len() == 1 => {
                format!("rows of {f} features, [R, {dims}]")
            }
            NetInput::Features(_) => format!("rows of [{dims}], [R, {dims}]"),
            NetInput::Images { .. } => format!("rows of images, [R, {dims}]"),
        };
        let msg_x = || {
            format!(
                "shape mismatch: net {name} takes {wanted}, but {x_text} has shape {}",
                xs
            )
        };
        if xs.rank() != per_row.len() + 1 {
            self.err(call.args[0].value.span.clone(), msg_x());
            return None;
        }
        for (k, &d) in per_row.iter().enumerate() {
            if !self.unify(&xs.0[k + 1], &Dim::Lit(d), &msg_x, &call.args[0].value.span) {
                self.err(call.args[0].value.span.clone(), msg_x());
                return None;
            }
        }
        Some(x)
    }

    /// The net's weights: all in one vector, or one vector per layer with weights (joined
    /// here).
    fn net_weights(&mut self, idx: usize, call: &ast::Call, span: &Span) -> Option<NodeId> {
        let net = &self.nets[idx];
        let (name, n_params) = (net.name.clone(), net.num_params());
        let sizes = if call.weights.len() == 1 {
            vec![n_params]
        } else {
            self.nets[idx].layer_params()
        };
        if call.weights.len() != sizes.len() {
            self.err(
                call.weights[0].span.clone(),
                format!(
                    "net {name} takes its weights as one vector [params({name})] or one per Linear layer ({} of them), not {}",
                    sizes.len(),
                    call.weights.len()
                ),
            );
            return None;
        }
        let mut parts = Vec::new();
        for (k, (e, &size)) in call.weights.iter().zip(&sizes).enumerate() {
            let w = self.expr(e)?;
            let ws = self.nodes[w].shape.clone();
            let w_text = self.text(&e.span);
            let what = if sizes.len() == 1 {
                format!("net {name} has {size} weights")
            } else {
                format!("layer {k} of net {name} has {size} weights")
            };
            let msg_w = || format!("shape mismatch: {what}, but {w_text} has shape {ws}");
            if ws.rank() != 1 || !self.unify(&ws.0[0], &Dim::Lit(size), &msg_w, &e.span) {
                self.err(e.span.clone(), msg_w());
                return None;
            }
            parts.push(w);
        }
        Some(if parts.len() == 1 {
            parts[0]
        } else {
            let p = parts.iter().any(|&q| self.nodes[q].particles);
            self.push(
                Op::Concat(parts),
                Shape(vec![Dim::Lit(n_params)]),
                p,
                false,
                span.clone(),
            )
        })
    }
}
