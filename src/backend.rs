//! The seam between the handle and the sources of kernel memory (live system, dump formats).
//!
//! Every method has a default that fails with a message a user understands, so a backend only
//! implements what its source can offer. Backends never print and never panic on bad input.

use crate::abi::{KinfoProc, KvmPage, KvmSwap, CPUSTATES};
use crate::error::{Error, Result};
use crate::symbols::SymbolIndex;

/// Which kernel family the memory belongs to (decides how processes and statistics are found).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelFamily {
    Linux,
    FreeBSD,
}

/// Which string vector kvm_getargv / kvm_getenvv asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgvKind {
    Args,
    Env,
}

/// FreeBSD's dynamic per-CPU (DPCPU) table: the `set_pcpu` linker set `[start, stop)` and each
/// CPU's offset from `dpcpu_off` (0: no such CPU).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpcpuTable {
    pub start: u64,
    pub stop: u64,
    pub off: Vec<u64>,
}

/// FreeBSD's selected virtual network stack (kvm_vnet.c): the `set_vnet` linker set
/// `[start, stop)`, the `struct vnet` chosen (FreeBSD's vnet_current) and its
/// `vnet_data_base`, which is added to a `vnet_entry_` symbol's value inside the set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetTable {
    pub start: u64,
    pub stop: u64,
    pub current: u64,
    pub base: u64,
    /// The kernel's address width: an ILP32 kernel computes `base + value` modulo 2^32.
    pub mask: u64,
}

/// Symbol lookups available to a backend during one call: the handle's resolver or symbol
/// index, with the leading-underscore fallback applied. Returns the relocated address.
pub trait SymbolLookup {
    fn lookup(&mut self, name: &str) -> Option<u64>;
}

pub trait Backend: Send {
    /// Short description used in messages ("live Linux", "ELF vmcore", "FreeBSD amd64 minidump").
    fn describe(&self) -> String;

    fn family(&self) -> KernelFamily;

    /// True for the running kernel (FreeBSD's ISALIVE).
    fn is_live(&self) -> bool {
        false
    }

    /// True when the examined kernel has this library's architecture.
    fn native(&self) -> bool;

    /// Kernel load displacement: run-time base minus link-time base (0 = none/unknown).
    fn kerndisp(&mut self) -> i64 {
        0
    }

    /// Reads kernel virtual memory at `va` into `buf`. Returns the number of bytes read: the full
    /// length, or a short count when the range runs into unreadable memory after the first byte.
    /// An unreadable first byte is an error naming the address.
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize>;

    /// Writes kernel virtual memory. Dumps refuse with FreeBSD's wording.
    fn write(&mut self, _va: u64, _buf: &[u8]) -> Result<usize> {
        Err(Error::unsupported(
            "kvm_write not implemented for dead kernels",
        ))
    }

    /// Calls `cb` for every page of the image; returns Ok(true) if the walk completed, Ok(false)
    /// if `cb` stopped it or the backend cannot walk pages.
    fn walk_pages(&mut self, _cb: &mut dyn FnMut(&KvmPage) -> bool) -> Result<bool> {
        Ok(false)
    }

    /// Symbols the image carries itself (Linux: kallsyms tables or VMCOREINFO; live: /proc/kallsyms).
    /// Used when no execfile was given. `Ok(None)` means the image has none.
    fn own_symbols(&mut self) -> Result<Option<SymbolIndex>> {
        Ok(None)
    }

    /// Displacement to add to the values of a symbol file given as execfile, after checking that
    /// the file belongs to this kernel (an error says why it does not).
    fn symbol_displacement(&mut self, _index: &SymbolIndex) -> Result<i64> {
        Ok(0)
    }

    /// A file holding the examined kernel's type information (a vmlinux with a .BTF section, or
    /// a raw BTF blob), for backends that need structure layouts (dead Linux kernels). Returns
    /// Ok(false) when the backend has no use for it.
    fn set_type_file(&mut self, _path: &std::path::Path) -> Result<bool> {
        Ok(false)
    }

    /// Like `set_type_file`, for a kernel file whose symbols did load: a backend may read the
    /// types only when they are first needed.
    fn defer_type_file(&mut self, path: &std::path::Path) {
        let _ = self.set_type_file(path);
    }

    fn getprocs(
        &mut self,
        _syms: &mut dyn SymbolLookup,
        _op: i32,
        _arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        Err(Error::unsupported(format!(
            "kvm_getprocs: not supported on {}",
            self.describe()
        )))
    }

    /// The raw NUL-separated argument or environment area of `kp`'s process, at most `limit`
    /// bytes (the handle applies nchr and splits). `Ok(None)`: no vector (kernel thread).
    fn getargv(
        &mut self,
        _syms: &mut dyn SymbolLookup,
        _kp: &KinfoProc,
        _kind: ArgvKind,
        _limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        Err(Error::unsupported(
            "cannot read user space from dead kernel",
        ))
    }

    fn loadavg(&mut self, _syms: &mut dyn SymbolLookup) -> Result<[f64; 3]> {
        Err(Error::unsupported(format!(
            "kvm_getloadavg: not supported on {}",
            self.describe()
        )))
    }

    /// Per-device swap rows (the handle adds the total row and applies maxswap).
    fn swapinfo(&mut self, _syms: &mut dyn SymbolLookup, _flags: i32) -> Result<Vec<KvmSwap>> {
        Err(Error::unsupported(format!(
            "kvm_getswapinfo: not supported on {}",
            self.describe()
        )))
    }

    fn cptime(&mut self, _syms: &mut dyn SymbolLookup) -> Result<[i64; CPUSTATES]> {
        Err(Error::unsupported(format!(
            "kvm_getcptime: not supported on {}",
            self.describe()
        )))
    }

    fn ncpus(&mut self, _syms: &mut dyn SymbolLookup) -> Result<i32> {
        Err(Error::unsupported(format!(
            "kvm_getncpus: not supported on {}",
            self.describe()
        )))
    }

    fn maxcpu(&mut self, _syms: &mut dyn SymbolLookup) -> Result<i32> {
        Err(Error::unsupported(format!(
            "kvm_getmaxcpu: not supported on {}",
            self.describe()
        )))
    }

    /// A copy of the per-CPU area of `cpu`; `Ok(None)` when that CPU does not exist.
    fn getpcpu(&mut self, _syms: &mut dyn SymbolLookup, _cpu: i32) -> Result<Option<Vec<u8>>> {
        Err(Error::unsupported(format!(
            "kvm_getpcpu: not supported on {}",
            self.describe()
        )))
    }

    /// Per-CPU offset of `cpu` for kvm_dpcpu_setcpu / kvm_read_zpcpu; `Ok(None)`: no such CPU.
    fn percpu_offset(&mut self, _syms: &mut dyn SymbolLookup, _cpu: u32) -> Result<Option<u64>> {
        Err(Error::unsupported(format!(
            "per-CPU data is not supported on {}",
            self.describe()
        )))
    }

    /// Offset of CPU `cpu`'s copy of a UMA per-CPU object (kvm_read_zpcpu,
    /// kvm_counter_u64_fetch); `Ok(None)`: no such CPU. Defaults to `percpu_offset`.
    fn zpcpu_offset(&mut self, syms: &mut dyn SymbolLookup, cpu: u32) -> Result<Option<u64>> {
        self.percpu_offset(syms, cpu)
    }

    /// FreeBSD's DPCPU table (kvm_dpcpu_setcpu and kvm_nlist's `pcpu_entry_` retry).
    /// `Ok(None)`: the kernel has no such table; kvm_dpcpu_setcpu then uses `percpu_offset`.
    fn dpcpu_table(&mut self, _syms: &mut dyn SymbolLookup) -> Result<Option<DpcpuTable>> {
        Ok(None)
    }

    /// FreeBSD's VNET selection for kvm_nlist's `vnet_entry_` retry (`_kvm_vnet_selectpid`).
    /// `Ok(None)`: nothing to select, silently (not a VIMAGE kernel, symbols or layouts
    /// missing); an error is a failure FreeBSD reports in the error buffer. Either way the
    /// retry does not happen.
    fn vnet_table(&mut self, _syms: &mut dyn SymbolLookup) -> Result<Option<VnetTable>> {
        Ok(None)
    }
}
