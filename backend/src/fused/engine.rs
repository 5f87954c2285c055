//! The forward and backward passes over a [`Program`]'s nodes, into buffers kept between
//! steps.

use super::rewrite::RewrittenNet;
use super::{math, net, rows};
use crate::density::wrap;
use crate::gemm::gemm;
use crate::program::{Dim, Func, Op, Program};

/// Node values and gradients for one batch size and particle count.
pub(crate) struct Engine {
    program: &'static Program,
    particles: usize,
    rows: usize,
    /// Elements per particle of each node.
    numel: Vec<usize>,
    /// `(copies × numel)` per node (copies: the particles, or 1 for data); empty for
    /// inputs, which are read where they lie.
    vals: Vec<Vec<f32>>,
    /// The gradient of the summed log joint; only nodes with particles have one.
    grads: Vec<Vec<f32>>,
    /// Per `Net` node, each particle's layer outputs (`particle × layers + layer`).
    acts: Vec<Vec<Vec<f32>>>,
    /// Two buffers for a net's backward pass.
    net_scratch: (Vec<f32>, Vec<f32>),
    /// Per `Net` node: the weights' Gaussian when the call is rewritten (Flipout, the local
    /// reparametrization); the weights' `Sample` node then holds the family's draw for the
    /// prior term only, and takes no gradient from the call.
    rewrites: Vec<Option<RewrittenNet>>,
    /// The relaxation temperature `Temperature` nodes read.
    temperature: f32,
}

/// A node's value: an input's slice, or its buffer.
fn value<'a>(
    program: &Program,
    vals: &'a [Vec<f32>],
    inputs: &[&'a [f32]],
    id: usize,
) -> &'a [f32] {
    match program.nodes[id].op {
        Op::Input(i) => inputs[i],
        _ => &vals[id],
    }
}

/// Where particle `s` of a node starts.
fn base(particles: bool, s: usize, numel: usize) -> usize {
    if particles {
        s * numel
    } else {
        0
    }
}

/// `o[i] = f(a[i mod |a|], b[i mod |b|])`: the shorter operand repeats over the leading
/// axes (ravi broadcasts by prepending axes only).
fn zip_into(o: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) {
    let n = o.len();
    if a.len() == n && b.len() == n {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            *o = f(a, b);
        }
    } else if a.len() == n && b.len() == 1 {
        let b = b[0];
        for (o, &a) in o.iter_mut().zip(a) {
            *o = f(a, b);
        }
    } else if a.len() == 1 && b.len() == n {
        let a = a[0];
        for (o, &b) in o.iter_mut().zip(b) {
            *o = f(a, b);
        }
    } else {
        let (na, nb) = (a.len(), b.len());
        for (i, o) in o.iter_mut().enumerate() {
            *o = f(a[i % na], b[i % nb]);
        }
    }
}

/// `g_a[i mod |g_a|] += f(i)` over the `n` elements of an output: the gradient of a
/// broadcast operand sums over the axes it was repeated along.
fn accumulate(ga: &mut [f32], n: usize, f: impl Fn(usize) -> f32) {
    let na = ga.len();
    if na == n {
        for (i, g) in ga.iter_mut().enumerate() {
            *g += f(i);
        }
    } else if na == 1 {
        ga[0] += sum8(n, f);
    } else {
        for i in 0..n {
            ga[i % na] += f(i);
        }
    }
}

/// Σ_{i < n} f(i) with eight running sums (one would chain every addition to the last).
#[inline(always)]
fn sum8(n: usize, f: impl Fn(usize) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    for c in 0..n / 8 {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(c * 8 + l);
        }
    }
    let tail: f32 = (n / 8 * 8..n).map(f).sum();
    acc.iter().sum::<f32>() + tail
}

impl Engine {
    pub(crate) fn new(program: &'static Program) -> Self {
        let n = program.nodes.len();
        Engine {
            program,
            particles: 0,
            rows: usize::MAX,
            numel: vec![0; n],
            vals: vec![Vec::new(); n],
            grads: vec![Vec::new(); n],
            acts: vec![Vec::new(); n],
            net_scratch: (Vec::new(), Vec::new()),
            rewrites: (0..n).map(|_| None).collect(),
            temperature: 1.0,
        }
    }

    fn dims(&self, id: usize) -> Vec<usize> {
        self.program.nodes[id]
            .dims
            .iter()
            .map(|d| match d {
                Dim::Rows => self.rows,
                Dim::Fixed(n) => *n,
            })
            .collect()
    }

    /// Sizes the buffers for `particles` and a batch of `rows` rows (once per size).
    pub(crate) fn resize(&mut self, particles: usize, rows: usize) {
        if (particles, rows) == (self.particles, self.rows) {
            return;
        }
        self.particles = particles;
        self.rows = rows;
        for (id, node) in self.program.nodes.iter().enumerate() {
            let n: usize = self.dims(id).iter().product();
            self.numel[id] = n;
            let copies = if node.particles { particles } else { 1 };
            self.vals[id] = match node.op {
                Op::Input(_) => Vec::new(),
                _ => vec![0.0; copies * n],
            };
            self.grads[id] = if node.particles {
                vec![0.0; copies * n]
            } else {
                Vec::new()
            };
            if let Op::Net(net, x, _) = node.op {
                let layers = self.program.nets[net];
                let rows = self.dims(id)[0];
                let features = self.numel[x] / rows.max(1);
                let widths = net::widths(layers, features);
                self.acts[id] = (0..copies)
                    .flat_map(|_| widths.iter().map(|w| vec![0.0; rows * w]))
                    .collect();
            }
        }
    }

    /// Values per data row and particle: each node over the rows, and each net call's layer
    /// outputs (the sizes of one row).
    pub(crate) fn values_per_row(&self) -> usize {
        let per_row = |id: usize| -> usize {
            let dims = self.program.nodes[id].dims;
            match dims.contains(&Dim::Rows) {
                true => dims
                    .iter()
                    .map(|d| match d {
                        Dim::Rows => 1,
                        Dim::Fixed(n) => *n,
                    })
                    .product(),
                false => 0,
            }
        };
        self.program
            .nodes
            .iter()
            .enumerate()
            .map(|(id, node)| {
                let acts = match node.op {
                    Op::Net(net, x, _) => net::widths(self.program.nets[net], per_row(x).max(1))
                        .iter()
                        .sum(),
                    _ => 0,
                };
                per_row(id) + acts
            })
            .sum::<usize>()
            .max(1)
    }

    /// The size of node `id`'s last axis (1 for a scalar).
    pub(crate) fn last_dim(&self, id: usize) -> usize {
        self.dims(id).last().copied().unwrap_or(1)
    }

    pub(crate) fn numel(&self, id: usize) -> usize {
        self.numel[id]
    }

    /// Does node `id` carry particles (and so a gradient)?
    pub(crate) fn has_particles(&self, id: usize) -> bool {
        self.program.nodes[id].particles
    }

    pub(crate) fn particles(&self) -> usize {
        self.particles
    }

    pub(crate) fn value<'a>(&'a self, inputs: &[&'a [f32]], id: usize) -> &'a [f32] {
        value(self.program, &self.vals, inputs, id)
    }

    pub(crate) fn grad(&self, id: usize) -> &[f32] {
        &self.grads[id]
    }

    pub(crate) fn grad_mut_vec(&mut self, id: usize) -> &mut Vec<f32> {
        &mut self.grads[id]
    }

    pub(crate) fn grad_mut(&mut self, id: usize) -> &mut [f32] {
        &mut self.grads[id]
    }

    /// The buffer of a `Sample` node, for the guide's draws (particle-major) before
    /// [`Engine::forward`].
    pub(crate) fn sample_mut(&mut self, id: usize) -> &mut [f32] {
        &mut self.vals[id]
    }

    /// Swaps node `id`'s buffer of values with `values` (of the same length): a buffer lent
    /// to the node for a pass, and taken back after it.
    pub(crate) fn swap_values(&mut self, id: usize, values: &mut Vec<f32>) {
        debug_assert_eq!(self.vals[id].len(), values.len());
        std::mem::swap(&mut self.vals[id], values);
    }

    /// A node's value and its gradient, together.
    pub(crate) fn value_and_grad_mut(&mut self, id: usize) -> (&[f32], &mut [f32]) {
        (&self.vals[id], &mut self.grads[id])
    }

    /// The relaxation temperature of the next pass.
    pub(crate) fn set_temperature(&mut self, temperature: f32) {
        self.temperature = temperature;
    }

    /// The net call of node `id` rewritten by `net` from the next pass on.
    pub(crate) fn set_rewrite(&mut self, id: usize, net: RewrittenNet) {
        self.rewrites[id] = Some(net);
    }

    /// The rewrite of net node `id`, with its gradients after a backward pass; taken out.
    pub(crate) fn take_rewrite(&mut self, id: usize) -> Option<RewrittenNet> {
        self.rewrites[id].take()
    }

    /// Every node's value, the `Sample` nodes' draws already in place.
    pub(crate) fn forward(&mut self, inputs: &[&[f32]]) {
        let s_all = self.particles;
        for id in 0..self.program.nodes.len() {
            let node = self.program.nodes[id];
            let n = self.numel[id];
            let copies = if node.particles { s_all } else { 1 };
            let mut out = std::mem::take(&mut self.vals[id]);
            let val = |i: usize| value(self.program, &self.vals, inputs, i);
            let part = |i: usize| self.program.nodes[i].particles;
            match node.op {
                Op::Input(_) => {}
                Op::Const(c) => out[0] = c,
                Op::Temperature => out[0] = self.temperature,
                Op::Sample(_) => {}
                Op::Neg(a) => {
                    let a = val(a);
                    for s in 0..copies {
                        let ab = base(part(node_operand(node.op)), s, n);
                        for (o, &x) in out[s * n..(s + 1) * n].iter_mut().zip(&a[ab..ab + n]) {
                            *o = -x;
                        }
                    }
                }
                Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) => {
                    let (na, nb) = (self.numel[a], self.numel[b]);
                    let (va, vb) = (val(a), val(b));
                    for s in 0..copies {
                        let (ab, bb) = (base(part(a), s, na), base(part(b), s, nb));
                        let (xa, xb) = (&va[ab..ab + na], &vb[bb..bb + nb]);
                        let o = &mut out[s * n..(s + 1) * n];
                        match node.op {
                            Op::Add(..) => zip_into(o, xa, xb, |x, y| x + y),
                            Op::Sub(..) => zip_into(o, xa, xb, |x, y| x - y),
                            Op::Mul(..) => zip_into(o, xa, xb, |x, y| x * y),
                            _ => zip_into(o, xa, xb, |x, y| x / y),
                        }
                    }
                }
                Op::Func(f, a) => {
                    let a = val(a);
                    let pa = part(node_operand(node.op));
                    for s in 0..copies {
                        let ab = base(pa, s, n);
                        apply(f, &a[ab..ab + n], &mut out[s * n..(s + 1) * n]);
                    }
                }
                Op::Pow(a, p) => {
                    let a = val(a);
                    let pa = part(node_operand(node.op));
                    for s in 0..copies {
                        let ab = base(pa, s, n);
                        for (o, &x) in out[s * n..(s + 1) * n].iter_mut().zip(&a[ab..ab + n]) {
                            *o = x.powf(p);
                        }
                    }
                }
                Op::Gather(a, g) => {
                    let (na, inner) = (self.numel[a], self.inner(id));
                    let (va, index) = (val(a), val(g));
                    for s in 0..copies {
                        let src = &va[base(part(a), s, na)..][..na];
                        let o = &mut out[s * n..(s + 1) * n];
                        for (row, &k) in o.chunks_mut(inner).zip(index) {
                            row.copy_from_slice(&src[k as usize * inner..][..inner]);
                        }
                    }
                }
                Op::Slice(a, start, _) => {
                    let (na, inner) = (self.numel[a], self.inner(id));
                    let va = val(a);
                    for s in 0..copies {
                        let src = &va[base(part(a), s, na) + start * inner..][..n];
                        out[s * n..(s + 1) * n].copy_from_slice(src);
                    }
                }
                Op::LogSumExp(a, axis) | Op::Softmax(a, axis) | Op::LogSoftmax(a, axis) => {
                    let split = self.reduce_split(a, Some(axis));
                    let na = self.numel[a];
                    let va = val(a);
                    for s in 0..copies {
                        let x = &va[base(part(a), s, na)..][..na];
                        along_forward(node.op, split, x, &mut out[s * n..(s + 1) * n]);
                    }
                }
                Op::Transpose(a) => {
                    let (rows, cols) = self.matrix(a);
                    let na = self.numel[a];
                    let va = val(a);
                    for s in 0..copies {
                        let x = &va[base(part(a), s, na)..][..na];
                        transpose_into(x, rows, cols, &mut out[s * n..(s + 1) * n], false);
                    }
                }
                Op::Sum(a, axis) | Op::Mean(a, axis) => {
                    let (outer, len, inner) = self.reduce_split(a, axis);
                    let mean = matches!(node.op, Op::Mean(..));
                    let k = if mean { 1.0 / len as f32 } else { 1.0 };
                    let na = self.numel[a];
                    let va = val(a);
                    for s in 0..copies {
                        let x = &va[base(part(a), s, na)..][..na];
                        let o = &mut out[s * n..(s + 1) * n];
                        if inner == 1 && outer == 1 {
                            // all axes: one sum, in eight running parts
                            o[0] = sum8(len, |i| x[i]) * k;
                            continue;
                        }
                        o.fill(0.0);
                        for p in 0..outer {
                            for l in 0..len {
                                let row = &x[(p * len + l) * inner..][..inner];
                                for (o, &v) in o[p * inner..(p + 1) * inner].iter_mut().zip(row) {
                                    *o += v;
                                }
                            }
                        }
                        if mean {
                            o.iter_mut().for_each(|v| *v *= k);
                        }
                    }
                }
                Op::MatMul(a, b) => self.matmul_forward(id, a, b, &mut out, inputs),
                Op::Net(net, x, w) => {
                    let layers = self.program.nets[net];
                    let mut acts = std::mem::take(&mut self.acts[id]);
                    let rows = self.dims(id)[0];
                    let (nx, nw) = (self.numel[x], self.numel[w]);
                    let (vx, vw) = (val(x), val(w));
                    let mut rewrite = self.rewrites[id].take();
                    for (s, acts) in acts.chunks_mut(layers.len()).enumerate() {
                        let xs = &vx[base(part(x), s, nx)..][..nx];
                        match &mut rewrite {
                            Some(r) => r.forward(layers, s, xs, rows, acts, &mut self.net_scratch),
                            None => {
                                let ws = &vw[base(part(w), s, nw)..][..nw];
                                net::forward(layers, xs, ws, rows, acts);
                            }
                        }
                        out[s * n..(s + 1) * n].copy_from_slice(&acts[layers.len() - 1]);
                    }
                    self.acts[id] = acts;
                    self.rewrites[id] = rewrite;
                }
                Op::Concat(parts) => {
                    for s in 0..copies {
                        let mut at = s * n;
                        for &p in parts {
                            let np = self.numel[p];
                            out[at..at + np].copy_from_slice(&val(p)[base(part(p), s, np)..][..np]);
                            at += np;
                        }
                    }
                }
            }
            self.vals[id] = out;
        }
    }

    /// Elements per row of a `Gather` or `Slice` node (one row: its trailing axes; a
    /// single picked element, `a[k]` of a vector, is one value).
    fn inner(&self, id: usize) -> usize {
        let dims = self.dims(id);
        match self.program.nodes[id].op {
            Op::Slice(a, _, _) if dims.len() < self.program.nodes[a].dims.len() => {
                dims.iter().product()
            }
            _ => dims.iter().skip(1).product(),
        }
    }

    /// (rows, columns) of a matrix node.
    fn matrix(&self, id: usize) -> (usize, usize) {
        let d = self.dims(id);
        (d[0], d[1])
    }

    /// (outer, len, inner) of a reduction of node `a` over `axis` (all axes: len = numel).
    fn reduce_split(&self, a: usize, axis: Option<usize>) -> (usize, usize, usize) {
        let dims = self.dims(a);
        match axis {
            None => (1, dims.iter().product(), 1),
            Some(k) => (
                dims[..k].iter().product(),
                dims[k],
                dims[k + 1..].iter().product(),
            ),
        }
    }

    /// (m, k, n) of a product per particle: a vector on the left is one row, on the right
    /// one column.
    fn mkn(&self, a: usize, b: usize) -> (usize, usize, usize) {
        let (da, db) = (self.dims(a), self.dims(b));
        let m = if da.len() == 2 { da[0] } else { 1 };
        let k = *da.last().expect("matmul operands have rank 1 or 2");
        let n = if db.len() == 2 { db[1] } else { 1 };
        (m, k, n)
    }

    fn matmul_forward(&self, id: usize, a: usize, b: usize, out: &mut [f32], inputs: &[&[f32]]) {
        let (m, k, n) = self.mkn(a, b);
        let (pa, pb) = (
            self.program.nodes[a].particles,
            self.program.nodes[b].particles,
        );
        let (va, vb) = (self.value(inputs, a), self.value(inputs, b));
        let s_all = if self.program.nodes[id].particles {
            self.particles
        } else {
            1
        };
        if !pa && pb && n == 1 {
            // data times a vector per particle: row by row (see `rows`)
            rows::data_times_vectors(va, &vb[..s_all * k], &mut out[..s_all * m], k);
        } else if pa && !pb && m == 1 {
            // a vector per particle times data (k × n): C (S × n) = A' B.
            gemm((s_all, k, n), va, (k, 1), vb, (n, 1), 0.0, out, (n, 1));
        } else {
            for s in 0..s_all {
                let x = &va[base(pa, s, m * k)..][..m * k];
                let y = &vb[base(pb, s, k * n)..][..k * n];
                gemm(
                    (m, k, n),
                    x,
                    (k, 1),
                    y,
                    (n, 1),
                    0.0,
                    &mut out[s * m * n..(s + 1) * m * n],
                    (n, 1),
                );
            }
        }
    }

    /// Sets every gradient to zero (before the densities seed theirs).
    pub(crate) fn zero_grads(&mut self) {
        for g in &mut self.grads {
            g.fill(0.0);
        }
    }

    /// Propagates the seeded gradients back to the `Sample` nodes.
    pub(crate) fn backward(&mut self, inputs: &[&[f32]]) {
        let s_all = self.particles;
        for id in (0..self.program.nodes.len()).rev() {
            let node = self.program.nodes[id];
            if !node.particles {
                continue;
            }
            let n = self.numel[id];
            let g = std::mem::take(&mut self.grads[id]);
            let part = |i: usize| self.program.nodes[i].particles;
            match node.op {
                Op::Input(_) | Op::Const(_) | Op::Sample(_) | Op::Temperature => {}
                Op::Neg(a) => {
                    let ga = &mut self.grads[a];
                    for (ga, &g) in ga.iter_mut().zip(&g) {
                        *ga -= g;
                    }
                }
                Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) => {
                    for (operand, other, first) in [(a, b, true), (b, a, false)] {
                        if !part(operand) {
                            continue;
                        }
                        let (no, nt) = (self.numel[operand], self.numel[other]);
                        let mut go = std::mem::take(&mut self.grads[operand]);
                        {
                            let vo = value(self.program, &self.vals, inputs, operand);
                            let vt = value(self.program, &self.vals, inputs, other);
                            for s in 0..s_all {
                                let gs = &g[s * n..(s + 1) * n];
                                let xo = &vo[base(true, s, no)..][..no];
                                let xt = &vt[base(part(other), s, nt)..][..nt];
                                let ga = &mut go[s * no..(s + 1) * no];
                                match (node.op, first) {
                                    (Op::Add(..), _) | (Op::Sub(..), true) => {
                                        accumulate(ga, n, |i| gs[i])
                                    }
                                    (Op::Sub(..), false) => accumulate(ga, n, |i| -gs[i]),
                                    (Op::Mul(..), _) => {
                                        accumulate(ga, n, |i| gs[i] * xt[wrap(i, nt, n)])
                                    }
                                    // d(o / t)/do = 1 / t
                                    (Op::Div(..), true) => {
                                        accumulate(ga, n, |i| gs[i] / xt[wrap(i, nt, n)])
                                    }
                                    // d(t / o)/do = −t / o²
                                    _ => accumulate(ga, n, |i| {
                                        let o = xo[wrap(i, no, n)];
                                        -gs[i] * xt[wrap(i, nt, n)] / (o * o)
                                    }),
                                }
                            }
                        }
                        self.grads[operand] = go;
                    }
                }
                Op::Func(f, a) => {
                    let y = &self.vals[id];
                    let x = value(self.program, &self.vals, inputs, a);
                    chain(f, x, y, &g, &mut self.grads[a], true);
                }
                Op::Pow(a, p) => {
                    let x = value(self.program, &self.vals, inputs, a);
                    for ((ga, &g), &x) in self.grads[a].iter_mut().zip(&g).zip(x) {
                        *ga += g * p * x.powf(p - 1.0);
                    }
                }
                Op::Gather(a, gi) => {
                    // the gradient scatters back, adding where an index repeats
                    let (na, inner) = (self.numel[a], self.inner(id));
                    let mut ga = std::mem::take(&mut self.grads[a]);
                    let index = value(self.program, &self.vals, inputs, gi);
                    for s in 0..s_all {
                        let gs = &g[s * n..(s + 1) * n];
                        let dst = &mut ga[s * na..(s + 1) * na];
                        for (row, &k) in gs.chunks(inner).zip(index) {
                            let d = &mut dst[k as usize * inner..][..inner];
                            d.iter_mut().zip(row).for_each(|(d, &r)| *d += r);
                        }
                    }
                    self.grads[a] = ga;
                }
                Op::Slice(a, start, _) => {
                    let (na, inner) = (self.numel[a], self.inner(id));
                    let ga = &mut self.grads[a];
                    for s in 0..s_all {
                        let d = &mut ga[s * na + start * inner..][..n];
                        d.iter_mut()
                            .zip(&g[s * n..(s + 1) * n])
                            .for_each(|(d, &r)| *d += r);
                    }
                }
                Op::LogSumExp(a, axis) | Op::Softmax(a, axis) | Op::LogSoftmax(a, axis) => {
                    let split = self.reduce_split(a, Some(axis));
                    let na = self.numel[a];
                    let y = &self.vals[id];
                    let x = value(self.program, &self.vals, inputs, a);
                    let ga = &mut self.grads[a];
                    for s in 0..s_all {
                        along_backward(
                            node.op,
                            split,
                            &x[s * na..(s + 1) * na],
                            &y[s * n..(s + 1) * n],
                            &g[s * n..(s + 1) * n],
                            &mut ga[s * na..(s + 1) * na],
                        );
                    }
                }
                Op::Transpose(a) => {
                    // the gradient of a transpose is the transposed gradient
                    let (rows, cols) = self.matrix(a);
                    let ga = &mut self.grads[a];
                    for s in 0..s_all {
                        transpose_into(
                            &g[s * n..(s + 1) * n],
                            cols,
                            rows,
                            &mut ga[s * n..(s + 1) * n],
                            true,
                        );
                    }
                }
                Op::Sum(a, axis) | Op::Mean(a, axis) => {
                    let (outer, len, inner) = self.reduce_split(a, axis);
                    let k = if matches!(node.op, Op::Mean(..)) {
                        1.0 / len as f32
                    } else {
                        1.0
                    };
                    let na = self.numel[a];
                    let ga = &mut self.grads[a];
                    for s in 0..s_all {
                        let gs = &g[s * n..(s + 1) * n];
                        let gx = &mut ga[s * na..(s + 1) * na];
                        for p in 0..outer {
                            for l in 0..len {
                                let row = &mut gx[(p * len + l) * inner..][..inner];
                                for (r, &v) in row.iter_mut().zip(&gs[p * inner..(p + 1) * inner]) {
                                    *r += v * k;
                                }
                            }
                        }
                    }
                }
                Op::MatMul(a, b) => self.matmul_backward(a, b, &g, inputs),
                Op::Net(net, x, w) => {
                    let layers = self.program.nets[net];
                    let rows = self.dims(id)[0];
                    let (nx, nw) = (self.numel[x], self.numel[w]);
                    let (px, pw) = (part(x), part(w));
                    let mut gw = std::mem::take(&mut self.grads[w]);
                    let mut gx = std::mem::take(&mut self.grads[x]);
                    let mut scratch = std::mem::take(&mut self.net_scratch);
                    let mut rewrite = self.rewrites[id].take();
                    {
                        let vx = value(self.program, &self.vals, inputs, x);
                        let vw = value(self.program, &self.vals, inputs, w);
                        for (s, acts) in self.acts[id].chunks(layers.len()).enumerate() {
                            let xs = &vx[base(px, s, nx)..][..nx];
                            if let Some(r) = &mut rewrite {
                                let gxs = px.then(|| &mut gx[s * nx..(s + 1) * nx]);
                                let gs = &g[s * n..(s + 1) * n];
                                r.backward(layers, s, xs, rows, acts, gs, gxs, &mut scratch);
                                continue;
                            }
                            let ws = &vw[base(pw, s, nw)..][..nw];
                            let gxs = px.then(|| &mut gx[s * nx..(s + 1) * nx]);
                            let gws: &mut [f32] = if pw {
                                &mut gw[s * nw..(s + 1) * nw]
                            } else {
                                &mut []
                            };
                            if pw {
                                net::backward(
                                    layers,
                                    xs,
                                    ws,
                                    rows,
                                    acts,
                                    &g[s * n..(s + 1) * n],
                                    gws,
                                    gxs,
                                    &mut scratch,
                                );
                            }
                        }
                    }
                    self.net_scratch = scratch;
                    self.rewrites[id] = rewrite;
                    self.grads[w] = gw;
                    self.grads[x] = gx;
                }
                Op::Concat(parts) => {
                    for s in 0..s_all {
                        let mut at = s * n;
                        for &p in parts {
                            let np = self.numel[p];
                            if part(p) {
                                let gp = &mut self.grads[p][s * np..(s + 1) * np];
                                for (a, &b) in gp.iter_mut().zip(&g[at..at + np]) {
                                    *a += b;
                                }
                            }
                            at += np;
                        }
                    }
                }
            }
            self.grads[id] = g;
        }
    }

    fn matmul_backward(&mut self, a: usize, b: usize, g: &[f32], inputs: &[&[f32]]) {
        let (m, k, n) = self.mkn(a, b);
        let (pa, pb) = (
            self.program.nodes[a].particles,
            self.program.nodes[b].particles,
        );
        let s_all = self.particles;
        if pa {
            // dA = dC Bᵀ
            let mut ga = std::mem::take(&mut self.grads[a]);
            let vb = value(self.program, &self.vals, inputs, b);
            if !pb && m == 1 {
                gemm((s_all, n, k), g, (n, 1), vb, (1, n), 1.0, &mut ga, (k, 1));
            } else {
                for s in 0..s_all {
                    let y = &vb[base(pb, s, k * n)..][..k * n];
                    gemm(
                        (m, n, k),
                        &g[s * m * n..][..m * n],
                        (n, 1),
                        y,
                        (1, n),
                        1.0,
                        &mut ga[s * m * k..][..m * k],
                        (k, 1),
                    );
                }
            }
            self.grads[a] = ga;
        }
        if pb {
            // dB = Aᵀ dC
            let mut gb = std::mem::take(&mut self.grads[b]);
            let va = value(self.program, &self.vals, inputs, a);
            if !pa && n == 1 {
                rows::data_t_times(&va[..m * k], g, &mut gb, k);
            } else {
                for s in 0..s_all {
                    let x = &va[base(pa, s, m * k)..][..m * k];
                    gemm(
                        (k, m, n),
                        x,
                        (1, k),
                        &g[s * m * n..][..m * n],
                        (n, 1),
                        1.0,
                        &mut gb[s * k * n..][..k * n],
                        (n, 1),
                    );
                }
            }
            self.grads[b] = gb;
        }
    }
}

/// `out` (+)= `x` (rows × cols) transposed (`add`: accumulate).
fn transpose_into(x: &[f32], rows: usize, cols: usize, out: &mut [f32], add: bool) {
    for r in 0..rows {
        for c in 0..cols {
            let (o, v) = (&mut out[c * rows + r], x[r * cols + c]);
            *o = if add { *o + v } else { v };
        }
    }
}

/// log Σ exp, softmax or log softmax along the middle of (outer, len, inner).
fn along_forward(op: Op, (outer, len, inner): (usize, usize, usize), x: &[f32], out: &mut [f32]) {
    for p in 0..outer {
        for i in 0..inner {
            let at = |l: usize| (p * len + l) * inner + i;
            let max = (0..len).map(|l| x[at(l)]).fold(f32::NEG_INFINITY, f32::max);
            let max = if max.is_finite() { max } else { 0.0 };
            let sum: f32 = (0..len).map(|l| (x[at(l)] - max).exp()).sum();
            let lse = max + sum.ln();
            match op {
                Op::LogSumExp(..) => out[p * inner + i] = lse,
                Op::Softmax(..) => (0..len).for_each(|l| out[at(l)] = (x[at(l)] - lse).exp()),
                _ => (0..len).for_each(|l| out[at(l)] = x[at(l)] - lse),
            }
        }
    }
}

/// Adds the gradient through [`along_forward`] (y its output, g the output's gradient).
fn along_backward(
    op: Op,
    (outer, len, inner): (usize, usize, usize),
    x: &[f32],
    y: &[f32],
    g: &[f32],
    gx: &mut [f32],
) {
    for p in 0..outer {
        for i in 0..inner {
            let at = |l: usize| (p * len + l) * inner + i;
            match op {
                // ∂ lse / ∂x_l = softmax_l
                Op::LogSumExp(..) => {
                    let (lse, gs) = (y[p * inner + i], g[p * inner + i]);
                    (0..len).for_each(|l| gx[at(l)] += gs * (x[at(l)] - lse).exp());
                }
                // ∂ softmax: y_l (g_l − Σ g y)
                Op::Softmax(..) => {
                    let dot: f32 = (0..len).map(|l| g[at(l)] * y[at(l)]).sum();
                    (0..len).for_each(|l| gx[at(l)] += y[at(l)] * (g[at(l)] - dot));
                }
                // ∂ log softmax: g_l − softmax_l Σ g
                _ => {
                    let total: f32 = (0..len).map(|l| g[at(l)]).sum();
                    (0..len).for_each(|l| gx[at(l)] += g[at(l)] - y[at(l)].exp() * total);
                }
            }
        }
    }
}

/// The operand of a unary op.
fn node_operand(op: Op) -> usize {
    match op {
        Op::Neg(a) | Op::Func(_, a) | Op::Pow(a, _) => a,
        _ => unreachable!("a unary op"),
    }
}

super::dispatch!(apply, apply_avx2, apply_rows, (f: Func, x: &[f32], out: &mut [f32]) -> ());
super::dispatch!(chain, chain_avx2, chain_rows,
    (f: Func, x: &[f32], y: &[f32], g: &[f32], out: &mut [f32], accumulate: bool) -> ());

/// out = f(x), elementwise (one loop per function, so that each vectorizes).
#[inline(always)]
fn apply_rows(f: Func, x: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn each(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
    }
    match f {
        Func::Exp => each(x, out, math::exp),
        Func::Log => each(x, out, math::ln),
        Func::Softplus => each(x, out, math::softplus),
        Func::Sigmoid => each(x, out, math::sigmoid),
        Func::Tanh => each(x, out, math::tanh),
        Func::Sqrt => each(x, out, f32::sqrt),
        Func::Abs => each(x, out, f32::abs),
        Func::Square => each(x, out, |v| v * v),
        Func::Log1p => each(x, out, f32::ln_1p),
        Func::Expm1 => each(x, out, f32::exp_m1),
        Func::Relu => each(x, out, |v| v.max(0.0)),
    }
}

/// out (+)= g · f′(x), with y = f(x): the chain rule through an elementwise function
/// (`accumulate`: add to `out`, else overwrite it).
#[inline(always)]
fn chain_rows(f: Func, x: &[f32], y: &[f32], g: &[f32], out: &mut [f32], accumulate: bool) {
    #[inline(always)]
    fn each(
        x: &[f32],
        y: &[f32],
        g: &[f32],
        out: &mut [f32],
        add: bool,
        d: impl Fn(f32, f32) -> f32,
    ) {
        for (((o, &g), &x), &y) in out.iter_mut().zip(g).zip(x).zip(y) {
            let v = g * d(x, y);
            *o = if add { *o + v } else { v };
        }
    }
    let add = accumulate;
    match f {
        Func::Exp => each(x, y, g, out, add, |_, y| y),
        Func::Log => each(x, y, g, out, add, |x, _| 1.0 / x),
        Func::Softplus => each(x, y, g, out, add, |x, _| math::sigmoid(x)),
        Func::Sigmoid => each(x, y, g, out, add, |_, y| y * (1.0 - y)),
        Func::Tanh => each(x, y, g, out, add, |_, y| 1.0 - y * y),
        Func::Sqrt => each(x, y, g, out, add, |_, y| 0.5 / y),
        Func::Abs => each(x, y, g, out, add, |x, _| x.signum() * f32::from(x != 0.0)),
        Func::Square => each(x, y, g, out, add, |x, _| 2.0 * x),
        Func::Log1p => each(x, y, g, out, add, |x, _| 1.0 / (1.0 + x)),
        Func::Expm1 => each(x, y, g, out, add, |_, y| y + 1.0),
        Func::Relu => each(x, y, g, out, add, |x, _| if x > 0.0 { 1.0 } else { 0.0 }),
    }
}
