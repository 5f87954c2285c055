//! A guide family's arguments by the catalogue: named ones of the right kind, a lone
//! positional choice (`Flipout(MeanField)`), flow layers given positionally, defaults.

use super::number;
use crate::ast::{self, ExprKind};
use crate::catalogue::{self, ArgDefault, ArgKind, FamilyArgSpec, FamilySpec};
use crate::diagnostic::Diagnostic;
use crate::ir::*;

/// A family's arguments as they are read: each by name (its default until given), and the
/// flow layers given positionally.
struct Reader<'c> {
    spec: &'static FamilySpec,
    call: &'c ast::Call,
    /// The argument that takes the positional flow layers, if the family has one.
    layers_arg: Option<&'static FamilyArgSpec>,
    args: Vec<(String, Option<FamilyValue>)>,
    layers: Vec<FlowLayerIr>,
}

/// A family's arguments by the catalogue: named, known, of the right kind, defaults filled
/// in, in the catalogue's order. A `Layers` argument takes the positional arguments.
pub(super) fn family_args(
    spec: &'static FamilySpec,
    call: &ast::Call,
    errors: &mut Vec<Diagnostic>,
) -> Vec<(String, FamilyValue)> {
    let args = spec
        .args
        .iter()
        .map(|a| {
            let v = match a.default {
                ArgDefault::Auto => Some(FamilyValue::Auto),
                ArgDefault::Number(v) => Some(FamilyValue::Number(v)),
                ArgDefault::List(v) => Some(FamilyValue::List(v.to_vec())),
                ArgDefault::Name(v) => Some(FamilyValue::Name(v)),
                ArgDefault::Required => None,
            };
            (a.name.to_string(), v)
        })
        .collect();
    let mut r = Reader {
        spec,
        call,
        layers_arg: spec.args.iter().find(|a| a.kind == ArgKind::Layers),
        args,
        layers: Vec::new(),
    };
    let mut positional = 0;
    for a in &call.args {
        match &a.name {
            None => {
                positional += 1;
                r.positional(a, errors);
            }
            Some(n) => r.named(n, a, errors),
        }
    }
    if let Some(l) = r.layers_arg {
        // A layer that failed its own checks has said why already.
        if positional == 0 {
            let known: Vec<_> = catalogue::FLOW_LAYERS.iter().map(|f| f.name).collect();
            errors.push(Diagnostic::new(
                call.span.clone(),
                format!(
                    "{} needs at least one layer, like `{}(RealNVP(layers = 4, hidden = 32))` (layers: {})",
                    spec.name,
                    spec.name,
                    known.join(", ")
                ),
            ));
        }
        let layers = std::mem::take(&mut r.layers);
        r.set(l.name, FamilyValue::Layers(layers));
    }
    r.args
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or(FamilyValue::Auto)))
        .collect()
}

impl Reader<'_> {
    /// Gives the argument `name` its value.
    fn set(&mut self, name: &str, v: FamilyValue) {
        let slot = self
            .args
            .iter_mut()
            .find(|(k, _)| k == name)
            .expect("in the catalogue");
        slot.1 = Some(v);
    }

    /// A positional argument: the family's choice, a flow layer, or an error.
    fn positional(&mut self, a: &ast::Arg, errors: &mut Vec<Diagnostic>) {
        let spec = self.spec;
        // `Flipout(MeanField)`: a lone positional name fills the family's choice.
        let choice = spec
            .args
            .iter()
            .find(|s| matches!(s.kind, ArgKind::Choice(_)));
        if let (None, Some(c), ExprKind::Name(id), 1) =
            (self.layers_arg, choice, &a.value.kind, self.call.args.len())
        {
            if let ArgKind::Choice(names) = c.kind {
                match names.iter().find(|n| **n == id.name) {
                    Some(n) => self.set(c.name, FamilyValue::Name(n)),
                    None => errors.push(Diagnostic::new(
                        id.span.clone(),
                        format!(
                            "{} wraps {}, not `{}`",
                            spec.name,
                            names.join(" or "),
                            id.name
                        ),
                    )),
                }
                return;
            }
        }
        match self.layers_arg {
            Some(_) => {
                if let Some(layer) = flow_layer(&a.value, errors) {
                    self.layers.push(layer);
                }
            }
            None => {
                let msg = if spec.args.is_empty() {
                    format!("{} takes no arguments", spec.name)
                } else {
                    format!(
                        "the arguments of {} are named, like `{}({} = ...)`",
                        spec.name, spec.name, spec.args[0].name
                    )
                };
                errors.push(Diagnostic::new(a.value.span.clone(), msg));
            }
        }
    }

    /// `name = value`: a known argument, its value of the argument's kind.
    fn named(&mut self, n: &ast::Ident, a: &ast::Arg, errors: &mut Vec<Diagnostic>) {
        let spec = self.spec;
        let named = spec
            .args
            .iter()
            .find(|s| s.name == n.name && s.kind != ArgKind::Layers);
        let Some(arg_spec) = named else {
            let names: Vec<_> = spec
                .args
                .iter()
                .filter(|s| s.kind != ArgKind::Layers)
                .map(|s| s.name)
                .collect();
            let known = if spec.args.is_empty() {
                "it takes no arguments".to_string()
            } else if names.is_empty() {
                "it takes only layers, like `RealNVP(layers = 4)`".to_string()
            } else {
                format!("its arguments: {}", names.join(", "))
            };
            errors.push(Diagnostic::new(
                n.span.clone(),
                format!("{} has no argument `{}` ({known})", spec.name, n.name),
            ));
            return;
        };
        match arg_value(arg_spec, a) {
            Some(v) => self.set(&n.name, v),
            None if too_many(arg_spec.kind, &a.value).is_some() => {
                let v = too_many(arg_spec.kind, &a.value).unwrap_or_default();
                errors.push(Diagnostic::new(
                    a.value.span.clone(),
                    format!(
                        "`{}` of {} must be at most {} (ravi's cap on counts), but it is {v}",
                        n.name,
                        spec.name,
                        catalogue::MAX_COUNT
                    ),
                ))
            }
            None => {
                let what = match arg_spec.kind {
                    ArgKind::Choice(names) => {
                        let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                        format!("one of {}", names.join(", "))
                    }
                    kind => kind.describe().to_string(),
                };
                errors.push(Diagnostic::new(
                    a.value.span.clone(),
                    format!("`{}` of {} must be {what}", n.name, spec.name),
                ))
            }
        }
    }
}

/// A whole number above [`catalogue::MAX_COUNT`] given for a count (or in a list of
/// counts): a count but for the cap.
fn too_many(kind: ArgKind, e: &ast::Expr) -> Option<f64> {
    let over = |v: &f64| v.fract() == 0.0 && *v > catalogue::MAX_COUNT;
    match (kind, &e.kind) {
        (ArgKind::Count, _) => number(e).filter(over),
        (ArgKind::Counts, ExprKind::List(items)) => items.iter().filter_map(number).find(over),
        _ => None,
    }
}

/// The value of a named argument, if it is of the argument's kind.
fn arg_value(arg_spec: &FamilyArgSpec, a: &ast::Arg) -> Option<FamilyValue> {
    match arg_spec.kind {
        ArgKind::Choice(names) => match &a.value.kind {
            ExprKind::Name(id) => names
                .iter()
                .find(|c| **c == id.name)
                .map(|c| FamilyValue::Name(c)),
            _ => None,
        },
        ArgKind::Counts => match &a.value.kind {
            ExprKind::List(items) => items
                .iter()
                .map(number)
                .collect::<Option<Vec<f64>>>()
                .filter(|v| v.iter().all(|&x| arg_spec.kind.admits(x)))
                .map(FamilyValue::List),
            _ => None,
        },
        _ => number(&a.value)
            .filter(|&v| arg_spec.kind.admits(v))
            .map(FamilyValue::Number),
    }
}

/// One positional argument of a flow: `RealNVP(layers = 4)` or a bare `Planar`.
fn flow_layer(e: &ast::Expr, errors: &mut Vec<Diagnostic>) -> Option<FlowLayerIr> {
    let (name, call) = match &e.kind {
        ExprKind::Call(c) => (&c.name, Some(c)),
        ExprKind::Name(n) => (n, None),
        _ => {
            errors.push(Diagnostic::new(
                e.span.clone(),
                "a flow layer like `RealNVP(layers = 4, hidden = 32)`, `Iaf`, `Planar` or `Radial`",
            ));
            return None;
        }
    };
    let Some(spec) = catalogue::FLOW_LAYERS.iter().find(|f| f.name == name.name) else {
        let known = catalogue::FLOW_LAYERS.iter().map(|f| f.name);
        let hint = catalogue::suggest(&name.name, known.clone())
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| format!(" (layers: {})", known.collect::<Vec<_>>().join(", ")));
        errors.push(Diagnostic::new(
            name.span.clone(),
            format!("unknown flow layer `{}`{hint}", name.name),
        ));
        return None;
    };
    let empty = ast::Call {
        name: name.clone(),
        args: Vec::new(),
        weights: Vec::new(),
        span: e.span.clone(),
    };
    let args = family_args(spec, call.unwrap_or(&empty), errors);
    Some(FlowLayerIr {
        kind: spec.name,
        args,
    })
}
