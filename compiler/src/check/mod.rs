//! AST → IR: resolves names, infers and checks shapes, checks distribution arguments
//! against the catalogue, and checks that a guide covers its model. Every error is a
//! [`Diagnostic`] at the token that is wrong.
//!
//! The files by sub-job: `shape` (written shapes, sizes unified, broadcasting), `sample`
//! (a `site ~ Dist(..)` statement), `dist_args` (a distribution's arguments matched to its
//! parameters), `values` (what is known of a node's values), `expr` (expressions, function
//! calls, products), `index` (`a[g]`, `a[k]`, `a[lo..hi]`), `net_call` (a net's input and weights) and `param` (a model `param`).

use std::collections::HashMap;

use crate::ast::{self, number};
use crate::diagnostic::{Diagnostic, Span};
use crate::ir::*;

mod dist_args;
mod expr;
mod index;
mod mixture;
mod net_call;
mod param;
mod sample;
mod shape;
mod values;

/// What a name in a model refers to.
#[derive(Debug, Clone, Copy)]
enum Binding {
    Node(NodeId),
    /// A size parameter of the model (`model Reg<D>`): a number in expressions.
    Size,
    /// A definition that failed its checks: uses of it report nothing more.
    Poisoned,
}

/// The checks of one model: what is lowered so far, and the errors found.
struct Lowering<'s> {
    source: &'s str,
    nets: &'s [NetIr],
    model_name: String,
    /// The model's size parameters (`model Reg<D, K>`).
    sizes: Vec<String>,
    inputs: Vec<Input>,
    nodes: Vec<Node>,
    sites: Vec<Site>,
    factors: Vec<NamedValue>,
    tracked: Vec<NamedValue>,
    asserts: Vec<DimAssert>,
    scope: HashMap<String, Binding>,
    /// Union-find over sizes: a `Const` unified with a literal (or another `Const`) points at
    /// its representative, so the generated types agree and only the static assertion fails.
    parent: HashMap<Dim, Dim>,
    errors: Vec<Diagnostic>,
    n_latents: usize,
    /// What `values` has worked out per node (`None`: not yet).
    values_known: std::cell::RefCell<Vec<Option<Option<crate::catalogue::Constraint>>>>,
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
        sizes: Vec::new(),
        inputs: Vec::new(),
        nodes: Vec::new(),
        sites: Vec::new(),
        factors: Vec::new(),
        tracked: Vec::new(),
        asserts: Vec::new(),
        scope: HashMap::new(),
        parent: HashMap::new(),
        errors: Vec::new(),
        n_latents: 0,
        values_known: Default::default(),
    };
    for size in &m.sizes {
        l.size_param(size);
    }
    for input in &m.inputs {
        l.input(input);
    }
    for stmt in &m.stmts {
        l.stmt(stmt);
    }
    if !l.errors.is_empty() {
        return Err(l.errors);
    }
    Ok(l.into_ir(m))
}

impl<'s> Lowering<'s> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(Diagnostic::new(span, msg));
    }

    fn text(&self, span: &Span) -> &'s str {
        self.source.get(span.clone()).unwrap_or("?").trim()
    }

    /// A new node. A value of more than [`crate::limits::MAX_SIZE`] elements (its sizes that
    /// are numbers multiplied) is an error at it, reported once where it first appears.
    fn push(
        &mut self,
        op: Op,
        shape: Shape,
        particles: bool,
        constant: bool,
        span: Span,
    ) -> NodeId {
        if self.numel(&shape).is_none()
            && op
                .operands()
                .iter()
                .all(|&o| self.numel(&self.nodes[o].shape).is_some())
        {
            let text = self.text(&span);
            let shape = self.show(&shape);
            self.err(
                span.clone(),
                format!(
                    "`{text}` has shape {shape}, more than {} (2^31) elements, the most a value may have",
                    crate::limits::MAX_SIZE
                ),
            );
        }
        self.nodes.push(Node {
            op,
            shape,
            particles,
            constant,
            span,
        });
        self.nodes.len() - 1
    }

    /// A size parameter of the model (`model Reg<D>`): a const generic of the generated
    /// items, written in UPPER_CASE as Rust writes const generics (and as ravi's shapes
    /// write Rust constants), never `N` (the rows); in scope as a number.
    fn size_param(&mut self, size: &ast::Ident) {
        let name = &size.name;
        if name == "N" {
            self.err(
                size.span.clone(),
                "`N` is the rows of the data, known from each batch: it cannot be a size parameter",
            );
            return;
        }
        if !expr::is_rust_const(name) {
            self.err(
                size.span.clone(),
                format!(
                    "size parameter `{name}` of {} must be written in UPPER_CASE (like `D` or `N_FEATURES`), as Rust writes const generics",
                    self.model_name
                ),
            );
            return;
        }
        if self.sizes.contains(name) {
            self.err(
                size.span.clone(),
                format!(
                    "size parameter `{name}` is declared twice in model {}",
                    self.model_name
                ),
            );
            return;
        }
        self.sizes.push(name.clone());
        self.scope.insert(name.clone(), Binding::Size);
    }

    /// The elements of a shape (its sizes that are numbers multiplied), if at most
    /// [`crate::limits::MAX_SIZE`].
    fn numel(&self, shape: &Shape) -> Option<usize> {
        crate::limits::product(shape.0.iter().map(|d| match self.find(d) {
            Dim::Lit(n) => n,
            _ => 1,
        }))
    }

    /// Is `name` a size parameter of this model?
    pub(super) fn is_size(&self, name: &str) -> bool {
        self.sizes.iter().any(|s| s == name)
    }

    /// An input of the model: its shape, and a node that names it.
    fn input(&mut self, input: &ast::Input) {
        let shape = self.shape(&input.shape, true);
        if self.is_size(&input.name.name) {
            self.err(
                input.name.span.clone(),
                format!(
                    "`{}` is a size parameter of {}: an input needs another name",
                    input.name.name, self.model_name
                ),
            );
            return;
        }
        if self.scope.contains_key(&input.name.name) {
            self.err(
                input.name.span.clone(),
                format!("input `{}` is declared twice", input.name.name),
            );
            return;
        }
        let idx = self.inputs.len();
        self.inputs.push(Input {
            name: input.name.name.clone(),
            shape: shape.clone(),
            integers: input.domain.map(|d| (d.low, d.high)),
            span: input.name.span.clone(),
        });
        let node = self.push(Op::Input(idx), shape, false, false, input.name.span.clone());
        self.scope
            .insert(input.name.name.clone(), Binding::Node(node));
    }

    /// The checked model as IR.
    fn into_ir(self, m: &ast::ModelDef) -> ModelIr {
        // Resolve every size to its representative so that later passes see one type per size.
        let mut ir = ModelIr {
            name: m.name.name.clone(),
            sizes: self.sizes.clone(),
            nets: self.nets.to_vec(),
            docs: m.docs.clone(),
            inputs: self.inputs.clone(),
            nodes: self.nodes.clone(),
            sites: self.sites.clone(),
            factors: self.factors.clone(),
            tracked: self.tracked.clone(),
            asserts: self.asserts.clone(),
            span: m.span.clone(),
        };
        let canon = |s: &mut Shape| {
            for d in &mut s.0 {
                *d = self.find(d);
            }
        };
        ir.inputs.iter_mut().for_each(|i| canon(&mut i.shape));
        ir.nodes.iter_mut().for_each(|n| canon(&mut n.shape));
        ir.sites.iter_mut().for_each(|s| canon(&mut s.shape));
        for v in ir.factors.iter_mut().chain(&mut ir.tracked) {
            canon(&mut v.shape);
        }
        ir
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
            ast::Stmt::Track { name, value, span } => {
                let node = self.expr(value);
                if self.define_check(name) {
                    let b = node.map_or(Binding::Poisoned, Binding::Node);
                    self.scope.insert(name.name.clone(), b);
                    match node {
                        Some(node) if !self.nodes[node].particles => self.err(
                            span.clone(),
                            format!("`{}` does not depend on a latent site or a `param`: it is the same in every draw (use `let`)", name.name),
                        ),
                        Some(node) => {
                            let kept = self.named(name, node, span);
                            self.tracked.push(kept);
                        }
                        None => {}
                    }
                }
            }
            ast::Stmt::Factor { name, value, span } => {
                let node = self.expr(value);
                if self.define_check(name) {
                    self.scope.insert(name.name.clone(), Binding::Poisoned);
                    if let Some(node) = node {
                        self.factor(name, node, span);
                    }
                }
            }
            ast::Stmt::Sample {
                name,
                dist,
                shape,
                ordered,
                span,
            } => {
                self.sample(name, dist, shape.as_ref(), *ordered, span);
                self.scope
                    .entry(name.name.clone())
                    .or_insert(Binding::Poisoned);
            }
        }
    }

    /// A `track`ed or `factor` value by its name.
    fn named(&self, name: &ast::Ident, node: NodeId, span: &Span) -> NamedValue {
        NamedValue {
            name: name.name.clone(),
            value: node,
            shape: self.nodes[node].shape.clone(),
            span: span.clone(),
        }
    }

    /// `factor(name, e)`: e must depend on a latent site or a `param` (a term of data and
    /// numbers alone moves nothing; it is likely a mistake).
    fn factor(&mut self, name: &ast::Ident, node: NodeId, span: &Span) {
        if !self.nodes[node].particles {
            self.err(
                span.clone(),
                format!(
                    "factor `{}` does not depend on a latent site or a `param`, so it cannot change the fit",
                    name.name
                ),
            );
            return;
        }
        let kept = self.named(name, node, span);
        self.factors.push(kept);
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
    fn a_size_parameter_is_its_own_size_and_a_number() {
        let m = model(
            "model M<D, K>(x: [N, D], y: [N, K]) { w ~ Normal(0.0, 1.0) [D, K];
             y ~ Normal(x @ w / D, 1.0); }",
        );
        assert_eq!(m.sizes, ["D", "K"]);
        assert!(
            m.asserts.is_empty(),
            "no static assertion names a size parameter"
        );
        assert_eq!(
            site_shape(&m, "w"),
            Shape(vec![Dim::Const("D".into()), Dim::Const("K".into())])
        );
        assert!(
            m.to_text().starts_with("model M<D, K>\n"),
            "{}",
            m.to_text()
        );
        let e = errors(
            "model M<D>(x: [N, D], y: [N]) { w ~ Normal(0.0, 1.0) [4]; y ~ Normal(x @ w, 1.0); }",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "`D` is a size parameter of M and can be any size; it cannot be 4 here"
            ),
            "{e:?}"
        );
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
