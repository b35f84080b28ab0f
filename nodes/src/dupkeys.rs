//! Refusing duplicate keys in a graph document. `serde_json` keeps the last of two equal keys
//! without a word, so a file with two nodes `"n1"` (or two values for one parameter) would run
//! something other than what a reader of the file sees. [`check`] walks the JSON text once with
//! a visitor that remembers each object's keys and fails on the first repeat, naming the key
//! and where it is.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

use crate::quote::clip;

/// Fails with a `serde_json` error (which carries the line and column) on the first object
/// that holds a key twice; the message names the key and the path of the object.
pub fn check(text: &str) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Walk { path: "" }.deserialize(&mut de)?;
    de.end()
}

/// Visits one JSON value at `path` (`nodes.n1.params`, `links[2]`).
struct Walk<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq.next_element_seed(Walk { path: &path })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if seen.contains(&key) {
                let place = if self.path.is_empty() {
                    "at the top level".to_string()
                } else {
                    format!("in \"{}\"", clip(self.path))
                };
                return Err(A::Error::custom(format!(
                    "duplicate key \"{}\" {place} (JSON keeps only the last; remove or rename one)",
                    clip(&key)
                )));
            }
            map.next_value_seed(Walk { path: &path })?;
            seen.insert(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        assert!(check(r#"{"a": 1, "b": {"c": [1, {"d": 2}]}}"#).is_ok());
        let e = check(r#"{"a": 1, "a": 2}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key \"a\" at the top level"), "{e}");
        let e = check("{\"n\": {\"p\": [{\"x\": 1,\n \"x\": 2}]}}").unwrap_err();
        assert!(e.to_string().contains("in \"n.p[0]\""), "{e}");
        assert_eq!(e.line(), 2);
    }
}
