//! A seeded mutation fuzzer that runs on stable Rust as ordinary tests (`cargo fuzz` needs
//! nightly). Each target replays its committed corpus (`tests/fuzz_corpus/<target>/`), then
//! feeds mutations of it (bit flips, byte inserts and deletes, duplicated ranges, splices of
//! two inputs, interesting integers in binary and as text) and asserts that nothing panics and,
//! where the target promises it, that errors are one line.
//!
//! Targets: the safetensors validator (and, for every input it accepts, the `safetensors`
//! crate and candle load it), the LDM layout inference (architecture, name maps, configs), the
//! graph parser, PNG text-chunk reading (with the recipe import behind it), the A1111 parser and
//! the ComfyUI importer.
//!
//! - `FUZZ_ITERS=N`: mutations per target (default 2000, ≤ 10 s per target in a debug build);
//! - `FUZZ_SECONDS=S`: mutate for S seconds per target instead (long local runs);
//! - `FUZZ_SEED=N`: another seed (default 1). A crashing input is written under
//!   `$TMPDIR/defect-studio-fuzz/` and named in the failure: fix it and add it to the corpus;
//! - `FUZZ_KEEP_GOING=1`: record every failing input and go on (the test fails at the end).
//!
//! `cargo test -p engine --test fuzz -- --nocapture` prints iterations and time per target.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use candle_core::DType;
use engine::sd::ldm;

/// splitmix64: a small, good, seedable generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    3,
    7,
    8,
    9,
    16,
    64,
    127,
    128,
    255,
    256,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    (1 << 32) + 1,
    1 << 62,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

const INTERESTING_TEXT: &[&str] = &[
    "0",
    "1",
    "-1",
    "3",
    "9",
    "24",
    "4294967296",
    "4611686018427387904",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "1e309",
    "0.5",
    "null",
    "[]",
    "{}",
    "\"\"",
    "true",
    ".",
    ",",
    "\n",
    "\\u0000",
];

/// Largest mutated input (keeps one iteration cheap).
const MAX_LEN: usize = 256 << 10;

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        let pos = if len == 0 { 0 } else { rng.below(len) };
        match rng.below(10) {
            0 if len > 0 => v[pos] ^= 1 << rng.below(8),
            1 if len > 0 => v[pos] = rng.next() as u8,
            2 => {
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(pos..pos, bytes);
            }
            3 if len > 0 => {
                let n = 1 + rng.below(16.min(len - pos).max(1));
                v.drain(pos..(pos + n).min(len));
            }
            4 if len > 0 => {
                // Copy a range to another place (duplicates lines, keys, tensors).
                let n = 1 + rng.below(64.min(len - pos));
                let chunk = v[pos..pos + n].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, chunk);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(other.len() + 1);
                v.truncate(pos);
                v.extend_from_slice(&other[cut..]);
            }
            6 if len > 0 => {
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = if rng.below(2) == 0 {
                    x.to_le_bytes()
                } else {
                    x.to_be_bytes()
                };
                for (i, b) in bytes.iter().take(width).enumerate() {
                    if let Some(slot) = v.get_mut(pos + i) {
                        *slot = *b;
                    }
                }
            }
            7 => {
                // Replace the run of digits at or after `pos` with an interesting number.
                let start = (pos..len).find(|&i| v[i].is_ascii_digit());
                let text = INTERESTING_TEXT[rng.below(INTERESTING_TEXT.len())].as_bytes();
                match start {
                    Some(s) => {
                        let e = (s..len).find(|&i| !v[i].is_ascii_digit()).unwrap_or(len);
                        v.splice(s..e, text.iter().copied());
                    }
                    None => {
                        v.splice(pos..pos, text.iter().copied());
                    }
                }
            }
            _ => {
                let text = INTERESTING_TEXT[rng.below(INTERESTING_TEXT.len())].as_bytes();
                v.splice(pos..pos, text.iter().copied());
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}

/// What one run of a target found out about an input.
type Outcome = Result<(), String>;

struct Target {
    name: &'static str,
    /// Errors must be one line.
    one_line_errors: bool,
    /// Re-shapes a mutated input before it is run (e.g. fixes PNG checksums).
    fixup: fn(Vec<u8>) -> Vec<u8>,
    run: fn(&[u8]) -> Outcome,
}

fn corpus_dir(name: &str) -> PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    root.join("tests/fuzz_corpus").join(name)
}

fn load_corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn env_u64(key: &str) -> Option<u64> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `input` through the target: `Some(problem)` for a panic or a multi-line error.
fn check_one(t: &Target, input: &[u8]) -> Option<String> {
    let result = catch_unwind(AssertUnwindSafe(|| (t.run)(input)));
    match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) if t.one_line_errors && (e.contains('\n') || e.trim().is_empty()) => {
            Some(format!("error is not one line: {e:?}"))
        }
        Ok(Err(_)) => None,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".into());
            Some(format!("panicked: {msg}"))
        }
    }
}

/// Saves a failing input and describes it.
fn report(t: &Target, label: &str, problem: &str, input: &[u8]) -> String {
    let dir = std::env::temp_dir().join("defect-studio-fuzz");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!(
        "{}-{}.bin",
        t.name,
        &engine::hashing::sha256_hex(input)[..16]
    ));
    std::fs::write(&file, input).unwrap();
    format!(
        "fuzz target {} ({label}) {problem}; input saved to {} (add it to tests/fuzz_corpus/{}/ once fixed)",
        t.name,
        file.display(),
        t.name
    )
}

fn fuzz(t: Target) {
    let corpus = load_corpus(t.name);
    let seed = env_u64("FUZZ_SEED").unwrap_or(1);
    let deadline = env_u64("FUZZ_SECONDS").map(Duration::from_secs);
    let iters = env_u64("FUZZ_ITERS").unwrap_or(2000);
    let keep_going = env_u64("FUZZ_KEEP_GOING").is_some_and(|v| v != 0);
    // Distinct problems found (the same bug is reported once, with its first input).
    let mut failures: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut fail = |label: &str, problem: String, input: &[u8]| {
        // Panic messages name the place; error texts differ per input, so keep their start.
        let key: String = problem.chars().take(60).collect();
        if seen.insert(key) {
            let r = report(&t, label, &problem, input);
            assert!(keep_going, "{r}");
            eprintln!("{r}");
            failures.push(r);
        }
    };
    let t0 = Instant::now();
    for (name, bytes) in &corpus {
        if let Some(p) = check_one(&t, bytes) {
            fail(name, p, bytes);
        }
    }
    let inputs: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.clone()).collect();
    // Mix the target name into the seed so targets explore differently.
    let name_seed = t
        .name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b.into()));
    let mut rng = Rng(seed ^ name_seed);
    let mut n = 0u64;
    loop {
        match deadline {
            Some(d) if t0.elapsed() >= d => break,
            None if n >= iters => break,
            _ => {}
        }
        let base = &inputs[rng.below(inputs.len())];
        let input = (t.fixup)(mutate(&mut rng, base, &inputs));
        if let Some(p) = check_one(&t, &input) {
            fail(&format!("seed {seed}, mutation {n}"), p, &input);
        }
        n += 1;
    }
    println!(
        "fuzz {}: {} corpus inputs + {n} mutations in {:.1} s, {} failing",
        t.name,
        corpus.len(),
        t0.elapsed().as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn same(v: Vec<u8>) -> Vec<u8> {
    v
}

// ------------------------------------------------------------------------------ targets ---

/// The validator; whatever it accepts, the `safetensors` crate and candle must load.
fn safetensors_target(data: &[u8]) -> Outcome {
    let header = engine::models::safetensors_check::check_bytes(data)?;
    let st = safetensors::SafeTensors::deserialize(data)
        .map_err(|e| format!("validator accepted what safetensors refuses: {e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(st.len(), header.tensors.len());
    candle_core::safetensors::load_buffer(data, &candle_core::Device::Cpu)
        .unwrap_or_else(|e| panic!("validator accepted what candle cannot load: {e}"));
    Ok(())
}

/// `name<TAB>d0,d1,...` lines (a checkpoint's names and shapes) through architecture
/// detection, every component's name map and config.
fn ldm_target(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let entries = text.lines().filter_map(|line| {
        let (name, dims) = line.rsplit_once('\t')?;
        let shape: Option<Vec<usize>> = dims
            .split(',')
            .filter(|d| !d.is_empty())
            .map(|d| d.trim().parse().ok())
            .collect();
        Some((name.to_string(), shape?, DType::F32))
    });
    let header = ldm::Header::from_entries(entries);
    let arch = ldm::detect_arch(&header).map_err(|e| e.to_string())?;
    let mut first_err = None;
    for &c in arch.components() {
        let r = ldm::component_map(&header, arch, c)
            .and_then(|_| ldm::infer_config(&header, arch, c, &serde_json::Map::new()));
        if let Err(e) = r {
            first_err.get_or_insert(e.to_string());
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn graph_target(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let doc = nodes::GraphDoc::from_json(&text).map_err(|e| e.to_string())?;
    // Validation reports every problem (one per line), so only "no panic" is asserted here.
    let _ = nodes::validate(&doc, &engine::interop::catalogue());
    Ok(())
}

/// Recomputes every chunk's CRC, so mutations reach the chunk parsers instead of stopping at
/// the checksum.
fn fix_png_crcs(mut v: Vec<u8>) -> Vec<u8> {
    let mut pos = 8;
    while pos + 12 <= v.len() {
        let len = u32::from_be_bytes([v[pos], v[pos + 1], v[pos + 2], v[pos + 3]]) as usize;
        let Some(end) = (pos + 8).checked_add(len).filter(|&e| e + 4 <= v.len()) else {
            break;
        };
        let mut crc = flate2::Crc::new();
        crc.update(&v[pos + 4..end]);
        v[end..end + 4].copy_from_slice(&crc.sum().to_be_bytes());
        pos = end + 4;
    }
    v
}

fn png_target(data: &[u8]) -> Outcome {
    use engine::interop::png_meta;
    png_meta::read_text_chunks(data).map_err(|e| e.to_string())?;
    png_meta::graph_from_png_with_report(data).map_err(|e| e.to_string())?;
    Ok(())
}

fn a1111_target(data: &[u8]) -> Outcome {
    use engine::interop::a1111;
    let text = String::from_utf8_lossy(data);
    let _ = a1111::extract_lora_tags(&text);
    let p = a1111::parse_parameters(&text).map_err(|e| e.to_string())?;
    let r = a1111::to_graph_with_report(&p, &a1111::GraphOptions::default());
    let _ = a1111::format_parameters(&p);
    let _ = nodes::validate(&r.graph, &engine::interop::catalogue());
    Ok(())
}

fn comfy_target(data: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(data);
    let r = engine::interop::comfy::import_workflow(&text).map_err(|e| e.to_string())?;
    let _ = nodes::validate(&r.graph, &engine::interop::catalogue());
    Ok(())
}

#[test]
fn fuzz_safetensors_header() {
    fuzz(Target {
        name: "safetensors",
        one_line_errors: true,
        fixup: same,
        run: safetensors_target,
    });
}

#[test]
fn fuzz_ldm_layout() {
    fuzz(Target {
        name: "ldm_layout",
        one_line_errors: true,
        fixup: same,
        run: ldm_target,
    });
}

#[test]
fn fuzz_graph_parser() {
    fuzz(Target {
        name: "graph",
        one_line_errors: true,
        fixup: same,
        run: graph_target,
    });
}

#[test]
fn fuzz_png_text_chunks() {
    fuzz(Target {
        name: "png_text",
        one_line_errors: false,
        fixup: fix_png_crcs,
        run: png_target,
    });
}

#[test]
fn fuzz_a1111_parser() {
    fuzz(Target {
        name: "a1111",
        one_line_errors: false,
        fixup: same,
        run: a1111_target,
    });
}

#[test]
fn fuzz_comfy_importer() {
    fuzz(Target {
        name: "comfy",
        one_line_errors: false,
        fixup: same,
        run: comfy_target,
    });
}

/// The harness itself finds what it is built to find: a target that panics on some byte
/// pattern is caught within the default budget.
#[test]
fn harness_catches_a_planted_panic() {
    fn planted(data: &[u8]) -> Outcome {
        // Inserting this interesting integer as text is one of the mutations; no corpus file
        // holds it.
        let needle = b"-9223372036854775808";
        if data.windows(needle.len()).any(|w| w == needle) {
            panic!("planted");
        }
        Ok(())
    }
    let r = catch_unwind(|| {
        fuzz(Target {
            name: "safetensors",
            one_line_errors: false,
            fixup: same,
            run: planted,
        })
    });
    let msg = r
        .err()
        .and_then(|p| p.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    assert!(msg.contains("panicked: planted"), "{msg:?}");
}
