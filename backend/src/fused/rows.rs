//! A data matrix (m × k) times one vector per particle, and its transpose times the
//! output's gradient: the products of regressions, row by row over the data so that each
//! row is read once for all particles, on several threads when the data is large. (sgemm
//! first copies its operands into panels: for data read once per pass that doubles the
//! memory traffic, and for k of ten it is most of the work.)
//!
//! Eight particles share each multiply-add (their vectors transposed and zero-padded to a
//! multiple of 8), with the sums in registers. The kernels are compiled twice, plain and
//! for AVX2, and the second is taken where the processor has it (the build targets the
//! baseline x86-64, whose vectors are half as wide).

/// out[s·m + i] = ⟨x_i, w_s⟩ for data rows x (m × k) and vectors w (particles × k).
pub(crate) fn data_times_vectors(x: &[f32], w: &[f32], out: &mut [f32], k: usize) {
    let particles = w.len() / k;
    let m = x.len() / k;
    let lanes = particles.div_ceil(8) * 8;
    let mut wt = vec![0.0f32; k * lanes];
    for s in 0..particles {
        for j in 0..k {
            wt[j * lanes + s] = w[s * k + j];
        }
    }
    let workers = super::workers_for(m * k * particles);
    let block = m.div_ceil(workers).max(1);
    // Each worker's rows of every particle's output.
    let mut pieces: Vec<Vec<&mut [f32]>> = (0..workers).map(|_| Vec::new()).collect();
    for o in out.chunks_mut(m) {
        for (p, piece) in o.chunks_mut(block).enumerate() {
            pieces[p].push(piece);
        }
    }
    let shape = Shape {
        k,
        particles,
        lanes,
    };
    let rows = |p: usize| &x[(p * block).min(m) * k..((p + 1) * block).min(m) * k];
    if workers == 1 {
        forward_block(rows(0), w, &wt, &mut pieces[0], shape);
    } else {
        crate::threads::scope(|scope| {
            for (p, mut outs) in pieces.into_iter().enumerate() {
                let (rows, wt) = (rows(p), &wt);
                scope.spawn(move || forward_block(rows, w, wt, &mut outs, shape));
            }
        });
    }
}

/// g_w[s·k + j] += Σ_i g[s·m + i] x[i·k + j]: the gradient of [`data_times_vectors`]'s
/// vectors.
pub(crate) fn data_t_times(x: &[f32], g: &[f32], gw: &mut [f32], k: usize) {
    let particles = gw.len() / k;
    let m = x.len() / k;
    let lanes = particles.div_ceil(8) * 8;
    let shape = Shape {
        k,
        particles,
        lanes,
    };
    // a fixed number of row blocks, summed in order: the same bits on any number of cores
    let parts = super::parts_for(m * k * particles);
    let block = m.div_ceil(parts).max(1);
    let rows: Vec<(usize, usize)> = (0..parts)
        .map(|p| ((p * block).min(m), ((p + 1) * block).min(m)))
        .collect();
    let sums: Vec<Vec<f32>> = super::run_parts(rows, |rows| backward_block(x, g, m, rows, shape));
    for acc in sums {
        if particles == 1 {
            for (w, &v) in gw.iter_mut().zip(&acc) {
                *w += v;
            }
            continue;
        }
        for (j, a) in acc.chunks_exact(lanes).enumerate() {
            for (s, &v) in a[..particles].iter().enumerate() {
                gw[s * k + j] += v;
            }
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Shape {
    k: usize,
    particles: usize,
    /// particles rounded up to a multiple of 8
    lanes: usize,
}

super::dispatch!(forward_block, forward_block_avx2, forward_rows,
    (rows: &[f32], w: &[f32], wt: &[f32], outs: &mut [&mut [f32]], shape: Shape) -> ());
super::dispatch!(backward_block, backward_block_avx2, backward_rows,
    (x: &[f32], g: &[f32], m: usize, rows: (usize, usize), shape: Shape) -> Vec<f32>);

/// Rows of data into every particle's output (`outs[s][i]` for the block's row i).
#[inline(always)]
fn forward_rows(rows: &[f32], w: &[f32], wt: &[f32], outs: &mut [&mut [f32]], shape: Shape) {
    let Shape {
        k,
        particles,
        lanes,
    } = shape;
    if particles == 1 {
        for (i, row) in rows.chunks_exact(k).enumerate() {
            outs[0][i] = dot(row, w);
        }
        return;
    }
    // Four rows at a time: four independent chains of additions per group of particles
    // (one row's k additions in a chain would wait on each other).
    let quads = rows.len() / k / 4;
    for q in 0..quads {
        let r = |t: usize| &rows[(4 * q + t) * k..(4 * q + t + 1) * k];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        for c in 0..lanes / 8 {
            let mut acc = [[0.0f32; 8]; 4];
            for (j, wj) in wt.chunks_exact(lanes).enumerate() {
                let wj = &wj[c * 8..c * 8 + 8];
                for l in 0..8 {
                    acc[0][l] += r0[j] * wj[l];
                    acc[1][l] += r1[j] * wj[l];
                    acc[2][l] += r2[j] * wj[l];
                    acc[3][l] += r3[j] * wj[l];
                }
            }
            for (t, acc) in acc.iter().enumerate() {
                for (o, &a) in outs[c * 8..].iter_mut().zip(acc) {
                    o[4 * q + t] = a;
                }
            }
        }
    }
    for (i, row) in rows.chunks_exact(k).enumerate().skip(4 * quads) {
        for c in 0..lanes / 8 {
            let mut acc = [0.0f32; 8];
            for (&r, wj) in row.iter().zip(wt.chunks_exact(lanes)) {
                let wj = &wj[c * 8..c * 8 + 8];
                for l in 0..8 {
                    acc[l] += r * wj[l];
                }
            }
            for (o, &a) in outs[c * 8..].iter_mut().zip(&acc) {
                o[i] = a;
            }
        }
    }
}

/// Σ over rows `first..last` of g[s, i] x_i, as k values (one particle) or a k × lanes
/// matrix.
#[inline(always)]
fn backward_rows(
    x: &[f32],
    g: &[f32],
    m: usize,
    (first, last): (usize, usize),
    shape: Shape,
) -> Vec<f32> {
    let Shape {
        k,
        particles,
        lanes,
    } = shape;
    let mut acc = vec![0.0f32; k * if particles == 1 { 1 } else { lanes }];
    if particles == 1 {
        for i in first..last {
            let gi = g[i];
            for (a, &r) in acc.iter_mut().zip(&x[i * k..(i + 1) * k]) {
                *a += gi * r;
            }
        }
        return acc;
    }
    // Four rows per update of the sums: a quarter of the loads and stores.
    let quads = (last - first) / 4;
    for q in 0..quads {
        let i0 = first + 4 * q;
        let r = |t: usize| &x[(i0 + t) * k..(i0 + t + 1) * k];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        for c in 0..lanes / 8 {
            let mut gv = [[0.0f32; 8]; 4];
            for l in 0..8 {
                let s = c * 8 + l;
                if s < particles {
                    for (t, v) in gv.iter_mut().enumerate() {
                        v[l] = g[s * m + i0 + t];
                    }
                }
            }
            for (j, a) in acc.chunks_exact_mut(lanes).enumerate() {
                let a = &mut a[c * 8..c * 8 + 8];
                for l in 0..8 {
                    a[l] +=
                        r0[j] * gv[0][l] + r1[j] * gv[1][l] + r2[j] * gv[2][l] + r3[j] * gv[3][l];
                }
            }
        }
    }
    for i in first + 4 * quads..last {
        let row = &x[i * k..(i + 1) * k];
        for c in 0..lanes / 8 {
            let mut gv = [0.0f32; 8];
            for (l, v) in gv.iter_mut().enumerate() {
                let s = c * 8 + l;
                if s < particles {
                    *v = g[s * m + i];
                }
            }
            for (&r, a) in row.iter().zip(acc.chunks_exact_mut(lanes)) {
                let a = &mut a[c * 8..c * 8 + 8];
                for l in 0..8 {
                    a[l] += r * gv[l];
                }
            }
        }
    }
    acc
}

/// Σ a_i b_i with eight partial sums, so that the loop vectorizes (a single running sum
/// fixes the order of the additions and keeps it scalar).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    // In memory order (the tail last), which the hardware prefetcher follows.
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the plain triple loop, for one and several particles, on one thread and on
    /// several (a large m).
    #[test]
    fn products_equal_the_definition() {
        for (m, k, particles) in [(7, 3, 1), (5, 10, 8), (40_000, 30, 1), (20_000, 20, 3)] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..particles * k)
                .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
                .collect();
            let mut out = vec![0.0f32; particles * m];
            data_times_vectors(&x, &w, &mut out, k);
            for s in 0..particles {
                for i in 0..m {
                    let want: f32 = (0..k).map(|j| x[i * k + j] * w[s * k + j]).sum();
                    assert!((out[s * m + i] - want).abs() < 1e-4, "out[{s}, {i}]");
                }
            }
            let g: Vec<f32> = (0..particles * m)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
                .collect();
            let mut gw = vec![1.0f32; particles * k];
            data_t_times(&x, &g, &mut gw, k);
            for s in 0..particles {
                for j in 0..k {
                    let want: f64 = 1.0
                        + (0..m)
                            .map(|i| f64::from(g[s * m + i]) * f64::from(x[i * k + j]))
                            .sum::<f64>();
                    let tol = 1e-5 * (m as f64);
                    assert!(
                        (f64::from(gw[s * k + j]) - want).abs() < tol,
                        "gw[{s}, {j}]"
                    );
                }
            }
        }
    }
}
