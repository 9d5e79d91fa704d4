//! Filling kinfo_proc records from a task copy and its process-wide facts.

use super::*;

// FreeBSD values this module needs beyond src/abi.rs (sys/priority.h, sys/proc.h, user.h).
const PRI_MIN_REALTIME: i64 = 16;
const PRI_MIN_KERN: i64 = 48;
const PRI_MAX_KERN: i64 = 87;
const PRI_MIN_TIMESHARE: i64 = 88;
const PRI_MAX_TIMESHARE: i64 = 223;
const PRI_MAX_IDLE: u8 = 255;
const PRI_FIFO: u8 = 10;
const TDF_SINTR: i64 = abi::TDF_SINTR;
const MAXSLP: u32 = 20;
const PS_INMEM: i64 = 0x1;
const P_STOPPED_TRACE: i64 = 0x40000;

fn ns_to_timeval(ns: u64) -> Timeval {
    Timeval {
        tv_sec: (ns / 1_000_000_000) as i64,
        tv_usec: ((ns % 1_000_000_000) / 1000) as i64,
    }
}

/// A long kernel-thread name: the first TDNAMLEN bytes in ki_tdname, the rest in ki_moretdname.
pub(super) fn long_tdname(kp: &mut KinfoProc, p: &ProcInfo) {
    if let Some(n) = &p.full_name {
        let (head, rest) = n.split_at(n.len().min(abi::TDNAMLEN));
        set_cstr(&mut kp.ki_tdname, head);
        set_cstr(&mut kp.ki_moretdname, rest);
    }
}

impl DeadLinux {
    /// Fills the fields every row of the process shares.
    pub(super) fn fill_proc(&self, kp: &mut KinfoProc, p: &ProcInfo, leader: &Task, clock: Clock) {
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

    pub(super) fn comm<'a>(&self, b: &'a [u8]) -> &'a [u8] {
        let lay = &self.lay;
        let c = b
            .get(lay.t_comm..lay.t_comm.saturating_add(lay.t_comm_len))
            .unwrap_or(&[]);
        let end = c.iter().position(|&x| x == 0).unwrap_or(c.len());
        &c[..end]
    }

    /// Fills the per-thread fields from task `t`; `times` are (utime, stime) in ns to report.
    pub(super) fn fill_thread(
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

    /// ki_wchan / ki_wmesg of a blocked task (not running, not queued to run, not exited), as
    /// /proc/PID/wchan reports it.
    pub(super) fn set_wchan(
        &self,
        mem: &mut dyn KernelMemory,
        kp: &mut KinfoProc,
        t: &Task,
        state: u8,
    ) {
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
}
