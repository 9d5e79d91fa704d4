//! The virtual network stack (VNET) that kvm_nlist relocates `vnet_entry_` symbols into, chosen
//! as FreeBSD's lib/libkvm/kvm_vnet.c `_kvm_vnet_selectpid` chooses it for a dead kernel:
//!
//! 1. `___start_set_vnet`, `___stop_set_vnet`, `vnet_head`, `allproc`, `dumptid` and `proc0`
//!    must all be known (FreeBSD looks them up together, without the prefix retries); if one
//!    is missing nothing is selected, silently (a kernel built without VIMAGE).
//! 2. `dumptid` (an lwpid_t) is read. A crash dump has it positive: the process is `proc0`
//!    and the pid looked for is 0. Otherwise the walk starts at `&allproc` read as if it were
//!    a struct proc (p_list is struct proc's first member in FreeBSD, so the pseudo-proc's
//!    `p_list.le_next` is the list head) and looks for the caller's pid (getpid()).
//! 3. Along `p_list`, the first process with that pid and a non-NULL `p_ucred` gives the
//!    credential; then `cr_prison`, `pr_vnet`, and the `struct vnet`, whose `vnet_magic_n`
//!    must be VNET_MAGIC_N. Each structure is read whole (its size from the kernel's types),
//!    as FreeBSD reads `sizeof(struct ...)`.
//! 4. The result: the set range, the vnet and its `vnet_data_base`. A failure after step 1
//!    carries FreeBSD's message (`_kvm_vnet_selectpid: prison`, ...), with the address added.
//!
//! Differences from FreeBSD, on purpose:
//! - FreeBSD refuses non-native kernels (it uses its own compiled-in structures); here the
//!   layouts come from the examined kernel's types, so i386 and arm64 dumps are served too.
//! - Without the kernel's types (or without the prison/vnet members in them) nothing is
//!   selected, silently, like a missing symbol.
//! - On an ILP32 kernel (i386) the relocated value wraps at 32 bits as the kernel's own
//!   `vnet_data_base + &var` does (FreeBSD's 64-bit kvaddr_t sum can exceed 4 GiB there when
//!   the base is "negative"; its classic 32-bit `struct nlist` truncates it the same way).
//! - A cyclic process list ends the walk with "pid/tid not found" instead of hanging.

use std::collections::HashSet;

use super::layout::F;
use super::{read_exact, DeadFreeBsd, MAX_PROCS};
use crate::backend::{Backend, SymbolLookup, VnetTable};
use crate::error::{Error, Result};

/// sys/net/vnet.h.
pub const VNET_MAGIC_N: u64 = 0x3e0d_8f29;

fn fail(what: &str, e: Option<Error>) -> Error {
    match e {
        Some(e) => Error::msg(format!("_kvm_vnet_selectpid: {} ({})", what, e)),
        None => Error::msg(format!("_kvm_vnet_selectpid: {}", what)),
    }
}

impl DeadFreeBsd {
    /// `_kvm_vnet_selectpid` for a dead kernel; `pid` is the pid looked for when the dump has no
    /// positive `dumptid` (FreeBSD passes getpid()).
    pub fn vnet_select(
        &self,
        mem: &mut dyn Backend,
        syms: &mut dyn SymbolLookup,
        pid: i64,
    ) -> Result<Option<VnetTable>> {
        // FreeBSD's spelling: kvm_nlist strips one leading underscore, hence three here.
        let mut addrs = [0u64; 6];
        for (a, n) in addrs.iter_mut().zip([
            "___start_set_vnet",
            "___stop_set_vnet",
            "vnet_head",
            "allproc",
            "dumptid",
            "proc0",
        ]) {
            match syms.lookup(n) {
                Some(v) => *a = v,
                None => return Ok(None),
            }
        }
        let [start, stop, _vnet_head, allproc, dumptid_va, proc0] = addrs;
        let l = &self.lay;
        let (
            Some(cr_prison),
            Some(prison_size),
            Some(pr_vnet),
            Some(vnet_size),
            Some(magic),
            Some(data_base),
        ) = (
            l.cr_prison,
            l.prison_size,
            l.pr_vnet,
            l.vnet_size,
            l.vnet_magic_n,
            l.vnet_data_base,
        )
        else {
            return Ok(None);
        };
        let be = self.abi.big_endian;
        let mut pid = pid;
        let mut dumptid = 0;
        if dumptid_va != 0 {
            let b =
                read_exact(mem, dumptid_va, 4, "dumptid").map_err(|e| fail("dumptid", Some(e)))?;
            dumptid = F { off: 0, size: 4 }.get_signed(&b, be);
        }
        let mut procp = allproc;
        if dumptid > 0 {
            procp = proc0;
            pid = 0;
        }
        let mut credp = 0;
        let mut seen = HashSet::new();
        while procp != 0 {
            if seen.len() >= MAX_PROCS || !seen.insert(procp) {
                break;
            }
            let p =
                read_exact(mem, procp, l.proc_size, "proc").map_err(|e| fail("proc", Some(e)))?;
            if l.p_pid.get_signed(&p, be) == pid {
                credp = l.p_ucred.get(&p, be);
            }
            if credp != 0 {
                break;
            }
            procp = l.p_next.get(&p, be);
        }
        if credp == 0 {
            return Err(fail("pid/tid not found", None));
        }
        let cred =
            read_exact(mem, credp, l.cred_size, "ucred").map_err(|e| fail("cred", Some(e)))?;
        let prison = cr_prison.get(&cred, be);
        if prison == 0 {
            return Err(fail("no jail", None));
        }
        let pr =
            read_exact(mem, prison, prison_size, "prison").map_err(|e| fail("prison", Some(e)))?;
        let vnet = pr_vnet.get(&pr, be);
        if vnet == 0 {
            return Err(fail("no vnet", None));
        }
        let v = read_exact(mem, vnet, vnet_size, "vnet").map_err(|e| fail("vnet", Some(e)))?;
        if magic.get(&v, be) != VNET_MAGIC_N {
            return Err(fail("invalid vnet magic#", None));
        }
        Ok(Some(VnetTable {
            start,
            stop,
            current: vnet,
            base: data_base.get(&v, be),
            mask: if self.abi.word < 8 {
                (1u64 << (8 * self.abi.word)) - 1
            } else {
                u64::MAX
            },
        }))
    }
}
