//! kvm_getprocs / kvm_getargv on the live Linux system, from /proc.
//!
//! Per process: one `openat` of /proc/PID (the directory fd pins that task instance, so a pid
//! reused while we read gives ESRCH instead of another process's data), then `stat` and
//! `status` opened relative to it, each read with one `read` into a reused buffer and parsed in
//! place; `wchan` only for blocked tasks. A process that vanishes (ENOENT/ESRCH) or hides
//! (EACCES/EPERM) is skipped, never half-reported. Many processes are read by scoped worker
//! threads (LIBKVM_SERIAL=1 forces one thread); rows come out in descending pid order
//! (errata §9), threads of a process in ascending tid order.
//!
//! Decisions (see ../shared/spec/kinfo_proc-from-linux.md):
//! * Thread rows (R4): KERN_PROC_ALL and any op with KERN_PROC_INC_THREAD give one row per
//!   thread (ki_tid, ki_tdname, per-thread state/times/signals), as FreeBSD's kernel does;
//!   KERN_PROC_PROC and the plain filter ops give one row per process (ki_tid = pid).
//! * Signal sets (R3) keep the host's (Linux) numbering, so `sigismember(&ki_sigcatch, SIGINT)`
//!   in a tool compiled here means what it says.
//! * ki_tdev (R2) is Linux tty_nr, equal to st_rdev of the terminal; NODEV without one.
//! * ki_pctcpu (R1) is a ~10 s decaying average between calls on one handle, the lifetime
//!   average on first sight. ki_login is left empty (Linux has no session login name; the
//!   audit loginuid would cost one more open per process). ki_emul is "Linux ELF64",
//!   ki_loginclass "default". Unknown ops fail with EINVAL; KERN_PROC_PID of a missing pid or
//!   of a non-leader thread id fails with ESRCH.

use std::collections::HashMap;
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;
use std::time::Instant;

use rustix::fs::{openat, Mode, OFlags, RawDir, CWD};
use rustix::io::{read, Errno};
use rustix::time::{clock_gettime, ClockId};

use crate::abi::{self, KinfoProc, Sigset, KINFO_PROC_SIZE};
use crate::backend::ArgvKind;
use crate::error::{Error, Result};
use crate::proc::linux_map::{self as map, PF_EXITING, PF_FORKNOEXEC, PF_KTHREAD};
use crate::proc::procfs_parse::{self as parse, Stat, Status};

/// Below this many processes one thread is faster than starting workers.
const PARALLEL_MIN: usize = 256;
const EMUL: &[u8] = b"Linux ELF64";
const LOGINCLASS: &[u8] = b"default";

/// Knobs of one kvm_getprocs call (normally from the environment).
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Read with one thread only (LIBKVM_SERIAL=1).
    pub serial: bool,
    /// Read /proc/PID/wchan for blocked tasks (off with LIBKVM_LINUX_NOWCHAN=1).
    pub wchan: bool,
    /// Worker threads for a large pass (LIBKVM_WORKERS=N); 0 = one per online CPU.
    pub workers: usize,
}

fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

impl Options {
    pub fn from_env() -> Self {
        Options {
            serial: env_flag("LIBKVM_SERIAL"),
            wchan: !env_flag("LIBKVM_LINUX_NOWCHAN"),
            workers: std::env::var("LIBKVM_WORKERS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        }
    }
}

/// Which processes an op selects (a process-level test; threads are expanded afterwards).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Filter {
    All,
    Pid(i32),
    Pgrp(i32),
    Session(i32),
    Tty(u32),
    Uid(u32),
    Ruid(u32),
    Rgid(u32),
    Gid(u32),
}

impl Filter {
    fn from_op(op: i32, arg: i32) -> Option<(Filter, bool)> {
        if op & !(abi::KERN_PROC_INC_THREAD | 0xf) != 0 || op < 0 {
            return None;
        }
        let base = op & !abi::KERN_PROC_INC_THREAD;
        let threads = op == abi::KERN_PROC_ALL || op & abi::KERN_PROC_INC_THREAD != 0;
        let f = match base {
            abi::KERN_PROC_ALL | abi::KERN_PROC_PROC => Filter::All,
            abi::KERN_PROC_PID => Filter::Pid(arg),
            abi::KERN_PROC_PGRP => Filter::Pgrp(arg),
            abi::KERN_PROC_SESSION => Filter::Session(arg),
            abi::KERN_PROC_TTY => Filter::Tty(arg as u32),
            abi::KERN_PROC_UID => Filter::Uid(arg as u32),
            abi::KERN_PROC_RUID => Filter::Ruid(arg as u32),
            abi::KERN_PROC_RGID => Filter::Rgid(arg as u32),
            abi::KERN_PROC_GID => Filter::Gid(arg as u32),
            _ => return None,
        };
        Some((f, threads))
    }

    /// Ops decided by `stat` alone: read `status` only for matches (and vice versa).
    fn stat_first(self) -> bool {
        matches!(self, Filter::Pgrp(_) | Filter::Session(_) | Filter::Tty(_))
    }

    fn match_stat(self, st: &Stat) -> bool {
        match self {
            Filter::Pgrp(g) => st.pgrp == g,
            Filter::Session(s) => st.session == s,
            Filter::Tty(t) => st.tty_nr != 0 && st.tty_nr as u32 == t,
            _ => true,
        }
    }

    fn match_status(self, ss: &Status) -> bool {
        match self {
            Filter::Uid(u) => ss.uid[1] == u,
            Filter::Ruid(u) => ss.uid[0] == u,
            Filter::Rgid(g) => ss.gid[0] == g,
            Filter::Gid(g) => ss.gid[1] == g,
            _ => true,
        }
    }
}

/// Why a process produced no row.
enum Skip {
    /// Gone, hidden or not selected: silently left out.
    Gone,
    /// A failure that is not about this process (e.g. out of file descriptors).
    Fail(Error),
}

type Step<T> = std::result::Result<T, Skip>;

fn classify(e: Errno, what: &dyn Fn() -> String) -> Skip {
    match e {
        Errno::NOENT | Errno::SRCH | Errno::ACCESS | Errno::PERM | Errno::INVAL => Skip::Gone,
        e => Skip::Fail(Error::sys(what(), e.into())),
    }
}

/// What stays fixed during one call.
struct Ctx<'a> {
    proc_fd: BorrowedFd<'a>,
    hz: u64,
    page: u64,
    btime: i64,
    uptime_cs: u64,
    filter: Filter,
    wchan: bool,
}

/// Per-worker scratch space, reused for every process that worker reads.
struct Bufs {
    stat: Vec<u8>,
    status: Vec<u8>,
    small: [u8; 128],
    tids: Vec<i32>,
    dir: Vec<MaybeUninit<u8>>,
    scratch: KinfoProc,
}

impl Bufs {
    fn new() -> Self {
        Bufs {
            stat: vec![0; 4096],
            status: vec![0; 4096],
            small: [0; 128],
            tids: Vec::new(),
            dir: Vec::new(),
            scratch: KinfoProc::zeroed(),
        }
    }
}

/// "123" + suffix + NUL in a stack buffer.
fn num_path<'b>(buf: &'b mut [u8; 48], n: i32, suffix: &[u8]) -> &'b CStr {
    let mut digits = [0u8; 12];
    let mut i = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let d = &digits[i..];
    let suffix = &suffix[..suffix.len().min(buf.len() - d.len() - 1)];
    buf[..d.len()].copy_from_slice(d);
    buf[d.len()..d.len() + suffix.len()].copy_from_slice(suffix);
    let end = d.len() + suffix.len();
    buf[end] = 0;
    CStr::from_bytes_with_nul(&buf[..=end]).unwrap_or(c"")
}

fn open_ro(dir: BorrowedFd<'_>, name: &CStr, extra: OFlags) -> std::result::Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | extra,
        Mode::empty(),
    )
}

/// Opens `name` under `dir` and reads it whole into `buf` (one read unless the file is larger
/// than the buffer, which then grows). procfs builds these files at the first read, so one
/// read is a consistent snapshot. Returns the length.
fn read_file(
    dir: BorrowedFd<'_>,
    name: &CStr,
    buf: &mut Vec<u8>,
) -> std::result::Result<usize, Errno> {
    let fd = open_ro(dir, name, OFlags::empty())?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            let grown = buf.len().max(4096) * 2;
            buf.resize(grown, 0);
        }
        let n = read(&fd, &mut buf[len..])?;
        len += n;
        if n == 0 || len < buf.len() {
            return Ok(len);
        }
    }
}

/// Reads a small file (wchan) into a fixed buffer; `None` on any error.
fn read_small<'b>(dir: BorrowedFd<'_>, name: &CStr, buf: &'b mut [u8; 128]) -> Option<&'b [u8]> {
    let fd = open_ro(dir, name, OFlags::empty()).ok()?;
    let n = read(&fd, &mut buf[..]).ok()?;
    Some(&buf[..n])
}

fn set_sig(s: &mut Sigset, mask: u64) {
    *s = Sigset::from_linux_mask(mask);
}

/// Process-row fields from `stat` + `status` (spec §2). `row` must be zeroed.
fn fill_process(ctx: &Ctx, pid: i32, st: &Stat, ss: &Status, row: &mut KinfoProc) {
    let kthread = st.flags & PF_KTHREAD != 0 || ss.kthread == Some(true);
    let sm = map::map_state(st.state);
    let zombie = sm.stat == abi::SZOMB;
    let has_tty = st.tty_nr != 0;

    row.ki_structsize = KINFO_PROC_SIZE as i32;
    row.ki_pid = pid;
    row.ki_ppid = st.ppid;
    row.ki_pgid = st.pgrp;
    row.ki_sid = st.session;
    row.ki_tpgid = if has_tty && st.tpgid > 0 { st.tpgid } else { 0 };
    row.ki_tsid = if has_tty { st.session } else { 0 };
    row.ki_tdev = map::tty_dev(st.tty_nr);
    row.ki_tdev_freebsd11 = row.ki_tdev as u32;

    set_sig(&mut row.ki_siglist, ss.shd_pnd | ss.sig_pnd);
    set_sig(&mut row.ki_sigmask, ss.sig_blk);
    set_sig(&mut row.ki_sigignore, ss.sig_ign);
    set_sig(&mut row.ki_sigcatch, ss.sig_cgt);

    row.ki_ruid = ss.uid[0];
    row.ki_uid = ss.uid[1];
    row.ki_svuid = ss.uid[2];
    row.ki_rgid = ss.gid[0];
    row.ki_svgid = ss.gid[2];
    // FreeBSD's credential list starts with the effective gid (ps -o group prints groups[0]).
    row.ki_groups[0] = ss.gid[1];
    let nsupp = ss.ngroups.min(parse::MAX_SUPP_GROUPS);
    row.ki_groups[1..1 + nsupp].copy_from_slice(&ss.groups[..nsupp]);
    row.ki_ngroups = (1 + nsupp) as i16;
    if ss.ngroups > parse::MAX_SUPP_GROUPS {
        row.ki_cr_flags |= abi::KI_CRF_GRP_OVERFLOW;
    }

    let page = ctx.page.max(1);
    row.ki_size = st.vsize;
    row.ki_rssize = match ss.vm_rss_kb {
        Some(kb) => (kb.saturating_mul(1024) / page) as i64,
        None => st.rss.max(0),
    };
    row.ki_tsize = (ss.vm_exe_kb.saturating_mul(1024) / page) as i64;
    row.ki_dsize = (ss.vm_data_kb.saturating_mul(1024) / page) as i64;
    row.ki_ssize = (ss.vm_stk_kb.saturating_mul(1024) / page) as i64;

    if zombie || sm.stat == abi::SSTOP {
        row.ki_xstat = (st.exit_code & 0xffff) as u16;
    }

    let hz = ctx.hz;
    let age_s = (ctx.uptime_cs / 100).saturating_sub(st.starttime / hz.max(1));
    row.ki_swtime = if zombie {
        age_s.min(u32::MAX as u64) as u32
    } else {
        age_s.clamp(1, u32::MAX as u64) as u32
    };
    row.ki_runtime = map::ticks_to_us(st.utime.saturating_add(st.stime), hz);
    let start = map::ticks_to_tv(st.starttime, hz);
    row.ki_start.tv_sec = ctx.btime.saturating_add(start.tv_sec);
    row.ki_start.tv_usec = start.tv_usec;
    row.ki_childtime = map::ticks_to_tv(st.cutime.saturating_add(st.cstime), hz);

    let mut flag = abi::P_INMEM | sm.flags;
    if has_tty {
        flag |= abi::P_CONTROLT;
    }
    if kthread {
        flag |= abi::P_SYSTEM | abi::P_KPROC;
    } else if st.flags & PF_FORKNOEXEC == 0 {
        flag |= abi::P_EXEC;
    }
    if ss.tracer_pid != 0 {
        flag |= abi::P_TRACED;
    }
    if st.flags & PF_EXITING != 0 {
        flag |= abi::P_WEXIT;
    }
    if st.num_threads > 1 {
        flag |= abi::P_HADTHREADS;
    }
    row.ki_flag = flag;
    row.ki_sflag = map::PS_INMEM;
    row.ki_kiflag = if has_tty { abi::KI_CTTY } else { 0 }
        | if st.session == pid {
            abi::KI_SLEADER
        } else {
            0
        };

    row.ki_nice = st.nice.clamp(-20, 20) as i8;
    abi::set_cstr(&mut row.ki_comm, st.comm);
    abi::set_cstr(&mut row.ki_emul, EMUL);
    abi::set_cstr(&mut row.ki_loginclass, LOGINCLASS);
    row.ki_tracer = ss.tracer_pid;
    row.ki_numthreads = st.num_threads.max(1);
    row.ki_rusage.ru_maxrss = ss.vm_hwm_kb as i64;
    row.ki_rusage_ch.ru_utime = map::ticks_to_tv(st.cutime, hz);
    row.ki_rusage_ch.ru_stime = map::ticks_to_tv(st.cstime, hz);
    row.ki_rusage_ch.ru_minflt = st.cminflt as i64;
    row.ki_rusage_ch.ru_majflt = st.cmajflt as i64;
    fill_task(ctx, pid, st, ss, kthread, row);
}

/// The fields FreeBSD takes from a thread: for a process row the main thread's (from the
/// process files), for a thread row that task's own.
fn fill_task(ctx: &Ctx, tid: i32, st: &Stat, ss: &Status, kthread: bool, row: &mut KinfoProc) {
    let sm = map::map_state(st.state);
    row.ki_tid = tid;
    row.ki_stat = sm.stat;
    row.ki_tdflags = sm.tdflags;
    row.ki_slptime = sm.slptime;
    abi::set_cstr(&mut row.ki_tdname, st.comm);
    row.ki_runtime = map::ticks_to_us(st.utime.saturating_add(st.stime), ctx.hz);
    row.ki_rusage.ru_utime = map::ticks_to_tv(st.utime, ctx.hz);
    row.ki_rusage.ru_stime = map::ticks_to_tv(st.stime, ctx.hz);
    row.ki_rusage.ru_minflt = st.minflt as i64;
    row.ki_rusage.ru_majflt = st.majflt as i64;
    row.ki_rusage.ru_nvcsw = ss.vcsw as i64;
    row.ki_rusage.ru_nivcsw = ss.nvcsw as i64;
    let cpu = st.processor.max(0);
    row.ki_lastcpu = cpu;
    row.ki_lastcpu_old = cpu.min(254) as u8;
    if sm.stat == abi::SRUN {
        row.ki_oncpu = cpu;
        row.ki_oncpu_old = cpu.min(254) as u8;
    } else {
        row.ki_oncpu = abi::NOCPU;
        row.ki_oncpu_old = abi::NOCPU_OLD;
    }
    row.ki_pri = map::map_priority(st.policy, st.rt_priority, st.priority, st.nice, kthread);
    row.ki_wchan = 0;
    row.ki_wmesg = [0; abi::WMESGLEN + 1];
}

fn set_wchan(row: &mut KinfoProc, sym: &[u8]) {
    let sym = parse::words(sym).next().unwrap_or(b"");
    if sym.is_empty() || sym == b"0" {
        return;
    }
    row.ki_wchan = map::wchan_token(sym);
    abi::set_cstr(&mut row.ki_wmesg, map::wmesg_for(sym));
}

/// Reads one process into `row` (zeroed on entry; left zeroed when skipped). Returns the
/// /proc/PID directory fd when the process was selected.
fn read_process(ctx: &Ctx, b: &mut Bufs, pid: i32, row: &mut KinfoProc) -> Step<OwnedFd> {
    let mut name = [0u8; 48];
    let what = || format!("kvm_getprocs: /proc/{}", pid);
    let dir = open_ro(
        ctx.proc_fd,
        num_path(&mut name, pid, b""),
        OFlags::DIRECTORY | OFlags::PATH,
    )
    .map_err(|e| classify(e, &what))?;
    let dfd = dir.as_fd();
    let (mut stat_len, status_len);
    stat_len = 0;
    if ctx.filter.stat_first() {
        stat_len = read_file(dfd, c"stat", &mut b.stat).map_err(|e| classify(e, &what))?;
        let st = parse::parse_stat(&b.stat[..stat_len]).ok_or(Skip::Gone)?;
        if !ctx.filter.match_stat(&st) {
            return Err(Skip::Gone);
        }
    }
    status_len = read_file(dfd, c"status", &mut b.status).map_err(|e| classify(e, &what))?;
    let ss = parse::parse_status(&b.status[..status_len]).ok_or(Skip::Gone)?;
    // /proc/<tid> of a non-leader thread exists but is not a process (FreeBSD: ESRCH).
    if ss.tgid != pid || !ctx.filter.match_status(&ss) {
        return Err(Skip::Gone);
    }
    if !ctx.filter.stat_first() {
        stat_len = read_file(dfd, c"stat", &mut b.stat).map_err(|e| classify(e, &what))?;
    }
    let st = parse::parse_stat(&b.stat[..stat_len]).ok_or(Skip::Gone)?;
    if st.pid != pid || st.state == b'X' || st.state == b'x' {
        return Err(Skip::Gone);
    }
    fill_process(ctx, pid, &st, &ss, row);
    if ctx.wchan && map::is_blocked(st.state) && st.wchan != 0 {
        if let Some(sym) = read_small(dfd, c"wchan", &mut b.small) {
            set_wchan(row, sym);
        }
    }
    let cut_name = st.comm.len() == LINUX_COMM_MAX;
    if st.state == b'Z' && st.num_threads > 1 {
        zombie_leader_state(b, dfd, row);
    }
    if cut_name && row.ki_flag & abi::P_SYSTEM == 0 {
        long_comm(dfd, &mut b.small, row);
    }
    Ok(dir)
}

/// Linux keeps 15 bytes of the command name, FreeBSD 19.
const LINUX_COMM_MAX: usize = 15;

/// A name Linux cut at 15 bytes gets FreeBSD's 19 back from argv[0] when argv[0]'s basename
/// starts with the 15 bytes we have (pgrep/pkill match ki_comm). Costs one read, only for
/// processes whose name is exactly 15 bytes long.
fn long_comm(dfd: BorrowedFd<'_>, small: &mut [u8; 128], row: &mut KinfoProc) {
    let Some(cmd) = read_small(dfd, c"cmdline", small) else {
        return;
    };
    let arg0 = cmd.split(|&c| c == 0).next().unwrap_or(b"");
    let base = arg0.rsplit(|&c| c == b'/').next().unwrap_or(b"");
    let have = &row.ki_comm[..LINUX_COMM_MAX];
    if base.len() > LINUX_COMM_MAX && base.starts_with(have) {
        abi::set_cstr(&mut row.ki_comm, base);
    }
}

/// A leader that called pthread_exit shows Z while its threads run: report a live thread's
/// state for the process (spec §6).
fn zombie_leader_state(b: &mut Bufs, dfd: BorrowedFd<'_>, row: &mut KinfoProc) {
    let Ok(task) = list_tasks(dfd, b) else {
        return;
    };
    for i in 0..b.tids.len() {
        let mut name = [0u8; 48];
        let Ok(n) = read_file(
            task.as_fd(),
            num_path(&mut name, b.tids[i], b"/stat"),
            &mut b.stat,
        ) else {
            continue;
        };
        let Some(st) = parse::parse_stat(&b.stat[..n]) else {
            continue;
        };
        let sm = map::map_state(st.state);
        if sm.stat != abi::SZOMB {
            row.ki_stat = sm.stat;
            row.ki_tdflags = sm.tdflags;
            row.ki_slptime = sm.slptime;
            row.ki_flag = (row.ki_flag & !(abi::P_WEXIT)) | sm.flags;
            return;
        }
    }
}

/// Fills `b.tids` with the thread ids under /proc/PID/task, ascending; returns the task dir.
fn list_tasks(dfd: BorrowedFd<'_>, b: &mut Bufs) -> std::result::Result<OwnedFd, Errno> {
    let task = open_ro(dfd, c"task", OFlags::DIRECTORY)?;
    b.tids.clear();
    list_numeric(task.as_fd(), &mut b.dir, &mut b.tids)?;
    b.tids.sort_unstable();
    Ok(task)
}

/// All-digit entries of a directory (pids or tids).
fn list_numeric(
    dir: BorrowedFd<'_>,
    buf: &mut Vec<MaybeUninit<u8>>,
    out: &mut Vec<i32>,
) -> std::result::Result<(), Errno> {
    if buf.len() < 32768 {
        buf.resize(32768, MaybeUninit::uninit());
    }
    let mut rd = RawDir::new(dir, &mut buf[..]);
    while let Some(ent) = rd.next() {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name.first().is_some_and(|c| c.is_ascii_digit()) {
            if let Some(n) = parse::parse_dec(name).and_then(|n| i32::try_from(n).ok()) {
                if n > 0 {
                    out.push(n);
                }
            }
        }
    }
    Ok(())
}

/// Thread rows of a selected multi-threaded process, appended to `out`; `proc_row` supplies the
/// process-wide fields. Returns how many rows were added.
fn read_threads(ctx: &Ctx, b: &mut Bufs, dir: BorrowedFd<'_>, out: &mut Vec<KinfoProc>) -> usize {
    let proc_row = b.scratch;
    let kthread = proc_row.ki_flag & abi::P_SYSTEM != 0;
    let Ok(task) = list_tasks(dir, b) else {
        return 0;
    };
    let tfd = task.as_fd();
    let mut added = 0;
    for i in 0..b.tids.len() {
        let tid = b.tids[i];
        let mut name = [0u8; 48];
        let Ok(n) = read_file(tfd, num_path(&mut name, tid, b"/stat"), &mut b.stat) else {
            continue;
        };
        let Ok(m) = read_file(tfd, num_path(&mut name, tid, b"/status"), &mut b.status) else {
            continue;
        };
        let (Some(st), Some(ss)) = (
            parse::parse_stat(&b.stat[..n]),
            parse::parse_status(&b.status[..m]),
        ) else {
            continue;
        };
        if st.pid != tid || ss.tgid != proc_row.ki_pid {
            continue;
        }
        let mut row = proc_row;
        fill_task(ctx, tid, &st, &ss, kthread, &mut row);
        set_sig(&mut row.ki_siglist, ss.sig_pnd);
        set_sig(&mut row.ki_sigmask, ss.sig_blk);
        if ctx.wchan && map::is_blocked(st.state) && st.wchan != 0 {
            if let Some(sym) = read_small(tfd, num_path(&mut name, tid, b"/wchan"), &mut b.small) {
                set_wchan(&mut row, sym);
            }
        }
        out.push(row);
        added += 1;
    }
    added
}

/// One process, thread mode: the process's thread rows (or its single row) appended to `out`.
fn read_process_threads(ctx: &Ctx, b: &mut Bufs, pid: i32, out: &mut Vec<KinfoProc>) -> Step<()> {
    let mut scratch = KinfoProc::zeroed();
    let dir = read_process(ctx, b, pid, &mut scratch)?;
    b.scratch = scratch;
    if scratch.ki_numthreads > 1
        && scratch.ki_stat != abi::SZOMB
        && read_threads(ctx, b, dir.as_fd(), out) > 0
    {
        return Ok(());
    }
    out.push(scratch);
    Ok(())
}

/// Runs `f` over `items` on `workers` threads (the caller's thread is one of them), each with
/// its own scratch buffers. Results come back in item order.
fn run_workers<T: Send, R: Send>(
    items: Vec<T>,
    workers: usize,
    f: &(dyn Fn(&mut Bufs, T) -> Result<R> + Sync),
) -> Result<Vec<R>> {
    let n = items.len();
    if workers <= 1 || n <= 1 {
        let mut b = Bufs::new();
        return items.into_iter().map(|it| f(&mut b, it)).collect();
    }
    let queue = Mutex::new(items.into_iter().enumerate());
    let work = || -> Vec<(usize, Result<R>)> {
        let mut b = Bufs::new();
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
            let Some((i, it)) = next else { break };
            done.push((i, f(&mut b, it)));
        }
        done
    };
    let mut all: Vec<(usize, Result<R>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..workers.min(n)).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in handles {
            // A worker cannot panic on procfs data; if it did, its chunks are simply missing.
            if let Ok(v) = h.join() {
                all.extend(v);
            }
        }
        all
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Key of the %CPU history: pid, tid, start time (so a reused pid is a new entry), row kind.
type PctKey = (i32, i32, i64, i64, bool);

/// FxHash-style hasher for the small integer keys of the %CPU history (SipHash showed up in
/// profiles; the keys are pids and times, nothing to defend against).
#[derive(Default, Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(b as u64);
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(v as u64);
    }
    fn write_i32(&mut self, v: i32) {
        self.add(v as u32 as u64);
    }
    fn write_i64(&mut self, v: i64) {
        self.add(v as u64);
    }
}

type PctMap = HashMap<PctKey, PctHist, std::hash::BuildHasherDefault<KeyHasher>>;

struct PctHist {
    runtime_us: u64,
    at: Instant,
    pct: f64,
}

/// The live /proc reader owned by a live-Linux backend.
pub struct ProcFs {
    hz: u64,
    page: u64,
    workers: usize,
    /// Boot time kept across calls so ki_start stays bit-identical (refreshed on a clock step).
    btime: Option<i64>,
    pids: Vec<i32>,
    dirbuf: Vec<MaybeUninit<u8>>,
    pct: PctMap,
    pct_next: PctMap,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcFs {
    pub fn new() -> Self {
        ProcFs {
            hz: rustix::param::clock_ticks_per_second().max(1),
            page: rustix::param::page_size().max(1) as u64,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            btime: None,
            pids: Vec::new(),
            dirbuf: Vec::new(),
            pct: PctMap::default(),
            pct_next: PctMap::default(),
        }
    }

    pub fn hz(&self) -> u64 {
        self.hz
    }

    pub fn page_size(&self) -> u64 {
        self.page
    }

    /// Boot time (seconds since the epoch) as /proc/stat's btime gives it. The file is read on
    /// first use and again only when the clocks say the wall clock was stepped, so ki_start
    /// stays bit-identical across calls and a call does not pay for /proc/stat (large on
    /// machines with many CPUs and interrupts).
    fn boot_time(&mut self) -> Result<i64> {
        let ts = |id| {
            let t = clock_gettime(id);
            t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
        };
        let estimate = ts(ClockId::Realtime) - ts(ClockId::Boottime);
        if let Some(bt) = self.btime {
            if (estimate - bt as f64).abs() < 2.0 {
                return Ok(bt);
            }
        }
        let text = std::fs::read("/proc/stat").map_err(|e| Error::sys("/proc/stat", e))?;
        let bt =
            parse::parse_btime(&text).ok_or_else(|| Error::format("/proc/stat: no btime line"))?;
        self.btime = Some(bt);
        Ok(bt)
    }

    /// kvm_getprocs with options from the environment.
    pub fn getprocs(&mut self, op: i32, arg: i32) -> Result<Vec<KinfoProc>> {
        self.getprocs_with(op, arg, Options::from_env())
    }

    pub fn getprocs_with(&mut self, op: i32, arg: i32, opts: Options) -> Result<Vec<KinfoProc>> {
        let (filter, threads) = Filter::from_op(op, arg).ok_or_else(|| {
            Error::sys(
                format!("kvm_getprocs: invalid op {}", op),
                std::io::Error::from_raw_os_error(libc::EINVAL),
            )
        })?;
        let esrch = || {
            Error::sys(
                "kvm_getprocs",
                std::io::Error::from_raw_os_error(libc::ESRCH),
            )
        };
        if let Filter::Pid(p) = filter {
            if p <= 0 {
                return Err(esrch());
            }
        }
        let btime = self.boot_time()?;
        // /proc/uptime's first field is CLOCK_BOOTTIME: read the clock instead of the file.
        let up = clock_gettime(ClockId::Boottime);
        let uptime_cs = (up.tv_sec.max(0) as u64) * 100 + (up.tv_nsec.max(0) as u64) / 10_000_000;
        let proc_fd = open_ro(CWD, c"/proc", OFlags::DIRECTORY)
            .map_err(|e| Error::sys("kvm_getprocs: /proc", e.into()))?;
        let ctx = Ctx {
            proc_fd: proc_fd.as_fd(),
            hz: self.hz,
            page: self.page,
            btime,
            uptime_cs,
            filter,
            wchan: opts.wchan,
        };

        let mut pids = std::mem::take(&mut self.pids);
        pids.clear();
        match filter {
            Filter::Pid(p) => pids.push(p),
            _ => list_numeric(proc_fd.as_fd(), &mut self.dirbuf, &mut pids)
                .map_err(|e| Error::sys("kvm_getprocs: reading /proc", e.into()))?,
        }
        // Newest first (errata §9): ties of 10 ms start times resolve to the higher pid.
        pids.sort_unstable_by(|a, b| b.cmp(a));
        let workers = if opts.serial || pids.len() < PARALLEL_MIN {
            1
        } else if opts.workers > 0 {
            opts.workers.min(64)
        } else if self.workers <= 1 {
            1
        } else {
            // Reading /proc is mostly kernel time spent formatting text: one worker per online
            // CPU halves the wall time on two CPUs at a few percent more CPU time in all.
            self.workers.clamp(1, 16)
        };
        let chunk = (pids.len() / (workers * 8)).clamp(32, 512);

        let result = if threads {
            read_thread_mode(&ctx, &pids, workers, chunk)
        } else {
            read_process_mode(&ctx, &pids, workers, chunk)
        };
        self.pids = pids;
        let mut rows = result?;
        if matches!(filter, Filter::Pid(_)) && rows.is_empty() {
            return Err(esrch());
        }
        self.apply_pctcpu(&mut rows, threads, filter == Filter::All, btime, uptime_cs);
        Ok(rows)
    }

    /// ki_pctcpu (spec §4.1): a decaying average over ~10 s between calls on this handle; the
    /// lifetime average the first time a task is seen.
    fn apply_pctcpu(
        &mut self,
        rows: &mut [KinfoProc],
        threads: bool,
        full: bool,
        btime: i64,
        uptime_cs: u64,
    ) {
        let now = Instant::now();
        let uptime_s = uptime_cs as f64 / 100.0;
        let mut next = std::mem::take(&mut self.pct_next);
        next.clear();
        for row in rows.iter_mut() {
            if row.ki_stat == abi::SZOMB {
                continue;
            }
            let key = (
                row.ki_pid,
                row.ki_tid,
                row.ki_start.tv_sec,
                row.ki_start.tv_usec,
                threads,
            );
            let runtime_s = row.ki_runtime as f64 / 1e6;
            let (pct, entry) = match self.pct.get(&key) {
                Some(h) => {
                    let dt = now.duration_since(h.at).as_secs_f64();
                    if dt >= 0.1 {
                        let inst = (row.ki_runtime.saturating_sub(h.runtime_us)) as f64 / 1e6 / dt;
                        let a = (-dt / 10.0).exp();
                        let p = a * h.pct + (1.0 - a) * inst;
                        (
                            p,
                            PctHist {
                                runtime_us: row.ki_runtime,
                                at: now,
                                pct: p,
                            },
                        )
                    } else {
                        (
                            h.pct,
                            PctHist {
                                runtime_us: h.runtime_us,
                                at: h.at,
                                pct: h.pct,
                            },
                        )
                    }
                }
                None => {
                    let start_s =
                        (row.ki_start.tv_sec - btime) as f64 + row.ki_start.tv_usec as f64 / 1e6;
                    let p = runtime_s / (uptime_s - start_s).max(1.0);
                    (
                        p,
                        PctHist {
                            runtime_us: row.ki_runtime,
                            at: now,
                            pct: p,
                        },
                    )
                }
            };
            row.ki_pctcpu = (pct * abi::FSCALE as f64)
                .round()
                .clamp(0.0, u32::MAX as f64) as u32;
            next.insert(key, entry);
        }
        if full {
            self.pct_next = std::mem::replace(&mut self.pct, next);
        } else {
            self.pct.extend(next.drain());
            self.pct_next = next;
        }
    }
}

/// One row per process, written in place: every chunk of pids owns the same-sized chunk of the
/// result, rows are packed to the front of their chunk, then chunks are packed together.
fn read_process_mode(
    ctx: &Ctx,
    pids: &[i32],
    workers: usize,
    chunk: usize,
) -> Result<Vec<KinfoProc>> {
    let mut out = vec![KinfoProc::zeroed(); pids.len()];
    let items: Vec<(&[i32], &mut [KinfoProc])> =
        pids.chunks(chunk).zip(out.chunks_mut(chunk)).collect();
    let counts = run_workers(items, workers, &|b,
                                               (ids, slots): (
        &[i32],
        &mut [KinfoProc],
    )| {
        let mut filled = 0;
        for &pid in ids {
            let slot = &mut slots[filled];
            match read_process(ctx, b, pid, slot) {
                Ok(_dir) => filled += 1,
                Err(Skip::Gone) => {
                    if slot.ki_pid != 0 {
                        *slot = KinfoProc::zeroed();
                    }
                }
                Err(Skip::Fail(e)) => return Err(e),
            }
        }
        Ok(filled)
    })?;
    let mut len = 0;
    for (i, &c) in counts.iter().enumerate() {
        let start = i * chunk;
        if start != len && c > 0 {
            out.copy_within(start..start + c, len);
        }
        len += c;
    }
    out.truncate(len);
    if out.capacity() > 2 * len + 64 {
        out.shrink_to_fit();
    }
    Ok(out)
}

/// One row per thread: each chunk collects its rows, then the chunks are joined in order.
fn read_thread_mode(
    ctx: &Ctx,
    pids: &[i32],
    workers: usize,
    chunk: usize,
) -> Result<Vec<KinfoProc>> {
    let items: Vec<&[i32]> = pids.chunks(chunk).collect();
    let parts = run_workers(items, workers, &|b, ids: &[i32]| {
        let mut rows = Vec::with_capacity(ids.len());
        for &pid in ids {
            match read_process_threads(ctx, b, pid, &mut rows) {
                Ok(()) | Err(Skip::Gone) => {}
                Err(Skip::Fail(e)) => return Err(e),
            }
        }
        Ok(rows)
    })?;
    let total = parts.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(total);
    for p in parts {
        out.extend_from_slice(&p);
    }
    Ok(out)
}

/// kvm_getargv / kvm_getenvv raw data: /proc/PID/cmdline or environ, at most `limit` bytes.
/// `Ok(None)` when the process has none (kernel threads, zombies).
pub fn read_argv(pid: i32, kind: ArgvKind, limit: usize) -> Result<Option<Vec<u8>>> {
    let (func, file) = match kind {
        ArgvKind::Args => ("kvm_getargv", "cmdline"),
        ArgvKind::Env => ("kvm_getenvv", "environ"),
    };
    let what = || format!("{}: /proc/{}/{}", func, pid, file);
    let gone = |e: Errno| -> Error {
        let e = if e == Errno::NOENT { Errno::SRCH } else { e };
        Error::sys(what(), e.into())
    };
    if pid <= 0 {
        return Err(gone(Errno::SRCH));
    }
    let mut name = [0u8; 48];
    let path = num_path(
        &mut name,
        pid,
        if kind == ArgvKind::Args {
            b"/cmdline"
        } else {
            b"/environ"
        },
    );
    let proc_fd = open_ro(CWD, c"/proc", OFlags::DIRECTORY).map_err(gone)?;
    let fd = open_ro(proc_fd.as_fd(), path, OFlags::empty()).map_err(gone)?;
    let mut buf = vec![0u8; limit.clamp(1, 4096)];
    let mut len = 0;
    while len < limit {
        if len == buf.len() {
            let grown = buf.len().saturating_mul(2).min(limit);
            buf.resize(grown, 0);
        }
        let n = read(&fd, &mut buf[len..]).map_err(gone)?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    Ok(if buf.is_empty() { None } else { Some(buf) })
}
