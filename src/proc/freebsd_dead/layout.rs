//! Offsets of the FreeBSD kernel structures the process walker reads, found once by member
//! name in the kernel's type information (never hard-coded). Members that some FreeBSD
//! versions lack are optional; the rows then keep those fields zero.

use crate::btf::Btf;
use crate::error::{Error, Result};

/// A scalar member: byte offset and width (1, 2, 4 or 8; pointers take the kernel's word).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct F {
    pub off: usize,
    pub size: usize,
}

impl F {
    /// The member's value in a copy of its structure, zero-extended (0 if out of the copy).
    pub fn get(&self, buf: &[u8], be: bool) -> u64 {
        let Some(b) = self
            .off
            .checked_add(self.size)
            .and_then(|e| buf.get(self.off..e))
        else {
            return 0;
        };
        let mut v = 0u64;
        if be {
            for &x in b.iter().take(8) {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in b.iter().take(8).rev() {
                v = (v << 8) | x as u64;
            }
        }
        v
    }

    /// Same, sign-extended from the member's width.
    pub fn get_signed(&self, buf: &[u8], be: bool) -> i64 {
        let v = self.get(buf, be);
        match self.size {
            1 => v as u8 as i8 as i64,
            2 => v as u16 as i16 as i64,
            4 => v as u32 as i32 as i64,
            _ => v as i64,
        }
    }
}

/// A byte array member (p_comm, td_name, s_login, sigset_t): offset and length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    pub off: usize,
    pub len: usize,
}

impl Bytes {
    pub fn slice<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.off..self.off.saturating_add(self.len))
            .unwrap_or(&[])
    }
}

/// How `cr_groups` is stored: a pointer to the array (FreeBSD 9 and later) or inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    Pointer(F),
    Inline(Bytes),
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub word: usize,
    // struct proc
    pub proc_size: usize,
    pub p_next: F,
    pub p_threads_first: F,
    pub p_pid: F,
    pub p_pptr: F,
    pub p_oppid: Option<F>,
    pub p_pgrp: F,
    pub p_ucred: F,
    pub p_comm: Bytes,
    pub p_state: F,
    pub p_flag: F,
    pub p_nice: Option<F>,
    pub p_vmspace: Option<F>,
    pub p_stats: Option<F>,
    pub p_args: Option<F>,
    pub p_numthreads: Option<F>,
    pub p_textvp: Option<F>,
    pub p_fd: Option<F>,
    pub p_pd: Option<F>,
    pub p_sigacts: Option<F>,
    pub p_siglist: Option<Bytes>,
    pub p_xexit: Option<F>,
    pub p_xsig: Option<F>,
    pub p_acflag: Option<F>,
    pub p_lock: Option<F>,
    pub p_sysent: Option<F>,
    pub p_swtick: Option<F>,
    pub p_runtime: Option<F>,
    pub p_traceflag: Option<F>,
    // struct thread
    pub td_size: usize,
    pub td_next: F,
    pub td_tid: F,
    pub td_name: Option<Bytes>,
    pub td_wmesg: Option<F>,
    pub td_wchan: Option<F>,
    pub td_priority: Option<F>,
    pub td_base_pri: Option<F>,
    pub td_pri_class: Option<F>,
    pub td_user_pri: Option<F>,
    pub td_flags: Option<F>,
    pub td_state: F,
    pub td_inhibitors: F,
    pub td_lastcpu: Option<F>,
    pub td_oncpu: Option<F>,
    pub td_blocked: Option<F>,
    pub td_lockname: Option<F>,
    pub td_siglist: Option<Bytes>,
    pub td_sigmask: Option<Bytes>,
    // struct ucred
    pub cred_size: usize,
    pub cr_uid: F,
    pub cr_ruid: F,
    pub cr_svuid: F,
    pub cr_rgid: F,
    pub cr_svgid: F,
    pub cr_ngroups: F,
    pub cr_groups: Groups,
    /// The effective gid as a member of its own (newer kernels; older ones alias cr_groups[0]).
    pub cr_gid: Option<F>,
    pub cr_prison: Option<F>,
    pub cr_flags: Option<F>,
    pub pr_id: Option<F>,
    // struct prison and struct vnet, for the VNET selection of kvm_nlist (kvm_vnet.c); absent
    // members (a kernel without VIMAGE types) only turn that selection off.
    pub prison_size: Option<usize>,
    pub pr_vnet: Option<F>,
    pub vnet_size: Option<usize>,
    pub vnet_magic_n: Option<F>,
    pub vnet_data_base: Option<F>,
    // struct pgrp, session, tty, cdev
    pub pg_id: F,
    pub pg_session: F,
    pub sess_size: usize,
    pub s_sid: F,
    pub s_login: Option<Bytes>,
    pub s_ttyp: Option<F>,
    pub s_ttyvp: Option<F>,
    pub s_leader: Option<F>,
    pub t_dev: Option<F>,
    pub t_pgrp: Option<F>,
    pub t_session: Option<F>,
    /// struct cdev_priv: offset of the embedded struct cdev and of cdp_inode (dev2udev).
    pub cdp_c: Option<usize>,
    pub cdp_inode: Option<F>,
    /// struct cdev's si_udev (kernels before the cdev_priv inode).
    pub si_udev: Option<F>,
    // struct vmspace
    pub vm_size: Option<F>,
    pub vm_rss: Option<F>,
    pub vm_swrss: Option<F>,
    pub vm_tsize: Option<F>,
    pub vm_dsize: Option<F>,
    pub vm_ssize: Option<F>,
    // struct pstats: p_start (a struct timeval)
    pub p_start_sec: Option<F>,
    pub p_start_usec: Option<F>,
    // struct sigacts
    pub ps_sigignore: Option<Bytes>,
    pub ps_sigcatch: Option<Bytes>,
    // struct sysentvec
    pub sv_name: Option<F>,
}

/// Looks members up in one struct, sizing pointers with the kernel's word.
struct Finder<'a> {
    btf: &'a Btf,
    word: usize,
}

impl Finder<'_> {
    fn opt(&self, st: &str, path: &str) -> Option<F> {
        let m = self.btf.field(st, path).ok()?;
        if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
            return None;
        }
        let size = if self.btf.pointee(m.type_id).is_some() {
            self.word
        } else {
            self.btf.size_of(m.type_id)? as usize
        };
        if !matches!(size, 1 | 2 | 4 | 8) {
            return None;
        }
        Some(F {
            off: m.offset() as usize,
            size,
        })
    }

    fn req(&self, st: &str, path: &str) -> Result<F> {
        self.opt(st, path).ok_or_else(|| missing(st, path))
    }

    fn bytes(&self, st: &str, path: &str) -> Option<Bytes> {
        let m = self.btf.field(st, path).ok()?;
        if m.bitfield_size != 0 || m.bit_offset % 8 != 0 {
            return None;
        }
        Some(Bytes {
            off: m.offset() as usize,
            len: self.btf.size_of(m.type_id)? as usize,
        })
    }

    /// The first of several spellings a member has had.
    fn any(&self, st: &str, paths: &[&str]) -> Option<F> {
        paths.iter().find_map(|p| self.opt(st, p))
    }

    fn size(&self, st: &str) -> Result<usize> {
        let s = self.btf.struct_size(st)? as usize;
        if s == 0 || s > 1 << 20 {
            return Err(Error::format(format!(
                "kernel types: struct {} has an implausible size {}",
                st, s
            )));
        }
        Ok(s)
    }
}

fn missing(st: &str, path: &str) -> Error {
    Error::format(format!(
        "kernel types: struct {} has no member {} (not a FreeBSD kernel this library knows)",
        st, path
    ))
}

impl Layout {
    /// Resolves every offset; `word` is the kernel's pointer size.
    pub fn from_btf(btf: &Btf, word: usize) -> Result<Layout> {
        let f = Finder { btf, word };
        let groups = match btf.field("ucred", "cr_groups") {
            Ok(m) if btf.array(m.type_id).is_some() => Groups::Inline(
                f.bytes("ucred", "cr_groups")
                    .ok_or_else(|| missing("ucred", "cr_groups"))?,
            ),
            Ok(_) => Groups::Pointer(f.req("ucred", "cr_groups")?),
            Err(_) => return Err(missing("ucred", "cr_groups")),
        };
        let cdp_c = btf
            .field("cdev_priv", "cdp_c")
            .ok()
            .map(|m| m.offset() as usize);
        Ok(Layout {
            word,
            proc_size: f.size("proc")?,
            p_next: f.req("proc", "p_list.le_next")?,
            p_threads_first: f.req("proc", "p_threads.tqh_first")?,
            p_pid: f.req("proc", "p_pid")?,
            p_pptr: f.req("proc", "p_pptr")?,
            p_oppid: f.opt("proc", "p_oppid"),
            p_pgrp: f.req("proc", "p_pgrp")?,
            p_ucred: f.req("proc", "p_ucred")?,
            p_comm: f
                .bytes("proc", "p_comm")
                .ok_or_else(|| missing("proc", "p_comm"))?,
            p_state: f.req("proc", "p_state")?,
            p_flag: f.req("proc", "p_flag")?,
            p_nice: f.opt("proc", "p_nice"),
            p_vmspace: f.opt("proc", "p_vmspace"),
            p_stats: f.opt("proc", "p_stats"),
            p_args: f.opt("proc", "p_args"),
            p_numthreads: f.opt("proc", "p_numthreads"),
            p_textvp: f.opt("proc", "p_textvp"),
            p_fd: f.opt("proc", "p_fd"),
            p_pd: f.opt("proc", "p_pd"),
            p_sigacts: f.opt("proc", "p_sigacts"),
            p_siglist: f.bytes("proc", "p_siglist"),
            p_xexit: f.any("proc", &["p_xexit", "p_xstat"]),
            p_xsig: f.opt("proc", "p_xsig"),
            p_acflag: f.opt("proc", "p_acflag"),
            p_lock: f.opt("proc", "p_lock"),
            p_sysent: f.opt("proc", "p_sysent"),
            p_swtick: f.opt("proc", "p_swtick"),
            p_runtime: f.opt("proc", "p_rux.rux_runtime"),
            p_traceflag: f.opt("proc", "p_traceflag"),
            td_size: f.size("thread")?,
            td_next: f.req("thread", "td_plist.tqe_next")?,
            td_tid: f.req("thread", "td_tid")?,
            td_name: f.bytes("thread", "td_name"),
            td_wmesg: f.opt("thread", "td_wmesg"),
            td_wchan: f.opt("thread", "td_wchan"),
            td_priority: f.opt("thread", "td_priority"),
            td_base_pri: f.opt("thread", "td_base_pri"),
            td_pri_class: f.opt("thread", "td_pri_class"),
            td_user_pri: f.opt("thread", "td_user_pri"),
            td_flags: f.opt("thread", "td_flags"),
            td_state: f.req("thread", "td_state")?,
            td_inhibitors: f.req("thread", "td_inhibitors")?,
            td_lastcpu: f.opt("thread", "td_lastcpu"),
            td_oncpu: f.opt("thread", "td_oncpu"),
            td_blocked: f.opt("thread", "td_blocked"),
            td_lockname: f.opt("thread", "td_lockname"),
            td_siglist: f.bytes("thread", "td_siglist"),
            td_sigmask: f.bytes("thread", "td_sigmask"),
            cred_size: f.size("ucred")?,
            cr_uid: f.req("ucred", "cr_uid")?,
            cr_ruid: f.req("ucred", "cr_ruid")?,
            cr_svuid: f.req("ucred", "cr_svuid")?,
            cr_rgid: f.req("ucred", "cr_rgid")?,
            cr_svgid: f.req("ucred", "cr_svgid")?,
            cr_ngroups: f.req("ucred", "cr_ngroups")?,
            cr_groups: groups,
            cr_gid: f.opt("ucred", "cr_gid"),
            cr_prison: f.opt("ucred", "cr_prison"),
            cr_flags: f.opt("ucred", "cr_flags"),
            pr_id: f.opt("prison", "pr_id"),
            prison_size: f.size("prison").ok(),
            pr_vnet: f.opt("prison", "pr_vnet"),
            vnet_size: f.size("vnet").ok(),
            vnet_magic_n: f.opt("vnet", "vnet_magic_n"),
            vnet_data_base: f.opt("vnet", "vnet_data_base"),
            pg_id: f.req("pgrp", "pg_id")?,
            pg_session: f.req("pgrp", "pg_session")?,
            sess_size: f.size("session")?,
            s_sid: f.req("session", "s_sid")?,
            s_login: f.bytes("session", "s_login"),
            s_ttyp: f.opt("session", "s_ttyp"),
            s_ttyvp: f.opt("session", "s_ttyvp"),
            s_leader: f.opt("session", "s_leader"),
            t_dev: f.opt("tty", "t_dev"),
            t_pgrp: f.opt("tty", "t_pgrp"),
            t_session: f.opt("tty", "t_session"),
            cdp_c,
            cdp_inode: f.opt("cdev_priv", "cdp_inode"),
            si_udev: f.opt("cdev", "si_udev"),
            vm_size: f.opt("vmspace", "vm_map.size"),
            vm_rss: f.opt("vmspace", "vm_pmap.pm_stats.resident_count"),
            vm_swrss: f.opt("vmspace", "vm_swrss"),
            vm_tsize: f.opt("vmspace", "vm_tsize"),
            vm_dsize: f.opt("vmspace", "vm_dsize"),
            vm_ssize: f.opt("vmspace", "vm_ssize"),
            p_start_sec: f.opt("pstats", "p_start.tv_sec"),
            p_start_usec: f.opt("pstats", "p_start.tv_usec"),
            ps_sigignore: f.bytes("sigacts", "ps_sigignore"),
            ps_sigcatch: f.bytes("sigacts", "ps_sigcatch"),
            sv_name: f.opt("sysentvec", "sv_name"),
        })
    }

    /// Bytes of `struct tty` / `struct vmspace` / ... to read: up to the last member used.
    pub fn span(fields: &[Option<F>]) -> usize {
        fields
            .iter()
            .flatten()
            .map(|f| f.off + f.size)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_the_kernel_byte_order_and_width() {
        let b = [0x01, 0x02, 0x03, 0x84, 0xff];
        let f = F { off: 1, size: 2 };
        assert_eq!(f.get(&b, false), 0x0302);
        assert_eq!(f.get(&b, true), 0x0203);
        let s = F { off: 3, size: 1 };
        assert_eq!(s.get_signed(&b, false), -124);
        let w = F { off: 1, size: 4 };
        assert_eq!(w.get_signed(&b, false), 0xff84_0302u32 as i32 as i64);
        // Out of the copy: zero, never a panic.
        assert_eq!(F { off: 4, size: 4 }.get(&b, false), 0);
        assert_eq!(
            F {
                off: usize::MAX,
                size: 8
            }
            .get(&b, false),
            0
        );
        assert_eq!(Bytes { off: 3, len: 9 }.slice(&b), &[] as &[u8]);
    }
}
