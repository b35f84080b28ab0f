//! BLIP's BERT WordPiece tokenizer, through the `tokenizers` crate: the folder's
//! `tokenizer.json` as transformers saves it, or, when only BERT's `vocab.txt` is there, the
//! same pipeline built from it (BERT normaliser and pre-tokeniser, WordPiece with `##`
//! continuations, BERT's special tokens and BLIP's `[DEC]` bos token). Decoding skips special
//! tokens, as transformers' `decode(..., skip_special_tokens=True)`.

use std::path::Path;

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Tokenizer};

use super::folder::BlipFiles;

/// BERT's special tokens, in `vocab.txt`.
const BERT_SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The tokenizer of a BLIP folder.
pub struct BlipTokenizer {
    inner: Tokenizer,
}

/// `tokenizer_config.json`'s keys the `vocab.txt` fallback needs.
#[derive(Default, serde::Deserialize)]
#[serde(default)]
struct TokenizerConfig {
    do_lower_case: Option<bool>,
    strip_accents: Option<bool>,
    tokenize_chinese_chars: Option<bool>,
    bos_token: Option<serde_json::Value>,
    additional_special_tokens: Vec<serde_json::Value>,
}

/// A special token as `tokenizer_config.json` writes it: a string, or `{"content": …}`.
fn token_text(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .or_else(|| v.get("content").and_then(|c| c.as_str()))
        .map(str::to_string)
}

impl BlipTokenizer {
    /// Loads the folder's tokenizer; the error names the file.
    pub fn load(files: &BlipFiles) -> Result<BlipTokenizer, String> {
        let path = &files.tokenizer;
        let err = |e: tokenizers::Error| format!("{}: {e}", path.display());
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json {
            return Tokenizer::from_file(path)
                .map(|inner| BlipTokenizer { inner })
                .map_err(err);
        }
        let cfg: TokenizerConfig = match &files.tokenizer_config {
            Some(p) => super::folder::read_json(p)?,
            None => TokenizerConfig::default(),
        };
        from_vocab(path, &cfg).map_err(err)
    }

    /// The ids of `text` without special tokens (BLIP's processor adds `[CLS]`…`[SEP]`, and
    /// `generate` replaces the first with the bos token and drops the last).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| format!("tokenising \"{text}\": {e}"))
    }

    /// The text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner
            .decode(ids, true)
            .map_err(|e| format!("decoding {ids:?}: {e}"))
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// transformers' `BertTokenizer` pipeline over a `vocab.txt`, with BLIP's bos token added.
fn from_vocab(path: &Path, cfg: &TokenizerConfig) -> tokenizers::Result<BlipTokenizer> {
    let vocab = path.to_string_lossy();
    let model = WordPiece::from_file(&vocab)
        .unk_token("[UNK]".into())
        .build()?;
    let mut inner = Tokenizer::new(model);
    inner.with_normalizer(Some(BertNormalizer::new(
        true,
        cfg.tokenize_chinese_chars.unwrap_or(true),
        cfg.strip_accents,
        cfg.do_lower_case.unwrap_or(true),
    )))?;
    inner.with_pre_tokenizer(Some(BertPreTokenizer));
    inner.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
    let mut special: Vec<String> = BERT_SPECIAL.iter().map(|s| s.to_string()).collect();
    // Salesforce's BLIP tokenizer: [DEC] is the decoder's bos token, added after the vocabulary.
    special.push(
        cfg.bos_token
            .as_ref()
            .and_then(token_text)
            .unwrap_or_else(|| "[DEC]".into()),
    );
    special.extend(cfg.additional_special_tokens.iter().filter_map(token_text));
    inner.add_special_tokens(special.into_iter().map(|t| AddedToken::from(t, true)))?;
    Ok(BlipTokenizer { inner })
}
