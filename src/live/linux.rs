//! The live Linux system: processes from /proc, symbols from /proc/kallsyms, memory from
//! /proc/kcore.

use crate::backend::{Backend, KernelFamily};
use crate::error::{Error, Result};

pub struct LiveLinux {
    /// False for a "/dev/null" core: the process interface only, no kernel memory.
    kernel_memory: bool,
}

impl LiveLinux {
    pub fn open(kernel_memory: bool) -> Result<Self> {
        Ok(LiveLinux { kernel_memory })
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
    fn read(&mut self, va: u64, _buf: &mut [u8]) -> Result<usize> {
        if !self.kernel_memory {
            return Ok(0);
        }
        Err(Error::bad_address(va, "kernel memory is not readable yet"))
    }
}
