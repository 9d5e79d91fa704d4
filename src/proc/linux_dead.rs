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

mod fill;
pub mod glue;
mod info;
pub mod layout;
pub mod stats;
pub mod wchan;

use std::collections::HashMap;

use crate::abi::{self, set_cstr, KinfoProc, Timeval};
use crate::backend::ArgvKind;
use crate::btf::{self, Btf};
use crate::error::{Error, Result};
use fill::long_tdname;
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

    /// kvm_getprocs on the dead kernel.
    pub fn getprocs(
        &mut self,
        mem: &mut dyn KernelMemory,
        op: i32,
        arg: i32,
    ) -> Result<Vec<KinfoProc>> {
        let base = super::dead_kernel_base_op(op)?;
        let want_threads = op == abi::KERN_PROC_ALL || op & abi::KERN_PROC_INC_THREAD != 0;
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
