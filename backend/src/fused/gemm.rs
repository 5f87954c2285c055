//! Matrix products through `matrixmultiply`'s sgemm, on strided slices (bounds checked
//! before the unsafe call), and split across threads by rows when large.

/// C (m × n) = A (m × k) B (k × n), each given by its row and column strides; `beta` 1 adds
/// to C, 0 overwrites it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
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
            c.as_mut_ptr(),
            rsc as isize,
            csc as isize,
        );
    }
}

/// [`gemm`] with C's rows split among threads when the product is large (C row-major).
#[allow(clippy::too_many_arguments)]
pub(crate) fn par_gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    let workers = super::workers_for(m * k * n / 4).min(m.max(1));
    if workers <= 1 {
        return gemm((m, k, n), a, (rsa, csa), b, (rsb, csb), beta, c, (n, 1));
    }
    let block = m.div_ceil(workers);
    std::thread::scope(|scope| {
        for (p, c) in c[..m * n].chunks_mut(block * n).enumerate() {
            let rows = c.len() / n;
            let a = &a[p * block * rsa..];
            scope.spawn(move || gemm((rows, k, n), a, (rsa, csa), b, (rsb, csb), beta, c, (n, 1)));
        }
    });
}
