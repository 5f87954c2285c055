//! A distribution's arguments matched to the catalogue's parameters (positional, then
//! named), each checked against its parameter's constraint by value or by what is known.

use super::Lowering;
use crate::ast;
use crate::catalogue::{Constraint, DistSpec, ParamSpec, Parametrization};
use crate::diagnostic::Span;
use crate::ir::*;

/// Where an argument goes among the parameters.
enum Slot {
    At(usize),
    /// Reported; the other arguments are still checked.
    Skip,
    /// Reported; nothing more is checked.
    Stop,
}

/// The first parametrization, or the one whose parameters the named arguments are.
fn parametrization(spec: &'static DistSpec, call: &ast::Call) -> &'static Parametrization {
    let named: Vec<&str> = call
        .args
        .iter()
        .filter_map(|a| a.name.as_ref())
        .map(|n| n.name.as_str())
        .collect();
    spec.parametrizations
        .iter()
        .find(|p| !named.is_empty() && named.iter().all(|n| p.params.iter().any(|q| q.name == *n)))
        .unwrap_or(&spec.parametrizations[0])
}

impl Lowering<'_> {
    /// Matches a call's arguments (positional, then named) to the catalogue's parameters:
    /// of the first parametrization, or of the one whose parameters the named ones are.
    pub(super) fn dist_args(
        &mut self,
        spec: &'static DistSpec,
        call: &ast::Call,
    ) -> Option<(&'static Parametrization, Vec<(NodeId, Span)>)> {
        let parametrization = parametrization(spec, call);
        let params = parametrization.params;
        let signature = params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
        let mut slots: Vec<Option<(NodeId, Span)>> = vec![None; params.len()];
        let mut seen_named = false;
        let mut ok = true;
        for (pos, arg) in call.args.iter().enumerate() {
            let slot = match self.arg_slot(spec, params, call, pos, &mut seen_named, &signature) {
                Slot::At(i) => i,
                Slot::Skip => {
                    ok = false;
                    continue;
                }
                Slot::Stop => return None,
            };
            if slots[slot].is_some() {
                self.err(
                    arg.value.span.clone(),
                    format!("{}'s `{}` is given twice", spec.name, params[slot].name),
                );
                ok = false;
                continue;
            }
            let Some(node) = self.expr(&arg.value) else {
                ok = false;
                continue;
            };
            if !self.arg_admitted(spec, &params[slot], node, &arg.value.span) {
                ok = false;
            }
            slots[slot] = Some((node, arg.value.span.clone()));
        }
        let missing: Vec<&str> = params
            .iter()
            .zip(&slots)
            .filter(|(_, s)| s.is_none())
            .map(|(p, _)| p.name)
            .collect();
        if ok && !missing.is_empty() {
            self.err(
                call.span.clone(),
                format!(
                    "{} needs {} argument{} ({signature}); missing `{}`",
                    spec.name,
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    missing.join("`, `")
                ),
            );
            return None;
        }
        ok.then(|| {
            let args = slots
                .into_iter()
                .map(|s| s.expect("checked above"))
                .collect();
            (parametrization, args)
        })
    }

    /// The parameter the `pos`-th argument of `call` fills: positional ones in order, named
    /// ones by name, no positional one after a named one.
    fn arg_slot(
        &mut self,
        spec: &'static DistSpec,
        params: &'static [ParamSpec],
        call: &ast::Call,
        pos: usize,
        seen_named: &mut bool,
        signature: &str,
    ) -> Slot {
        let arg = &call.args[pos];
        match &arg.name {
            None if *seen_named => {
                self.err(
                    arg.value.span.clone(),
                    "a positional argument cannot follow a named one",
                );
                Slot::Skip
            }
            None if pos >= params.len() => {
                self.err(
                    arg.value.span.clone(),
                    format!(
                        "{} takes {} argument{} ({signature}) but {} were given",
                        spec.name,
                        params.len(),
                        if params.len() == 1 { "" } else { "s" },
                        call.args.len()
                    ),
                );
                Slot::Stop
            }
            None => Slot::At(pos),
            Some(n) => {
                *seen_named = true;
                match params.iter().position(|p| p.name == n.name) {
                    Some(i) => Slot::At(i),
                    None => {
                        self.err(
                            n.span.clone(),
                            format!(
                                "{} has no parameter `{}` (its parameters: {signature})",
                                spec.name, n.name
                            ),
                        );
                        Slot::Skip
                    }
                }
            }
        }
    }

    /// Does the argument `node` (written at `span`) fit parameter `p`? Reports why not.
    fn arg_admitted(
        &mut self,
        spec: &'static DistSpec,
        p: &ParamSpec,
        node: NodeId,
        span: &Span,
    ) -> bool {
        let mut ok = true;
        // A compile-time constant must fit in f32 (the generated code's numbers) and
        // satisfy the parameter's constraint.
        if let Some(v) = self.const_value(node) {
            if !crate::limits::fits_f32(v) {
                self.err(
                    span.clone(),
                    format!(
                        "{}'s `{}` is `{}` = {}, which does not fit in f32 (at most {} in magnitude)",
                        spec.name,
                        p.name,
                        self.text(span),
                        crate::limits::show_number(v),
                        crate::limits::MAX_F32_TEXT
                    ),
                );
                return false;
            }
            if !p.constraint.admits(v) {
                self.err(
                    span.clone(),
                    format!(
                        "{}'s `{}` must be {}, but `{}` is {v}",
                        spec.name,
                        p.name,
                        p.constraint.describe(),
                        self.text(span)
                    ),
                );
                ok = false;
            }
            // (rounded to f32, as the generated code has it: 1e-50 is 0 there)
            let rounded = f64::from(v as f32);
            if ok && !p.constraint.admits(rounded) {
                self.err(
                    span.clone(),
                    format!(
                        "{}'s `{}` must be {}, but `{}` is {rounded} in f32, the type of the generated code's numbers",
                        spec.name,
                        p.name,
                        p.constraint.describe(),
                        self.text(span)
                    ),
                );
                ok = false;
            }
        }
        // What is known of an expression's values must fit the parameter (constants
        // were checked by value above).
        let known = match self.const_value(node) {
            Some(_) => None,
            // Matrix parameters are checked with the site's shape.
            None if p.constraint == Constraint::LowerTriangular => None,
            None => self.values(node),
        };
        if let Some(known) = known {
            let need = p.constraint;
            if !known.within(need) {
                let text = self.text(span);
                let what = match known {
                    Constraint::Real => format!("`{text}` can be any real number"),
                    other => format!("`{text}` is only known to be {}", other.describe()),
                };
                let hint = match need {
                    Constraint::Positive => "; write e.g. exp(..) or softplus(..), or give the latent a positive distribution (HalfNormal, Gamma, LogNormal, ...)",
                    Constraint::UnitInterval => "; write e.g. sigmoid(..), or give the latent a Beta distribution",
                    _ => "",
                };
                self.err(
                    span.clone(),
                    format!(
                        "{}'s `{}` must be {}, but {what}{hint}",
                        spec.name,
                        p.name,
                        need.describe()
                    ),
                );
                ok = false;
            }
        }
        ok
    }
}
