//! Kernel symbol tables: one hashed index per descriptor, filled from an ELF kernel, a
//! System.map / kallsyms text file, /proc/kallsyms, or a dump's own tables.

use std::collections::HashMap;

pub mod kallsyms_dump;

/// One symbol: its value (an address in the examined kernel) and its a.out type for `n_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub value: u64,
    pub n_type: u8,
}

/// Name -> symbol, O(1) lookups. The first definition of a name wins (kernel symbols are
/// listed before module symbols in kallsyms).
#[derive(Default, Debug)]
pub struct SymbolIndex {
    map: HashMap<Box<str>, Symbol>,
    /// Where the symbols came from, for messages ("/proc/kallsyms", "System.map", ...).
    pub source: String,
    /// Added to every value on lookup (KASLR / relocated kernel).
    pub displacement: i64,
}

impl SymbolIndex {
    pub fn new(source: impl Into<String>) -> Self {
        SymbolIndex {
            map: HashMap::new(),
            source: source.into(),
            displacement: 0,
        }
    }

    pub fn with_capacity(source: impl Into<String>, n: usize) -> Self {
        SymbolIndex {
            map: HashMap::with_capacity(n),
            source: source.into(),
            displacement: 0,
        }
    }

    pub fn insert(&mut self, name: &str, sym: Symbol) {
        if !self.map.contains_key(name) {
            self.map.insert(name.into(), sym);
        }
    }

    /// The raw (unrelocated) entry.
    pub fn get_raw(&self, name: &str) -> Option<Symbol> {
        self.map.get(name).copied()
    }

    /// The entry with the displacement applied.
    pub fn lookup(&self, name: &str) -> Option<Symbol> {
        self.map.get(name).map(|s| Symbol {
            value: s.value.wrapping_add(self.displacement as u64),
            n_type: s.n_type,
        })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Symbol)> {
        self.map.iter().map(|(k, v)| (&**k, *v))
    }
}

use crate::error::{Error, Result};
use std::path::Path;

/// Loads a symbol file given as execfile: an ELF kernel, a System.map or a kallsyms copy.
pub fn load_file(path: &Path) -> Result<SymbolIndex> {
    let _ = path;
    Err(Error::unsupported("symbol files are not supported yet"))
}
