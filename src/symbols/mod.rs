//! Kernel symbol tables: one hashed index per descriptor, filled from an ELF kernel, a
//! System.map / kallsyms text file, /proc/kallsyms, or a dump's own tables.
//!
//! The index keeps every name in one byte arena (for files: the file's own string table or
//! text, moved in without copying names one by one) and an open-addressing table of entry
//! numbers, so building costs one pass and one small allocation set, and a lookup is a hash,
//! usually one probe and one comparison, whatever the table size.

mod build;
pub mod elf;
pub mod sysmap;

pub(crate) use build::Builder;

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

pub mod kallsyms_dump;

/// One symbol: its value (an address in the examined kernel) and its a.out type for `n_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub value: u64,
    pub n_type: u8,
}

/// What kind of source filled an index (decides how it is relocated on the live system).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SymbolKind {
    /// Built by hand (VMCOREINFO, a dump's tables...).
    #[default]
    Other,
    /// An ELF kernel's .symtab: link-time addresses.
    Elf,
    /// A System.map: link-time addresses.
    SystemMap,
    /// A kallsyms listing (live or a copy): run-time addresses of the kernel that wrote it.
    Kallsyms,
}

/// A name's place in the arena plus its symbol. `len_type` packs the name length (24 bits)
/// and n_type (8 bits) so an entry is 16 bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    off: u32,
    len_type: u32,
    value: u64,
}

/// Longest name the index stores (longer ones are skipped by the builders).
pub const MAX_NAME_LEN: usize = (1 << 24) - 1;

impl Entry {
    /// None when the name is too long or beyond 4 GiB of arena.
    pub(crate) fn new(off: usize, len: usize, sym: Symbol) -> Option<Entry> {
        if len > MAX_NAME_LEN || off.checked_add(len)? > u32::MAX as usize {
            return None;
        }
        Some(Entry {
            off: off as u32,
            len_type: ((len as u32) << 8) | sym.n_type as u32,
            value: sym.value,
        })
    }
    fn len(&self) -> usize {
        (self.len_type >> 8) as usize
    }
    fn n_type(&self) -> u8 {
        self.len_type as u8
    }
    fn range(&self) -> std::ops::Range<usize> {
        self.off as usize..self.off as usize + self.len()
    }
}

/// High half of a hash: kept in the slot as a tag (and its top bits pick the home slot).
const HI: u64 = 0xffff_ffff_0000_0000;

/// Name -> symbol, O(1) lookups. With `insert`, the first definition of a name wins (kernel
/// symbols are listed before module symbols in kallsyms); ELF tables use `insert_replace`
/// (FreeBSD's nlist lets a later duplicate overwrite).
#[derive(Default, Debug)]
pub struct SymbolIndex {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// Entries shadowed by a duplicate name (empty when there were none).
    dead: Vec<bool>,
    ndead: usize,
    /// 0 = empty; else (hash & HI) | (entry number + 1). Length: a power of two (or 0).
    slots: Vec<u64>,
    /// Where the symbols came from, for messages ("/proc/kallsyms", "System.map", ...).
    pub source: String,
    /// Added to every value on lookup (KASLR / relocated kernel).
    pub displacement: i64,
    pub kind: SymbolKind,
    /// Lines of a text symbol file that did not parse and were skipped.
    pub skipped_lines: usize,
    /// 1-based number of the first skipped line (0 = none).
    pub first_skipped_line: usize,
}

const K: u64 = 0x9e37_79b9_7f4a_7c15;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h.rotate_left(23) ^ w).wrapping_mul(K)
}

#[inline]
fn finish_hash(h: u64, len: usize) -> u64 {
    // One more round so the last word's bits reach the top, which picks the slot.
    let h = mix(h, len as u64);
    (h ^ (h >> 29)).wrapping_mul(K)
}

/// Word-at-a-time multiplicative hash (FxHash-like): names are short and not adversarial,
/// build speed matters. Words are little-endian, the last one zero-padded.
#[inline]
fn hash(name: &[u8]) -> u64 {
    let mut h = K;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        h = mix(
            h,
            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        );
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut t = [0u8; 8];
        t[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(t));
    }
    finish_hash(h, name.len())
}

/// The NUL-terminated name at `s[start..]` in one pass: (length, hash, all ASCII).
/// None when `start` is outside `s` or the name is unterminated.
#[inline]
pub(crate) fn scan_cstr(s: &[u8], start: usize) -> Option<(usize, u64, bool)> {
    let tail = s.get(start..)?;
    let mut h = K;
    let mut seen = 0u64;
    let mut i = 0;
    while let Some(c) = tail.get(i..i + 8) {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        // The lowest flagged byte is the first zero byte (higher flags may be borrows).
        let z = w.wrapping_sub(ONES) & !w & HIGHS;
        if z != 0 {
            let n = (z.trailing_zeros() / 8) as usize;
            if n > 0 {
                let part = w & ((1u64 << (8 * n)) - 1);
                h = mix(h, part);
                seen |= part;
            }
            return Some((i + n, finish_hash(h, i + n), seen & HIGHS == 0));
        }
        h = mix(h, w);
        seen |= w;
        i += 8;
    }
    let rest = &tail[i..];
    let n = memchr::memchr(0, rest)?;
    if n > 0 {
        let mut t = [0u8; 8];
        t[..n].copy_from_slice(&rest[..n]);
        let part = u64::from_le_bytes(t);
        h = mix(h, part);
        seen |= part;
    }
    Some((i + n, finish_hash(h, i + n), seen & HIGHS == 0))
}

/// Slot count for `n` entries: load factor at most 0.7 (linear probing stays short).
fn capacity_for(n: usize) -> usize {
    (n.saturating_mul(10) / 7 + 1).max(16).next_power_of_two()
}

/// Home slot of a tagged value in a table of `cap` slots (cap a power of two, <= 2^32).
#[inline]
fn home(tagged: u64, cap: usize) -> usize {
    (tagged >> (64 - cap.trailing_zeros())) as usize
}

impl SymbolIndex {
    pub fn new(source: impl Into<String>) -> Self {
        SymbolIndex {
            source: source.into(),
            ..Default::default()
        }
    }

    pub fn with_capacity(source: impl Into<String>, n: usize) -> Self {
        let mut idx = SymbolIndex::new(source);
        idx.reserve(n);
        idx
    }

    /// Builds an index in one go from names in `arena` (a file's text or string table).
    /// `replace`: a later duplicate wins (ELF), else the first one does (kallsyms).
    /// The entries are inserted in home-slot order, so the table is written front to back
    /// instead of at random (several times faster for kernel-sized tables).
    #[cfg(test)]
    pub(crate) fn from_entries(
        source: impl Into<String>,
        arena: Vec<u8>,
        entries: Vec<Entry>,
        replace: bool,
    ) -> Self {
        let mut b = Builder::with_capacity(entries.len());
        for e in entries {
            if let Some(name) = arena.get(e.range()) {
                b.push_entry(e, name);
            }
        }
        b.finish(source, arena, replace)
    }

    fn mark_dead(&mut self, i: usize) {
        if self.dead.is_empty() {
            self.dead = vec![false; self.entries.len()];
        }
        if i >= self.dead.len() {
            self.dead.resize(i + 1, false);
        }
        if !self.dead[i] {
            self.dead[i] = true;
            self.ndead += 1;
        }
    }

    /// Makes room for `n` entries in total without rehashing.
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n.saturating_sub(self.entries.len()));
        let want = capacity_for(n);
        if want > self.slots.len() {
            self.rehash(want);
        }
    }

    fn rehash(&mut self, cap: usize) {
        let mut slots = vec![0u64; cap];
        let mask = cap - 1;
        for &v in self.slots.iter().filter(|&&v| v != 0) {
            let mut s = home(v, cap);
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = v;
        }
        self.slots = slots;
    }

    /// Finds the slot of `name` (Ok) or the empty slot where it would go (Err).
    #[inline]
    fn find_slot(&self, name: &[u8], h: u64) -> std::result::Result<usize, usize> {
        let cap = self.slots.len();
        let mask = cap - 1;
        let tag = h & HI;
        let mut s = home(h, cap);
        loop {
            let v = self.slots[s];
            if v == 0 {
                return Err(s);
            }
            if v & HI == tag {
                let e = &self.entries[(v as u32 - 1) as usize];
                if self.arena.get(e.range()) == Some(name) {
                    return Ok(s);
                }
            }
            s = (s + 1) & mask;
        }
    }

    fn add_name(&mut self, name: &str, sym: Symbol, replace: bool) {
        let off = self.arena.len();
        let Some(entry) = Entry::new(off, name.len(), sym) else {
            return;
        };
        if (self.len() + 1) * 10 > self.slots.len() * 7 {
            let cap = capacity_for(self.len() + 1).max(self.slots.len() * 2);
            self.rehash(cap);
        }
        let h = hash(name.as_bytes());
        match self.find_slot(name.as_bytes(), h) {
            Ok(s) => {
                if replace {
                    let i = (self.slots[s] as u32 - 1) as usize;
                    self.entries[i].value = sym.value;
                    self.entries[i].len_type = entry.len_type;
                }
            }
            Err(s) => {
                if self.entries.len() >= u32::MAX as usize - 1 {
                    return;
                }
                self.arena.extend_from_slice(name.as_bytes());
                self.slots[s] = (h & HI) | (self.entries.len() as u64 + 1);
                self.entries.push(entry);
            }
        }
    }

    /// Adds a symbol; an existing definition of the name is kept.
    pub fn insert(&mut self, name: &str, sym: Symbol) {
        self.add_name(name, sym, false);
    }

    /// Adds a symbol; an existing definition of the name is overwritten.
    pub fn insert_replace(&mut self, name: &str, sym: Symbol) {
        self.add_name(name, sym, true);
    }

    fn get_entry(&self, name: &[u8]) -> Option<&Entry> {
        if self.slots.is_empty() {
            return None;
        }
        let s = self.find_slot(name, hash(name)).ok()?;
        self.entries.get((self.slots[s] as u32 - 1) as usize)
    }

    /// The raw (unrelocated) entry.
    pub fn get_raw(&self, name: &str) -> Option<Symbol> {
        self.get_entry(name.as_bytes()).map(|e| Symbol {
            value: e.value,
            n_type: e.n_type(),
        })
    }

    /// The entry with the displacement applied.
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.lookup_bytes(name.as_bytes())
    }

    /// Like `lookup`, for names that come from C as bytes.
    pub fn lookup_bytes(&self, name: &[u8]) -> Option<Symbol> {
        self.get_entry(name).map(|e| Symbol {
            value: e.value.wrapping_add(self.displacement as u64),
            n_type: e.n_type(),
        })
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.entries.len() - self.ndead
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every distinct (name, raw symbol), in the order the sources list them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Symbol)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.dead.get(*i).copied().unwrap_or(false))
            .map(|(_, e)| {
                let bytes = self.arena.get(e.range()).unwrap_or(&[]);
                // Builders only add UTF-8 names.
                let name = std::str::from_utf8(bytes).unwrap_or("");
                (
                    name,
                    Symbol {
                        value: e.value,
                        n_type: e.n_type(),
                    },
                )
            })
    }
}

/// True when a symbol name can be indexed (names are handed out as &str).
#[inline]
pub(crate) fn valid_name(b: &[u8]) -> bool {
    !b.is_empty() && b.len() <= MAX_NAME_LEN && (b.is_ascii() || std::str::from_utf8(b).is_ok())
}

/// Offset of the "HdrS" signature in a Linux x86 boot image (bzImage setup header).
const BZIMAGE_MAGIC_OFF: usize = 0x202;

/// Loads a symbol file given as execfile: an ELF kernel, a System.map or a kallsyms copy.
/// The kind is decided by content, not by name.
pub fn load_file(path: &Path) -> Result<SymbolIndex> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::sys(shown.clone(), e))?;
    let meta = file.metadata().map_err(|e| Error::sys(shown.clone(), e))?;
    if meta.is_dir() {
        return Err(Error::sys(
            shown,
            std::io::Error::from_raw_os_error(libc::EISDIR),
        ));
    }
    let mut head = [0u8; 4096];
    let n = read_head(&file, &mut head).map_err(|e| Error::sys(shown.clone(), e))?;
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        return elf::load(&file, &shown);
    }
    if head.len() >= BZIMAGE_MAGIC_OFF + 4
        && &head[BZIMAGE_MAGIC_OFF..BZIMAGE_MAGIC_OFF + 4] == b"HdrS"
    {
        return Err(Error::format(format!(
            "{}: is a compressed kernel image (bzImage) with no symbol table; give System.map or vmlinux",
            shown
        )));
    }
    if head.is_empty() {
        return Err(Error::format(format!(
            "{}: empty file: not a kernel image, System.map or kallsyms listing",
            shown
        )));
    }
    if !sysmap::looks_like_text(head) {
        return Err(Error::format(format!(
            "{}: not an ELF kernel image, System.map or kallsyms listing (binary data, first bytes {})",
            shown,
            crate::dump::describe_magic(head)
        )));
    }
    // Symbol listings are a few MB of text; the index keeps the text as its name arena.
    let mut text = Vec::with_capacity(meta.len().min(1 << 30) as usize + 1);
    (&file)
        .read_to_end(&mut text)
        .map_err(|e| Error::sys(shown.clone(), e))?;
    sysmap::parse_text(text, &shown, false)
}

fn read_head(file: &std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_wins_and_replace() {
        let sym = |value, n_type| Symbol { value, n_type };
        let mut idx = SymbolIndex::new("t");
        for i in 0..1000u64 {
            idx.insert(&format!("sym{}", i), sym(i, 4));
        }
        idx.insert("sym5", sym(99, 6));
        assert_eq!(idx.get_raw("sym5"), Some(sym(5, 4)));
        idx.insert_replace("sym5", sym(99, 6));
        assert_eq!(idx.get_raw("sym5"), Some(sym(99, 6)));
        assert_eq!(idx.len(), 1000);
        for i in 0..1000u64 {
            let want = if i == 5 { 99 } else { i };
            assert_eq!(idx.get_raw(&format!("sym{}", i)).unwrap().value, want);
        }
        assert_eq!(idx.get_raw("sym1000"), None);
        assert_eq!(idx.get_raw(""), None);
        idx.displacement = -1;
        assert_eq!(idx.lookup("sym10").unwrap().value, 9);
        assert_eq!(idx.iter().count(), 1000);
    }

    #[test]
    fn bulk_build_duplicates() {
        let arena = b"alphabetagammaalpha".to_vec();
        let sym = |v| Symbol {
            value: v,
            n_type: 4,
        };
        let es = || {
            vec![
                Entry::new(0, 5, sym(1)).unwrap(),
                Entry::new(5, 4, sym(2)).unwrap(),
                Entry::new(9, 5, sym(3)).unwrap(),
                Entry::new(14, 5, sym(4)).unwrap(),
                Entry::new(14, 9, sym(5)).unwrap(), // beyond the arena: dropped
            ]
        };
        let first = SymbolIndex::from_entries("t", arena.clone(), es(), false);
        assert_eq!(first.len(), 3);
        assert_eq!(first.get_raw("alpha").unwrap().value, 1);
        let names: Vec<&str> = first.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["alpha", "beta", "gamma"]);
        let last = SymbolIndex::from_entries("t", arena, es(), true);
        assert_eq!(last.len(), 3);
        assert_eq!(last.get_raw("alpha").unwrap().value, 4);
        assert_eq!(last.get_raw("gamma").unwrap().value, 3);
        assert!(last.get_raw("alphabeta").is_none());
        // incremental inserts on top of a bulk-built index
        let mut last = last;
        for i in 0..100u64 {
            last.insert(&format!("n{}", i), sym(i));
        }
        assert_eq!(last.len(), 103);
        assert_eq!(last.get_raw("n77").unwrap().value, 77);
        assert_eq!(last.get_raw("beta").unwrap().value, 2);
    }

    /// A table big enough for the two-thread fill, with many duplicates (some three times),
    /// against a plain map model, for both duplicate rules.
    #[test]
    fn bulk_build_large_matches_a_map() {
        use std::collections::HashMap;
        let mut arena = Vec::new();
        let mut entries = Vec::new();
        let mut x = 0x1234_5678_9abc_def1u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // About one name in three repeats an earlier one.
            let id = if i % 3 == 0 { x % (i + 1) } else { i };
            let name = format!("sym_{}_{}", id % 7, id);
            let off = arena.len();
            arena.extend_from_slice(name.as_bytes());
            let sym = Symbol {
                value: i,
                n_type: (i % 5) as u8,
            };
            entries.push(Entry::new(off, name.len(), sym).unwrap());
        }
        for replace in [false, true] {
            let mut model: HashMap<&[u8], u64> = HashMap::new();
            for e in &entries {
                let name = &arena[e.range()];
                if replace || !model.contains_key(name) {
                    model.insert(name, e.value);
                }
            }
            let idx = SymbolIndex::from_entries("t", arena.clone(), entries.clone(), replace);
            assert_eq!(idx.len(), model.len());
            assert_eq!(idx.iter().count(), model.len());
            for (name, v) in &model {
                assert_eq!(idx.lookup_bytes(name).map(|s| s.value), Some(*v));
            }
            assert!(idx.lookup("sym_0_200001").is_none());
        }
    }

    #[test]
    fn scan_matches_hash() {
        let mut s = Vec::new();
        let names: Vec<String> = (0..37)
            .map(|i| "abcdefghijklmnopqrstuvwxyz0123456789_"[..i].to_string())
            .collect();
        let mut offs = Vec::new();
        for n in &names {
            offs.push(s.len());
            s.extend_from_slice(n.as_bytes());
            s.push(0);
        }
        s.extend_from_slice("bj\u{f6}rn\0".as_bytes());
        for (n, &o) in names.iter().zip(&offs) {
            assert_eq!(
                scan_cstr(&s, o),
                Some((n.len(), hash(n.as_bytes()), true)),
                "{:?}",
                n
            );
        }
        let o = offs[36] + 37;
        assert_eq!(
            scan_cstr(&s, o),
            Some((6, hash("bj\u{f6}rn".as_bytes()), false))
        );
        assert_eq!(scan_cstr(b"abc", 0), None);
        assert_eq!(scan_cstr(b"abc", 4), None);
        assert_eq!(scan_cstr(b"abcdefghij", 0), None);
    }

    #[test]
    fn empty_index_lookups() {
        let idx = SymbolIndex::default();
        assert!(idx.lookup("x").is_none());
        assert!(idx.is_empty());
    }
}
