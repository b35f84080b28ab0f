//! Quoting user values in messages: at most [`QUOTE_MAX`] characters of any value are echoed,
//! so a 1 MB parameter or file name gives a one-line error, not a megabyte on stderr.

/// The most characters of a value that a message quotes.
pub const QUOTE_MAX: usize = 100;

/// `s` cut to [`QUOTE_MAX`] characters, control characters shown as escapes (`\n`), so the
/// message stays one line; a longer value ends in `…` and its total length.
pub fn clip(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        None => escape_controls(s),
        Some((cut, _)) => format!("{}… ({} bytes in all)", escape_controls(&s[..cut]), s.len()),
    }
}

/// `s` with its control characters (newlines, escapes, …) written as Rust escapes.
fn escape_controls(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` as a quoted, escaped string (control and invisible characters shown as escapes), cut to
/// [`QUOTE_MAX`] characters as in [`clip`].
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_MAX) {
        None => format!("{s:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes in all)", &s[..cut], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_cut() {
        assert_eq!(clip("abc"), "abc");
        assert_eq!(clip("a\nb\u{1b}`é"), "a\\nb\\u{1b}`é");
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let long = "é".repeat(1 << 20);
        let c = clip(&long);
        assert!(c.chars().count() < QUOTE_MAX + 40, "{}", c.len());
        assert!(c.ends_with(&format!("({} bytes in all)", long.len())));
        let q = quote(&long);
        assert!(q.starts_with('"') && q.len() < 4 * QUOTE_MAX, "{}", q.len());
    }
}
