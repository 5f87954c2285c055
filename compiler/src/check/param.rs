//! `param name [shape] = init;` in a model: a latent site with no prior, held by every
//! guide as a point mass.

use super::{Binding, Lowering};
use crate::ast;
use crate::catalogue;
use crate::ir::*;

impl Lowering<'_> {
    /// `param name [shape] = init;`: a latent site with no prior that the guide holds as a
    /// point mass.
    pub(super) fn param(&mut self, decl: &ast::ParamDecl) {
        if !self.define_check(&decl.name) {
            return;
        }
        self.scope.insert(decl.name.name.clone(), Binding::Poisoned);
        if decl.positive {
            self.err(
                decl.span.clone(),
                "a model `param` is real-valued; map it where it is used (e.g. `softplus(s)`)",
            );
            return;
        }
        let shape = match &decl.shape {
            Some(s) => {
                if let Some(ast::DimAst::Named(id)) = s
                    .dims
                    .iter()
                    .find(|d| matches!(d, ast::DimAst::Named(id) if id.name == "N"))
                {
                    self.err(
                        id.span.clone(),
                        "a `param` is one point for all rows; it has no row dimension `N`",
                    );
                    return;
                }
                self.shape(s, false)
            }
            None => Shape::scalar(),
        };
        let Some(init) = self.param_init(decl) else {
            return;
        };
        let idx = self.n_latents;
        self.n_latents += 1;
        let node = self.push(
            Op::Sample(idx),
            shape.clone(),
            true,
            false,
            decl.name.span.clone(),
        );
        self.scope
            .insert(decl.name.name.clone(), Binding::Node(node));
        self.sites.push(Site {
            name: decl.name.name.clone(),
            observed: None,
            dist: &catalogue::FLAT,
            parametrization: &catalogue::FLAT.parametrizations[0],
            args: Vec::new(),
            shape,
            value: node,
            mixture: false,
            ordered: false,
            param: Some(init),
            span: decl.span.clone(),
        });
    }

    /// Where a `param` starts: its number, Glorot blocks for a net's weights, else 0.
    fn param_init(&mut self, decl: &ast::ParamDecl) -> Option<ParamInitIr> {
        let net_dim = decl.shape.as_ref().and_then(|s| match s.dims.as_slice() {
            [ast::DimAst::ParamsOf(net, layer, _)] => self
                .nets
                .iter()
                .position(|n| n.name == net.name)
                .map(|i| (i, *layer)),
            _ => None,
        });
        Some(match (&decl.init, net_dim) {
            (Some(e), _) => {
                let node = self.expr(e)?;
                match self.const_value(node) {
                    Some(v) if crate::limits::fits_f32(v) => ParamInitIr::Value(v),
                    Some(v) => {
                        self.err(
                            e.span.clone(),
                            format!(
                                "a `param` starts at a number that fits in f32 (at most {} in magnitude); `{}` is {}",
                                crate::limits::MAX_F32_TEXT,
                                self.text(&e.span),
                                crate::limits::show_number(v)
                            ),
                        );
                        return None;
                    }
                    None => {
                        self.err(
                            e.span.clone(),
                            format!(
                                "a `param` starts at a number; `{}` is not one",
                                self.text(&e.span)
                            ),
                        );
                        return None;
                    }
                }
            }
            (None, Some((net, layer))) => ParamInitIr::Net(net, layer),
            (None, None) => ParamInitIr::Value(0.0),
        })
    }
}
