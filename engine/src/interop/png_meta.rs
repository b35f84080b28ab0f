//! Recipes inside PNG files: reading and writing text chunks, and finding a graph in a PNG.
//!
//! Our own outputs carry the whole graph document as JSON in an iTXt chunk with keyword
//! [`GRAPH_KEYWORD`]. A1111 writes its infotext under [`A1111_KEYWORD`]; ComfyUI writes its API
//! prompt under [`COMFY_PROMPT_KEYWORD`] and its editor workflow under [`COMFY_WORKFLOW_KEYWORD`].
//! [`graph_from_png`] tries them in that order.
//!
//! Embedded assets larger than [`LARGE_ASSET_BYTES`] are left out of the PNG by default
//! ([`prepare_assets`]): the asset keeps its key (its sha256) and mime, and its `data_base64` is
//! emptied, which [`is_asset_reference`] reads as "find these bytes by hash".

use std::io::Cursor;

use nodes::{Asset, GraphDoc};
use png::text_metadata::{EncodableTextChunk, ITXtChunk};

use crate::interop::{a1111, comfy, ImportReport, ImportResult, InteropError, Result};

/// Keyword of our chunk holding the graph document JSON.
pub const GRAPH_KEYWORD: &str = "defect-studio/graph";
/// Keyword of A1111's infotext chunk (also written by us, for other tools to read).
pub const A1111_KEYWORD: &str = "parameters";
/// Keyword of ComfyUI's API-format prompt chunk.
pub const COMFY_PROMPT_KEYWORD: &str = "prompt";
/// Keyword of ComfyUI's editor-workflow chunk.
pub const COMFY_WORKFLOW_KEYWORD: &str = "workflow";
/// Assets above this many (decoded) bytes are replaced by a hash reference unless asked.
pub const LARGE_ASSET_BYTES: usize = 256 * 1024;

const PNG_SIGNATURE: [u8; 8] = [137, 80, 78, 71, 13, 10, 26, 10];

fn png_err(e: impl std::fmt::Display) -> InteropError {
    InteropError::Png(e.to_string())
}

/// The most text all of a PNG's text chunks may hold together, once inflated (zTXt and
/// compressed iTXt are inflated with this cap, so a small file cannot expand into gigabytes).
/// The chunks as stored count against the png crate's default decoder limit (64 MiB).
pub const MAX_TEXT_BYTES: usize = 128 * 1024 * 1024;

/// Every text chunk (tEXt, zTXt, iTXt; compressed or not; before or after the image data) as
/// `(keyword, text)`, in the order: tEXt, then zTXt, then iTXt, each in file order. Their text
/// may total at most [`MAX_TEXT_BYTES`].
pub fn read_text_chunks(png_bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let decoder = png::Decoder::new(Cursor::new(png_bytes));
    let limited = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => InteropError::Png(
            "its chunks hold more than the 64 MiB a PNG may store (text chunks included)".into(),
        ),
        other => png_err(other),
    };
    let mut reader = decoder.read_info().map_err(limited)?;
    // Reads past the image data to the end, so chunks after IDAT are seen too.
    reader.finish().map_err(limited)?;
    let info = reader.info();
    let mut budget = TextBudget(MAX_TEXT_BYTES);
    let mut out = Vec::new();
    for c in &info.uncompressed_latin1_text {
        out.push(budget.take(&c.keyword, "tEXt", Ok(c.text.clone()))?);
    }
    for c in &info.compressed_latin1_text {
        let mut c = c.clone();
        let text = c
            .decompress_text_with_limit(budget.0)
            .and_then(|()| c.get_text());
        out.push(budget.take(&c.keyword, "zTXt", text)?);
    }
    for c in &info.utf8_text {
        let mut c = c.clone();
        let text = c
            .decompress_text_with_limit(budget.0)
            .and_then(|()| c.get_text());
        out.push(budget.take(&c.keyword, "iTXt", text)?);
    }
    Ok(out)
}

/// The bytes of text still allowed (of [`MAX_TEXT_BYTES`]).
struct TextBudget(usize);

impl TextBudget {
    /// Counts one chunk's text against the budget.
    fn take(
        &mut self,
        keyword: &str,
        kind: &str,
        text: std::result::Result<String, png::DecodingError>,
    ) -> Result<(String, String)> {
        let too_big = || {
            InteropError::Png(format!(
                "{kind} \"{keyword}\": the text chunks hold more than {} MiB of text",
                MAX_TEXT_BYTES / (1024 * 1024)
            ))
        };
        let text = text.map_err(|e| {
            // The png crate says only this when inflating would pass the limit it was given.
            if e.to_string().contains("decompression space") {
                too_big()
            } else {
                InteropError::Png(format!("{kind} \"{keyword}\": {e}"))
            }
        })?;
        self.0 = self.0.checked_sub(text.len()).ok_or_else(too_big)?;
        Ok((keyword.to_string(), text))
    }
}

/// The text of the first chunk with `keyword`, if any.
pub fn find_text(chunks: &[(String, String)], keyword: &str) -> Option<String> {
    chunks
        .iter()
        .find(|(k, _)| k == keyword)
        .map(|(_, v)| v.clone())
}

/// Splits a PNG into its chunks: `(type, whole chunk bytes including length and CRC)`.
fn split_chunks(png_bytes: &[u8]) -> Result<Vec<([u8; 4], &[u8])>> {
    if png_bytes.len() < 8 || png_bytes[..8] != PNG_SIGNATURE {
        return Err(InteropError::Png("not a PNG file (bad signature)".into()));
    }
    let mut out = Vec::new();
    let mut at = 8usize;
    while at < png_bytes.len() {
        let header = png_bytes
            .get(at..at + 8)
            .ok_or_else(|| InteropError::Png(format!("truncated chunk header at byte {at}")))?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let ty = [header[4], header[5], header[6], header[7]];
        let end = at
            .checked_add(12)
            .and_then(|v| v.checked_add(len))
            .filter(|&e| e <= png_bytes.len())
            .ok_or_else(|| InteropError::Png(format!("truncated chunk at byte {at}")))?;
        out.push((ty, &png_bytes[at..end]));
        at = end;
        if &ty == b"IEND" {
            break;
        }
    }
    Ok(out)
}

/// The keyword of a tEXt/zTXt/iTXt chunk (bytes up to the first NUL of its data).
fn chunk_keyword(chunk: &[u8]) -> Option<&[u8]> {
    let data = chunk.get(8..chunk.len().saturating_sub(4))?;
    let nul = data.iter().position(|&b| b == 0)?;
    Some(&data[..nul])
}

/// Returns a copy of the PNG with the given text chunks added just before IEND, as iTXt
/// (UTF-8; compressed when `compress`). Existing text chunks with the same keywords are removed
/// first, so embedding twice replaces. The image data is copied untouched.
pub fn embed_text_chunks(
    png_bytes: &[u8],
    chunks: &[(&str, &str)],
    compress: bool,
) -> Result<Vec<u8>> {
    let parts = split_chunks(png_bytes)?;
    if !parts.iter().any(|(t, _)| t == b"IEND") {
        return Err(InteropError::Png("no IEND chunk".into()));
    }
    let mut out =
        Vec::with_capacity(png_bytes.len() + chunks.iter().map(|c| c.1.len()).sum::<usize>());
    out.extend_from_slice(&PNG_SIGNATURE);
    for (ty, bytes) in parts {
        let is_text = matches!(&ty, b"tEXt" | b"zTXt" | b"iTXt");
        if is_text {
            let kw = chunk_keyword(bytes).unwrap_or(&[]);
            if chunks.iter().any(|(k, _)| k.as_bytes() == kw) {
                continue;
            }
        }
        if &ty == b"IEND" {
            for (k, v) in chunks {
                let mut c = ITXtChunk::new(*k, *v);
                // The encoder deflates the text itself when the flag is set.
                c.compressed = compress;
                c.encode(&mut out)
                    .map_err(|e| InteropError::Png(format!("writing chunk \"{k}\": {e}")))?;
            }
        }
        out.extend_from_slice(bytes);
    }
    Ok(out)
}

/// Embeds a graph document in a PNG (compressed iTXt [`GRAPH_KEYWORD`]), after
/// [`prepare_assets`]`(doc, embed_large)`.
pub fn embed_graph(png_bytes: &[u8], doc: &GraphDoc, embed_large: bool) -> Result<Vec<u8>> {
    let json = prepare_assets(doc, embed_large).to_json();
    embed_text_chunks(png_bytes, &[(GRAPH_KEYWORD, &json)], true)
}

/// Where [`graph_from_png_with_report`] found its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraphSource {
    /// Our own [`GRAPH_KEYWORD`] chunk.
    DefectStudio,
    /// A1111's [`A1111_KEYWORD`] infotext, converted with [`a1111::to_graph_with_report`].
    A1111,
    /// ComfyUI's [`COMFY_PROMPT_KEYWORD`] chunk (API format).
    ComfyPrompt,
    /// ComfyUI's [`COMFY_WORKFLOW_KEYWORD`] chunk (editor format, used when there is no prompt).
    ComfyWorkflow,
}

/// The recipe a PNG carries, if any: our chunk first; else A1111 `parameters` (converted with
/// default [`a1111::GraphOptions`]); else ComfyUI's `prompt`, then `workflow`.
pub fn graph_from_png(png_bytes: &[u8]) -> Result<Option<GraphDoc>> {
    Ok(graph_from_png_with_report(png_bytes)?.map(|(_, r)| r.graph))
}

/// Like [`graph_from_png`], also saying where the graph came from and what an import could not
/// carry over (empty for our own chunk).
pub fn graph_from_png_with_report(png_bytes: &[u8]) -> Result<Option<(GraphSource, ImportResult)>> {
    let chunks = read_text_chunks(png_bytes)?;
    if let Some(json) = find_text(&chunks, GRAPH_KEYWORD) {
        let graph = GraphDoc::from_json(&json)?;
        let result = ImportResult {
            graph,
            report: ImportReport::default(),
        };
        return Ok(Some((GraphSource::DefectStudio, result)));
    }
    if let Some(t) = find_text(&chunks, A1111_KEYWORD) {
        let p = a1111::parse_parameters(&t)?;
        let r = a1111::to_graph_with_report(&p, &a1111::GraphOptions::default());
        return Ok(Some((GraphSource::A1111, r)));
    }
    if let Some(t) = find_text(&chunks, COMFY_PROMPT_KEYWORD) {
        let v: serde_json::Value = serde_json::from_str(&t)?;
        let mut r = comfy::import_api(&v)?;
        // The workflow (if present) knows where the nodes sat; borrow its positions.
        if let Some(w) = find_text(&chunks, COMFY_WORKFLOW_KEYWORD) {
            if let Ok(wv) = serde_json::from_str::<serde_json::Value>(&w) {
                comfy::copy_positions_from_workflow(&mut r.graph, &wv);
            }
        }
        return Ok(Some((GraphSource::ComfyPrompt, r)));
    }
    if let Some(t) = find_text(&chunks, COMFY_WORKFLOW_KEYWORD) {
        let v: serde_json::Value = serde_json::from_str(&t)?;
        let r = comfy::import_ui(&v)?;
        return Ok(Some((GraphSource::ComfyWorkflow, r)));
    }
    Ok(None)
}

/// The number of bytes a base64 string decodes to (without decoding it).
pub fn base64_decoded_len(b64: &str) -> usize {
    let s = b64.trim_end();
    let pad = s.bytes().rev().take_while(|&b| b == b'=').count();
    let chars = s.bytes().filter(|b| !b.is_ascii_whitespace()).count();
    (chars * 3 / 4).saturating_sub(pad)
}

/// Whether an asset is a hash reference (its bytes were left out; find them by the sha256
/// key in the store or the model/asset folders).
///
/// [`nodes::Asset`] has no field for this marker yet (and denies unknown fields), so a reference
/// is written as an empty `data_base64`. The empty file (sha256 `e3b0c442…`) is the one real
/// asset that looks the same, and nothing needs to fetch it.
pub fn is_asset_reference(asset: &Asset) -> bool {
    asset.external
}

/// A copy of `doc` ready to embed: each asset whose data decodes to more than
/// [`LARGE_ASSET_BYTES`] becomes a hash reference (same key and mime, no data, `external`),
/// unless `embed_large` is true. Small assets stay embedded.
pub fn prepare_assets(doc: &GraphDoc, embed_large: bool) -> GraphDoc {
    let mut out = doc.clone();
    if embed_large {
        return out;
    }
    for asset in out.assets.values_mut() {
        let len = base64_decoded_len(&asset.data_base64);
        if len > LARGE_ASSET_BYTES {
            asset.data_base64.clear();
            asset.external = true;
            asset.size = Some(len as u64);
        }
    }
    out
}
