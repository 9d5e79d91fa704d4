//! Turning a kernel's process table into `kinfo_proc` records: /proc on the live system,
//! the task list of a dead Linux kernel, the process list of a dead FreeBSD kernel.
pub mod freebsd_dead;
pub mod linux_dead;
pub mod linux_map;
pub mod linux_procfs;
pub mod linux_stats;
pub mod procfs_parse;

use crate::abi;
use crate::error::{Error, Result};

/// The base op of a dead-kernel kvm_getprocs call (KERN_PROC_INC_THREAD removed); unknown ops
/// fail with EINVAL.
pub fn dead_kernel_base_op(op: i32) -> Result<i32> {
    let base = op & !abi::KERN_PROC_INC_THREAD;
    match base {
        abi::KERN_PROC_ALL
        | abi::KERN_PROC_PROC
        | abi::KERN_PROC_PID
        | abi::KERN_PROC_PGRP
        | abi::KERN_PROC_SESSION
        | abi::KERN_PROC_TTY
        | abi::KERN_PROC_UID
        | abi::KERN_PROC_RUID
        | abi::KERN_PROC_RGID
        | abi::KERN_PROC_GID => Ok(base),
        _ => Err(Error::sys(
            format!("kvm_getprocs: unknown op {}", op),
            std::io::Error::from_raw_os_error(libc::EINVAL),
        )),
    }
}
