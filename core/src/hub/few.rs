//! A list of a few items, held inline while it has exactly one: a user's rooms and devices.
//!
//! Nearly every user is in one room through one device, and a `Vec` of one item is a heap
//! allocation of its own: a 48-byte glibc chunk for one room name, a 32-byte one (the
//! smallest) for one device id, on top of the vector's 24 bytes in the user (issue 22's idle
//! memory). [`Few`] keeps that one item in place of the vector, and a vector holding exactly
//! its items once there are more.

/// Zero, one (inline) or more (a vector holding exactly its items) of `T`, in the order the
/// caller keeps them.
#[derive(Debug, Clone)]
pub(crate) enum Few<T> {
    /// None (an empty vector, no allocation) or more than one.
    Many(Vec<T>),
    One(T),
}

impl<T> Default for Few<T> {
    fn default() -> Few<T> {
        Few::Many(Vec::new())
    }
}

impl<T> Few<T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Few::Many(v) => v,
            Few::One(x) => core::slice::from_ref(x),
        }
    }

    pub(crate) fn iter(&self) -> core::slice::Iter<'_, T> {
        self.as_slice().iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Inserts `item` at `at` (at most the length).
    pub(crate) fn insert(&mut self, at: usize, item: T) {
        match self {
            Few::Many(v) if v.is_empty() => *self = Few::One(item),
            Few::Many(v) => {
                // Room for exactly this one more: a list of a few seldom grows again.
                v.reserve_exact(1);
                v.insert(at, item);
            }
            Few::One(_) => {
                let Few::One(first) = core::mem::take(self) else {
                    return;
                };
                let mut v = Vec::with_capacity(2);
                v.push(first);
                v.insert(at.min(1), item);
                *self = Few::Many(v);
            }
        }
    }

    /// Appends `item`.
    pub(crate) fn push(&mut self, item: T) {
        let at = self.len();
        self.insert(at, item);
    }

    /// Removes and returns the item at `at`, if there is one.
    pub(crate) fn remove(&mut self, at: usize) -> Option<T> {
        if at >= self.len() {
            return None;
        }
        let removed = match core::mem::take(self) {
            Few::One(x) => x,
            Few::Many(mut v) => {
                let x = v.remove(at);
                *self = Few::from_vec(v);
                x
            }
        };
        Some(removed)
    }

    /// Keeps the items `keep` says yes to.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let mut v = match core::mem::take(self) {
            Few::One(x) => vec![x],
            Few::Many(v) => v,
        };
        v.retain(keep);
        *self = Few::from_vec(v);
    }

    /// The items of `v`, inline if just one; a vector holding exactly them otherwise.
    fn from_vec(mut v: Vec<T>) -> Few<T> {
        if v.len() == 1
            && let Some(x) = v.pop()
        {
            return Few::One(x);
        }
        v.shrink_to_fit();
        Few::Many(v)
    }
}

impl<T: Clone> Few<T> {
    pub(crate) fn to_vec(&self) -> Vec<T> {
        self.as_slice().to_vec()
    }
}

impl<'a, T> IntoIterator for &'a Few<T> {
    type Item = &'a T;
    type IntoIter = core::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::Few;

    #[test]
    fn one_item_is_inline_and_more_are_exact() {
        let mut f = Few::default();
        assert!(f.is_empty());
        f.push(2u64);
        assert!(matches!(f, Few::One(2)));
        f.insert(0, 1);
        f.push(3);
        assert_eq!(f.as_slice(), [1, 2, 3]);
        let Few::Many(v) = &f else {
            panic!("three items inline")
        };
        assert_eq!(v.capacity(), 3);
        assert_eq!(f.remove(1), Some(2));
        assert_eq!(f.remove(5), None);
        assert_eq!(f.as_slice(), [1, 3]);
        f.retain(|x| *x != 1);
        assert!(matches!(f, Few::One(3)));
        assert_eq!(f.remove(0), Some(3));
        assert!(f.is_empty() && matches!(&f, Few::Many(v) if v.capacity() == 0));
        f.push(7);
        f.retain(|_| false);
        assert!(f.is_empty());
        assert_eq!(f.len(), 0);
    }

    #[test]
    fn a_list_of_ids_takes_no_more_room_than_a_vector() {
        assert_eq!(size_of::<Few<u64>>(), size_of::<Vec<u64>>());
    }
}
