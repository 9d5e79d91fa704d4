//! Shared test helpers for the Linux dump tests: locating the generated dump sets, ground
//! truth parsing, and a deterministic PRNG.
#![allow(dead_code)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

pub mod kdump_convert;

/// The three dump sets: (label, env var, default dir under target/).
pub const SETS: &[(&str, &str, &str)] = &[
    ("kaslr", "KVM_LINUX_DUMPS", "linux-dumps"),
    ("nokaslr", "KVM_LINUX_DUMPS_NOKASLR", "linux-dumps-nokaslr"),
    ("la57", "KVM_LINUX_DUMPS_LA57", "linux-dumps-la57"),
];

/// Formats present in every set.
pub const FORMATS: &[&str] = &["vmcore.elf", "vmcore.kdump-zlib", "vmcore.kdump-zlib.flat"];

/// The directory of a dump set, or None (with a "skipped" line) when it is absent.
pub fn set_dir(label: &str) -> Option<PathBuf> {
    let (_, var, def) = SETS.iter().find(|s| s.0 == label)?;
    let dir = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(def)
    });
    if dir.join("MANIFEST.tsv").is_file() && dir.join("vmcore.elf").is_file() {
        Some(dir)
    } else {
        println!(
            "skipped: dump set {} not found at {} (set {} or run make-dumps.sh)",
            label,
            dir.display(),
            var
        );
        None
    }
}

/// All sets that exist.
pub fn sets() -> Vec<(&'static str, PathBuf)> {
    SETS.iter()
        .filter_map(|(l, _, _)| set_dir(l).map(|d| (*l, d)))
        .collect()
}

/// One kallsyms line.
#[derive(Clone, Debug)]
pub struct KSym {
    pub addr: u64,
    pub ty: char,
    pub name: String,
    pub module: Option<String>,
}

pub fn kallsyms(dir: &Path) -> Vec<KSym> {
    let text = std::fs::read_to_string(dir.join("truth/kallsyms")).expect("truth/kallsyms");
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let ty = it.next()?.chars().next()?;
            let name = it.next()?.to_string();
            let module = it
                .next()
                .map(|m| m.trim_matches(|c| c == '[' || c == ']').to_string());
            Some(KSym {
                addr,
                ty,
                name,
                module,
            })
        })
        .collect()
}

/// name -> address, first occurrence wins (as the kernel's own lookup order).
pub fn kallsyms_map(syms: &[KSym]) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for s in syms {
        m.entry(s.name.clone()).or_insert(s.addr);
    }
    m
}

pub fn vmcoreinfo_value(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("vmcoreinfo.txt")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix('=')
            .map(|v| v.to_string())
    })
}

/// Opens a dump with no execfile.
pub fn open_bare(core: &Path) -> kvm::Result<Box<kvm::Kvm>> {
    kvm::Kvm::open(kvm::OpenArgs {
        execfile: None,
        corefile: Some(core.as_os_str()),
        flags: libc::O_RDONLY,
        program: None,
        resolver: None,
    })
}

pub fn open_with_exec(exec: &OsStr, core: &Path) -> kvm::Result<Box<kvm::Kvm>> {
    kvm::Kvm::open(kvm::OpenArgs {
        execfile: Some(exec),
        corefile: Some(core.as_os_str()),
        flags: libc::O_RDONLY,
        program: None,
        resolver: None,
    })
}

pub fn nlist1(k: &kvm::Kvm, name: &str) -> Option<u64> {
    let mut st = k.lock();
    let r = st.nlist(&[name.as_bytes()]).expect("nlist");
    r[0].map(|s| s.value)
}

/// xorshift64*: deterministic, no dependency.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A scratch directory under target/ for files a test writes.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-scratch")
        .join(name);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}
