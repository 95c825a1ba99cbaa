//! The hub's tables of users and devices (connections are in a [`super::slab`]): boxed records that carry their own id,
//! in a hash table of the boxes alone.
//!
//! A `HashMap<Id, Box<T>>` slot is 16 bytes: the id beside the pointer. Each record holds its
//! id anyway (a `Conn` its `ConnId`; a `User` and a `Device` gained theirs in the slack of
//! their glibc chunk), so a slot here is the pointer alone, 8 bytes, hashed and compared
//! through the record. In a table of 8,192 slots at 5,000 connections that is 13 bytes less
//! per connection and table (issue 22's idle memory); a lookup reads the record it was going
//! to read anyway.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::{BuildHasher, Hash};

/// A record that knows its id.
pub(crate) trait Keyed {
    type Key: Copy + Eq + Hash;
    fn key(&self) -> &Self::Key;
}

/// Boxed records by their id: the `HashMap<K, Box<V>>` calls the hub makes, on 8-byte slots.
pub(crate) struct IdMap<V: Keyed>(HashTable<Box<V>>);

fn hash<K: Hash>(k: &K) -> u64 {
    FxBuildHasher.hash_one(k)
}

impl<V: Keyed> Default for IdMap<V> {
    fn default() -> IdMap<V> {
        IdMap(HashTable::new())
    }
}

impl<V: Keyed + core::fmt::Debug> core::fmt::Debug for IdMap<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<V: Keyed> IdMap<V> {
    pub(crate) fn get(&self, k: &V::Key) -> Option<&V> {
        self.0.find(hash(k), |v| v.key() == k).map(|v| &**v)
    }

    pub(crate) fn get_mut(&mut self, k: &V::Key) -> Option<&mut V> {
        self.0.find_mut(hash(k), |v| v.key() == k).map(|v| &mut **v)
    }

    pub(crate) fn contains_key(&self, k: &V::Key) -> bool {
        self.get(k).is_some()
    }

    /// Puts `v` under `k` (which must be `v`'s own id), returning the record it replaces.
    pub(crate) fn insert(&mut self, k: V::Key, v: Box<V>) -> Option<Box<V>> {
        debug_assert!(*v.key() == k, "a record goes under its own id");
        match self.0.entry(hash(&k), |x| *x.key() == k, |x| hash(x.key())) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(core::mem::replace(o.get_mut(), v))
            }
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(v);
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, k: &V::Key) -> Option<Box<V>> {
        self.0
            .find_entry(hash(k), |v| v.key() == k)
            .ok()
            .map(|o| o.remove().0)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &V::Key> {
        self.0.iter().map(|v| v.key())
    }
}

impl<'a, V: Keyed> IntoIterator for &'a IdMap<V> {
    type Item = (&'a V::Key, &'a V);
    type IntoIter = core::iter::Map<
        hashbrown::hash_table::Iter<'a, Box<V>>,
        fn(&'a Box<V>) -> (&'a V::Key, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|v| (v.key(), &**v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct R {
        id: u64,
        v: u32,
    }

    impl Keyed for R {
        type Key = u64;
        fn key(&self) -> &u64 {
            &self.id
        }
    }

    #[test]
    fn an_id_map_finds_replaces_and_removes_by_id() {
        let mut m = IdMap::<R>::default();
        for id in 0..1000 {
            assert!(m.insert(id, Box::new(R { id, v: 1 })).is_none());
        }
        assert_eq!(m.len(), 1000);
        assert_eq!(m.get(&7).map(|r| r.v), Some(1));
        assert_eq!(
            m.insert(7, Box::new(R { id: 7, v: 2 })).map(|r| r.v),
            Some(1)
        );
        assert_eq!(m.get(&7).map(|r| r.v), Some(2));
        if let Some(r) = m.get_mut(&8) {
            r.v = 3;
        }
        assert_eq!(m.get(&8).map(|r| r.v), Some(3));
        assert_eq!(m.remove(&7).map(|r| r.id), Some(7));
        assert!(m.remove(&7).is_none() && !m.contains_key(&7) && m.get(&1000).is_none());
        assert_eq!(m.len(), 999);
        let mut keys: Vec<u64> = m.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..1000).filter(|&k| k != 7).collect::<Vec<_>>());
        assert!((&m).into_iter().all(|(k, r)| *k == r.id));
        // A slot is the box alone.
        assert_eq!(size_of::<Box<R>>(), 8);
    }
}
