//! A net call per particle on the dfdx graph: each layer with the drawn weights, and the
//! same layers rewritten for a Gaussian the guide hands over (Flipout, LRT).

use proc_macro2::TokenStream;
use quote::quote;

use super::emitter::Emitter;
use super::tokens::{dim_value, lit_usize, shape_value};
use crate::ir::*;

/// A layer's statements twice: with the drawn weights, and rewritten for the guide's
/// Gaussian (the same for the layers that have no weights).
type LayerPair = (TokenStream, TokenStream);

impl Emitter<'_> {
    /// `Net(x; theta)` per particle: every layer's W and b sliced out of theta (W then b,
    /// layer by layer), rows batched over the particles.
    pub(super) fn net_call(&mut self, n: usize, x: NodeId, w: NodeId, out: &Node) -> TokenStream {
        let net = self.ir.nets[n].clone();
        let p = lit_usize(net.num_params());
        let xnode = self.ir.nodes[x].clone();
        let rows = dim_value(&xnode.shape.0[0]);
        let input_shape = net_input_shape(&net);
        let outputs = lit_usize(net.outputs);
        let wt = self.take_as(w, &Shape(vec![Dim::Lit(net.num_params())]), true);
        let xt = self.take_as(x, &xnode.shape, true);
        let outv = shape_value(&out.shape, true);
        let (layers, rlayers) = net_layers(&net);
        let rewritten = self.rewritten_call(w, &input_shape, &rlayers, &outputs, &outv);
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

    /// Weights drawn from a mean-field Gaussian the guide hands over: the rewritten call,
    /// taken when the guide gives one for the weights' site (nothing for other weights).
    fn rewritten_call(
        &self,
        w: NodeId,
        input_shape: &TokenStream,
        rlayers: &[TokenStream],
        outputs: &proc_macro2::Literal,
        outv: &TokenStream,
    ) -> TokenStream {
        match self.ir.nodes[w].op {
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
        }
    }
}

/// The rows' shape at the net's input (particles and rows first).
fn net_input_shape(net: &NetIr) -> TokenStream {
    match net.input {
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
    }
}

/// Each layer twice, in one pass over the weight vector and the image sizes: with the
/// drawn weights, and rewritten for a Gaussian the guide hands over (Flipout, LRT), which
/// only Linear and Conv2d layers change.
fn net_layers(net: &NetIr) -> (Vec<TokenStream>, Vec<TokenStream>) {
    let mut image = match net.input {
        NetInput::Images {
            channels,
            height,
            width,
        } => Some((channels, height, width)),
        NetInput::Features(_) => None,
    };
    let mut off = 0usize;
    let (mut layers, mut rlayers) = (Vec::new(), Vec::new());
    for layer in &net.layers {
        let (plain, rewritten) = match layer {
            NetLayer::Linear { inputs, outputs } => linear_layer(*inputs, *outputs, &mut off),
            NetLayer::Conv2d {
                inputs,
                outputs,
                kernel,
                stride,
                padding,
            } => {
                let (_, h, w) = image.expect("checked: a convolution takes images");
                image = Some((
                    *outputs,
                    (h + 2 * padding - kernel) / stride + 1,
                    (w + 2 * padding - kernel) / stride + 1,
                ));
                conv2d_layer(*inputs, *outputs, *kernel, *stride, *padding, &mut off)
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
    (layers, rlayers)
}

/// A Linear layer whose W and b start at `off` in the weight vector (moved past them).
fn linear_layer(inputs: usize, outputs: usize, off: &mut usize) -> LayerPair {
    let (i, o) = (lit_usize(inputs), lit_usize(outputs));
    let (w0, w1, b1) = (
        lit_usize(*off),
        lit_usize(*off + inputs * outputs),
        lit_usize(*off + inputs * outputs + outputs),
    );
    *off += inputs * outputs + outputs;
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

/// A Conv2d layer whose filters and biases start at `off` in the weight vector (moved
/// past them).
fn conv2d_layer(
    inputs: usize,
    outputs: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    off: &mut usize,
) -> LayerPair {
    let nf = outputs * inputs * kernel * kernel;
    let (w0, w1, b1) = (
        lit_usize(*off),
        lit_usize(*off + nf),
        lit_usize(*off + nf + outputs),
    );
    *off += nf + outputs;
    let (k, st, pd) = (lit_usize(kernel), lit_usize(stride), lit_usize(padding));
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
