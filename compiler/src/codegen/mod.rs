//! IR → Rust code on dfdx, as tokens.
//!
//! Every value is a dfdx tensor whose shape type the compiler writes out: `usize` for the
//! rows `N` and the particles `S`, `Const<K>` for fixed sizes. Two invariants keep the types
//! simple:
//! - a value that depends on a latent site carries the leading particle axis *and* the
//!   gradient tape `T`; a data value has neither; a compile-time scalar is a plain `f32`;
//! - where a data value meets a taped one it is broadcast to the full shape and re-taped,
//!   so binary ops always see one tape type (dfdx wants the taped operand on the left, which
//!   the matmul lowering arranges by transposing).
//!
//! A taped value used several times is re-taped for every use but the last, which takes its
//! own tape; dead values are not emitted, so every tape reaches the loss.
//!
//! The files by what they emit: `tokens` (sizes, shapes and axes as types and values),
//! `emitter` (the model's nodes, one `let` each), `latent` (a latent's draw mapped onto its
//! support), `net_call` (a net call, plain or rewritten), `site` (each site's term and the
//! predictive's arguments), `model` and `specs` (the model's items), `guide`,
//! `guide_families`, `guide_program` and `guide_local` (the guide's items), `host` (the
//! guide's side of the host engine) and `layers` (nets described for run time).

use proc_macro2::{Span as TokSpan, TokenStream};

use crate::diagnostic::Span;
use crate::ir::{GuideIr, ModelIr};

mod emitter;
mod guide;
mod guide_families;
mod guide_local;
mod guide_program;
mod host;
mod latent;
mod layers;
mod model;
mod net_call;
mod site;
mod specs;
mod tokens;

pub(crate) use tokens::{f32_lit, f64_lit};

/// Maps a byte range of the DSL text to the span of the token it came from.
pub type SpanMap<'a> = &'a dyn Fn(&Span) -> TokSpan;

/// The Rust items of a model: the marker type, its data struct, the `Model` impl and the
/// static assertions of sizes that involve Rust constants.
pub fn model(ir: &ModelIr, span_of: SpanMap) -> TokenStream {
    model::items(ir, span_of)
}

/// The Rust items of a guide: a struct holding its parameters and families, its
/// constructor, and the `Guide` impl that draws every latent site of the model.
pub fn guide(ir: &GuideIr, model: &ModelIr, span_of: SpanMap) -> TokenStream {
    let name = quote::format_ident!("{}", model.name);
    guide::items(ir, model, &quote::quote!(#name), span_of)
}

/// [`guide`] for a guide written in another module than its model's, which names the model
/// by a path (`guide G for crate::models::M`): the generated code names the model's type by
/// `model_path`, resolved where the guide is.
pub fn guide_at(
    ir: &GuideIr,
    model: &ModelIr,
    model_path: &TokenStream,
    span_of: SpanMap,
) -> TokenStream {
    guide::items(ir, model, model_path, span_of)
}
