//! How much memory a guide family may take: its parameters are allocated when the guide is
//! built, and a family that would not fit in the machine's memory (a `FullRank` over
//! 100,000 coordinates wants 40 GB for its factor alone) is refused there, before the
//! allocation aborts the process, and reported as a typed error by the first fit or
//! evaluation of the guide.

use std::fmt;

/// Bytes a fit holds per parameter: its value, its gradient, and Adam's two moments.
pub const BYTES_PER_PARAMETER: u64 = 4 * 4;

/// A family refused for want of memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryError {
    /// The family's name (`"FullRank"`, ...).
    pub family: &'static str,
    /// The guide entry's label (its sites).
    pub label: String,
    /// The coordinates it covers.
    pub size: usize,
    /// What a fit of it would hold.
    pub bytes: u64,
    /// What the machine has available.
    pub available: u64,
    /// A family of the same sites that fits.
    pub suggestion: &'static str,
}

impl fmt::Display for MemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} over `{}` ({} coordinates) would hold {} in a fit, but the machine has {} available; use {}",
            self.family,
            self.label,
            self.size,
            human(self.bytes),
            human(self.available),
            self.suggestion
        )
    }
}

fn human(bytes: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / GIB)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// The memory available to a fit: `MemAvailable` of /proc/meminfo where there is one, read
/// once; unbounded elsewhere (the estimate then refuses only what no machine has: more
/// than 2^64 bytes).
pub fn available_bytes() -> u64 {
    static AVAILABLE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("MemAvailable:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map_or(u64::MAX, |kb| kb.saturating_mul(1024))
    })
}

/// May a family of `parameters` parameters be allocated? `Err` with what it would need.
pub fn check(
    family: &'static str,
    label: &str,
    size: usize,
    parameters: Option<u64>,
    suggestion: &'static str,
) -> Result<(), MemoryError> {
    let available = available_bytes();
    let bytes = parameters.and_then(|p| p.checked_mul(BYTES_PER_PARAMETER));
    match bytes {
        Some(b) if b <= available => Ok(()),
        _ => Err(MemoryError {
            family,
            label: label.to_string(),
            size,
            bytes: bytes.unwrap_or(u64::MAX),
            available,
            suggestion,
        }),
    }
}

/// The peak resident memory of this process so far, in MiB (`VmHWM` of
/// /proc/self/status); NaN where there is no such file. What the examples and benchmarks
/// report beside their timings.
pub fn peak_resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_rank_factor_of_100k_coordinates_is_refused() {
        let d = 100_000u64;
        let e = check(
            "FullRank",
            "w",
            d as usize,
            Some(d * d + 2 * d),
            "LowRank(rank = 10)",
        )
        .expect_err("160 GB");
        assert_eq!(e.bytes, (d * d + 2 * d) * BYTES_PER_PARAMETER);
        let text = e.to_string();
        assert!(text.contains("FullRank") && text.contains("100000") && text.contains("LowRank"));
        assert!(check("FullRank", "w", 10, Some(120), "..").is_ok());
        // a count that overflows is refused, not wrapped
        assert!(check("FullRank", "w", 1, None, "..").is_err());
    }
}
