//! Sizes, shapes and axes as the types and values dfdx takes, and other small tokens.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{Dim, ModelIr, Shape};

/// An `f32` literal: the one way the generated code writes a number (every number of a
/// model is an `f32` there). It cannot panic, as `Literal::f32_suffixed` does on a value
/// that is not finite: the checks refuse numbers beyond `f32` (`crate::limits`), and were
/// one to reach here it would become `f32::INFINITY` or `f32::NAN`, as Rust rounds it.
pub(crate) fn f32_lit(v: impl Into<f64>) -> TokenStream {
    let x = v.into() as f32;
    if x.is_finite() {
        let l = Literal::f32_suffixed(x);
        quote!(#l)
    } else if x.is_nan() {
        quote!(::core::f32::NAN)
    } else if x > 0.0 {
        quote!(::core::f32::INFINITY)
    } else {
        quote!(::core::f32::NEG_INFINITY)
    }
}

/// An `f64` literal (guide families' arguments), as [`f32_lit`] does it.
pub(crate) fn f64_lit(x: f64) -> TokenStream {
    if x.is_finite() {
        let l = Literal::f64_suffixed(x);
        quote!(#l)
    } else if x.is_nan() {
        quote!(::core::f64::NAN)
    } else if x > 0.0 {
        quote!(::core::f64::INFINITY)
    } else {
        quote!(::core::f64::NEG_INFINITY)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_literals_never_panic() {
        assert_eq!(f32_lit(1.5).to_string(), "1.5f32");
        assert_eq!(f32_lit(1e39).to_string(), ":: core :: f32 :: INFINITY");
        assert_eq!(f32_lit(-1e39).to_string(), ":: core :: f32 :: NEG_INFINITY");
        assert_eq!(f32_lit(f64::NAN).to_string(), ":: core :: f32 :: NAN");
        assert_eq!(
            f64_lit(f64::INFINITY).to_string(),
            ":: core :: f64 :: INFINITY"
        );
        assert_eq!(f64_lit(0.25).to_string(), "0.25f64");
    }
}
