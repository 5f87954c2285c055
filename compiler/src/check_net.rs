//! `net` declarations: layers checked in sequence (each layer's input width is the previous
//! one's output), their weights counted, so that `params(Net)` is a number and a call
//! `Net(x; theta)` can be checked against both.

use crate::ast;
use crate::catalogue;
use crate::diagnostic::Diagnostic;
use crate::ir::{Activation, Dim, NetInput, NetIr, NetLayer};
use crate::limits::MAX_SIZE;

/// The layers a net may use.
const LAYERS: &[&str] = &[
    "Linear", "Conv2d", "MaxPool", "AvgPool", "flatten", "relu", "tanh", "sigmoid", "softplus",
];

/// What flows between layers: features per row, or images.
#[derive(Clone, Copy)]
enum Flow {
    Features(usize),
    Images(usize, usize, usize),
}

impl Flow {
    fn describe(self) -> String {
        match self {
            Flow::Features(f) => format!("{f} features"),
            Flow::Images(c, h, w) => format!("images of {c} × {h} × {w}"),
        }
    }
}

/// A size of a net (features, channels, a kernel, weights), if at most [`MAX_SIZE`].
fn bounded(n: Option<usize>) -> Option<usize> {
    n.filter(|&n| n <= MAX_SIZE)
}

/// The weights of a layer, if at most [`MAX_SIZE`] (`in_per_out` inputs per output, and a
/// bias per output).
fn layer_weights(in_per_out: Option<usize>, outputs: usize) -> Option<usize> {
    bounded(in_per_out?.checked_mul(outputs)?.checked_add(outputs))
}

/// Checks a net and lowers it to IR. Every size is computed with checked arithmetic: a
/// layer whose weights, or a flow whose values per row, pass [`MAX_SIZE`] is an error at
/// the layer.
pub fn lower_net(n: &ast::NetDef) -> Result<NetIr, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let lits: Option<Vec<usize>> = n
        .input
        .shape
        .dims
        .get(1..)
        .unwrap_or_default()
        .iter()
        .map(|d| match d {
            ast::DimAst::Lit(v, _) => Some(*v),
            _ => None,
        })
        .collect();
    let input_flow = match lits.as_deref() {
        Some([f]) => bounded(Some(*f)).map(|f| (NetInput::Features(f), Flow::Features(f))),
        // Rows of G groups of K (say, concrete latents): read as G·K features.
        Some([g, k]) => {
            bounded(g.checked_mul(*k)).map(|f| (NetInput::Features(f), Flow::Features(f)))
        }
        Some([c, h, w]) => bounded(c.checked_mul(*h).and_then(|ch| ch.checked_mul(*w))).map(|_| {
            (
                NetInput::Images {
                    channels: *c,
                    height: *h,
                    width: *w,
                },
                Flow::Images(*c, *h, *w),
            )
        }),
        _ => None,
    };
    let Some((input, mut flow)) = input_flow else {
        errors.push(Diagnostic::new(
            n.input.shape.span.clone(),
            "a net takes rows of features `[B, F]` (or groups of them, `[B, G, K]`, read as G·K features) or of images `[B, C, H, W]`, with numbers for the sizes",
        ));
        return Err(errors);
    };
    let mut layers = Vec::new();
    let mut total: Option<usize> = Some(0);
    for layer in &n.layers {
        let (errors_before, layers_before) = (errors.len(), layers.len());
        let name = layer.name.name.as_str();
        let positional: Option<Vec<usize>> = layer
            .args
            .iter()
            .filter(|a| a.name.is_none())
            .map(|a| match &a.value.kind {
                ast::ExprKind::Num(v) if *v >= 1.0 && v.fract() == 0.0 => Some(*v as usize),
                _ => None,
            })
            .collect();
        let named = |key: &str, default: usize| -> Option<usize> {
            match layer
                .args
                .iter()
                .find(|a| a.name.as_ref().is_some_and(|n| n.name == key))
            {
                None => Some(default),
                Some(a) => match &a.value.kind {
                    ast::ExprKind::Num(v) if *v >= 0.0 && v.fract() == 0.0 => Some(*v as usize),
                    _ => None,
                },
            }
        };
        let mut fail = |msg: String| errors.push(Diagnostic::new(layer.span.clone(), msg));
        let too_large = |sizes: &[usize]| sizes.iter().any(|&v| v > MAX_SIZE);
        let limit = format!("{name}'s sizes are at most {MAX_SIZE} (2^31)");
        let heavy =
            format!("{name} has more than {MAX_SIZE} (2^31) weights, the most a layer may have");
        match name {
            "Linear" => match (positional.as_deref(), flow) {
                (Some(s @ [_, _]), _) if too_large(s) => fail(limit),
                (Some([i, o]), Flow::Features(f)) => {
                    if *i != f {
                        fail(format!("shape mismatch: Linear({i}, {o}) takes {i} features but the layer before gives {f}"));
                    }
                    match layer_weights(Some(*i), *o) {
                        Some(w) => {
                            total = total.and_then(|t| t.checked_add(w));
                            layers.push(NetLayer::Linear { inputs: *i, outputs: *o });
                            flow = Flow::Features(*o);
                        }
                        None => fail(heavy),
                    }
                }
                (Some([_, _]), other) => fail(format!("Linear takes features but the layer before gives {}; add `flatten`", other.describe())),
                _ => fail("Linear takes two sizes, inputs and outputs: `Linear(64, 100)`".to_string()),
            },
            "Conv2d" => match (positional.as_deref(), named("stride", 1), named("padding", 0), flow) {
                (Some(s @ [_, _, _]), Some(stride), Some(padding), Flow::Images(..))
                    if too_large(s) || too_large(&[stride, padding]) => fail(limit),
                (Some([i, o, k]), Some(stride), Some(padding), Flow::Images(c, h, w)) if stride >= 1 => {
                    if *i != c {
                        fail(format!("shape mismatch: Conv2d({i}, {o}, {k}) takes {i} channels but the layer before gives {c}"));
                    }
                    // (x + 2 padding − k) / stride + 1, every step checked
                    let out = |x: usize| {
                        padding
                            .checked_mul(2)
                            .and_then(|p| p.checked_add(x))
                            .and_then(|v| v.checked_sub(*k))
                            .map(|v| v / stride + 1)
                    };
                    match (out(h), out(w)) {
                        (Some(oh), Some(ow)) => {
                            let per_row = bounded(o.checked_mul(oh).and_then(|v| v.checked_mul(ow)));
                            let weights = layer_weights(i.checked_mul(*k).and_then(|v| v.checked_mul(*k)), *o);
                            match (per_row, weights) {
                                (Some(_), Some(w)) => {
                                    total = total.and_then(|t| t.checked_add(w));
                                    layers.push(NetLayer::Conv2d { inputs: *i, outputs: *o, kernel: *k, stride, padding });
                                    flow = Flow::Images(*o, oh, ow);
                                }
                                (None, _) => fail(format!("Conv2d({i}, {o}, {k}) gives images of {o} × {oh} × {ow}, more than {MAX_SIZE} (2^31) values per row")),
                                (_, None) => fail(heavy),
                            }
                        }
                        _ => fail(format!("a {k} × {k} kernel does not fit images of {h} × {w}")),
                    }
                }
                (_, _, _, Flow::Features(f)) => fail(format!("Conv2d takes images but the layer before gives {f} features")),
                _ => fail("Conv2d takes in and out channels and a kernel size, `Conv2d(1, 8, 3)`, and optionally `stride = s, padding = p`".to_string()),
            },
            "MaxPool" | "AvgPool" => match (positional.as_deref(), flow) {
                (Some([k]), Flow::Images(c, h, w)) if *k <= h && *k <= w => {
                    layers.push(NetLayer::Pool { max: name == "MaxPool", kernel: *k });
                    flow = Flow::Images(c, (h - k) / k + 1, (w - k) / k + 1);
                }
                (Some([k]), Flow::Images(_, h, w)) => fail(format!("a {k} × {k} window does not fit images of {h} × {w}")),
                (_, Flow::Features(f)) => fail(format!("{name} takes images but the layer before gives {f} features")),
                _ => fail(format!("{name} takes a window size: `{name}(2)`")),
            },
            "flatten" => match flow {
                Flow::Images(c, h, w) if layer.args.is_empty() => {
                    // images within MAX_SIZE values per row, checked where they were made
                    match bounded(c.checked_mul(h).and_then(|v| v.checked_mul(w))) {
                        Some(f) => {
                            layers.push(NetLayer::Flatten);
                            flow = Flow::Features(f);
                        }
                        None => fail(format!("images of {c} × {h} × {w} are more than {MAX_SIZE} (2^31) features")),
                    }
                }
                Flow::Images(..) => fail("`flatten` takes no arguments".to_string()),
                Flow::Features(_) => fail("`flatten` takes images; the layer before gives features".to_string()),
            },
            _ => match Activation::from_name(name) {
                Some(a) if layer.args.is_empty() => layers.push(NetLayer::Activation(a)),
                Some(_) => fail(format!("`{name}` takes no arguments")),
                None => {
                    let hint = catalogue::suggest(name, LAYERS.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_else(|| format!(" (layers: {})", LAYERS.join(", ")));
                    errors.push(Diagnostic::new(layer.name.span.clone(), format!("unknown layer `{name}`{hint}")));
                }
            },
        }
        // A layer that changes the shape and failed leaves what flows after it unknown:
        // its error says all (later layers would only be compared with a guess).
        let reshapes = matches!(
            name,
            "Linear" | "Conv2d" | "MaxPool" | "AvgPool" | "flatten"
        );
        if reshapes && errors.len() > errors_before && layers.len() == layers_before {
            return Err(errors);
        }
    }
    if bounded(total).is_none() && errors.is_empty() {
        errors.push(Diagnostic::new(
            n.name.span.clone(),
            format!(
                "net {} has more than {MAX_SIZE} (2^31) weights, the most a net may have",
                n.name.name
            ),
        ));
        return Err(errors);
    }
    let width = match flow {
        Flow::Features(f) => f,
        Flow::Images(..) if !errors.is_empty() => return Err(errors),
        Flow::Images(..) => {
            errors.push(Diagnostic::new(
                n.span.clone(),
                format!(
                    "net {} ends with {}; end with `flatten` and a Linear layer",
                    n.name.name,
                    flow.describe()
                ),
            ));
            return Err(errors);
        }
    };
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
        input,
        row_dims: lits.unwrap_or_default(),
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
