//! A guide's `param` declarations (shapes, starts), and the check that each feeds a draw.

use super::number;
use crate::ast;
use crate::diagnostic::Diagnostic;
use crate::ir::*;

/// `param` declarations: shapes of literal sizes or Rust constants, numeric initial values
/// (positive for a positive parameter; 0 and 1 by default).
pub(super) fn lower_params(
    g: &ast::GuideDef,
    model: &ModelIr,
    errors: &mut Vec<Diagnostic>,
) -> Vec<ParamIr> {
    let mut out: Vec<ParamIr> = Vec::new();
    for p in &g.params {
        if out.iter().any(|q| q.name == p.name.name) {
            errors.push(Diagnostic::new(
                p.name.span.clone(),
                format!("parameter `{}` is declared twice", p.name.name),
            ));
            continue;
        }
        let mut dims = Vec::new();
        let mut net_init = None;
        for d in p.shape.iter().flat_map(|s| &s.dims) {
            match d {
                ast::DimAst::Lit(n, _) => dims.push(Dim::Lit(*n)),
                ast::DimAst::Named(id) if id.name == "N" => errors.push(Diagnostic::new(
                    id.span.clone(),
                    "a guide parameter has no row dimension `N`",
                )),
                ast::DimAst::Named(id) => dims.push(Dim::Const(id.name.clone())),
                ast::DimAst::ParamsOf(net, layer, _) => {
                    match crate::check_net::params_of(&model.nets, net, *layer) {
                        Ok(d) => {
                            dims.push(d);
                            net_init = model
                                .nets
                                .iter()
                                .position(|n| n.name == net.name)
                                .map(|i| (i, *layer));
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        let numel = crate::limits::product(dims.iter().map(|d| match d {
            Dim::Lit(n) => *n,
            _ => 1,
        }));
        if let (None, Some(s)) = (numel, &p.shape) {
            errors.push(Diagnostic::new(
                s.span.clone(),
                format!(
                    "parameter `{}` has more than {} (2^31) elements, the most a value may have",
                    p.name.name,
                    crate::limits::MAX_SIZE
                ),
            ));
        }
        let default = if p.positive { 1.0 } else { 0.0 };
        let init = match &p.init {
            None => default,
            Some(e) => match number(e) {
                Some(v) if !p.positive || v > 0.0 => v,
                _ => {
                    errors.push(Diagnostic::new(
                        e.span.clone(),
                        format!(
                            "the initial value of `{}` must be a {}number",
                            p.name.name,
                            if p.positive { "positive " } else { "" }
                        ),
                    ));
                    default
                }
            },
        };
        out.push(ParamIr {
            name: p.name.name.clone(),
            net_init: net_init.filter(|_| dims.len() == 1 && p.init.is_none() && !p.positive),
            shape: Shape(dims),
            positive: p.positive,
            init,
            span: p.name.span.clone(),
        });
    }
    out
}

/// Every parameter must feed some draw (an unused one would have no gradient).
pub(super) fn check_params_used(
    g: &ast::GuideDef,
    params: &[ParamIr],
    programs: &[ProgramSiteIr],
    errors: &mut Vec<Diagnostic>,
) {
    for (i, p) in params.iter().enumerate() {
        let used = programs.iter().any(|q| {
            q.args.iter().any(|a| match a {
                ProgramArg::Param(j) => *j == i,
                ProgramArg::Net { param, .. } => *param == i,
                ProgramArg::Const(_) => false,
            })
        });
        if !used && errors.is_empty() {
            errors.push(Diagnostic::new(
                p.span.clone(),
                format!(
                    "parameter `{}` is declared but no site of guide {} uses it",
                    p.name, g.name.name
                ),
            ));
        }
    }
}
