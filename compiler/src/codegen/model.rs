//! A model's Rust items: the marker type, its data struct, the `Model` impl (its terms per
//! particle, per row, and the predictive's arguments), and which nodes each body needs.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};

use super::emitter::Emitter;
use super::specs::{input_specs, latent_specs};
use super::tokens::{dim_usize, docs, size_generics, sizes};
use super::SpanMap;
use crate::ir::*;

/// The Rust items of a model: the marker type (generic over the model's size parameters,
/// `pub struct Reg<const D: usize>;`), its data struct, the `Model` impl and the static
/// assertions of sizes that involve Rust constants.
pub(super) fn items(ir: &ModelIr, span_of: SpanMap) -> TokenStream {
    let name = format_ident!("{}", ir.name, span = span_of(&ir.span));
    // a model without `///` lines still gets a line (a `pub` model of a library crate that
    // denies `missing_docs` must compile)
    let doc = match ir.docs.is_empty() {
        true => {
            let line = format!(
                " The model `{0}` (written with `model!`); its data is [`{0}Data`].",
                ir.name
            );
            quote!(#[doc = #line])
        }
        false => docs(&ir.docs),
    };
    // Sizes unified with a Rust constant; never a size parameter (the checks refuse to
    // unify one), so these stay outside the generic items.
    let asserts = ir.asserts.iter().map(|a| {
        let (l, r) = (dim_usize(&a.lhs), dim_usize(&a.rhs));
        let msg = &a.message;
        let sp = span_of(&a.span);
        quote_spanned!(sp=> const _: () = ::core::assert!(#l == #r, #msg);)
    });
    let (params, _) = size_generics(ir);
    let data = data_items(ir);
    let model_impl = model_impl(ir, &name);
    quote! {
        #(#asserts)*

        #doc
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #name #params;

        #data

        #model_impl
    }
}

/// The model's data struct (one `Array` per input) and its `ModelData` impl.
fn data_items(ir: &ModelIr) -> TokenStream {
    let data = format_ident!("{}Data", ir.name);
    let model_name = &ir.name;
    let fields: Vec<_> = ir
        .inputs
        .iter()
        .map(|i| format_ident!("{}", i.name))
        .collect();
    let field_docs = ir
        .inputs
        .iter()
        .map(|i| format!(" Input `{}`, shape {}.", i.name, i.shape));
    quote! {
        #[doc = concat!(" The data of [`", #model_name, "`], one field per input.")]
        #[derive(Debug, Clone)]
        pub struct #data {
            #(#[doc = #field_docs] pub #fields: ::ravi::Array,)*
        }

        impl ::ravi::ModelData for #data {
            fn arrays(&self) -> ::std::vec::Vec<&::ravi::Array> {
                ::std::vec![#(&self.#fields),*]
            }
        }
    }
}

/// `impl ::ravi::Model for {name}`: its tables, its log joint and the predictive's arguments.
///
/// The tables are associated consts of an inherent impl, not consts inside the trait's
/// functions: a const item in a function cannot name the impl's generic parameters, and
/// the tables of a model with size parameters do (`DimSpec::Fixed(D as usize)`).
fn model_impl(ir: &ModelIr, name: &proc_macro2::Ident) -> TokenStream {
    let data = format_ident!("{}Data", ir.name);
    let model_name = &ir.name;
    let (params, args) = size_generics(ir);
    let input_specs = input_specs(ir);
    let latent_specs = latent_specs(ir);
    let log_joint = log_joint_fns(ir);
    let observed_args = observed_args_fn(ir);
    let latent_args = latent_args_fn(ir);
    let (tracked_table, tracked) = tracked_fns(ir);
    let observed = observed_specs(ir);
    // `Reg<3>` for `model Reg<D>` at D = 3: the name the errors write.
    let (name_table, name_value) = if ir.sizes.is_empty() {
        (quote!(), quote!(#model_name))
    } else {
        let sizes = sizes(ir);
        (
            quote! {
                const __NAME: ::ravi::__private::SizedName =
                    ::ravi::__private::SizedName::new(#model_name, &[#(#sizes),*]);
            },
            quote!(Self::__NAME.as_str()),
        )
    };
    quote! {
        impl #params #name #args {
            #name_table
            const __INPUTS: &'static [::ravi::InputSpec] = &[#(#input_specs),*];
            // a prior's median may be a number clippy knows by name (ln 2, say)
            #[allow(clippy::approx_constant)]
            const __LATENTS: &'static [::ravi::LatentSpec] = &[#(#latent_specs),*];
            const __OBSERVED: &'static [::ravi::ObservedSpec] = &[#(#observed),*];
            #tracked_table
        }

        impl #params ::ravi::Model for #name #args {
            const NAME: &'static str = #name_value;
            type Data = #data;
            fn inputs() -> &'static [::ravi::InputSpec] {
                Self::__INPUTS
            }
            fn latents() -> &'static [::ravi::LatentSpec] {
                Self::__LATENTS
            }
            fn observed() -> &'static [::ravi::ObservedSpec] {
                Self::__OBSERVED
            }
            #log_joint
            #observed_args
            #latent_args
            #tracked
        }
    }
}

/// `::ravi::ObservedSpec`s: each observed site whose distribution's support is narrower
/// than the reals and checkable from the data alone (an interval's bounds when they are
/// numbers; discrete sites are checked by their inputs' declared integers).
fn observed_specs(ir: &ModelIr) -> Vec<TokenStream> {
    use crate::catalogue::Constraint;
    let number = |id: NodeId| {
        ir.const_value(id)
            .map(|v| v as f32)
            .filter(|v| v.is_finite())
            .map(super::tokens::f32_lit)
    };
    ir.sites
        .iter()
        .filter_map(|s| {
            let input = proc_macro2::Literal::usize_unsuffixed(s.observed?);
            // a mixture's first argument is its logits
            let args = if s.mixture { &s.args[1..] } else { &s.args[..] };
            let support = match s.dist.support {
                Constraint::Positive => quote!(::ravi::ObservedSupport::Positive),
                Constraint::UnitInterval => quote!(::ravi::ObservedSupport::UnitInterval),
                Constraint::ClosedUnitInterval => {
                    quote!(::ravi::ObservedSupport::ClosedUnitInterval)
                }
                Constraint::Interval => {
                    let (low, high) = (number(args[0])?, number(args[1])?);
                    quote!(::ravi::ObservedSupport::Interval { low: #low, high: #high })
                }
                Constraint::Simplex => {
                    let len = dim_usize(s.shape.0.last()?);
                    quote!(::ravi::ObservedSupport::Simplex { len: #len })
                }
                _ => return None,
            };
            let site = &s.name;
            Some(quote!(::ravi::ObservedSpec { site: #site, input: #input, support: #support }))
        })
        .collect()
}

/// Does node `id` read a model input (directly or through its operands)?
fn reads_data(ir: &ModelIr, id: NodeId) -> bool {
    let mut seen = vec![false; ir.nodes.len()];
    let mut stack = vec![id];
    while let Some(n) = stack.pop() {
        if std::mem::replace(&mut seen[n], true) {
            continue;
        }
        if matches!(ir.nodes[n].op, Op::Input(_)) {
            return true;
        }
        stack.extend(ir.nodes[n].op.operands());
    }
    false
}

/// `tracked_specs`, `tracked` and `tracked_globals`: the `track`ed values of the model at
/// given latents, `(particles, numel)` each, all of them (on a batch) or those that read no
/// data (what a posterior of the guide alone can show). Nothing for a model without any.
/// First the table of their specs (an associated const of the model's inherent impl).
fn tracked_fns(ir: &ModelIr) -> (TokenStream, TokenStream) {
    if ir.tracked.is_empty() {
        return (quote!(), quote!());
    }
    let specs = ir.tracked.iter().map(|t| {
        let name = &t.name;
        let dims = t.shape.0.iter().map(|d| match d {
            Dim::Rows => quote!(::ravi::DimSpec::Rows),
            d => {
                let u = dim_usize(d);
                quote!(::ravi::DimSpec::Fixed(#u))
            }
        });
        let data = reads_data(ir, t.value);
        quote!(::ravi::TrackedSpec { name: #name, dims: &[#(#dims),*], reads_data: #data })
    });
    let all: Vec<&NamedValue> = ir.tracked.iter().collect();
    let globals: Vec<&NamedValue> = ir
        .tracked
        .iter()
        .filter(|t| !reads_data(ir, t.value))
        .collect();
    let tracked = tracked_body(ir, &all);
    let tracked_globals = tracked_body(ir, &globals);
    let table = quote! {
        const __TRACKED: &'static [::ravi::TrackedSpec] = &[#(#specs),*];
    };
    let fns = quote! {
        fn tracked_specs() -> &'static [::ravi::TrackedSpec] {
            Self::__TRACKED
        }
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn tracked<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __batch: &::ravi::Batch<__D>,
        ) -> ::std::vec::Vec<::ravi::Particles<__D, __T>> {
            #tracked
        }
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn tracked_globals<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __batch: &::ravi::Batch<__D>,
        ) -> ::std::vec::Vec<::ravi::Particles<__D, __T>> {
            #tracked_globals
        }
    };
    (table, fns)
}

/// The body that computes `values`, each as `(particles, numel)`.
fn tracked_body(ir: &ModelIr, values: &[&NamedValue]) -> TokenStream {
    let roots: Vec<NodeId> = values.iter().map(|t| t.value).collect();
    let (live, uses) = liveness_of(ir, &|_| Vec::new(), &roots);
    let mut em = Emitter {
        ir,
        live,
        uses,
        log_dets: Vec::new(),
        per_row: false,
    };
    let live = em.live.clone();
    let body: Vec<TokenStream> = (0..ir.nodes.len())
        .filter(|&id| live[id])
        .map(|id| em.node(id))
        .collect();
    let outs: Vec<TokenStream> = values
        .iter()
        .map(|t| {
            let numel = t.shape.0.iter().map(dim_usize);
            let v = em.take_as(t.value, &t.shape, true);
            quote!(#v.reshape_like(&(__s, 1usize #(* #numel)*)))
        })
        .collect();
    let start = plain_draws();
    quote! {
        #start
        #(#body)*
        ::std::vec![#(#outs),*]
    }
}

/// `log_joint_terms_rewritten` and `log_joint_rows`: the model's terms per particle, and the
/// same split by data row (for the importance-weighted bound).
fn log_joint_fns(ir: &ModelIr) -> TokenStream {
    let (body, terms) = emit_terms(ir, false);
    let (rbody, row_terms) = emit_terms(ir, true);
    let start = plain_draws();
    quote! {
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn log_joint_terms_rewritten<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>>,
            __batch: &::ravi::Batch<__D>,
            __scale: f32,
        ) -> ::std::vec::Vec<(&'static str, ::ravi::PerParticle<__D, __T>)> {
            use ::ravi::__private::prelude::*;
            let mut __rewrites = __rewrites;
            let __s: usize = latents.first().map_or(1, |t| t.shape().0);
            let __n: usize = __batch.rows();
            let mut __latents = latents.into_iter();
            #(#body)*
            ::std::vec![#(#terms),*]
        }
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn log_joint_rows<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __batch: &::ravi::Batch<__D>,
        ) -> ::std::vec::Vec<(&'static str, ::core::option::Option<::ravi::Rows<__D, __T>>)> {
            #start
            let __scale = 1.0f32;
            #(#rbody)*
            ::std::vec![#(#row_terms),*]
        }
    }
}

/// `observed_args`: the parameters of each observed site's distribution, for the
/// posterior predictive.
fn observed_args_fn(ir: &ModelIr) -> TokenStream {
    let observed: Vec<&Site> = ir.sites.iter().filter(|s| s.observed.is_some()).collect();
    let (body, args) = args_of(ir, &observed);
    quote! {
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn observed_args<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __batch: &::ravi::Batch<__D>,
        ) -> ::std::vec::Vec<::ravi::ObservedArgs<__D, __T>> {
            #(#body)*
            ::std::vec![#(#args),*]
        }
    }
}

/// `latent_args`: the parameters of each latent site's prior at the given draws of the
/// sites before it (a `param` has none), for the prior predictive's ancestral draws.
fn latent_args_fn(ir: &ModelIr) -> TokenStream {
    let priors: Vec<&Site> = ir
        .latents()
        .map(|(_, s)| s)
        .filter(|s| s.param.is_none())
        .collect();
    let (body, args) = args_of(ir, &priors);
    let mut args = args.into_iter();
    let all = ir.latents().map(|(_, s)| match s.param {
        Some(_) => {
            let name = &s.name;
            quote!(::ravi::ObservedArgs { site: #name, predicts: ::ravi::Predicts::Nothing, args: ::std::vec::Vec::new() })
        }
        None => args.next().expect("one per prior"),
    });
    quote! {
        #[allow(unused_variables, unused_mut, clippy::all)]
        fn latent_args<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
            latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
            __batch: &::ravi::Batch<__D>,
        ) -> ::std::vec::Vec<::ravi::ObservedArgs<__D, __T>> {
            #(#body)*
            ::std::vec![#(#all),*]
        }
    }
}

/// The statements that compute the distribution parameters of `sites` from the plain
/// draws, and each site's `ObservedArgs`.
fn args_of(ir: &ModelIr, sites: &[&Site]) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let wanted = |s: &Site| match sites.iter().any(|t| std::ptr::eq(*t, s)) {
        true => s.args.clone(),
        false => Vec::new(),
    };
    let (live, uses) = liveness_of(ir, &wanted, &[]);
    let mut em = Emitter {
        ir,
        live,
        uses,
        log_dets: Vec::new(),
        per_row: false,
    };
    let mut body = vec![plain_draws()];
    for id in 0..ir.nodes.len() {
        if em.live[id] {
            body.push(em.node(id));
        }
    }
    let args = sites.iter().map(|s| em.site_args(s)).collect();
    (body, args)
}

/// The statements of a body that computes every site's term (per particle and row when
/// `per_row`), and the terms, `params` having none.
fn emit_terms(ir: &ModelIr, per_row: bool) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let (live, uses) = liveness(ir);
    let mut em = Emitter {
        ir,
        live,
        uses,
        log_dets: Vec::new(),
        per_row,
    };
    let live = em.live.clone();
    let body = (0..ir.nodes.len())
        .filter(|&id| live[id])
        .map(|id| em.node(id))
        .collect();
    let mut terms: Vec<TokenStream> = ir
        .sites
        .iter()
        .filter(|s| s.param.is_none())
        .map(|s| em.site_term(s))
        .collect();
    terms.extend(ir.factors.iter().map(|f| em.factor_term(f)));
    (body, terms)
}

/// Which nodes feed some site (the rest are not emitted) and how often each is used.
fn liveness(ir: &ModelIr) -> (Vec<bool>, Vec<usize>) {
    let factors: Vec<NodeId> = ir.factors.iter().map(|f| f.value).collect();
    liveness_of(
        ir,
        &|s: &Site| s.args.iter().copied().chain([s.value]).collect(),
        &factors,
    )
}

/// Which nodes feed the roots each site names, and how often each is used.
/// `extra`: nodes read once each beyond the sites' (a factor's value, a tracked value).
fn liveness_of(
    ir: &ModelIr,
    roots: &dyn Fn(&Site) -> Vec<NodeId>,
    extra: &[NodeId],
) -> (Vec<bool>, Vec<usize>) {
    let n = ir.nodes.len();
    let mut live = vec![false; n];
    // Every draw is taken, in order, from the guide's list of latents, whether or not this
    // body reads it (a hyperparameter the predictive does not need still comes first).
    let draws = (0..n).filter(|&i| matches!(ir.nodes[i].op, Op::Sample(_)));
    let mut stack: Vec<NodeId> = ir
        .sites
        .iter()
        .flat_map(roots)
        .chain(draws)
        .chain(extra.iter().copied())
        .collect();
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut live[id], true) {
            continue;
        }
        stack.extend(ir.nodes[id].op.operands());
    }
    let mut uses = vec![0; n];
    for (id, node) in ir.nodes.iter().enumerate() {
        if live[id] {
            for o in node.op.operands() {
                uses[o] += 1;
            }
        }
    }
    for s in &ir.sites {
        for a in roots(s) {
            // A `param`'s value is live (its draw must be taken in order) but it has no
            // term: the uses in the model's code are all there are.
            if s.param.is_none() || a != s.value {
                uses[a] += 1;
            }
        }
    }
    for &e in extra {
        uses[e] += 1;
    }
    (live, uses)
}

/// The first statements of a generated body that reads the guide's draws with no net call
/// rewritten: the particles `__s`, the rows `__n`, the draws in order.
fn plain_draws() -> TokenStream {
    quote! {
        use ::ravi::__private::prelude::*;
        let mut __rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>> =
            (0..latents.len()).map(|_| ::core::option::Option::None).collect();
        let __s: usize = latents.first().map_or(1, |t| t.shape().0);
        let __n: usize = __batch.rows();
        let mut __latents = latents.into_iter();
    }
}
