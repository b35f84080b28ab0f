//! Reading and checking a single-file checkpoint's safetensors header.

use std::collections::BTreeMap;

use candle_core::{DType, Result};

use super::bail;

/// Names and shapes of every tensor in a checkpoint (its safetensors header), sorted by name.
///
/// Architecture detection, the name maps and the config inference only ever look at this,
/// so they can be exercised without any tensor data.
#[derive(Debug, Clone, Default)]
pub struct Header {
    tensors: BTreeMap<String, (Vec<usize>, DType)>,
}

impl Header {
    /// Builds a header from `(name, shape, dtype)` triples.
    pub fn from_entries<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = (S, Vec<usize>, DType)>,
        S: Into<String>,
    {
        let tensors = entries
            .into_iter()
            .map(|(n, s, d)| (n.into(), (s, d)))
            .collect();
        Self { tensors }
    }

    /// Shape of `name`, if the checkpoint has it.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(s, _)| s.as_slice())
    }

    /// Storage dtype of `name`, if the checkpoint has it.
    pub fn dtype(&self, name: &str) -> Option<DType> {
        self.tensors.get(name).map(|(_, d)| *d)
    }

    /// Whether the checkpoint has a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Whether any tensor name starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.with_prefix(prefix).next().is_some()
    }

    /// All `(name, shape)` pairs whose name starts with `prefix`, in name order.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a [usize])> + 'a {
        self.tensors
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, (s, _))| (k.as_str(), s.as_slice()))
    }

    /// All tensor names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(|k| k.as_str())
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether the header lists no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Shape of `name` or an error naming the tensor and `what` needed it.
    pub(crate) fn require(&self, name: &str, what: &str) -> Result<&[usize]> {
        match self.shape(name) {
            Some(s) => Ok(s),
            None => bail!("checkpoint has no tensor `{name}` (needed for {what})"),
        }
    }

    /// Dimension `dim` of tensor `name`, with errors naming the tensor.
    pub(crate) fn dim(&self, name: &str, dim: usize, what: &str) -> Result<usize> {
        let s = self.require(name, what)?;
        match s.get(dim) {
            Some(&d) => Ok(d),
            None => bail!(
                "tensor `{name}` has shape {s:?}, expected at least {} dims (for {what})",
                dim + 1
            ),
        }
    }
}
