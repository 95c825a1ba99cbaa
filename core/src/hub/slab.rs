//! The hub's connections, in a slab: a [`ConnId`] carries the index of its connection's slot
//! (see [`ConnId::slot`]), so a lookup is an index and a check of the id kept in the record, not
//! a hash and a probe and then a pointer to follow.
//!
//! A broadcast looks up every member's connection (issue 22's big room: 3,000 per message), so
//! this is on its hottest path. Records live in the slab itself, in pages of [`PAGE`] slots that
//! never move: no box per connection (its pointer and its allocator header: 16 bytes, and the
//! cache miss of the pointer), and the connections of a room that filled up in one go sit side by
//! side in memory, in the order its list of attached connections walks them.
//!
//! A freed slot is reused by a later connection. The id it gets differs from the one before in
//! its sequence number ([`ConnId::seq`], unique over the hub's life), so a stale id (a shell's, a
//! timer's, a room's list's) never reaches the new connection: every lookup compares the whole
//! id with the record's own.
//!
//! Pages are never given back (the slab keeps its high-water mark, as the hash table it replaced
//! kept its buckets); the records of closed connections are dropped at once.

use super::conn::Conn;
use crate::types::ConnId;

/// Slots per page: 128 records of about 200 bytes, a 25 KiB allocation.
pub(crate) const PAGE: usize = 128;

/// A slot: a connection, or the next free slot after it.
#[derive(Debug)]
enum Slot {
    Used(Conn),
    /// The next free slot ([`NONE`]: this is the last).
    Free(u32),
}

/// No free slot.
const NONE: u32 = u32::MAX;

/// Connections by slot.
#[derive(Debug)]
pub(crate) struct ConnSlab {
    /// Every page full but the last; each allocated with room for exactly [`PAGE`] slots, so a
    /// page never reallocates and a record never moves while it is in the slab.
    pages: Vec<Vec<Slot>>,
    /// The first free slot ([`NONE`]: none; a new one is appended).
    free: u32,
    len: usize,
}

impl Default for ConnSlab {
    fn default() -> ConnSlab {
        ConnSlab {
            pages: Vec::new(),
            free: NONE,
            len: 0,
        }
    }
}

impl ConnSlab {
    fn slot(&self, i: usize) -> Option<&Slot> {
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot> {
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    /// The slot the next [`ConnSlab::insert`] fills, or `None` if every slot an id can name is
    /// taken.
    pub(crate) fn next_slot(&self) -> Option<u32> {
        if self.free != NONE {
            return Some(self.free);
        }
        let n = self.pages.len().saturating_sub(1) * PAGE + self.pages.last().map_or(0, Vec::len);
        u32::try_from(n).ok().filter(|&n| n <= ConnId::MAX_SLOT)
    }

    /// Puts `c` into the slot its id names, which must be [`ConnSlab::next_slot`]'s; false
    /// (and `c` dropped) if it is not.
    pub(crate) fn insert(&mut self, c: Conn) -> bool {
        let Some(at) = self.next_slot().filter(|&at| c.id.slot() == at as usize) else {
            return false;
        };
        if self.free == at {
            let Some(slot) = self.slot_mut(at as usize) else {
                return false;
            };
            let Slot::Free(next) = *slot else {
                return false;
            };
            *slot = Slot::Used(c);
            self.free = next;
        } else {
            if self.pages.last().is_none_or(|p| p.len() == PAGE) {
                self.pages.push(Vec::with_capacity(PAGE));
            }
            let Some(page) = self.pages.last_mut() else {
                return false;
            };
            page.push(Slot::Used(c));
        }
        self.len += 1;
        true
    }

    pub(crate) fn get(&self, id: &ConnId) -> Option<&Conn> {
        match self.slot(id.slot())? {
            Slot::Used(c) if c.id == *id => Some(c),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, id: &ConnId) -> Option<&mut Conn> {
        match self.slot_mut(id.slot())? {
            Slot::Used(c) if c.id == *id => Some(c),
            _ => None,
        }
    }

    pub(crate) fn contains_key(&self, id: &ConnId) -> bool {
        self.get(id).is_some()
    }

    /// Takes the connection out; its slot is the next one filled.
    pub(crate) fn remove(&mut self, id: &ConnId) -> Option<Conn> {
        let free = self.free;
        let slot = self.slot_mut(id.slot())?;
        if !matches!(slot, Slot::Used(c) if c.id == *id) {
            return None;
        }
        let Slot::Used(c) = core::mem::replace(slot, Slot::Free(free)) else {
            return None;
        };
        // `id.slot()` fits: it named a slot.
        self.free = id.slot() as u32;
        self.len -= 1;
        Some(c)
    }

    /// Connections in the slab.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every connection, in slot order (not id order).
    pub(crate) fn values(&self) -> impl Iterator<Item = &Conn> {
        self.pages.iter().flatten().filter_map(|s| match s {
            Slot::Used(c) => Some(c),
            Slot::Free(_) => None,
        })
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &ConnId> {
        self.values().map(|c| &c.id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ConnId, &Conn)> {
        self.values().map(|c| (&c.id, c))
    }

    /// Slots held (used or free): what the slab's pages hold records for.
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.pages.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::dialect::Door;
    use crate::time::Millis;
    use core::net::{IpAddr, Ipv4Addr};

    fn conn(id: ConnId) -> Conn {
        Conn::new(
            id,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Door::Natter,
            10,
            Millis(0),
        )
    }

    /// Adds a connection with the next sequence number, as the hub does.
    fn add(s: &mut ConnSlab, seq: &mut u64) -> ConnId {
        let slot = s.next_slot().expect("a free slot");
        let id = ConnId::new(*seq, slot).expect("an id");
        *seq += 1;
        assert!(s.insert(conn(id)));
        id
    }

    #[test]
    fn a_slot_is_reused_and_the_id_it_had_finds_nothing_there() {
        let mut s = ConnSlab::default();
        let mut seq = 1;
        let ids: Vec<ConnId> = (0..300).map(|_| add(&mut s, &mut seq)).collect();
        assert_eq!(s.len(), 300);
        assert_eq!(s.capacity(), 300);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(id.slot(), i);
            assert_eq!(id.seq(), i as u64 + 1);
            assert_eq!(s.get(id).map(|c| c.id), Some(*id));
        }
        // Free two slots; the next connections take them (last freed first), under new ids.
        assert_eq!(s.remove(&ids[7]).map(|c| c.id), Some(ids[7]));
        assert_eq!(s.remove(&ids[200]).map(|c| c.id), Some(ids[200]));
        assert!(s.remove(&ids[7]).is_none(), "removed once");
        assert_eq!(s.len(), 298);
        let a = add(&mut s, &mut seq);
        let b = add(&mut s, &mut seq);
        assert_eq!((a.slot(), b.slot()), (200, 7));
        assert_eq!(s.capacity(), 300, "no new slot while one was free");
        // The old ids name the same slots and find nothing: the generation differs.
        assert!(s.get(&ids[7]).is_none() && s.get(&ids[200]).is_none());
        assert!(s.get_mut(&ids[7]).is_none() && !s.contains_key(&ids[200]));
        assert!(s.remove(&ids[7]).is_none(), "a stale id removes nothing");
        assert_eq!(s.get(&b).map(|c| c.id), Some(b));
        // Ids stay ordered as they were handed out, whatever their slots.
        assert!(ids[299] < a && a < b);
        // Every connection once, and an id that names no slot yet finds nothing.
        let mut all: Vec<ConnId> = s.keys().copied().collect();
        all.sort_unstable();
        let mut want: Vec<ConnId> = ids
            .iter()
            .copied()
            .filter(|id| *id != ids[7] && *id != ids[200])
            .chain([a, b])
            .collect();
        want.sort_unstable();
        assert_eq!(all, want);
        assert!(s.get(&ConnId::new(seq, 5_000).expect("an id")).is_none());
        assert_eq!(s.iter().count(), 300);
    }

    #[test]
    fn a_connection_goes_only_into_the_slot_offered() {
        let mut s = ConnSlab::default();
        assert_eq!(s.next_slot(), Some(0));
        let wrong = ConnId::new(1, 1).expect("an id");
        assert!(!s.insert(conn(wrong)));
        assert_eq!(s.len(), 0);
        let id = ConnId::new(1, 0).expect("an id");
        assert!(s.insert(conn(id)));
        assert!(!s.insert(conn(id)), "slot 0 is taken");
        assert_eq!(s.next_slot(), Some(1));
    }

    #[test]
    fn a_slot_costs_what_a_connection_does() {
        // The free link lives in the record's niche: a slot is a `Conn`, no more.
        assert_eq!(size_of::<Slot>(), size_of::<Conn>());
    }
}
