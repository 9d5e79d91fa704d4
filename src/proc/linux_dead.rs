//! Processes of a dead Linux kernel: kvm_getprocs / kvm_getargv / kvm_getenvv on a vmcore by
//! walking the task list from `init_task`, with every structure layout taken from the kernel's
//! own BTF (read out of the dump between `__start_BTF` and `__stop_BTF`, or given as a file).
//!
//! Independent of how memory is read: the dump backend implements [`KernelMemory`].
//!
//! Fields filled where the kernel holds them: ids (pid/tgid, real parent's tgid, pgid/sid from
//! signal->pids[] in the root namespace), tty (device number from the tty driver) and tpgid/tsid,
//! credentials and groups (egid first), comm (with /proc's long kthread and kworker names),
//! state, P_* flags (P_SYSTEM|P_KPROC for PF_KTHREAD), nice/priority, start time (monotonic
//! start plus the timekeeper's offs_real), cpu times and faults, context switches, sizes and rss, thread ids and
//! names, signal sets, exit/stop status, last/current CPU, %CPU as a lifetime average, the
//! wait channel of blocked tasks (ki_wchan = the kernel text address /proc/PID/wchan names,
//! found by unwinding the task's stack with the kernel's ORC tables; ki_wmesg = that function's
//! name, translated to the FreeBSD word where one exists, else cut to 8 characters), and the
//! kernel addresses ki_paddr (task_struct), ki_tdaddr, ki_vmspace (mm_struct).
//!
//! Left zero (not stored by the kernel, or needing more than the structures): ki_jobc,
//! ki_login, ki_rusage
//! inblock/oublock/ixrss..., ki_swrss, ki_cow, ki_estcpu, ki_jid, ki_fd/ki_textvp/ki_tracep.
//! pid 0 (the boot CPU's idle task `swapper/0`, FreeBSD's proc0 counterpart) is listed, like
//! FreeBSD lists proc0 on a dead kernel; the other CPUs' idle tasks are not on the task list.

pub mod glue;
pub mod layout;
pub mod stats;
pub mod wchan;

use std::collections::HashMap;

use crate::abi::{self, set_cstr, KinfoProc, Timeval};
use crate::backend::ArgvKind;
use crate::btf::{self, Btf};
use crate::error::{Error, Result};
use layout::{Layout, F};

/// Access to the dead kernel's memory and symbols, as the dump backend provides it.
pub trait KernelMemory {
    /// Reads kernel virtual memory; returns the bytes read (short only after the first byte).
    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize>;
    /// Reads user virtual memory through the page tables rooted at physical `pgd_pa`.
    fn read_user(&mut self, pgd_pa: u64, va: u64, buf: &mut [u8]) -> Result<usize>;
    /// Run-time address of a kernel symbol.
    fn symbol(&mut self, name: &str) -> Option<u64>;
    /// Name of the kernel function containing `addr` (for wait channels), if known.
    fn symbol_name(&mut self, _addr: u64) -> Option<String> {
        None
    }
    /// Physical address of a kernel virtual address, when the reader can translate.
    fn kva_to_pa(&mut self, _va: u64) -> Option<u64> {
        None
    }
}

// Linux constants (include/linux/sched.h); these are ABI-stable flag values, not layouts.
const PF_EXITING: u64 = 0x4;
const PF_KTHREAD: u64 = 0x0020_0000;
const PF_WQ_WORKER: u64 = 0x20;
const TASK_REPORT: u64 = 0x7f;
const TASK_IDLE: u64 = 0x402;
const EXIT_ZOMBIE: u64 = 0x20;
const NICE_BASE: i64 = 120;
const PAGE_SIZE: u64 = 4096;

// FreeBSD values this module needs beyond src/abi.rs (sys/priority.h, sys/proc.h, user.h).
const PRI_MIN_REALTIME: i64 = 16;
const PRI_MIN_KERN: i64 = 48;
const PRI_MAX_KERN: i64 = 87;
const PRI_MIN_TIMESHARE: i64 = 88;
const PRI_MAX_TIMESHARE: i64 = 223;
const PRI_MAX_IDLE: u8 = 255;
const PRI_FIFO: u8 = 10;
const TDF_SINTR: i64 = 0x8;
const MAXSLP: u32 = 20;
const PS_INMEM: i64 = 0x1;
const P_STOPPED_TRACE: i64 = 0x40000;

/// Upper bound on list walks: a corrupt or cyclic list in a dump must not hang the caller.
const MAX_TASKS: usize = 1 << 22;
/// Largest BTF blob accepted from a dump (vmlinux BTF is ~5 MB).
const MAX_BTF: u64 = 256 << 20;

/// The per-dump state: parsed BTF, resolved layout, and caches.
pub struct DeadLinux {
    btf: Btf,
    lay: Layout,
    /// pid -> task_struct address of the leader, from the last walk (argv lookups).
    by_pid: HashMap<i32, u64>,
    buf_pool: Vec<Vec<u8>>,
    /// ORC unwinder for wait channels: loaded on first use, None if the kernel has no ORC.
    unwinder: Option<Option<wchan::Unwinder>>,
}

impl std::fmt::Debug for DeadLinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeadLinux({:?})", self.btf)
    }
}

/// Reads exactly `buf.len()` bytes or fails naming the address.
pub(crate) fn read_exact(mem: &mut dyn KernelMemory, va: u64, buf: &mut [u8]) -> Result<()> {
    let n = mem.read(va, buf)?;
    if n < buf.len() {
        return Err(Error::bad_address(
            va.wrapping_add(n as u64),
            "kernel memory not in the dump",
        ));
    }
    Ok(())
}

pub(crate) fn read_u64(mem: &mut dyn KernelMemory, va: u64) -> Result<u64> {
    let mut b = [0u8; 8];
    read_exact(mem, va, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_field(mem: &mut dyn KernelMemory, base: u64, f: F) -> Result<u64> {
    let mut b = [0u8; 8];
    let size = f.size.min(8);
    read_exact(mem, base.wrapping_add(f.off as u64), &mut b[..size])?;
    Ok(u64::from_le_bytes(b))
}

fn sym(mem: &mut dyn KernelMemory, name: &str) -> Result<u64> {
    mem.symbol(name)
        .ok_or_else(|| Error::NoSymbol(name.to_string()))
}

/// Reads the kernel's BTF out of the dump (between __start_BTF and __stop_BTF).
pub fn btf_from_memory(mem: &mut dyn KernelMemory) -> Result<Btf> {
    let why = |s: String| {
        Error::msg(format!(
            "kernel type information (BTF) unavailable: {}; processes cannot be listed \
             (give a vmlinux with a .BTF section or a BTF file as execfile)",
            s
        ))
    };
    let start = mem
        .symbol("__start_BTF")
        .ok_or_else(|| why("symbol __start_BTF not found".into()))?;
    let stop = mem
        .symbol("__stop_BTF")
        .ok_or_else(|| why("symbol __stop_BTF not found".into()))?;
    let len = stop
        .checked_sub(start)
        .filter(|&l| l > 0 && l <= MAX_BTF)
        .ok_or_else(|| why(format!("bad BTF bounds 0x{:x}..0x{:x}", start, stop)))?;
    let mut data = vec![0u8; len as usize];
    read_exact(mem, start, &mut data)
        .map_err(|e| why(format!("reading BTF at 0x{:x}: {}", start, e)))?;
    Btf::parse(&data).map_err(|e| why(e.to_string()))
}

/// Parses a BTF given as a file's bytes: a raw BTF blob or an ELF vmlinux with .BTF.
pub fn btf_from_file_bytes(data: &[u8]) -> Result<Btf> {
    if btf::elf::is_elf(data) {
        Btf::parse(btf::elf::btf_section(data)?)
    } else {
        Btf::parse(data)
    }
}

/// A long kernel-thread name: the first TDNAMLEN bytes in ki_tdname, the rest in ki_moretdname.
fn long_tdname(kp: &mut KinfoProc, p: &ProcInfo) {
    if let Some(n) = &p.full_name {
        let (head, rest) = n.split_at(n.len().min(abi::TDNAMLEN));
        set_cstr(&mut kp.ki_tdname, head);
        set_cstr(&mut kp.ki_moretdname, rest);
    }
}

/// Linux task state -> the /proc letter (fs/proc/array.c semantics).
pub fn state_letter(state: u64, exit_state: u64) -> u8 {
    if state == TASK_IDLE && exit_state == 0 {
        return b'I';
    }
    let s = (state | exit_state) & TASK_REPORT;
    if s == 0 {
        return b'R';
    }
    match 63 - s.leading_zeros() {
        0 => b'S',
        1 => b'D',
        2 => b'T',
        3 => b't',
        4 => b'X',
        5 => b'Z',
        _ => b'P',
    }
}

/// One task_struct copy with the values every row needs.
struct Task {
    addr: u64,
    buf: Vec<u8>,
}

/// Process-wide facts, computed once per thread group.
#[derive(Default, Clone)]
struct ProcInfo {
    pid: i32,
    ppid: i32,
    pgid: i32,
    sid: i32,
    tpgid: i32,
    tdev: Option<u64>,
    uid: u32,
    ruid: u32,
    svuid: u32,
    gid: u32,
    rgid: u32,
    svgid: u32,
    groups: Vec<u32>,
    nthreads: i32,
    kthread: bool,
    tracer: i32,
    /// A kernel thread's untruncated name (struct kthread.full_name), as /proc shows it.
    full_name: Option<Vec<u8>>,
    mm: Option<MmInfo>,
    sig_utime: u64,
    sig_stime: u64,
    cutime: u64,
    cstime: u64,
    cminflt: u64,
    cmajflt: u64,
    sig_minflt: u64,
    sig_majflt: u64,
    /// signal->group_exit_code: the signal of a group stop.
    group_exit_code: u64,
    /// Linux 64-bit masks: shared pending, ignored, caught.
    shared_pending: u64,
    sigignore: u64,
    sigcatch: u64,
}

#[derive(Default, Clone, Copy)]
struct MmInfo {
    pgd: u64,
    total_vm: u64,
    rss: u64,
    hiwater: u64,
    exec_vm: u64,
    data_vm: u64,
    stack_vm: u64,
    arg: (u64, u64),
    env: (u64, u64),
}

/// Clock facts for start times and %CPU: wall = monotonic + offs_real.
#[derive(Default, Clone, Copy)]
struct Clock {
    offs_real: i64,
    now_mono: u64,
}

fn ns_to_timeval(ns: u64) -> Timeval {
    Timeval {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_usec: ((ns % 1_000_000_000) / 1000) as i64,
    }
}

impl DeadLinux {
    pub fn from_btf(btf: Btf) -> Result<DeadLinux> {
        let lay = Layout::from_btf(&btf)?;
        Ok(DeadLinux {
            btf,
            lay,
            by_pid: HashMap::new(),
            buf_pool: Vec::new(),
            unwinder: None,
        })
    }

    /// Loads the BTF from the dump itself.
    pub fn from_memory(mem: &mut dyn KernelMemory) -> Result<DeadLinux> {
        Self::from_btf(btf_from_memory(mem)?)
    }

    pub fn btf(&self) -> &Btf {
        &self.btf
    }

    fn read_task(&mut self, mem: &mut dyn KernelMemory, addr: u64) -> Result<Task> {
        let mut buf = self.buf_pool.pop().unwrap_or_default();
        buf.resize(self.lay.task_size, 0);
        read_exact(mem, addr, &mut buf)?;
        Ok(Task { addr, buf })
    }

    fn recycle(&mut self, t: Task) {
        self.buf_pool.push(t.buf);
    }

    /// Addresses of all thread-group leaders, init_task (pid 0) first.
    fn leaders(&mut self, mem: &mut dyn KernelMemory) -> Result<Vec<u64>> {
        let init = sym(mem, "init_task")?;
        let off = self.lay.t_tasks as u64;
        let head = init.wrapping_add(off);
        let mut out = vec![init];
        let mut seen = std::collections::HashSet::new();
        let mut cur = read_u64(mem, head)?;
        while cur != head {
            if out.len() >= MAX_TASKS || !seen.insert(cur) {
                return Err(Error::format(format!(
                    "task list from init_task loops at 0x{:x} without returning (corrupt dump?)",
                    cur
                )));
            }
            out.push(cur.wrapping_sub(off));
            cur = read_u64(mem, cur)?;
        }
        Ok(out)
    }

    /// Addresses of the threads of the group led by `leader` (leader first).
    fn threads(&mut self, mem: &mut dyn KernelMemory, leader: &Task) -> Result<Vec<u64>> {
        let lay = &self.lay;
        let mut out = vec![leader.addr];
        let (head, link) = match (lay.s_thread_head, lay.t_thread_node, lay.t_thread_group) {
            (Some(h), Some(n), _) => {
                let signal = lay.t_signal.get(&leader.buf);
                if signal == 0 {
                    return Ok(out);
                }
                (signal.wrapping_add(h as u64), n as u64)
            }
            (_, _, Some(g)) => (leader.addr.wrapping_add(g as u64), g as u64),
            _ => return Ok(out),
        };
        let mut seen = std::collections::HashSet::new();
        let mut cur = read_u64(mem, head)?;
        while cur != head {
            if out.len() >= MAX_TASKS || !seen.insert(cur) {
                return Err(Error::format(format!(
                    "thread list of task 0x{:x} loops at 0x{:x} (corrupt dump?)",
                    leader.addr, cur
                )));
            }
            let t = cur.wrapping_sub(link);
            if t != leader.addr {
                out.push(t);
            }
            cur = read_u64(mem, cur)?;
        }
        Ok(out)
    }

    fn pid_nr(&self, mem: &mut dyn KernelMemory, pid: u64) -> i32 {
        if pid == 0 {
            return 0;
        }
        read_field(mem, pid, self.lay.pid_nr0).unwrap_or(0) as i32
    }

    fn clock(&self, mem: &mut dyn KernelMemory) -> Clock {
        let mut c = Clock::default();
        let Some(tk) = mem.symbol("shadow_timekeeper") else {
            return c;
        };
        if let Ok(m) = self.btf.field("timekeeper", "offs_real") {
            c.offs_real = read_field(
                mem,
                tk,
                F {
                    off: m.offset() as usize,
                    size: 8,
                },
            )
            .unwrap_or(0) as i64;
        }
        if let Ok(m) = self.btf.field("timekeeper", "tkr_mono.base") {
            c.now_mono = read_field(
                mem,
                tk,
                F {
                    off: m.offset() as usize,
                    size: 8,
                },
            )
            .unwrap_or(0);
        }
        c
    }

    /// Process-wide facts of the group led by `t`.
    fn proc_info(&mut self, mem: &mut dyn KernelMemory, t: &Task) -> ProcInfo {
        let lay = self.lay.clone();
        let b = &t.buf;
        let mut p = ProcInfo {
            pid: lay.t_tgid.get(b) as i32,
            kthread: lay.t_flags.get(b) & PF_KTHREAD != 0,
            nthreads: 1,
            ..Default::default()
        };
        let parent = lay.t_real_parent.get(b);
        if parent != 0 && parent != t.addr {
            p.ppid = read_field(mem, parent, lay.t_tgid).unwrap_or(0) as i32;
        }
        if lay.t_ptrace.map(|f| f.get(b)).unwrap_or(0) != 0 {
            let tracer = lay.t_parent.get(b);
            p.tracer = read_field(mem, tracer, lay.t_tgid).unwrap_or(0) as i32;
        }
        if p.kthread {
            p.full_name = self.kthread_name(mem, b);
        }
        let signal = lay.t_signal.get(b);
        if signal != 0 {
            let mut sb = vec![0u8; lay.signal_size];
            if read_exact(mem, signal, &mut sb).is_ok() {
                let slot = |i: usize| F {
                    off: lay.s_pids + 8 * i,
                    size: 8,
                };
                p.pgid = self.pid_nr(mem, slot(lay.pidtype_pgid).get(&sb));
                p.sid = self.pid_nr(mem, slot(lay.pidtype_sid).get(&sb));
                p.nthreads = (lay.s_nr_threads.get(&sb) as i32).max(1);
                let g = |f: Option<F>| f.map(|f| f.get(&sb)).unwrap_or(0);
                p.sig_utime = g(lay.s_utime);
                p.sig_stime = g(lay.s_stime);
                p.cutime = g(lay.s_cutime);
                p.cstime = g(lay.s_cstime);
                p.cminflt = g(lay.s_cmin_flt);
                p.cmajflt = g(lay.s_cmaj_flt);
                p.sig_minflt = g(lay.s_min_flt);
                p.sig_majflt = g(lay.s_maj_flt);
                p.group_exit_code = g(lay.s_group_exit_code);
                p.shared_pending = g(lay.s_shared_pending);
                let tty = lay.s_tty.get(&sb);
                if tty != 0 {
                    self.tty_info(mem, tty, &mut p);
                }
            }
        }
        (p.sigignore, p.sigcatch) = self.sig_dispositions(mem, b);
        let cred = lay.t_real_cred.get(b);
        if cred != 0 {
            let mut cb = vec![0u8; lay.cred_size];
            if read_exact(mem, cred, &mut cb).is_ok() {
                p.ruid = lay.c_uid.get(&cb) as u32;
                p.uid = lay.c_euid.get(&cb) as u32;
                p.svuid = lay.c_suid.get(&cb) as u32;
                p.rgid = lay.c_gid.get(&cb) as u32;
                p.gid = lay.c_egid.get(&cb) as u32;
                p.svgid = lay.c_sgid.get(&cb) as u32;
                let gi = lay.c_group_info.get(&cb);
                if gi != 0 {
                    let n = read_field(mem, gi, lay.g_ngroups).unwrap_or(0) as u32 as usize;
                    let take = n.min(abi::KI_NGROUPS);
                    let mut gb = vec![0u8; take * 4];
                    if read_exact(mem, gi.wrapping_add(lay.g_gid as u64), &mut gb).is_ok() {
                        p.groups = gb
                            .chunks_exact(4)
                            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                            .collect();
                    }
                    if n > take {
                        p.groups.push(u32::MAX); // marker: overflow
                    }
                }
            }
        }
        let mm = lay.t_mm.get(b);
        if mm != 0 {
            let mut mb = vec![0u8; lay.mm_size];
            if read_exact(mem, mm, &mut mb).is_ok() {
                let g = |f: Option<F>| f.map(|f| f.get(&mb)).unwrap_or(0);
                let mut rss = 0u64;
                if let Some((base, stride)) = lay.m_rss {
                    for idx in lay.mm_counters.iter().flatten() {
                        let v = F {
                            off: base + stride * idx,
                            size: 8,
                        }
                        .get_signed(&mb);
                        rss += v.max(0) as u64;
                    }
                }
                p.mm = Some(MmInfo {
                    pgd: lay.m_pgd.get(&mb),
                    total_vm: lay.m_total_vm.get(&mb),
                    rss,
                    hiwater: g(lay.m_hiwater_rss),
                    // Text of the executable only, as /proc's VmExe: the code range, at most
                    // the executable mappings.
                    exec_vm: {
                        let start = g(lay.m_start_code) & !(PAGE_SIZE - 1);
                        let end =
                            g(lay.m_end_code).saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
                        (end.saturating_sub(start) / PAGE_SIZE).min(g(lay.m_exec_vm))
                    },
                    data_vm: g(lay.m_data_vm),
                    stack_vm: g(lay.m_stack_vm),
                    arg: (lay.m_arg_start.get(&mb), lay.m_arg_end.get(&mb)),
                    env: (lay.m_env_start.get(&mb), lay.m_env_end.get(&mb)),
                });
            }
        }
        p
    }

    /// Ignored and caught signals from sighand->action[] (SIG_DFL 0, SIG_IGN 1).
    fn sig_dispositions(&self, mem: &mut dyn KernelMemory, b: &[u8]) -> (u64, u64) {
        let lay = &self.lay;
        let (Some(fs), Some((off, stride, n, hoff))) = (lay.t_sighand, lay.sh_action) else {
            return (0, 0);
        };
        let sh = fs.get(b);
        let n = n.min(64);
        let mut buf = vec![0u8; stride.saturating_mul(n)];
        if sh == 0 || stride < 8 || read_exact(mem, sh.wrapping_add(off as u64), &mut buf).is_err()
        {
            return (0, 0);
        }
        let (mut ign, mut cgt) = (0u64, 0u64);
        for i in 0..n {
            let h = F {
                off: i * stride + hoff,
                size: 8,
            }
            .get(&buf);
            match h {
                0 => {}
                1 => ign |= 1 << i,
                _ => cgt |= 1 << i,
            }
        }
        (ign, cgt)
    }

    /// The full name of a kernel thread whose comm was truncated (not for workqueue workers,
    /// whose /proc name is built from the worker's description).
    fn kthread_name(&self, mem: &mut dyn KernelMemory, b: &[u8]) -> Option<Vec<u8>> {
        let lay = &self.lay;
        let kt = lay.t_worker_private?.get(b);
        if kt == 0 {
            return None;
        }
        if lay.t_flags.get(b) & PF_WQ_WORKER != 0 {
            return self.worker_name(mem, kt, b);
        }
        if self.comm(b).len() + 1 < lay.t_comm_len {
            return None;
        }
        let name = read_field(mem, kt, lay.kthread_full_name?).ok()?;
        if name == 0 {
            return None;
        }
        let mut buf = [0u8; abi::COMMLEN + 1];
        let n = mem.read(name, &mut buf).ok()?;
        let s = &buf[..n];
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        (end > 0).then(|| s[..end].to_vec())
    }

    /// A workqueue worker's name as /proc shows it: comm, then "+desc" while it runs a work
    /// item or "-desc" when idle, desc being the last workqueue it served.
    fn worker_name(&self, mem: &mut dyn KernelMemory, kt: u64, b: &[u8]) -> Option<Vec<u8>> {
        let lay = &self.lay;
        let worker = read_field(mem, kt, lay.kthread_data?).ok()?;
        let (doff, dlen) = lay.worker_desc?;
        if worker == 0 || dlen == 0 {
            return None;
        }
        let mut desc = vec![0u8; dlen.min(64)];
        read_exact(mem, worker.wrapping_add(doff as u64), &mut desc).ok()?;
        let end = desc.iter().position(|&c| c == 0).unwrap_or(desc.len());
        if end == 0 {
            return None;
        }
        let busy = lay
            .worker_current_work
            .and_then(|f| read_field(mem, worker, f).ok())
            .unwrap_or(0)
            != 0;
        let mut name = self.comm(b).to_vec();
        name.push(if busy { b'+' } else { b'-' });
        name.extend_from_slice(&desc[..end]);
        Some(name)
    }

    fn tty_info(&self, mem: &mut dyn KernelMemory, tty: u64, p: &mut ProcInfo) {
        let lay = &self.lay;
        let (Some(fi), Some(fd), Some(fmaj), Some(fmin)) = (
            lay.tty_index,
            lay.tty_driver,
            lay.drv_major,
            lay.drv_minor_start,
        ) else {
            return;
        };
        let index = read_field(mem, tty, fi).unwrap_or(0) as u32 as u64;
        let drv = read_field(mem, tty, fd).unwrap_or(0);
        if drv == 0 {
            return;
        }
        let major = read_field(mem, drv, fmaj).unwrap_or(0) & 0xfff;
        let minor = (read_field(mem, drv, fmin).unwrap_or(0) + index) & 0xf_ffff;
        // The kernel's new_encode_dev(), equal to glibc makedev() for these ranges.
        p.tdev = Some((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12));
        if let Some(fp) = lay.tty_pgrp {
            let pg = read_field(mem, tty, fp).unwrap_or(0);
            p.tpgid = self.pid_nr(mem, pg);
        }
    }

    /// Fills the fields every row of the process shares.
    fn fill_proc(&self, kp: &mut KinfoProc, p: &ProcInfo, leader: &Task, clock: Clock) {
        let lay = &self.lay;
        let b = &leader.buf;
        // Kernel addresses, as FreeBSD's dead-kernel kvm_getprocs reports them: the task_struct
        // of the group leader and the mm_struct.
        kp.ki_paddr = leader.addr;
        kp.ki_vmspace = lay.t_mm.get(b);
        kp.ki_pid = p.pid;
        kp.ki_ppid = p.ppid;
        kp.ki_pgid = p.pgid;
        kp.ki_sid = p.sid;
        kp.ki_uid = p.uid;
        kp.ki_ruid = p.ruid;
        kp.ki_svuid = p.svuid;
        kp.ki_rgid = p.rgid;
        kp.ki_svgid = p.svgid;
        let mut groups = vec![p.gid];
        let overflow = p.groups.last() == Some(&u32::MAX);
        groups.extend(p.groups.iter().filter(|&&g| g != u32::MAX || !overflow));
        if groups.len() > abi::KI_NGROUPS {
            kp.ki_cr_flags |= abi::KI_CRF_GRP_OVERFLOW;
        }
        if overflow {
            groups.pop();
            kp.ki_cr_flags |= abi::KI_CRF_GRP_OVERFLOW;
        }
        groups.truncate(abi::KI_NGROUPS);
        kp.ki_ngroups = groups.len() as i16;
        kp.ki_groups[..groups.len()].copy_from_slice(&groups);
        match p.tdev {
            Some(d) => {
                kp.ki_tdev = d;
                kp.ki_tdev_freebsd11 = d as u32;
                kp.ki_tpgid = p.tpgid;
                kp.ki_tsid = p.sid;
                kp.ki_flag |= abi::P_CONTROLT;
                kp.ki_kiflag |= abi::KI_CTTY;
            }
            None => {
                kp.ki_tdev = abi::NODEV;
                kp.ki_tdev_freebsd11 = u32::MAX;
            }
        }
        if p.sid == p.pid && p.pid != 0 {
            kp.ki_kiflag |= abi::KI_SLEADER;
        }
        if p.kthread || p.pid == 0 {
            kp.ki_flag |= abi::P_SYSTEM | abi::P_KPROC;
        }
        if p.tracer != 0 {
            kp.ki_flag |= abi::P_TRACED;
            kp.ki_tracer = p.tracer;
        }
        if p.nthreads > 1 {
            kp.ki_flag |= abi::P_HADTHREADS;
        }
        kp.ki_numthreads = p.nthreads;
        if let Some(m) = p.mm {
            kp.ki_size = m.total_vm.saturating_mul(PAGE_SIZE);
            kp.ki_rssize = m.rss as i64;
            kp.ki_tsize = m.exec_vm as i64;
            kp.ki_dsize = m.data_vm as i64;
            kp.ki_ssize = m.stack_vm as i64;
            kp.ki_rusage.ru_maxrss = (m.hiwater.max(m.rss) * (PAGE_SIZE / 1024)) as i64;
        }
        let start = lay.t_start_time.get(b);
        kp.ki_start = ns_to_timeval((start as i64).saturating_add(clock.offs_real).max(0) as u64);
        if clock.now_mono > start {
            kp.ki_swtime = (((clock.now_mono - start) / 1_000_000_000) as u32).max(1);
        } else {
            kp.ki_swtime = 1;
        }
        kp.ki_sigignore = abi::Sigset::from_linux_mask(p.sigignore);
        kp.ki_sigcatch = abi::Sigset::from_linux_mask(p.sigcatch);
        kp.ki_siglist = abi::Sigset::from_linux_mask(p.shared_pending);
        kp.ki_childtime = ns_to_timeval(p.cutime.saturating_add(p.cstime));
        kp.ki_rusage_ch.ru_utime = ns_to_timeval(p.cutime);
        kp.ki_rusage_ch.ru_stime = ns_to_timeval(p.cstime);
        kp.ki_rusage_ch.ru_minflt = p.cminflt as i64;
        kp.ki_rusage_ch.ru_majflt = p.cmajflt as i64;
        match &p.full_name {
            Some(n) => set_cstr(&mut kp.ki_comm, n),
            None => set_cstr(&mut kp.ki_comm, self.comm(b)),
        }
        set_cstr(&mut kp.ki_emul, b"Linux ELF64");
        set_cstr(&mut kp.ki_loginclass, b"default");
    }

    fn comm<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        let lay = &self.lay;
        let c = b
            .get(lay.t_comm..lay.t_comm.saturating_add(lay.t_comm_len))
            .unwrap_or(&[]);
        let end = c.iter().position(|&x| x == 0).unwrap_or(c.len());
        &c[..end]
    }

    /// Fills the per-thread fields from task `t`; `times` are (utime, stime) in ns to report.
    fn fill_thread(
        &self,
        kp: &mut KinfoProc,
        t: &Task,
        state: u8,
        times: (u64, u64),
        clock: Clock,
        group_exit_code: u64,
    ) {
        let lay = &self.lay;
        let b = &t.buf;
        let o = |f: Option<F>| f.map(|f| f.get(b)).unwrap_or(0);
        kp.ki_tid = lay.t_pid.get(b) as i32;
        kp.ki_tdaddr = t.addr;
        // Thread's blocked mask; pending = the thread's own plus the process-wide queue.
        kp.ki_sigmask = abi::Sigset::from_linux_mask(o(lay.t_blocked));
        let shared = kp.ki_siglist.bits[0] as u64 | (kp.ki_siglist.bits[1] as u64) << 32;
        kp.ki_siglist = abi::Sigset::from_linux_mask(shared | o(lay.t_pending));
        set_cstr(&mut kp.ki_tdname, self.comm(b));
        match state {
            b'R' => kp.ki_stat = abi::SRUN,
            b'S' | b'P' => {
                kp.ki_stat = abi::SSLEEP;
                kp.ki_tdflags |= TDF_SINTR;
            }
            b'I' => {
                kp.ki_stat = abi::SSLEEP;
                kp.ki_tdflags |= TDF_SINTR;
                kp.ki_slptime = MAXSLP;
            }
            b'D' => kp.ki_stat = abi::SSLEEP,
            b'T' => {
                kp.ki_stat = abi::SSTOP;
                kp.ki_flag |= abi::P_STOPPED_SIG;
            }
            b't' => {
                kp.ki_stat = abi::SSTOP;
                kp.ki_flag |= P_STOPPED_TRACE;
            }
            _ => {
                kp.ki_stat = abi::SZOMB;
                kp.ki_flag |= abi::P_WEXIT;
            }
        }
        if kp.ki_stat != abi::SZOMB {
            kp.ki_flag |= abi::P_INMEM;
            kp.ki_sflag = PS_INMEM;
            if lay.t_flags.get(b) & PF_EXITING != 0 {
                kp.ki_flag |= abi::P_WEXIT;
            }
        }
        // Exit status of a zombie, or the stop signal of a stopped task (wait-status layout;
        // a group stop records its signal in signal->group_exit_code).
        if matches!(kp.ki_stat, abi::SZOMB | abi::SSTOP) {
            let mut x = o(lay.t_exit_code) & 0xffff;
            if x == 0 && kp.ki_stat == abi::SSTOP {
                x = group_exit_code & 0xffff;
            }
            kp.ki_xstat = x as u16;
        }
        let nice = lay.t_static_prio.get_signed(b) - NICE_BASE;
        kp.ki_nice = nice.clamp(-20, 20) as i8;
        kp.ki_pri = self.priority(b, nice, kp.ki_flag & abi::P_SYSTEM != 0);
        let (ut, st) = times;
        kp.ki_rusage.ru_utime = ns_to_timeval(ut);
        kp.ki_rusage.ru_stime = ns_to_timeval(st);
        kp.ki_runtime = ut.saturating_add(st) / 1000;
        kp.ki_rusage.ru_minflt = o(lay.t_min_flt) as i64;
        kp.ki_rusage.ru_majflt = o(lay.t_maj_flt) as i64;
        kp.ki_rusage.ru_nvcsw = o(lay.t_nvcsw) as i64;
        kp.ki_rusage.ru_nivcsw = o(lay.t_nivcsw) as i64;
        let cpu = o(lay.t_cpu) as i32;
        kp.ki_lastcpu = cpu;
        kp.ki_lastcpu_old = cpu.clamp(0, 254) as u8;
        if o(lay.t_on_cpu) != 0 {
            kp.ki_oncpu = cpu;
            kp.ki_oncpu_old = kp.ki_lastcpu_old;
        } else {
            kp.ki_oncpu = abi::NOCPU;
            kp.ki_oncpu_old = abi::NOCPU_OLD;
        }
        // %CPU: lifetime average (a dump has no history), as procps ps computes it.
        let start = lay.t_start_time.get(b);
        if kp.ki_stat != abi::SZOMB && clock.now_mono > start {
            let frac = (ut + st) as f64 / (clock.now_mono - start) as f64;
            kp.ki_pctcpu = (frac * abi::FSCALE as f64).round().min(u32::MAX as f64) as u32;
        }
    }

    fn priority(&self, b: &[u8], nice: i64, system: bool) -> abi::Priority {
        let lay = &self.lay;
        let policy = lay.t_policy.map(|f| f.get(b)).unwrap_or(0);
        let rtp = lay.t_rt_priority.map(|f| f.get(b) as i64).unwrap_or(0);
        let n = (nice + 20).clamp(0, 39);
        let rt = |rtp: i64| (PRI_MIN_REALTIME + (31 - (rtp.clamp(1, 99) - 1) * 31 / 98)) as u8;
        let (class, native) = match policy {
            1 => (PRI_FIFO, rt(rtp)),
            2 => (abi::PRI_REALTIME, rt(rtp)),
            6 => (abi::PRI_REALTIME, PRI_MIN_REALTIME as u8),
            5 => (abi::PRI_IDLE, PRI_MAX_IDLE),
            _ if system => (
                abi::PRI_TIMESHARE,
                (PRI_MIN_KERN + n * (PRI_MAX_KERN - PRI_MIN_KERN) / 39) as u8,
            ),
            _ => (
                abi::PRI_TIMESHARE,
                (PRI_MIN_TIMESHARE + n * (PRI_MAX_TIMESHARE - PRI_MIN_TIMESHARE) / 39) as u8,
            ),
        };
        // Effective prio < 100 on a normal task means a PI boost into the RT range.
        let prio = lay.t_prio.map(|f| f.get_signed(b)).unwrap_or(NICE_BASE);
        let level = if class == abi::PRI_TIMESHARE && prio < 100 {
            rt(99 - prio)
        } else {
            native
        };
        abi::Priority {
            pri_class: class,
            pri_level: level,
            pri_native: native,
            pri_user: native,
        }
    }

    /// kvm_getprocs on the dead kernel.
    pub fn getprocs(
        &mut self,
        mem: &mut dyn KernelMemory,
        op: i32,
        arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        let base = op & !abi::KERN_PROC_INC_THREAD;
        let want_threads = op == abi::KERN_PROC_ALL || op & abi::KERN_PROC_INC_THREAD != 0;
        if !matches!(
            base,
            abi::KERN_PROC_ALL
                | abi::KERN_PROC_PROC
                | abi::KERN_PROC_PID
                | abi::KERN_PROC_PGRP
                | abi::KERN_PROC_SESSION
                | abi::KERN_PROC_TTY
                | abi::KERN_PROC_UID
                | abi::KERN_PROC_RUID
                | abi::KERN_PROC_RGID
                | abi::KERN_PROC_GID
        ) {
            return Err(Error::sys(
                format!("kvm_getprocs: unknown op {}", op),
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        let clock = self.clock(mem);
        if self.unwinder.is_none() {
            self.unwinder = Some(wchan::Unwinder::load(&self.btf, mem));
        }
        let leaders = self.leaders(mem)?;
        let mut by_pid = HashMap::with_capacity(leaders.len());
        let mut out = Vec::new();
        for addr in leaders {
            let leader = match self.read_task(mem, addr) {
                Ok(t) => t,
                Err(_) => continue, // a task page missing from the dump: skip the row
            };
            let tgid = self.lay.t_tgid.get(&leader.buf) as i32;
            by_pid.insert(tgid, addr);
            if base == abi::KERN_PROC_PID && tgid != arg {
                self.recycle(leader);
                continue;
            }
            let p = self.proc_info(mem, &leader);
            let keep = match base {
                abi::KERN_PROC_PGRP => p.pgid == arg,
                abi::KERN_PROC_SESSION => p.sid == arg,
                abi::KERN_PROC_TTY => p.tdev.map(|d| d as u32 == arg as u32).unwrap_or(false),
                abi::KERN_PROC_UID => p.uid == arg as u32,
                abi::KERN_PROC_RUID => p.ruid == arg as u32,
                abi::KERN_PROC_RGID => p.rgid == arg as u32,
                abi::KERN_PROC_GID => p.gid == arg as u32,
                _ => true,
            };
            if keep {
                self.rows(mem, &leader, &p, want_threads, clock, &mut out)?;
            }
            self.recycle(leader);
        }
        self.by_pid = by_pid;
        if base == abi::KERN_PROC_PID && out.is_empty() {
            return Err(Error::sys(
                format!("kvm_getprocs: pid {}", arg),
                std::io::Error::from_raw_os_error(libc::ESRCH),
            ));
        }
        // Newest first (descending pid), threads in tid order (errata §9).
        out.sort_by(|a, b| b.ki_pid.cmp(&a.ki_pid).then(a.ki_tid.cmp(&b.ki_tid)));
        Ok(out)
    }

    fn rows(
        &mut self,
        mem: &mut dyn KernelMemory,
        leader: &Task,
        p: &ProcInfo,
        want_threads: bool,
        clock: Clock,
        out: &mut Vec<KinfoProc>,
    ) -> Result<()> {
        let lay = self.lay.clone();
        let mut threads = Vec::new();
        if p.nthreads > 1 || want_threads {
            // A broken thread list costs the threads, not the whole listing.
            let addrs = self
                .threads(mem, leader)
                .unwrap_or_else(|_| vec![leader.addr]);
            for addr in addrs.into_iter().skip(1) {
                if let Ok(t) = self.read_task(mem, addr) {
                    threads.push(t);
                }
            }
        }
        let st = |t: &Task| state_letter(lay.t_state.get(&t.buf), lay.t_exit_state.get(&t.buf));
        let times = |t: &Task| (lay.t_utime.get(&t.buf), lay.t_stime.get(&t.buf));
        let mut base = KinfoProc::zeroed();
        self.fill_proc(&mut base, p, leader, clock);
        if want_threads {
            for t in std::iter::once(leader).chain(threads.iter()) {
                let mut kp = base;
                self.fill_thread(&mut kp, t, st(t), times(t), clock, p.group_exit_code);
                self.set_wchan(mem, &mut kp, t, st(t));
                if t.addr == leader.addr {
                    long_tdname(&mut kp, p);
                }
                out.push(kp);
            }
        } else {
            // Process row: the first thread's state unless the leader is a zombie with live
            // threads; times summed over live threads plus those of exited threads.
            let mut state = st(leader);
            if lay.t_exit_state.get(&leader.buf) & EXIT_ZOMBIE != 0 {
                if let Some(live) = threads.iter().map(st).find(|&s| s != b'Z' && s != b'X') {
                    state = live;
                }
            }
            let (mut ut, mut stt) = (p.sig_utime, p.sig_stime);
            for t in std::iter::once(leader).chain(threads.iter()) {
                let (u, s) = times(t);
                ut = ut.saturating_add(u);
                stt = stt.saturating_add(s);
            }
            let mut kp = base;
            self.fill_thread(&mut kp, leader, state, (ut, stt), clock, p.group_exit_code);
            // Page faults of the whole process: live threads plus those that exited.
            let flt = |f: Option<F>, t: &Task| f.map(|f| f.get(&t.buf)).unwrap_or(0) as i64;
            kp.ki_rusage.ru_minflt = p.sig_minflt as i64;
            kp.ki_rusage.ru_majflt = p.sig_majflt as i64;
            for t in std::iter::once(leader).chain(threads.iter()) {
                kp.ki_rusage.ru_minflt += flt(lay.t_min_flt, t);
                kp.ki_rusage.ru_majflt += flt(lay.t_maj_flt, t);
            }
            self.set_wchan(mem, &mut kp, leader, st(leader));
            long_tdname(&mut kp, p);
            kp.ki_tid = p.pid;
            out.push(kp);
        }
        for t in threads {
            self.recycle(t);
        }
        Ok(())
    }

    /// ki_wchan / ki_wmesg of a blocked task (not running, not queued to run, not exited), as
    /// /proc/PID/wchan reports it.
    fn set_wchan(&self, mem: &mut dyn KernelMemory, kp: &mut KinfoProc, t: &Task, state: u8) {
        let Some(Some(u)) = &self.unwinder else {
            return;
        };
        if !matches!(state, b'S' | b'D' | b'I' | b'T' | b't' | b'P') {
            return;
        }
        if u.on_rq.map(|f| f.get(&t.buf)).unwrap_or(0) != 0 {
            return;
        }
        let Some(ip) = u.wchan(mem, &t.buf) else {
            return;
        };
        kp.ki_wchan = ip;
        if let Some(name) = mem.symbol_name(ip) {
            set_cstr(&mut kp.ki_wmesg, wchan::wmesg(&name));
        }
    }

    /// The raw argument or environment area of `kp`'s process (at most `limit` bytes), read
    /// through the process's own page tables. `Ok(None)` for kernel threads and zombies.
    pub fn getargv(
        &mut self,
        mem: &mut dyn KernelMemory,
        kp: &KinfoProc,
        kind: ArgvKind,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        let pid = kp.ki_pid;
        let addr = match self.by_pid.get(&pid).copied() {
            Some(a) if read_field(mem, a, self.lay.t_tgid).ok() == Some(pid as u32 as u64) => a,
            _ => {
                self.getprocs(mem, abi::KERN_PROC_PID, pid)?;
                *self.by_pid.get(&pid).ok_or_else(|| {
                    Error::sys(
                        format!("kvm_getargv: pid {}", pid),
                        std::io::Error::from_raw_os_error(libc::ESRCH),
                    )
                })?
            }
        };
        let task = self.read_task(mem, addr)?;
        let flags = self.lay.t_flags.get(&task.buf);
        let p = if flags & PF_KTHREAD != 0 {
            None
        } else {
            self.proc_info(mem, &task).mm
        };
        self.recycle(task);
        let Some(m) = p else { return Ok(None) };
        let (start, end) = match kind {
            ArgvKind::Args => m.arg,
            ArgvKind::Env => m.env,
        };
        if end <= start {
            return Ok(Some(Vec::new()));
        }
        let len = ((end - start) as usize)
            .min(limit)
            .min(abi::FREEBSD_ARG_MAX * 4);
        let pgd_pa = self.kva_to_pa(mem, m.pgd)?;
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let n = mem.read_user(pgd_pa, start + done as u64, &mut buf[done..])?;
            if n == 0 {
                return Err(Error::bad_address(
                    start + done as u64,
                    format!("pid {}: user page not in the dump", pid),
                ));
            }
            done += n;
        }
        Ok(Some(buf))
    }

    /// Direct-map kernel address -> physical (mm->pgd lives in the direct map).
    fn kva_to_pa(&self, mem: &mut dyn KernelMemory, va: u64) -> Result<u64> {
        if let Some(pa) = mem.kva_to_pa(va) {
            return Ok(pa);
        }
        let base = match mem.symbol("page_offset_base") {
            Some(s) => read_u64(mem, s)?,
            None => 0xffff_8880_0000_0000,
        };
        va.checked_sub(base)
            .ok_or_else(|| Error::bad_address(va, "page table address outside the direct map"))
    }
}

#[cfg(test)]
mod tests {
    use super::state_letter;

    #[test]
    fn linux_state_letters() {
        // (__state, exit_state) -> /proc letter, as fs/proc/array.c reports them.
        let cases = [
            (0x0, 0x0, b'R'),
            (0x1, 0x0, b'S'),
            (0x2, 0x0, b'D'),
            (0x402, 0x0, b'I'),        // TASK_IDLE = UNINTERRUPTIBLE | NOLOAD
            (0x104, 0x0, b'T'),        // TASK_STOPPED = WAKEKILL | __TASK_STOPPED
            (0x108, 0x0, b't'),        // TASK_TRACED
            (0x80, 0x20, b'Z'),        // TASK_DEAD with EXIT_ZOMBIE
            (0x80, 0x10, b'X'),        // EXIT_DEAD
            (0x40, 0x0, b'P'),         // TASK_PARKED
            (0x1 | 0x2000, 0x0, b'S'), // freezable sleep still S
        ];
        for (st, ex, want) in cases {
            assert_eq!(
                state_letter(st, ex) as char,
                want as char,
                "state 0x{:x} exit 0x{:x}",
                st,
                ex
            );
        }
    }
}
