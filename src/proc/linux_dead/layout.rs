//! Byte offsets of the kernel structures the task walker reads, resolved once from BTF by
//! member name (never hard-coded), so other kernel versions with other layouts work too.

use crate::btf::{Btf, Member};
use crate::error::{Error, Result};

/// A scalar field: offset and width in bytes (1, 2, 4 or 8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F {
    pub off: usize,
    pub size: usize,
}

impl F {
    /// Reads the field from a copy of the structure (little-endian, zero-extended).
    pub fn get(&self, buf: &[u8]) -> u64 {
        let Some(b) = self
            .off
            .checked_add(self.size)
            .and_then(|e| buf.get(self.off..e))
        else {
            return 0;
        };
        let mut v = [0u8; 8];
        v[..b.len().min(8)].copy_from_slice(&b[..b.len().min(8)]);
        u64::from_le_bytes(v)
    }
    /// Same, sign-extended from the field's width.
    pub fn get_signed(&self, buf: &[u8]) -> i64 {
        let v = self.get(buf);
        match self.size {
            1 => v as u8 as i8 as i64,
            2 => v as u16 as i16 as i64,
            4 => v as u32 as i32 as i64,
            _ => v as i64,
        }
    }
}

/// An optional field (present in some kernel versions only).
pub type Opt = Option<F>;

#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub task_size: usize,
    pub t_tasks: usize,
    pub t_pid: F,
    pub t_tgid: F,
    pub t_real_parent: F,
    pub t_parent: F,
    pub t_group_leader: F,
    /// signal_struct.thread_head list linkage (3.14+), else thread_group.
    pub t_thread_node: Option<usize>,
    pub t_thread_group: Option<usize>,
    pub t_signal: F,
    pub t_comm: usize,
    pub t_comm_len: usize,
    pub t_real_cred: F,
    pub t_mm: F,
    pub t_flags: F,
    /// `__state` (5.14+) or `state`.
    pub t_state: F,
    pub t_exit_state: F,
    pub t_exit_code: Opt,
    pub t_static_prio: F,
    pub t_prio: Opt,
    pub t_policy: Opt,
    pub t_rt_priority: Opt,
    pub t_utime: F,
    pub t_stime: F,
    pub t_start_time: F,
    pub t_min_flt: Opt,
    pub t_maj_flt: Opt,
    pub t_nvcsw: Opt,
    pub t_nivcsw: Opt,
    pub t_cpu: Opt,
    pub t_on_cpu: Opt,
    pub t_ptrace: Opt,
    /// task->worker_private -> struct kthread, whose full_name holds the untruncated name.
    pub t_worker_private: Opt,
    pub kthread_full_name: Opt,
    /// Signal state: task->blocked, task->pending.signal, signal->shared_pending.signal,
    /// task->sighand -> action[] (k_sigaction: handler offset, element size, count).
    pub t_blocked: Opt,
    pub t_pending: Opt,
    pub s_shared_pending: Opt,
    pub t_sighand: Opt,
    pub sh_action: Option<(usize, usize, usize, usize)>,
    /// kthread.data -> struct worker (workqueue workers): desc[] and current_work.
    pub kthread_data: Opt,
    pub worker_desc: Option<(usize, usize)>,
    pub worker_current_work: Opt,

    pub signal_size: usize,
    pub s_thread_head: Option<usize>,
    pub s_nr_threads: F,
    /// Offset of pids[] and the size of one element (a pointer).
    pub s_pids: usize,
    pub s_tty: F,
    pub s_utime: Opt,
    pub s_stime: Opt,
    pub s_cutime: Opt,
    pub s_cstime: Opt,
    pub s_cmin_flt: Opt,
    pub s_cmaj_flt: Opt,
    pub s_min_flt: Opt,
    pub s_maj_flt: Opt,
    pub s_group_exit_code: Opt,

    /// struct pid: numbers[0].nr offset.
    pub pid_nr0: F,

    pub cred_size: usize,
    pub c_uid: F,
    pub c_euid: F,
    pub c_suid: F,
    pub c_gid: F,
    pub c_egid: F,
    pub c_sgid: F,
    pub c_group_info: F,
    pub g_ngroups: F,
    pub g_gid: usize,

    pub mm_size: usize,
    pub m_pgd: F,
    pub m_total_vm: F,
    pub m_exec_vm: Opt,
    pub m_data_vm: Opt,
    pub m_stack_vm: Opt,
    pub m_hiwater_rss: Opt,
    pub m_start_code: Opt,
    pub m_end_code: Opt,
    pub m_arg_start: F,
    pub m_arg_end: F,
    pub m_env_start: F,
    pub m_env_end: F,
    /// rss_stat counters: offset of count[0] and stride between counters.
    pub m_rss: Option<(usize, usize)>,

    pub tty_index: Opt,
    pub tty_driver: Opt,
    /// tty_struct.ctrl.pgrp (5.13+) or tty_struct.pgrp.
    pub tty_pgrp: Opt,
    pub drv_major: Opt,
    pub drv_minor_start: Opt,

    /// PIDTYPE_PGID / PIDTYPE_SID indexes into signal->pids[].
    pub pidtype_pgid: usize,
    pub pidtype_sid: usize,
    /// MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES counter indexes.
    pub mm_counters: [Option<usize>; 3],
}

fn missing(s: &str, m: &str) -> Error {
    Error::format(format!(
        "kernel BTF: struct {} has no member {} (unsupported kernel version?)",
        s, m
    ))
}

struct Ctx<'a> {
    btf: &'a Btf,
}

impl Ctx<'_> {
    fn id(&self, s: &str) -> Result<u32> {
        self.btf
            .find_aggregate(s)
            .ok_or_else(|| Error::format(format!("kernel BTF: no struct {}", s)))
    }
    /// A structure's size; a corrupt BTF must not make the walker allocate gigabytes.
    fn size(&self, s: &str) -> Result<usize> {
        let n = self.btf.struct_size(s)? as usize;
        if n == 0 || n > 1 << 20 {
            return Err(Error::format(format!(
                "kernel BTF: struct {} has an implausible size {}",
                s, n
            )));
        }
        Ok(n)
    }
    fn mem(&self, s: &str, path: &str) -> Option<Member> {
        self.btf.member_path(self.btf.find_aggregate(s)?, path)
    }
    fn off(&self, s: &str, path: &str) -> Result<usize> {
        self.mem(s, path)
            .map(|m| m.offset() as usize)
            .ok_or_else(|| missing(s, path))
    }
    /// A scalar member: offset plus width from its type.
    fn opt(&self, s: &str, path: &str) -> Opt {
        let m = self.mem(s, path)?;
        if m.bitfield_size != 0 {
            return None;
        }
        let size = self.btf.size_of(m.type_id)? as usize;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        Some(F {
            off: m.offset() as usize,
            size,
        })
    }
    fn f(&self, s: &str, path: &str) -> Result<F> {
        self.opt(s, path).ok_or_else(|| missing(s, path))
    }
    /// First of several alternative member names that exists.
    fn any(&self, s: &str, paths: &[&str]) -> Result<F> {
        paths
            .iter()
            .find_map(|p| self.opt(s, p))
            .ok_or_else(|| missing(s, paths[0]))
    }
    /// A kuid_t / kgid_t (struct { uid_t val; }) member.
    fn kid(&self, s: &str, m: &str) -> Result<F> {
        self.opt(s, &format!("{}.val", m))
            .or_else(|| self.opt(s, m))
            .ok_or_else(|| missing(s, m))
    }
}

impl Layout {
    pub fn from_btf(btf: &Btf) -> Result<Layout> {
        let c = Ctx { btf };
        let task = "task_struct";
        let comm = c.mem(task, "comm").ok_or_else(|| missing(task, "comm"))?;
        let pid_ty = c.id("pid")?;
        let numbers = btf
            .member(pid_ty, "numbers")
            .ok_or_else(|| missing("pid", "numbers"))?;
        let upid_nr = c.f("upid", "nr")?;
        let pids = c
            .mem("signal_struct", "pids")
            .ok_or_else(|| missing("signal_struct", "pids"))?;

        // mm->rss_stat: 6.1 has struct mm_rss_stat { atomic_long_t count[] }, 6.2+ an array of
        // percpu_counter whose `count` holds the folded value (per-CPU deltas are not summed).
        let m_rss = c.mem("mm_struct", "rss_stat").and_then(|m| {
            let base = m.offset() as usize;
            let ty = btf.resolve(m.type_id)?;
            if let Some((elem, _)) = btf.array(ty) {
                let stride = btf.size_of(elem)? as usize;
                let inner = btf
                    .member(elem, "count")
                    .map(|m| m.offset() as usize)
                    .unwrap_or(0);
                return Some((base + inner, stride));
            }
            let count = btf.member(ty, "count")?;
            let (elem, _) = btf.array(count.type_id)?;
            Some((base + count.offset() as usize, btf.size_of(elem)? as usize))
        });
        let enum_idx = |n: &str| btf.enum_value(n).and_then(|v| usize::try_from(v).ok());

        Ok(Layout {
            task_size: c.size(task)?,
            t_tasks: c.off(task, "tasks")?,
            t_pid: c.f(task, "pid")?,
            t_tgid: c.f(task, "tgid")?,
            t_real_parent: c.f(task, "real_parent")?,
            t_parent: c.f(task, "parent")?,
            t_group_leader: c.f(task, "group_leader")?,
            t_thread_node: c.mem(task, "thread_node").map(|m| m.offset() as usize),
            t_thread_group: c.mem(task, "thread_group").map(|m| m.offset() as usize),
            t_signal: c.f(task, "signal")?,
            t_comm: comm.offset() as usize,
            t_comm_len: btf.size_of(comm.type_id).unwrap_or(16) as usize,
            t_real_cred: c.f(task, "real_cred")?,
            t_mm: c.f(task, "mm")?,
            t_flags: c.f(task, "flags")?,
            t_state: c.any(task, &["__state", "state"])?,
            t_exit_state: c.f(task, "exit_state")?,
            t_exit_code: c.opt(task, "exit_code"),
            t_static_prio: c.f(task, "static_prio")?,
            t_prio: c.opt(task, "prio"),
            t_policy: c.opt(task, "policy"),
            t_rt_priority: c.opt(task, "rt_priority"),
            t_utime: c.f(task, "utime")?,
            t_stime: c.f(task, "stime")?,
            t_start_time: c.any(task, &["start_time", "real_start_time"])?,
            t_min_flt: c.opt(task, "min_flt"),
            t_maj_flt: c.opt(task, "maj_flt"),
            t_nvcsw: c.opt(task, "nvcsw"),
            t_nivcsw: c.opt(task, "nivcsw"),
            t_cpu: c
                .opt(task, "cpu")
                .or_else(|| c.opt(task, "thread_info.cpu")),
            t_on_cpu: c.opt(task, "on_cpu"),
            t_ptrace: c.opt(task, "ptrace"),
            t_worker_private: c.opt(task, "worker_private"),
            kthread_full_name: c.opt("kthread", "full_name"),
            t_blocked: c
                .opt(task, "blocked.sig")
                .or_else(|| c.opt(task, "blocked")),
            t_pending: c.opt(task, "pending.signal.sig"),
            s_shared_pending: c.opt("signal_struct", "shared_pending.signal.sig"),
            t_sighand: c.opt(task, "sighand"),
            sh_action: c.mem("sighand_struct", "action").and_then(|m| {
                let (elem, n) = btf.array(m.type_id)?;
                let handler = btf.member_path(elem, "sa.sa_handler")?;
                Some((
                    m.offset() as usize,
                    btf.size_of(elem)? as usize,
                    n as usize,
                    handler.offset() as usize,
                ))
            }),
            kthread_data: c.opt("kthread", "data"),
            worker_desc: c
                .mem("worker", "desc")
                .and_then(|m| Some((m.offset() as usize, btf.size_of(m.type_id)? as usize))),
            worker_current_work: c.opt("worker", "current_work"),

            signal_size: c.size("signal_struct")?,
            s_thread_head: c
                .mem("signal_struct", "thread_head")
                .map(|m| m.offset() as usize),
            s_nr_threads: c.f("signal_struct", "nr_threads")?,
            s_pids: pids.offset() as usize,
            s_tty: c.f("signal_struct", "tty")?,
            s_utime: c.opt("signal_struct", "utime"),
            s_stime: c.opt("signal_struct", "stime"),
            s_cutime: c.opt("signal_struct", "cutime"),
            s_cstime: c.opt("signal_struct", "cstime"),
            s_cmin_flt: c.opt("signal_struct", "cmin_flt"),
            s_cmaj_flt: c.opt("signal_struct", "cmaj_flt"),
            s_min_flt: c.opt("signal_struct", "min_flt"),
            s_maj_flt: c.opt("signal_struct", "maj_flt"),
            s_group_exit_code: c.opt("signal_struct", "group_exit_code"),

            pid_nr0: F {
                off: numbers.offset() as usize + upid_nr.off,
                size: upid_nr.size,
            },

            cred_size: c.size("cred")?,
            c_uid: c.kid("cred", "uid")?,
            c_euid: c.kid("cred", "euid")?,
            c_suid: c.kid("cred", "suid")?,
            c_gid: c.kid("cred", "gid")?,
            c_egid: c.kid("cred", "egid")?,
            c_sgid: c.kid("cred", "sgid")?,
            c_group_info: c.f("cred", "group_info")?,
            g_ngroups: c.f("group_info", "ngroups")?,
            g_gid: c.off("group_info", "gid")?,

            mm_size: c.size("mm_struct")?,
            m_pgd: c.f("mm_struct", "pgd")?,
            m_total_vm: c.f("mm_struct", "total_vm")?,
            m_exec_vm: c.opt("mm_struct", "exec_vm"),
            m_data_vm: c.opt("mm_struct", "data_vm"),
            m_stack_vm: c.opt("mm_struct", "stack_vm"),
            m_hiwater_rss: c.opt("mm_struct", "hiwater_rss"),
            m_start_code: c.opt("mm_struct", "start_code"),
            m_end_code: c.opt("mm_struct", "end_code"),
            m_arg_start: c.f("mm_struct", "arg_start")?,
            m_arg_end: c.f("mm_struct", "arg_end")?,
            m_env_start: c.f("mm_struct", "env_start")?,
            m_env_end: c.f("mm_struct", "env_end")?,
            m_rss,

            tty_index: c.opt("tty_struct", "index"),
            tty_driver: c.opt("tty_struct", "driver"),
            tty_pgrp: c
                .opt("tty_struct", "ctrl.pgrp")
                .or_else(|| c.opt("tty_struct", "pgrp")),
            drv_major: c.opt("tty_driver", "major"),
            drv_minor_start: c.opt("tty_driver", "minor_start"),

            pidtype_pgid: enum_idx("PIDTYPE_PGID").unwrap_or(2),
            pidtype_sid: enum_idx("PIDTYPE_SID").unwrap_or(3),
            mm_counters: [
                enum_idx("MM_FILEPAGES"),
                enum_idx("MM_ANONPAGES"),
                enum_idx("MM_SHMEMPAGES"),
            ],
        })
    }
}
