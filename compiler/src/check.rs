//! AST → IR: resolves names, infers and checks shapes, checks distribution arguments
//! against the catalogue, and checks that a guide covers its model. Every error is a
//! [`Diagnostic`] at the token that is wrong.

use std::collections::HashMap;

use crate::ast::{self, BinOp, DimAst, ExprKind, ShapeAst};
use crate::catalogue::{self, Constraint};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

/// What a name in a model refers to.
#[derive(Debug, Clone, Copy)]
enum Binding {
    Node(NodeId),
    /// A definition that failed its checks: uses of it report nothing more.
    Poisoned,
}

struct Lowering<'s> {
    source: &'s str,
    nets: &'s [NetIr],
    model_name: String,
    inputs: Vec<Input>,
    nodes: Vec<Node>,
    sites: Vec<Site>,
    asserts: Vec<DimAssert>,
    scope: HashMap<String, Binding>,
    /// Union-find over sizes: a `Const` unified with a literal (or another `Const`) points at
    /// its representative, so the generated types agree and only the static assertion fails.
    parent: HashMap<Dim, Dim>,
    errors: Vec<Diagnostic>,
    n_latents: usize,
}

/// Checks a model and lowers it to IR.
pub fn lower_model(
    source: &str,
    nets: &[NetIr],
    m: &ast::ModelDef,
) -> Result<ModelIr, Vec<Diagnostic>> {
    let mut l = Lowering {
        source,
        nets,
        model_name: m.name.name.clone(),
        inputs: Vec::new(),
        nodes: Vec::new(),
        sites: Vec::new(),
        asserts: Vec::new(),
        scope: HashMap::new(),
        parent: HashMap::new(),
        errors: Vec::new(),
        n_latents: 0,
    };
    for input in &m.inputs {
        let shape = l.shape(&input.shape, true);
        if l.scope.contains_key(&input.name.name) {
            l.err(
                input.name.span.clone(),
                format!("input `{}` is declared twice", input.name.name),
            );
            continue;
        }
        let idx = l.inputs.len();
        l.inputs.push(Input {
            name: input.name.name.clone(),
            shape: shape.clone(),
            integers: input.domain.map(|d| (d.low, d.high)),
            span: input.name.span.clone(),
        });
        let node = l.push(Op::Input(idx), shape, false, false, input.name.span.clone());
        l.scope.insert(input.name.name.clone(), Binding::Node(node));
    }
    for stmt in &m.stmts {
        l.stmt(stmt);
    }
    if !l.errors.is_empty() {
        return Err(l.errors);
    }
    // Resolve every size to its representative so that later passes see one type per size.
    let mut ir = ModelIr {
        name: m.name.name.clone(),
        nets: nets.to_vec(),
        docs: m.docs.clone(),
        inputs: l.inputs.clone(),
        nodes: l.nodes.clone(),
        sites: l.sites.clone(),
        asserts: l.asserts.clone(),
        span: m.span.clone(),
    };
    let canon = |s: &mut Shape| {
        for d in &mut s.0 {
            *d = l.find(d);
        }
    };
    ir.inputs.iter_mut().for_each(|i| canon(&mut i.shape));
    ir.nodes.iter_mut().for_each(|n| canon(&mut n.shape));
    ir.sites.iter_mut().for_each(|s| canon(&mut s.shape));
    Ok(ir)
}

impl<'s> Lowering<'s> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(span, msg));
    }

    fn text(&self, span: &Span) -> &'s str {
        self.source.get(span.clone()).unwrap_or("?").trim()
    }

    fn push(
        &mut self,
        op: Op,
        shape: Shape,
        particles: bool,
        constant: bool,
        span: Span,
    ) -> NodeId {
        self.nodes.push(Node {
            op,
            shape,
            particles,
            constant,
            span,
        });
        self.nodes.len() - 1
    }

    fn shape(&mut self, s: &ShapeAst, allow_rows: bool) -> Shape {
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

    fn find(&self, d: &Dim) -> Dim {
        let mut d = d.clone();
        while let Some(p) = self.parent.get(&d) {
            d = p.clone();
        }
        d
    }

    /// Are two sizes equal? Literal sizes are compared now; a Rust `const` is assumed equal
    /// and checked by a static assertion in the generated code.
    fn unify(&mut self, a: &Dim, b: &Dim, message: &dyn Fn() -> String, span: &Span) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
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
    fn broadcast(
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

    fn show(&self, s: &Shape) -> String {
        s.to_string()
    }

    // ---- statements ------------------------------------------------------------------

    fn stmt(&mut self, stmt: &ast::Stmt) {
        match stmt {
            ast::Stmt::Let { name, value, .. } => {
                let node = self.expr(value);
                if self.define_check(name) {
                    let b = node.map_or(Binding::Poisoned, Binding::Node);
                    self.scope.insert(name.name.clone(), b);
                }
            }
            ast::Stmt::Param(decl) => self.param(decl),
            ast::Stmt::Sample {
                name,
                dist,
                shape,
                span,
            } => {
                self.sample(name, dist, shape.as_ref(), span);
                self.scope
                    .entry(name.name.clone())
                    .or_insert(Binding::Poisoned);
            }
        }
    }

    /// May `name` be defined here? (Reports a redefinition.)
    fn define_check(&mut self, name: &ast::Ident) -> bool {
        if self.scope.contains_key(&name.name) {
            self.err(
                name.span.clone(),
                format!(
                    "`{}` is already defined in model {}",
                    name.name, self.model_name
                ),
            );
            return false;
        }
        true
    }

    fn sample(
        &mut self,
        name: &ast::Ident,
        call: &ast::Call,
        shape: Option<&ShapeAst>,
        span: &Span,
    ) {
        let Some(spec) = catalogue::distribution(&call.name.name) else {
            let hint = catalogue::suggest(
                &call.name.name,
                catalogue::DISTRIBUTIONS.iter().map(|d| d.name),
            )
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_else(|| {
                let known: Vec<_> = catalogue::DISTRIBUTIONS.iter().map(|d| d.name).collect();
                format!(" (known: {})", known.join(", "))
            });
            self.err(
                call.name.span.clone(),
                format!("unknown distribution `{}`{hint}", call.name.name),
            );
            return;
        };
        let Some((parametrization, args_spans)) = self.dist_args(spec, call) else {
            return;
        };
        let params = parametrization.params;
        let (args, arg_spans): (Vec<NodeId>, Vec<Span>) = args_spans.into_iter().unzip();

        // An observed site is named after an input; anything else is a new latent site.
        let observed = match self.scope.get(&name.name) {
            Some(Binding::Poisoned) => return,
            Some(Binding::Node(n)) => match self.nodes[*n].op {
                Op::Input(i) => {
                    if self.sites.iter().any(|s| s.observed == Some(i)) {
                        self.err(
                            name.span.clone(),
                            format!("input `{}` is observed twice", name.name),
                        );
                        return;
                    }
                    Some(i)
                }
                _ => {
                    self.err(
                        name.span.clone(),
                        format!(
                            "`{}` is already defined in model {}",
                            name.name, self.model_name
                        ),
                    );
                    return;
                }
            },
            None => None,
        };

        let arg_shapes: Vec<Shape> = args.iter().map(|&a| self.nodes[a].shape.clone()).collect();
        let site_shape = match (observed, shape) {
            (Some(i), Some(s)) => {
                let declared = self.shape(s, true);
                let input_shape = self.inputs[i].shape.clone();
                if declared != input_shape {
                    self.err(
                        s.span.clone(),
                        format!(
                            "`{}` is the observed input of shape {}; drop the shape annotation {}",
                            name.name,
                            self.show(&input_shape),
                            self.show(&declared)
                        ),
                    );
                    return;
                }
                input_shape
            }
            (Some(i), None) => self.inputs[i].shape.clone(),
            (None, Some(s)) => self.shape(s, true),
            (None, None) => {
                let mut acc = Shape::scalar();
                for (k, sh) in arg_shapes.iter().enumerate() {
                    // A matrix parameter does not broadcast with the value.
                    if params[k].constraint == Constraint::LowerTriangular {
                        continue;
                    }
                    let msg = || {
                        format!(
                            "shape mismatch: the arguments of {} do not broadcast",
                            spec.name
                        )
                    };
                    match self.broadcast(&acc, sh, &msg, &call.span) {
                        Some(s) => acc = s,
                        None => {
                            self.err(
                                arg_spans[k].clone(),
                                format!(
                                    "shape mismatch: {}'s `{}` has shape {} but the other arguments have {}",
                                    spec.name,
                                    params[k].name,
                                    self.show(sh),
                                    self.show(&acc)
                                ),
                            );
                            return;
                        }
                    }
                }
                acc
            }
        };

        // A categorical's parameters carry a last axis of categories; the rest of their
        // shape is checked against the site like any other argument's.
        let mut arg_shapes = arg_shapes;
        if spec.event {
            for (k, sh) in arg_shapes.iter_mut().enumerate() {
                let Some(categories) = sh.0.pop() else {
                    self.err(
                        arg_spans[k].clone(),
                        format!(
                            "{}'s `{}` needs a last axis of categories, like [N, K]; `{}` is a scalar",
                            spec.name,
                            params[k].name,
                            self.text(&arg_spans[k])
                        ),
                    );
                    return;
                };
                if let (Some(i), Dim::Lit(kk)) = (observed, &categories) {
                    let declared = self.inputs[i].integers;
                    if declared != Some((0, Some(*kk as i64))) {
                        let now = match declared {
                            None => "real numbers".to_string(),
                            Some((lo, Some(hi))) => format!("the integers {lo}..{hi}"),
                            Some((lo, None)) => format!("the integers {lo}.."),
                        };
                        self.err(
                            name.span.clone(),
                            format!(
                                "{} over {kk} categories observes the integers 0..{kk}, but the input `{}` is declared as {now}; declare `{}: {} in 0..{kk}`",
                                spec.name,
                                name.name,
                                name.name,
                                self.show(&self.inputs[i].shape)
                            ),
                        );
                        return;
                    }
                }
            }
        }
        // A vector distribution: a last axis of components, and its matrix parameters
        // [d, d] built from data or numbers.
        if spec.vector_event {
            let Some(d) = site_shape.0.last().cloned() else {
                self.err(
                    name.span.clone(),
                    format!(
                        "{} is a distribution over vectors; give `{}` a last axis of components, like `{} ~ {}(..) [K]`",
                        spec.name, name.name, name.name, spec.name
                    ),
                );
                return;
            };
            for (k, &a) in args.iter().enumerate() {
                if params[k].constraint != Constraint::LowerTriangular {
                    continue;
                }
                let node = &self.nodes[a];
                let square = Shape(vec![d.clone(), d.clone()]);
                if node.particles || node.constant || node.shape != square {
                    let why = if node.particles {
                        "it may not depend on latent sites".to_string()
                    } else {
                        format!(
                            "`{}` has shape {}",
                            self.text(&arg_spans[k]),
                            self.show(&node.shape)
                        )
                    };
                    self.err(
                        arg_spans[k].clone(),
                        format!(
                            "{}'s `{}` must be a [{d}, {d}] matrix from the data; {why}",
                            spec.name, params[k].name
                        ),
                    );
                    return;
                }
            }
        }
        // Each argument must broadcast to the site's shape (never widen it).
        for (k, sh) in arg_shapes.iter().enumerate() {
            if params[k].constraint == Constraint::LowerTriangular {
                continue;
            }
            let arg_span = arg_spans[k].clone();
            let site_name = name.name.clone();
            let pname = params[k].name;
            let (ss, sa) = (self.show(&site_shape), self.show(sh));
            let msg = || {
                format!("shape mismatch: {}'s `{pname}` has shape {sa} but the site `{site_name}` has shape {ss}", spec.name)
            };
            let fits = sh.rank() <= site_shape.rank()
                && self.broadcast(sh, &site_shape, &msg, &arg_span).as_ref() == Some(&site_shape);
            if !fits {
                self.err(arg_span, msg());
                return;
            }
        }

        // A latent site over the rows is local: one value per row. It must say so with a
        // written shape; a shape over the rows inferred from the arguments is far more
        // often an observed site whose name misses its input.
        if observed.is_none() && shape.is_none() && site_shape.has_rows() {
            let inputs: Vec<_> = self
                .inputs
                .iter()
                .map(|i| format!("`{}`", i.name))
                .collect();
            self.err(
                name.span.clone(),
                format!(
                    "`{}` is not an input of {}, so it would be a local latent site with the shape {} of its arguments; an observed site must be named after an input (inputs: {}), and a local latent site writes its shape: `{} ~ {}(..) {}`",
                    name.name,
                    self.model_name,
                    self.show(&site_shape),
                    inputs.join(", "),
                    name.name,
                    spec.name,
                    self.show(&site_shape),
                ),
            );
            return;
        }

        // Discrete distributions: observed only, on inputs declared as integers they allow.
        if spec.support.is_discrete() {
            let Some(i) = observed else {
                self.err(
                    call.name.span.clone(),
                    format!(
                        "{} is discrete and has no reparametrized sampler, so it cannot be a latent site; observe it on an input, or use a continuous relaxation",
                        spec.name
                    ),
                );
                return;
            };
            let input = &self.inputs[i];
            let example = match spec.support {
                Constraint::Boolean => "in 0..2",
                _ => "in 0..",
            };
            let fits = match (input.integers, spec.support) {
                (Some((lo, Some(hi))), Constraint::Boolean) => lo >= 0 && hi <= 2,
                (Some((_, None)), Constraint::Boolean) => false,
                (Some((lo, _)), _) => lo >= 0,
                (None, _) => false,
            };
            if !fits {
                let declared = match input.integers {
                    None => "real numbers".to_string(),
                    Some((lo, Some(hi))) => format!("the integers {lo}..{hi}"),
                    Some((lo, None)) => format!("the integers {lo}.."),
                };
                self.err(
                    name.span.clone(),
                    format!(
                        "{} takes values {}, but the input `{}` is declared as {declared}; declare it as `{}: {} {example}`",
                        spec.name,
                        spec.support.describe(),
                        name.name,
                        name.name,
                        self.show(&input.shape)
                    ),
                );
                return;
            }
        }
        // A density of the whole site takes numbers for its parameters.
        if spec.joint {
            for (k, &a) in args.iter().enumerate() {
                if self.const_value(a).is_none() {
                    self.err(
                        arg_spans[k].clone(),
                        format!(
                            "{}'s `{}` must be a number (it is a prior for a whole site); `{}` is not one",
                            spec.name,
                            params[k].name,
                            self.text(&arg_spans[k])
                        ),
                    );
                    return;
                }
            }
        }
        // A latent on an interval is mapped onto it, so its bounds must be known numbers.
        if observed.is_none() && spec.support == Constraint::Interval {
            for (k, &a) in args.iter().enumerate() {
                if self.const_value(a).is_none() {
                    self.err(
                        arg_spans[k].clone(),
                        format!(
                            "a latent {} site needs numbers for its bounds; `{}` is not one",
                            spec.name,
                            self.text(&arg_spans[k])
                        ),
                    );
                    return;
                }
            }
        }

        let value = match observed {
            Some(i) => self
                .nodes
                .iter()
                .position(|n| n.op == Op::Input(i))
                .expect("every input has a node"),
            None => {
                let idx = self.n_latents;
                self.n_latents += 1;
                let node = self.push(
                    Op::Sample(idx),
                    site_shape.clone(),
                    true,
                    false,
                    name.span.clone(),
                );
                self.scope.insert(name.name.clone(), Binding::Node(node));
                node
            }
        };
        self.sites.push(Site {
            name: name.name.clone(),
            observed,
            dist: spec,
            parametrization,
            args,
            shape: site_shape,
            value,
            param: None,
            span: span.clone(),
        });
    }

    /// `param name [shape] = init;`: a latent site with no prior that the guide holds as a
    /// point mass.
    fn param(&mut self, decl: &ast::ParamDecl) {
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
        let net_dim = decl.shape.as_ref().and_then(|s| match s.dims.as_slice() {
            [ast::DimAst::ParamsOf(net, layer, _)] => self
                .nets
                .iter()
                .position(|n| n.name == net.name)
                .map(|i| (i, *layer)),
            _ => None,
        });
        let init = match (&decl.init, net_dim) {
            (Some(e), _) => {
                let Some(node) = self.expr(e) else { return };
                match self.const_value(node) {
                    Some(v) => ParamInitIr::Value(v),
                    None => {
                        self.err(
                            e.span.clone(),
                            format!(
                                "a `param` starts at a number; `{}` is not one",
                                self.text(&e.span)
                            ),
                        );
                        return;
                    }
                }
            }
            (None, Some((net, layer))) => ParamInitIr::Net(net, layer),
            (None, None) => ParamInitIr::Value(0.0),
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
            param: Some(init),
            span: decl.span.clone(),
        });
    }

    /// Matches a call's arguments (positional, then named) to the catalogue's parameters:
    /// of the first parametrization, or of the one whose parameters the named ones are.
    fn dist_args(
        &mut self,
        spec: &'static catalogue::DistSpec,
        call: &ast::Call,
    ) -> Option<(&'static catalogue::Parametrization, Vec<(NodeId, Span)>)> {
        let named: Vec<&str> = call
            .args
            .iter()
            .filter_map(|a| a.name.as_ref())
            .map(|n| n.name.as_str())
            .collect();
        let parametrization = spec
            .parametrizations
            .iter()
            .find(|p| {
                !named.is_empty() && named.iter().all(|n| p.params.iter().any(|q| q.name == *n))
            })
            .unwrap_or(&spec.parametrizations[0]);
        let params = parametrization.params;
        let signature = params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ");
        let mut slots: Vec<Option<(NodeId, Span)>> = vec![None; params.len()];
        let mut seen_named = false;
        let mut ok = true;
        for (pos, arg) in call.args.iter().enumerate() {
            let slot = match &arg.name {
                None if seen_named => {
                    self.err(
                        arg.value.span.clone(),
                        "a positional argument cannot follow a named one",
                    );
                    ok = false;
                    continue;
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
                    return None;
                }
                None => pos,
                Some(n) => {
                    seen_named = true;
                    match params.iter().position(|p| p.name == n.name) {
                        Some(i) => i,
                        None => {
                            self.err(
                                n.span.clone(),
                                format!(
                                    "{} has no parameter `{}` (its parameters: {signature})",
                                    spec.name, n.name
                                ),
                            );
                            ok = false;
                            continue;
                        }
                    }
                }
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
            // A compile-time constant must satisfy the parameter's constraint.
            if let Some(v) = self.const_value(node) {
                if !params[slot].constraint.admits(v) {
                    self.err(
                        arg.value.span.clone(),
                        format!(
                            "{}'s `{}` must be {}, but `{}` is {v}",
                            spec.name,
                            params[slot].name,
                            params[slot].constraint.describe(),
                            self.text(&arg.value.span)
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
                None if params[slot].constraint == Constraint::LowerTriangular => None,
                None => self.values(node),
            };
            if let Some(known) = known {
                let need = params[slot].constraint;
                if !known.within(need) {
                    let text = self.text(&arg.value.span);
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
                        arg.value.span.clone(),
                        format!(
                            "{}'s `{}` must be {}, but {what}{hint}",
                            spec.name,
                            params[slot].name,
                            need.describe()
                        ),
                    );
                    ok = false;
                }
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

    /// What the checks know of a node's values: `None` where they depend on data or Rust
    /// constants (unknown at compile time), else a set they lie in.
    fn values(&self, id: NodeId) -> Option<Constraint> {
        use Constraint::{Positive, Real, UnitInterval};
        let positive = |c: Constraint| c.within(Positive);
        Some(match &self.nodes[id].op {
            Op::Input(_) | Op::RustConst(_) => return None,
            // A fit checks its temperatures are positive.
            Op::Temperature => Positive,
            Op::Const(v) => {
                if *v > 0.0 {
                    Positive
                } else {
                    Real
                }
            }
            Op::Sample(_) => {
                let site = self.sites.iter().find(|s| s.value == id)?;
                match site.dist.support {
                    Positive | UnitInterval => site.dist.support,
                    Constraint::Simplex => UnitInterval,
                    _ => Real,
                }
            }
            Op::Neg(a) => {
                self.values(*a)?;
                Real
            }
            Op::Binary(op, a, b) => {
                let (x, y) = (self.values(*a)?, self.values(*b)?);
                match op {
                    BinOp::Mul if x == UnitInterval && y == UnitInterval => UnitInterval,
                    BinOp::Add | BinOp::Mul | BinOp::Div | BinOp::MatMul
                        if positive(x) && positive(y) =>
                    {
                        Positive
                    }
                    _ => Real,
                }
            }
            Op::MatMul(a, b) => {
                let (x, y) = (self.values(*a)?, self.values(*b)?);
                if positive(x) && positive(y) {
                    Positive
                } else {
                    Real
                }
            }
            Op::Func(f, a) => match f {
                Func::Exp | Func::Softplus => Positive,
                Func::Sigmoid => UnitInterval,
                Func::Log | Func::Tanh => {
                    self.values(*a)?;
                    Real
                }
            },
            Op::Net(_, x, w) => {
                self.values(*x)?;
                self.values(*w)?;
                Real
            }
            Op::Concat(parts) => {
                for p in parts {
                    self.values(*p)?;
                }
                Real
            }
            Op::Reduce(r, a, _) => {
                let x = self.values(*a)?;
                match (r, x) {
                    (Reduce::Mean, UnitInterval) => UnitInterval,
                    (_, x) if positive(x) => Positive,
                    _ => Real,
                }
            }
        })
    }

    /// The value of a node built only from numeric literals (Rust constants are unknown here).
    fn const_value(&self, id: NodeId) -> Option<f64> {
        const_value(&self.nodes, id)
    }

    /// `Net(x; theta)`: x [R, F] rows of features, theta [params(Net)] → [R, O].
    fn net_call(&mut self, idx: usize, call: &ast::Call, span: Span) -> Option<NodeId> {
        let net = &self.nets[idx];
        let (name, input, outputs, n_params) =
            (net.name.clone(), net.input, net.outputs, net.num_params());
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
        // All the weights in one vector, or one vector per layer with weights (joined here).
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
        let w = if parts.len() == 1 {
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
        };
        let p = self.nodes[x].particles || self.nodes[w].particles;
        let shape = Shape(vec![xs.0[0].clone(), Dim::Lit(outputs)]);
        Some(self.push(Op::Net(idx, x, w), shape, p, false, span))
    }

    // ---- expressions -----------------------------------------------------------------

    fn expr(&mut self, e: &ast::Expr) -> Option<NodeId> {
        let span = e.span.clone();
        match &e.kind {
            ExprKind::Num(v) => Some(self.push(Op::Const(*v), Shape::scalar(), false, true, span)),
            ExprKind::Name(id) => match self.scope.get(&id.name) {
                Some(Binding::Node(n)) => Some(*n),
                Some(Binding::Poisoned) => None,
                // The step's relaxation temperature: a number at run time.
                None if id.name == "temperature" => {
                    Some(self.push(Op::Temperature, Shape::scalar(), false, true, span))
                }
                None if is_rust_const(&id.name) => Some(self.push(
                    Op::RustConst(id.name.clone()),
                    Shape::scalar(),
                    false,
                    true,
                    span,
                )),
                None => {
                    let mut names: Vec<&str> = self.scope.keys().map(String::as_str).collect();
                    names.sort_unstable();
                    let hint = catalogue::suggest(&id.name, names.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    self.err(
                        id.span.clone(),
                        format!(
                            "unknown name `{}`: not an input, a site or a `let` binding of model {} (a Rust constant in scope is written in UPPER_CASE){hint}",
                            id.name, self.model_name
                        ),
                    );
                    None
                }
            },
            ExprKind::Neg(a) => {
                let a = self.expr(a)?;
                let n = &self.nodes[a];
                let (shape, p, c) = (n.shape.clone(), n.particles, n.constant);
                Some(self.push(Op::Neg(a), shape, p, c, span))
            }
            ExprKind::Binary(BinOp::MatMul, a, b) => self.matmul(a, b, span),
            ExprKind::Binary(op, a, b) => {
                let (ia, ib) = (self.expr(a), self.expr(b));
                let (ia, ib) = (ia?, ib?);
                let (sa, sb) = (self.nodes[ia].shape.clone(), self.nodes[ib].shape.clone());
                let (ta, tb) = (self.text(&a.span), self.text(&b.span));
                let msg = || {
                    format!(
                        "shape mismatch: {ta} {} {tb} has {ta}: {sa} but {tb}: {sb}",
                        op.symbol()
                    )
                };
                let Some(shape) = self.broadcast(&sa, &sb, &msg, &span) else {
                    self.err(span, msg());
                    return None;
                };
                let p = self.nodes[ia].particles || self.nodes[ib].particles;
                let c = self.nodes[ia].constant && self.nodes[ib].constant;
                Some(self.push(Op::Binary(*op, ia, ib), shape, p, c, span))
            }
            ExprKind::Call(call) => self.call(call, span),
            ExprKind::List(_) => {
                self.err(
                    span,
                    "a list like `[64, 64]` is only an argument of a guide family",
                );
                None
            }
        }
    }

    fn matmul(&mut self, a: &ast::Expr, b: &ast::Expr, span: Span) -> Option<NodeId> {
        let (ia, ib) = (self.expr(a), self.expr(b));
        let (ia, ib) = (ia?, ib?);
        let (sa, sb) = (self.nodes[ia].shape.clone(), self.nodes[ib].shape.clone());
        let (ta, tb) = (self.text(&a.span), self.text(&b.span));
        for (s, t, sp) in [(&sa, ta, &a.span), (&sb, tb, &b.span)] {
            if !(1..=2).contains(&s.rank()) {
                self.err(
                    sp.clone(),
                    format!("`@` needs a vector or a matrix on each side, but {t} has shape {s}"),
                );
                return None;
            }
        }
        let k_a = sa.0.last().expect("rank checked").clone();
        // The contracted axis of b is its first, whether b is a vector or a matrix.
        let k_b = sb.0[0].clone();
        let msg = || format!("shape mismatch: {ta} @ {tb} has {ta}: {sa} but {tb}: {sb}");
        if !self.unify(&k_a, &k_b, &msg, &span) {
            self.err(span, msg());
            return None;
        }
        let mut out = Vec::new();
        if sa.rank() == 2 {
            out.push(sa.0[0].clone());
        }
        if sb.rank() == 2 {
            out.push(sb.0[1].clone());
        }
        let p = self.nodes[ia].particles || self.nodes[ib].particles;
        // Compile-time constants are scalars, which the rank check above rejects.
        debug_assert!(!self.nodes[ia].constant && !self.nodes[ib].constant);
        Some(self.push(Op::MatMul(ia, ib), Shape(out), p, false, span))
    }

    fn call(&mut self, call: &ast::Call, span: Span) -> Option<NodeId> {
        let fname = call.name.name.as_str();
        if let Some(idx) = self.nets.iter().position(|n| n.name == fname) {
            return self.net_call(idx, call, span);
        }
        if !call.weights.is_empty() {
            self.err(
                call.name.span.clone(),
                format!(
                    "`{fname}` is not a net (`Net(x; weights)` calls a net declared with `net`)"
                ),
            );
            return None;
        }
        if let Some(a) = call.args.iter().find_map(|a| a.name.as_ref()) {
            self.err(
                a.span.clone(),
                format!("`{fname}` takes no named arguments"),
            );
            return None;
        }
        if let Some(f) = Func::from_name(fname) {
            if call.args.len() != 1 {
                self.err(
                    call.span.clone(),
                    format!(
                        "`{fname}` takes 1 argument but {} were given",
                        call.args.len()
                    ),
                );
                return None;
            }
            let a = self.expr(&call.args[0].value)?;
            let n = &self.nodes[a];
            let (shape, p, c) = (n.shape.clone(), n.particles, n.constant);
            return Some(self.push(Op::Func(f, a), shape, p, c, span));
        }
        let reduce = match fname {
            "sum" => Reduce::Sum,
            "mean" => Reduce::Mean,
            _ => {
                let known = catalogue::ELEMENTWISE
                    .iter()
                    .chain(catalogue::REDUCTIONS)
                    .copied();
                let hint = if catalogue::distribution(fname).is_some() {
                    format!("; `{fname}` is a distribution, used as `site ~ {fname}(...)`")
                } else {
                    catalogue::suggest(fname, known)
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default()
                };
                self.err(
                    call.name.span.clone(),
                    format!("unknown function `{fname}`{hint}"),
                );
                return None;
            }
        };
        if !(1..=2).contains(&call.args.len()) {
            self.err(
                call.span.clone(),
                format!("`{fname}` takes 1 or 2 arguments (a value, and optionally an axis) but {} were given", call.args.len()),
            );
            return None;
        }
        let a = self.expr(&call.args[0].value)?;
        let n = self.nodes[a].clone();
        let axis = match call.args.get(1) {
            None => None,
            Some(arg) => {
                let rank = n.shape.rank() as i64;
                let v = match &arg.value.kind {
                    ExprKind::Num(v) => Some(*v),
                    ExprKind::Neg(inner) => match inner.kind {
                        ExprKind::Num(v) => Some(-v),
                        _ => None,
                    },
                    _ => None,
                };
                match v {
                    Some(v) if v.fract() == 0.0 && (-rank..rank).contains(&(v as i64)) => {
                        Some(((v as i64 + rank) % rank.max(1)) as usize)
                    }
                    _ => {
                        self.err(
                            arg.value.span.clone(),
                            format!(
                                "the axis of `{fname}` must be an integer from {} to {} for a value of shape {}",
                                -rank,
                                rank - 1,
                                n.shape
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let shape = match axis {
            None => Shape::scalar(),
            Some(ax) => {
                let mut d = n.shape.0.clone();
                d.remove(ax);
                Shape(d)
            }
        };
        Some(self.push(
            Op::Reduce(reduce, a, axis),
            shape,
            n.particles,
            n.constant,
            span,
        ))
    }
}

/// `D`, `SIGMA`, `N_HIDDEN`: the Rust convention for constants.
fn is_rust_const(name: &str) -> bool {
    name.chars().any(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use crate::ir::{Dim, Shape};
    use crate::{compile, ModelIr};

    fn model(src: &str) -> ModelIr {
        match compile(src) {
            Ok(p) => p.models.into_iter().next().expect("one model"),
            Err(e) => panic!("{}", crate::render_all(&e, src)),
        }
    }

    fn errors(src: &str) -> Vec<String> {
        compile(src)
            .expect_err("the program is wrong")
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    fn site_shape(m: &ModelIr, name: &str) -> Shape {
        m.sites
            .iter()
            .find(|s| s.name == name)
            .expect("site")
            .shape
            .clone()
    }

    #[test]
    fn shapes_flow_through_matmul_and_broadcasting() {
        let m = model(
            "model M(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [3]; b ~ Normal(0.0, 1.0);
             let mu = x @ w + b; y ~ Normal(mu, 0.5); }",
        );
        let y = m.sites.iter().find(|s| s.name == "y").unwrap();
        assert_eq!(m.nodes[y.args[0]].shape, Shape(vec![Dim::Rows]));
        assert!(m.nodes[y.args[0]].particles, "mu depends on latents");
        assert!(m.asserts.is_empty());
    }

    #[test]
    fn a_rust_const_unified_with_a_literal_becomes_a_static_assert() {
        let m = model(
            "model M(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [4]; y ~ Normal(x @ w, 1.0); }",
        );
        assert_eq!(m.asserts.len(), 1);
        let a = &m.asserts[0];
        assert_eq!((&a.lhs, &a.rhs), (&Dim::Const("D".into()), &Dim::Lit(4)));
        assert!(a.message.contains("x @ w"), "{}", a.message);
        // The literal is the representative: the site's shape is known exactly.
        assert_eq!(site_shape(&m, "w"), Shape(vec![Dim::Lit(4)]));
    }

    #[test]
    fn reductions_drop_the_named_axis() {
        let m = model(
            "model M(x: [N, 3], y: [N]) { w ~ Normal(0.0, 1.0) [3, 2];
             y ~ Normal(sum(x @ w, 1), 1.0); }",
        );
        let y = m.sites.iter().find(|s| s.name == "y").unwrap();
        assert_eq!(m.nodes[y.args[0]].shape, Shape(vec![Dim::Rows]));
    }

    #[test]
    fn wrong_programs_are_rejected_with_their_reason() {
        assert_eq!(
            errors("model M(y: [N]) { s ~ Normal(0.0, 1.0) [2]; y ~ Normal(s, 1.0); }"),
            vec!["shape mismatch: Normal's `loc` has shape [2] but the site `y` has shape [N]"]
        );
        let e = errors("model M(y: [N]) { y ~ Normal(0.0, 1.0); y ~ Normal(0.0, 1.0); }");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("twice"), "{e:?}");
        let e = errors("model M(y: [N]) { s ~ Normal(0.0, 1.0); y ~ Normal(exp(s, 1), 1.0); }");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("exp"), "{e:?}");
    }
}
