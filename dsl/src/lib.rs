//! The ravi proc macros: `model!` and `guide!`.
//!
//! A thin shell around `ravi-compiler` (the serde/sqlx split): turn the tokens into text
//! while recording which token each byte came from, compile the text, and either splice in
//! the generated code or report each error as a `compile_error!` at the offending token.
//!
//! A guide is checked against its model's source: `model!` also emits, for each model `M`,
//! a hidden `macro_rules!` holding that source, and names it `M` in the macro namespace
//! (`use __ravi_model_M as M;`), so wherever the type `M` is in scope (defined there, or
//! brought by `use`), so is the macro. `guide! { guide G for M .. }` expands to
//! `M! { (M) guide G for M .. }` (and `guide G for path::M` to `path::M! { (path::M) .. }`),
//! which hands the model's source, the guide and the path the guide named the model by to
//! `__guide_impl!`. A `pub model`'s macro is `#[macro_export]`ed under a unique name and
//! re-exported by `pub use`, so other crates reach it through the model's path; a model's
//! macro is crate-wide otherwise.

#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Span, TokenStream as TokenStream2, TokenTree};
use quote::{format_ident, quote, quote_spanned};

/// DSL text rebuilt from tokens, with the span of the token behind each byte range.
struct Source {
    text: String,
    spans: Vec<(usize, usize, Span)>,
    /// Whether the last token written ends an operand (a name, a literal, a closing group):
    /// a `-` after one is binary, otherwise it is a sign and is written against its number.
    after_operand: bool,
}

impl Source {
    fn new(tokens: TokenStream2) -> Self {
        let mut s = Source {
            text: String::new(),
            spans: Vec::new(),
            after_operand: false,
        };
        s.write(tokens);
        s
    }

    fn leaf(&mut self, text: &str, span: Span, space_after: bool) {
        let start = self.text.len();
        self.text.push_str(text);
        self.spans.push((start, self.text.len(), span));
        if space_after {
            self.text.push(' ');
        }
    }

    fn write(&mut self, tokens: TokenStream2) {
        let mut tokens = tokens.into_iter().peekable();
        while let Some(tt) = tokens.next() {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("", ""),
                    };
                    self.leaf(open, g.span_open(), true);
                    self.after_operand = false;
                    self.write(g.stream());
                    self.leaf(close, g.span_close(), true);
                    self.after_operand = true;
                }
                TokenTree::Ident(i) => {
                    self.leaf(&i.to_string(), i.span(), true);
                    self.after_operand = true;
                }
                TokenTree::Punct(p) => {
                    let joint = p.spacing() == proc_macro2::Spacing::Joint;
                    let sign = p.as_char() == '-'
                        && !self.after_operand
                        && matches!(tokens.peek(), Some(TokenTree::Literal(_)));
                    self.leaf(&p.as_char().to_string(), p.span(), !joint && !sign);
                    self.after_operand = false;
                }
                TokenTree::Literal(l) => {
                    self.leaf(&l.to_string(), l.span(), true);
                    self.after_operand = true;
                }
            }
        }
    }

    /// The spans of the first and the last token of a byte range (for a range that starts in
    /// whitespace, the next token; past the end of the text, the last token).
    fn spans_of(&self, range: &std::ops::Range<usize>) -> (Span, Span) {
        let first = self.span_of(range);
        let last = self
            .spans
            .iter()
            .rev()
            .find(|(start, _, _)| *start < range.end.max(range.start + 1))
            .map_or(first, |(_, _, s)| *s);
        (first, last)
    }

    /// The span of the token where a byte range starts (the next token for a range that
    /// starts in whitespace, the last token at the end of the text).
    fn span_of(&self, range: &std::ops::Range<usize>) -> Span {
        self.spans
            .iter()
            .find(|(_, end, _)| *end > range.start)
            .or(self.spans.last())
            .map_or_else(Span::call_site, |(_, _, s)| *s)
    }
}

/// Each diagnostic as `::core::compile_error!{..}` covering its whole byte range: the path
/// carries the first token's span and the braces the last's, so rustc underlines from one
/// to the other (the way `syn::Error::new_spanned` does it on stable).
fn errors(src: &Source, diags: &[ravi_compiler::Diagnostic]) -> TokenStream2 {
    diags
        .iter()
        .map(|d| {
            let msg = &d.message;
            let (first, last) = src.spans_of(&d.span);
            let body = quote_spanned!(last=> { #msg });
            quote_spanned!(first=> ::core::compile_error! #body)
        })
        .collect()
}

/// The models a `model!` block declares (`model Name` and `bnn Name` at its top level),
/// each with whether it is `pub`: read from the tokens, so known when the block does not
/// parse, and each name once.
fn declared_models(tokens: &TokenStream2) -> Vec<(proc_macro2::Ident, bool)> {
    let tokens: Vec<TokenTree> = tokens.clone().into_iter().collect();
    let mut out: Vec<(proc_macro2::Ident, bool)> = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        let TokenTree::Ident(kw) = t else { continue };
        if kw != "model" && kw != "bnn" {
            continue;
        }
        let Some(TokenTree::Ident(name)) = tokens.get(k + 1) else {
            continue;
        };
        // A Rust keyword names no model (the compiler says so at it), nor a macro.
        if ravi_compiler::limits::RUST_KEYWORDS.contains(&name.to_string().as_str()) {
            continue;
        }
        let public = k > 0 && matches!(&tokens[k - 1], TokenTree::Ident(p) if p == "pub");
        if !out.iter().any(|(n, _)| n == name) {
            out.push((name.clone(), public));
        }
    }
    out
}

/// A name for the exported macro of `pub model Name`, unique in the crate: `#[macro_export]`
/// puts every such macro at the crate's root, where two models of one name in different
/// modules would otherwise meet. Derived from the block's text (so the same on every build);
/// a repeat of the same text in the crate takes a suffix.
fn exported_name(name: &proc_macro2::Ident, text: &str) -> proc_macro2::Ident {
    use std::collections::BTreeSet;
    use std::sync::Mutex;
    static TAKEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    // FNV-1a, 64 bits.
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let base = format!("__ravi_model_{name}_{hash:016x}");
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let unique = std::iter::once(base.clone())
        .chain((1..).map(|k| format!("{base}_{k}")))
        .find(|n| !taken.contains(n))
        .expect("some suffix is free");
    taken.insert(unique.clone());
    format_ident!("{}", unique)
}

/// The hidden macro through which guides see model `name`, and its alias `name` in the
/// macro namespace (beside the model's type of that name, so importing one imports both).
/// A `pub` model's macro is exported from the crate; any other's is crate-wide.
///
/// Called as `M! { (path) guide G for M { .. } }`, it hands `__guide_impl!` the path, the
/// block's `source` and the guide; for a model that failed its checks (`source` `None`) it
/// expands to nothing, so its guides add no error to the model's own.
fn model_macro(
    name: &proc_macro2::Ident,
    public: bool,
    text: &str,
    source: Option<&TokenStream2>,
) -> TokenStream2 {
    let rules = match source {
        Some(tokens) => quote! {{
            (($($path:tt)*) $($guide:tt)*) => {
                ::ravi::__private::guide_impl! { ($($path)*) #tokens $($guide)* }
            };
        }},
        None => quote! {{ ($($guide:tt)*) => {}; }},
    };
    if public {
        let mac = exported_name(name, text);
        quote! {
            #[doc(hidden)]
            #[macro_export]
            #[allow(unused_macros, non_local_definitions)]
            macro_rules! #mac #rules
            #[doc(hidden)]
            #[allow(unused_imports)]
            pub use #mac as #name;
        }
    } else {
        let mac = format_ident!("__ravi_model_{}", name);
        quote! {
            #[doc(hidden)]
            #[allow(unused_macros)]
            macro_rules! #mac #rules
            #[doc(hidden)]
            #[allow(unused_imports)]
            pub(crate) use #mac as #name;
        }
    }
}

/// Defines models: `model Name(inputs) { statements }` (`model Name<D, K>(..)` with size
/// parameters, const generics of the generated items); `pub model` makes the model usable
/// from other crates. See the `ravi` crate's docs.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let tokens = TokenStream2::from(input);
    let src = Source::new(tokens.clone());
    let declared = declared_models(&tokens);
    // A block that fails still defines each model's macro, expanding to nothing, so that
    // the model's guides stay silent and only the model's own errors show.
    let silent = |out: &mut TokenStream2| {
        for (name, public) in &declared {
            out.extend(model_macro(name, *public, &src.text, None));
        }
    };
    let program = match ravi_compiler::compile(&src.text) {
        Ok(p) => p,
        Err(d) => {
            let mut out = errors(&src, &d);
            silent(&mut out);
            return out.into();
        }
    };
    if !program.guides.is_empty() {
        let msg = "guides go in a `guide!` block";
        let mut out = quote!(::core::compile_error!(#msg););
        silent(&mut out);
        return out.into();
    }
    let span_of = |r: &ravi_compiler::Span| src.span_of(r);
    let mut out = TokenStream2::new();
    // The guides that `bnn` items stand for come with their models.
    for g in &program.generated_guides {
        let model = program.model(&g.model).expect("checked by compile");
        out.extend(ravi_compiler::codegen::guide(g, model, &span_of));
    }
    for m in &program.models {
        out.extend(ravi_compiler::codegen::model(m, &span_of));
        let (name, public) = declared
            .iter()
            .find(|(n, _)| *n == m.name)
            .cloned()
            .unwrap_or_else(|| (format_ident!("{}", m.name), false));
        // The whole block's source travels with every model it defines; `__guide_impl!`
        // compiles it again beside the guide.
        out.extend(model_macro(&name, public, &src.text, Some(&tokens)));
    }
    out.into()
}

/// Defines guides: `guide Name for Model { sites ~ Family; ... }`. The model is named as
/// any item is: `M` where the type `M` is in scope (defined there with `model!`, or
/// imported by `use`), or a path, `guide G for crate::models::M`.
#[proc_macro]
pub fn guide(input: TokenStream) -> TokenStream {
    // Split into items at each top-level `guide` keyword (doc attributes and `pub` go with
    // the next).
    let mut items: Vec<Vec<TokenTree>> = Vec::new();
    let mut pending: Vec<TokenTree> = Vec::new();
    for tt in TokenStream2::from(input) {
        let starts = matches!(&tt, TokenTree::Ident(i) if i == "guide");
        if starts {
            // A trailing `pub` and the `#[doc = ..]` attributes before it belong to the
            // guide that starts here.
            let mut cut = pending.len();
            if matches!(pending.last(), Some(TokenTree::Ident(i)) if i == "pub") {
                cut -= 1;
            }
            while cut >= 2
                && matches!(&pending[cut - 2], TokenTree::Punct(p) if p.as_char() == '#')
                && matches!(&pending[cut - 1], TokenTree::Group(g) if g.delimiter() == Delimiter::Bracket)
            {
                cut -= 2;
            }
            let docs = pending.split_off(cut);
            if !pending.is_empty() {
                items.push(std::mem::take(&mut pending));
            }
            pending = docs;
        }
        pending.push(tt);
    }
    if !pending.is_empty() {
        items.push(pending);
    }
    let mut out = TokenStream2::new();
    for item in items {
        let after_for = item
            .iter()
            .position(|t| matches!(t, TokenTree::Ident(i) if i == "for"))
            .map(|k| k + 1);
        match after_for.and_then(|k| model_path(&item[k..]).map(|p| (k, p))) {
            Some((k, (len, name))) => {
                // `path::M! { (path::M) guide G for M { .. } }`: the model's macro, found
                // as its type is, gets the guide with the model's name alone and the path
                // apart.
                let path: TokenStream2 = item[k..k + len].iter().cloned().collect();
                let body: TokenStream2 = item[..k]
                    .iter()
                    .cloned()
                    .chain([TokenTree::Ident(name)])
                    .chain(item[k + len..].iter().cloned())
                    .collect();
                out.extend(quote!(#path! { (#path) #body }));
            }
            None => {
                // Let the compiler say what is wrong with the syntax, at the right token.
                let body: TokenStream2 = item.into_iter().collect();
                let src = Source::new(body);
                match ravi_compiler::compile(&src.text) {
                    Err(d) => out.extend(errors(&src, &d)),
                    Ok(_) => {
                        let msg = "expected `guide Name for Model { ... }`";
                        out.extend(quote!(::core::compile_error!(#msg);));
                    }
                }
            }
        }
    }
    out.into()
}

/// The path at the start of `tokens` (`M`, `models::M`, `::krate::models::M`): how many
/// tokens it takes and its last name.
fn model_path(tokens: &[TokenTree]) -> Option<(usize, proc_macro2::Ident)> {
    let is_colons = |k: usize| {
        matches!(tokens.get(k), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint)
            && matches!(tokens.get(k + 1), Some(TokenTree::Punct(p)) if p.as_char() == ':')
    };
    let mut k = if is_colons(0) { 2 } else { 0 };
    loop {
        let Some(TokenTree::Ident(name)) = tokens.get(k) else {
            return None;
        };
        if is_colons(k + 1) {
            k += 3;
        } else {
            return Some((k + 1, name.clone()));
        }
    }
}

/// Not for direct use: a model's hidden macro calls it with the path the guide named the
/// model by (in parentheses), the model's source and one guide.
#[doc(hidden)]
#[proc_macro]
pub fn __guide_impl(input: TokenStream) -> TokenStream {
    let mut tokens = TokenStream2::from(input).into_iter().peekable();
    let path = match tokens.peek() {
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => {
            let path = g.stream();
            tokens.next();
            Some(path)
        }
        _ => None,
    };
    let src = Source::new(tokens.collect());
    let program = match ravi_compiler::compile(&src.text) {
        Ok(p) => p,
        Err(d) => return errors(&src, &d).into(),
    };
    let span_of = |r: &ravi_compiler::Span| src.span_of(r);
    let mut out = TokenStream2::new();
    for g in &program.guides {
        let model = program.model(&g.model).expect("checked by compile");
        // A guide that names its model by its name alone gets the same code as ever.
        match &path {
            Some(p) if p.to_string() != model.name => {
                out.extend(ravi_compiler::codegen::guide_at(g, model, p, &span_of));
            }
            _ => out.extend(ravi_compiler::codegen::guide(g, model, &span_of)),
        }
    }
    out.into()
}
