//! FreeBSD amd64 ABI types shared with C callers (`struct kinfo_proc`, `struct kvm_nlist`, ...).
//!
//! Layouts are byte-identical to FreeBSD amd64 (checked against ../shared/abi by
//! `tests/abi_layout.rs` and the C test in ctests/). The C headers in include/ describe the same
//! layouts; both are tested against the same golden table, so they cannot drift apart.

#![allow(non_camel_case_types)]

use core::mem::{offset_of, size_of};

/// FreeBSD `struct timeval` on amd64.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Timeval {
    pub tv_sec: i64,
    pub tv_usec: i64,
}

/// FreeBSD `struct rusage` on amd64 (same layout as glibc's on x86_64).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Rusage {
    pub ru_utime: Timeval,
    pub ru_stime: Timeval,
    pub ru_maxrss: i64,
    pub ru_ixrss: i64,
    pub ru_idrss: i64,
    pub ru_isrss: i64,
    pub ru_minflt: i64,
    pub ru_majflt: i64,
    pub ru_nswap: i64,
    pub ru_inblock: i64,
    pub ru_oublock: i64,
    pub ru_msgsnd: i64,
    pub ru_msgrcv: i64,
    pub ru_nsignals: i64,
    pub ru_nvcsw: i64,
    pub ru_nivcsw: i64,
}

/// FreeBSD `struct priority`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Priority {
    pub pri_class: u8,
    pub pri_level: u8,
    pub pri_native: u8,
    pub pri_user: u8,
}

/// FreeBSD `sigset_t` (`struct __sigset`): 128 signal bits.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Sigset {
    pub bits: [u32; 4],
}

impl Sigset {
    /// Builds a set from a Linux 64-bit mask (bit n-1 = signal n), keeping Linux numbering.
    pub fn from_linux_mask(mask: u64) -> Self {
        Sigset {
            bits: [mask as u32, (mask >> 32) as u32, 0, 0],
        }
    }
}

pub const WMESGLEN: usize = 8;
pub const LOCKNAMELEN: usize = 8;
pub const TDNAMLEN: usize = 16;
pub const COMMLEN: usize = 19;
pub const KI_EMULNAMELEN: usize = 16;
pub const KI_NGROUPS: usize = 16;
pub const LOGNAMELEN: usize = 17;
pub const LOGINCLASSLEN: usize = 17;
pub const KI_NSPARE_INT: usize = 2;
pub const KI_NSPARE_LONG: usize = 12;
pub const KI_NSPARE_PTR: usize = 5;
pub const KINFO_PROC_SIZE: usize = 1088;

/// FreeBSD `struct kinfo_proc` (amd64, revision "140": FreeBSD 13.x/14.x; total 1088 bytes).
/// Pointer members are kept as `u64` so the type stays `Send` and plain data; they are
/// addresses in the examined kernel, not pointers into this process (except `ki_udata`,
/// which belongs to the caller).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct KinfoProc {
    pub ki_structsize: i32,
    pub ki_layout: i32,
    pub ki_args: u64,
    pub ki_paddr: u64,
    pub ki_addr: u64,
    pub ki_tracep: u64,
    pub ki_textvp: u64,
    pub ki_fd: u64,
    pub ki_vmspace: u64,
    pub ki_wchan: u64,
    pub ki_pid: i32,
    pub ki_ppid: i32,
    pub ki_pgid: i32,
    pub ki_tpgid: i32,
    pub ki_sid: i32,
    pub ki_tsid: i32,
    pub ki_jobc: i16,
    pub ki_spare_short1: i16,
    pub ki_tdev_freebsd11: u32,
    pub ki_siglist: Sigset,
    pub ki_sigmask: Sigset,
    pub ki_sigignore: Sigset,
    pub ki_sigcatch: Sigset,
    pub ki_uid: u32,
    pub ki_ruid: u32,
    pub ki_svuid: u32,
    pub ki_rgid: u32,
    pub ki_svgid: u32,
    pub ki_ngroups: i16,
    pub ki_spare_short2: i16,
    pub ki_groups: [u32; KI_NGROUPS],
    pub ki_size: u64,
    pub ki_rssize: i64,
    pub ki_swrss: i64,
    pub ki_tsize: i64,
    pub ki_dsize: i64,
    pub ki_ssize: i64,
    pub ki_xstat: u16,
    pub ki_acflag: u16,
    pub ki_pctcpu: u32,
    pub ki_estcpu: u32,
    pub ki_slptime: u32,
    pub ki_swtime: u32,
    pub ki_cow: u32,
    pub ki_runtime: u64,
    pub ki_start: Timeval,
    pub ki_childtime: Timeval,
    pub ki_flag: i64,
    pub ki_kiflag: i64,
    pub ki_traceflag: i32,
    pub ki_stat: u8,
    pub ki_nice: i8,
    pub ki_lock: u8,
    pub ki_rqindex: u8,
    pub ki_oncpu_old: u8,
    pub ki_lastcpu_old: u8,
    pub ki_tdname: [u8; TDNAMLEN + 1],
    pub ki_wmesg: [u8; WMESGLEN + 1],
    pub ki_login: [u8; LOGNAMELEN + 1],
    pub ki_lockname: [u8; LOCKNAMELEN + 1],
    pub ki_comm: [u8; COMMLEN + 1],
    pub ki_emul: [u8; KI_EMULNAMELEN + 1],
    pub ki_loginclass: [u8; LOGINCLASSLEN + 1],
    pub ki_moretdname: [u8; 4],
    pub ki_sparestrings: [u8; 46],
    pub ki_spareints: [i32; KI_NSPARE_INT],
    pub ki_tdev: u64,
    pub ki_oncpu: i32,
    pub ki_lastcpu: i32,
    pub ki_tracer: i32,
    pub ki_flag2: i32,
    pub ki_fibnum: i32,
    pub ki_cr_flags: u32,
    pub ki_jid: i32,
    pub ki_numthreads: i32,
    pub ki_tid: i32,
    pub ki_pri: Priority,
    pub ki_rusage: Rusage,
    pub ki_rusage_ch: Rusage,
    pub ki_pcb: u64,
    pub ki_kstack: u64,
    pub ki_udata: u64,
    pub ki_tdaddr: u64,
    pub ki_pd: u64,
    pub ki_spareptrs: [u64; KI_NSPARE_PTR],
    pub ki_sparelongs: [i64; KI_NSPARE_LONG],
    pub ki_sflag: i64,
    pub ki_tdflags: i64,
}

impl KinfoProc {
    /// An all-zero record with `ki_structsize` set, as FreeBSD's filler starts.
    pub fn zeroed() -> Self {
        // SAFETY-free construction: every field is an integer or array of integers.
        let mut kp = KinfoProc {
            ki_structsize: 0,
            ki_layout: 0,
            ki_args: 0,
            ki_paddr: 0,
            ki_addr: 0,
            ki_tracep: 0,
            ki_textvp: 0,
            ki_fd: 0,
            ki_vmspace: 0,
            ki_wchan: 0,
            ki_pid: 0,
            ki_ppid: 0,
            ki_pgid: 0,
            ki_tpgid: 0,
            ki_sid: 0,
            ki_tsid: 0,
            ki_jobc: 0,
            ki_spare_short1: 0,
            ki_tdev_freebsd11: 0,
            ki_siglist: Sigset::default(),
            ki_sigmask: Sigset::default(),
            ki_sigignore: Sigset::default(),
            ki_sigcatch: Sigset::default(),
            ki_uid: 0,
            ki_ruid: 0,
            ki_svuid: 0,
            ki_rgid: 0,
            ki_svgid: 0,
            ki_ngroups: 0,
            ki_spare_short2: 0,
            ki_groups: [0; KI_NGROUPS],
            ki_size: 0,
            ki_rssize: 0,
            ki_swrss: 0,
            ki_tsize: 0,
            ki_dsize: 0,
            ki_ssize: 0,
            ki_xstat: 0,
            ki_acflag: 0,
            ki_pctcpu: 0,
            ki_estcpu: 0,
            ki_slptime: 0,
            ki_swtime: 0,
            ki_cow: 0,
            ki_runtime: 0,
            ki_start: Timeval::default(),
            ki_childtime: Timeval::default(),
            ki_flag: 0,
            ki_kiflag: 0,
            ki_traceflag: 0,
            ki_stat: 0,
            ki_nice: 0,
            ki_lock: 0,
            ki_rqindex: 0,
            ki_oncpu_old: 0,
            ki_lastcpu_old: 0,
            ki_tdname: [0; TDNAMLEN + 1],
            ki_wmesg: [0; WMESGLEN + 1],
            ki_login: [0; LOGNAMELEN + 1],
            ki_lockname: [0; LOCKNAMELEN + 1],
            ki_comm: [0; COMMLEN + 1],
            ki_emul: [0; KI_EMULNAMELEN + 1],
            ki_loginclass: [0; LOGINCLASSLEN + 1],
            ki_moretdname: [0; 4],
            ki_sparestrings: [0; 46],
            ki_spareints: [0; KI_NSPARE_INT],
            ki_tdev: 0,
            ki_oncpu: 0,
            ki_lastcpu: 0,
            ki_tracer: 0,
            ki_flag2: 0,
            ki_fibnum: 0,
            ki_cr_flags: 0,
            ki_jid: 0,
            ki_numthreads: 0,
            ki_tid: 0,
            ki_pri: Priority::default(),
            ki_rusage: Rusage::default(),
            ki_rusage_ch: Rusage::default(),
            ki_pcb: 0,
            ki_kstack: 0,
            ki_udata: 0,
            ki_tdaddr: 0,
            ki_pd: 0,
            ki_spareptrs: [0; KI_NSPARE_PTR],
            ki_sparelongs: [0; KI_NSPARE_LONG],
            ki_sflag: 0,
            ki_tdflags: 0,
        };
        kp.ki_structsize = KINFO_PROC_SIZE as i32;
        kp
    }
}

impl Default for KinfoProc {
    fn default() -> Self {
        Self::zeroed()
    }
}

/// Copies `src` into a fixed C string field, truncating and always NUL-terminating.
pub fn set_cstr(dst: &mut [u8], src: &[u8]) {
    let n = src.len().min(dst.len().saturating_sub(1));
    dst[..n].copy_from_slice(&src[..n]);
    for b in &mut dst[n..] {
        *b = 0;
    }
}

/// FreeBSD `struct kvm_swap`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KvmSwap {
    pub ksw_devname: [u8; 32],
    pub ksw_used: u32,
    pub ksw_total: u32,
    pub ksw_flags: i32,
    pub ksw_reserved1: u32,
    pub ksw_reserved2: u32,
}

/// FreeBSD `struct kvm_page` (LIBKVM_WALK_PAGES_VERSION 2).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct KvmPage {
    pub kp_version: u32,
    pub kp_paddr: u64,
    pub kp_kmap_vaddr: u64,
    pub kp_dmap_vaddr: u64,
    pub kp_prot: u8,
    pub kp_offset: i64,
    pub kp_len: u64,
}

pub const LIBKVM_WALK_PAGES_VERSION: u32 = 2;
pub const VM_PROT_NONE: u8 = 0;
pub const VM_PROT_READ: u8 = 1;
pub const VM_PROT_WRITE: u8 = 2;
pub const VM_PROT_EXECUTE: u8 = 4;

// kvm_getprocs ops (FreeBSD <sys/sysctl.h>).
pub const KERN_PROC_ALL: i32 = 0;
pub const KERN_PROC_PID: i32 = 1;
pub const KERN_PROC_PGRP: i32 = 2;
pub const KERN_PROC_SESSION: i32 = 3;
pub const KERN_PROC_TTY: i32 = 4;
pub const KERN_PROC_UID: i32 = 5;
pub const KERN_PROC_RUID: i32 = 6;
pub const KERN_PROC_PROC: i32 = 8;
pub const KERN_PROC_RGID: i32 = 10;
pub const KERN_PROC_GID: i32 = 11;
pub const KERN_PROC_INC_THREAD: i32 = 0x10;

// ki_stat values.
pub const SIDL: u8 = 1;
pub const SRUN: u8 = 2;
pub const SSLEEP: u8 = 3;
pub const SSTOP: u8 = 4;
pub const SZOMB: u8 = 5;
pub const SWAIT: u8 = 6;
pub const SLOCK: u8 = 7;

// ki_flag (P_*) bits used by the Linux backends.
pub const P_CONTROLT: i64 = 0x00002;
pub const P_KPROC: i64 = 0x00004;
pub const P_PPWAIT: i64 = 0x00010;
pub const P_HADTHREADS: i64 = 0x00080;
pub const P_SUGID: i64 = 0x00100;
pub const P_SYSTEM: i64 = 0x00200;
pub const P_TRACED: i64 = 0x00800;
pub const P_WEXIT: i64 = 0x02000;
pub const P_EXEC: i64 = 0x04000;
pub const P_STOPPED_SIG: i64 = 0x20000;
pub const P_INMEM: i64 = 0x10000000;

// ki_tdflags (TDF_*) bits used by the Linux backends (FreeBSD <sys/proc.h>).
pub const TDF_SINTR: i64 = 0x8;

// ki_kiflag bits.
pub const KI_CTTY: i64 = 0x00000001;
pub const KI_SLEADER: i64 = 0x00000002;
pub const KI_LOCKBLOCK: i64 = 0x00000004;
pub const KI_CRF_GRP_OVERFLOW: u32 = 0x80000000;

// Priority classes (FreeBSD <sys/priority.h>).
pub const PRI_ITHD: u8 = 1;
pub const PRI_REALTIME: u8 = 2;
pub const PRI_TIMESHARE: u8 = 3;
pub const PRI_IDLE: u8 = 4;

pub const NODEV: u64 = u64::MAX;
pub const NOCPU: i32 = -1;
pub const NOCPU_OLD: u8 = 255;
pub const FSHIFT: u32 = 11;
pub const FSCALE: u32 = 1 << FSHIFT;
pub const CPUSTATES: usize = 5;
pub const SWIF_DEV_PREFIX: i32 = 0x0002;
/// FreeBSD ARG_MAX: the default budget of kvm_getargv/kvm_getenvv.
pub const FREEBSD_ARG_MAX: usize = 2 * 256 * 1024;
pub const POSIX2_LINE_MAX: usize = 2048;

// a.out symbol types reported by kvm_nlist (FreeBSD <sys/nlist_aout.h>).
pub const N_UNDF: u8 = 0x00;
pub const N_ABS: u8 = 0x02;
pub const N_TEXT: u8 = 0x04;
pub const N_DATA: u8 = 0x06;
pub const N_BSS: u8 = 0x08;
pub const N_INDR: u8 = 0x0a;
pub const N_COMM: u8 = 0x12;
pub const N_FN: u8 = 0x1e;
pub const N_EXT: u8 = 0x01;

const _: () = assert!(size_of::<KinfoProc>() == KINFO_PROC_SIZE);
const _: () = assert!(offset_of!(KinfoProc, ki_pid) == 72);
const _: () = assert!(offset_of!(KinfoProc, ki_comm) == 447);
const _: () = assert!(offset_of!(KinfoProc, ki_tdev) == 560);
const _: () = assert!(offset_of!(KinfoProc, ki_udata) == 912);
const _: () = assert!(size_of::<KvmSwap>() == 52);
const _: () = assert!(size_of::<KvmPage>() == 56);
const _: () = assert!(size_of::<Rusage>() == 144);
