//! sdclip: CLIP text encoding for Stable Diffusion 1.x and SDXL, matching Hugging Face
//! transformers / diffusers in float32.
//!
//! * [`tokenizer::ClipTokenizer`] — BPE tokenizer equal to transformers' `CLIPTokenizer`
//!   (`encode_plain` = `padding="max_length", max_length=77, truncation=True`).
//! * [`weighting`] — opt-in AUTOMATIC1111 prompt weighting: [`weighting::parse_prompt_attention`]
//!   (`(word)`, `[word]`, `(word:1.3)`, escapes, `BREAK`) and [`weighting::tokenize_weighted`]
//!   producing 77-token [`weighting::Chunk`]s with per-token weights.
//! * [`text_model::ClipTextModel`] — the CLIP text transformer (candle-nn) loaded with
//!   diffusers/transformers weight names, returning [`text_model::ClipOutput`]; plus the
//!   pipeline helpers [`text_model::encode_sd`] and [`text_model::encode_sdxl`].

pub mod text_model;
pub mod tokenizer;
pub mod weighting;

pub use text_model::{
    apply_emphasis, encode_sd, encode_sd_chunks, encode_sdxl, encode_sdxl_chunks, ClipOutput,
    ClipTextConfig, ClipTextModel,
};
pub use tokenizer::ClipTokenizer;
pub use weighting::{
    pad_to_same_count, parse_prompt_attention, tokenize_weighted, Chunk, Fragment,
};
