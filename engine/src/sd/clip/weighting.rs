//! AUTOMATIC1111-style prompt weighting (opt-in).
//!
//! Syntax (as A1111's `parse_prompt_attention`):
//! * `(text)` multiplies the weight of `text` by 1.1, `((text))` by 1.21, …
//! * `[text]` divides it by 1.1;
//! * `(text:1.3)` multiplies it by 1.3 (the number may carry a sign; `.5` and `1.` are fine);
//! * `\(`, `\)`, `\[`, `\]`, `\\` are literal characters; a lone `\` is dropped;
//! * `BREAK` (upper case, as a whole word) ends the current 75-token chunk;
//! * a `)` or `]` without an opener, and a `(…:w)` outside any round bracket, are literal text;
//!   brackets still open at the end apply their 1.1 multiplier to everything after them.
//!
//! Runs of fragments with identical weights are merged. A1111 quirk kept on purpose: a
//! `BREAK` inside brackets gets its marker weight (-1) multiplied and is then tokenised as
//! the word "break" instead of splitting. Where A1111 would crash on an unparsable weight such
//! as `(a:1.2.3)`, we treat `:1.2.3)` as literal text.
//!
//! [`tokenize_weighted`] then tokenises every fragment separately and packs the tokens into
//! 75-token chunks exactly like A1111's `tokenize_line`: when a chunk is full and the last
//! comma lies within the last 20 tokens, the tokens after that comma move to the next chunk.
//! Each chunk is `BOS + 75 tokens + EOS`, shorter content padded with EOS in A1111 and then,
//! after the first EOS, with the tokenizer's pad id (SDXL `tokenizer_2` pads with 0).

use unicode_general_category::{get_general_category, GeneralCategory};

use crate::sd::clip::tokenizer::{ClipTokenizer, COMMA_ID, MAX_LENGTH};

/// Number of prompt tokens per chunk (77 minus BOS and EOS).
pub const CHUNK_TOKENS: usize = MAX_LENGTH - 2;
/// A1111's `comma_padding_backtrack` default.
pub const COMMA_BACKTRACK: usize = 20;

const ROUND_MULT: f64 = 1.1;
const SQUARE_MULT: f64 = 1.0 / 1.1;
const BREAK_WEIGHT: f64 = -1.0;

/// One parsed piece of a prompt and its attention weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// The literal text of the fragment.
    pub text: String,
    /// Attention multiplier (f64, computed like Python floats); `-1` marks a `BREAK`.
    pub weight: f64,
}

impl Fragment {
    fn new(text: &str, weight: f64) -> Self {
        Self {
            text: text.to_string(),
            weight,
        }
    }

    /// True for the chunk-break marker produced by a top-level `BREAK`.
    pub fn is_break(&self) -> bool {
        self.text == "BREAK" && self.weight == BREAK_WEIGHT
    }
}

/// One 77-token CLIP input with per-token weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// 77 token ids: BOS, up to 75 prompt tokens, EOS, pads.
    pub ids: Vec<u32>,
    /// 77 weights; 1.0 for BOS, EOS and padding.
    pub weights: Vec<f32>,
}

impl Chunk {
    /// The chunk of an empty prompt (A1111's `empty_chunk`): BOS, EOS, then pads.
    pub fn empty(tok: &ClipTokenizer) -> Self {
        Self::from_tokens(tok, &[], &[])
    }

    /// Wraps at most 75 tokens as BOS + tokens + EOS + pads; weights of the wrapper are 1.
    fn from_tokens(tok: &ClipTokenizer, tokens: &[u32], weights: &[f32]) -> Self {
        let mut ids = Vec::with_capacity(MAX_LENGTH);
        ids.push(tok.bos_id());
        ids.extend_from_slice(tokens);
        ids.push(tok.eos_id());
        ids.resize(MAX_LENGTH, tok.pad_id());
        if tok.pad_id() != tok.eos_id() {
            // A1111 `process_tokens`: everything after the first EOS becomes padding (this
            // also covers a literal "<|endoftext|>" inside the prompt).
            if let Some(first_eos) = ids.iter().position(|&i| i == tok.eos_id()) {
                for id in &mut ids[first_eos + 1..] {
                    *id = tok.pad_id();
                }
            }
        }
        let mut w = Vec::with_capacity(MAX_LENGTH);
        w.push(1.0);
        w.extend_from_slice(weights);
        w.resize(MAX_LENGTH, 1.0);
        Self { ids, weights: w }
    }
}

/// Lexical items of A1111's attention grammar.
#[derive(Debug, PartialEq)]
enum Item<'a> {
    Text(&'a str),
    OpenRound,
    OpenSquare,
    CloseRound,
    CloseSquare,
    /// `:number)` — the number text.
    WeightClose(&'a str),
}

fn is_decimal_digit(c: char) -> bool {
    c.is_ascii_digit() || get_general_category(c) == GeneralCategory::DecimalNumber
}

/// Python `\w` approximation: letters, numbers and underscore.
fn is_word_char(c: char) -> bool {
    use GeneralCategory as G;
    c == '_'
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        )
}

/// Tokenises `text` with the alternatives of A1111's `re_attention`, in its order.
fn lex(text: &str) -> Vec<Item<'_>> {
    let mut items = Vec::new();
    let mut pos = 0;
    while let Some(c) = text[pos..].chars().next() {
        let rest = &text[pos..];
        let (item, len) = match c {
            '\\' => match rest[1..].chars().next() {
                Some(e @ ('(' | ')' | '[' | ']' | '\\')) => {
                    (Item::Text(&rest[1..1 + e.len_utf8()]), 2)
                }
                _ => (Item::Text(""), 1),
            },
            '(' => (Item::OpenRound, 1),
            '[' => (Item::OpenSquare, 1),
            ':' => match weight_close_len(rest) {
                Some(n) => (Item::WeightClose(&rest[1..n - 1]), n),
                None => (Item::Text(":"), 1),
            },
            ')' => (Item::CloseRound, 1),
            ']' => (Item::CloseSquare, 1),
            _ => {
                let n = rest
                    .char_indices()
                    .find(|&(_, d)| matches!(d, '\\' | '(' | ')' | '[' | ']' | ':'))
                    .map_or(rest.len(), |(i, _)| i);
                (Item::Text(&rest[..n]), n)
            }
        };
        items.push(item);
        pos += len;
    }
    items
}

/// Length in bytes of a `:([+-]?[.\d]+)\)` match at the start of `s`, if any.
fn weight_close_len(s: &str) -> Option<usize> {
    let mut idx = 1; // past ':'
    if matches!(s[idx..].chars().next(), Some('+' | '-')) {
        idx += 1;
    }
    let body_start = idx;
    for d in s[idx..].chars() {
        if d == '.' || is_decimal_digit(d) {
            idx += d.len_utf8();
        } else {
            break;
        }
    }
    (idx > body_start && s[idx..].starts_with(')')).then_some(idx + 1)
}

/// Splits like Python's `re.split(r"\s*\bBREAK\b\s*", text)` (keeps empty pieces).
fn split_break(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut piece_start = 0; // start of the current piece (end of the previous separator)
    let mut search = 0;
    while let Some(off) = text[search..].find("BREAK") {
        let at = search + off;
        let end = at + "BREAK".len();
        let boundary_before = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let boundary_after = text[end..].chars().next().is_none_or(|c| !is_word_char(c));
        if !(boundary_before && boundary_after) {
            search = at + 1;
            continue;
        }
        let sep_start = text[piece_start..at]
            .char_indices()
            .rev()
            .take_while(|&(_, c)| c.is_whitespace())
            .last()
            .map_or(at, |(i, _)| piece_start + i);
        let sep_end = text[end..]
            .char_indices()
            .find(|&(_, c)| !c.is_whitespace())
            .map_or(text.len(), |(i, _)| end + i);
        parts.push(&text[piece_start..sep_start]);
        piece_start = sep_end;
        search = sep_end;
    }
    parts.push(&text[piece_start..]);
    parts
}

/// Parses A1111 attention syntax into fragments (see the module docs).
///
/// Matches `modules/prompt_parser.py::parse_prompt_attention`, e.g.
/// `"a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."` gives
/// `a ` 1.0, `house` 1.573, ` ` 1.1, `on` 1.0, ` a ` 1.1, `hill` 0.55, `, sun, ` 1.1,
/// `sky` 1.4641, `.` 1.1.
pub fn parse_prompt_attention(text: &str) -> Vec<Fragment> {
    let mut res: Vec<Fragment> = Vec::new();
    let mut round: Vec<usize> = Vec::new();
    let mut square: Vec<usize> = Vec::new();
    fn multiply(res: &mut [Fragment], start: usize, m: f64) {
        for f in &mut res[start..] {
            f.weight *= m;
        }
    }
    for item in lex(text) {
        match item {
            Item::OpenRound => round.push(res.len()),
            Item::OpenSquare => square.push(res.len()),
            Item::WeightClose(w) if !round.is_empty() && w.parse::<f64>().is_ok() => {
                if let (Some(start), Ok(m)) = (round.pop(), w.parse::<f64>()) {
                    multiply(&mut res, start, m);
                }
            }
            Item::CloseRound if !round.is_empty() => {
                if let Some(start) = round.pop() {
                    multiply(&mut res, start, ROUND_MULT);
                }
            }
            Item::CloseSquare if !square.is_empty() => {
                if let Some(start) = square.pop() {
                    multiply(&mut res, start, SQUARE_MULT);
                }
            }
            other => {
                let literal = match other {
                    Item::Text(t) => t.to_string(),
                    Item::WeightClose(w) => format!(":{w})"),
                    Item::CloseRound => ")".to_string(),
                    Item::CloseSquare => "]".to_string(),
                    // openers are always handled above
                    Item::OpenRound => "(".to_string(),
                    Item::OpenSquare => "[".to_string(),
                };
                for (i, part) in split_break(&literal).into_iter().enumerate() {
                    if i > 0 {
                        res.push(Fragment::new("BREAK", BREAK_WEIGHT));
                    }
                    res.push(Fragment::new(part, 1.0));
                }
            }
        }
    }
    for start in round {
        multiply(&mut res, start, ROUND_MULT);
    }
    for start in square {
        multiply(&mut res, start, SQUARE_MULT);
    }
    if res.is_empty() {
        res.push(Fragment::new("", 1.0));
    }
    let mut merged: Vec<Fragment> = Vec::with_capacity(res.len());
    for f in res {
        match merged.last_mut() {
            Some(last) if last.weight == f.weight => last.text.push_str(&f.text),
            _ => merged.push(f),
        }
    }
    merged
}

/// Parses `prompt` and packs its tokens into A1111 chunks (at least one chunk).
pub fn tokenize_weighted(tok: &ClipTokenizer, prompt: &str) -> Vec<Chunk> {
    chunks_from_fragments(tok, &parse_prompt_attention(prompt))
}

/// Packs already parsed fragments into chunks (A1111's `tokenize_line`, without textual
/// inversion embeddings).
pub fn chunks_from_fragments(tok: &ClipTokenizer, fragments: &[Fragment]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut cur_ids: Vec<u32> = Vec::with_capacity(CHUNK_TOKENS);
    let mut cur_w: Vec<f32> = Vec::with_capacity(CHUNK_TOKENS);
    let mut last_comma: Option<usize> = None;

    let mut flush = |ids: &mut Vec<u32>, w: &mut Vec<f32>, last_comma: &mut Option<usize>| {
        chunks.push(Chunk::from_tokens(tok, ids, w));
        ids.clear();
        w.clear();
        *last_comma = None;
    };

    for frag in fragments {
        if frag.is_break() {
            flush(&mut cur_ids, &mut cur_w, &mut last_comma);
            continue;
        }
        let weight = frag.weight as f32;
        for token in tok.tokenize_words(&frag.text) {
            if token == COMMA_ID {
                last_comma = Some(cur_ids.len());
            } else if let Some(comma) = last_comma {
                if cur_ids.len() == CHUNK_TOKENS && cur_ids.len() - comma <= COMMA_BACKTRACK {
                    let moved_ids = cur_ids.split_off(comma + 1);
                    let moved_w = cur_w.split_off(comma + 1);
                    flush(&mut cur_ids, &mut cur_w, &mut last_comma);
                    cur_ids = moved_ids;
                    cur_w = moved_w;
                }
            }
            if cur_ids.len() == CHUNK_TOKENS {
                flush(&mut cur_ids, &mut cur_w, &mut last_comma);
            }
            cur_ids.push(token);
            cur_w.push(weight);
        }
    }
    let need_last = !cur_ids.is_empty();
    if need_last {
        flush(&mut cur_ids, &mut cur_w, &mut last_comma);
    }
    if chunks.is_empty() {
        chunks.push(Chunk::empty(tok));
    }
    chunks
}

/// Appends empty chunks to the shorter of two chunk lists (e.g. positive and negative prompt)
/// so both have the same count, as A1111 does before batching them for CFG.
pub fn pad_to_same_count(
    tok_a: &ClipTokenizer,
    a: &mut Vec<Chunk>,
    tok_b: &ClipTokenizer,
    b: &mut Vec<Chunk>,
) {
    let n = a.len().max(b.len());
    while a.len() < n {
        a.push(Chunk::empty(tok_a));
    }
    while b.len() < n {
        b.push(Chunk::empty(tok_b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, f64)> {
        parse_prompt_attention(text)
            .into_iter()
            .map(|f| (f.text, f.weight))
            .collect()
    }

    fn approx(actual: Vec<(String, f64)>, expected: &[(&str, f64)]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for ((at, aw), (et, ew)) in actual.iter().zip(expected) {
            assert_eq!(at, et, "{actual:?}");
            assert!((aw - ew).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn a1111_doctests() {
        approx(p("normal text"), &[("normal text", 1.0)]);
        approx(
            p("an (important) word"),
            &[("an ", 1.0), ("important", 1.1), (" word", 1.0)],
        );
        approx(p("(unbalanced"), &[("unbalanced", 1.1)]);
        approx(p("\\(literal\\]"), &[("(literal]", 1.0)]);
        approx(p("(unnecessary)(parens)"), &[("unnecessaryparens", 1.1)]);
        approx(
            p("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            &[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ],
        );
    }

    #[test]
    fn python_float_products_are_exact() {
        // ((word)) = 1.1 * 1.1 in f64, exactly as Python computes it
        let f = parse_prompt_attention("((word))");
        assert_eq!(f[0].weight, 1.2100000000000002);
        let f = parse_prompt_attention("[[word]]");
        assert_eq!(f[0].weight, (1.0 / 1.1) * (1.0 / 1.1));
    }

    #[test]
    fn real_world_shapes() {
        approx(p(""), &[("", 1.0)]);
        approx(p("(word:1.3)"), &[("word", 1.3)]);
        approx(p("(word:-0.5)"), &[("word", -0.5)]);
        approx(p("(word:.5)"), &[("word", 0.5)]);
        approx(p("[word]"), &[("word", 1.0 / 1.1)]);
        approx(p("unopened) and]"), &[("unopened) and]", 1.0)]);
        approx(p("word:1.3) plain"), &[("word:1.3) plain", 1.0)]);
        approx(p("time 12:30 pm"), &[("time 12:30 pm", 1.0)]);
        approx(p("(a:1.2.3)"), &[("a:1.2.3)", 1.1)]);
        approx(p("a\\b \\\\ c"), &[("ab \\ c", 1.0)]);
        approx(
            p("masterpiece, (best quality:1.2), [[blurry]], (detailed (eyes:1.4))"),
            &[
                ("masterpiece, ", 1.0),
                ("best quality", 1.2),
                (", ", 1.0),
                ("blurry", 1.0 / 1.1 / 1.1),
                (", ", 1.0),
                ("detailed ", 1.1),
                ("eyes", 1.4 * 1.1),
            ],
        );
        approx(p("[(mixed:1.5)]"), &[("mixed", 1.5 / 1.1)]);
        approx(p("(open [square"), &[("open ", 1.1), ("square", 1.1 / 1.1)]);
        approx(
            p("cat BREAK dog"),
            &[("cat", 1.0), ("BREAK", -1.0), ("dog", 1.0)],
        );
        approx(
            p("BREAKFAST BREAK_ XBREAK"),
            &[("BREAKFAST BREAK_ XBREAK", 1.0)],
        );
        approx(p("BREAK"), &[("", 1.0), ("BREAK", -1.0), ("", 1.0)]);
        approx(
            p("a  BREAK  BREAK b"),
            &[
                ("a", 1.0),
                ("BREAK", -1.0),
                ("", 1.0),
                ("BREAK", -1.0),
                ("b", 1.0),
            ],
        );
        // quirk: BREAK inside brackets gets its marker weight multiplied
        approx(p("(x BREAK y)"), &[("x", 1.1), ("BREAK", -1.1), ("y", 1.1)]);
        approx(p("(a:1.3)(b:1.3)"), &[("ab", 1.3)]);
    }

    #[test]
    fn break_starts_new_chunk_and_weights() {
        let tok = ClipTokenizer::new(49407);
        let chunks = tokenize_weighted(&tok, "a (cat:1.5) BREAK dog");
        assert_eq!(chunks.len(), 2);
        assert_eq!(&chunks[0].ids[..4], &[49406, 320, 2368, 49407]);
        assert_eq!(&chunks[0].weights[..4], &[1.0, 1.0, 1.5, 1.0]);
        assert_eq!(&chunks[1].ids[..3], &[49406, 1929, 49407]);
        assert!(chunks
            .iter()
            .all(|c| c.ids.len() == 77 && c.weights.len() == 77));
    }

    #[test]
    fn comma_backtrack() {
        let tok = ClipTokenizer::new(0);
        // 70 single-token words, a comma at position 70, then 10 more words:
        // the chunk fills at 75 tokens; the comma lies 4 tokens back, so the 4 tokens after it
        // move to chunk 2.
        let mut prompt = vec!["cat"; 70].join(" ");
        prompt.push_str(", ");
        prompt.push_str(&["dog"; 10].join(" "));
        let chunks = tokenize_weighted(&tok, &prompt);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].ids[70], 2368);
        assert_eq!(chunks[0].ids[71], 267);
        assert_eq!(chunks[0].ids[72], 49407);
        assert_eq!(chunks[0].ids[73], 0);
        assert_eq!(
            &chunks[1].ids[..12],
            &[49406, 1929, 1929, 1929, 1929, 1929, 1929, 1929, 1929, 1929, 1929, 49407]
        );
        // no comma within the last 20 tokens: hard split at 75
        let prompt = vec!["cat"; 80].join(" ");
        let chunks = tokenize_weighted(&tok, &prompt);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].ids[75], 2368);
        assert_eq!(chunks[0].ids[76], 49407);
        assert_eq!(chunks[1].ids[6], 49407);
    }

    #[test]
    fn pad_lists() {
        let tok = ClipTokenizer::new(49407);
        let mut a = tokenize_weighted(&tok, &vec!["cat"; 100].join(" "));
        let mut b = tokenize_weighted(&tok, "");
        pad_to_same_count(&tok, &mut a, &tok, &mut b);
        assert_eq!(a.len(), 2);
        assert_eq!(b.len(), 2);
        assert_eq!(b[1], Chunk::empty(&tok));
        assert_eq!(&b[1].ids[..3], &[49406, 49407, 49407]);
    }
}
