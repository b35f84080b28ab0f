//! A restricted reader for legacy (non-zip) `torch.save` files holding a state dict.
//!
//! The legacy format is five pickles followed by raw storage bytes:
//! 1. the magic number `0x1950a86a20f9469cfc6c` (a `LONG1`),
//! 2. the protocol version (1001),
//! 3. a sys-info dict (`little_endian`, type sizes),
//! 4. the main pickle: here an `OrderedDict` of tensors, each built by
//!    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`
//!    where `storage` is a persistent id `('storage', torch.FloatStorage, key, location, numel,
//!    view_metadata)`,
//! 5. the list of storage keys, in the order their data follows; each storage's data is an
//!    8-byte little-endian element count and then the elements.
//!
//! Nothing is executed: the reader is a small pickle machine that knows only the opcodes an
//! `OrderedDict` of tensors needs and only the globals `collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and the torch storage
//! classes. Any other global is refused by name (`refused global os.system`), any other opcode
//! by its byte and position. Every size, offset and stride is checked with checked arithmetic.
//! The zip format (the default since torch 1.6) is recognised and refused with a hint.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::{EngineError, Result};

/// The legacy format's magic number, as `LONG1` little-endian bytes.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
/// The only legacy protocol version torch has written.
const PROTOCOL_VERSION: i64 = 1001;
/// Containers nested deeper than this are refused (a hostile file could otherwise build a
/// chain deep enough to overflow the stack when it is dropped).
const MAX_DEPTH: u32 = 64;

/// Element type of a torch storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PthDtype {
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl PthDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            PthDtype::F64 | PthDtype::I64 => 8,
            PthDtype::F32 | PthDtype::I32 => 4,
            PthDtype::F16 | PthDtype::BF16 | PthDtype::I16 => 2,
            PthDtype::I8 | PthDtype::U8 | PthDtype::Bool => 1,
        }
    }

    /// The matching safetensors dtype.
    pub fn safetensors(self) -> safetensors::Dtype {
        match self {
            PthDtype::F64 => safetensors::Dtype::F64,
            PthDtype::F32 => safetensors::Dtype::F32,
            PthDtype::F16 => safetensors::Dtype::F16,
            PthDtype::BF16 => safetensors::Dtype::BF16,
            PthDtype::I64 => safetensors::Dtype::I64,
            PthDtype::I32 => safetensors::Dtype::I32,
            PthDtype::I16 => safetensors::Dtype::I16,
            PthDtype::I8 => safetensors::Dtype::I8,
            PthDtype::U8 => safetensors::Dtype::U8,
            PthDtype::Bool => safetensors::Dtype::BOOL,
        }
    }

    fn from_storage_class(name: &str) -> Option<PthDtype> {
        Some(match name {
            "DoubleStorage" => PthDtype::F64,
            "FloatStorage" => PthDtype::F32,
            "HalfStorage" => PthDtype::F16,
            "BFloat16Storage" => PthDtype::BF16,
            "LongStorage" => PthDtype::I64,
            "IntStorage" => PthDtype::I32,
            "ShortStorage" => PthDtype::I16,
            "CharStorage" => PthDtype::I8,
            "ByteStorage" => PthDtype::U8,
            "BoolStorage" => PthDtype::Bool,
            _ => return None,
        })
    }
}

/// One tensor of the state dict, copied out contiguous (row-major, little-endian bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct PthTensor {
    pub dtype: PthDtype,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl PthTensor {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Reads a legacy `torch.save` file holding a dict of tensors; returns the tensors in file
/// order. Errors name what was refused or is out of range (prefixed by the caller with the
/// file name).
pub fn read_legacy_state_dict(bytes: &[u8]) -> Result<Vec<(String, PthTensor)>> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(bad(
            "this is a zip-format torch file (torch >= 1.6 default); only the legacy format is \
             read: save it with torch.save(..., _use_new_zipfile_serialization=False)",
        ));
    }
    let mut r = Reader { bytes, pos: 0 };
    match run_pickle(&mut r)? {
        Val::Long(b) if b == MAGIC => {}
        _ => return Err(bad("not a legacy torch file (wrong magic number)")),
    }
    match run_pickle(&mut r)? {
        Val::Int(PROTOCOL_VERSION) => {}
        other => {
            return Err(bad(format!(
                "unsupported legacy protocol version {}",
                other.describe()
            )))
        }
    }
    let Val::Dict(info) = run_pickle(&mut r)? else {
        return Err(bad("the sys-info pickle is not a dict"));
    };
    let little = info
        .items
        .borrow()
        .iter()
        .any(|(k, v)| matches!((k, v), (Val::Str(k), Val::Bool(true)) if k == "little_endian"));
    if !little {
        return Err(bad("the file was written on a big-endian machine"));
    }
    let root = run_pickle(&mut r)?;
    let Val::List(keys) = run_pickle(&mut r)? else {
        return Err(bad("the storage-key pickle is not a list"));
    };
    let Val::Dict(root) = root else {
        return Err(bad(format!(
            "the main pickle is {}, not a dict of tensors",
            root.describe()
        )));
    };

    // Storage data, in key order.
    let mut declared: HashMap<String, (PthDtype, usize)> = HashMap::new();
    let mut entries = Vec::new();
    for (k, v) in root.items.borrow().iter() {
        let (Val::Str(name), Val::Tensor(t)) = (k, v) else {
            return Err(bad(format!(
                "the state dict maps {} to {}; only names to tensors are read",
                k.describe(),
                v.describe()
            )));
        };
        if let Some(&(dtype, numel)) = declared.get(&t.storage.key) {
            if dtype != t.storage.dtype || numel != t.storage.numel {
                return Err(bad(format!(
                    "storage {} is declared twice with different types or sizes",
                    t.storage.key
                )));
            }
        }
        declared.insert(t.storage.key.clone(), (t.storage.dtype, t.storage.numel));
        entries.push((name.clone(), t.clone()));
    }
    let mut data: HashMap<String, &[u8]> = HashMap::new();
    for key in keys.items.borrow().iter() {
        let Val::Str(key) = key else {
            return Err(bad(format!(
                "storage key {} is not a string",
                key.describe()
            )));
        };
        let count = r.u64_le().map_err(|_| {
            bad(format!(
                "truncated file: storage {key} has no element count"
            ))
        })?;
        let count = usize::try_from(count)
            .map_err(|_| bad(format!("storage {key}: element count {count} is too large")))?;
        let Some(&(dtype, numel)) = declared.get(key) else {
            return Err(bad(format!("storage {key} is not used by any tensor")));
        };
        if count != numel {
            return Err(bad(format!(
                "storage {key} has {count} elements, the pickle declares {numel}"
            )));
        }
        let len = count
            .checked_mul(dtype.size())
            .ok_or_else(|| bad(format!("storage {key}: {count} elements overflow")))?;
        let bytes = r
            .take(len)
            .map_err(|_| bad(format!("truncated file: storage {key} needs {len} bytes")))?;
        if data.insert(key.clone(), bytes).is_some() {
            return Err(bad(format!("storage {key} is listed twice")));
        }
    }
    let mut out = Vec::with_capacity(entries.len());
    // Views of one storage may repeat its bytes; more than 4× the file in all is refused.
    let mut total: usize = 0;
    for (name, t) in entries {
        let bytes = data
            .get(&t.storage.key)
            .ok_or_else(|| bad(format!("{name}: storage {} has no data", t.storage.key)))?;
        let tensor = gather(&t, bytes).map_err(|e| bad(format!("{name}: {e}")))?;
        total = total.saturating_add(tensor.data.len());
        if total > r.bytes.len().saturating_mul(4) {
            return Err(bad(format!(
                "the tensors up to {name} need more than 4× the file's size"
            )));
        }
        out.push((name, tensor));
    }
    Ok(out)
}

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::Pickle(message.into())
}

/// Copies a (possibly strided) tensor view out of its storage bytes, checking every index.
fn gather(t: &TensorRef, storage: &[u8]) -> std::result::Result<PthTensor, String> {
    let elem = t.storage.dtype.size();
    if t.size.len() != t.stride.len() {
        return Err(format!(
            "size has {} dimensions, stride {}",
            t.size.len(),
            t.stride.len()
        ));
    }
    let mut numel: usize = 1;
    let mut last = t.offset;
    for (&n, &s) in t.size.iter().zip(&t.stride) {
        numel = numel
            .checked_mul(n)
            .ok_or("the size overflows".to_string())?;
        if n > 0 {
            last = (n - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or("the strides overflow".to_string())?;
        }
    }
    // A view larger than its storage (stride 0, overlapping) would let a small file ask for
    // an arbitrarily large allocation.
    if numel > t.storage.numel {
        return Err(format!(
            "size {:?} has {numel} elements, more than its storage {} ({})",
            t.size, t.storage.key, t.storage.numel
        ));
    }
    if numel > 0 && last >= t.storage.numel {
        return Err(format!(
            "offset {} with size {:?} and stride {:?} reaches element {last}, but storage {} has {} elements",
            t.offset, t.size, t.stride, t.storage.key, t.storage.numel
        ));
    }
    let mut data = Vec::with_capacity(numel * elem);
    let mut index = vec![0usize; t.size.len()];
    for _ in 0..numel {
        let at: usize = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        data.extend_from_slice(&storage[at * elem..(at + 1) * elem]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(PthTensor {
        dtype: t.storage.dtype,
        shape: t.size.clone(),
        data,
    })
}

/// A storage named by a persistent id.
#[derive(Clone, Debug)]
struct StorageRef {
    key: String,
    dtype: PthDtype,
    numel: usize,
}

/// A tensor view of a storage.
#[derive(Clone, Debug)]
struct TensorRef {
    storage: StorageRef,
    offset: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
}

/// The allowed globals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(PthDtype),
}

#[derive(Debug)]
struct Container<T> {
    items: RefCell<Vec<T>>,
    depth: std::cell::Cell<u32>,
}

type DictItems = Container<(Val, Val)>;

#[derive(Clone, Debug)]
enum Val {
    None,
    Bool(bool),
    Int(i64),
    /// A `LONG1` integer, as its little-endian two's-complement bytes.
    Long(Vec<u8>),
    Str(String),
    Tuple(Rc<Vec<Val>>, u32),
    List(Rc<Container<Val>>),
    Dict(Rc<DictItems>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

impl Val {
    fn depth(&self) -> u32 {
        match self {
            Val::Tuple(_, d) => *d,
            Val::List(c) => c.depth.get(),
            Val::Dict(c) => c.depth.get(),
            _ => 0,
        }
    }

    fn describe(&self) -> String {
        match self {
            Val::None => "None".into(),
            Val::Bool(b) => format!("{b}"),
            Val::Int(i) => format!("{i}"),
            Val::Long(_) => "a long integer".into(),
            Val::Str(s) => format!("{:?}", s.chars().take(60).collect::<String>()),
            Val::Tuple(..) => "a tuple".into(),
            Val::List(_) => "a list".into(),
            Val::Dict(_) => "a dict".into(),
            Val::Global(g) => format!("the global {g:?}"),
            Val::Storage(_) => "a storage".into(),
            Val::Tensor(_) => "a tensor".into(),
        }
    }
}

fn tuple(items: Vec<Val>) -> Result<Val> {
    let depth = 1 + items.iter().map(Val::depth).max().unwrap_or(0);
    if depth > MAX_DEPTH {
        return Err(bad(format!("containers nested deeper than {MAX_DEPTH}")));
    }
    Ok(Val::Tuple(Rc::new(items), depth))
}

fn grow(depth: &std::cell::Cell<u32>, child: &Val) -> Result<()> {
    let d = depth.get().max(child.depth().saturating_add(1));
    if d > MAX_DEPTH {
        return Err(bad(format!("containers nested deeper than {MAX_DEPTH}")));
    }
    depth.set(d);
    Ok(())
}

fn new_container<T>() -> Rc<Container<T>> {
    Rc::new(Container {
        items: RefCell::new(Vec::new()),
        depth: std::cell::Cell::new(1),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

#[derive(Debug)]
struct Truncated;

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], Truncated> {
        let end = self.pos.checked_add(n).ok_or(Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(Truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, Truncated> {
        Ok(self.take(1)?[0])
    }
    fn u16_le(&mut self) -> std::result::Result<u16, Truncated> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32_le(&mut self) -> std::result::Result<u32, Truncated> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64_le(&mut self) -> std::result::Result<u64, Truncated> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn line(&mut self) -> std::result::Result<&'a str, Truncated> {
        let rest = self.bytes.get(self.pos..).ok_or(Truncated)?;
        let n = rest.iter().position(|&b| b == b'\n').ok_or(Truncated)?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| Truncated)?;
        self.pos += n + 1;
        Ok(s)
    }
}

/// Runs one pickle (up to its `STOP`) and returns its value.
fn run_pickle(r: &mut Reader) -> Result<Val> {
    let mut stack: Vec<Val> = Vec::new();
    let mut marks: Vec<usize> = Vec::new();
    let mut memo: HashMap<u32, Val> = HashMap::new();
    let truncated = |_| bad("truncated file: a pickle ends early");
    loop {
        let at = r.pos;
        let op = r.u8().map_err(truncated)?;
        match op {
            // PROTO
            0x80 => {
                let p = r.u8().map_err(truncated)?;
                if p > 2 {
                    return Err(bad(format!("unsupported pickle protocol {p}")));
                }
            }
            // STOP
            b'.' => {
                let v = stack.pop().ok_or_else(|| bad("empty pickle"))?;
                return Ok(v);
            }
            b'(' => marks.push(stack.len()),
            b'}' => stack.push(Val::Dict(new_container())),
            b']' => stack.push(Val::List(new_container())),
            b')' => stack.push(tuple(Vec::new())?),
            b't' => {
                let items = pop_mark(&mut stack, &mut marks)?;
                stack.push(tuple(items)?);
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                if stack.len() < n {
                    return Err(bad(format!("stack underflow at byte {at}")));
                }
                let items = stack.split_off(stack.len() - n);
                stack.push(tuple(items)?);
            }
            b'N' => stack.push(Val::None),
            0x88 => stack.push(Val::Bool(true)),
            0x89 => stack.push(Val::Bool(false)),
            b'K' => stack.push(Val::Int(i64::from(r.u8().map_err(truncated)?))),
            b'M' => stack.push(Val::Int(i64::from(r.u16_le().map_err(truncated)?))),
            b'J' => stack.push(Val::Int(i64::from(r.u32_le().map_err(truncated)? as i32))),
            // LONG1
            0x8a => {
                let n = usize::from(r.u8().map_err(truncated)?);
                let b = r.take(n).map_err(truncated)?;
                stack.push(Val::Long(b.to_vec()));
            }
            // BINUNICODE / SHORT_BINUNICODE
            b'X' | 0x8c => {
                let n = if op == b'X' {
                    r.u32_le().map_err(truncated)? as usize
                } else {
                    usize::from(r.u8().map_err(truncated)?)
                };
                let b = r.take(n).map_err(truncated)?;
                let s = std::str::from_utf8(b)
                    .map_err(|_| bad(format!("invalid UTF-8 string at byte {at}")))?;
                stack.push(Val::Str(s.to_string()));
            }
            // BINPUT / LONG_BINPUT
            b'q' | b'r' => {
                let i = if op == b'q' {
                    u32::from(r.u8().map_err(truncated)?)
                } else {
                    r.u32_le().map_err(truncated)?
                };
                let v = stack
                    .last()
                    .ok_or_else(|| bad(format!("stack underflow at byte {at}")))?;
                memo.insert(i, v.clone());
            }
            // BINGET / LONG_BINGET
            b'h' | b'j' => {
                let i = if op == b'h' {
                    u32::from(r.u8().map_err(truncated)?)
                } else {
                    r.u32_le().map_err(truncated)?
                };
                let v = memo
                    .get(&i)
                    .ok_or_else(|| bad(format!("memo entry {i} is missing (byte {at})")))?;
                stack.push(v.clone());
            }
            // GLOBAL
            b'c' => {
                let module = r.line().map_err(truncated)?;
                let name = r.line().map_err(truncated)?;
                stack.push(Val::Global(allowed_global(module, name)?));
            }
            // REDUCE
            b'R' => {
                let args = pop(&mut stack, at)?;
                let f = pop(&mut stack, at)?;
                stack.push(reduce(f, args)?);
            }
            // BUILD: only an OrderedDict's state (its `_metadata`), which is dropped.
            b'b' => {
                let _state = pop(&mut stack, at)?;
                if !matches!(stack.last(), Some(Val::Dict(_))) {
                    return Err(bad(format!(
                        "BUILD on something other than a dict (byte {at})"
                    )));
                }
            }
            // BINPERSID
            b'Q' => {
                let pid = pop(&mut stack, at)?;
                stack.push(persistent_load(pid)?);
            }
            // SETITEM / SETITEMS
            b's' | b'u' => {
                let items = if op == b's' {
                    if stack.len() < 2 {
                        return Err(bad(format!("stack underflow at byte {at}")));
                    }
                    stack.split_off(stack.len() - 2)
                } else {
                    pop_mark(&mut stack, &mut marks)?
                };
                if items.len() % 2 != 0 {
                    return Err(bad(format!("odd number of dict items at byte {at}")));
                }
                let Some(Val::Dict(d)) = stack.last() else {
                    return Err(bad(format!(
                        "SETITEM on something other than a dict (byte {at})"
                    )));
                };
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    grow(&d.depth, &v)?;
                    d.items.borrow_mut().push((k, v));
                }
            }
            // APPEND / APPENDS
            b'a' | b'e' => {
                let items = if op == b'a' {
                    vec![pop(&mut stack, at)?]
                } else {
                    pop_mark(&mut stack, &mut marks)?
                };
                let Some(Val::List(l)) = stack.last() else {
                    return Err(bad(format!(
                        "APPEND on something other than a list (byte {at})"
                    )));
                };
                for v in items {
                    grow(&l.depth, &v)?;
                    l.items.borrow_mut().push(v);
                }
            }
            other => {
                return Err(bad(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {at}"
                )))
            }
        }
    }
}

fn pop(stack: &mut Vec<Val>, at: usize) -> Result<Val> {
    stack
        .pop()
        .ok_or_else(|| bad(format!("stack underflow at byte {at}")))
}

fn pop_mark(stack: &mut Vec<Val>, marks: &mut Vec<usize>) -> Result<Vec<Val>> {
    let m = marks.pop().ok_or_else(|| bad("MARK missing"))?;
    if m > stack.len() {
        return Err(bad("MARK beyond the stack"));
    }
    Ok(stack.split_off(m))
}

fn allowed_global(module: &str, name: &str) -> Result<Global> {
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", n) => PthDtype::from_storage_class(n)
            .map(Global::Storage)
            .ok_or_else(|| bad(format!("refused global {module}.{name}"))),
        _ => Err(bad(format!("refused global {module}.{name}"))),
    }
}

fn as_usize(v: &Val, what: &str) -> Result<usize> {
    match v {
        Val::Int(i) => usize::try_from(*i).map_err(|_| bad(format!("{what} {i} is negative"))),
        other => Err(bad(format!(
            "{what} is {}, not an integer",
            other.describe()
        ))),
    }
}

fn usize_tuple(v: &Val, what: &str) -> Result<Vec<usize>> {
    match v {
        Val::Tuple(items, _) => items.iter().map(|x| as_usize(x, what)).collect(),
        other => Err(bad(format!("{what} is {}, not a tuple", other.describe()))),
    }
}

fn reduce(f: Val, args: Val) -> Result<Val> {
    let Val::Tuple(args, _) = args else {
        return Err(bad("REDUCE arguments are not a tuple"));
    };
    match f {
        Val::Global(Global::OrderedDict) if args.is_empty() => Ok(Val::Dict(new_container())),
        Val::Global(Global::RebuildTensorV2) => {
            if !(6..=7).contains(&args.len()) {
                return Err(bad(format!(
                    "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                    args.len()
                )));
            }
            let Val::Storage(storage) = &args[0] else {
                return Err(bad(
                    "_rebuild_tensor_v2: the first argument is not a storage",
                ));
            };
            Ok(Val::Tensor(TensorRef {
                storage: storage.clone(),
                offset: as_usize(&args[1], "storage offset")?,
                size: usize_tuple(&args[2], "size")?,
                stride: usize_tuple(&args[3], "stride")?,
            }))
        }
        Val::Global(Global::RebuildParameter) => match args.first() {
            Some(t @ Val::Tensor(_)) => Ok(t.clone()),
            _ => Err(bad(
                "_rebuild_parameter: the first argument is not a tensor",
            )),
        },
        other => Err(bad(format!("cannot call {}", other.describe()))),
    }
}

fn persistent_load(pid: Val) -> Result<Val> {
    let Val::Tuple(items, _) = pid else {
        return Err(bad("a persistent id is not a tuple"));
    };
    match items.as_slice() {
        [Val::Str(tag), Val::Global(Global::Storage(dtype)), Val::Str(key), Val::Str(_location), numel, _view]
            if tag == "storage" =>
        {
            Ok(Val::Storage(StorageRef {
                key: key.clone(),
                dtype: *dtype,
                numel: as_usize(numel, "storage size")?,
            }))
        }
        _ => Err(bad(
            "a persistent id is not ('storage', class, key, location, size, view)",
        )),
    }
}

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
