//! The in-memory form of the catalogue's indexes: a bitset per tag (and per tag key, for
//! `key:*`) over the items' positions, and each numeric field as a column sorted by value. A
//! query is evaluated as bitset operations; a comparison is two binary searches.

use std::collections::HashMap;

use super::query::{Expr, Range};
use crate::store::RawIndex;

/// A set of item positions (bit `i` = the `i`-th item id in ascending order).
#[derive(Clone, Debug, PartialEq)]
struct Bits(Vec<u64>);

impl Bits {
    fn empty(n: usize) -> Bits {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn and(mut self, o: &Bits) -> Bits {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a &= b);
        self
    }
    fn or(mut self, o: &Bits) -> Bits {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a |= b);
        self
    }
    fn not(mut self, n: usize) -> Bits {
        self.0.iter_mut().for_each(|a| *a = !*a);
        if !n.is_multiple_of(64) {
            if let Some(last) = self.0.last_mut() {
                *last &= (1u64 << (n % 64)) - 1;
            }
        }
        self
    }
    fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut x = word;
            std::iter::from_fn(move || {
                if x == 0 {
                    return None;
                }
                let b = x.trailing_zeros() as usize;
                x &= x - 1;
                Some(w * 64 + b)
            })
        })
    }
}

/// The catalogue's indexes, as loaded from the store ([`Index::build`]).
pub struct Index {
    generation: u64,
    /// Every item id, ascending; an item's position is its index here.
    ids: Vec<u64>,
    tags: HashMap<String, Bits>,
    /// `key` → items with any `key:…` tag.
    keys: HashMap<String, Bits>,
    /// field → (value, position), sorted by value.
    fields: HashMap<String, Vec<(f64, u32)>>,
}

impl Index {
    /// Builds the in-memory index from the stored posting lists and columns.
    pub fn build(raw: RawIndex) -> Index {
        let n = raw.ids.len();
        let pos = |id: u64| raw.ids.binary_search(&id).ok();
        let mut tags = HashMap::with_capacity(raw.tags.len());
        let mut keys: HashMap<String, Bits> = HashMap::new();
        for (tag, ids) in &raw.tags {
            let mut b = Bits::empty(n);
            for &id in ids {
                if let Some(p) = pos(id) {
                    b.set(p);
                }
            }
            if let Some((k, _)) = tag.split_once(':') {
                let any = keys.entry(k.to_string()).or_insert_with(|| Bits::empty(n));
                *any = std::mem::replace(any, Bits(Vec::new())).or(&b);
            }
            tags.insert(tag.clone(), b);
        }
        let mut fields = HashMap::with_capacity(raw.fields.len());
        for (name, col) in raw.fields {
            let mut sorted: Vec<(f64, u32)> = col
                .into_iter()
                .filter_map(|(id, v)| Some((v, pos(id)? as u32)))
                .collect();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            fields.insert(name, sorted);
        }
        Index {
            generation: raw.generation,
            ids: raw.ids,
            tags,
            keys,
            fields,
        }
    }

    /// The store generation this index was built from.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Every tag in the index with its number of items, sorted by tag.
    pub fn tag_counts(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = self
            .tags
            .iter()
            .map(|(t, b)| (t.clone(), b.ones().count()))
            .collect();
        v.sort();
        v
    }

    /// Every numeric field in the index, sorted.
    pub fn field_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.fields.keys().cloned().collect();
        v.sort();
        v
    }

    /// The ids of the items matching `e`, ascending.
    pub fn eval(&self, e: &Expr) -> Vec<u64> {
        self.bits(e).ones().map(|p| self.ids[p]).collect()
    }

    fn tag_bits(&self, tag: &str) -> Bits {
        self.tags
            .get(tag)
            .cloned()
            .unwrap_or_else(|| Bits::empty(self.ids.len()))
    }

    fn bits(&self, e: &Expr) -> Bits {
        let n = self.ids.len();
        match e {
            Expr::Tag { key, value } => self.tag_bits(&format!("{key}:{value}")),
            Expr::Word(w) => self.tag_bits(w),
            Expr::AnyValue { key } => self
                .keys
                .get(key)
                .cloned()
                .unwrap_or_else(|| Bits::empty(n)),
            Expr::Cmp { field, op, value } => {
                let mut b = Bits::empty(n);
                let Some(col) = self.fields.get(field) else {
                    return b;
                };
                let r = Range::new(*op, *value);
                let below = |v: f64| if r.lo.1 { v < r.lo.0 } else { v <= r.lo.0 };
                let within = |v: f64| if r.hi.1 { v <= r.hi.0 } else { v < r.hi.0 };
                let start = col.partition_point(|&(v, _)| below(v));
                let end = start + col[start..].partition_point(|&(v, _)| within(v));
                if r.outside {
                    for &(_, p) in col[..start].iter().chain(&col[end..]) {
                        b.set(p as usize);
                    }
                } else {
                    for &(_, p) in &col[start..end] {
                        b.set(p as usize);
                    }
                }
                b
            }
            Expr::Not(a) => self.bits(a).not(n),
            Expr::And(a, b) => self.bits(a).and(&self.bits(b)),
            Expr::Or(a, b) => self.bits(a).or(&self.bits(b)),
        }
    }
}
