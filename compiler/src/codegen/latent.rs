//! A latent site's draw mapped onto its support (reals, positive, an interval, the
//! simplex), with the log-determinant of the map added to its term.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::emitter::Emitter;
use super::tokens::{axes, dim_usize};
use crate::ir::*;

/// Where a latent site lives, as the generated code maps the guide's draws there.
pub(super) enum LatentSupport {
    Real,
    Positive,
    UnitInterval,
    Interval(f64, f64),
    Simplex,
    Ordered,
}

pub(super) fn latent_support(ir: &ModelIr, site: &Site) -> LatentSupport {
    use crate::catalogue::Constraint;
    if site.ordered {
        return LatentSupport::Ordered;
    }
    match site.dist.support {
        Constraint::Positive => LatentSupport::Positive,
        // a latent's guide reaches the open interval: [0, 1] differs from it by two points
        Constraint::UnitInterval | Constraint::ClosedUnitInterval => LatentSupport::UnitInterval,
        Constraint::Simplex => LatentSupport::Simplex,
        Constraint::Interval => {
            let c = |i: usize| {
                ir.const_value(site.args[i])
                    .expect("checked: constant bounds")
            };
            LatentSupport::Interval(c(0), c(1))
        }
        _ => LatentSupport::Real,
    }
}

/// A relaxed Bernoulli or concrete latent: scored in the unconstrained space its guide draws
/// in (its logit, or log y for the concrete), exact in f32 where the value itself rounds to
/// a vertex, so it has no separate log-determinant.
pub(super) fn logit_space(site: &Site) -> bool {
    site.observed.is_none()
        && matches!(
            site.dist.name,
            "RelaxedBernoulli" | "RelaxedOneHotCategorical"
        )
}

/// Σ over the site's axes (`rank` of them, after the particles), per particle.
fn per_particle(e: TokenStream, rank: usize) -> TokenStream {
    if rank == 0 {
        e
    } else {
        let ax = axes(&(1..=rank).collect::<Vec<_>>());
        quote!(#e.sum::<(usize,), #ax>())
    }
}

impl Emitter<'_> {
    /// The statements of a latent's node `id` (the `k`-th latent): the guide's next draw,
    /// mapped onto the site's support, with `__log_det{k}` where the map has one.
    pub(super) fn latent(
        &mut self,
        id: NodeId,
        k: usize,
        node: &Node,
        ty: &TokenStream,
        val: &TokenStream,
    ) -> TokenStream {
        let v = Self::var(id);
        let u = quote!(__latents.next().expect("one tensor per latent site").reshape_like(&#val));
        let ir = self.ir;
        let site = ir
            .sites
            .iter()
            .find(|s| s.value == id)
            .expect("a sample node has its site");
        if logit_space(site) && site.dist.logit_space {
            let uk = format_ident!("__logit{}", k);
            return quote! {
                let #uk: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
                let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = #uk.retaped::<__T>().sigmoid();
            };
        }
        let rank = node.shape.rank();
        match latent_support(ir, site) {
            LatentSupport::Real => {
                quote!(let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;)
            }
            LatentSupport::Simplex => self.simplex_latent(site, k, &v, ty, val),
            LatentSupport::Ordered => self.ordered_latent(site, k, &v, ty, val),
            LatentSupport::Positive => {
                // x = eᵘ, log |dx/du| = u
                let ldj = format_ident!("__log_det{}", k);
                let ld = per_particle(quote!(__u.retaped::<__T>()), rank);
                self.log_dets.push(k);
                quote! {
                    let __u: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
                    let #ldj: ::ravi::PerParticle<__D, __T> = #ld;
                    let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = __u.exp();
                }
            }
            support @ (LatentSupport::UnitInterval | LatentSupport::Interval(..)) => {
                self.interval_latent(support, k, rank, &v, ty, &u)
            }
        }
    }

    /// K − 1 values per event onto the simplex by y = softmax([u, 0]), kept as log y (exact
    /// near a vertex); log |det| = Σ_k log y_k.
    fn simplex_latent(
        &mut self,
        site: &Site,
        k: usize,
        v: &proc_macro2::Ident,
        ty: &TokenStream,
        val: &TokenStream,
    ) -> TokenStream {
        let ldj = format_ident!("__log_det{}", k);
        let dims = &site.shape.0;
        let m: Vec<TokenStream> = dims[..dims.len() - 1].iter().map(dim_usize).collect();
        let comps = dim_usize(dims.last().expect("checked: a component axis"));
        let logy = format_ident!("__logy{}", k);
        // A concrete latent is scored from log y itself (see site_term).
        let log_det = if logit_space(site) {
            quote!()
        } else {
            self.log_dets.push(k);
            quote! {
                let #ldj: ::ravi::PerParticle<__D, __T> = #logy
                    .sum::<(usize,), ::ravi::__private::Axis<1>>()
                    .reshape_like(&(__s, 1usize #(* #m)*))
                    .sum::<(usize,), ::ravi::__private::Axis<1>>();
            }
        };
        quote! {
            let __u = __latents.next().expect("one tensor per latent site");
            let __rows = __s * (1usize #(* #m)*);
            let __comps: usize = #comps;
            let #logy = ::ravi::bijectors::log_softmax_simplex(
                __u.reshape_like(&(__rows, __comps - 1)),
            );
            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> =
                #logy.retaped::<__T>().exp().reshape_like(&#val);
            #log_det
        }
    }

    /// Increasing along the last axis: x₀ = u₀, x_j = x_{j−1} + e^{u_j} per vector;
    /// log |det| = Σ_{j≥1} u_j.
    fn ordered_latent(
        &mut self,
        site: &Site,
        k: usize,
        v: &proc_macro2::Ident,
        ty: &TokenStream,
        val: &TokenStream,
    ) -> TokenStream {
        let ldj = format_ident!("__log_det{}", k);
        let dims = &site.shape.0;
        let m: Vec<TokenStream> = dims[..dims.len() - 1].iter().map(dim_usize).collect();
        let len = dim_usize(dims.last().expect("checked: a last axis"));
        self.log_dets.push(k);
        quote! {
            let __u = __latents.next().expect("one tensor per latent site");
            let __rows = __s * (1usize #(* #m)*);
            let (__x, __ld) = ::ravi::bijectors::ordered(__u.reshape_like(&(__rows, #len)));
            let #ldj: ::ravi::PerParticle<__D, __T> = __ld
                .reshape_like(&(__s, 1usize #(* #m)*))
                .sum::<(usize,), ::ravi::__private::Axis<1>>();
            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = __x.reshape_like(&#val);
        }
    }

    /// x = low + (high − low) σ(u),
    /// log |dx/du| = log(high − low) − softplus(−u) − softplus(u)
    fn interval_latent(
        &mut self,
        support: LatentSupport,
        k: usize,
        rank: usize,
        v: &proc_macro2::Ident,
        ty: &TokenStream,
        u: &TokenStream,
    ) -> TokenStream {
        let ldj = format_ident!("__log_det{}", k);
        let (low, width) = match support {
            LatentSupport::Interval(lo, hi) => ((lo) as f32, (hi - lo) as f32),
            _ => (0.0f32, 1.0f32),
        };
        let log_width = super::f32_lit(width.ln());
        let (low, width) = (super::f32_lit(low), super::f32_lit(width));
        let ld = per_particle(
            quote!(
                (::ravi::__private::ops::softplus(__u.retaped::<__T>().negate())
                    + ::ravi::__private::ops::softplus(__u.retaped::<__T>())).negate() + #log_width
            ),
            rank,
        );
        self.log_dets.push(k);
        quote! {
            let __u: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
            let #ldj: ::ravi::PerParticle<__D, __T> = #ld;
            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = __u.sigmoid() * #width + #low;
        }
    }
}
