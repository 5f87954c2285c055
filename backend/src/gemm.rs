//! Matrix products through `matrixmultiply`'s sgemm, on strided slices (bounds checked
//! before the unsafe call), and split across threads by rows or columns when large.

/// C (m × n) = A (m × k) B (k × n), each given by its row and column strides; `beta` 1 adds
/// to C, 0 overwrites it.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
    (rsc, csc): (usize, usize),
) {
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    // The strided reads and writes stay inside the slices (checked, since sgemm trusts them).
    assert!(
        m == 0
            || k == 0
            || n == 0
            || (last(m, k, rsa, csa) < a.len()
                && last(k, n, rsb, csb) < b.len()
                && last(m, n, rsc, csc) < c.len()),
        "gemm operands out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every strided access in bounds, and `c` is an
    // exclusive borrow that does not alias `a` or `b`.
    unsafe {
        sgemm(
            (m, k, n),
            a,
            (rsa, csa),
            b,
            (rsb, csb),
            beta,
            c.as_mut_ptr(),
            (rsc, csc),
        )
    }
}

/// `matrixmultiply::sgemm` with α = 1.
///
/// # Safety
/// Every strided access of A, B and C must lie inside `a`, `b` and C's allocation, and no
/// other thread may touch the elements of C written here.
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: *mut f32,
    (rsc, csc): (usize, usize),
) {
    matrixmultiply::sgemm(
        m,
        k,
        n,
        1.0,
        a.as_ptr(),
        rsa as isize,
        csa as isize,
        b.as_ptr(),
        rsb as isize,
        csb as isize,
        beta,
        c,
        rsc as isize,
        csc as isize,
    );
}

/// [`gemm`] split among threads when the product is large (C row-major, m × n). Each
/// thread packs the whole of the operand it shares (sgemm packs its operands into panels
/// first), so the split is over C's rows when B is the smaller operand and over its columns
/// when A is: a decoder's 128 rows times a 400 × 784 weight matrix would otherwise pack the
/// weights once per thread.
#[allow(clippy::too_many_arguments)]
pub fn par_gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let by_columns = m * k < k * n;
    let split = if by_columns { n } else { m };
    let workers = crate::threads::workers_for(m * k * n / 4).min(split.max(1));
    if workers <= 1 {
        return gemm((m, k, n), a, (rsa, csa), b, (rsb, csb), beta, c, (n, 1));
    }
    let block = split.div_ceil(workers);
    if !by_columns {
        // the last block on this thread, the others on threads of their own
        crate::threads::scope(|scope| {
            let mut blocks = c[..m * n].chunks_mut(block * n).enumerate().peekable();
            while let Some((p, c)) = blocks.next() {
                let rows = c.len() / n;
                let a = &a[p * block * rsa..];
                let mut run =
                    move || gemm((rows, k, n), a, (rsa, csa), b, (rsb, csb), beta, c, (n, 1));
                match blocks.peek() {
                    Some(_) => {
                        scope.spawn(run);
                    }
                    None => run(),
                }
            }
        });
        return;
    }
    let c = &mut c[..m * n];
    let columns = ColumnBlocks(c.as_mut_ptr());
    let (a_last, b_len) = ((m.max(1) - 1) * rsa + (k.max(1) - 1) * csa, b.len());
    assert!(
        k == 0 || (a_last < a.len() && (k - 1) * rsb + (n - 1) * csb < b_len),
        "gemm operands out of bounds"
    );
    crate::threads::scope(|scope| {
        for p in (0..workers).rev() {
            let (first, cols) = (p * block, block.min(n - (p * block).min(n)));
            if cols == 0 {
                continue;
            }
            let b = &b[first * csb..];
            let columns = &columns;
            // SAFETY: A and B were checked above and C (m × n, row-major) is `c`; each
            // block writes only its columns first..first + cols, which do not overlap, and
            // `c` is borrowed exclusively for the scope.
            let run = move || unsafe {
                let c = columns.0.add(first);
                sgemm((m, k, cols), a, (rsa, csa), b, (rsb, csb), beta, c, (n, 1));
            };
            // the first block on this thread, the others on threads of their own
            if p == 0 {
                run();
            } else {
                scope.spawn(run);
            }
        }
    });
}

// A layer's three products, h W forward and hᵀ G, G Wᵀ back: the engine's Linear layers,
// its Flipout and LRT rewrites, and the host ops' layer products call them.

/// out = h W over `rows` rows of `inputs` features, W (`inputs × outputs`, row-major) the
/// first values of `w`.
pub fn times_weights(
    h: &[f32],
    w: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    out: &mut [f32],
) {
    par_gemm(
        (rows, inputs, outputs),
        h,
        (inputs, 1),
        &w[..inputs * outputs],
        (outputs, 1),
        0.0,
        out,
    );
}

/// out (+)= hᵀ g (`inputs × outputs`: a weight matrix's gradient) for `rows` rows h of
/// `inputs` features and g of `outputs`; `beta` 1 adds to out, 0 overwrites it.
pub fn rows_t_times(
    h: &[f32],
    g: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    beta: f32,
    out: &mut [f32],
) {
    par_gemm(
        (inputs, rows, outputs),
        h,
        (1, inputs),
        g,
        (outputs, 1),
        beta,
        out,
    );
}

/// out (+)= g Wᵀ (`rows × inputs`: the gradient in a layer's input) for `rows` rows g of
/// `outputs` values, W (`inputs × outputs`, row-major) the first values of `w`; `beta` 1
/// adds to out, 0 overwrites it.
pub fn times_weights_t(
    g: &[f32],
    w: &[f32],
    (rows, inputs, outputs): (usize, usize, usize),
    beta: f32,
    out: &mut [f32],
) {
    par_gemm(
        (rows, outputs, inputs),
        g,
        (outputs, 1),
        &w[..inputs * outputs],
        (1, outputs),
        beta,
        out,
    );
}

/// C's buffer, shared by threads that each write their own columns.
struct ColumnBlocks(*mut f32);

// SAFETY: the threads write disjoint columns (see `par_gemm`).
unsafe impl Sync for ColumnBlocks {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threaded product (split over C's rows, and over its columns when A is the
    /// smaller operand) against the single-threaded one, with transposed operands and
    /// with C added to: sizes above the threading threshold.
    #[test]
    fn threaded_products_match_the_single_threaded_one() {
        let mut state = 3u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        // (m, k, n): B the smaller operand (rows split), then A (columns split)
        for (m, k, n) in [(300, 256, 64), (8, 512, 1100)] {
            assert!(m * k * n / 4 >= 1 << 20, "above the threshold");
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| next()).collect();
            // A as stored (m × k) and read transposed from a k × m copy; likewise B
            let a_t: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let b_t: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            for (beta, transposed) in [(0.0, false), (1.0, true)] {
                let (a_in, sa) = match transposed {
                    false => (&a, (k, 1)),
                    true => (&a_t, (1, m)),
                };
                let (b_in, sb) = match transposed {
                    false => (&b, (n, 1)),
                    true => (&b_t, (1, k)),
                };
                let mut want = c0.clone();
                gemm((m, k, n), a_in, sa, b_in, sb, beta, &mut want, (n, 1));
                let mut got = c0.clone();
                par_gemm((m, k, n), a_in, sa, b_in, sb, beta, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
                }
            }
        }
    }
}
