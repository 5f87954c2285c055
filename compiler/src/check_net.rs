//! `net` declarations: layers checked in sequence (each layer's input width is the previous
//! one's output), their weights counted, so that `params(Net)` is a number and a call
//! `Net(x; theta)` can be checked against both.

use crate::ast;
use crate::catalogue;
use crate::diagnostic::Diagnostic;
use crate::ir::{Activation, Dim, NetIr, NetLayer};

/// The layers a net may use.
const LAYERS: &[&str] = &["Linear", "relu", "tanh", "sigmoid", "softplus"];

/// Checks a net and lowers it to IR.
pub fn lower_net(n: &ast::NetDef) -> Result<NetIr, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let dims = &n.input.shape.dims;
    let features = match dims.as_slice() {
        [_, ast::DimAst::Lit(f, _)] => *f,
        _ => {
            errors.push(Diagnostic::new(
                n.input.shape.span.clone(),
                "a net takes rows of features, `[B, F]` with F a number",
            ));
            return Err(errors);
        }
    };
    let mut width = features;
    let mut layers = Vec::new();
    for layer in &n.layers {
        let name = layer.name.name.as_str();
        let numbers: Option<Vec<usize>> = layer
            .args
            .iter()
            .map(|a| match (&a.name, &a.value.kind) {
                (None, ast::ExprKind::Num(v)) if *v >= 1.0 && v.fract() == 0.0 => Some(*v as usize),
                _ => None,
            })
            .collect();
        match name {
            "Linear" => match numbers.as_deref() {
                Some([i, o]) => {
                    if *i != width {
                        errors.push(Diagnostic::new(
                            layer.span.clone(),
                            format!("shape mismatch: Linear({i}, {o}) takes {i} features but the layer before gives {width}"),
                        ));
                    }
                    layers.push(NetLayer::Linear {
                        inputs: *i,
                        outputs: *o,
                    });
                    width = *o;
                }
                _ => errors.push(Diagnostic::new(
                    layer.span.clone(),
                    "Linear takes two sizes, inputs and outputs: `Linear(64, 100)`",
                )),
            },
            _ => match Activation::from_name(name) {
                Some(a) if layer.args.is_empty() => layers.push(NetLayer::Activation(a)),
                Some(_) => errors.push(Diagnostic::new(
                    layer.span.clone(),
                    format!("`{name}` takes no arguments"),
                )),
                None => {
                    let hint = catalogue::suggest(name, LAYERS.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_else(|| format!(" (layers: {})", LAYERS.join(", ")));
                    errors.push(Diagnostic::new(
                        layer.name.span.clone(),
                        format!("unknown layer `{name}`{hint}"),
                    ));
                }
            },
        }
    }
    match n.output.dims.as_slice() {
        [_, ast::DimAst::Lit(o, sp)] if *o != width => errors.push(Diagnostic::new(
            sp.clone(),
            format!(
                "net {} declares {o} outputs but its last layer gives {width}",
                n.name.name
            ),
        )),
        [_, ast::DimAst::Lit(..)] => {}
        _ => errors.push(Diagnostic::new(
            n.output.span.clone(),
            "a net gives rows of outputs, `[B, O]` with O a number",
        )),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NetIr {
        name: n.name.name.clone(),
        features,
        outputs: width,
        layers,
    })
}

/// A size in a shape that names a net's weights: `params(Net)`, or `params(Net, k)` for
/// its k-th Linear layer.
pub fn params_of(
    nets: &[NetIr],
    name: &ast::Ident,
    layer: Option<usize>,
) -> Result<Dim, Diagnostic> {
    match nets.iter().find(|n| n.name == name.name) {
        Some(n) => match layer {
            None => Ok(Dim::Lit(n.num_params())),
            Some(k) => n
                .layer_params()
                .get(k)
                .map(|&p| Dim::Lit(p))
                .ok_or_else(|| {
                    Diagnostic::new(
                        name.span.clone(),
                        format!(
                            "net {} has {} Linear layers (0 to {})",
                            n.name,
                            n.layer_params().len(),
                            n.layer_params().len().saturating_sub(1)
                        ),
                    )
                }),
        },
        None => Err(Diagnostic::new(
            name.span.clone(),
            format!(
                "unknown net `{}`; declare it with `net {}(x: [B, F]) -> [B, O] {{ .. }}`",
                name.name, name.name
            ),
        )),
    }
}
