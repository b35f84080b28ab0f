//! A read-mostly map filled once per key, for the CUDA paths' per-device tables (loaded kernels
//! with their attributes set, device properties): after the first fill of a key, a lookup is one
//! uncontended read lock and a hash, with no allocation.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};

/// A map whose values are made at most once per key by a fallible `fill` (a failed fill stores
/// nothing, so the next lookup tries again).
pub(crate) struct OnceMap<K, V> {
    map: RwLock<HashMap<K, V>>,
}

impl<K: Eq + Hash + Copy, V: Clone> OnceMap<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
        }
    }

    /// The value of `key`, made by `fill` if absent. `fill` runs without the lock held (it may
    /// compile and load a module), so two threads may both fill a new key: the first insert
    /// wins and both get its value.
    pub(crate) fn get_or_try_insert_with<E>(
        &self,
        key: K,
        fill: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // A poisoned lock still holds a consistent map: it only ever changes by one insert.
        if let Some(v) = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(v.clone());
        }
        let v = fill()?;
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        Ok(map.entry(key).or_insert(v).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::OnceMap;
    use std::cell::Cell;

    #[test]
    fn fills_once_per_key_and_retries_failures() {
        let m: OnceMap<(usize, &'static str), u32> = OnceMap::new();
        let fills = Cell::new(0);
        let fill = |v: u32| {
            fills.set(fills.get() + 1);
            Ok::<_, String>(v)
        };
        assert_eq!(m.get_or_try_insert_with((0, "a"), || fill(1)), Ok(1));
        assert_eq!(m.get_or_try_insert_with((0, "a"), || fill(2)), Ok(1));
        assert_eq!(m.get_or_try_insert_with((1, "a"), || fill(3)), Ok(3));
        assert_eq!(m.get_or_try_insert_with((0, "b"), || fill(4)), Ok(4));
        assert_eq!(fills.get(), 3, "a cached key must not be filled again");
        // A failed fill caches nothing: the next lookup fills again.
        let e = m.get_or_try_insert_with((2, "a"), || Err::<u32, _>("no".to_string()));
        assert_eq!(e, Err("no".to_string()));
        assert_eq!(m.get_or_try_insert_with((2, "a"), || fill(5)), Ok(5));
        assert_eq!(fills.get(), 4);
    }

    #[test]
    fn concurrent_lookups_see_one_value() {
        let m: OnceMap<usize, usize> = OnceMap::new();
        let got: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|i| {
                    let m = &m;
                    s.spawn(move || m.get_or_try_insert_with(7, || Ok::<_, ()>(100 + i)))
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("thread").expect("fill"))
                .collect()
        });
        assert!(got.iter().all(|&v| v == got[0]), "{got:?}");
    }
}
