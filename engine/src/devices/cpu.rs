//! The CPU: its model name and physical cores from `/proc/cpuinfo` (Linux), its logical cores
//! from [`std::thread::available_parallelism`] (what this process may use: affinity and cgroup
//! limits included), and the SIMD level our kernels run at ([`kernels::simd::level`]).

use kernels::simd::Level;

use super::CpuInfo;

/// What `/proc/cpuinfo` says: the model name, and the physical cores when it lists
/// `physical id` and `core id` (x86 does; many ARM kernels do not).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuinfoText {
    pub model: Option<String>,
    pub physical_cores: Option<usize>,
}

/// Where `/proc/cpuinfo` has no `model name` (ARM, MIPS, RISC-V): the keys that name the CPU
/// or board instead, best first.
const FALLBACK_KEYS: &[&str] = &["Model", "cpu model", "uarch", "Hardware"];

/// Parses `/proc/cpuinfo`: the first `model name` (x86) or, failing that, the best of
/// [`FALLBACK_KEYS`], and the number of distinct (`physical id`, `core id`) pairs. Processor
/// blocks are separated by blank lines.
pub fn parse_cpuinfo(text: &str) -> CpuinfoText {
    let mut model: Option<String> = None;
    let mut fallback_model: Option<(usize, String)> = None;
    let mut cores = std::collections::BTreeSet::new();
    let mut any_processor = false;
    let mut all_have_ids = true;
    for block in text.split("\n\n") {
        let mut physical: Option<&str> = None;
        let mut core: Option<&str> = None;
        let mut processor = false;
        for line in block.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "processor" => processor = true,
                "model name" if model.is_none() && !value.is_empty() => {
                    model = Some(value.to_string())
                }
                "physical id" => physical = Some(value),
                "core id" => core = Some(value),
                _ if !value.is_empty() => {
                    if let Some(rank) = FALLBACK_KEYS.iter().position(|k| *k == key) {
                        if fallback_model.as_ref().is_none_or(|(r, _)| rank < *r) {
                            fallback_model = Some((rank, value.to_string()));
                        }
                    }
                }
                _ => {}
            }
        }
        if !processor {
            continue;
        }
        any_processor = true;
        match (physical, core) {
            (Some(p), Some(c)) => {
                cores.insert((p.to_string(), c.to_string()));
            }
            _ => all_have_ids = false,
        }
    }
    CpuinfoText {
        model: model.or(fallback_model.map(|(_, m)| m)),
        physical_cores: (any_processor && all_have_ids && !cores.is_empty()).then_some(cores.len()),
    }
}

/// The name of a SIMD level as `DEFECT_STUDIO_SIMD` spells it: `avx512`, `avx2` or `scalar`.
pub fn simd_name(level: Level) -> &'static str {
    match level {
        Level::Avx512 => "avx512",
        Level::Avx2 => "avx2",
        Level::Scalar => "scalar",
    }
}

/// This machine's CPU. Without `/proc/cpuinfo` (not Linux) the model is the architecture
/// (e.g. "x86_64 CPU") and the physical cores are unknown.
pub fn cpu_info() -> CpuInfo {
    let parsed = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| parse_cpuinfo(&t))
        .unwrap_or_default();
    CpuInfo {
        model: parsed
            .model
            .unwrap_or_else(|| format!("{} CPU", std::env::consts::ARCH)),
        logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        physical_cores: parsed.physical_cores,
        simd: simd_name(kernels::simd::level()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_SOCKETS: &str = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6338\n\
        physical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Gold \
        6338\nphysical id\t: 0\ncore id\t\t: 0\n\nprocessor\t: 2\nmodel name\t: Intel(R) Xeon(R) \
        Gold 6338\nphysical id\t: 1\ncore id\t\t: 0\n\nprocessor\t: 3\nmodel name\t: x\n\
        physical id\t: 1\ncore id\t\t: 5\n";

    #[test]
    fn cpuinfo_gives_the_model_and_distinct_physical_cores() {
        let p = parse_cpuinfo(TWO_SOCKETS);
        assert_eq!(p.model.as_deref(), Some("Intel(R) Xeon(R) Gold 6338"));
        // (0,0) twice (hyper-threads), (1,0), (1,5): three cores.
        assert_eq!(p.physical_cores, Some(3));
    }

    #[test]
    fn cpuinfo_without_core_ids_leaves_physical_cores_unknown() {
        let arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n\n\
                   Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n";
        let p = parse_cpuinfo(arm);
        assert_eq!(p.model.as_deref(), Some("Raspberry Pi 4 Model B Rev 1.4"));
        assert_eq!(p.physical_cores, None);
        assert_eq!(parse_cpuinfo(""), CpuinfoText::default());
    }

    /// Checked against this machine's `/proc/cpuinfo` by an independent count.
    #[test]
    fn cpu_info_matches_proc_cpuinfo() {
        let info = cpu_info();
        assert!(info.logical_cores >= 1);
        assert!(["avx512", "avx2", "scalar"].contains(&info.simd.as_str()));
        assert_eq!(info.simd, simd_name(kernels::simd::level()));
        let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
            assert!(info.model.ends_with(" CPU"), "{}", info.model);
            return;
        };
        let first_model = text
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string());
        if let Some(m) = first_model {
            assert_eq!(info.model, m);
        }
        let processors = text.lines().filter(|l| l.starts_with("processor")).count();
        // This process may be limited to fewer CPUs than the machine lists.
        assert!(info.logical_cores <= processors.max(1), "{info:?}");
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut physical = None;
        for line in text.lines() {
            let value = line.split_once(':').map(|(_, v)| v.trim().to_string());
            if line.starts_with("physical id") {
                physical = value;
            } else if line.starts_with("core id") {
                if let (Some(p), Some(c)) = (physical.clone(), value) {
                    pairs.push((p, c));
                }
            }
        }
        pairs.sort();
        pairs.dedup();
        if pairs.is_empty() {
            assert_eq!(info.physical_cores, None);
        } else {
            assert_eq!(info.physical_cores, Some(pairs.len()));
            assert!(pairs.len() <= processors);
        }
    }
}
