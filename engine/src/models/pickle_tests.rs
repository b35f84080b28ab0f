//! Crafted legacy torch files: a valid one (written here opcode by opcode, the way torch writes
//! them), and hostile or broken variants that must each give one clear error.

use super::*;

/// Pickle byte builder.
#[derive(Default)]
struct P(Vec<u8>);

impl P {
    fn proto(mut self) -> Self {
        self.0.extend([0x80, 2]);
        self
    }
    fn op(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }
    fn int(mut self, v: u8) -> Self {
        self.0.extend([b'K', v]);
        self
    }
    fn int2(mut self, v: u16) -> Self {
        self.0.push(b'M');
        self.0.extend(v.to_le_bytes());
        self
    }
    fn str(mut self, s: &str) -> Self {
        self.0.push(b'X');
        self.0.extend((s.len() as u32).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    fn global(mut self, module: &str, name: &str) -> Self {
        self.0.push(b'c');
        self.0.extend(format!("{module}\n{name}\n").as_bytes());
        self
    }
    fn stop(self) -> Vec<u8> {
        self.op(b'.').0
    }
}

fn header() -> Vec<u8> {
    let mut out = Vec::new();
    // Magic number.
    out.extend([0x80, 2, 0x8a, 10]);
    out.extend(MAGIC);
    out.push(b'.');
    out.extend(P::default().proto().int2(1001).stop());
    out.extend(
        P::default()
            .proto()
            .op(b'}')
            .op(b'(')
            .str("protocol_version")
            .int2(1001)
            .str("little_endian")
            .op(0x88)
            .op(b'u')
            .stop(),
    );
    out
}

/// A tensor entry `name -> _rebuild_tensor_v2(storage key, offset, size, stride)` inside an open
/// SETITEMS mark.
fn tensor(p: P, name: &str, key: &str, numel: u8, offset: u8, size: &[u8], stride: &[u8]) -> P {
    let mut p = p
        .str(name)
        .global("torch._utils", "_rebuild_tensor_v2")
        .op(b'(')
        .op(b'(')
        .str("storage")
        .global("torch", "FloatStorage")
        .str(key)
        .str("cpu")
        .int(numel)
        .op(b'N')
        .op(b't')
        .op(b'Q')
        .int(offset)
        .op(b'(');
    for &s in size {
        p = p.int(s);
    }
    p = p.op(b't').op(b'(');
    for &s in stride {
        p = p.int(s);
    }
    p.op(b't')
        .op(0x89)
        .global("collections", "OrderedDict")
        .op(b')')
        .op(b'R')
        .op(b't')
        .op(b'R')
}

/// A file with `a` = 2×3 (contiguous, offset 1 into a 7-element storage) and `b` = the
/// transpose view (3×2) of a 6-element storage, with `offset_a` as a's storage offset.
fn file(offset_a: u8) -> Vec<u8> {
    let mut out = header();
    let p = P::default()
        .proto()
        .global("collections", "OrderedDict")
        .op(b')')
        .op(b'R')
        .op(b'(');
    let p = tensor(p, "a", "k1", 7, offset_a, &[2, 3], &[3, 1]);
    let p = tensor(p, "b", "k2", 6, 0, &[3, 2], &[1, 3]);
    out.extend(p.op(b'u').stop());
    out.extend(
        P::default()
            .proto()
            .op(b']')
            .op(b'(')
            .str("k1")
            .str("k2")
            .op(b'e')
            .stop(),
    );
    out.extend(7u64.to_le_bytes());
    for i in 0..7 {
        out.extend((i as f32).to_le_bytes());
    }
    out.extend(6u64.to_le_bytes());
    for i in 0..6 {
        out.extend((10.0 + i as f32).to_le_bytes());
    }
    out
}

fn floats(t: &PthTensor) -> Vec<f32> {
    t.data
        .chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn err(bytes: &[u8]) -> String {
    read_legacy_state_dict(bytes).unwrap_err().to_string()
}

#[test]
fn reads_contiguous_and_strided_tensors() {
    let t = read_legacy_state_dict(&file(1)).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].0, "a");
    assert_eq!(t[0].1.shape, [2, 3]);
    assert_eq!(t[0].1.dtype, PthDtype::F32);
    assert_eq!(floats(&t[0].1), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    // b is the transpose of a 2×3 storage [10..16): row i is (10+i, 13+i).
    assert_eq!(t[1].1.shape, [3, 2]);
    assert_eq!(floats(&t[1].1), [10.0, 13.0, 11.0, 14.0, 12.0, 15.0]);
}

#[test]
fn refuses_a_global_outside_the_allow_list() {
    // `os.system("echo pwned")` the way a malicious pickle calls it: nothing runs.
    let mut bytes = header();
    bytes.extend(
        P::default()
            .proto()
            .global("os", "system")
            .str("echo pwned")
            .op(0x85)
            .op(b'R')
            .stop(),
    );
    assert_eq!(err(&bytes), "torch pickle: refused global os.system");
    // Also inside the state dict, and for a lookalike of an allowed module.
    let bad = file(1)
        .windows(18)
        .position(|w| w == b"torch\nFloatStorage")
        .unwrap();
    let mut bytes = file(1);
    bytes[bad..bad + 18].copy_from_slice(b"torch\nFloatStorag\n");
    // The name now ends one byte early; the reader stops at the refused global.
    assert!(
        err(&bytes).contains("refused global torch.FloatStorag"),
        "{}",
        err(&bytes)
    );
}

#[test]
fn refuses_an_unknown_opcode() {
    let mut bytes = header();
    // INST ('i') would import and call; it is not in the opcode set.
    bytes.extend(P::default().proto().op(b'i').stop());
    let e = err(&bytes);
    assert!(e.contains("unsupported pickle opcode 0x69 at byte"), "{e}");
}

#[test]
fn truncated_files_give_one_error() {
    let full = file(1);
    // Cut inside the main pickle, and inside the last storage's data.
    for cut in [header().len() + 20, full.len() - 3] {
        let e = err(&full[..cut]);
        assert!(e.starts_with("torch pickle: truncated file"), "{cut}: {e}");
    }
    assert!(err(&[]).contains("truncated"));
}

#[test]
fn storage_offset_out_of_range() {
    // a needs elements offset..offset+6 of a 7-element storage.
    assert!(read_legacy_state_dict(&file(1)).is_ok());
    let e = err(&file(2));
    assert!(
        e.contains("a: offset 2 with size [2, 3] and stride [3, 1] reaches element 7"),
        "{e}"
    );
}

#[test]
fn a_broadcast_view_larger_than_its_storage_is_refused() {
    // b viewed as 6×2 (strides 1, 3) over its 6-element storage: 12 elements from 6.
    let good = file(1);
    let at = good
        .windows(4)
        .rposition(|w| w == [b'K', 3, b'K', 2])
        .unwrap();
    let mut bytes = good.clone();
    bytes[at + 1] = 6; // size (3, 2) -> (6, 2)
    let e = err(&bytes);
    assert!(
        e.contains("b: size [6, 2] has 12 elements, more than its storage k2 (6)"),
        "{e}"
    );
}

#[test]
fn zip_format_and_wrong_magic_are_named() {
    let e = err(b"PK\x03\x04rest");
    assert!(e.contains("zip-format torch file"), "{e}");
    let mut bytes = file(1);
    bytes[4] ^= 1;
    assert!(err(&bytes).contains("wrong magic number"));
}

#[test]
fn deep_nesting_is_refused() {
    let mut p = P::default().proto().op(b')');
    for _ in 0..100 {
        p = p.op(0x85);
    }
    let mut bytes = header();
    bytes.extend(p.stop());
    assert!(err(&bytes).contains("nested deeper than 64"));
}

#[test]
fn mutated_files_never_panic() {
    // Seeded byte flips, insertions and truncations of a valid file: each read returns (an
    // error or tensors) without panicking or over-allocating.
    let good = file(1);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut errors = 0;
    for _ in 0..3000 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            match next() % 3 {
                0 => bytes[at] = next() as u8,
                1 => bytes.insert(at, next() as u8),
                _ => bytes.truncate(at.max(1)),
            }
        }
        if read_legacy_state_dict(&bytes).is_err() {
            errors += 1;
        }
    }
    assert!(
        errors > 1000,
        "only {errors} of 3000 mutations were refused"
    );
}
