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

mod messages;
#[cfg(test)]
pub(crate) mod tests;
mod wire;

use std::fmt::Write as _;

use messages::parse_graph;
use wire::Reader;
#[cfg(test)]
use wire::{WT_FIXED32, WT_FIXED64, WT_LEN, WT_VARINT};

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
