//! Tests of the ONNX reader, and the tiny protobuf encoder ([`Enc`], [`model`], [`node`],
//! [`tensor`]) that other modules' tests use to build models by hand.

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
