//! Convolution and pooling as host ops on the CPU: windows gathered by index (im2col) and
//! one matrix product per particle and part of its rows, the parts on threads, and the
//! same backward (col2im). As dfdx ops
//! (dfdx 0.13 has convolutions only on nightly Rust) a window gather is a product with a
//! 0/1 matrix of (C·H·W) × (H'·W'·C·K²) entries: about 4 s per LeNet-5 step on MNIST.

use dfdx::prelude::*;
use ravi_backend::gemm::gemm;
use ravi_backend::host_op::{add_cpu_gradient, cpu_gradient, laid_out};
use ravi_backend::{Backend, Tape};

use super::Images;

/// A convolution's geometry.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

/// Where an image's column matrix reads its input: runs of positions along an output row
/// that read one input row (every `stride`-th entry); the positions in the padding read
/// nothing and stay 0.
struct Gather {
    runs: Vec<Run>,
    /// C·K·K.
    patch: usize,
    /// H'·W'.
    positions: usize,
    /// C·H·W.
    image: usize,
}

/// Positions `first..first + len` of a column-matrix row reading the input from `src`,
/// `step` apart.
struct Run {
    row: usize,
    first: usize,
    len: usize,
    src: usize,
    step: usize,
}

impl Window {
    /// The output's height and width.
    pub fn output(&self) -> (usize, usize) {
        let span = |n: usize| (n + 2 * self.padding - self.kernel) / self.stride + 1;
        (span(self.height), span(self.width))
    }

    fn gather(&self) -> Gather {
        let (oh, ow) = self.output();
        let (k, st, pad) = (self.kernel, self.stride, self.padding as i64);
        let (h, w) = (self.height as i64, self.width as i64);
        let mut runs = Vec::new();
        for c in 0..self.channels {
            for dy in 0..k {
                for dx in 0..k {
                    let row = (c * k + dy) * k + dx;
                    // the output columns whose input column px·st + dx − pad is inside
                    let x_of = |px: usize| (px * st + dx) as i64 - pad;
                    let inside: Vec<usize> =
                        (0..ow).filter(|&px| (0..w).contains(&x_of(px))).collect();
                    let (Some(&lo), Some(&hi)) = (inside.first(), inside.last()) else {
                        continue;
                    };
                    for py in 0..oh {
                        let y = (py * st + dy) as i64 - pad;
                        if !(0..h).contains(&y) {
                            continue;
                        }
                        runs.push(Run {
                            row,
                            first: py * ow + lo,
                            len: hi - lo + 1,
                            src: ((c as i64 * h + y) * w + x_of(lo)) as usize,
                            step: st,
                        });
                    }
                }
            }
        }
        Gather {
            runs,
            patch: self.channels * k * k,
            positions: oh * ow,
            image: self.channels * self.height * self.width,
        }
    }
}

impl Gather {
    /// The column matrix of `rows` images into `col`: (C·K·K) × (rows · P), image r's
    /// positions in columns r·P..(r + 1)·P.
    fn im2col(&self, images: &[f32], rows: usize, col: &mut [f32]) {
        let p = self.positions;
        col.fill(0.0);
        for run in &self.runs {
            for r in 0..rows {
                let image = &images[r * self.image..(r + 1) * self.image];
                let out = &mut col[run.row * rows * p + r * p + run.first..][..run.len];
                match run.step {
                    1 => out.copy_from_slice(&image[run.src..run.src + run.len]),
                    step => out
                        .iter_mut()
                        .enumerate()
                        .for_each(|(t, o)| *o = image[run.src + t * step]),
                }
            }
        }
    }

    /// A column matrix's gradient added into its images' (col2im).
    fn col2im(&self, col: &[f32], rows: usize, images: &mut [f32]) {
        let p = self.positions;
        for run in &self.runs {
            for r in 0..rows {
                let image = &mut images[r * self.image..(r + 1) * self.image];
                let g = &col[run.row * rows * p + r * p + run.first..][..run.len];
                match run.step {
                    1 => image[run.src..run.src + run.len]
                        .iter_mut()
                        .zip(g)
                        .for_each(|(i, g)| *i += g),
                    step => g
                        .iter()
                        .enumerate()
                        .for_each(|(t, g)| image[run.src + t * step] += g),
                }
            }
        }
    }
}

/// Images per part of a convolution: each part's column matrix stays small (a few hundred
/// kilobytes: a fresh buffer of tens of megabytes per step cost more in page faults than
/// the products), and the parts run on threads.
const ROWS_PER_PART: usize = 8;

thread_local! {
    /// A thread's column matrix, its gradient and a product, kept from call to call.
    static SCRATCH: std::cell::RefCell<[Vec<f32>; 3]> = const {
        std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()])
    };
}

/// `f` with this thread's three scratch buffers, sized `sizes` (contents unspecified). `f`
/// must not wait on the pool (a threaded product would let this thread run another part,
/// which would borrow the buffers again): the parts' products are single-threaded.
fn with_scratch<R>(
    sizes: [usize; 3],
    f: impl FnOnce(&mut [f32], &mut [f32], &mut [f32]) -> R,
) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let [a, b, c] = &mut *s;
        for (v, &n) in [&mut *a, &mut *b, &mut *c].into_iter().zip(&sizes) {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        }
        f(&mut a[..sizes[0]], &mut b[..sizes[1]], &mut c[..sizes[2]])
    })
}

/// `buf`, each particle's `rows` rows of `per_row` values, cut into parts of at most
/// [`ROWS_PER_PART`] rows within a particle: (particle, first row, the part's values).
fn parts(buf: &mut [f32], rows: usize, per_row: usize) -> Vec<(usize, usize, &mut [f32])> {
    buf.chunks_mut((rows * per_row).max(1))
        .enumerate()
        .flat_map(|(q, particle)| {
            particle
                .chunks_mut((ROWS_PER_PART * per_row).max(1))
                .enumerate()
                .map(move |(i, part)| (q, i * ROWS_PER_PART, part))
        })
        .collect()
}

/// The convolution of [`super::conv2d`] on the host: per particle and part of its rows,
/// its filters F (O × C·K·K) times the part's column matrix, plus the bias.
pub(super) fn conv2d<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    filters: Tensor<(usize, usize), f32, D, T>,
    bias: Tensor<(usize, usize), f32, D, T>,
    window: Window,
) -> Images<D, T> {
    let (s, rows, ..) = *h.shape();
    let o = bias.shape().1;
    let (oh, ow) = window.output();
    assert_eq!(bias.shape().0, s, "a bias per particle");
    assert_eq!(
        *filters.shape(),
        (s, o * window.channels * window.kernel * window.kernel),
        "filters per particle, O·C·K·K"
    );
    // (in the order they are laid out: the gradients are written in that order too)
    let (h, tape) = h.contiguous().split_tape();
    let (filters, tape_f) = filters.contiguous().split_tape();
    let (bias, tape_b) = bias.contiguous().split_tape();
    let mut tape = tape.merge(tape_f).merge(tape_b);
    let gather = window.gather();
    let (patch, p, image) = (gather.patch, gather.positions, gather.image);
    let (images, f, b) = (laid_out(&h), laid_out(&filters), laid_out(&bias));
    let mut out = vec![0.0f32; s * rows * o * p];
    ravi_backend::threads::run_parts(parts(&mut out, rows, o * p), |(q, first, out)| {
        let n = out.len() / (o * p);
        let columns = n * p;
        with_scratch([patch * columns, 0, o * columns], |col, _, product| {
            gather.im2col(&images[(q * rows + first) * image..], n, col);
            let f_q = &f[q * o * patch..(q + 1) * o * patch];
            gemm(
                (o, patch, columns),
                f_q,
                (patch, 1),
                col,
                (columns, 1),
                0.0,
                product,
                (columns, 1),
            );
            // (O × n·P) to (n, O, P), with the bias
            for r in 0..n {
                for c in 0..o {
                    let (src, bias) = (&product[c * columns + r * p..][..p], b[q * o + c]);
                    let dst = &mut out[(r * o + c) * p..][..p];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d = s + bias);
                }
            }
        });
    });
    let out = h.device().tensor_from_vec(out, (s, rows, o, oh, ow));
    if T::OWNS_TAPE {
        let out_id = out.clone();
        tape.add_backward_op(move |grads| {
            let g: &[f32] = cpu_gradient(grads, &out_id)?;
            let mut g_images = vec![0.0f32; images.len()];
            // each part's filter and bias gradients, summed in the parts' order below
            let jobs = parts(&mut g_images, rows, image);
            let partial = ravi_backend::threads::run_parts(jobs, |(q, first, g_images)| {
                let n = g_images.len() / image;
                let columns = n * p;
                let mut g_f = vec![0.0f32; o * patch];
                let mut g_b = vec![0.0f32; o];
                with_scratch(
                    [patch * columns, patch * columns, o * columns],
                    |col, g_col, g_out| {
                        gather.im2col(&images[(q * rows + first) * image..], n, col);
                        // the output's gradient as O × n·P, and the bias's
                        let g_q = &g[(q * rows + first) * o * p..];
                        for r in 0..n {
                            for c in 0..o {
                                let src = &g_q[(r * o + c) * p..][..p];
                                g_out[c * columns + r * p..][..p].copy_from_slice(src);
                                g_b[c] += src.iter().sum::<f32>();
                            }
                        }
                        // ∂F = G colᵀ, ∂col = Fᵀ G
                        gemm(
                            (o, columns, patch),
                            g_out,
                            (columns, 1),
                            col,
                            (1, columns),
                            0.0,
                            &mut g_f,
                            (patch, 1),
                        );
                        let f_q = &f[q * o * patch..(q + 1) * o * patch];
                        gemm(
                            (patch, o, columns),
                            f_q,
                            (1, patch),
                            g_out,
                            (columns, 1),
                            0.0,
                            g_col,
                            (columns, 1),
                        );
                        gather.col2im(g_col, n, g_images);
                    },
                );
                (q, g_f, g_b)
            });
            add_cpu_gradient(grads, &h, &g_images)?;
            let g_f = cpu_gradient(grads, &filters)?;
            for (q, part, _) in &partial {
                add(&mut g_f[q * o * patch..(q + 1) * o * patch], part);
            }
            let g_b = cpu_gradient(grads, &bias)?;
            for (q, _, part) in &partial {
                add(&mut g_b[q * o..(q + 1) * o], part);
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// The max (or mean) of every `kernel × kernel` window, stride `kernel`, on the host. The
/// max's gradient goes to the first largest entry of its window.
pub(super) fn pool2d<D: Backend, T: Tape<D>>(
    h: Images<D, T>,
    max: bool,
    kernel: usize,
) -> Images<D, T> {
    let (s, rows, c, hh, ww) = *h.shape();
    let (oh, ow) = (hh / kernel, ww / kernel);
    let (h, mut tape) = h.contiguous().split_tape();
    let images = laid_out(&h);
    let planes = s * rows * c;
    let mut out = vec![0.0f32; planes * oh * ow];
    // per output, the input entry it read (max)
    let mut from = vec![0usize; if max { out.len() } else { 0 }];
    for plane in 0..planes {
        let image = &images[plane * hh * ww..(plane + 1) * hh * ww];
        for py in 0..oh {
            for px in 0..ow {
                let at = (plane * oh + py) * ow + px;
                let window = (0..kernel).flat_map(|dy| {
                    (0..kernel).map(move |dx| (py * kernel + dy) * ww + px * kernel + dx)
                });
                if max {
                    // from the window's first entry (a window of −∞ or NaN keeps it)
                    let first = py * kernel * ww + px * kernel;
                    let (best, value) = window.fold((first, image[first]), |(b, v), i| {
                        if image[i] > v {
                            (i, image[i])
                        } else {
                            (b, v)
                        }
                    });
                    out[at] = value;
                    from[at] = plane * hh * ww + best;
                } else {
                    out[at] = window.map(|i| image[i]).sum::<f32>() / (kernel * kernel) as f32;
                }
            }
        }
    }
    let out = h.device().tensor_from_vec(out, (s, rows, c, oh, ow));
    if T::OWNS_TAPE {
        let out_id = out.clone();
        tape.add_backward_op(move |grads| {
            let g = cpu_gradient(grads, &out_id)?.to_vec();
            let g_h = cpu_gradient(grads, &h)?;
            if max {
                for (g, &i) in g.iter().zip(&from) {
                    g_h[i] += g;
                }
                return Ok(());
            }
            let share = 1.0 / (kernel * kernel) as f32;
            for (at, g) in g.iter().enumerate() {
                let (plane, py, px) = (at / (oh * ow), at / ow % oh, at % ow);
                for dy in 0..kernel {
                    for dx in 0..kernel {
                        g_h[plane * hh * ww + (py * kernel + dy) * ww + px * kernel + dx] +=
                            g * share;
                    }
                }
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

fn add(to: &mut [f32], values: &[f32]) {
    to.iter_mut().zip(values).for_each(|(t, v)| *t += v);
}

#[cfg(test)]
mod tests {
    use super::super::{conv2d_on_graph, pool2d_on_graph};
    use super::*;
    use ravi_backend::Cpu;

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}: {x} against {y}"
            );
        }
    }

    /// The host convolution's output and its gradients in the images, filters and biases
    /// against the dfdx ops, with a stride, padding and sizes that do not divide evenly,
    /// the filters shared by the particles (a broadcast) and the images a transposed view.
    #[test]
    fn conv2d_matches_the_graph() {
        let dev = Cpu::seed_from_u64(2);
        // (more rows than a part holds: two parts per particle)
        let (s, r, c, o, k) = (2usize, ROWS_PER_PART + 2, 2usize, 3usize, 3usize);
        let (height, width) = (7usize, 6usize);
        for (stride, padding) in [(1, 0), (2, 1), (1, 2)] {
            // images stored with height and width swapped, read through a permute
            let x: Tensor<(usize, usize, usize, usize, usize), f32, Cpu> =
                dev.sample_normal_like(&(s, r, c, width, height));
            let f: Tensor<(usize,), f32, Cpu> = dev.sample_normal_like(&(o * c * k * k,));
            let b: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(s, o));
            let window = Window {
                channels: c,
                height,
                width,
                kernel: k,
                stride,
                padding,
            };
            let (oh, ow) = window.output();
            let weights: Tensor<(usize, usize, usize, usize, usize), f32, Cpu> =
                dev.sample_normal_like(&(s, r, o, oh, ow));
            let run = |host: bool| {
                let h = x
                    .clone()
                    .leaky_traced()
                    .permute::<_, Axes5<0, 1, 2, 4, 3>>();
                let filters = f
                    .clone()
                    .leaky_traced()
                    .broadcast_like::<_, Axis<0>>(&(s, o * c * k * k));
                let bias = b.clone().leaky_traced();
                let out = match host {
                    true => conv2d(h, filters, bias, window),
                    false => conv2d_on_graph(h, filters, bias, k, stride, padding),
                };
                let values = out.as_vec();
                let grads = (out * weights.clone()).sum::<(), _>().backward();
                (
                    values,
                    [
                        grads.get(&x).as_vec(),
                        grads.get(&f).as_vec(),
                        grads.get(&b).as_vec(),
                    ],
                )
            };
            let (host, graph) = (run(true), run(false));
            close(&host.0, &graph.0, "output");
            for (i, what) in ["images", "filters", "biases"].iter().enumerate() {
                close(&host.1[i], &graph.1[i], what);
            }
        }
    }

    /// Max and mean pooling against the dfdx ops, values and gradients, over a size the
    /// kernel does not divide.
    #[test]
    fn pool2d_matches_the_graph() {
        let dev = Cpu::seed_from_u64(3);
        let shape = (2usize, 2usize, 3usize, 5usize, 7usize);
        let x: Tensor<(usize, usize, usize, usize, usize), f32, Cpu> =
            dev.sample_normal_like(&shape);
        let weights: Tensor<(usize, usize, usize, usize, usize), f32, Cpu> =
            dev.sample_normal_like(&(2, 2, 3, 2, 3));
        for max in [true, false] {
            let run = |host: bool| {
                let h = x.clone().leaky_traced();
                let out = match host {
                    true => pool2d(h, max, 2),
                    false => pool2d_on_graph(h, max, 2),
                };
                let values = out.as_vec();
                let grads = (out * weights.clone()).sum::<(), _>().backward();
                (values, grads.get(&x).as_vec())
            };
            let (host, graph) = (run(true), run(false));
            close(&host.0, &graph.0, "pooled");
            close(&host.1, &graph.1, "gradient");
        }
    }

    /// A max-pooling window whose entries are all −∞ gives −∞ and its gradient to an entry
    /// of that window (the first), not to another window's.
    #[test]
    fn a_window_of_minus_infinity_keeps_its_gradient() {
        let dev = Cpu::seed_from_u64(5);
        let mut v: Vec<f32> = (0..16).map(|i| i as f32).collect();
        for i in [10, 11, 14, 15] {
            v[i] = f32::NEG_INFINITY; // the bottom-right 2 × 2 window
        }
        let x = dev.tensor_from_vec(v, (1usize, 1usize, 1usize, 4usize, 4usize));
        let out = pool2d(x.clone().leaky_traced(), true, 2);
        assert_eq!(out.as_vec()[3], f32::NEG_INFINITY);
        let g = out.sum::<(), _>().backward().get(&x).as_vec();
        assert_eq!(g[10], 1.0, "{g:?}");
        // each window's gradient inside it: one per window
        assert_eq!(g.iter().sum::<f32>(), 4.0);
        assert_eq!([g[5], g[7], g[13]], [1.0, 1.0, 1.0]);
    }
}
