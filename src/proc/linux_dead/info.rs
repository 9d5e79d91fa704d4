//! Process-wide facts of a thread group: ids, session and tty, credentials, memory, signal
//! dispositions and /proc-style names, read from the task's signal, cred and mm structures.

use super::*;

impl DeadLinux {
    /// Process-wide facts of the group led by `t`.
    pub(super) fn proc_info(&mut self, mem: &mut dyn KernelMemory, t: &Task) -> ProcInfo {
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
        // A k_sigaction is a few dozen bytes; a corrupt BTF must not size a huge buffer.
        if !(8..=4096).contains(&stride) {
            return (0, 0);
        }
        let mut buf = vec![0u8; stride * n];
        if sh == 0 || read_exact(mem, sh.wrapping_add(off as u64), &mut buf).is_err() {
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
}
