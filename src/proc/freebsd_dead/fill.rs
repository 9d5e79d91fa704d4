//! Filling `kinfo_proc` rows from one struct proc and its threads (kvm_proc.c's kvm_proclist).

use super::clock::{cputick2usec, Clock};
use super::layout::Layout;
use super::*;

impl DeadFreeBsd {
    pub(super) fn be(&self) -> bool {
        self.abi.big_endian
    }

    fn opt(&self, f: Option<F>, buf: &[u8]) -> u64 {
        f.map(|f| f.get(buf, self.be())).unwrap_or(0)
    }

    fn opt_signed(&self, f: Option<F>, buf: &[u8]) -> i64 {
        f.map(|f| f.get_signed(buf, self.be())).unwrap_or(0)
    }

    fn sig(&self, f: Option<Bytes>, buf: &[u8]) -> Sigset {
        f.map(|b| sigset(b.slice(buf), self.be()))
            .unwrap_or_default()
    }

    /// Credentials: FreeBSD fills them only when the ucred reads; an unreadable prison is an
    /// error.
    fn fill_cred(&self, mem: &mut dyn Backend, kp: &mut KinfoProc, cred: u64) -> Result<()> {
        let lay = &self.lay;
        let be = self.be();
        let Ok(c) = read_exact(mem, cred, lay.cred_size, "ucred") else {
            return Ok(());
        };
        kp.ki_ruid = lay.cr_ruid.get(&c, be) as u32;
        kp.ki_svuid = lay.cr_svuid.get(&c, be) as u32;
        kp.ki_rgid = lay.cr_rgid.get(&c, be) as u32;
        kp.ki_svgid = lay.cr_svgid.get(&c, be) as u32;
        kp.ki_cr_flags = self.opt(lay.cr_flags, &c) as u32;
        // Kernels with a separate effective gid (a `cr_gid` member rather than the old
        // `cr_groups[0]` macro) keep only supplementary groups in cr_groups; kinfo_proc still
        // starts with the effective gid, as their kern_proc.c fills it.
        let egid = lay.cr_gid.map(|f| f.get(&c, be) as u32);
        let lead = egid.is_some() as usize;
        let total = lay.cr_ngroups.get_signed(&c, be).max(0) as usize + lead;
        let n = if total > abi::KI_NGROUPS {
            kp.ki_cr_flags |= abi::KI_CRF_GRP_OVERFLOW;
            abi::KI_NGROUPS
        } else {
            total
        };
        kp.ki_ngroups = n as i16;
        let from_array = n.saturating_sub(lead);
        let raw = match lay.cr_groups {
            Groups::Pointer(f) => {
                let mut b = vec![0u8; from_array * 4];
                let got = mem.read(f.get(&c, be), &mut b).unwrap_or(0);
                b.truncate(got);
                b
            }
            Groups::Inline(b) => b.slice(&c).to_vec(),
        };
        if let Some(g) = egid {
            kp.ki_groups[0] = g;
        }
        for (i, g) in kp.ki_groups[lead..].iter_mut().enumerate().take(from_array) {
            *g = F {
                off: i * 4,
                size: 4,
            }
            .get(&raw, be) as u32;
        }
        kp.ki_uid = lay.cr_uid.get(&c, be) as u32;
        let pr = self.opt(lay.cr_prison, &c);
        if pr != 0 {
            if let Some(f) = lay.pr_id {
                let b = read_exact(mem, pr, f.off + f.size, "prison")?;
                kp.ki_jid = f.get(&b, be) as i32;
            }
        }
        Ok(())
    }

    /// dev2udev of the tty's cdev, NODEV when it has none or the kernel's layout is unknown.
    fn tty_dev(&self, mem: &mut dyn Backend, cdev: u64) -> Result<u64> {
        let lay = &self.lay;
        if cdev == 0 {
            return Ok(abi::NODEV);
        }
        if let (Some(c), Some(ino)) = (lay.cdp_c, lay.cdp_inode) {
            let priv_ = cdev.wrapping_sub(c as u64);
            let b = read_exact(mem, priv_.wrapping_add(ino.off as u64), ino.size, "cdev")?;
            return Ok(F {
                off: 0,
                size: ino.size,
            }
            .get(&b, self.be()));
        }
        if let Some(f) = lay.si_udev {
            let b = read_exact(mem, cdev.wrapping_add(f.off as u64), f.size, "cdev")?;
            return Ok(F {
                off: 0,
                size: f.size,
            }
            .get(&b, self.be()));
        }
        Ok(abi::NODEV)
    }

    /// Process group, session and terminal. Returns the session copy (None without a pgrp).
    fn fill_pgrp(
        &self,
        mem: &mut dyn Backend,
        kp: &mut KinfoProc,
        pgrp: u64,
        flag: i64,
    ) -> Result<Option<Vec<u8>>> {
        let lay = &self.lay;
        let be = self.be();
        if pgrp == 0 {
            kp.ki_tdev = abi::NODEV;
            return Ok(None);
        }
        let pg = read_exact(
            mem,
            pgrp,
            Layout::span(&[Some(lay.pg_id), Some(lay.pg_session)]),
            "pgrp",
        )?;
        kp.ki_pgid = lay.pg_id.get(&pg, be) as i32;
        kp.ki_jobc = -1;
        let sess = read_exact(mem, lay.pg_session.get(&pg, be), lay.sess_size, "session")?;
        kp.ki_sid = lay.s_sid.get(&sess, be) as i32;
        if let Some(l) = lay.s_login {
            let src = l.slice(&sess);
            let n = src.len().min(kp.ki_login.len());
            kp.ki_login[..n].copy_from_slice(&src[..n]);
        }
        let ttyp = self.opt(lay.s_ttyp, &sess);
        if flag & abi::P_CONTROLT == 0 || ttyp == 0 {
            kp.ki_tdev = abi::NODEV;
            return Ok(Some(sess));
        }
        let tty = read_exact(
            mem,
            ttyp,
            Layout::span(&[lay.t_dev, lay.t_pgrp, lay.t_session]).max(1),
            "tty",
        )?;
        kp.ki_tdev = self.tty_dev(mem, self.opt(lay.t_dev, &tty))?;
        let tpg = self.opt(lay.t_pgrp, &tty);
        kp.ki_tpgid = if tpg != 0 {
            let b = read_exact(mem, tpg, lay.pg_id.off + lay.pg_id.size, "tpgrp")?;
            lay.pg_id.get(&b, be) as i32
        } else {
            -1
        };
        let ts = self.opt(lay.t_session, &tty);
        if ts != 0 {
            let b = read_exact(mem, ts, lay.s_sid.off + lay.s_sid.size, "session")?;
            kp.ki_tsid = lay.s_sid.get(&b, be) as i32;
        }
        Ok(Some(sess))
    }

    fn fill_vmspace(&self, mem: &mut dyn Backend, kp: &mut KinfoProc, vm: u64) {
        let lay = &self.lay;
        let fields = [
            lay.vm_size,
            lay.vm_rss,
            lay.vm_swrss,
            lay.vm_tsize,
            lay.vm_dsize,
            lay.vm_ssize,
        ];
        let span = Layout::span(&fields);
        // FreeBSD ignores a vmspace that does not read (kernel processes have proc0's).
        let Ok(v) = read_exact(mem, vm, span.max(1), "vmspace") else {
            return;
        };
        kp.ki_size = self.opt(lay.vm_size, &v);
        kp.ki_rssize = self.opt_signed(lay.vm_rss, &v);
        kp.ki_swrss = self.opt_signed(lay.vm_swrss, &v);
        kp.ki_tsize = self.opt_signed(lay.vm_tsize, &v);
        kp.ki_dsize = self.opt_signed(lay.vm_dsize, &v);
        kp.ki_ssize = self.opt_signed(lay.vm_ssize, &v);
    }

    fn fill_start(&self, mem: &mut dyn Backend, kp: &mut KinfoProc, stats: u64, clock: &Clock) {
        let lay = &self.lay;
        let (Some(boot), Some(s), Some(u)) = (clock.boot, lay.p_start_sec, lay.p_start_usec) else {
            return;
        };
        if stats == 0 {
            return;
        }
        let Ok(b) = read_exact(mem, stats, Layout::span(&[Some(s), Some(u)]), "pstats") else {
            return;
        };
        let mut sec = s.get_signed(&b, self.be()).wrapping_add(boot.0);
        let mut usec = u.get_signed(&b, self.be()).wrapping_add(boot.1);
        if usec >= 1_000_000 {
            sec += 1;
            usec -= 1_000_000;
        }
        kp.ki_start.tv_sec = sec;
        kp.ki_start.tv_usec = usec;
    }

    /// One process: its rows (one, or one per thread) are appended to `out` unless filtered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn one_proc(
        &self,
        mem: &mut dyn Backend,
        p: u64,
        buf: &[u8],
        what: i32,
        arg: i32,
        clock: &Clock,
        out: &mut Vec<KinfoProc>,
    ) -> Result<()> {
        let lay = &self.lay;
        let be = self.be();
        let state = lay.p_state.get(buf, be);
        if state == self.st.prs_new {
            return Ok(());
        }
        let mut kp = KinfoProc::zeroed();
        kp.ki_structsize = abi::KINFO_PROC_SIZE as i32;
        self.fill_cred(mem, &mut kp, lay.p_ucred.get(buf, be))?;
        let pid = lay.p_pid.get(buf, be) as i32;
        let keep = match what & !abi::KERN_PROC_INC_THREAD {
            abi::KERN_PROC_GID => kp.ki_groups[0] == arg as u32,
            abi::KERN_PROC_PID => pid == arg,
            abi::KERN_PROC_RGID => kp.ki_rgid == arg as u32,
            abi::KERN_PROC_UID => kp.ki_uid == arg as u32,
            abi::KERN_PROC_RUID => kp.ki_ruid == arg as u32,
            _ => true,
        };
        if !keep {
            return Ok(());
        }
        kp.ki_paddr = p;
        kp.ki_args = self.opt(lay.p_args, buf);
        kp.ki_numthreads = self.opt(lay.p_numthreads, buf) as i32;
        kp.ki_textvp = self.opt(lay.p_textvp, buf);
        kp.ki_fd = self.opt(lay.p_fd, buf);
        kp.ki_pd = self.opt(lay.p_pd, buf);
        let vm = self.opt(lay.p_vmspace, buf);
        kp.ki_vmspace = vm;
        let sa = self.opt(lay.p_sigacts, buf);
        if sa != 0 {
            let span = [lay.ps_sigignore, lay.ps_sigcatch]
                .iter()
                .flatten()
                .map(|b| b.off + b.len)
                .max()
                .unwrap_or(0);
            if span > 0 {
                let b = read_exact(mem, sa, span, "sigacts")?;
                kp.ki_sigignore = self.sig(lay.ps_sigignore, &b);
                kp.ki_sigcatch = self.sig(lay.ps_sigcatch, &b);
            }
        }
        let oppid = self.opt(lay.p_oppid, buf) as i32;
        let pptr = lay.p_pptr.get(buf, be);
        kp.ki_ppid = if oppid != 0 {
            oppid
        } else if pptr != 0 {
            let f = lay.p_pid;
            let b = read_exact(mem, pptr, f.off + f.size, "pproc")?;
            f.get(&b, be) as i32
        } else {
            0
        };
        let flag = lay.p_flag.get_signed(buf, be);
        let sess = self.fill_pgrp(mem, &mut kp, lay.p_pgrp.get(buf, be), flag)?;
        if vm != 0 {
            self.fill_vmspace(mem, &mut kp, vm);
        }
        let keep = match what & !abi::KERN_PROC_INC_THREAD {
            abi::KERN_PROC_PGRP => kp.ki_pgid == arg,
            abi::KERN_PROC_SESSION => kp.ki_sid == arg,
            abi::KERN_PROC_TTY => flag & abi::P_CONTROLT != 0 && kp.ki_tdev == arg as i64 as u64,
            _ => true,
        };
        if !keep {
            return Ok(());
        }
        set_cstr(&mut kp.ki_comm, cstr(lay.p_comm.slice(buf)));
        let sysent = self.opt(lay.p_sysent, buf);
        if let (Some(f), true) = (lay.sv_name, sysent != 0) {
            if let Ok(b) = read_exact(mem, sysent.wrapping_add(f.off as u64), f.size, "sysentvec") {
                let name = read_str(
                    mem,
                    F {
                        off: 0,
                        size: f.size,
                    }
                    .get(&b, be),
                    abi::KI_EMULNAMELEN,
                );
                set_cstr(&mut kp.ki_emul, &name);
            }
        }
        kp.ki_runtime = cputick2usec(self.opt(lay.p_runtime, buf), clock.freq);
        kp.ki_pid = pid;
        let xexit = self.opt(lay.p_xexit, buf) as u16;
        kp.ki_xstat = (xexit << 8) | (self.opt(lay.p_xsig, buf) as u16 & 0xff);
        kp.ki_acflag = self.opt(lay.p_acflag, buf) as u16;
        kp.ki_lock = self.opt(lay.p_lock, buf) as u8;
        kp.ki_tdev_freebsd11 = kp.ki_tdev as u32;
        self.fill_start(mem, &mut kp, self.opt(lay.p_stats, buf), clock);
        let swtime = if clock.hz != 0 {
            clock
                .ticks
                .wrapping_sub(self.opt(lay.p_swtick, buf) as i32)
                .wrapping_div(clock.hz) as u32
        } else {
            0
        };
        let ctx = ProcCtx {
            addr: p,
            state,
            flag,
            sess,
            nice: self.opt(lay.p_nice, buf) as i8,
            traceflag: self.opt(lay.p_traceflag, buf) as i32,
            swtime,
        };
        self.threads(mem, buf, &ctx, kp, what, out)
    }

    /// The rows of one process: its first thread, or every thread with KERN_PROC_INC_THREAD.
    #[allow(clippy::too_many_arguments)]
    fn threads(
        &self,
        mem: &mut dyn Backend,
        buf: &[u8],
        ctx: &ProcCtx,
        base: KinfoProc,
        what: i32,
        out: &mut Vec<KinfoProc>,
    ) -> Result<()> {
        let lay = &self.lay;
        let be = self.be();
        let all = what & abi::KERN_PROC_INC_THREAD != 0;
        let zombie = ctx.state == self.st.prs_zombie;
        let mut td = lay.p_threads_first.get(buf, be);
        let mut seen = HashSet::new();
        let mut first = true;
        while td != 0 && (first || all) {
            first = false;
            let mut kp = base;
            let t = if zombie {
                None
            } else {
                if seen.len() >= MAX_PROCS || !seen.insert(td) {
                    return Err(Error::format(format!(
                        "thread list of proc 0x{:x} loops at thread 0x{:x} (corrupt dump?)",
                        ctx.addr, td
                    )));
                }
                Some(read_exact(mem, td, lay.td_size, "thread")?)
            };
            let addr = td;
            td = match &t {
                Some(t) if all => lay.td_next.get(t, be),
                _ => 0,
            };
            if let Some(sess) = &ctx.sess {
                if self.opt(lay.s_ttyvp, sess) != 0 {
                    kp.ki_kiflag |= abi::KI_CTTY;
                }
                if lay.s_leader.is_some() && self.opt(lay.s_leader, sess) == ctx.addr {
                    kp.ki_kiflag |= abi::KI_SLEADER;
                }
            }
            kp.ki_siglist = self.sig(lay.p_siglist, buf);
            match t {
                Some(t) => self.fill_thread(mem, &mut kp, &t, addr, ctx),
                None => {
                    kp.ki_sigmask = Sigset::default();
                    kp.ki_stat = abi::SZOMB;
                    kp.ki_tid = 0;
                }
            }
            out.push(kp);
        }
        Ok(())
    }

    fn fill_thread(
        &self,
        mem: &mut dyn Backend,
        kp: &mut KinfoProc,
        t: &[u8],
        addr: u64,
        ctx: &ProcCtx,
    ) {
        let lay = &self.lay;
        let be = self.be();
        let wmesg = read_str(mem, self.opt(lay.td_wmesg, t), abi::WMESGLEN);
        set_cstr(&mut kp.ki_wmesg, &wmesg);
        if self.opt(lay.td_blocked, t) != 0 {
            kp.ki_kiflag |= abi::KI_LOCKBLOCK;
            let name = read_str(mem, self.opt(lay.td_lockname, t), abi::LOCKNAMELEN);
            set_cstr(&mut kp.ki_lockname, &name);
        }
        let tsig = self.sig(lay.td_siglist, t);
        for (a, b) in kp.ki_siglist.bits.iter_mut().zip(tsig.bits) {
            *a |= b;
        }
        kp.ki_sigmask = self.sig(lay.td_sigmask, t);
        kp.ki_swtime = ctx.swtime;
        kp.ki_flag = ctx.flag;
        kp.ki_sflag = 0;
        kp.ki_nice = ctx.nice;
        kp.ki_traceflag = ctx.traceflag;
        let st = &self.st;
        let tds = lay.td_state.get(t, be);
        let inhib = lay.td_inhibitors.get(t, be);
        if ctx.state == st.prs_normal {
            if tds == st.tds_runq || tds == st.tds_can_run || tds == st.tds_running {
                kp.ki_stat = abi::SRUN;
            } else if tds == st.tds_inhibited {
                kp.ki_stat = if ctx.flag & P_STOPPED != 0 {
                    abi::SSTOP
                } else if inhib & TDI_SLEEPING != 0 {
                    abi::SSLEEP
                } else if inhib & TDI_LOCK != 0 {
                    abi::SLOCK
                } else {
                    abi::SWAIT
                };
            }
        } else {
            kp.ki_stat = abi::SIDL;
        }
        kp.ki_pri.pri_level = self.opt(lay.td_priority, t) as u8;
        kp.ki_pri.pri_native = self.opt(lay.td_base_pri, t) as u8;
        kp.ki_pri.pri_class = self.opt(lay.td_pri_class, t) as u8;
        kp.ki_pri.pri_user = self.opt(lay.td_user_pri, t) as u8;
        let lastcpu = self.opt_signed(lay.td_lastcpu, t);
        let oncpu = self.opt_signed(lay.td_oncpu, t);
        kp.ki_lastcpu = lastcpu as i32;
        kp.ki_oncpu = oncpu as i32;
        kp.ki_wchan = self.opt(lay.td_wchan, t);
        if let Some(n) = lay.td_name {
            set_cstr(&mut kp.ki_tdname, cstr(n.slice(t)));
        }
        kp.ki_pctcpu = 0;
        kp.ki_rqindex = 0;
        let old = |c: i64, size: usize| -> u8 {
            // td_lastcpu/td_oncpu were u_char on old kernels: 255 there is NOCPU too.
            if c == abi::NOCPU as i64 || (size == 1 && c as u8 == abi::NOCPU_OLD) {
                abi::NOCPU_OLD
            } else if c > MAXCPU_OLD {
                MAXCPU_OLD as u8
            } else {
                c as u8
            }
        };
        kp.ki_lastcpu_old = old(lastcpu, lay.td_lastcpu.map(|f| f.size).unwrap_or(4));
        kp.ki_oncpu_old = old(oncpu, lay.td_oncpu.map(|f| f.size).unwrap_or(4));
        kp.ki_tid = lay.td_tid.get(t, be) as i32;
        kp.ki_tdaddr = addr;
        kp.ki_tdflags = self.opt(lay.td_flags, t) as i32 as i64;
    }
}
