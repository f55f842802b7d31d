//! A minimal slab: a `Vec` of slots plus a free list, so a key stays valid
//! until it is removed and a removed slot is reused before the vector grows.
//!
//! The reactor keys I/O registrations by slab index (the `mio::Token`), and
//! the green scheduler keys its threads the same way. Memory is bounded by
//! the largest number of entries alive at once.

/// One slot: either a value or a link in the free list.
#[derive(Debug)]
enum Slot<T> {
    Occupied(T),
    Vacant { next_free: usize },
}

/// A vector of values addressed by stable `usize` keys.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    /// Head of the free list; `usize::MAX` when empty.
    free: usize,
    len: usize,
}

impl<T> Slab<T> {
    /// An empty slab.
    pub(crate) const fn new() -> Self {
        Slab { slots: Vec::new(), free: usize::MAX, len: 0 }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of slots ever allocated (occupied or free).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The key the next `insert` will return.
    pub(crate) fn vacant_key(&self) -> usize {
        if self.free == usize::MAX { self.slots.len() } else { self.free }
    }

    /// Stores `value` and returns its key.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        self.len += 1;
        if self.free == usize::MAX {
            self.slots.push(Slot::Occupied(value));
            return self.slots.len() - 1;
        }
        let key = self.free;
        match std::mem::replace(&mut self.slots[key], Slot::Occupied(value)) {
            Slot::Vacant { next_free } => self.free = next_free,
            Slot::Occupied(_) => unreachable!("slab free list points at an occupied slot"),
        }
        key
    }

    /// Removes and returns the value at `key`, if occupied.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if matches!(slot, Slot::Vacant { .. }) {
            return None;
        }
        let old = std::mem::replace(slot, Slot::Vacant { next_free: self.free });
        self.free = key;
        self.len -= 1;
        match old {
            Slot::Occupied(value) => Some(value),
            Slot::Vacant { .. } => None,
        }
    }

    /// Vacates the slot at `key` once `f` took what it needs out of its
    /// value, in place; the rest of the value is forgotten, not dropped (so
    /// it should own nothing by then). `None` if the slot was vacant. For
    /// large values, which `remove` would copy out whole.
    #[inline]
    pub(crate) fn vacate_with<R>(&mut self, key: usize, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let free = self.free;
        let slot = self.slots.get_mut(key)?;
        let Slot::Occupied(value) = slot else { return None };
        let taken = f(value);
        std::mem::forget(std::mem::replace(slot, Slot::Vacant { next_free: free }));
        self.free = key;
        self.len -= 1;
        Some(taken)
    }

    /// The value at `key`, if occupied.
    pub(crate) fn get(&self, key: usize) -> Option<&T> {
        match self.slots.get(key) {
            Some(Slot::Occupied(value)) => Some(value),
            _ => None,
        }
    }

    /// The value at `key`, if occupied.
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.slots.get_mut(key) {
            Some(Slot::Occupied(value)) => Some(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Slab;

    #[test]
    fn reuses_freed_slots() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        assert_eq!(slab.remove(a), Some('a'));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.vacant_key(), a);
        let c = slab.insert('c');
        assert_eq!(c, a);
        assert_eq!(slab.get(b), Some(&'b'));
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.capacity(), 2);
    }
}
