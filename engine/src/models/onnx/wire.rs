//! The protobuf wire format: varints, length-delimited fields, fixed32/fixed64 and
//! skipping of unknown fields, every error naming its absolute byte offset.

pub(super) const WT_VARINT: u8 = 0;
pub(super) const WT_FIXED64: u8 = 1;
pub(super) const WT_LEN: u8 = 2;
pub(super) const WT_FIXED32: u8 = 5;

/// A length-delimited sub-message with the absolute offset of its first byte.
#[derive(Clone, Copy)]
pub(super) struct Sub<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) offset: usize,
}

/// A cursor over a protobuf message; `base` is the absolute offset of `buf[0]`.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
    pub(super) base: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(super) fn abs(&self) -> usize {
        self.base + self.pos
    }

    /// Reads a base-128 varint (at most 10 bytes).
    pub(super) fn varint(&mut self, what: &str) -> Result<u64, String> {
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
    pub(super) fn key(&mut self, msg: &str) -> Result<Option<(u64, u8, usize)>, String> {
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

    pub(super) fn take(&mut self, n: usize, at: usize, what: &str) -> Result<Sub<'a>, String> {
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

    pub(super) fn expect_wt(&self, got: u8, want: u8, at: usize, what: &str) -> Result<(), String> {
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "byte {at}: {what} has wire type {got}, expected {want}"
            ))
        }
    }

    pub(super) fn bytes_field(&mut self, wt: u8, at: usize, what: &str) -> Result<Sub<'a>, String> {
        self.expect_wt(wt, WT_LEN, at, what)?;
        let len = self.varint(&format!("{what} length"))?;
        let len = usize::try_from(len)
            .map_err(|_| format!("byte {at}: {what} length {len} is too large"))?;
        self.take(len, at, what)
    }

    pub(super) fn string_field(&mut self, wt: u8, at: usize, what: &str) -> Result<String, String> {
        let sub = self.bytes_field(wt, at, what)?;
        String::from_utf8(sub.bytes.to_vec())
            .map_err(|_| format!("byte {}: {what} is not valid UTF-8", sub.offset))
    }

    pub(super) fn varint_field(&mut self, wt: u8, at: usize, what: &str) -> Result<u64, String> {
        self.expect_wt(wt, WT_VARINT, at, what)?;
        self.varint(what)
    }

    pub(super) fn fixed32_field(&mut self, wt: u8, at: usize, what: &str) -> Result<u32, String> {
        self.expect_wt(wt, WT_FIXED32, at, what)?;
        let s = self.take(4, at, what)?;
        Ok(u32::from_le_bytes([
            s.bytes[0], s.bytes[1], s.bytes[2], s.bytes[3],
        ]))
    }

    /// Reads a repeated varint field, packed (wire type 2) or not (wire type 0).
    pub(super) fn repeated_varint(
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
    pub(super) fn repeated_fixed32(
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
    pub(super) fn repeated_fixed64(
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
    pub(super) fn skip(&mut self, wt: u8, at: usize, msg: &str) -> Result<(), String> {
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
