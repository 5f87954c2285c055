//! The ravi proc macros: `model!` and `guide!`.
//!
//! A thin shell around `ravi-compiler` (the serde/sqlx split): turn the tokens into text
//! while recording which token each byte came from, compile the text, and either splice in
//! the generated code or report each error as a `compile_error!` at the offending token.
//!
//! A guide is checked against its model's source: `model!` also emits a hidden
//! `macro_rules! __ravi_model_{Name}` holding that source, and `guide! { guide G for M .. }`
//! expands to `__ravi_model_M! { guide G for M .. }`, which hands both to `__guide_impl!`.

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

/// Defines models: `model Name(inputs) { statements }`. See the `ravi` crate's docs.
#[proc_macro]
pub fn model(input: TokenStream) -> TokenStream {
    let tokens = TokenStream2::from(input);
    let src = Source::new(tokens.clone());
    let program = match ravi_compiler::compile(&src.text) {
        Ok(p) => p,
        Err(d) => return errors(&src, &d).into(),
    };
    if !program.guides.is_empty() {
        let msg = "guides go in a `guide!` block";
        return quote!(::core::compile_error!(#msg);).into();
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
        let mac = format_ident!("__ravi_model_{}", m.name);
        // The whole block's source travels with every model it defines; `__guide_impl!`
        // compiles it again beside the guide.
        out.extend(quote! {
            #[doc(hidden)]
            #[allow(unused_macros)]
            macro_rules! #mac {
                ($($guide:tt)*) => { ::ravi::__private::guide_impl! { #tokens $($guide)* } };
            }
        });
    }
    out.into()
}

/// Defines guides: `guide Name for Model { sites ~ Family; ... }`. The model must be
/// defined earlier in the same module (or a parent) with `model!`.
#[proc_macro]
pub fn guide(input: TokenStream) -> TokenStream {
    // Split into items at each top-level `guide` keyword (doc attributes go with the next).
    let mut items: Vec<Vec<TokenTree>> = Vec::new();
    let mut pending: Vec<TokenTree> = Vec::new();
    for tt in TokenStream2::from(input) {
        let starts = matches!(&tt, TokenTree::Ident(i) if i == "guide");
        if starts {
            // Trailing `#[doc = ..]` attributes belong to the guide that starts here.
            let mut cut = pending.len();
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
        let model = item
            .iter()
            .skip_while(|t| !matches!(t, TokenTree::Ident(i) if i == "for"))
            .nth(1);
        match model {
            Some(TokenTree::Ident(m)) => {
                let mac = format_ident!("__ravi_model_{}", m, span = m.span());
                let body: TokenStream2 = item.into_iter().collect();
                out.extend(quote!(#mac! { #body }));
            }
            _ => {
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

/// Not for direct use: `model!`'s hidden macro calls it with the model's source followed
/// by one guide.
#[doc(hidden)]
#[proc_macro]
pub fn __guide_impl(input: TokenStream) -> TokenStream {
    let src = Source::new(TokenStream2::from(input));
    let program = match ravi_compiler::compile(&src.text) {
        Ok(p) => p,
        Err(d) => return errors(&src, &d).into(),
    };
    let span_of = |r: &ravi_compiler::Span| src.span_of(r);
    let mut out = TokenStream2::new();
    for g in &program.guides {
        let model = program.model(&g.model).expect("checked by compile");
        out.extend(ravi_compiler::codegen::guide(g, model, &span_of));
    }
    out.into()
}
