//! ONNX message parsers: `GraphProto`, `NodeProto`, `AttributeProto` and `TensorProto`
//! on top of the protobuf [`wire`](super::wire) reader.

use super::wire::{Reader, Sub};
use super::*;

pub(super) fn parse_graph(sub: Sub<'_>, model: &mut OnnxModel) -> Result<(), String> {
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
