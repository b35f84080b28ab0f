//! Content hashes and base64, used by cache keys, assets, the store and models. Every sha256
//! of bytes or of a file goes through [`sha256_hex`] or [`sha256_reader`].

use std::io::Read;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lower-case hex sha256 of everything `reader` yields, read in 4 MiB pieces;
/// `progress(bytes_done)` is called after each.
pub fn sha256_reader(
    mut reader: impl Read,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    let mut done = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(to_hex(&h.finalize()))
}

pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| e.to_string())
}

pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_known_value() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn reader_matches_bytes_and_reports_progress() {
        let data: Vec<u8> = (0..(9u32 << 20))
            .map(|i| (i * 7 + i / 1000) as u8)
            .collect();
        let mut seen = Vec::new();
        let h = sha256_reader(&data[..], &mut |d| seen.push(d)).unwrap();
        assert_eq!(h, sha256_hex(&data));
        assert_eq!(seen.last().copied(), Some(data.len() as u64));
        assert!(seen.len() >= 3, "{seen:?}");
    }
}
