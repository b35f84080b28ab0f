//! The one safetensors validator: every file the engine reads as safetensors (the model
//! manager's scan behind `models list`, checkpoint, VAE, LoRA, ISNet and trainer-checkpoint
//! loaders) goes through [`read_header`] or [`check_bytes`] first, so a file the scan calls
//! readable is one the loaders accept, and a file they refuse is listed with the same reason.
//!
//! On top of what the `safetensors` crate's own reader checks (which is run last, as the
//! authority the memory-mapped loaders use), it:
//! - recognises PyTorch pickles (`\x80\x02`..`\x80\x05`, legacy torch files included) and zip
//!   checkpoints (`PK\x03\x04`, `torch.save` since 1.6) by their magic bytes and names them;
//! - names the tensor or metadata key at fault in every message: sizes computed with checked
//!   arithmetic (shape products and byte sizes that overflow, negative or fractional
//!   dimensions), `data_offsets` in range, ordered, non-overlapping and covering exactly the
//!   data section, dtypes known *and* loadable by candle, `__metadata__` values strings only;
//! - refuses duplicate keys (JSON objects keep the last one silently).
//!
//! Only the header is read from disk (at most [`MAX_HEADER_LEN`] bytes), never the data.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;
use std::path::Path;

use safetensors::Dtype;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{EngineError, Result};

/// The largest header accepted, in bytes (the `safetensors` crate's own limit).
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// Dtypes every loader can read (those candle converts to numbers); the others the
/// `safetensors` format knows (BOOL, I8, U16, U64, C64, F4, F6, F8 E5M2, E8M0, FNUZ) are refused.
const SUPPORTED: &[Dtype] = &[
    Dtype::U8,
    Dtype::U32,
    Dtype::I16,
    Dtype::I32,
    Dtype::I64,
    Dtype::BF16,
    Dtype::F16,
    Dtype::F32,
    Dtype::F64,
    Dtype::F8_E4M3,
];

/// Extensions of pickle-based PyTorch checkpoints, refused before the file is opened.
const PICKLE_EXTENSIONS: &[&str] = &["ckpt", "pt", "pth", "bin", "pkl", "pickle"];

/// A validated safetensors header: tensor names with dtype (`"F32"`, …) and shape, and the
/// `__metadata__` strings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub tensors: BTreeMap<String, (String, Vec<u64>)>,
    pub metadata: BTreeMap<String, String>,
}

/// Refuses pickle checkpoints (`.ckpt`, `.pt`, `.pth`, `.bin`, `.pkl`, `.pickle`) by
/// extension, before a byte of them is read: loading one can run code.
pub fn refuse_pickle_extension(path: &Path) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if PICKLE_EXTENSIONS.contains(&ext.as_str()) {
        return Err(EngineError::Plan(format!(
            "{}: pickle checkpoints (.{ext}) are refused, because loading one can run code; \
             convert it to .safetensors first (e.g. with diffusers' or kohya's conversion \
             scripts, or safetensors.torch.save_file)",
            path.display()
        )));
    }
    Ok(())
}

/// Reads and validates the header of the safetensors file at `path`. Errors name the file,
/// then the reason (the same reason [`check_file`] gives).
pub fn read_header(path: &Path) -> Result<Header> {
    refuse_pickle_extension(path)?;
    check_file(path).map_err(|m| EngineError::Plan(format!("{}: {m}", path.display())))
}

/// [`read_header`] without the extension check, giving the bare reason (no path) on error:
/// what the model manager lists a file as unreadable with.
pub fn check_file(path: &Path) -> std::result::Result<Header, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let size = meta.len();
    let mut start = Vec::with_capacity(16);
    (&mut f)
        .take(16)
        .read_to_end(&mut start)
        .map_err(|e| format!("cannot read: {e}"))?;
    let n = check_start(&start, size)?;
    // `n` is at most MAX_HEADER_LEN and fits in the file (checked above); the first bytes of
    // the header are already in `start`.
    let mut json = start.get(8..).unwrap_or_default().to_vec();
    let have = json.len() as u64;
    if have >= n {
        json.truncate(n as usize);
    } else {
        (&mut f)
            .take(n - have)
            .read_to_end(&mut json)
            .map_err(|e| format!("cannot read the header: {e}"))?;
    }
    if json.len() as u64 != n {
        return Err(format!(
            "truncated: the header is {n} bytes but only {} could be read",
            json.len()
        ));
    }
    check_header(&json, size - 8 - n)
}

/// Validates a whole safetensors file held in memory (header and data).
pub fn check_bytes(bytes: &[u8]) -> std::result::Result<Header, String> {
    let n = check_start(&bytes[..bytes.len().min(16)], bytes.len() as u64)?;
    // check_start guarantees 8 + n <= bytes.len().
    let end = 8 + n as usize;
    check_header(&bytes[8..end], (bytes.len() - end) as u64)
}

/// What `start` (the first bytes of a file of `size` bytes) is, if it is a PyTorch
/// checkpoint rather than safetensors.
pub fn sniff_pytorch(start: &[u8]) -> Option<&'static str> {
    match start {
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(
            "this is a PyTorch zip checkpoint (torch.save since PyTorch 1.6), not safetensors; \
             pickles are refused because loading one can run code: convert it to .safetensors first",
        ),
        [0x80, 2..=5, ..] => Some(
            "this is a PyTorch pickle checkpoint, not safetensors; pickles are refused because \
             loading one can run code: convert it to .safetensors first",
        ),
        _ => None,
    }
}

/// Checks the 8-byte header length against the file size and the first header byte, and
/// recognises PyTorch files; returns the header length.
fn check_start(start: &[u8], size: u64) -> std::result::Result<u64, String> {
    let Some(len_bytes) = start.get(..8) else {
        return Err(sniff_pytorch(start).map(str::to_string).unwrap_or_else(|| {
            format!("not a safetensors file: {size} bytes, too short for the 8-byte header length")
        }));
    };
    let mut le = [0u8; 8];
    le.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(le);
    let fits = n <= size.saturating_sub(8);
    let opens = start.get(8) == Some(&b'{');
    if !(fits && opens) {
        if let Some(kind) = sniff_pytorch(start) {
            return Err(kind.into());
        }
    }
    if n > MAX_HEADER_LEN {
        return Err(format!(
            "not a safetensors file: header length {n} is above the {MAX_HEADER_LEN}-byte limit"
        ));
    }
    if !fits {
        return Err(format!(
            "not a safetensors file, or truncated: header length {n} does not fit in a file of \
             {size} bytes"
        ));
    }
    if !opens {
        return Err("not a safetensors file: the header is not a JSON object".into());
    }
    Ok(n)
}

/// A JSON object's entries in file order, duplicates kept (so they can be refused).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry::<String, Value>()? {
                    v.push(entry);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// A name for messages: control characters escaped (a message stays one line), at most ~100
/// characters.
fn show(name: &str) -> String {
    let s: String = name.escape_debug().collect();
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

/// At most ~100 characters of a JSON value, for messages.
fn quote(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One tensor entry, checked on its own.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<u64>,
    begin: u64,
    end: u64,
}

fn check_entry(name: &str, v: &Value, data_len: u64) -> std::result::Result<Entry, String> {
    let t = |m: String| format!("tensor `{}`: {m}", show(name));
    if name.chars().any(char::is_control) {
        return Err(t("the name has control characters".into()));
    }
    let Value::Object(o) = v else {
        return Err(t(format!("entry is {}, not an object", kind(v))));
    };
    let dtype_v = o.get("dtype").ok_or_else(|| t("no dtype".into()))?;
    let dtype: Dtype = serde_json::from_value(dtype_v.clone())
        .map_err(|_| t(format!("unknown dtype {}", quote(dtype_v))))?;
    if !SUPPORTED.contains(&dtype) {
        return Err(t(format!(
            "dtype {dtype:?} cannot be loaded (supported: {})",
            SUPPORTED
                .iter()
                .map(|d| format!("{d:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let Some(Value::Array(dims)) = o.get("shape") else {
        return Err(t("no shape array".into()));
    };
    let mut shape = Vec::with_capacity(dims.len().min(64));
    for d in dims {
        match d.as_u64() {
            Some(u) => shape.push(u),
            None if d.as_i64().is_some() => {
                return Err(t(format!("shape has a negative dimension {d}")))
            }
            None => {
                return Err(t(format!(
                    "shape dimension {} is not a non-negative integer",
                    quote(d)
                )))
            }
        }
    }
    let bytes = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .and_then(|n| usize::try_from(n).ok())
        .and_then(|n| n.checked_mul(dtype.bitsize()))
        .map(|bits| (bits % 8 == 0).then_some(bits / 8))
        .ok_or_else(|| {
            t(format!(
                "shape {shape:?} of {dtype:?} has a size that overflows"
            ))
        })?
        .ok_or_else(|| {
            t(format!(
                "shape {shape:?} of {dtype:?} is not a whole number of bytes"
            ))
        })? as u64;
    let offs = o
        .get("data_offsets")
        .ok_or_else(|| t("no data_offsets".into()))?;
    let pair = match offs {
        Value::Array(a) if a.len() == 2 => a[0].as_u64().zip(a[1].as_u64()),
        _ => None,
    };
    let Some((begin, end)) = pair else {
        return Err(t(format!(
            "data_offsets must be two non-negative integers, found {}",
            quote(offs)
        )));
    };
    if begin > end {
        return Err(t(format!(
            "data_offsets [{begin}, {end}] end before they begin"
        )));
    }
    if end > data_len {
        return Err(t(format!(
            "data [{begin}, {end}] lies outside the file's {data_len} data bytes (truncated?)"
        )));
    }
    if end - begin != bytes {
        return Err(t(format!(
            "data_offsets [{begin}, {end}] hold {} bytes, but shape {shape:?} of {dtype:?} needs {bytes}",
            end - begin
        )));
    }
    Ok(Entry {
        name: name.to_string(),
        dtype,
        shape,
        begin,
        end,
    })
}

/// Validates a header's JSON text (`json`, without the 8-byte length) for a data section of
/// `data_len` bytes. Errors give the reason, naming the tensor or metadata key.
pub fn check_header(json: &[u8], data_len: u64) -> std::result::Result<Header, String> {
    let text = std::str::from_utf8(json).map_err(|e| {
        format!(
            "corrupt header: not UTF-8 text (at byte {})",
            e.valid_up_to()
        )
    })?;
    let Entries(entries) =
        serde_json::from_str(text).map_err(|e| format!("corrupt header: {e}"))?;
    let mut seen = HashSet::with_capacity(entries.len());
    let mut header = Header::default();
    let mut checked = Vec::with_capacity(entries.len());
    for (name, v) in &entries {
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "corrupt header: the key `{}` appears twice",
                show(name)
            ));
        }
        if name == "__metadata__" {
            match v {
                Value::Null => {}
                Value::Object(m) => {
                    for (k, v) in m {
                        let Value::String(s) = v else {
                            return Err(format!(
                                "`__metadata__` value of `{}` is {}, not a string",
                                show(k),
                                kind(v)
                            ));
                        };
                        header.metadata.insert(k.clone(), s.clone());
                    }
                }
                other => {
                    return Err(format!(
                        "`__metadata__` is {}, not an object of strings",
                        kind(other)
                    ))
                }
            }
            continue;
        }
        checked.push(check_entry(name, v, data_len)?);
    }
    // The data section is the tensors' bytes back to back: no overlap, no gap, nothing after.
    checked.sort_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    let mut cursor = 0u64;
    let mut prev: Option<&Entry> = None;
    for e in &checked {
        if e.begin < cursor {
            let p = show(prev.map_or("", |p| p.name.as_str()));
            return Err(format!(
                "tensor `{}`: data_offsets [{}, {}] overlap tensor `{p}`'s (ending at {cursor})",
                show(&e.name),
                e.begin,
                e.end
            ));
        }
        if e.begin > cursor {
            return Err(format!(
                "tensor `{}`: data_offsets [{}, {}] leave a gap of {} bytes before it \
                 (tensors must cover the data section back to back)",
                show(&e.name),
                e.begin,
                e.end,
                e.begin - cursor
            ));
        }
        cursor = e.end;
        prev = Some(e);
    }
    if cursor != data_len {
        return Err(format!(
            "the data section has {data_len} bytes but the tensors cover {cursor}: \
             {} bytes belong to no tensor",
            data_len - cursor
        ));
    }
    // The reader the memory-mapped loaders use must agree (it is the authority).
    let md: safetensors::tensor::Metadata = serde_json::from_str(text)
        .map_err(|e| format!("refused by the safetensors reader: {e}"))?;
    if md.data_len() as u64 != data_len {
        return Err(format!(
            "refused by the safetensors reader: data length {} differs from the file's {data_len}",
            md.data_len()
        ));
    }
    for e in checked {
        header
            .tensors
            .insert(e.name, (format!("{:?}", e.dtype), e.shape));
    }
    Ok(header)
}

/// Validates `path` (through [`read_header`]) and memory-maps it for candle.
pub fn open_mmap(path: &Path) -> Result<(candle_core::safetensors::MmapedSafetensors, Header)> {
    let header = read_header(path)?;
    // SAFETY: the file is mapped read-only; as for every memory-mapped checkpoint, it must not
    // be modified by another process while it is open.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
        .map_err(|e| EngineError::Plan(format!("{}: {e}", path.display())))?;
    Ok((st, header))
}
