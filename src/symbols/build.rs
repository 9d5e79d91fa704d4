//! Building a `SymbolIndex` in one go: builders collect (entry, hash) pairs while they walk a
//! file, then the slot table is filled region by region (cache-local writes), on two threads
//! for kernel-sized tables.

use super::{capacity_for, hash, home, Entry, Symbol, SymbolIndex, HI};

/// Collects entries with their hashes while a builder walks a file (the name is in cache
/// then), and builds the table once at the end.
pub(crate) struct Builder {
    entries: Vec<Entry>,
    /// (hash & HI) | entry number
    items: Vec<u64>,
}

impl Builder {
    pub(crate) fn with_capacity(n: usize) -> Builder {
        Builder {
            entries: Vec::with_capacity(n),
            items: Vec::with_capacity(n),
        }
    }

    /// Appends the entries of `other` (built over the same arena) after this one's.
    pub(crate) fn append(&mut self, other: Builder) {
        let base = self.entries.len() as u64;
        if base + other.entries.len() as u64 >= u32::MAX as u64 - 1 {
            return;
        }
        self.entries.extend_from_slice(&other.entries);
        self.items.extend(other.items.iter().map(|&x| x + base));
    }

    /// Adds `name` (which is `arena[off..off+len]` of the final arena).
    #[inline]
    pub(crate) fn push(&mut self, off: usize, name: &[u8], sym: Symbol) {
        if let Some(e) = Entry::new(off, name.len(), sym) {
            self.push_entry(e, name);
        }
    }

    #[inline]
    pub(super) fn push_entry(&mut self, e: Entry, name: &[u8]) {
        self.push_hashed(e, hash(name));
    }

    /// Adds an entry whose name hash the caller computed (`scan_cstr`).
    #[inline]
    pub(crate) fn push_hashed(&mut self, e: Entry, h: u64) {
        if self.entries.len() < u32::MAX as usize - 1 {
            self.items.push((h & HI) | self.entries.len() as u64);
            self.entries.push(e);
        }
    }

    pub(crate) fn finish(
        self,
        source: impl Into<String>,
        arena: Vec<u8>,
        replace: bool,
    ) -> SymbolIndex {
        let Builder { entries, items } = self;
        let mut idx = SymbolIndex::new(source);
        idx.arena = arena;
        let cap = capacity_for(entries.len());
        // Inserting region by region keeps the writes cache-local; linear probing does not
        // care about insertion order, and equal names (equal hashes, one region) still come
        // in entry order, which the duplicate rule below relies on.
        let items = partition_top(&items, cap.trailing_zeros().saturating_sub(REGION_BITS));
        idx.slots = vec![0u64; cap];
        let mut dead = Vec::new();
        let mut deferred = Vec::new();
        let filler = Filler {
            entries: &entries,
            arena: &idx.arena,
            cap,
            replace,
        };
        if items.len() >= PARALLEL_MIN_ENTRIES
            && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
        {
            // Two threads, each filling one half of the table; an item whose probe would
            // leave its half is inserted afterwards.
            let mid = items.partition_point(|&x| home(x, cap) < cap / 2);
            let (lo_items, hi_items) = items.split_at(mid);
            let (lo_slots, hi_slots) = idx.slots.split_at_mut(cap / 2);
            let (mut dead_hi, mut deferred_hi) = (Vec::new(), Vec::new());
            std::thread::scope(|sc| {
                let f = &filler;
                let other = sc.spawn(move || {
                    f.fill(hi_slots, cap / 2, hi_items, &mut dead_hi, &mut deferred_hi);
                    (dead_hi, deferred_hi)
                });
                f.fill(lo_slots, 0, lo_items, &mut dead, &mut deferred);
                // The filler only indexes checked slices; a panic there is a bug, not input.
                let (d, q) = other.join().expect("symbol index filler");
                dead.extend(d);
                deferred.extend(q);
            });
        } else {
            deferred = items;
        }
        filler.fill_wrapping(&mut idx.slots, &deferred, &mut dead);
        idx.entries = entries;
        for i in dead {
            idx.mark_dead(i);
        }
        idx
    }
}

/// Slots per region of the table that `Builder::finish` fills at a time (4 KiB of slots: the
/// random writes of one region stay in L1).
const REGION_BITS: u32 = 9;

/// Stable partition of `items` by their top `bits` bits (their table region): one counting
/// pass and one scatter pass. Returns the items in region order.
fn partition_top(items: &[u64], bits: u32) -> Vec<u64> {
    if bits == 0 {
        return items.to_vec();
    }
    let shift = 64 - bits;
    let mut offs = vec![0usize; 1 << bits];
    for &x in items {
        offs[(x >> shift) as usize] += 1;
    }
    let mut sum = 0;
    for o in offs.iter_mut() {
        let c = *o;
        *o = sum;
        sum += c;
    }
    let mut out = vec![0u64; items.len()];
    for &x in items {
        let r = &mut offs[(x >> shift) as usize];
        out[*r] = x;
        *r += 1;
    }
    out
}

/// Tables with fewer entries are filled by one thread.
const PARALLEL_MIN_ENTRIES: usize = 32_768;

/// Inserts builder items into the slot table (see `Builder::finish`).
struct Filler<'a> {
    entries: &'a [Entry],
    arena: &'a [u8],
    cap: usize,
    replace: bool,
}

impl Filler<'_> {
    fn same_name(&self, i: usize, j: usize) -> bool {
        self.arena.get(self.entries[i].range()) == self.arena.get(self.entries[j].range())
    }

    /// Places item `item` (entry `i`) in slot `s`, which holds `v`, if `v` is the same name.
    /// Returns true when the item is settled (a duplicate: one of the two marked dead).
    #[inline]
    fn settle_duplicate(&self, slot: &mut u64, item: u64, dead: &mut Vec<usize>) -> bool {
        let v = *slot;
        if v & HI != item & HI {
            return false;
        }
        let (i, j) = ((item & !HI) as usize, (v as u32 - 1) as usize);
        if !self.same_name(i, j) {
            return false;
        }
        // Same name: equal hashes come in entry order, so j < i.
        if self.replace {
            *slot = (item & HI) | (i as u64 + 1);
            dead.push(j);
        } else {
            dead.push(i);
        }
        true
    }

    /// Fills `slots` (the table's slots `base..base + slots.len()`) with `items`, whose home
    /// slots lie in that range; items whose probe runs past its end go to `deferred`.
    fn fill(
        &self,
        slots: &mut [u64],
        base: usize,
        items: &[u64],
        dead: &mut Vec<usize>,
        deferred: &mut Vec<u64>,
    ) {
        'items: for &item in items {
            let mut s = home(item, self.cap) - base;
            while let Some(slot) = slots.get_mut(s) {
                if *slot == 0 {
                    *slot = (item & HI) | ((item & !HI) + 1);
                    continue 'items;
                }
                if self.settle_duplicate(slot, item, dead) {
                    continue 'items;
                }
                s += 1;
            }
            deferred.push(item);
        }
    }

    /// Fills the whole table with `items`, probing around its end.
    fn fill_wrapping(&self, slots: &mut [u64], items: &[u64], dead: &mut Vec<usize>) {
        let mask = self.cap - 1;
        for &item in items {
            let mut s = home(item, self.cap);
            loop {
                if slots[s] == 0 {
                    slots[s] = (item & HI) | ((item & !HI) + 1);
                    break;
                }
                if self.settle_duplicate(&mut slots[s], item, dead) {
                    break;
                }
                s = (s + 1) & mask;
            }
        }
    }
}
