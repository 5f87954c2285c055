//! Sizes, shapes and axes as the types and values dfdx takes, and other small tokens.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Dim, ModelIr, Shape};

pub(super) fn lit_usize(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

pub(super) fn dim_type(d: &Dim) -> TokenStream {
    match d {
        Dim::Rows => quote!(usize),
        Dim::Lit(n) => {
            let n = lit_usize(*n);
            quote!(::ravi::__private::Const<#n>)
        }
        Dim::Const(c) => {
            let c = format_ident!("{}", c);
            quote!(::ravi::__private::Const<{ #c }>)
        }
    }
}

pub(super) fn dim_value(d: &Dim) -> TokenStream {
    match d {
        Dim::Rows => quote!(__n),
        Dim::Lit(n) => {
            let n = lit_usize(*n);
            quote!(::ravi::__private::Const::<#n>)
        }
        Dim::Const(c) => {
            let c = format_ident!("{}", c);
            quote!(::ravi::__private::Const::<{ #c }>)
        }
    }
}

/// The size as a `usize` expression (for static assertions and site sizes).
pub(super) fn dim_usize(d: &Dim) -> TokenStream {
    match d {
        Dim::Rows => quote!(__n),
        Dim::Lit(n) => {
            let n = lit_usize(*n);
            quote!(#n)
        }
        Dim::Const(c) => {
            let c = format_ident!("{}", c);
            quote!((#c as usize))
        }
    }
}

fn tuple(items: Vec<TokenStream>) -> TokenStream {
    match items.len() {
        0 => quote!(()),
        1 => {
            let a = &items[0];
            quote!((#a,))
        }
        _ => quote!((#(#items),*)),
    }
}

/// Type of a full shape (particle axis first when present).
pub(super) fn shape_type(s: &Shape, particles: bool) -> TokenStream {
    let mut items: Vec<TokenStream> = Vec::new();
    if particles {
        items.push(quote!(usize));
    }
    items.extend(s.0.iter().map(dim_type));
    tuple(items)
}

pub(super) fn shape_value(s: &Shape, particles: bool) -> TokenStream {
    let mut items: Vec<TokenStream> = Vec::new();
    if particles {
        items.push(quote!(__s));
    }
    items.extend(s.0.iter().map(dim_value));
    tuple(items)
}

/// dfdx's axes type for a list of axis indices.
pub(super) fn axes(ix: &[usize]) -> TokenStream {
    let lits: Vec<Literal> = ix.iter().map(|&i| lit_usize(i)).collect();
    match ix.len() {
        1 => quote!(::ravi::__private::Axis<#(#lits),*>),
        n => {
            let name = format_ident!("Axes{}", n);
            quote!(::ravi::__private::#name<#(#lits),*>)
        }
    }
}

pub(super) fn docs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| format!(" {l}"));
    quote!(#(#[doc = #lines])*)
}

/// The model's size parameters as idents (`D`, `K`).
pub(super) fn sizes(ir: &ModelIr) -> Vec<proc_macro2::Ident> {
    ir.sizes.iter().map(|s| format_ident!("{}", s)).collect()
}

/// The generic parameters of a model's items, `<const D: usize, const K: usize>` (nothing
/// for a model without size parameters), and the arguments that name them, `<D, K>`.
pub(super) fn size_generics(ir: &ModelIr) -> (TokenStream, TokenStream) {
    if ir.sizes.is_empty() {
        return (quote!(), quote!());
    }
    let sizes = sizes(ir);
    (quote!(<#(const #sizes: usize),*>), quote!(<#(#sizes),*>))
}
