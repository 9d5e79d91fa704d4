//! The live Linux system: processes from /proc, symbols from /proc/kallsyms, memory from
//! /proc/kcore.

use crate::backend::{Backend, KernelFamily};
use crate::error::{Error, Result};
use crate::live::kcore::KernelMemory;
use crate::symbols::{sysmap, SymbolIndex};

pub struct LiveLinux {
    /// False for a "/dev/null" core: the process interface only, no kernel memory.
    kernel_memory: bool,
    /// /proc/kcore and the kallsyms `_text` (src/live/kcore.rs), opened on first use.
    kmem: KernelMemory,
}

impl LiveLinux {
    pub fn open(kernel_memory: bool) -> Result<Self> {
        Ok(LiveLinux {
            kernel_memory,
            kmem: KernelMemory::default(),
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
}
