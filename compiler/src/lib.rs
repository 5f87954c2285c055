//! The ravi compiler: DSL text → checked IR → Rust code on dfdx.
//!
//! ```text
//! text ─► pest parse (parse.rs) ─► AST (ast.rs) ─► checks + lowering (check/) ─► IR (ir.rs)
//!      ─► IR text (stable; insta snapshots)   and   ─► Rust tokens (codegen/)
//! ```
//!
//! This crate is plain Rust with no dfdx and no proc-macro machinery, so it is tested as a
//! library: [`compile`] gives the IR or the errors, each with the byte range of the token at
//! fault. The `ravi-dsl` proc macros turn a token stream into text, call [`compile`], map the
//! byte ranges back to token spans and splice in [`codegen`]'s output.

#![deny(missing_docs)]

use std::fmt::Write as _;

pub mod ast;
pub mod catalogue;
mod check;
mod check_guide;
mod check_net;
pub mod codegen;
mod desugar;
pub mod diagnostic;
pub mod fused;
pub mod ir;
pub mod limits;
mod parse;
pub mod start;

pub use diagnostic::{render_all, Diagnostic, Span};
pub use ir::{GuideIr, ModelIr};

/// A compiled DSL text: every model and guide it defines.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// The models, in source order (a `bnn` item's model among them).
    pub models: Vec<ModelIr>,
    /// The guides written in the text, in source order.
    pub guides: Vec<GuideIr>,
    /// Guides that `bnn` items stand for (emitted with their model by `model!`).
    pub generated_guides: Vec<GuideIr>,
}

impl Program {
    /// The stable text form of every model and guide, in source order of their kinds.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for m in &self.models {
            out.push_str(&m.to_text());
        }
        for g in self.guides.iter().chain(&self.generated_guides) {
            let model = self
                .model(&g.model)
                .expect("checked: a guide's model exists");
            out.push_str(&g.to_text(model));
            // which engine runs its steps (see `fused`)
            match fused::coverage(model, g) {
                Ok(()) => out.push_str("  engine: host\n"),
                Err(why) => {
                    let _ = writeln!(out, "  engine: graph — {why}");
                }
            }
        }
        out
    }

    /// The model named `name`, if the program defines it.
    pub fn model(&self, name: &str) -> Option<&ModelIr> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// Parses and checks a DSL text. A guide's model must be defined in the same text (the
/// `guide!` macro arranges that by pasting the model's source in front of the guide).
///
/// Any text gets one of the two, never a panic: the limits it holds (nesting, sizes,
/// numbers, names) are in [`limits`].
pub fn compile(source: &str) -> Result<Program, Vec<Diagnostic>> {
    catalogue::reset_suggestions();
    let items = parse::parse(source).map_err(|d| vec![d])?;
    let refused = limits::check_items(source, &items);
    if !refused.is_empty() {
        return Err(refused);
    }
    let mut models = Vec::new();
    let mut guides = Vec::new();
    let mut errors = Vec::new();
    let mut nets: Vec<ir::NetIr> = Vec::new();
    for item in &items {
        if let ast::Item::Net(n) = item {
            if nets.iter().any(|x| x.name == n.name.name) {
                errors.push(Diagnostic::new(
                    n.name.span.clone(),
                    format!("net `{}` is defined twice", n.name.name),
                ));
                continue;
            }
            match check_net::lower_net(n) {
                Ok(ir) => nets.push(ir),
                Err(e) => errors.extend(e),
            }
        }
    }
    // `bnn` items become a model and a guide, checked like any other.
    let mut items = items;
    let mut generated: Vec<String> = Vec::new();
    let bnns: Vec<ast::BnnDef> = items
        .iter()
        .filter_map(|i| match i {
            ast::Item::Bnn(b) => Some((**b).clone()),
            _ => None,
        })
        .collect();
    for b in &bnns {
        match desugar::bnn(b, &nets) {
            Ok((model, guide)) => {
                generated.push(guide.name.name.clone());
                items.push(ast::Item::Model(model));
                items.push(ast::Item::Guide(guide));
            }
            Err(e) => errors.push(e),
        }
    }
    for item in &items {
        if let ast::Item::Model(m) = item {
            if models.iter().any(|x: &ModelIr| x.name == m.name.name) {
                errors.push(Diagnostic::new(
                    m.name.span.clone(),
                    format!("model `{}` is defined twice", m.name.name),
                ));
                continue;
            }
            match check::lower_model(source, &nets, m) {
                Ok(ir) => models.push(ir),
                Err(e) => errors.extend(e),
            }
        }
    }
    let mut guide_names: Vec<&str> = Vec::new();
    for item in &items {
        if let ast::Item::Guide(g) = item {
            // each a Rust item: a second of one name, or one named as a model, would be
            // rustc's error inside the generated code
            let name = g.name.name.as_str();
            if guide_names.contains(&name) {
                errors.push(Diagnostic::new(
                    g.name.span.clone(),
                    format!("guide `{name}` is defined twice"),
                ));
                continue;
            }
            guide_names.push(name);
            if items
                .iter()
                .any(|i| matches!(i, ast::Item::Model(m) if m.name.name == name))
            {
                errors.push(Diagnostic::new(
                    g.name.span.clone(),
                    format!(
                        "guide `{name}` has the name of a model; a guide needs a name of its own"
                    ),
                ));
                continue;
            }
            let Some(model) = models.iter().find(|m| m.name == g.model.name) else {
                // A model that failed its own checks has already reported why.
                if !items
                    .iter()
                    .any(|i| matches!(i, ast::Item::Model(m) if m.name.name == g.model.name))
                {
                    errors.push(Diagnostic::new(
                        g.model.span.clone(),
                        format!("unknown model `{}`", g.model.name),
                    ));
                }
                continue;
            };
            match check_guide::lower_guide(g, model) {
                Ok(ir) => guides.push(ir),
                Err(e) => errors.extend(e),
            }
        }
    }
    if errors.is_empty() {
        let (generated_guides, guides) = guides
            .into_iter()
            .partition(|g: &GuideIr| generated.contains(&g.name));
        Ok(Program {
            models,
            guides,
            generated_guides,
        })
    } else {
        Err(errors)
    }
}
