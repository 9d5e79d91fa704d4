//! Kernel symbol tables: one hashed index per descriptor, filled from an ELF kernel, a
//! System.map / kallsyms text file, /proc/kallsyms, or a dump's own tables.
//!
//! The index keeps every name in one byte arena (for files: the file's own string table or
//! text, moved in without copying names one by one) and an open-addressing table of entry
//! numbers, so building costs one pass and one small allocation set, and a lookup is a hash,
//! usually one probe and one comparison, whatever the table size.

pub mod elf;
pub mod sysmap;

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

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
struct Entry {
    off: u32,
    len_type: u32,
    value: u64,
}

/// Longest name the index stores (longer ones are skipped by the builders).
pub const MAX_NAME_LEN: usize = (1 << 24) - 1;

impl Entry {
    fn len(&self) -> usize {
        (self.len_type >> 8) as usize
    }
    fn n_type(&self) -> u8 {
        self.len_type as u8
    }
}

/// Name -> symbol, O(1) lookups. With `insert`, the first definition of a name wins (kernel
/// symbols are listed before module symbols in kallsyms); ELF tables use `insert_replace`
/// (FreeBSD's nlist lets a later duplicate overwrite).
#[derive(Default, Debug)]
pub struct SymbolIndex {
    arena: Vec<u8>,
    entries: Vec<Entry>,
    /// 0 = empty; else (hash tag << 32) | (entry number + 1). Length is a power of two.
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

/// FxHash-like word-at-a-time hash: names are short and not adversarial, speed matters.
#[inline]
fn hash(name: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (name.len() as u64).wrapping_mul(K);
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut t = [0u8; 8];
        t[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(t)).wrapping_mul(K);
    }
    // The multiply leaves the high bits best mixed; the slot number comes from them.
    h ^ (h >> 32)
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

    /// An index whose names live in `arena` (a file's text or string table); entries are
    /// added with `add_span`.
    pub(crate) fn with_arena(source: impl Into<String>, arena: Vec<u8>, n: usize) -> Self {
        let mut idx = SymbolIndex::with_capacity(source, n);
        idx.arena = arena;
        idx
    }

    /// Makes room for `n` entries in total without rehashing (load factor at most 1/2).
    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n.saturating_sub(self.entries.len()));
        let want = n.saturating_mul(2).max(16).next_power_of_two();
        if want > self.slots.len() {
            self.rehash(want);
        }
    }

    fn rehash(&mut self, cap: usize) {
        let mut slots = vec![0u64; cap];
        let mask = cap - 1;
        let shift = 64 - cap.trailing_zeros();
        for (i, e) in self.entries.iter().enumerate() {
            let name = &self.arena[e.off as usize..e.off as usize + e.len()];
            let h = hash(name);
            let mut s = (h >> shift) as usize & mask;
            while slots[s] != 0 {
                s = (s + 1) & mask;
            }
            slots[s] = (h << 32) | (i as u64 + 1);
        }
        self.slots = slots;
    }

    /// Finds the slot of `name` (Ok) or the empty slot where it would go (Err).
    #[inline]
    fn find_slot(&self, name: &[u8], h: u64) -> std::result::Result<usize, usize> {
        let cap = self.slots.len();
        let mask = cap - 1;
        let shift = 64 - cap.trailing_zeros();
        let tag = h << 32;
        let mut s = (h >> shift) as usize & mask;
        loop {
            let v = self.slots[s];
            if v == 0 {
                return Err(s);
            }
            if v & 0xffff_ffff_0000_0000 == tag {
                let e = &self.entries[(v as u32 - 1) as usize];
                if self.arena.get(e.off as usize..e.off as usize + e.len()) == Some(name) {
                    return Ok(s);
                }
            }
            s = (s + 1) & mask;
        }
    }

    /// Adds the name at `arena[off..off+len]`. `replace`: a duplicate overwrites the earlier
    /// value (else the first one stays). Names that are too long or out of the arena are
    /// ignored (builders check them first).
    pub(crate) fn add_span(&mut self, off: usize, len: usize, sym: Symbol, replace: bool) {
        if len > MAX_NAME_LEN || off > u32::MAX as usize || off + len > self.arena.len() {
            return;
        }
        if (self.entries.len() + 1) * 2 > self.slots.len() {
            let cap = (self.slots.len() * 2).max(16);
            self.rehash(cap);
        }
        let h = hash(&self.arena[off..off + len]);
        let name = &self.arena[off..off + len];
        match self.find_slot(name, h) {
            Ok(s) => {
                if replace {
                    let i = (self.slots[s] as u32 - 1) as usize;
                    self.entries[i].value = sym.value;
                    self.entries[i].len_type = ((len as u32) << 8) | sym.n_type as u32;
                }
            }
            Err(s) => {
                self.slots[s] = (h << 32) | (self.entries.len() as u64 + 1);
                self.entries.push(Entry {
                    off: off as u32,
                    len_type: ((len as u32) << 8) | sym.n_type as u32,
                    value: sym.value,
                });
            }
        }
    }

    fn add_name(&mut self, name: &str, sym: Symbol, replace: bool) {
        if name.len() > MAX_NAME_LEN || self.arena.len() + name.len() > u32::MAX as usize {
            return;
        }
        if !self.slots.is_empty() {
            if let Ok(s) = self.find_slot(name.as_bytes(), hash(name.as_bytes())) {
                if replace {
                    let i = (self.slots[s] as u32 - 1) as usize;
                    self.entries[i].value = sym.value;
                    self.entries[i].len_type = ((name.len() as u32) << 8) | sym.n_type as u32;
                }
                return;
            }
        }
        let off = self.arena.len();
        self.arena.extend_from_slice(name.as_bytes());
        self.add_span(off, name.len(), sym, replace);
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

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every (name, raw symbol), in the order they were first added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Symbol)> {
        self.entries.iter().map(|e| {
            let bytes = self
                .arena
                .get(e.off as usize..e.off as usize + e.len())
                .unwrap_or(&[]);
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
        let mut idx = SymbolIndex::new("t");
        for i in 0..1000u64 {
            idx.insert(
                &format!("sym{}", i),
                Symbol {
                    value: i,
                    n_type: 4,
                },
            );
        }
        idx.insert(
            "sym5",
            Symbol {
                value: 99,
                n_type: 6,
            },
        );
        assert_eq!(
            idx.get_raw("sym5"),
            Some(Symbol {
                value: 5,
                n_type: 4
            })
        );
        idx.insert_replace(
            "sym5",
            Symbol {
                value: 99,
                n_type: 6,
            },
        );
        assert_eq!(
            idx.get_raw("sym5"),
            Some(Symbol {
                value: 99,
                n_type: 6
            })
        );
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
    fn empty_index_lookups() {
        let idx = SymbolIndex::default();
        assert!(idx.lookup("x").is_none());
        assert!(idx.is_empty());
    }
}
