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

use proc_macro2::{Literal, Span as TokSpan, TokenStream};
use quote::{format_ident, quote, quote_spanned};

use crate::ast::BinOp;
use crate::catalogue::Constraint;
use crate::diagnostic::Span;
use crate::ir::*;

/// Maps a byte range of the DSL text to the span of the token it came from.
pub type SpanMap<'a> = &'a dyn Fn(&Span) -> TokSpan;

fn lit_usize(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

fn dim_type(d: &Dim) -> TokenStream {
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

fn dim_value(d: &Dim) -> TokenStream {
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
fn dim_usize(d: &Dim) -> TokenStream {
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
fn shape_type(s: &Shape, particles: bool) -> TokenStream {
    let mut items: Vec<TokenStream> = Vec::new();
    if particles {
        items.push(quote!(usize));
    }
    items.extend(s.0.iter().map(dim_type));
    tuple(items)
}

fn shape_value(s: &Shape, particles: bool) -> TokenStream {
    let mut items: Vec<TokenStream> = Vec::new();
    if particles {
        items.push(quote!(__s));
    }
    items.extend(s.0.iter().map(dim_value));
    tuple(items)
}

/// dfdx's axes type for a list of axis indices.
fn axes(ix: &[usize]) -> TokenStream {
    let lits: Vec<Literal> = ix.iter().map(|&i| lit_usize(i)).collect();
    match ix.len() {
        1 => quote!(::ravi::__private::Axis<#(#lits),*>),
        n => {
            let name = format_ident!("Axes{}", n);
            quote!(::ravi::__private::#name<#(#lits),*>)
        }
    }
}

struct Emitter<'a> {
    ir: &'a ModelIr,
    live: Vec<bool>,
    uses: Vec<usize>,
    /// Latent sites (by index) whose value is mapped onto their support, with a
    /// log-determinant `__log_det{k}` to add to their term.
    log_dets: Vec<usize>,
    /// Emitting `log_joint_rows`: site terms per particle and row, `Option`s.
    per_row: bool,
}

/// A relaxed Bernoulli or concrete latent: scored in the unconstrained space its guide draws
/// in (its logit, or log y for the concrete), exact in f32 where the value itself rounds to
/// a vertex, so it has no separate log-determinant.
fn logit_space(site: &Site) -> bool {
    site.observed.is_none()
        && matches!(
            site.dist.name,
            "RelaxedBernoulli" | "RelaxedOneHotCategorical"
        )
}

impl Emitter<'_> {
    fn var(id: NodeId) -> proc_macro2::Ident {
        format_ident!("__v{}", id)
    }

    /// One use of node `id`: compile-time scalars are copied; tensors are cloned (data) or
    /// re-taped (taped) for every use but the last, which moves the value and its tape.
    fn take(&mut self, id: NodeId) -> TokenStream {
        let v = Self::var(id);
        let node = &self.ir.nodes[id];
        if node.constant {
            return quote!(#v);
        }
        self.uses[id] -= 1;
        match (self.uses[id] > 0, node.particles) {
            (false, _) => quote!(#v),
            (true, true) => quote!(#v.retaped::<__T>()),
            (true, false) => quote!(#v.clone()),
        }
    }

    /// A use of `id`, broadcast to the full shape of `out` (and re-taped if `out` is taped).
    fn take_as(&mut self, id: NodeId, out: &Shape, out_particles: bool) -> TokenStream {
        let node = self.ir.nodes[id].clone();
        let v = self.take(id);
        let mut missing: Vec<usize> = Vec::new();
        if out_particles && !node.particles {
            missing.push(0);
        }
        let off = usize::from(out_particles);
        missing.extend((0..out.rank() - node.shape.rank()).map(|i| i + off));
        let mut e = if missing.is_empty() {
            v
        } else {
            let ty = shape_type(out, out_particles);
            let val = shape_value(out, out_particles);
            let ax = axes(&missing);
            quote!(#v.broadcast_like::<#ty, #ax>(&#val))
        };
        if out_particles && !node.particles {
            e = quote!(#e.retaped::<__T>());
        }
        e
    }

    fn constant_expr(&self, id: NodeId) -> TokenStream {
        let node = &self.ir.nodes[id];
        let v = |i: &NodeId| Self::var(*i);
        match &node.op {
            Op::Const(x) => {
                let l = Literal::f32_suffixed(*x as f32);
                quote!(#l)
            }
            Op::RustConst(c) => {
                let c = format_ident!("{}", c);
                quote!((#c as f32))
            }
            Op::Temperature => quote!(__batch.temperature()),
            Op::Neg(a) => {
                let a = v(a);
                quote!(-#a)
            }
            Op::Binary(op, a, b) => {
                let (a, b) = (v(a), v(b));
                match op {
                    BinOp::Add => quote!(#a + #b),
                    BinOp::Sub => quote!(#a - #b),
                    BinOp::Mul => quote!(#a * #b),
                    BinOp::Div => quote!(#a / #b),
                    BinOp::MatMul => unreachable!("matmul of scalars is rejected by the checks"),
                }
            }
            Op::Func(f, a) => {
                let a = v(a);
                match f {
                    Func::Exp => quote!(#a.exp()),
                    Func::Log => quote!(#a.ln()),
                    Func::Tanh => quote!(#a.tanh()),
                    Func::Softplus => quote!(::ravi::__private::ops::softplus_f32(#a)),
                    Func::Sigmoid => quote!(::ravi::__private::ops::sigmoid_f32(#a)),
                }
            }
            // A reduction of a scalar is the scalar.
            Op::Reduce(_, a, _) => {
                let a = v(a);
                quote!(#a)
            }
            Op::Input(_) | Op::Sample(_) | Op::MatMul(..) | Op::Net(..) | Op::Concat(_) => {
                unreachable!("inputs, sites, matmuls and nets are not constants")
            }
        }
    }

    fn node(&mut self, id: NodeId) -> TokenStream {
        let node = self.ir.nodes[id].clone();
        let v = Self::var(id);
        if node.constant {
            let e = self.constant_expr(id);
            return quote!(let #v: f32 = #e;);
        }
        let p = node.particles;
        let ty = shape_type(&node.shape, p);
        let val = shape_value(&node.shape, p);
        let expr = match &node.op {
            Op::Input(i) => {
                let i = lit_usize(*i);
                quote!(__batch.input(#i).reshape_like(&#val))
            }
            Op::Sample(k) => {
                let u = quote!(__latents.next().expect("one tensor per latent site").reshape_like(&#val));
                let site = self
                    .ir
                    .sites
                    .iter()
                    .find(|s| s.value == id)
                    .expect("a sample node has its site");
                let ldj = format_ident!("__log_det{}", *k);
                let rank = node.shape.rank();
                // Σ over the site's axes, per particle.
                let per_particle = |e: TokenStream| {
                    if rank == 0 {
                        e
                    } else {
                        let ax = axes(&(1..=rank).collect::<Vec<_>>());
                        quote!(#e.sum::<(usize,), #ax>())
                    }
                };
                if logit_space(site) && site.dist.logit_space {
                    let uk = format_ident!("__logit{}", *k);
                    return quote! {
                        let #uk: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
                        let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = #uk.retaped::<__T>().sigmoid();
                    };
                }
                match latent_support(self.ir, site) {
                    LatentSupport::Real => u,
                    LatentSupport::Simplex => {
                        // K − 1 values per event onto the simplex by y = softmax([u, 0]),
                        // kept as log y (exact near a vertex); log |det| = Σ_k log y_k.
                        let dims = &site.shape.0;
                        let m: Vec<TokenStream> =
                            dims[..dims.len() - 1].iter().map(dim_usize).collect();
                        let comps = dim_usize(dims.last().expect("checked: a component axis"));
                        let logy = format_ident!("__logy{}", *k);
                        // A concrete latent is scored from log y itself (see site_term).
                        let log_det = if logit_space(site) {
                            quote!()
                        } else {
                            self.log_dets.push(*k);
                            quote! {
                                let #ldj: ::ravi::PerParticle<__D, __T> = #logy
                                    .sum::<(usize,), ::ravi::__private::Axis<1>>()
                                    .reshape_like(&(__s, 1usize #(* #m)*))
                                    .sum::<(usize,), ::ravi::__private::Axis<1>>();
                            }
                        };
                        return quote! {
                            let __u = __latents.next().expect("one tensor per latent site");
                            let __rows = __s * (1usize #(* #m)*);
                            let __comps: usize = #comps;
                            let #logy = ::ravi::bijectors::log_softmax_simplex(
                                __u.reshape_like(&(__rows, __comps - 1)),
                            );
                            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> =
                                #logy.retaped::<__T>().exp().reshape_like(&#val);
                            #log_det
                        };
                    }
                    LatentSupport::Positive => {
                        // x = eᵘ, log |dx/du| = u
                        let ld = per_particle(quote!(__u.retaped::<__T>()));
                        self.log_dets.push(*k);
                        return quote! {
                            let __u: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
                            let #ldj: ::ravi::PerParticle<__D, __T> = #ld;
                            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = __u.exp();
                        };
                    }
                    LatentSupport::UnitInterval | LatentSupport::Interval(..) => {
                        // x = low + (high − low) σ(u),
                        // log |dx/du| = log(high − low) − softplus(−u) − softplus(u)
                        let (low, width) = match latent_support(self.ir, site) {
                            LatentSupport::Interval(lo, hi) => ((lo) as f32, (hi - lo) as f32),
                            _ => (0.0f32, 1.0f32),
                        };
                        let log_width = width.ln();
                        let ld = per_particle(quote!(
                            (::ravi::__private::ops::softplus(__u.retaped::<__T>().negate())
                                + ::ravi::__private::ops::softplus(__u.retaped::<__T>())).negate() + #log_width
                        ));
                        self.log_dets.push(*k);
                        return quote! {
                            let __u: ::ravi::__private::Tensor<#ty, f32, __D, _> = #u;
                            let #ldj: ::ravi::PerParticle<__D, __T> = #ld;
                            let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = __u.sigmoid() * #width + #low;
                        };
                    }
                }
            }
            Op::Neg(a) => {
                let a = self.take(*a);
                quote!(#a.negate())
            }
            Op::Binary(op, a, b) => self.binary(*op, *a, *b, &node),
            Op::MatMul(a, b) => self.matmul(*a, *b, &node),
            Op::Net(n, x, w) => self.net_call(*n, *x, *w, &node),
            Op::Concat(parts) => {
                let pieces: Vec<TokenStream> = parts
                    .iter()
                    .map(|&q| {
                        let shape = self.ir.nodes[q].shape.clone();
                        let n = dim_usize(&shape.0[0]);
                        let t = self.take_as(q, &shape, true);
                        quote!(#t.reshape_like(&(__s, #n)))
                    })
                    .collect();
                let first = &pieces[0];
                let rest = &pieces[1..];
                quote!({
                    let __joined = #first;
                    #(let __joined = (__joined, #rest).concat_along(::ravi::__private::Axis::<1>);)*
                    __joined.reshape_like(&#val)
                })
            }
            Op::Func(f, a) => {
                let a = self.take(*a);
                match f {
                    Func::Exp => quote!(#a.exp()),
                    Func::Log => quote!(#a.ln()),
                    Func::Tanh => quote!(#a.tanh()),
                    Func::Sigmoid => quote!(#a.sigmoid()),
                    Func::Softplus => quote!(::ravi::__private::ops::softplus(#a)),
                }
            }
            Op::Reduce(r, a, axis) => {
                let src = self.ir.nodes[*a].clone();
                let off = usize::from(p);
                let ix: Vec<usize> = match axis {
                    None => (0..src.shape.rank()).map(|i| i + off).collect(),
                    Some(k) => vec![k + off],
                };
                let a = self.take(*a);
                if ix.is_empty() {
                    a
                } else {
                    let ax = axes(&ix);
                    match r {
                        Reduce::Sum => quote!(#a.sum::<#ty, #ax>()),
                        Reduce::Mean => quote!(#a.mean::<#ty, #ax>()),
                    }
                }
            }
            Op::Const(_) | Op::RustConst(_) | Op::Temperature => {
                unreachable!("constants are handled above")
            }
        };
        quote!(let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = #expr;)
    }

    fn binary(&mut self, op: BinOp, a: NodeId, b: NodeId, out: &Node) -> TokenStream {
        let (ca, cb) = (self.ir.nodes[a].constant, self.ir.nodes[b].constant);
        if cb {
            let (x, c) = (self.take(a), self.take(b));
            return match op {
                BinOp::Add => quote!(#x + #c),
                BinOp::Sub => quote!(#x - #c),
                BinOp::Mul => quote!(#x * #c),
                BinOp::Div => quote!(#x / #c),
                BinOp::MatMul => unreachable!(),
            };
        }
        if ca {
            let (c, x) = (self.take(a), self.take(b));
            return match op {
                BinOp::Add => quote!(#x + #c),
                BinOp::Sub => quote!(#x.negate() + #c),
                BinOp::Mul => quote!(#x * #c),
                BinOp::Div => quote!(#x.recip() * #c),
                BinOp::MatMul => unreachable!(),
            };
        }
        if a == b && out.particles {
            // dfdx cannot take one tensor id on both sides of an op: write it with one operand.
            // Count the extra use first, so that the operand kept is the node's last use
            // when it is, and carries the tape of the ops that made it.
            let _ = self.take(b);
            let x = self.take_as(a, &out.shape, out.particles);
            return match op {
                BinOp::Add => quote!(#x * 2.0),
                BinOp::Sub => quote!(#x * 0.0),
                BinOp::Mul => quote!(#x.square()),
                BinOp::Div => quote!(#x * 0.0 + 1.0),
                BinOp::MatMul => unreachable!(),
            };
        }
        let x = self.take_as(a, &out.shape, out.particles);
        let y = self.take_as(b, &out.shape, out.particles);
        match op {
            BinOp::Add => quote!(#x + #y),
            BinOp::Sub => quote!(#x - #y),
            BinOp::Mul => quote!(#x * #y),
            BinOp::Div => quote!(#x / #y),
            BinOp::MatMul => unreachable!(),
        }
    }

    /// `Net(x; theta)` per particle: every layer's W and b sliced out of theta (W then b,
    /// layer by layer), rows batched over the particles.
    fn net_call(&mut self, n: usize, x: NodeId, w: NodeId, out: &Node) -> TokenStream {
        let net = self.ir.nets[n].clone();
        let p = lit_usize(net.num_params());
        let xnode = self.ir.nodes[x].clone();
        let rows = dim_value(&xnode.shape.0[0]);
        // The rows' shape at the input, and the layers' shapes as they flow.
        let input_shape = match net.input {
            NetInput::Features(f) => {
                let f = lit_usize(f);
                quote!((__s, __rows, #f))
            }
            NetInput::Images {
                channels,
                height,
                width,
            } => {
                let (c, h, w) = (lit_usize(channels), lit_usize(height), lit_usize(width));
                quote!((__s, __rows, #c, #h, #w))
            }
        };
        let mut image = match net.input {
            NetInput::Images {
                channels,
                height,
                width,
            } => Some((channels, height, width)),
            NetInput::Features(_) => None,
        };
        let outputs = lit_usize(net.outputs);
        let wt = self.take_as(w, &Shape(vec![Dim::Lit(net.num_params())]), true);
        let xt = self.take_as(x, &xnode.shape, true);
        let outv = shape_value(&out.shape, true);
        // Each layer twice, in one pass over the weight vector and the image sizes: with
        // the drawn weights, and rewritten for a Gaussian the guide hands over (Flipout,
        // LRT), which only Linear and Conv2d layers change.
        let mut off = 0usize;
        let (mut layers, mut rlayers) = (Vec::new(), Vec::new());
        for layer in &net.layers {
            let (plain, rewritten) = match layer {
                NetLayer::Linear { inputs, outputs } => {
                    let (i, o) = (lit_usize(*inputs), lit_usize(*outputs));
                    let (w0, w1, b1) = (
                        lit_usize(off),
                        lit_usize(off + inputs * outputs),
                        lit_usize(off + inputs * outputs + outputs),
                    );
                    off += inputs * outputs + outputs;
                    let plain = quote! {
                        let __wl = __w.retaped::<__T>().slice((.., #w0..#w1)).reshape_like(&(__s, #i, #o));
                        let __bl = __w.retaped::<__T>().slice((.., #w1..#b1))
                            .broadcast_like::<(usize, usize, usize), ::ravi::__private::Axis<1>>(&(__s, __rows, #o));
                        let __h = __h.matmul(__wl) + __bl;
                    };
                    let rewritten = quote! {
                        let __wm = __loc.retaped::<__T>().slice((#w0..#w1,)).reshape_like(&(#i, #o));
                        let __bm = __loc.retaped::<__T>().slice((#w1..#b1,));
                        let __ws = __sc.retaped::<__T>().slice((#w0..#w1,)).reshape_like(&(#i, #o));
                        let __bs = __sc.retaped::<__T>().slice((#w1..#b1,));
                        let __h = match __rewrite {
                            ::ravi::Rewrite::Lrt => ::ravi::nn::linear_lrt(__h, __wm, __ws, __bm, __bs),
                            ::ravi::Rewrite::Flipout => ::ravi::nn::linear_flipout(__h, __wm, __ws, __bm, __bs),
                        };
                    };
                    (plain, rewritten)
                }
                NetLayer::Conv2d {
                    inputs,
                    outputs,
                    kernel,
                    stride,
                    padding,
                } => {
                    let nf = outputs * inputs * kernel * kernel;
                    let (w0, w1, b1) = (
                        lit_usize(off),
                        lit_usize(off + nf),
                        lit_usize(off + nf + outputs),
                    );
                    off += nf + outputs;
                    let (_, h, w) = image.expect("checked: a convolution takes images");
                    image = Some((
                        *outputs,
                        (h + 2 * padding - kernel) / stride + 1,
                        (w + 2 * padding - kernel) / stride + 1,
                    ));
                    let (k, st, pd) = (lit_usize(*kernel), lit_usize(*stride), lit_usize(*padding));
                    let plain = quote! {
                        let __f = __w.retaped::<__T>().slice((.., #w0..#w1));
                        let __b = __w.retaped::<__T>().slice((.., #w1..#b1));
                        let __h = ::ravi::nn::conv2d(__h, __f, __b, #k, #st, #pd);
                    };
                    let rewritten = quote! {
                        let __wm = __loc.retaped::<__T>().slice((#w0..#w1,));
                        let __bm = __loc.retaped::<__T>().slice((#w1..#b1,));
                        let __ws = __sc.retaped::<__T>().slice((#w0..#w1,));
                        let __bs = __sc.retaped::<__T>().slice((#w1..#b1,));
                        let __h = match __rewrite {
                            ::ravi::Rewrite::Lrt => ::ravi::nn::conv2d_lrt(__h, __wm, __ws, __bm, __bs, #k, #st, #pd),
                            ::ravi::Rewrite::Flipout => ::ravi::nn::conv2d_flipout(__h, __wm, __ws, __bm, __bs, #k, #st, #pd),
                        };
                    };
                    (plain, rewritten)
                }
                NetLayer::Pool { max, kernel } => {
                    let (c, h, w) = image.expect("checked: pooling takes images");
                    image = Some((c, (h - kernel) / kernel + 1, (w - kernel) / kernel + 1));
                    let k = lit_usize(*kernel);
                    let t = quote!(let __h = ::ravi::nn::pool2d(__h, #max, #k););
                    (t.clone(), t)
                }
                NetLayer::Flatten => {
                    let (c, h, w) = image.take().expect("checked: flatten takes images");
                    let f = lit_usize(c * h * w);
                    let t = quote!(let __h = __h.reshape_like(&(__s, __rows, #f)););
                    (t.clone(), t)
                }
                NetLayer::Activation(a) => {
                    let t = match a {
                        Activation::Relu => quote!(let __h = __h.relu();),
                        Activation::Tanh => quote!(let __h = __h.tanh();),
                        Activation::Sigmoid => quote!(let __h = __h.sigmoid();),
                        Activation::Softplus => {
                            quote!(let __h = ::ravi::__private::ops::softplus(__h);)
                        }
                    };
                    (t.clone(), t)
                }
            };
            layers.push(plain);
            rlayers.push(rewritten);
        }
        // Weights drawn from a mean-field Gaussian the guide hands over: the rewritten call.
        let rewritten = match self.ir.nodes[w].op {
            Op::Sample(k) => {
                let k = lit_usize(k);
                quote! {
                    if let ::core::option::Option::Some(__g) = __rewrites.get_mut(#k).and_then(|g| g.take()) {
                        let __rewrite = __g.rewrite;
                        let __loc = __g.loc + 0.0;
                        let __sc = __g.scale + 0.0;
                        let __h = __xt_rewrite.reshape_like(&#input_shape);
                        #(#rlayers)*
                        // The Gaussian's own tapes (softplus of ρ) join here; the draw of the
                        // weights only feeds the prior, so its tape joins too.
                        let __h = __h + ((__loc.sum::<(), _>() + __sc.sum::<(), _>() + __w_unused.sum::<(), _>() + __xt_in.sum::<(), _>()) * 0.0)
                            .broadcast_like::<(usize, usize, usize), ::ravi::__private::Axes3<0, 1, 2>>(&(__s, __rows, #outputs));
                        return __h.reshape_like(&#outv);
                    }
                }
            }
            _ => quote!(),
        };
        quote!((|| {
            let __rows: usize = #rows;
            let __w_unused = #wt.reshape_like(&(__s, #p));
            let __xt_in = #xt;
            let __xt_rewrite = __xt_in.retaped::<__T>();
            #rewritten
            // dfdx 0.13's slice backward assigns into the input's gradient instead of adding
            // to it, so slices are taken from a copy that nothing else reads.
            let __w = __w_unused + 0.0;
            let __h = __xt_in.reshape_like(&#input_shape);
            #(#layers)*
            // theta's own tape carries the ops that made it.
            let __h = __h + (__w.sum::<(), _>() * 0.0)
                .broadcast_like::<(usize, usize, usize), ::ravi::__private::Axes3<0, 1, 2>>(&(__s, __rows, #outputs));
            __h.reshape_like(&#outv)
        })())
    }

    /// `a @ b` per particle. The taped operand must be dfdx's left operand, so a data matrix
    /// times per-particle weights is computed as (wᵀ xᵀ)ᵀ.
    fn matmul(&mut self, a: NodeId, b: NodeId, out: &Node) -> TokenStream {
        let (na, nb) = (self.ir.nodes[a].clone(), self.ir.nodes[b].clone());
        let (pa, pb) = (na.particles, nb.particles);
        let (ra, rb) = (na.shape.rank(), nb.shape.rank());
        let k = na.shape.0[ra - 1].clone();
        let (kt, kv) = (dim_type(&k), dim_value(&k));
        let one = quote!(::ravi::__private::Const::<1>);
        let outv = shape_value(&out.shape, out.particles);
        let (x, y) = (self.take(a), self.take(b));
        // dfdx cannot take one tensor id on both sides of a product: copy the right one.
        let y = if a == b && pb { quote!((#y + 0.0)) } else { y };
        match (pa, pb, ra, rb) {
            (false, false, 1, 1) => quote!((#x * #y).sum::<(), _>()),
            (false, false, _, _)
            | (true, false, _, 2)
            | (true, false, 1, 1)
            | (true, true, 2, 2) => {
                quote!(#x.matmul(#y))
            }
            (true, false, 2, 1) => {
                quote!(#x.matmul(#y.reshape_like(&(#kv, #one))).reshape_like(&#outv))
            }
            (false, true, 2, 1) => {
                let mt = dim_type(&na.shape.0[0]);
                quote!(#y.matmul(#x.permute::<(#kt, #mt), ::ravi::__private::Axes2<1, 0>>()))
            }
            (false, true, 2, 2) => {
                let mt = dim_type(&na.shape.0[0]);
                let nt = dim_type(&nb.shape.0[1]);
                quote!(#y.permute::<(usize, #nt, #kt), ::ravi::__private::Axes3<0, 2, 1>>()
                    .matmul(#x.permute::<(#kt, #mt), ::ravi::__private::Axes2<1, 0>>())
                    .permute::<(usize, #mt, #nt), ::ravi::__private::Axes3<0, 2, 1>>())
            }
            (false, true, 1, 2) => {
                let nt = dim_type(&nb.shape.0[1]);
                quote!(#y.permute::<(usize, #nt, #kt), ::ravi::__private::Axes3<0, 2, 1>>()
                    .matmul(#x.reshape_like(&(#kv, #one)))
                    .reshape_like(&#outv))
            }
            (false, true, 1, 1) => quote!(#y.matmul(#x)),
            (true, true, 1, 2) => {
                quote!(#x.reshape_like(&(__s, #one, #kv)).matmul(#y).reshape_like(&#outv))
            }
            (true, true, 2, 1) => {
                quote!(#x.matmul(#y.reshape_like(&(__s, #kv, #one))).reshape_like(&#outv))
            }
            (true, true, 1, 1) => quote!((#x * #y).sum::<(usize,), ::ravi::__private::Axis<1>>()),
            _ => unreachable!("matmul ranks are 1 or 2"),
        }
    }

    fn site_term(&mut self, site: &Site) -> TokenStream {
        let dist = format_ident!("{}", site.dist.name);
        if site.dist.vector_event {
            // Values and vector parameters as (particles, M, K); matrices as (K, K).
            let dims = &site.shape.0;
            let m: Vec<TokenStream> = dims[..dims.len() - 1].iter().map(dim_usize).collect();
            let k = dim_usize(dims.last().expect("checked: a component axis"));
            let events = quote!(&(__s, 1usize #(* #m)*, #k));
            let value = self.take_as(site.value, &site.shape, true);
            let args: Vec<TokenStream> = site
                .args
                .iter()
                .zip(site.parametrization.params)
                .map(|(&a, p)| {
                    if p.constraint == crate::catalogue::Constraint::LowerTriangular {
                        let t = self.take(a);
                        quote!(#t.reshape_like(&(#k, #k)))
                    } else if self.ir.nodes[a].constant {
                        let c = self.take(a);
                        quote!(::ravi::__private::ops::filled_like(&__events, #c))
                    } else {
                        let t = self.take_as(a, &site.shape, true);
                        quote!(#t.reshape_like(#events))
                    }
                })
                .collect();
            if logit_space(site) {
                let name = &site.name;
                let logy = format_ident!(
                    "__logy{}",
                    self.ir.latent_index(name).expect("a latent site")
                );
                // `__events` is what constant arguments are filled like; its tape (the
                // guide's draw) joins through the zero term.
                // Scored from log y; the value y joins with weight 0, so that its tape
                // (the exp, through which the model's other uses reach log y) is kept.
                let per_event = quote!({
                    let __events = #logy.reshape_like(#events);
                    let __kept = #value.reshape_like(#events).sum::<(usize, usize), ::ravi::__private::Axis<2>>() * 0.0;
                    ::ravi::dist::#dist::log_prob_alr_events(__events.retaped::<__T>(), #(#args),*)
                        + __events.sum::<(usize, usize), ::ravi::__private::Axis<2>>() * 0.0
                        + __kept
                });
                if self.per_row {
                    return quote!((#name, ::core::option::Option::Some({
                        let __pe = #per_event;
                        let __m = __pe.shape().1;
                        __pe.reshape_like(&(__s, __n, __m / __n.max(1))).sum::<(usize, usize), ::ravi::__private::Axis<2>>()
                    })));
                }
                return self.site_entry(
                    site,
                    quote!(#per_event.sum::<(usize,), ::ravi::__private::Axis<1>>()),
                );
            }
            let lp = quote!({
                let __events = #value.reshape_like(#events);
                ::ravi::dist::#dist::log_prob_events(__events.retaped::<__T>(), #(#args),*) + __events.sum::<(usize,), ::ravi::__private::Axes2<1, 2>>() * 0.0
            });
            return self.site_entry(site, lp);
        }
        if site.dist.event {
            // Values flattened to (M,), parameters to (particles, M, K).
            let value = self.take(site.value);
            let m: Vec<TokenStream> = site.shape.0.iter().map(dim_usize).collect();
            let args: Vec<TokenStream> = site
                .args
                .iter()
                .map(|&a| {
                    let k = self.ir.nodes[a]
                        .shape
                        .0
                        .last()
                        .expect("checked: a category axis")
                        .clone();
                    let mut full = site.shape.clone();
                    full.0.push(k.clone());
                    let t = self.take_as(a, &full, true);
                    let k = dim_usize(&k);
                    quote!(#t.reshape_like(&(__s, 1usize #(* #m)*, #k)))
                })
                .collect();
            let log_prob = format_ident!("log_prob_events{}", site.parametrization.suffix);
            let lp = quote!(::ravi::dist::#dist::#log_prob(#value.reshape_like(&(1usize #(* #m)*,)), #(#args),*));
            return self.site_entry(site, lp);
        }
        if site.dist.joint {
            let value = self.take_as(site.value, &site.shape, true);
            let numel = site.shape.0.iter().map(dim_usize);
            let args: Vec<TokenStream> = site.args.iter().map(|&a| self.take(a)).collect();
            let lp = quote!(::ravi::dist::#dist::log_prob_joint(
                #value.reshape_like(&(__s, 1usize #(* #numel)*)), #(#args),*));
            return self.site_entry(site, lp);
        }
        let (value, log_prob) = if logit_space(site) && site.dist.logit_space {
            let k = self.ir.latent_index(&site.name).expect("a latent site");
            // Scored through its logit; the value σ(u) joins with weight 0, so that its
            // tape (the sigmoid, through which the model's other uses reach u) is kept.
            let value = self.take_as(site.value, &site.shape, true);
            let uk = format_ident!("__logit{}", k);
            (
                quote!(#uk + #value * 0.0),
                format_ident!("log_prob_logit_space"),
            )
        } else {
            let value = self.take_as(site.value, &site.shape, true);
            (
                value,
                format_ident!("log_prob{}", site.parametrization.suffix),
            )
        };
        let args: Vec<TokenStream> = site
            .args
            .iter()
            .map(|&a| {
                if self.ir.nodes[a].constant {
                    let c = self.take(a);
                    quote!(::ravi::dist::Arg::Scalar(#c))
                } else {
                    let t = self.take_as(a, &site.shape, true);
                    quote!(::ravi::dist::Arg::Tensor(#t))
                }
            })
            .collect();
        let lp = quote!(::ravi::dist::#dist::#log_prob(#value, #(#args),*));
        let rank = site.shape.rank();
        if self.per_row {
            // Σ over the axes after the rows: (particles, rows).
            let name = &site.name;
            let k = self.ir.latent_index(&site.name);
            let mapped = k.is_some_and(|k| self.log_dets.contains(&k));
            if site.shape.0.first() != Some(&Dim::Rows) || mapped {
                return quote!((#name, ::core::option::Option::None));
            }
            let rows = if rank == 1 {
                lp
            } else {
                let ax = axes(&(2..=rank).collect::<Vec<_>>());
                quote!(#lp.sum::<(usize, usize), #ax>())
            };
            return quote!((#name, ::core::option::Option::Some(#rows)));
        }
        let summed = if rank == 0 {
            lp
        } else {
            let ax = axes(&(1..=rank).collect::<Vec<_>>());
            quote!(#lp.sum::<(usize,), #ax>())
        };
        self.site_entry(site, summed)
    }

    /// An observed site's distribution parameters as `(particles, values)` tensors, for
    /// the predictive: elementwise parameters one value per element, a categorical's logits
    /// K per element; densities of whole sites or vectors give none.
    fn observed_args(&mut self, site: &Site, input: usize) -> TokenStream {
        let name = &site.name;
        let numel: Vec<TokenStream> = site.shape.0.iter().map(dim_usize).collect();
        let i = lit_usize(input);
        let args: Vec<TokenStream> = if site.dist.joint || site.dist.vector_event {
            Vec::new()
        } else {
            site.args
                .iter()
                .map(|&a| {
                    let node = self.ir.nodes[a].clone();
                    if node.constant {
                        let c = self.take(a);
                        quote!(::ravi::__private::ops::constant_particles(&__batch.input(#i), __s, 1usize #(* #numel)*, #c))
                    } else if site.dist.event {
                        let k = node.shape.0.last().expect("checked: a category axis").clone();
                        let mut full = site.shape.clone();
                        full.0.push(k.clone());
                        let t = self.take_as(a, &full, true);
                        let k = dim_usize(&k);
                        quote!(#t.reshape_like(&(__s, 1usize #(* #numel)* * #k)))
                    } else {
                        let t = self.take_as(a, &site.shape, true);
                        quote!(#t.reshape_like(&(__s, 1usize #(* #numel)*)))
                    }
                })
                .collect()
        };
        let dist = format_ident!("{}", site.dist.name);
        let index = lit_usize(site.dist.index_of(site.parametrization));
        let moments = quote!(<::ravi::dist::#dist as ::ravi::dist::Distribution>::PARAMETRIZATIONS[#index].moments);
        let predicts = if site.dist.event {
            let k = site
                .args
                .first()
                .and_then(|&a| self.ir.nodes[a].shape.0.last().cloned());
            let k = k.map_or(quote!(1usize), |k| dim_usize(&k));
            quote!(::ravi::Predicts::Classes(#k))
        } else if site.dist.joint || site.dist.vector_event {
            quote!(::ravi::Predicts::Nothing)
        } else if site.dist.support == Constraint::Boolean {
            quote!(match #moments { ::core::option::Option::Some(m) => ::ravi::Predicts::Binary(m), ::core::option::Option::None => ::ravi::Predicts::Nothing })
        } else {
            quote!(match #moments { ::core::option::Option::Some(m) => ::ravi::Predicts::Moments(m), ::core::option::Option::None => ::ravi::Predicts::Nothing })
        };
        quote!(::ravi::ObservedArgs { site: #name, predicts: #predicts, args: ::std::vec![#(#args),*] })
    }

    /// `(name, term)` of a site: scaled if observed or local, plus the log-det if mapped.
    /// In `log_joint_rows`, a site the per-row path did not split: `(name, None)`.
    fn site_entry(&mut self, site: &Site, summed: TokenStream) -> TokenStream {
        let name = &site.name;
        if self.per_row {
            return quote!((#name, ::core::option::Option::None));
        }
        match site.observed {
            Some(_) => quote!((#name, #summed * __scale)),
            None => {
                let k = self.ir.latent_index(&site.name).expect("a latent site");
                let term = if self.log_dets.contains(&k) {
                    let ldj = format_ident!("__log_det{}", k);
                    quote!(#summed + #ldj)
                } else {
                    summed
                };
                if site.is_local() {
                    quote!((#name, (#term) * __scale))
                } else {
                    quote!((#name, #term))
                }
            }
        }
    }
}

/// Where a latent site lives, as the generated code maps the guide's draws there.
enum LatentSupport {
    Real,
    Positive,
    UnitInterval,
    Interval(f64, f64),
    Simplex,
}

fn latent_support(ir: &ModelIr, site: &Site) -> LatentSupport {
    use crate::catalogue::Constraint;
    match site.dist.support {
        Constraint::Positive => LatentSupport::Positive,
        Constraint::UnitInterval => LatentSupport::UnitInterval,
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
    let terms = ir
        .sites
        .iter()
        .filter(|s| s.param.is_none())
        .map(|s| em.site_term(s))
        .collect();
    (body, terms)
}

/// `acc = Some(acc + term)` (or `Some(term)` first) in generated code: how the guide sums
/// its entries' log q terms.
fn accumulate(acc: &proc_macro2::Ident, term: TokenStream) -> TokenStream {
    quote! {
        #acc = ::core::option::Option::Some(match #acc {
            ::core::option::Option::None => #term,
            ::core::option::Option::Some(acc) => acc + #term,
        });
    }
}

/// A net of Linear layers and activations as `&[::ravi::nn::Layer]`, run at run time by
/// the guides that read the data's rows (encoders, guide programs' nets).
fn runtime_layers(net: &NetIr) -> TokenStream {
    let layers = net.layers.iter().map(|l| match *l {
        NetLayer::Linear { inputs, outputs } => {
            quote!(::ravi::nn::Layer::Linear { inputs: #inputs, outputs: #outputs })
        }
        NetLayer::Activation(Activation::Relu) => quote!(::ravi::nn::Layer::Relu),
        NetLayer::Activation(Activation::Tanh) => quote!(::ravi::nn::Layer::Tanh),
        NetLayer::Activation(Activation::Sigmoid) => quote!(::ravi::nn::Layer::Sigmoid),
        NetLayer::Activation(Activation::Softplus) => quote!(::ravi::nn::Layer::Softplus),
        _ => unreachable!("checked: a net on the data's rows has Linear layers and activations"),
    });
    quote!(&[#(#layers),*])
}

/// The Glorot blocks of a net's weight vector (or of its `layer`-th weighted layer).
fn init_blocks(net: &NetIr, layer: Option<usize>) -> Vec<TokenStream> {
    net.layers
        .iter()
        .filter(|l| l.num_params() > 0)
        .enumerate()
        .filter(|(i, _)| layer.is_none_or(|k| k == *i))
        .map(|(_, l)| {
            let (fan_in, fan_out, weights, bias) = match *l {
                NetLayer::Linear { inputs, outputs } => (inputs, outputs, inputs * outputs, outputs),
                NetLayer::Conv2d { inputs, outputs, kernel, .. } => (
                    inputs * kernel * kernel,
                    outputs * kernel * kernel,
                    outputs * inputs * kernel * kernel,
                    outputs,
                ),
                _ => (0, 0, 0, 0),
            };
            quote!(::ravi::InitBlock { fan_in: #fan_in, fan_out: #fan_out, weights: #weights, bias: #bias })
        })
        .collect()
}

/// Which nodes feed some site (the rest are not emitted) and how often each is used.
fn liveness(ir: &ModelIr) -> (Vec<bool>, Vec<usize>) {
    liveness_of(ir, &|s: &Site| {
        s.args.iter().copied().chain([s.value]).collect()
    })
}

/// Which nodes feed the roots each site names, and how often each is used.
fn liveness_of(ir: &ModelIr, roots: &dyn Fn(&Site) -> Vec<NodeId>) -> (Vec<bool>, Vec<usize>) {
    let n = ir.nodes.len();
    let mut live = vec![false; n];
    // Every draw is taken, in order, from the guide's list of latents, whether or not this
    // body reads it (a hyperparameter the predictive does not need still comes first).
    let draws = (0..n).filter(|&i| matches!(ir.nodes[i].op, Op::Sample(_)));
    let mut stack: Vec<NodeId> = ir.sites.iter().flat_map(roots).chain(draws).collect();
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
    (live, uses)
}

fn docs(lines: &[String]) -> TokenStream {
    let lines = lines.iter().map(|l| format!(" {l}"));
    quote!(#(#[doc = #lines])*)
}

/// The Rust items of a model: the marker type, its data struct, the `Model` impl and the
/// static assertions of sizes that involve Rust constants.
pub fn model(ir: &ModelIr, span_of: SpanMap) -> TokenStream {
    let name = format_ident!("{}", ir.name, span = span_of(&ir.span));
    let data = format_ident!("{}Data", ir.name);
    let model_name = &ir.name;
    let doc = docs(&ir.docs);

    let asserts = ir.asserts.iter().map(|a| {
        let (l, r) = (dim_usize(&a.lhs), dim_usize(&a.rhs));
        let msg = &a.message;
        let sp = span_of(&a.span);
        quote_spanned!(sp=> const _: () = ::core::assert!(#l == #r, #msg);)
    });

    let fields: Vec<_> = ir
        .inputs
        .iter()
        .map(|i| format_ident!("{}", i.name))
        .collect();
    let field_docs = ir
        .inputs
        .iter()
        .map(|i| format!(" Input `{}`, shape {}.", i.name, i.shape));
    let input_specs = ir.inputs.iter().map(|i| {
        let n = &i.name;
        let dims = i.shape.0.iter().map(|d| match d {
            Dim::Rows => quote!(::ravi::DimSpec::Rows),
            d => {
                let u = dim_usize(d);
                quote!(::ravi::DimSpec::Fixed(#u))
            }
        });
        let has_rows = i.shape.0.first() == Some(&Dim::Rows);
        let integers = match i.integers {
            None => quote!(::core::option::Option::None),
            Some((lo, hi)) => {
                let hi = match hi {
                    Some(h) => quote!(::core::option::Option::Some(#h)),
                    None => quote!(::core::option::Option::None),
                };
                quote!(::core::option::Option::Some((#lo, #hi)))
            }
        };
        quote!(::ravi::InputSpec { name: #n, dims: &[#(#dims),*], has_rows: #has_rows, integers: #integers })
    });
    let net_weights = crate::start::net_weights(ir);
    let latent_specs = ir.latents().map(|(k, s)| {
        let n = &s.name;
        let prior_median = match crate::start::prior_median(ir, s).map(|v| v as f32) {
            Some(v) if v.is_finite() => quote!(::core::option::Option::Some(#v)),
            _ => quote!(::core::option::Option::None),
        };
        let net = match net_weights[k] {
            Some((net, layer)) if s.param.is_none() => {
                let blocks = init_blocks(&ir.nets[net], layer);
                quote!(::core::option::Option::Some(&[#(#blocks),*]))
            }
            _ => quote!(::core::option::Option::None),
        };
        let local = s.is_local();
        let dims = s.shape.0.iter().skip(usize::from(local)).map(dim_usize);
        let param = match &s.param {
            None => quote!(::core::option::Option::None),
            Some(ParamInitIr::Value(v)) => {
                let v = *v as f32;
                quote!(::core::option::Option::Some(::ravi::ParamInit::Value(#v)))
            }
            Some(ParamInitIr::Net(net, layer)) => {
                let blocks = init_blocks(&ir.nets[*net], *layer);
                quote!(::core::option::Option::Some(::ravi::ParamInit::Glorot(&[#(#blocks),*])))
            }
        };
        let support = match latent_support(ir, s) {
            LatentSupport::Real => quote!(::ravi::Support::Real),
            LatentSupport::Positive => quote!(::ravi::Support::Positive),
            LatentSupport::UnitInterval => quote!(::ravi::Support::UnitInterval),
            LatentSupport::Simplex => quote!(::ravi::Support::Simplex),
            LatentSupport::Interval(low, high) => {
                let (low, high) = (low as f32, high as f32);
                quote!(::ravi::Support::Interval { low: #low, high: #high })
            }
        };
        quote!(::ravi::LatentSpec { name: #n, shape: &[#(#dims),*], support: #support, local: #local, param: #param, prior_median: #prior_median, net: #net })
    });

    // The model's terms per particle, and the same split by data row (for the
    // importance-weighted bound).
    let (body, terms) = emit_terms(ir, false);
    let (rbody, row_terms) = emit_terms(ir, true);

    // The parameters of each observed site's distribution, for the posterior predictive.
    let observed_roots = |s: &Site| {
        if s.observed.is_some() {
            s.args.clone()
        } else {
            Vec::new()
        }
    };
    let (live, uses) = liveness_of(ir, &observed_roots);
    let mut pem = Emitter {
        ir,
        live,
        uses,
        log_dets: Vec::new(),
        per_row: false,
    };
    let mut pbody = Vec::new();
    for id in 0..ir.nodes.len() {
        if pem.live[id] {
            pbody.push(pem.node(id));
        }
    }
    let observed_args: Vec<TokenStream> = ir
        .sites
        .iter()
        .filter_map(|s| s.observed.map(|i| (s, i)))
        .map(|(site, input)| pem.observed_args(site, input))
        .collect();

    quote! {
        #(#asserts)*

        #doc
        #[derive(Debug, Clone, Copy, Default)]
        pub struct #name;

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

        impl ::ravi::Model for #name {
            const NAME: &'static str = #model_name;
            type Data = #data;
            fn inputs() -> &'static [::ravi::InputSpec] {
                const INPUTS: &[::ravi::InputSpec] = &[#(#input_specs),*];
                INPUTS
            }
            // a prior's median may be a number clippy knows by name (ln 2, say)
            #[allow(clippy::approx_constant)]
            fn latents() -> &'static [::ravi::LatentSpec] {
                const LATENTS: &[::ravi::LatentSpec] = &[#(#latent_specs),*];
                LATENTS
            }
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
                use ::ravi::__private::prelude::*;
                let mut __rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>> =
                    (0..latents.len()).map(|_| ::core::option::Option::None).collect();
                let __scale = 1.0f32;
                let __s: usize = latents.first().map_or(1, |t| t.shape().0);
                let __n: usize = __batch.rows();
                let mut __latents = latents.into_iter();
                #(#rbody)*
                ::std::vec![#(#row_terms),*]
            }
            #[allow(unused_variables, unused_mut, clippy::all)]
            fn observed_args<__D: ::ravi::Backend, __T: ::ravi::Tape<__D>>(
                latents: ::std::vec::Vec<::ravi::Particles<__D, __T>>,
                __batch: &::ravi::Batch<__D>,
            ) -> ::std::vec::Vec<::ravi::ObservedArgs<__D, __T>> {
                use ::ravi::__private::prelude::*;
                let mut __rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>> =
                    (0..latents.len()).map(|_| ::core::option::Option::None).collect();
                let __s: usize = latents.first().map_or(1, |t| t.shape().0);
                let __n: usize = __batch.rows();
                let mut __latents = latents.into_iter();
                #(#pbody)*
                ::std::vec![#(#observed_args),*]
            }
        }
    }
}

/// `::ravi::FamilyArgs(vec![(name, value), ...])`, built when the guide is constructed.
fn family_args(args: &[(String, FamilyValue)]) -> TokenStream {
    let items = args.iter().map(|(k, v)| {
        let v = match v {
            FamilyValue::Number(x) => quote!(::ravi::FamilyArg::Number(#x)),
            FamilyValue::List(xs) => quote!(::ravi::FamilyArg::List(::std::vec![#(#xs),*])),
            FamilyValue::Name(n) => quote!(::ravi::FamilyArg::Name(#n)),
            FamilyValue::Auto => quote!(::ravi::FamilyArg::Auto),
            FamilyValue::Layers(layers) => {
                let layers = layers.iter().map(|l| {
                    let kind = l.kind;
                    let args = family_args(&l.args);
                    quote!(::ravi::FlowLayer { kind: #kind, args: #args })
                });
                quote!(::ravi::FamilyArg::Layers(::std::vec![#(#layers),*]))
            }
        };
        quote!((#k, #v))
    });
    quote!(::ravi::FamilyArgs(::std::vec![#(#items),*]))
}

/// The guide's side of the host engine (`Guide::host_program` and `Guide::host_gaussians`):
/// the engine's program and the parameters of each Gaussian entry, in the order the guide
/// draws them (its families, then its program lines), or why the engine does not run it.
fn host_program(
    ir: &GuideIr,
    model: &ModelIr,
    fields: &[proc_macro2::Ident],
    families: &[TokenStream],
    param_fields: &[proc_macro2::Ident],
) -> TokenStream {
    let program = match crate::fused::program(model, ir) {
        Ok(program) => program,
        Err(reason) => {
            return quote! {
                fn host_program() -> ::core::result::Result<&'static ::ravi::program::Program, &'static str> {
                    ::core::result::Result::Err(#reason)
                }
            }
        }
    };
    let families = fields
        .iter()
        .zip(families)
        .map(|(f, fam)| quote!(<#fam as ::ravi::GuideFamily<__D>>::host_gaussian(&self.#f)));
    let lines = ir.programs.iter().map(|p| match p.args[..] {
        [ProgramArg::Param(l), ProgramArg::Param(s)] => {
            let (l, s) = (&param_fields[l], &param_fields[s]);
            quote!(::core::option::Option::Some(::ravi::HostGaussian::mean_field(self.#l, self.#s)))
        }
        _ => unreachable!("checked by the program's coverage"),
    });
    quote! {
        fn host_program() -> ::core::result::Result<&'static ::ravi::program::Program, &'static str> {
            ::core::result::Result::Ok({ #program })
        }
        fn host_gaussians(&self) -> ::core::option::Option<::std::vec::Vec<::ravi::HostGaussian>> {
            [#(#families,)* #(#lines),*].into_iter().collect()
        }
    }
}

/// The Rust items of a guide: a struct holding its parameters and families, its
/// constructor, and the `Guide` impl that draws every latent site of the model.
pub fn guide(ir: &GuideIr, model: &ModelIr, span_of: SpanMap) -> TokenStream {
    // Each entry adds its log q term to the global or the per-row sum.
    let add_log_q = accumulate(&format_ident!("log_q"), quote!(lq));
    let add_local_log_q = accumulate(&format_ident!("local_log_q"), quote!(lq));
    let name = format_ident!("{}", ir.name, span = span_of(&ir.span));
    let model_ty = format_ident!("{}", model.name);
    let doc = docs(&ir.docs);
    let n_latents = model.latents().count();
    let fields: Vec<_> = (0..ir.entries.len())
        .map(|i| format_ident!("entry{}", i))
        .collect();
    let families: Vec<_> = ir
        .entries
        .iter()
        .map(|e| {
            let f = format_ident!("{}", e.family.name);
            quote!(::ravi::guides::#f)
        })
        .collect();
    let latent_names: Vec<&str> = model.latents().map(|(_, s)| s.name.as_str()).collect();
    let builds = ir.entries.iter().zip(&families).map(|(e, fam)| {
        let label = e.label(model);
        let idx = e.sites.iter().map(|&i| lit_usize(i));
        let args = family_args(&e.args);
        quote!(<#fam as ::ravi::GuideFamily<__D>>::build(
            &mut params, #label, 0 #(+ latents[#idx].unconstrained_numel())*, &#args))
    });
    let latent_sites: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    let samples = ir.entries.iter().zip(&fields).zip(&families).map(|((e, f), fam)| {
        let idx: Vec<_> = e.sites.iter().map(|&i| lit_usize(i)).collect();
        // A mean-field entry whose sites all have numeric Normal priors (in the guide's
        // unconstrained space) can use the closed-form KL.
        let normal_priors: Option<Vec<(f32, f32)>> = e.family.mean_field
            .then(|| e.sites.iter().map(|&i| model.normal_prior(latent_sites[i])).collect())
            .flatten();
        let analytic_kl = normal_priors.map(|priors| {
            let (locs, scales): (Vec<f32>, Vec<f32>) = priors.into_iter().unzip();
            quote! {
                let lq = if estimator == ::ravi::Estimator::AnalyticKl {
                    let (mut prior_loc, mut prior_scale) = (::std::vec::Vec::new(), ::std::vec::Vec::new());
                    for ((site, m), s) in [#(#idx),*].into_iter().zip([#(#locs),*]).zip([#(#scales),*]) {
                        prior_loc.extend(::std::iter::repeat(m).take(latents[site].numel()));
                        prior_scale.extend(::std::iter::repeat(s).take(latents[site].numel()));
                    }
                    self.#f.analytic_kl_term::<__D, __T>(&self.params, z.retaped::<__T>(), &prior_loc, &prior_scale)
                } else {
                    lq
                };
            }
        });
        let rewrite = e.family.rewrite.is_some().then(|| {
            let site = &idx[0];
            quote!(rewrites[#site] = ::core::option::Option::Some(self.#f.gaussian::<__D, __T>(&self.params));)
        });
        quote! {
            let ::ravi::FamilyDraw { z, log_q: lq } =
                <#fam as ::ravi::GuideFamily<__D>>::sample::<__T>(&self.#f, &self.params, particles, estimator);
            #rewrite
            #analytic_kl
            let entropy_weight = <#fam as ::ravi::GuideFamily<__D>>::entropy_weight(&self.#f);
            let lq = if weighted && entropy_weight != 1.0 { lq * entropy_weight } else { lq };
            let sizes = [#(latents[#idx].unconstrained_numel()),*];
            for (site, part) in [#(#idx),*].into_iter().zip(::ravi::__private::ops::split_columns(z, &sizes)) {
                slots[site] = ::core::option::Option::Some(part);
            }
            #add_log_q
        }
    });
    let weights = ir
        .entries
        .iter()
        .zip(&fields)
        .zip(&families)
        .map(|((e, f), fam)| {
            let idx = e.sites.iter().map(|&i| lit_usize(i));
            quote! {
                let w = <#fam as ::ravi::GuideFamily<__D>>::prior_weight(&self.#f);
                #(weights[#idx] = w;)*
            }
        });
    // Guide programs: `param`s in the store, and each `site ~ Normal(..)` drawn from them.
    let param_fields: Vec<_> = (0..ir.params.len())
        .map(|i| format_ident!("param{}", i))
        .collect();
    let param_builds = ir.params.iter().map(|p| {
        let name = &p.name;
        let numel: Vec<TokenStream> = p.shape.0.iter().map(dim_usize).collect();
        if let Some((net, layer)) = p.net_init {
            let blocks = init_blocks(&model.nets[net], layer);
            return quote!(::ravi::guides::program::param_with_init(
                &mut params, #name, 1usize #(* #numel)*, &::ravi::ParamInit::Glorot(&[#(#blocks),*])));
        }
        let (init, positive) = (p.init as f32, p.positive);
        quote!(params.add(#name, ::std::vec![::ravi::guides::program::stored_init(#init, #positive); 1usize #(* #numel)*]))
    });
    let program_arg = |a: &ProgramArg| match a {
        ProgramArg::Const(v) => {
            let v = *v as f32;
            quote!(::ravi::guides::program::ProgramArg::Const(#v))
        }
        ProgramArg::Param(i) => {
            let f = &param_fields[*i];
            let positive = ir.params[*i].positive;
            quote!(::ravi::guides::program::ProgramArg::Param { id: self.#f, positive: #positive })
        }
        ProgramArg::Net { .. } => unreachable!("checked: nets on rows draw local sites"),
    };
    // A local site's arguments, per row.
    let row_arg = |a: &ProgramArg| match a {
        ProgramArg::Const(v) => {
            let v = *v as f32;
            quote!(::ravi::guides::program::RowArg::Const(#v))
        }
        ProgramArg::Param(i) => {
            let f = &param_fields[*i];
            let positive = ir.params[*i].positive;
            quote!(::ravi::guides::program::RowArg::Param { id: self.#f, positive: #positive })
        }
        ProgramArg::Net {
            net,
            input,
            param,
            softplus,
        } => {
            let f = &param_fields[*param];
            let layers = runtime_layers(&model.nets[*net]);
            let input = lit_usize(*input);
            quote!(::ravi::guides::program::RowArg::Net { layers: #layers, weights: self.#f, input: #input, softplus: #softplus })
        }
    };
    let program_checks = ir
        .programs
        .iter()
        .flat_map(|p| {
            let site = lit_usize(p.site);
            let site_name = &latent_names[p.site];
            p.args.iter().filter_map(move |a| match a {
                ProgramArg::Param(i) => Some((*i, site.clone(), *site_name)),
                ProgramArg::Const(_) | ProgramArg::Net { .. } => None,
            })
        })
        .map(|(i, site, site_name)| {
            let f = &param_fields[i];
            let pname = &ir.params[i].name;
            quote! {
                let n = ::ravi::__private::prelude::HasShape::shape(params.get(#f)).0;
                assert!(
                    n == 1 || n == latents[#site].numel(),
                    "parameter `{}` has {} values but the site `{}` has {}",
                    #pname, n, #site_name, latents[#site].numel()
                );
            }
        });
    let host = host_program(ir, model, &fields, &families, &param_fields);
    let latent_sites_all: Vec<&Site> = model.latents().map(|(_, s)| s).collect();
    let programs = ir.programs.iter().map(|p| {
        let site = lit_usize(p.site);
        if latent_sites_all[p.site].is_local() {
            let args: Vec<TokenStream> = p.args.iter().map(row_arg).collect();
            let (loc, scale) = (&args[0], &args[1]);
            return quote! {
                let (z, lq) = ::ravi::guides::program::sample_normal_rows::<__D, __T>(
                    &self.params, __batch, #loc, #scale, particles, latents[#site].numel(), estimator);
                slots[#site] = ::core::option::Option::Some(z);
                #add_local_log_q
            };
        }
        let args: Vec<TokenStream> = p.args.iter().map(program_arg).collect();
        let (loc, scale) = (&args[0], &args[1]);
        quote! {
            let ::ravi::FamilyDraw { z, log_q: lq } = ::ravi::guides::program::sample_normal::<__D, __T>(
                &self.params, #loc, #scale, particles, latents[#site].numel(), estimator);
            slots[#site] = ::core::option::Option::Some(z);
            #add_log_q
        }
    });
    // Model `param`s, held as points.
    let delta_sites: Vec<(usize, &Site)> =
        model.latents().filter(|(_, s)| s.param.is_some()).collect();
    let delta_fields: Vec<_> = (0..delta_sites.len())
        .map(|i| format_ident!("delta{}", i))
        .collect();
    let delta_builds = delta_sites.iter().map(|(i, s)| {
        let i = lit_usize(*i);
        let name = &s.name;
        quote!(::ravi::guides::Delta::build(&mut params, #name, latents[#i].numel(),
            &latents[#i].param.expect("a param site has its start")))
    });
    let delta_samples = delta_sites.iter().zip(&delta_fields).map(|((i, _), f)| {
        let i = lit_usize(*i);
        quote! {
            let ::ravi::FamilyDraw { z, log_q: lq } = self.#f.sample::<__D, __T>(&self.params, particles);
            slots[#i] = ::core::option::Option::Some(z);
            #add_log_q
        }
    });
    // Local sites drawn by encoders of their rows.
    let amortized_fields: Vec<_> = (0..ir.amortized.len())
        .map(|i| format_ident!("amortized{}", i))
        .collect();
    let amortized_builds = ir.amortized.iter().map(|a| {
        let site = lit_usize(a.site);
        let name = &latent_names[a.site];
        let layers = runtime_layers(&model.nets[a.net]);
        let kind = match a.kind {
            AmortizedKind::Gaussian => quote!(::ravi::guides::LocalKind::Gaussian),
            AmortizedKind::RelaxedBernoulli(t) => {
                let t = match t {
                    Some(v) => {
                        let v = v as f32;
                        quote!(::core::option::Option::Some(#v))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(::ravi::guides::LocalKind::RelaxedBernoulli { temperature: #t })
            }
            AmortizedKind::Concrete(t, classes) => {
                let t = match t {
                    Some(v) => {
                        let v = v as f32;
                        quote!(::core::option::Option::Some(#v))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote!(::ravi::guides::LocalKind::Concrete { temperature: #t, classes: #classes })
            }
        };
        quote!(::ravi::guides::Amortized::build(&mut params, #name, #layers, latents[#site].numel(), #kind))
    });
    let amortized_samples = ir.amortized.iter().zip(&amortized_fields).map(|(a, f)| {
        let site = lit_usize(a.site);
        let input = lit_usize(a.input);
        quote! {
            let (z, lq) = self.#f.sample::<__D, __T>(
                &self.params,
                particles,
                __batch.input(#input),
                __batch.temperature(),
                estimator,
            );
            slots[#site] = ::core::option::Option::Some(z);
            #add_local_log_q
        }
    });
    // Local sites with mean-field parameters per data row, sized by `prepare`.
    let local_fields: Vec<_> = (0..ir.local_mean_field.len())
        .map(|i| format_ident!("local{}", i))
        .collect();
    let local_builds = ir.local_mean_field.iter().map(|&i| {
        let i = lit_usize(i);
        quote!(::ravi::guides::LocalMeanField::new(latents[#i].numel()))
    });
    let local_prepares = ir
        .local_mean_field
        .iter()
        .zip(&local_fields)
        .map(|(&i, f)| {
            let name = &latent_names[i];
            quote!(self.#f.prepare(&mut self.params, #name, rows);)
        });
    let rows_held = match local_fields.first() {
        Some(f) => quote!(::core::option::Option::Some(self.#f.rows())),
        None => quote!(::core::option::Option::None),
    };
    let local_samples = ir.local_mean_field.iter().zip(&local_fields).map(|(&i, f)| {
        let site = lit_usize(i);
        quote! {
            let (z, lq) = self.#f.sample::<__D, __T>(&self.params, particles, __batch, estimator);
            slots[#site] = ::core::option::Option::Some(z);
            #add_local_log_q
        }
    });
    // Where a fit's initialisation starts each family and point mass.
    let starts = ir.entries.iter().zip(&fields).zip(&families).map(|((e, f), fam)| {
        let label = e.label(model);
        let idx = e.sites.iter().map(|&i| lit_usize(i));
        quote!(<#fam as ::ravi::GuideFamily<__D>>::start(&mut self.#f, &mut self.params, #label, &start.family(&[#(#idx),*]));)
    });
    let delta_starts = delta_sites.iter().zip(&delta_fields).map(|((i, _), f)| {
        let i = lit_usize(*i);
        quote!(if let ::core::option::Option::Some(v) = start.site(#i) { self.#f.start(&mut self.params, v); })
    });
    let model_name = &model.name;
    quote! {
        #doc
        #[doc = concat!("\n\nA guide for [`", #model_name, "`].")]
        #[derive(Debug, Clone)]
        pub struct #name<__D: ::ravi::Backend = ::ravi::Cpu> {
            params: ::ravi::ParamStore<__D>,
            #(#[doc = "A guide family of this guide, in the order written."] pub #fields: #families,)*
            #(#param_fields: ::ravi::ParamId,)*
            #(#delta_fields: ::ravi::guides::Delta,)*
            #(#amortized_fields: ::ravi::guides::Amortized,)*
            #(#local_fields: ::ravi::guides::LocalMeanField,)*
        }

        impl<__D: ::ravi::Backend> #name<__D> {
            /// A fresh guide with its parameters on `dev` (locations 0, scales 0.1).
            pub fn new(dev: &__D) -> Self {
                let latents = <#model_ty as ::ravi::Model>::latents();
                let mut params = ::ravi::ParamStore::new(dev);
                #(let #fields = #builds;)*
                #(let #param_fields = #param_builds;)*
                #(let #delta_fields = #delta_builds;)*
                #(let #amortized_fields = #amortized_builds;)*
                #(let #local_fields = #local_builds;)*
                #(#program_checks)*
                Self { params, #(#fields,)* #(#param_fields,)* #(#delta_fields,)* #(#amortized_fields,)* #(#local_fields,)* }
            }
        }

        impl<__D: ::ravi::Backend> ::ravi::Guide<__D> for #name<__D> {
            type Model = #model_ty;
            fn params(&self) -> &::ravi::ParamStore<__D> {
                &self.params
            }
            fn params_mut(&mut self) -> &mut ::ravi::ParamStore<__D> {
                &mut self.params
            }
            fn start(&mut self, start: &::ravi::Start) {
                let _ = start;
                #(#starts)*
                #(#delta_starts)*
            }
            fn prepare(&mut self, rows: usize) {
                let _ = rows;
                #(#local_prepares)*
            }
            fn rows_held(&self) -> ::core::option::Option<usize> {
                #rows_held
            }
            fn exact_log_q() -> bool {
                true #(&& <#families as ::ravi::GuideFamily<__D>>::EXACT_LOG_Q)*
            }
            fn prior_weights(&self) -> ::std::vec::Vec<f32> {
                let mut weights = ::std::vec![1.0f32; #n_latents];
                #(#weights)*
                weights
            }
            #host
            fn sample<__T: ::ravi::Tape<__D>>(&self, particles: usize, __batch: &::ravi::Batch<__D>, estimator: ::ravi::Estimator, weighted: bool) -> ::ravi::GuideSample<__D, __T> {
                let latents = <#model_ty as ::ravi::Model>::latents();
                let mut slots: ::std::vec::Vec<::core::option::Option<::ravi::Particles<__D, __T>>> =
                    (0..#n_latents).map(|_| ::core::option::Option::None).collect();
                let mut log_q: ::core::option::Option<::ravi::PerParticle<__D, __T>> = ::core::option::Option::None;
                let mut rewrites: ::std::vec::Vec<::core::option::Option<::ravi::GaussianWeights<__D, __T>>> =
                    (0..#n_latents).map(|_| ::core::option::Option::None).collect();
                let mut local_log_q: ::core::option::Option<::ravi::Rows<__D, __T>> = ::core::option::Option::None;
                #(#samples)*
                #(#programs)*
                #(#delta_samples)*
                #(#amortized_samples)*
                #(#local_samples)*
                ::ravi::GuideSample {
                    latents: slots.into_iter().map(|s| s.expect("the compiler checked every latent site is covered")).collect(),
                    log_q: log_q.unwrap_or_else(|| ::ravi::__private::ops::zero_per_particle(self.params.device(), particles)),
                    local_log_q,
                    rewrites,
                }
            }
        }
    }
}
