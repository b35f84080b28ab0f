//! A small, dependency-free reader for ONNX model files.
//!
//! ONNX files are protobuf messages (`ModelProto`). This module implements
//! just enough of the protobuf wire format (varints, length-delimited fields,
//! fixed32/fixed64, skipping of unknown fields) to read the graph's nodes,
//! their attributes, and the initializer tensors. It does not need the
//! `.proto` schema or any code generator.
//!
//! Every error names the absolute byte offset in the input and the message /
//! field being read, and the reader never panics on malformed input.

use std::fmt::Write as _;

/// ONNX `TensorProto.DataType` code for 32-bit floats.
pub const DT_FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType` code for unsigned 8-bit integers.
pub const DT_UINT8: i32 = 2;
/// ONNX `TensorProto.DataType` code for signed 8-bit integers.
pub const DT_INT8: i32 = 3;
/// ONNX `TensorProto.DataType` code for unsigned 16-bit integers.
pub const DT_UINT16: i32 = 4;
/// ONNX `TensorProto.DataType` code for signed 16-bit integers.
pub const DT_INT16: i32 = 5;
/// ONNX `TensorProto.DataType` code for signed 32-bit integers.
pub const DT_INT32: i32 = 6;
/// ONNX `TensorProto.DataType` code for signed 64-bit integers.
pub const DT_INT64: i32 = 7;
/// ONNX `TensorProto.DataType` code for strings.
pub const DT_STRING: i32 = 8;
/// ONNX `TensorProto.DataType` code for booleans.
pub const DT_BOOL: i32 = 9;
/// ONNX `TensorProto.DataType` code for IEEE half floats.
pub const DT_FLOAT16: i32 = 10;
/// ONNX `TensorProto.DataType` code for 64-bit floats.
pub const DT_DOUBLE: i32 = 11;
/// ONNX `TensorProto.DataType` code for unsigned 32-bit integers.
pub const DT_UINT32: i32 = 12;
/// ONNX `TensorProto.DataType` code for unsigned 64-bit integers.
pub const DT_UINT64: i32 = 13;
/// ONNX `TensorProto.DataType` code for bfloat16.
pub const DT_BFLOAT16: i32 = 16;

/// A parsed ONNX model: the graph's nodes (in file order) and initializers.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxModel {
    /// Graph nodes in the order they appear in the file (topological for valid models).
    pub nodes: Vec<OnnxNode>,
    /// Graph initializers (constant tensors, i.e. the weights).
    pub initializers: Vec<OnnxTensor>,
}

/// One graph node (`NodeProto`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OnnxNode {
    /// Node name, e.g. `/stage1/rebnconvin/conv_s1/Conv`.
    pub name: String,
    /// Operator type, e.g. `Conv`.
    pub op_type: String,
    /// Input value names (an empty string marks an omitted optional input).
    pub inputs: Vec<String>,
    /// Output value names.
    pub outputs: Vec<String>,
    /// Node attributes in file order.
    pub attributes: Vec<OnnxAttribute>,
}

/// One node attribute (`AttributeProto`).
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxAttribute {
    /// Attribute name, e.g. `strides`.
    pub name: String,
    /// Attribute value.
    pub value: AttributeValue,
}

/// The value of a node attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// `FLOAT` attribute.
    Float(f32),
    /// `INT` attribute.
    Int(i64),
    /// `STRING` attribute (raw bytes; usually UTF-8).
    String(Vec<u8>),
    /// `TENSOR` attribute (e.g. the value of a `Constant` node).
    Tensor(OnnxTensor),
    /// `FLOATS` attribute.
    Floats(Vec<f32>),
    /// `INTS` attribute.
    Ints(Vec<i64>),
    /// Any other attribute kind (graphs, strings lists, ...); holds the
    /// `AttributeProto.type` code.
    Other(i32),
}

/// One tensor (`TensorProto`), with its data as little-endian bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OnnxTensor {
    /// Tensor name (the value name nodes refer to).
    pub name: String,
    /// Shape.
    pub dims: Vec<i64>,
    /// ONNX `TensorProto.DataType` code (see the `DT_*` constants).
    pub data_type: i32,
    /// Little-endian element bytes. Typed fields (`float_data`,
    /// `int32_data`, ...) are converted to this form when `raw_data` is absent.
    pub raw: Vec<u8>,
}

impl OnnxTensor {
    /// Number of elements implied by `dims`, or `None` if a dim is negative
    /// or the product overflows.
    pub fn element_count(&self) -> Option<usize> {
        self.dims.iter().try_fold(1usize, |acc, &d| {
            usize::try_from(d).ok().and_then(|d| acc.checked_mul(d))
        })
    }
}

/// Size in bytes of one element of an ONNX data type, if it is fixed.
pub fn element_size(data_type: i32) -> Option<usize> {
    match data_type {
        DT_UINT8 | DT_INT8 | DT_BOOL => Some(1),
        DT_UINT16 | DT_INT16 | DT_FLOAT16 | DT_BFLOAT16 => Some(2),
        DT_FLOAT | DT_INT32 | DT_UINT32 => Some(4),
        DT_INT64 | DT_DOUBLE | DT_UINT64 => Some(8),
        _ => None,
    }
}

/// Short lowercase name of an ONNX data type, for diagnostics.
pub fn data_type_name(data_type: i32) -> String {
    match data_type {
        DT_FLOAT => "f32".into(),
        DT_UINT8 => "u8".into(),
        DT_INT8 => "i8".into(),
        DT_UINT16 => "u16".into(),
        DT_INT16 => "i16".into(),
        DT_INT32 => "i32".into(),
        DT_INT64 => "i64".into(),
        DT_STRING => "string".into(),
        DT_BOOL => "bool".into(),
        DT_FLOAT16 => "f16".into(),
        DT_DOUBLE => "f64".into(),
        DT_UINT32 => "u32".into(),
        DT_UINT64 => "u64".into(),
        DT_BFLOAT16 => "bf16".into(),
        other => format!("dtype#{other}"),
    }
}

/// Parses a serialized ONNX `ModelProto`.
///
/// Returns an error (naming the byte offset and field) for truncated or
/// corrupt input and for tensors stored as external data.
pub fn parse_model(bytes: &[u8]) -> Result<OnnxModel, String> {
    let mut model = OnnxModel {
        nodes: Vec::new(),
        initializers: Vec::new(),
    };
    let mut r = Reader::new(bytes, 0);
    while let Some((field, wt, at)) = r.key("ModelProto")? {
        if field == 7 {
            let sub = r.bytes_field(wt, at, "ModelProto.graph")?;
            parse_graph(sub, &mut model)?;
        } else {
            r.skip(wt, at, "ModelProto")?;
        }
    }
    Ok(model)
}

/// Renders an attribute value compactly, e.g. `[1, 1, 1, 1]` or `"nearest"`.
/// Tensors show dtype, shape and (for up to 16 elements) their values.
pub fn format_attribute_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::Float(f) => format!("{f}"),
        AttributeValue::Int(i) => format!("{i}"),
        AttributeValue::String(s) => format!("{:?}", String::from_utf8_lossy(s)),
        AttributeValue::Tensor(t) => format_tensor_summary(t),
        AttributeValue::Floats(v) => format!("{v:?}"),
        AttributeValue::Ints(v) => format!("{v:?}"),
        AttributeValue::Other(kind) => format!("<attribute type {kind}>"),
    }
}

/// Renders a tensor as `dtype[dims]` plus its values when it has at most 16
/// elements of a numeric type.
pub fn format_tensor_summary(t: &OnnxTensor) -> String {
    let mut s = format!("{}{:?}", data_type_name(t.data_type), t.dims);
    if let Some(values) = small_tensor_values(t, 16) {
        let _ = write!(s, " = [{}]", values.join(", "));
    }
    s
}

fn small_tensor_values(t: &OnnxTensor, max: usize) -> Option<Vec<String>> {
    let size = element_size(t.data_type)?;
    let n = t.raw.len() / size;
    if n > max || !t.raw.len().is_multiple_of(size) {
        return None;
    }
    let out = t
        .raw
        .chunks_exact(size)
        .map(|c| {
            let mut b8 = [0u8; 8];
            b8[..size].copy_from_slice(c);
            let u = u64::from_le_bytes(b8);
            match t.data_type {
                DT_FLOAT => format!("{}", f32::from_bits(u as u32)),
                DT_DOUBLE => format!("{}", f64::from_bits(u)),
                DT_FLOAT16 => format!("{}", half::f16::from_bits(u as u16)),
                DT_BFLOAT16 => format!("{}", half::bf16::from_bits(u as u16)),
                DT_INT8 => format!("{}", u as u8 as i8),
                DT_INT16 => format!("{}", u as u16 as i16),
                DT_INT32 => format!("{}", u as u32 as i32),
                DT_INT64 => format!("{}", u as i64),
                _ => format!("{u}"),
            }
        })
        .collect();
    Some(out)
}

// ---------------------------------------------------------------------------
// Message parsers
// ---------------------------------------------------------------------------

fn parse_graph(sub: Sub<'_>, model: &mut OnnxModel) -> Result<(), String> {
    let mut r = Reader::new(sub.bytes, sub.offset);
    while let Some((field, wt, at)) = r.key("GraphProto")? {
        match field {
            1 => {
                let s = r.bytes_field(wt, at, "GraphProto.node")?;
                model.nodes.push(parse_node(s)?);
            }
            5 => {
                let s = r.bytes_field(wt, at, "GraphProto.initializer")?;
                model.initializers.push(parse_tensor(s)?);
            }
            15 => {
                return Err(format!(
                    "byte {at}: GraphProto.sparse_initializer is not supported"
                ));
            }
            _ => r.skip(wt, at, "GraphProto")?,
        }
    }
    Ok(())
}

fn parse_node(sub: Sub<'_>) -> Result<OnnxNode, String> {
    let mut node = OnnxNode::default();
    let mut r = Reader::new(sub.bytes, sub.offset);
    while let Some((field, wt, at)) = r.key("NodeProto")? {
        match field {
            1 => node.inputs.push(r.string_field(wt, at, "NodeProto.input")?),
            2 => node
                .outputs
                .push(r.string_field(wt, at, "NodeProto.output")?),
            3 => node.name = r.string_field(wt, at, "NodeProto.name")?,
            4 => node.op_type = r.string_field(wt, at, "NodeProto.op_type")?,
            5 => {
                let s = r.bytes_field(wt, at, "NodeProto.attribute")?;
                node.attributes.push(parse_attribute(s)?);
            }
            _ => r.skip(wt, at, "NodeProto")?,
        }
    }
    Ok(node)
}

fn parse_attribute(sub: Sub<'_>) -> Result<OnnxAttribute, String> {
    let mut name = String::new();
    let mut kind: Option<i32> = None;
    let mut f = None;
    let mut i = None;
    let mut s = None;
    let mut t = None;
    let mut floats = Vec::new();
    let mut ints = Vec::new();
    let mut r = Reader::new(sub.bytes, sub.offset);
    while let Some((field, wt, at)) = r.key("AttributeProto")? {
        match field {
            1 => name = r.string_field(wt, at, "AttributeProto.name")?,
            2 => {
                f = Some(f32::from_bits(r.fixed32_field(
                    wt,
                    at,
                    "AttributeProto.f",
                )?))
            }
            3 => i = Some(r.varint_field(wt, at, "AttributeProto.i")? as i64),
            4 => s = Some(r.bytes_field(wt, at, "AttributeProto.s")?.bytes.to_vec()),
            5 => t = Some(parse_tensor(r.bytes_field(wt, at, "AttributeProto.t")?)?),
            7 => r.repeated_fixed32(wt, at, "AttributeProto.floats", |v| {
                floats.push(f32::from_bits(v))
            })?,
            8 => r.repeated_varint(wt, at, "AttributeProto.ints", |v| ints.push(v as i64))?,
            20 => kind = Some(r.varint_field(wt, at, "AttributeProto.type")? as i32),
            _ => r.skip(wt, at, "AttributeProto")?,
        }
    }
    // AttributeType codes: FLOAT=1 INT=2 STRING=3 TENSOR=4 FLOATS=6 INTS=7.
    // Old files may omit `type`; then infer it from the populated field.
    let value = match kind {
        Some(1) => AttributeValue::Float(f.unwrap_or(0.0)),
        Some(2) => AttributeValue::Int(i.unwrap_or(0)),
        Some(3) => AttributeValue::String(s.unwrap_or_default()),
        Some(4) => AttributeValue::Tensor(t.unwrap_or_default()),
        Some(6) => AttributeValue::Floats(floats),
        Some(7) => AttributeValue::Ints(ints),
        Some(other) => AttributeValue::Other(other),
        None => {
            if let Some(f) = f {
                AttributeValue::Float(f)
            } else if let Some(i) = i {
                AttributeValue::Int(i)
            } else if let Some(s) = s {
                AttributeValue::String(s)
            } else if let Some(t) = t {
                AttributeValue::Tensor(t)
            } else if !floats.is_empty() {
                AttributeValue::Floats(floats)
            } else {
                AttributeValue::Ints(ints)
            }
        }
    };
    Ok(OnnxAttribute { name, value })
}

fn parse_tensor(sub: Sub<'_>) -> Result<OnnxTensor, String> {
    let start = sub.offset;
    let mut t = OnnxTensor::default();
    let mut raw: Option<Vec<u8>> = None;
    let mut f32s: Vec<u32> = Vec::new();
    let mut i32s: Vec<u64> = Vec::new();
    let mut i64s: Vec<u64> = Vec::new();
    let mut f64s: Vec<u64> = Vec::new();
    let mut u64s: Vec<u64> = Vec::new();
    let mut external = false;
    let mut r = Reader::new(sub.bytes, sub.offset);
    while let Some((field, wt, at)) = r.key("TensorProto")? {
        match field {
            1 => r.repeated_varint(wt, at, "TensorProto.dims", |v| t.dims.push(v as i64))?,
            2 => t.data_type = r.varint_field(wt, at, "TensorProto.data_type")? as i32,
            3 => {
                return Err(format!(
                    "byte {at}: TensorProto.segment (segmented tensors) is not supported"
                ));
            }
            4 => r.repeated_fixed32(wt, at, "TensorProto.float_data", |v| f32s.push(v))?,
            5 => r.repeated_varint(wt, at, "TensorProto.int32_data", |v| i32s.push(v))?,
            7 => r.repeated_varint(wt, at, "TensorProto.int64_data", |v| i64s.push(v))?,
            8 => t.name = r.string_field(wt, at, "TensorProto.name")?,
            9 => {
                raw = Some(
                    r.bytes_field(wt, at, "TensorProto.raw_data")?
                        .bytes
                        .to_vec(),
                )
            }
            10 => r.repeated_fixed64(wt, at, "TensorProto.double_data", |v| f64s.push(v))?,
            11 => r.repeated_varint(wt, at, "TensorProto.uint64_data", |v| u64s.push(v))?,
            13 => {
                r.skip(wt, at, "TensorProto.external_data")?;
                external = true;
            }
            14 => {
                if r.varint_field(wt, at, "TensorProto.data_location")? == 1 {
                    external = true;
                }
            }
            _ => r.skip(wt, at, "TensorProto")?,
        }
    }
    if external {
        return Err(format!(
            "byte {start}: tensor {:?} stores its data externally (data_location=EXTERNAL), \
             which is not supported",
            t.name
        ));
    }
    t.raw = match raw {
        Some(raw) => raw,
        None => typed_to_raw(&t, &f32s, &i32s, &i64s, &f64s, &u64s, start)?,
    };
    Ok(t)
}

/// Converts the typed `*_data` fields of a tensor to little-endian bytes.
fn typed_to_raw(
    t: &OnnxTensor,
    f32s: &[u32],
    i32s: &[u64],
    i64s: &[u64],
    f64s: &[u64],
    u64s: &[u64],
    at: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match t.data_type {
        DT_FLOAT => f32s
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        // int32_data holds the (zero/sign-extended) bit patterns of these types.
        DT_INT32 => i32s
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as u32).to_le_bytes())),
        DT_UINT16 | DT_INT16 | DT_FLOAT16 | DT_BFLOAT16 => i32s
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as u16).to_le_bytes())),
        DT_UINT8 | DT_INT8 | DT_BOOL => i32s.iter().for_each(|&v| out.push(v as u8)),
        DT_INT64 => i64s
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DT_DOUBLE => f64s
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        DT_UINT32 => u64s
            .iter()
            .for_each(|&v| out.extend_from_slice(&(v as u32).to_le_bytes())),
        DT_UINT64 => u64s
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        _ => {
            let any = !(f32s.is_empty()
                && i32s.is_empty()
                && i64s.is_empty()
                && f64s.is_empty()
                && u64s.is_empty());
            if any {
                return Err(format!(
                    "byte {at}: tensor {:?} has typed data for unsupported data_type {}",
                    t.name, t.data_type
                ));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Protobuf wire format
// ---------------------------------------------------------------------------

const WT_VARINT: u8 = 0;
const WT_FIXED64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_FIXED32: u8 = 5;

/// A length-delimited sub-message with the absolute offset of its first byte.
#[derive(Clone, Copy)]
struct Sub<'a> {
    bytes: &'a [u8],
    offset: usize,
}

/// A cursor over a protobuf message; `base` is the absolute offset of `buf[0]`.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    fn abs(&self) -> usize {
        self.base + self.pos
    }

    /// Reads a base-128 varint (at most 10 bytes).
    fn varint(&mut self, what: &str) -> Result<u64, String> {
        let start = self.abs();
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("byte {start}: truncated varint in {what}"));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(format!("byte {start}: varint overflows 64 bits in {what}"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "byte {start}: varint longer than 10 bytes in {what}"
        ))
    }

    /// Reads the next field key; `None` at the end of the message.
    /// Returns (field number, wire type, absolute offset of the key).
    fn key(&mut self, msg: &str) -> Result<Option<(u64, u8, usize)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let at = self.abs();
        let k = self.varint(&format!("{msg} field key"))?;
        let field = k >> 3;
        let wt = (k & 7) as u8;
        if field == 0 || field > 0x1fff_ffff {
            return Err(format!("byte {at}: invalid field number {field} in {msg}"));
        }
        Ok(Some((field, wt, at)))
    }

    fn take(&mut self, n: usize, at: usize, what: &str) -> Result<Sub<'a>, String> {
        let offset = self.abs();
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "byte {at}: {what} needs {n} bytes at byte {offset} but only {} remain",
                    self.buf.len() - self.pos
                )
            })?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(Sub { bytes, offset })
    }

    fn expect_wt(&self, got: u8, want: u8, at: usize, what: &str) -> Result<(), String> {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "byte {at}: {what} has wire type {got}, expected {want}"
            ))
        }
    }

    fn bytes_field(&mut self, wt: u8, at: usize, what: &str) -> Result<Sub<'a>, String> {
        self.expect_wt(wt, WT_LEN, at, what)?;
        let len = self.varint(&format!("{what} length"))?;
        let len = usize::try_from(len)
            .map_err(|_| format!("byte {at}: {what} length {len} is too large"))?;
        self.take(len, at, what)
    }

    fn string_field(&mut self, wt: u8, at: usize, what: &str) -> Result<String, String> {
        let sub = self.bytes_field(wt, at, what)?;
        String::from_utf8(sub.bytes.to_vec())
            .map_err(|_| format!("byte {}: {what} is not valid UTF-8", sub.offset))
    }

    fn varint_field(&mut self, wt: u8, at: usize, what: &str) -> Result<u64, String> {
        self.expect_wt(wt, WT_VARINT, at, what)?;
        self.varint(what)
    }

    fn fixed32_field(&mut self, wt: u8, at: usize, what: &str) -> Result<u32, String> {
        self.expect_wt(wt, WT_FIXED32, at, what)?;
        let s = self.take(4, at, what)?;
        Ok(u32::from_le_bytes([
            s.bytes[0], s.bytes[1], s.bytes[2], s.bytes[3],
        ]))
    }

    /// Reads a repeated varint field, packed (wire type 2) or not (wire type 0).
    fn repeated_varint(
        &mut self,
        wt: u8,
        at: usize,
        what: &str,
        mut push: impl FnMut(u64),
    ) -> Result<(), String> {
        if wt == WT_LEN {
            let sub = self.bytes_field(wt, at, what)?;
            let mut r = Reader::new(sub.bytes, sub.offset);
            while r.pos < r.buf.len() {
                push(r.varint(what)?);
            }
            Ok(())
        } else {
            push(self.varint_field(wt, at, what)?);
            Ok(())
        }
    }

    /// Reads a repeated fixed32 field, packed or not.
    fn repeated_fixed32(
        &mut self,
        wt: u8,
        at: usize,
        what: &str,
        mut push: impl FnMut(u32),
    ) -> Result<(), String> {
        if wt == WT_LEN {
            let sub = self.bytes_field(wt, at, what)?;
            if sub.bytes.len() % 4 != 0 {
                return Err(format!(
                    "byte {at}: packed {what} has {} bytes, not a multiple of 4",
                    sub.bytes.len()
                ));
            }
            for c in sub.bytes.chunks_exact(4) {
                push(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
            Ok(())
        } else {
            push(self.fixed32_field(wt, at, what)?);
            Ok(())
        }
    }

    /// Reads a repeated fixed64 field, packed or not.
    fn repeated_fixed64(
        &mut self,
        wt: u8,
        at: usize,
        what: &str,
        mut push: impl FnMut(u64),
    ) -> Result<(), String> {
        let bytes = if wt == WT_LEN {
            self.bytes_field(wt, at, what)?
        } else {
            self.expect_wt(wt, WT_FIXED64, at, what)?;
            self.take(8, at, what)?
        };
        if bytes.bytes.len() % 8 != 0 {
            return Err(format!(
                "byte {at}: packed {what} has {} bytes, not a multiple of 8",
                bytes.bytes.len()
            ));
        }
        for c in bytes.bytes.chunks_exact(8) {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            push(u64::from_le_bytes(b));
        }
        Ok(())
    }

    /// Skips a field of any supported wire type.
    fn skip(&mut self, wt: u8, at: usize, msg: &str) -> Result<(), String> {
        let what = format!("{msg} unknown field");
        match wt {
            WT_VARINT => self.varint(&what).map(|_| ()),
            WT_FIXED64 => self.take(8, at, &what).map(|_| ()),
            WT_LEN => self.bytes_field(wt, at, &what).map(|_| ()),
            WT_FIXED32 => self.take(4, at, &what).map(|_| ()),
            other => Err(format!("byte {at}: unsupported wire type {other} in {msg}")),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny protobuf encoder for building test models by hand.
    #[derive(Default)]
    pub(crate) struct Enc(pub Vec<u8>);

    impl Enc {
        pub fn varint(&mut self, mut v: u64) -> &mut Self {
            loop {
                let b = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(b);
                    return self;
                }
                self.0.push(b | 0x80);
            }
        }
        pub fn key(&mut self, field: u64, wt: u8) -> &mut Self {
            self.varint(field << 3 | u64::from(wt))
        }
        pub fn int(&mut self, field: u64, v: i64) -> &mut Self {
            self.key(field, WT_VARINT).varint(v as u64)
        }
        pub fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
            self.key(field, WT_LEN).varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        pub fn str(&mut self, field: u64, s: &str) -> &mut Self {
            self.bytes(field, s.as_bytes())
        }
        pub fn msg(&mut self, field: u64, m: &Enc) -> &mut Self {
            self.bytes(field, &m.0)
        }
        pub fn f32(&mut self, field: u64, v: f32) -> &mut Self {
            self.key(field, WT_FIXED32);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
    }

    /// Encodes a TensorProto with raw data.
    pub(crate) fn tensor(name: &str, dims: &[i64], dt: i32, raw: &[u8]) -> Enc {
        let mut t = Enc::default();
        for &d in dims {
            t.int(1, d);
        }
        t.int(2, i64::from(dt)).str(8, name).bytes(9, raw);
        t
    }

    /// Encodes a NodeProto.
    pub(crate) fn node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> Enc {
        let mut n = Enc::default();
        for i in inputs {
            n.str(1, i);
        }
        for o in outputs {
            n.str(2, o);
        }
        n.str(3, name).str(4, op);
        n
    }

    /// Wraps nodes and initializers into a ModelProto (with some extra
    /// fields that the reader must skip).
    pub(crate) fn model(nodes: &[Enc], inits: &[Enc]) -> Vec<u8> {
        let mut g = Enc::default();
        g.str(2, "main_graph");
        for n in nodes {
            g.msg(1, n);
        }
        for t in inits {
            g.msg(5, t);
        }
        let mut opset = Enc::default();
        opset.str(1, "").int(2, 15);
        let mut m = Enc::default();
        m.int(1, 8).str(2, "pytorch").msg(8, &opset).msg(7, &g);
        // An unknown fixed64 and fixed32 field at the top level.
        m.key(99, WT_FIXED64);
        m.0.extend_from_slice(&[0; 8]);
        m.key(98, WT_FIXED32);
        m.0.extend_from_slice(&[0; 4]);
        m.0
    }

    fn read_varint(bytes: &[u8]) -> Result<u64, String> {
        Reader::new(bytes, 0).varint("test")
    }

    #[test]
    fn varint_edge_cases() {
        assert_eq!(read_varint(&[0]), Ok(0));
        assert_eq!(read_varint(&[0x7f]), Ok(127));
        assert_eq!(read_varint(&[0x80, 0x01]), Ok(128));
        assert_eq!(read_varint(&[0xac, 0x02]), Ok(300));
        // Non-minimal encodings are legal.
        assert_eq!(read_varint(&[0x80, 0x80, 0x00]), Ok(0));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&max), Ok(u64::MAX));
        // -1 as int64 is encoded as a 10-byte varint.
        let mut e = Enc::default();
        e.varint(-1i64 as u64);
        assert_eq!(e.0.len(), 10);
        assert_eq!(read_varint(&e.0).map(|v| v as i64), Ok(-1));
        // Round trip.
        for v in [1u64, 255, 16_383, 16_384, 1 << 35, u64::MAX - 1] {
            let mut e = Enc::default();
            e.varint(v);
            assert_eq!(read_varint(&e.0), Ok(v));
        }
        // Errors.
        assert!(read_varint(&[]).unwrap_err().contains("truncated"));
        assert!(read_varint(&[0x80]).unwrap_err().contains("truncated"));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(read_varint(&over).unwrap_err().contains("overflows"));
        let long = [0x80; 11];
        assert!(read_varint(&long).is_err());
    }

    #[test]
    fn length_edge_cases() {
        // Zero-length field is fine.
        let mut r = Reader::new(&[0x00], 0);
        assert_eq!(r.bytes_field(WT_LEN, 0, "x").map(|s| s.bytes.len()), Ok(0));
        // Length exactly fits.
        let mut r = Reader::new(&[0x02, 1, 2], 0);
        assert_eq!(
            r.bytes_field(WT_LEN, 0, "x").map(|s| s.bytes.to_vec()),
            Ok(vec![1, 2])
        );
        // Length one too long, error names offsets.
        let mut r = Reader::new(&[0x03, 1, 2], 10);
        let e = r.bytes_field(WT_LEN, 9, "Foo.bar").map(|_| ()).unwrap_err();
        assert!(
            e.contains("byte 9") && e.contains("Foo.bar") && e.contains("byte 11"),
            "{e}"
        );
        // Huge length must not overflow.
        let mut e = Enc::default();
        e.varint(u64::MAX);
        let mut r = Reader::new(&e.0, 0);
        assert!(r.bytes_field(WT_LEN, 0, "x").is_err());
        // Wrong wire type.
        let mut r = Reader::new(&[0x00], 0);
        assert!(r
            .bytes_field(WT_VARINT, 0, "x")
            .map(|_| ())
            .unwrap_err()
            .contains("wire type"));
        // Field number 0 and group wire types are rejected.
        assert!(parse_model(&[0x00])
            .unwrap_err()
            .contains("invalid field number"));
        assert!(parse_model(&[0x0b]).unwrap_err().contains("wire type 3"));
    }

    fn tiny_model() -> Vec<u8> {
        let w: Vec<u8> = (0..8u8).collect();
        let mut conv = node("/a/b/Conv", "Conv", &["x", "w", "b"], &["y"]);
        let mut a = Enc::default();
        a.str(1, "strides").int(20, 7).int(8, 2).int(8, 2);
        conv.msg(5, &a);
        let mut a = Enc::default();
        let mut packed = Enc::default();
        packed.varint(1).varint(1).varint(1).varint(1);
        a.str(1, "pads").int(20, 7).bytes(8, &packed.0);
        conv.msg(5, &a);
        let mut a = Enc::default();
        a.str(1, "group").int(20, 2).int(3, 1);
        conv.msg(5, &a);
        let mut a = Enc::default();
        a.str(1, "alpha").int(20, 1).f32(2, 0.5);
        conv.msg(5, &a);
        let mut a = Enc::default();
        a.str(1, "mode").int(20, 3).str(4, "linear");
        conv.msg(5, &a);
        // A float_data tensor (typed field, not raw).
        let mut fd = Enc::default();
        fd.int(1, 2)
            .int(2, i64::from(DT_FLOAT))
            .f32(4, 1.5)
            .f32(4, -2.0)
            .str(8, "b");
        model(
            &[conv, node("", "Relu", &["y"], &["z"])],
            &[tensor("w", &[1, 1, 2, 2], DT_FLOAT16, &w), fd],
        )
    }

    #[test]
    fn parses_hand_built_model() {
        let m = parse_model(&tiny_model()).unwrap();
        assert_eq!(m.nodes.len(), 2);
        let n = &m.nodes[0];
        assert_eq!(n.name, "/a/b/Conv");
        assert_eq!(n.op_type, "Conv");
        assert_eq!(n.inputs, ["x", "w", "b"]);
        assert_eq!(n.outputs, ["y"]);
        let attrs: Vec<_> = n
            .attributes
            .iter()
            .map(|a| (a.name.as_str(), &a.value))
            .collect();
        assert_eq!(attrs[0], ("strides", &AttributeValue::Ints(vec![2, 2])));
        assert_eq!(attrs[1], ("pads", &AttributeValue::Ints(vec![1, 1, 1, 1])));
        assert_eq!(attrs[2], ("group", &AttributeValue::Int(1)));
        assert_eq!(attrs[3], ("alpha", &AttributeValue::Float(0.5)));
        assert_eq!(
            attrs[4],
            ("mode", &AttributeValue::String(b"linear".to_vec()))
        );
        assert_eq!(m.nodes[1].op_type, "Relu");
        assert_eq!(m.initializers.len(), 2);
        let w = &m.initializers[0];
        assert_eq!(
            (w.name.as_str(), w.dims.as_slice(), w.data_type),
            ("w", &[1, 1, 2, 2][..], DT_FLOAT16)
        );
        assert_eq!(w.raw, (0..8u8).collect::<Vec<_>>());
        assert_eq!(w.element_count(), Some(4));
        let b = &m.initializers[1];
        assert_eq!(b.dims, [2]);
        let mut want = 1.5f32.to_le_bytes().to_vec();
        want.extend_from_slice(&(-2.0f32).to_le_bytes());
        assert_eq!(b.raw, want);
        assert_eq!(format_tensor_summary(b), "f32[2] = [1.5, -2]");
    }

    #[test]
    fn external_data_is_an_error() {
        let mut t = tensor("w", &[1], DT_FLOAT, &[]);
        t.int(14, 1);
        let e = parse_model(&model(&[], &[t])).unwrap_err();
        assert!(e.contains("external"), "{e}");
    }

    #[test]
    fn truncations_are_errors_never_panics() {
        let bytes = tiny_model();
        // Every strict prefix either parses (a prefix ending exactly on a
        // field boundary is a valid, smaller message) or errors with an offset.
        let mut errors = 0;
        for len in 0..bytes.len() {
            match parse_model(&bytes[..len]) {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.starts_with("byte "), "{e}");
                    errors += 1;
                }
            }
        }
        assert!(errors > bytes.len() / 2, "{errors}");
        // Cutting inside the graph message must fail.
        assert!(parse_model(&bytes[..bytes.len() - 20]).is_err());
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        // xorshift64* so the test is deterministic without a rand dependency.
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..2000 {
            let len = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse_model(&bytes);
        }
        let base = tiny_model();
        for _ in 0..3000 {
            let mut b = base.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % b.len();
                b[i] = next() as u8;
            }
            let _ = parse_model(&b);
        }
    }
}
