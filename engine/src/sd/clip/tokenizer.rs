//! CLIP BPE tokenizer matching transformers' `CLIPTokenizer` (v5, `tokenizers` backend).
//!
//! transformers 5.x builds `CLIPTokenizer` on the Rust `tokenizers` library with this pipeline
//! (no ftfy, no HTML unescaping — those only existed in the removed "slow" tokenizer):
//!
//! 1. the special tokens `<|startoftext|>` / `<|endoftext|>` are matched verbatim in the raw
//!    text (case-sensitive, before normalisation) and become ids 49406 / 49407;
//! 2. every other span is normalised: Unicode NFC, every run of whitespace (`\s+`) replaced by
//!    one space, then per-character lowercasing (no context-sensitive final sigma);
//! 3. the span is split with OpenAI's CLIP regex (contractions, letter runs, single digits,
//!    runs of other non-space characters; whitespace is dropped);
//! 4. each piece is byte-level BPE encoded with an end-of-word `</w>` suffix on its last symbol.
//!
//! The BPE merge table is the one embedded in `instant-clip-tokenizer` (OpenAI's
//! `bpe_simple_vocab_16e6.txt`, first 48 894 merges), whose id assignment is identical to
//! the `vocab.json` shipped with Stable Diffusion checkpoints.

use std::sync::LazyLock;

use instant_clip_tokenizer::{Token, Tokenizer};
use regex::Regex;
use unicode_normalization_alignments::UnicodeNormalization;

/// Id of `<|startoftext|>`.
pub const BOS_ID: u32 = 49406;
/// Id of `<|endoftext|>`.
pub const EOS_ID: u32 = 49407;
/// Id of `,</w>` (a comma that ends a word), used by A1111's chunk splitting.
pub const COMMA_ID: u32 = 267;
/// Sequence length every CLIP text encoder of Stable Diffusion expects (BOS + 75 + EOS).
pub const MAX_LENGTH: usize = 77;

const BOS_TEXT: &str = "<|startoftext|>";
const EOS_TEXT: &str = "<|endoftext|>";

/// CLIP tokenizer with a configurable padding id.
///
/// Use `ClipTokenizer::new(49407)` for SD1.x / SDXL `tokenizer` and `ClipTokenizer::new(0)`
/// for SDXL `tokenizer_2` (OpenCLIP, whose pad token is `"!"` = id 0).
pub struct ClipTokenizer {
    bpe: Tokenizer,
    pad_id: u32,
    /// Text of the pad token when it is an ordinary vocabulary symbol (SDXL `tokenizer_2`:
    /// `"!"`); transformers registers it as a special added token, so it is split out of the
    /// raw text like `<|endoftext|>`.
    pad_text: Option<String>,
}

impl ClipTokenizer {
    /// Builds the tokenizer (loads the embedded merge table; reuse the instance).
    pub fn new(pad_id: u32) -> Self {
        // Ids 0..94 are the printable ASCII symbols '!'..='~' (bytes_to_unicode order). Other
        // pad ids (BOS/EOS or multi-character vocabulary entries) need no extra handling.
        let pad_text = (pad_id < 94)
            .then(|| char::from_u32(u32::from(b'!') + pad_id))
            .flatten()
            .map(String::from);
        Self {
            bpe: Tokenizer::new(),
            pad_id,
            pad_text,
        }
    }

    /// The padding id given to [`ClipTokenizer::new`].
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Id of `<|startoftext|>` (49406).
    pub fn bos_id(&self) -> u32 {
        BOS_ID
    }

    /// Id of `<|endoftext|>` (49407).
    pub fn eos_id(&self) -> u32 {
        EOS_ID
    }

    /// Tokenises `text` without special tokens, truncation or padding
    /// (= `tokenizer(text, add_special_tokens=False).input_ids`).
    ///
    /// Like transformers, occurrences of the pad token's text are special: with pad id 0
    /// (SDXL `tokenizer_2`, pad `"!"`) every `!` becomes id 0 instead of being BPE-merged.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenize_with(text, true)
    }

    /// Tokenises like [`ClipTokenizer::tokenize`] but treats the pad token text as ordinary
    /// text (only `<|startoftext|>` / `<|endoftext|>` are special), as A1111 does for both SDXL
    /// encoders (its OpenCLIP tokenizer has no `"!"` special token).
    pub fn tokenize_words(&self, text: &str) -> Vec<u32> {
        self.tokenize_with(text, false)
    }

    fn tokenize_with(&self, text: &str, pad_is_special: bool) -> Vec<u32> {
        let pad = match (&self.pad_text, pad_is_special) {
            (Some(t), true) => Some((t.as_str(), self.pad_id)),
            _ => None,
        };
        let mut out = Vec::new();
        let mut rest = text;
        loop {
            let next_special = [(BOS_TEXT, BOS_ID), (EOS_TEXT, EOS_ID)]
                .into_iter()
                .chain(pad)
                .filter_map(|(s, id)| rest.find(s).map(|pos| (pos, s.len(), id)))
                .min_by_key(|&(pos, _, _)| pos);
            match next_special {
                Some((pos, len, id)) => {
                    self.tokenize_span(&rest[..pos], &mut out);
                    out.push(id);
                    rest = &rest[pos + len..];
                }
                None => {
                    self.tokenize_span(rest, &mut out);
                    break;
                }
            }
        }
        out
    }

    /// Normalises and BPE-encodes a span that contains no special-token text.
    fn tokenize_span(&self, span: &str, out: &mut Vec<u32>) {
        if span.is_empty() {
            return;
        }
        // NFC, then per-character lowercasing like `tokenizers`' Lowercase normalizer
        // (str::to_lowercase would turn a word-final 'Σ' into 'ς'). Collapsing whitespace runs
        // to one space does not change the split below, which drops whitespace anyway.
        let lower: String = span.nfc().flat_map(|(c, _)| c.to_lowercase()).collect();
        let mut tokens: Vec<Token> = Vec::new();
        for word in split_words(&lower) {
            // Each piece is a single match of the same split regex the BPE crate uses, so the
            // crate encodes it as exactly one word (and never sees its `<start_of_text>` marker).
            self.bpe.encode(word, &mut tokens);
        }
        out.extend(tokens.into_iter().map(|t| u32::from(t.to_u16())));
    }

    /// What transformers' `CLIPTokenizer` returns with `padding="max_length", max_length=77,
    /// truncation=True`: BOS, at most 75 prompt tokens, EOS, then `pad_id` up to 77 ids.
    pub fn encode_plain(&self, prompt: &str) -> Vec<u32> {
        let mut ids = Vec::with_capacity(MAX_LENGTH);
        ids.push(BOS_ID);
        ids.extend(self.tokenize(prompt).into_iter().take(MAX_LENGTH - 2));
        ids.push(EOS_ID);
        ids.resize(MAX_LENGTH, self.pad_id);
        ids
    }
}

impl Default for ClipTokenizer {
    /// SD1.x tokenizer (pads with EOS, 49407).
    fn default() -> Self {
        Self::new(EOS_ID)
    }
}

/// OpenAI's CLIP split pattern (case-insensitive, as in its `re.IGNORECASE`).
const WORD_PATTERN: &str = r"(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The compiled [`WORD_PATTERN`] (a constant pattern; the tests check that it compiles).
static WORD_SPLIT: LazyLock<Result<Regex, regex::Error>> =
    LazyLock::new(|| Regex::new(WORD_PATTERN));

/// Splits normalised text with CLIP's regex [`WORD_PATTERN`] (leftmost-first matches;
/// whitespace between them is dropped).
pub(crate) fn split_words(text: &str) -> Vec<&str> {
    match &*WORD_SPLIT {
        Ok(re) => re.find_iter(text).map(|m| m.as_str()).collect(),
        // Unreachable for the constant pattern; whitespace-separated words are the fallback.
        Err(_) => text.split_whitespace().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_clip_regex() {
        assert!(WORD_SPLIT.is_ok(), "{:?}", WORD_SPLIT.as_ref().err());
        // Letters of every script, digits one by one, runs of other symbols, and Unicode
        // whitespace (U+3000) dropped.
        assert_eq!(
            split_words("żółw\u{3000}٣4 ——x"),
            ["żółw", "٣", "4", "——", "x"]
        );
        assert_eq!(split_words("<|endoftext|>a"), ["<|endoftext|>", "a"]);
        assert_eq!(
            split_words("it's a  cat!!'s 12"),
            ["it", "'s", "a", "cat", "!!'", "s", "1", "2"]
        );
        assert_eq!(split_words("don't"), ["don", "'t"]);
        assert_eq!(split_words(""), Vec::<&str>::new());
    }

    #[test]
    fn photo_of_a_cat() {
        let t = ClipTokenizer::new(49407);
        let ids = t.encode_plain("a photo of a cat");
        assert_eq!(&ids[..7], &[49406, 320, 1125, 539, 320, 2368, 49407]);
        assert!(ids[7..].iter().all(|&i| i == 49407));
        assert_eq!(ids.len(), 77);
        let t0 = ClipTokenizer::new(0);
        let ids0 = t0.encode_plain("a photo of a cat");
        assert!(ids0[7..].iter().all(|&i| i == 0));
    }
}
