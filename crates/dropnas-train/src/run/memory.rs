//! Refusing a run that cannot fit before it allocates: `--init-channels 100000` would otherwise
//! allocate until the kernel kills the process, minutes or hours later.

/// Bytes of memory the system can still hand out (`MemAvailable`), where the platform says.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A task's estimate of a run's peak memory, and which flags lower it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    pub bytes: u64,
    /// e.g. "--batch-size, --init-channels, --layers".
    pub reduced_by: &'static str,
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `Err` with a message when `estimate` exceeds `available` (and `force` is off).
pub fn check(estimate: &MemoryEstimate, available: Option<u64>, force: bool) -> Result<(), String> {
    let Some(available) = available else { return Ok(()) };
    if force || estimate.bytes <= available {
        return Ok(());
    }
    Err(format!(
        "this run needs about {:.0} MiB of memory at its peak (estimated), but only {:.0} MiB are available: \
         lower {}, or pass --force to try anyway",
        mib(estimate.bytes),
        mib(available),
        estimate.reduced_by
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_what_does_not_fit() {
        let e = MemoryEstimate { bytes: 10 << 30, reduced_by: "--batch-size" };
        let msg = check(&e, Some(4 << 30), false).unwrap_err();
        assert!(msg.contains("10240 MiB") && msg.contains("4096 MiB") && msg.contains("--batch-size"), "{msg}");
        assert!(check(&e, Some(4 << 30), true).is_ok());
        assert!(check(&e, Some(20 << 30), false).is_ok());
        assert!(check(&e, None, false).is_ok());
        assert!(available_bytes().is_some_and(|b| b > 0));
    }
}
