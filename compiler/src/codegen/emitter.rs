//! The model's nodes as Rust statements, one `let` per live node: its uses (copied,
//! cloned or re-taped), constants, elementwise ops, reductions and products.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::f32_lit;
use super::tokens::{axes, dim_type, dim_usize, dim_value, lit_usize, shape_type, shape_value};
use crate::ast::BinOp;
use crate::ir::*;

/// Emits a model's nodes and site terms, counting each node's remaining uses.
pub(super) struct Emitter<'a> {
    pub(super) ir: &'a ModelIr,
    pub(super) live: Vec<bool>,
    pub(super) uses: Vec<usize>,
    /// Latent sites (by index) whose value is mapped onto their support, with a
    /// log-determinant `__log_det{k}` to add to their term.
    pub(super) log_dets: Vec<usize>,
    /// Emitting `log_joint_rows`: site terms per particle and row, `Option`s.
    pub(super) per_row: bool,
}

impl Emitter<'_> {
    /// The variable that holds node `id`.
    pub(super) fn var(id: NodeId) -> proc_macro2::Ident {
        format_ident!("__v{}", id)
    }

    /// One use of node `id`: compile-time scalars are copied; tensors are cloned (data) or
    /// re-taped (taped) for every use but the last, which moves the value and its tape.
    pub(super) fn take(&mut self, id: NodeId) -> TokenStream {
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
    pub(super) fn take_as(&mut self, id: NodeId, out: &Shape, out_particles: bool) -> TokenStream {
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

    /// A compile-time scalar node as an `f32` expression.
    fn constant_expr(&self, id: NodeId) -> TokenStream {
        let node = &self.ir.nodes[id];
        let v = |i: &NodeId| Self::var(*i);
        match &node.op {
            Op::Const(x) => f32_lit(*x),
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
                    Func::Sqrt => quote!(#a.sqrt()),
                    Func::Abs => quote!(#a.abs()),
                    Func::Square => quote!((#a * #a)),
                    Func::Log1p => quote!(#a.ln_1p()),
                    Func::Expm1 => quote!(#a.exp_m1()),
                }
            }
            Op::Pow(a, p) => {
                let (a, p) = (v(a), f32_lit(*p));
                quote!(#a.powf(#p))
            }
            // A reduction of a scalar is the scalar.
            Op::Reduce(_, a, _) => {
                let a = v(a);
                quote!(#a)
            }
            Op::Input(_)
            | Op::Sample(_)
            | Op::MatMul(..)
            | Op::Net(..)
            | Op::Concat(_)
            | Op::Gather(..)
            | Op::Slice { .. }
            | Op::Along(..)
            | Op::Transpose(_) => {
                unreachable!("inputs, sites, matmuls, nets and indexing are not scalar constants")
            }
        }
    }

    /// `let __v{id} = ...;`: one node as a statement (several for a mapped latent).
    pub(super) fn node(&mut self, id: NodeId) -> TokenStream {
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
            Op::Sample(k) => return self.latent(id, *k, &node, &ty, &val),
            Op::Neg(a) => {
                let a = self.take(*a);
                quote!(#a.negate())
            }
            Op::Binary(op, a, b) => self.binary(*op, *a, *b, &node),
            Op::MatMul(a, b) => self.matmul(*a, *b, &node),
            Op::Net(n, x, w) => self.net_call(*n, *x, *w, &node),
            Op::Concat(parts) => self.concat(parts, &val),
            Op::Func(f, a) => {
                let a = self.take(*a);
                match f {
                    Func::Exp => quote!(#a.exp()),
                    Func::Log => quote!(#a.ln()),
                    Func::Tanh => quote!(#a.tanh()),
                    Func::Sigmoid => quote!(#a.sigmoid()),
                    Func::Softplus => quote!(::ravi::__private::ops::softplus(#a)),
                    Func::Sqrt => quote!(#a.sqrt()),
                    Func::Abs => quote!(#a.abs()),
                    Func::Square => quote!(#a.square()),
                    // ln(1 + x) and eˣ − 1: dfdx has neither; f32 loses digits near 0 only
                    Func::Log1p => quote!((#a + 1.0f32).ln()),
                    Func::Expm1 => quote!((#a.exp() - 1.0f32)),
                }
            }
            Op::Pow(a, power) => {
                let a = self.take(*a);
                let power = f32_lit(*power);
                quote!(#a.powf(#power))
            }
            Op::Gather(a, g) => self.gather(*a, *g, &node),
            Op::Slice {
                src, start, len, ..
            } => self.slice(*src, *start, *len, &val),
            Op::Reduce(r, a, axis) => self.reduce(*r, *a, *axis, p, &ty),
            Op::Along(f, a, axis) => {
                let ax = axes(&[axis + usize::from(p)]);
                let a = self.take(*a);
                match f {
                    AxisFunc::LogSumExp => quote!(#a.logsumexp::<#ty, #ax>()),
                    AxisFunc::Softmax => quote!(#a.softmax::<#ax>()),
                    AxisFunc::LogSoftmax => quote!(#a.log_softmax::<#ax>()),
                }
            }
            Op::Transpose(a) => {
                let a = self.take(*a);
                let ax = if p {
                    quote!(::ravi::__private::Axes3<0, 2, 1>)
                } else {
                    quote!(::ravi::__private::Axes2<1, 0>)
                };
                quote!(#a.permute::<#ty, #ax>())
            }
            Op::Const(_) | Op::RustConst(_) | Op::Temperature => {
                unreachable!("constants are handled above")
            }
        };
        quote!(let #v: ::ravi::__private::Tensor<#ty, f32, __D, _> = #expr;)
    }

    /// `a[g]`: dfdx gathers `a`'s first axis (axis 1 past the particles) by `g`'s values,
    /// repeated per particle; its backward adds where an index repeats.
    fn gather(&mut self, a: NodeId, g: NodeId, out: &Node) -> TokenStream {
        let rows = dim_value(&self.ir.nodes[g].shape.0[0]);
        let ty = shape_type(&out.shape, out.particles);
        let (src, index) = (self.take(a), self.take(g));
        if out.particles {
            quote!({
                let __src = #src;
                let __ix = ::ravi::__private::ops::index_per_particle(&#index.reshape_like(&(#rows,)), __s);
                __src.gather::<#ty, _>(__ix)
            })
        } else {
            quote!(#src.gather::<#ty, _>(::ravi::__private::ops::index(&#index.reshape_like(&(#rows,)))))
        }
    }

    /// `a[k]` or `a[lo..hi]` along the first axis, as a gather of consecutive indices (dfdx
    /// 0.13's slice overwrites its input's gradient where a gather adds to it), then shaped
    /// as the node (`a[k]` drops the axis).
    fn slice(&mut self, a: NodeId, start: usize, len: usize, val: &TokenStream) -> TokenStream {
        let particles = self.ir.nodes[a].particles;
        let mut picked = self.ir.nodes[a].shape.clone();
        picked.0[0] = Dim::Lit(len);
        let ty = shape_type(&picked, particles);
        let src = self.take(a);
        let (start, len) = (lit_usize(start), lit_usize(len));
        let index = if particles {
            quote!(::ravi::__private::ops::range_index_per_particle(__src.device(), #start, ::ravi::__private::Const::<#len>, __s))
        } else {
            quote!(::ravi::__private::ops::range_index(__src.device(), #start, ::ravi::__private::Const::<#len>))
        };
        quote!({
            let __src = #src;
            let __ix = #index;
            __src.gather::<#ty, _>(__ix).reshape_like(&#val)
        })
    }

    /// Vectors joined along their one axis (per particle), then shaped as the node.
    fn concat(&mut self, parts: &[NodeId], val: &TokenStream) -> TokenStream {
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

    /// `sum` or `mean` over one axis or all of them (past the particle axis when `p`).
    fn reduce(
        &mut self,
        r: Reduce,
        a: NodeId,
        axis: Option<usize>,
        p: bool,
        ty: &TokenStream,
    ) -> TokenStream {
        let src = self.ir.nodes[a].clone();
        let off = usize::from(p);
        let ix: Vec<usize> = match axis {
            None => (0..src.shape.rank()).map(|i| i + off).collect(),
            Some(k) => vec![k + off],
        };
        let a = self.take(a);
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

    /// An elementwise `+ - * /`: a compile-time scalar on either side, one node on both
    /// sides, or two tensors broadcast to the result's shape.
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
}
