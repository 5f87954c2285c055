//! Guide programs: `site ~ Normal(loc, scale)` (or LogNormal) drawn from the guide's
//! `param`s and numbers, or for a local site from nets of the data's rows.

use super::{number, row_numel};
use crate::ast::{self, ExprKind};
use crate::catalogue::{self, DistSpec};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

/// A program line under its checks: the model, the guide's parameters, the site it draws
/// and the distribution it draws from.
struct Line<'a> {
    model: &'a ModelIr,
    params: &'a [ParamIr],
    site: &'a Site,
    dist: &'static DistSpec,
}

/// Reports `msg` at `sp`; nothing is lowered.
fn fail<T>(errors: &mut Vec<Diagnostic>, sp: &Span, msg: String) -> Option<T> {
    errors.push(Diagnostic::new(sp.clone(), msg));
    None
}

/// `site ~ Dist(args)` in a guide program: one site, a distribution the guide can sample
/// by reparametrization onto that site's support, and arguments that are numbers or
/// parameters of a matching shape.
pub(super) fn program_site(
    model: &ModelIr,
    params: &[ParamIr],
    entry: &ast::GuideEntry,
    dist: &'static DistSpec,
    sites: &[usize],
    errors: &mut Vec<Diagnostic>,
) -> Option<ProgramSiteIr> {
    let call = &entry.family;
    if entry.sites.len() != 1 {
        errors.push(Diagnostic::new(
            entry.span.clone(),
            format!(
                "a distribution in a guide covers one site; `{}` cannot be joint",
                dist.name
            ),
        ));
        return None;
    }
    let &site_idx = sites.first()?;
    let site = model.latents().nth(site_idx).expect("a latent index").1;
    // What the guide can draw, on the support the model maps to.
    let fits = matches!(
        (dist.name, site.dist.support),
        ("Normal", catalogue::Constraint::Real) | ("LogNormal", catalogue::Constraint::Positive)
    );
    if !fits {
        errors.push(Diagnostic::new(
            call.name.span.clone(),
            format!(
                "a guide program draws `{}` from Normal (a real site) or LogNormal (a positive site); `{}` is {} and {} cannot be drawn here",
                site.name,
                site.name,
                site.dist.support.describe(),
                dist.name
            ),
        ));
        return None;
    }
    let line = Line {
        model,
        params,
        site,
        dist,
    };
    let args = line.args(call, errors)?;
    Some(ProgramSiteIr {
        site: site_idx,
        dist,
        args,
        span: entry.span.clone(),
    })
}

impl Line<'_> {
    /// The line's arguments in the distribution's order, positional or named, every
    /// parameter given.
    fn args(&self, call: &ast::Call, errors: &mut Vec<Diagnostic>) -> Option<Vec<ProgramArg>> {
        let dist = self.dist;
        let spec_params = dist.params();
        let signature = || {
            spec_params
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut args: Vec<Option<ProgramArg>> = vec![None; spec_params.len()];
        for (pos, a) in call.args.iter().enumerate() {
            let slot = match &a.name {
                Some(n) => spec_params.iter().position(|p| p.name == n.name),
                None => (pos < spec_params.len()).then_some(pos),
            };
            let Some(slot) = slot else {
                let msg = format!("{} takes ({})", dist.name, signature());
                return fail(errors, &a.value.span, msg);
            };
            args[slot] = Some(self.arg(slot, a, errors)?);
        }
        let Some(args) = args.into_iter().collect::<Option<Vec<_>>>() else {
            let msg = format!("{} needs ({})", dist.name, signature());
            return fail(errors, &call.span, msg);
        };
        Some(args)
    }

    /// The argument for the distribution's `slot`-th parameter: a net of the rows, a
    /// `param`, or a number its parameter admits.
    fn arg(&self, slot: usize, a: &ast::Arg, errors: &mut Vec<Diagnostic>) -> Option<ProgramArg> {
        let (model, dist) = (self.model, self.dist);
        let spec_params = dist.params();
        let need = spec_params[slot].constraint;
        let positive = need == catalogue::Constraint::Positive;
        // `Net(x; p)` or `softplus(Net(x; p))`: an encoder written out, local sites only.
        let net_call = match &a.value.kind {
            ExprKind::Call(c) if model.nets.iter().any(|n| n.name == c.name.name) => {
                Some((c, false))
            }
            ExprKind::Call(c)
                if c.name.name == "softplus" && c.args.len() == 1 && c.weights.is_empty() =>
            {
                match &c.args[0].value.kind {
                    ExprKind::Call(inner)
                        if model.nets.iter().any(|n| n.name == inner.name.name) =>
                    {
                        Some((inner, true))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some((c, softplus)) = net_call {
            return self.net(c, softplus, positive, &a.value.span, errors);
        }
        match &a.value.kind {
            ExprKind::Name(id) => self.param_arg(slot, id, errors),
            _ => match number(&a.value) {
                Some(v) if need.admits(v) => Some(ProgramArg::Const(v)),
                _ => {
                    let msg = format!(
                        "{}'s `{}` in a guide is a `param` or a number ({})",
                        dist.name,
                        spec_params[slot].name,
                        need.describe()
                    );
                    fail(errors, &a.value.span, msg)
                }
            },
        }
    }

    /// A `param` of this guide as the `slot`-th argument: positive where the parameter
    /// must be, and of one value or the shape of the site's values (per row for a local
    /// site).
    fn param_arg(
        &self,
        slot: usize,
        id: &ast::Ident,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<ProgramArg> {
        let (dist, site) = (self.dist, self.site);
        let spec_params = dist.params();
        let need = spec_params[slot].constraint;
        let Some(i) = self.params.iter().position(|p| p.name == id.name) else {
            let msg = format!("unknown name `{}`: not a `param` of this guide", id.name);
            return fail(errors, &id.span, msg);
        };
        let p = &self.params[i];
        if need == catalogue::Constraint::Positive && !p.positive {
            let msg = format!(
                "{}'s `{}` must be positive; declare `param {} ... positive`",
                dist.name, spec_params[slot].name, p.name
            );
            return fail(errors, &id.span, msg);
        }
        let scalar = p.shape.rank() == 0;
        // A local site's parameters are per row (the same for every row).
        let site_dims = &site.shape.0[usize::from(site.is_local())..];
        // A Rust constant may be any size here (rustc checks it where the guide is built);
        // a size parameter of the model equals only itself.
        let rust_const = |d: &Dim| matches!(d, Dim::Const(c) if !self.model.is_size(c));
        let same = p.shape.rank() == site_dims.len()
            && p.shape
                .0
                .iter()
                .zip(site_dims)
                .all(|(a, b)| a == b || rust_const(a) || rust_const(b));
        if !scalar && !same {
            let msg = format!(
                "shape mismatch: parameter `{}` has shape {} but the site `{}` has shape {}",
                p.name, p.shape, site.name, site.shape
            );
            return fail(errors, &id.span, msg);
        }
        Some(ProgramArg::Param(i))
    }

    /// `Net(x; p)` (`softplus(Net(x; p))` for a positive parameter) in a guide program: the
    /// site is local, x a row input the net reads, p a `param` holding the net's weights, and
    /// the net gives one output per value of the site's row.
    fn net(
        &self,
        call: &ast::Call,
        softplus: bool,
        positive: bool,
        span: &Span,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<ProgramArg> {
        let (model, site) = (self.model, self.site);
        let net = model.nets.iter().position(|n| n.name == call.name.name)?;
        let n = &model.nets[net];
        if !site.is_local() {
            return fail(errors, span, format!("a net on the data's rows gives one value per row; `{}` is a global site (shape {})", site.name, site.shape));
        }
        if n.layers.iter().any(|l| {
            matches!(
                l,
                NetLayer::Conv2d { .. } | NetLayer::Pool { .. } | NetLayer::Flatten
            )
        }) {
            return fail(errors, &call.name.span, format!("net {} has convolution or pooling layers; a guide's net has Linear layers and activations", n.name));
        }
        if positive && !softplus {
            return fail(
                errors,
                span,
                format!(
                    "this parameter must be positive; write `softplus({}(..))`",
                    n.name
                ),
            );
        }
        let (input, param) = match (call.args.as_slice(), call.weights.as_slice()) {
            ([ast::Arg { name: None, value: x }], [w]) => (x, w),
            _ => return fail(errors, &call.span, format!("write `{}(x; p)`: a row input of the model and a `param` of this guide holding the weights", n.name)),
        };
        let input_idx = self.net_input(n, input, errors)?;
        let p = self.net_weights(n, param, errors)?;
        let per_row = row_numel(&site.shape);
        if per_row != Some(n.outputs) {
            return fail(
                errors,
                &call.name.span,
                format!(
                    "shape mismatch: net {} gives {} outputs per row, but `{}` has {} values per row",
                    n.name,
                    n.outputs,
                    site.name,
                    per_row.map_or("?".into(), |k| k.to_string())
                ),
            );
        }
        Some(ProgramArg::Net {
            net,
            input: input_idx,
            param: p,
            softplus,
        })
    }

    /// The net's input: a row input of the model with as many values per row as it reads.
    fn net_input(
        &self,
        n: &NetIr,
        input: &ast::Expr,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<usize> {
        let model = self.model;
        let ExprKind::Name(x) = &input.kind else {
            return fail(
                errors,
                &input.span,
                format!("the net reads an input of model {}", model.name),
            );
        };
        let Some(input_idx) = model.inputs.iter().position(|i| i.name == x.name) else {
            return fail(
                errors,
                &x.span,
                format!("`{}` is not an input of model {}", x.name, model.name),
            );
        };
        let shape = &model.inputs[input_idx].shape;
        let features = row_numel(shape);
        let wants: usize = n.row_dims.iter().product();
        if shape.0.first() != Some(&Dim::Rows) || features != Some(wants) {
            return fail(
                errors,
                &input.span,
                format!(
                    "shape mismatch: net {} takes rows of {wants} values, but `{}` has shape {shape}",
                    n.name, x.name
                ),
            );
        }
        Some(input_idx)
    }

    /// The net's weights: a `param` of this guide declared `[params(Net)]`.
    fn net_weights(
        &self,
        n: &NetIr,
        param: &ast::Expr,
        errors: &mut Vec<Diagnostic>,
    ) -> Option<usize> {
        let params = self.params;
        let ExprKind::Name(w) = &param.kind else {
            return fail(
                errors,
                &param.span,
                format!("the weights of {} are a `param` of this guide", n.name),
            );
        };
        let Some(p) = params.iter().position(|q| q.name == w.name) else {
            return fail(
                errors,
                &w.span,
                format!(
                    "unknown name `{}`: not a `param` of this guide (declare `param {} [params({})];`)",
                    w.name, w.name, n.name
                ),
            );
        };
        if params[p].shape != Shape(vec![Dim::Lit(n.num_params())]) || params[p].positive {
            return fail(
                errors,
                &w.span,
                format!(
                    "`{}` holds the weights of {}: declare it `param {} [params({})];`",
                    w.name, n.name, w.name, n.name
                ),
            );
        }
        Some(p)
    }
}
