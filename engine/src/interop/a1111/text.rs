//! The line-level rules of A1111's infotext, mirroring `parse_generation_parameters` in
//! AUTOMATIC1111's `modules/infotext_utils.py` and `re_extra_net` in `modules/extra_networks.py`.
//!
//! - A `key: value` pair is what A1111's `re_param` regex matches:
//!   `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`. A value in double quotes is a JSON
//!   string (A1111's `quote`/`unquote`).
//! - The parameters line is the last line that starts with `Steps: <integer>` (A1111 and Forge
//!   always write `Steps` first). Without one, A1111's own rule applies: the last line, when it
//!   holds at least three pairs. Lines after the parameters line (sd-dynamic-prompts'
//!   `Template:` / `Negative Template:`, which may span lines) are [`trailing_fields`], not
//!   prompt text; A1111 itself would read them, and the parameters line, as prompt.
//! - Extra-network tags `<name:args>` (`<lora:…>`, `<lyco:…>`, `<hypernet:…>`) are cut out of
//!   the prompt exactly as A1111 does before the text encoder sees it: the tag's bytes go,
//!   nothing else.
//!
//! One deliberate difference: text between two pairs that A1111's regex skips (an unquoted
//! comma inside a value, as older versions wrote `Hires upscaler: Latent (nearest, exact)`) is
//! kept as part of the previous value, where A1111 drops it.

use std::sync::OnceLock;

use regex::Regex;

/// A1111's `re_param`.
fn re_param() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)"#)
            .unwrap_or_else(|e| unreachable!("re_param is a valid pattern: {e}"))
    })
}

/// The start of the parameters line A1111 and Forge write: `Steps: <integer>` as its first pair.
fn re_steps_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\s*Steps:\s*\d+\s*(?:,|$)")
            .unwrap_or_else(|e| unreachable!("the Steps pattern is valid: {e}"))
    })
}

/// A line that starts a field after the parameters line: `Key:value` with A1111's key pattern.
fn re_trailing_key() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(\w[\w \-/]+):")
            .unwrap_or_else(|e| unreachable!("the key pattern is valid: {e}"))
    })
}

/// A1111's `re_extra_net`: `<name:args>`.
fn re_extra_net() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"<(\w+):([^>]+)>")
            .unwrap_or_else(|e| unreachable!("re_extra_net is a valid pattern: {e}"))
    })
}

/// How many pairs A1111's regex finds in `line` (`len(re_param.findall(line))`).
pub(super) fn pair_count(line: &str) -> usize {
    re_param().find_iter(line).count()
}

/// The lines of a text: split at `\n`, a `\r` before it dropped (so `\r\n` files read as `\n`
/// ones), whitespace-only lines at the end dropped.
pub(super) fn lines(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out
}

/// The index of the parameters line (see the module doc), if any.
pub(super) fn params_line(lines: &[&str]) -> Option<usize> {
    if let Some(i) = lines.iter().rposition(|l| re_steps_line().is_match(l)) {
        return Some(i);
    }
    let last = lines.len().checked_sub(1)?;
    (pair_count(lines[last]) >= 3).then_some(last)
}

/// The pairs of a parameters line, in order, values unquoted. Text A1111's regex skips between
/// pairs joins the previous value (see the module doc).
pub(super) fn pairs(line: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut last_end = 0;
    for c in re_param().captures_iter(line) {
        let (Some(all), Some(k), Some(v)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        join_gap(&mut out, &line[last_end..all.start()]);
        last_end = all.end();
        out.push((k.as_str().trim_end().to_string(), unquote(v.as_str())));
    }
    join_gap(&mut out, &line[last_end..]);
    out
}

/// Appends skipped text to the last value, with the comma the previous match consumed, so the
/// value reads as written (nothing to attach it to before the first pair).
fn join_gap(out: &mut [(String, String)], gap: &str) {
    let gap = gap.trim_end();
    let gap = gap.strip_suffix(',').unwrap_or(gap);
    if gap.trim().is_empty() {
        return;
    }
    if let Some((_, v)) = out.last_mut() {
        v.push(',');
        v.push_str(gap);
    }
}

/// A1111's `unquote`: a value in double quotes is read as a JSON string; one that is not valid
/// JSON stays as written.
fn unquote(v: &str) -> String {
    let t = v.trim_end();
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(t) {
            return s;
        }
    }
    t.to_string()
}

/// A1111's `quote`: a value holding a comma, a colon or a newline is written as a JSON string
/// (non-ASCII kept as is, like `json.dumps(…, ensure_ascii=False)`). A value that starts with a
/// quote is quoted too, so it reads back unchanged.
pub(super) fn quote(v: &str) -> String {
    if v.contains([',', ':', '\n']) || v.starts_with('"') {
        serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.to_string()
    }
}

/// The fields on the lines after the parameters line, as `(key, text after "key:")`, the text
/// byte for byte (sd-dynamic-prompts writes `Template:` directly followed by the prompt). A
/// line that does not start with a key continues the previous field (joined with `\n`); one
/// before any key gets an empty key.
pub(super) fn trailing_fields(lines: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in lines {
        match re_trailing_key().captures(line).and_then(|c| c.get(1)) {
            Some(k) => out.push((k.as_str().to_string(), line[k.end() + 1..].to_string())),
            None => match out.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line);
                }
                None => out.push((String::new(), line.to_string())),
            },
        }
    }
    out
}

/// The trailing fields written back: `\nkey:value` each (a field without a key: `\nvalue`).
pub(super) fn format_trailing(out: &mut String, fields: &[(String, String)]) {
    for (k, v) in fields {
        out.push('\n');
        if !k.is_empty() {
            out.push_str(k);
            out.push(':');
        }
        out.push_str(v);
    }
}

/// Each extra-network tag of a prompt as (network name, args, byte range), in order.
pub(super) fn extra_networks(prompt: &str) -> Vec<(&str, &str, std::ops::Range<usize>)> {
    re_extra_net()
        .captures_iter(prompt)
        .filter_map(|c| Some((c.get(1)?.as_str(), c.get(2)?.as_str(), c.get(0)?.range())))
        .collect()
}
