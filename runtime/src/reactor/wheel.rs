//! TEMPORARY stub of the timing wheel (replaced by the real wheel).
#![allow(dead_code, missing_docs)]
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    seq: u64,
}

pub(crate) struct Wheel<T> {
    map: BTreeMap<(u64, u64), T>,
    keys: std::collections::HashMap<u64, u64>,
    seq: u64,
    elapsed: u64,
}

impl<T> std::fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wheel").field("len", &self.map.len()).finish()
    }
}

impl<T> Wheel<T> {
    pub(crate) fn new() -> Self {
        Wheel { map: BTreeMap::new(), keys: Default::default(), seq: 0, elapsed: 0 }
    }
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        self.seq += 1;
        self.map.insert((deadline, self.seq), value);
        self.keys.insert(self.seq, deadline);
        TimerKey { seq: self.seq }
    }
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let d = self.keys.remove(&key.seq)?;
        self.map.remove(&(d, key.seq))
    }
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let d = *self.keys.get(&key.seq)?;
        self.map.get_mut(&(d, key.seq))
    }
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.map.keys().next().map(|k| k.0)
    }
    pub(crate) fn advance(&mut self, now: u64, fire: &mut impl FnMut(TimerKey, T)) {
        if now > self.elapsed {
            self.elapsed = now;
        }
        while let Some(entry) = self.map.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let ((_, seq), v) = entry.remove_entry();
            self.keys.remove(&seq);
            fire(TimerKey { seq }, v);
        }
    }
}
