//! Processes of a dead FreeBSD kernel: kvm_getprocs on a crash dump (full ELF dump or
//! minidump), as FreeBSD's lib/libkvm/kvm_proc.c does for `ps -M vmcore -N kernel`: walk
//! `allproc` (then `zombproc` on kernels that still have one) and fill one `kinfo_proc` per
//! process, or per thread with KERN_PROC_INC_THREAD (KERN_PROC_ALL includes threads, as there).
//!
//! Structure layouts come from the kernel's type information found by member name
//! ([`layout::Layout`]), loaded from the kernel ELF given as execfile ([`types::kernel_types`]).
//! Pointers, `long` and byte order are those of the dump's kernel (`KernelAbi`): amd64 and arm64
//! dumps are read as LP64, i386 ones as ILP32.
//!
//! Filled as FreeBSD fills them: ids (pid, ppid from p_oppid or p_pptr, pgid, sid, tpgid, tsid),
//! credentials and up to 16 groups, jail id, comm, emulation name, state, flags, nice, sizes
//! (ki_size, rssize, swrss, tsize, dsize, ssize), runtime, swtime, exit status, signal sets,
//! login, jobc (-1), kiflag (KI_CTTY, KI_SLEADER, KI_LOCKBLOCK with the lock name), the
//! kernel addresses (ki_paddr, ki_args, ki_textvp, ki_fd, ki_pd, ki_vmspace) and per thread the
//! tid, name, wait message and channel, priorities and CPUs.
//!
//! Differences from FreeBSD, on purpose:
//! - ki_tdev is the terminal's device number as the live kernel reports it (the inode of the
//!   tty's cdev_priv, or si_udev on old kernels), so KERN_PROC_TTY can select by terminal;
//!   FreeBSD's dead-kernel code leaves it NODEV.
//! - ki_start is p_stats->p_start plus the boot time (timehands' th_boottime, else boottimebin
//!   or boottime) when the kernel has them; FreeBSD leaves it zero on dead kernels.
//! - ki_tdaddr, ki_tdflags, pri_class and pri_user are filled as the live kernel fills them.
//! - On kernels whose ucred has a `cr_gid` member of its own (cr_groups then holding only
//!   supplementary groups), ki_groups starts with that effective gid, as kinfo_proc always has.
//! - ki_comm holds up to 19 characters (the live kernel's length; FreeBSD's dead-kernel copy
//!   stops at 18).
//! - A cyclic list or a pointer to memory missing from the dump is an error naming the address,
//!   never a hang; the number of rows is not capped by `nprocs`.
//! - Non-native dumps (i386 or arm64 read on amd64) are answered too.
//! - As on the live system (and in the Linux backends), an unknown op fails with EINVAL and
//!   KERN_PROC_PID of a pid not listed (or still PRS_NEW) fails with ESRCH; FreeBSD's
//!   dead-kernel code returns NULL without a message for an empty result, and lists every
//!   process for an op it does not know. Other ops selecting nothing give an empty array.
//!
//! kvm_getargv / kvm_getenvv keep FreeBSD's answer for dead kernels ("cannot read user space
//! from dead kernel", the Backend default).

pub mod layout;
pub mod types;
pub mod vnet;

use std::collections::HashSet;
use std::path::Path;

use crate::abi::{self, set_cstr, KinfoProc, Sigset};
use crate::backend::{Backend, SymbolLookup, VnetTable};
use crate::btf::Btf;
use crate::dump::freebsd_kernel::KernelAbi;
use crate::error::{Error, Result};
use clock::Clock;
use layout::{Bytes, Groups, Layout, F};

/// Upper bound on list walks: a corrupt list must not hang the caller.
const MAX_PROCS: usize = 1 << 22;

// FreeBSD constants (sys/sys/proc.h); the enum values are taken from the kernel's types when
// they are there.
const P_STOPPED: i64 = 0x20000 | 0x40000 | 0x80000;
const TDI_SLEEPING: u64 = 0x2;
const TDI_LOCK: u64 = 0x8;
const MAXCPU_OLD: i64 = 254;

/// Values of `enum p_states` and the thread states.
#[derive(Clone, Copy, Debug)]
struct States {
    prs_new: u64,
    prs_normal: u64,
    prs_zombie: u64,
    tds_inhibited: u64,
    tds_can_run: u64,
    tds_runq: u64,
    tds_running: u64,
}

impl States {
    fn from_btf(btf: &Btf) -> States {
        let v = |n: &str, d: u64| btf.enum_value(n).map(|v| v as u64).unwrap_or(d);
        States {
            prs_new: v("PRS_NEW", 0),
            prs_normal: v("PRS_NORMAL", 1),
            prs_zombie: v("PRS_ZOMBIE", 2),
            tds_inhibited: v("TDS_INHIBITED", 1),
            tds_can_run: v("TDS_CAN_RUN", 2),
            tds_runq: v("TDS_RUNQ", 3),
            tds_running: v("TDS_RUNNING", 4),
        }
    }
}

/// The kernel's types, resolved for one dump.
pub struct DeadFreeBsd {
    btf: Btf,
    lay: Layout,
    st: States,
    abi: KernelAbi,
}

/// What a FreeBSD dump backend keeps: the kernel file whose types are read on first use (a
/// kernel's CTF takes tens of ms to decode, which kvm_open should not pay for kvm_read), the
/// types once loaded, or why there are none.
#[derive(Default)]
pub enum Slot {
    #[default]
    NoFile,
    Pending(std::path::PathBuf),
    Failed(String),
    Ready(Box<DeadFreeBsd>),
}

impl Slot {
    /// Remembers the kernel ELF at `path` (kvm_open's execfile) for the first kvm_getprocs.
    pub fn defer(&mut self, path: &Path) {
        *self = Slot::Pending(path.to_path_buf());
    }

    /// Loads the types from the kernel ELF at `path` (kvm_open's execfile).
    pub fn load(&mut self, path: &Path, abi: &KernelAbi) -> Result<bool> {
        // The type readers name the file in their messages; the layout check does not.
        let r = types::kernel_types(path).and_then(|btf| {
            DeadFreeBsd::new(btf, *abi)
                .map_err(|e| Error::format(format!("{}: {}", path.display(), e)))
        });
        match r {
            Ok(d) => {
                *self = Slot::Ready(Box::new(d));
                Ok(true)
            }
            Err(e) => {
                *self = Slot::Failed(e.to_string());
                Err(e)
            }
        }
    }

    /// The VNET selection of kvm_nlist's `vnet_entry_` retry (see [`vnet`]) for the backend
    /// `mem` holding this slot. The symbols are checked before the types are loaded, so a
    /// kernel without VIMAGE never pays for decoding them; without types nothing is selected.
    pub fn vnet_table(
        &mut self,
        mem: &mut dyn Backend,
        syms: &mut dyn SymbolLookup,
        abi: &KernelAbi,
    ) -> Result<Option<VnetTable>> {
        if syms.lookup("___start_set_vnet").is_none() {
            return Ok(None);
        }
        if let Slot::Pending(path) = self {
            let path = std::mem::take(path);
            let _ = self.load(&path, abi);
        }
        match self {
            Slot::Ready(d) => d.vnet_select(mem, syms, std::process::id() as i64),
            _ => Ok(None),
        }
    }

    /// kvm_getprocs for the backend `mem` holding this slot.
    pub fn getprocs(
        &mut self,
        mem: &mut dyn Backend,
        syms: &mut dyn SymbolLookup,
        abi: &KernelAbi,
        op: i32,
        arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        if let Slot::Pending(path) = self {
            let path = std::mem::take(path);
            // A failure is kept in the slot and reported below.
            let _ = self.load(&path, abi);
        }
        let why = match self {
            Slot::Ready(d) => return d.getprocs(mem, syms, op, arg),
            Slot::NoFile | Slot::Pending(_) => {
                "no kernel file was given (pass the kernel as execfile)".to_string()
            }
            Slot::Failed(s) => s.clone(),
        };
        Err(Error::unsupported(format!(
            "kvm_getprocs: the kernel's type information (CTF) is needed to read its process \
             structures and is not available: {}",
            why
        )))
    }
}

fn read_exact(mem: &mut dyn Backend, va: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    match mem.read(va, &mut buf) {
        Ok(n) if n == len => Ok(buf),
        Ok(n) => Err(Error::bad_address(
            va.wrapping_add(n as u64),
            format!("can't read {} at 0x{:x}: not in the dump", what, va),
        )),
        Err(e) => Err(Error::bad_address(
            va,
            format!("can't read {} at 0x{:x}: {}", what, va, e),
        )),
    }
}

/// A NUL-terminated string of at most `max` bytes; empty if unreadable (FreeBSD ignores these).
fn read_str(mem: &mut dyn Backend, va: u64, max: usize) -> Vec<u8> {
    if va == 0 {
        return Vec::new();
    }
    let mut buf = vec![0u8; max];
    let n = mem.read(va, &mut buf).unwrap_or(0);
    buf.truncate(n);
    if let Some(z) = buf.iter().position(|&b| b == 0) {
        buf.truncate(z);
    }
    buf
}

fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

fn sigset(b: &[u8], be: bool) -> Sigset {
    let mut s = Sigset::default();
    for (i, w) in s.bits.iter_mut().enumerate() {
        *w = F {
            off: i * 4,
            size: 4,
        }
        .get(b, be) as u32;
    }
    s
}

/// Per-process values the thread rows share.
struct ProcCtx {
    addr: u64,
    state: u64,
    flag: i64,
    /// The session, when the process has a process group.
    sess: Option<Vec<u8>>,
    nice: i8,
    traceflag: i32,
    swtime: u32,
}

impl DeadFreeBsd {
    pub fn new(btf: Btf, abi: KernelAbi) -> Result<DeadFreeBsd> {
        let lay = Layout::from_btf(&btf, abi.word)?;
        let st = States::from_btf(&btf);
        Ok(DeadFreeBsd { btf, lay, st, abi })
    }

    fn word(&self, mem: &mut dyn Backend, va: u64, what: &str) -> Result<u64> {
        let b = read_exact(mem, va, self.abi.word, what)?;
        Ok(F {
            off: 0,
            size: self.abi.word,
        }
        .get(&b, self.abi.big_endian))
    }

    fn int(&self, mem: &mut dyn Backend, va: u64, size: usize, what: &str) -> Result<u64> {
        let b = read_exact(mem, va, size, what)?;
        Ok(F { off: 0, size }.get(&b, self.abi.big_endian))
    }

    pub fn getprocs(
        &self,
        mem: &mut dyn Backend,
        syms: &mut dyn SymbolLookup,
        op: i32,
        arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        let base = super::dead_kernel_base_op(op)?;
        // FreeBSD looks these up together and names the first one missing.
        let mut addrs = [0u64; 5];
        for (a, n) in addrs.iter_mut().zip([
            "_nprocs",
            "_allproc",
            "_ticks",
            "_hz",
            "_cpu_tick_frequency",
        ]) {
            *a = syms
                .lookup(n)
                .ok_or_else(|| Error::NoSymbol(n.to_string()))?;
        }
        let [nprocs, allproc, ticks, hz, freq] = addrs;
        let zombproc = syms.lookup("_zombproc");
        self.int(mem, nprocs, 4, "nprocs")?;
        let clock = Clock {
            ticks: self.int(mem, ticks, 4, "ticks")? as i32,
            hz: self.int(mem, hz, 4, "hz")? as i32,
            freq: self.int(mem, freq, 8, "cpu_tick_frequency")?,
            boot: self.boottime(mem, syms),
        };
        let what = if op == abi::KERN_PROC_ALL {
            op | abi::KERN_PROC_INC_THREAD
        } else {
            op
        };
        let head = self.word(mem, allproc, "allproc")?;
        let mut out = Vec::new();
        self.proclist(mem, head, what, arg, &clock, &mut out)?;
        if let Some(z) = zombproc.filter(|&z| z != 0) {
            let head = self.word(mem, z, "zombproc")?;
            // As in FreeBSD, a damaged zombie list costs its rows, not the call.
            let mut zombies = Vec::new();
            if self
                .proclist(mem, head, what, arg, &clock, &mut zombies)
                .is_ok()
            {
                out.extend(zombies);
            }
        }
        if base == abi::KERN_PROC_PID && out.is_empty() {
            return Err(Error::sys(
                format!("kvm_getprocs: pid {}", arg),
                std::io::Error::from_raw_os_error(libc::ESRCH),
            ));
        }
        Ok(out)
    }

    fn proclist(
        &self,
        mem: &mut dyn Backend,
        head: u64,
        what: i32,
        arg: i32,
        clock: &Clock,
        out: &mut Vec<KinfoProc>,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        let mut p = head;
        while p != 0 {
            if seen.len() >= MAX_PROCS || !seen.insert(p) {
                return Err(Error::format(format!(
                    "process list loops at proc 0x{:x} (corrupt dump?)",
                    p
                )));
            }
            let buf = read_exact(mem, p, self.lay.proc_size, "proc")?;
            self.one_proc(mem, p, &buf, what, arg, clock, out)?;
            p = self.lay.p_next.get(&buf, self.abi.big_endian);
        }
        Ok(())
    }
}

mod clock;
mod fill;

/// The Backend methods of a FreeBSD dump backend for processes, for a kernel with ABI `$abi`.
/// The backend has a field `procs: Slot`.
macro_rules! freebsd_dead_procs {
    ($abi:expr) => {
        fn set_type_file(&mut self, path: &std::path::Path) -> $crate::error::Result<bool> {
            self.procs.load(path, &$abi)
        }
        fn defer_type_file(&mut self, path: &std::path::Path) {
            self.procs.defer(path)
        }
        fn getprocs(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
            op: i32,
            arg: i32,
        ) -> $crate::error::Result<Vec<$crate::abi::KinfoProc>> {
            let mut slot = std::mem::take(&mut self.procs);
            let r = slot.getprocs(self, syms, &$abi, op, arg);
            self.procs = slot;
            r
        }
        fn vnet_table(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<Option<$crate::backend::VnetTable>> {
            let mut slot = std::mem::take(&mut self.procs);
            let r = slot.vnet_table(self, syms, &$abi);
            self.procs = slot;
            r
        }
    };
}
pub(crate) use freebsd_dead_procs;
