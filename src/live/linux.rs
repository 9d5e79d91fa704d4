//! The live Linux system: processes from /proc, symbols from /proc/kallsyms, memory from
//! /proc/kcore.

use crate::abi::{KinfoProc, KvmSwap, CPUSTATES};
use crate::backend::{ArgvKind, Backend, KernelFamily, SymbolLookup};
use crate::error::{Error, Result};
use crate::live::kcore::KernelMemory;
use crate::proc::{linux_procfs, linux_stats};
use crate::symbols::{sysmap, SymbolIndex};

pub struct LiveLinux {
    /// False for a "/dev/null" core: the process interface only, no kernel memory.
    kernel_memory: bool,
    /// /proc/kcore and the kallsyms `_text` (src/live/kcore.rs), opened on first use.
    kmem: KernelMemory,
    /// The /proc process reader (buffers and %CPU history live across calls).
    procfs: linux_procfs::ProcFs,
}

impl LiveLinux {
    pub fn open(kernel_memory: bool) -> Result<Self> {
        Ok(LiveLinux {
            kernel_memory,
            kmem: KernelMemory::default(),
            procfs: linux_procfs::ProcFs::new(),
        })
    }
}

impl Backend for LiveLinux {
    fn describe(&self) -> String {
        "the live Linux system".into()
    }
    fn family(&self) -> KernelFamily {
        KernelFamily::Linux
    }
    fn is_live(&self) -> bool {
        true
    }
    fn native(&self) -> bool {
        true
    }
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        if !self.kernel_memory {
            // Like FreeBSD reading a /dev/null core: nothing, a short read.
            return Ok(0);
        }
        self.kmem.read(va, buf)
    }
    fn write(&mut self, _va: u64, _buf: &[u8]) -> Result<usize> {
        Err(Error::unsupported(
            "kvm_write: the live Linux kernel cannot be written: Linux offers no writable kernel memory device (/dev/kmem is gone, /proc/kcore is read-only)",
        ))
    }
    fn own_symbols(&mut self) -> Result<Option<SymbolIndex>> {
        sysmap::load_kallsyms().map(Some)
    }
    fn symbol_displacement(&mut self, index: &SymbolIndex) -> Result<i64> {
        Ok(self.kmem.displacement_for(index))
    }
    fn kerndisp(&mut self) -> i64 {
        self.kmem.kerndisp()
    }

    // Process interface and statistics: /proc and /sys (src/proc/linux_procfs.rs,
    // src/proc/linux_stats.rs).
    fn getprocs(
        &mut self,
        _syms: &mut dyn SymbolLookup,
        op: i32,
        arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        self.procfs.getprocs(op, arg)
    }

    fn getargv(
        &mut self,
        _syms: &mut dyn SymbolLookup,
        kp: &KinfoProc,
        kind: ArgvKind,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        linux_procfs::read_argv(kp.ki_pid, kind, limit)
    }

    fn loadavg(&mut self, _syms: &mut dyn SymbolLookup) -> Result<[f64; 3]> {
        linux_stats::loadavg()
    }

    fn swapinfo(&mut self, _syms: &mut dyn SymbolLookup, flags: i32) -> Result<Vec<KvmSwap>> {
        linux_stats::swapinfo(flags, self.procfs.page_size())
    }

    fn cptime(&mut self, _syms: &mut dyn SymbolLookup) -> Result<[i64; CPUSTATES]> {
        linux_stats::cptime()
    }

    fn ncpus(&mut self, _syms: &mut dyn SymbolLookup) -> Result<i32> {
        linux_stats::ncpus()
    }

    fn maxcpu(&mut self, _syms: &mut dyn SymbolLookup) -> Result<i32> {
        linux_stats::maxcpu()
    }
}
