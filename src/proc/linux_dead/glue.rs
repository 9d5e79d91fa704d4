//! Wiring of the dead-kernel process code into the Linux dump backend: the backend keeps a
//! `DeadSlot` and its Backend methods call the functions here.

use super::{stats, DeadLinux, KernelMemory};
use crate::abi::{KinfoProc, CPUSTATES};
use crate::backend::{ArgvKind, Backend, SymbolLookup};
use crate::btf::Btf;
use crate::dump::linux::LinuxDump;
use crate::error::{Error, Result};

/// Text symbols sorted by address (wait-channel names).
type TextSyms = Vec<(u64, Box<str>)>;

/// Per-dump state of the process code: the parsed BTF once loaded, or a BTF given explicitly.
#[derive(Default)]
pub struct DeadSlot {
    dead: Option<DeadLinux>,
    explicit: Option<Btf>,
    /// Text symbols of the dump sorted by address, for wait-channel names (built on first use).
    text: Option<TextSyms>,
}

impl DeadSlot {
    /// Uses `btf` (e.g. from a vmlinux or BTF file) instead of the dump's own.
    pub fn set_btf(&mut self, btf: Btf) {
        self.dead = None;
        self.explicit = Some(btf);
    }
}

/// The dump's memory plus the handle's symbols, as the walker sees them.
struct Mem<'a> {
    dump: &'a mut LinuxDump,
    syms: &'a mut dyn SymbolLookup,
    text: Option<&'a mut Option<TextSyms>>,
}

impl KernelMemory for Mem<'_> {
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        Backend::read(self.dump, va, buf)
    }
    fn read_user(&mut self, pgd_pa: u64, va: u64, buf: &mut [u8]) -> Result<usize> {
        self.dump.read_user(pgd_pa, va, buf)
    }
    fn symbol(&mut self, name: &str) -> Option<u64> {
        self.syms.lookup(name)
    }
    fn kva_to_pa(&mut self, va: u64) -> Option<u64> {
        self.dump.kva_to_pa(va).ok()
    }
    fn symbol_name(&mut self, addr: u64) -> Option<String> {
        let slot = self.text.as_mut()?;
        if slot.is_none() {
            // The dump's own kallsyms: the handle's index offers lookups by name only.
            let idx = Backend::own_symbols(self.dump).ok().flatten();
            let mut v: TextSyms = idx
                .iter()
                .flat_map(|i| i.iter())
                .filter(|(_, s)| s.n_type & !crate::abi::N_EXT == crate::abi::N_TEXT)
                .map(|(n, s)| (s.value, n.into()))
                .collect();
            v.sort_unstable();
            **slot = Some(v);
        }
        let v = slot.as_ref()?;
        let i = v.partition_point(|(a, _)| *a <= addr).checked_sub(1)?;
        Some(v[i].1.to_string())
    }
}

fn with<T>(
    dump: &mut LinuxDump,
    syms: &mut dyn SymbolLookup,
    f: impl FnOnce(&mut DeadLinux, &mut dyn KernelMemory) -> Result<T>,
) -> Result<T> {
    let mut slot = std::mem::take(&mut dump.procs);
    let r = (|| {
        let mut mem = Mem {
            dump,
            syms,
            text: Some(&mut slot.text),
        };
        if slot.dead.is_none() {
            let d = match slot.explicit.take() {
                Some(btf) => DeadLinux::from_btf(btf)?,
                None => DeadLinux::from_memory(&mut mem)?,
            };
            slot.dead = Some(d);
        }
        f(slot.dead.as_mut().expect("loaded above"), &mut mem)
    })();
    dump.procs = slot;
    r
}

pub fn getprocs(
    dump: &mut LinuxDump,
    syms: &mut dyn SymbolLookup,
    op: i32,
    arg: i32,
) -> Result<Vec<KinfoProc>> {
    with(dump, syms, |d, m| d.getprocs(m, op, arg))
}

pub fn getargv(
    dump: &mut LinuxDump,
    syms: &mut dyn SymbolLookup,
    kp: &KinfoProc,
    kind: ArgvKind,
    limit: usize,
) -> Result<Option<Vec<u8>>> {
    with(dump, syms, |d, m| d.getargv(m, kp, kind, limit))
}

/// cp_time with the BTF layout when it loads, else with the long-stable default layout.
pub fn cptime(dump: &mut LinuxDump, syms: &mut dyn SymbolLookup) -> Result<[i64; CPUSTATES]> {
    match with(dump, syms, |d, m| stats::cptime(m, Some(d.btf()))) {
        Ok(v) => Ok(v),
        Err(_) => plain(dump, syms, |m| stats::cptime(m, None)),
    }
}

/// Runs a statistics call that needs no BTF.
pub fn plain<T>(
    dump: &mut LinuxDump,
    syms: &mut dyn SymbolLookup,
    f: impl FnOnce(&mut dyn KernelMemory) -> Result<T>,
) -> Result<T> {
    f(&mut Mem {
        dump,
        syms,
        text: None,
    })
}

/// Takes the kernel's BTF from a file (vmlinux with .BTF, or a raw BTF blob such as a copy of
/// /sys/kernel/btf/vmlinux) instead of the dump. The file is mapped, not read whole.
pub fn set_type_file(dump: &mut LinuxDump, path: &std::path::Path) -> Result<()> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::sys(shown.clone(), e))?;
    let map = crate::dump::mapped::Mapped::map(&file, path)?;
    let btf = super::btf_from_file_bytes(map.bytes())
        .map_err(|e| Error::format(format!("{}: {}", shown, e)))?;
    dump.procs.set_btf(btf);
    Ok(())
}
