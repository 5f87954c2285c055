//! How many threads a piece of work may use.

/// The cores a step may use (up to 8), read once.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(8)
    })
}

/// Threads for `work` multiply-adds where each result is computed by one thread (so the
/// split cannot change a bit): one below about a million (spawning costs more than it
/// saves), else every core the machine offers (up to 8).
pub(crate) fn workers_for(work: usize) -> usize {
    if work < 1 << 20 {
        1
    } else {
        cores()
    }
}

/// Values per thread for elementwise work whose every result is computed by one thread
/// (nothing combined, so the split cannot change a bit): one block per core.
pub(crate) fn elementwise_block(n: usize) -> usize {
    n.div_ceil(workers_for(n * 4)).max(1)
}
