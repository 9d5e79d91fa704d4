//! kvm_getprocs on FreeBSD crash dumps: a kernel ELF carrying its types (.BTF written from the
//! type model; or CTF, as real FreeBSD kernels carry it) and symbols, and dumps (amd64 minidump v3, amd64 full ELF dump, i386 minidumps
//! with and without PAE, arm64 minidumps with 4 KiB and 16 KiB pages)
//! whose memory holds a process list laid out by those types. Every op is checked against
//! kinfo_proc rows written out by hand from the model below.

#[path = "fbsd/writer.rs"]
mod writer;

#[path = "common/typemodel.rs"]
mod typemodel;

#[path = "common/btfwriter.rs"]
mod btfwriter;

#[path = "common/elfwriter.rs"]
mod elfwriter;

#[path = "common/ctfwriter.rs"]
mod ctfwriter;

use std::path::{Path, PathBuf};

use kvm::abi::{self, KinfoProc};
use kvm::{ArgvKind, Kvm, OpenArgs};
use typemodel::{Member, Ty};
use writer::*;

const KERNBASE: u64 = 0xffff_ffff_8000_0000;
const DMAPBASE: u64 = 0xffff_f800_0000_0000;
const GIB: u64 = 1 << 30;
const MIB2: u64 = 1 << 21;

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kvm-fbsdprocs-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, n: &str) -> PathBuf {
        self.0.join(n)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Structure layouts of the model kernel (offsets of our choosing; pointers take the word size).

const PROC_SIZE: u32 = 0x180;
const P_LIST: u32 = 0x10;
const P_THREADS: u32 = 0x20;
const P_UCRED: u32 = 0x40;
const P_PID: u32 = 0x50;
const P_PPTR: u32 = 0x58;
const P_OPPID: u32 = 0x60;
const P_PGRP: u32 = 0x68;
const P_COMM: u32 = 0x80;
const P_STATE: u32 = 0xa0;
const P_FLAG: u32 = 0xa4;
const P_NICE: u32 = 0xa8;
const P_LOCK: u32 = 0xac;
const P_VMSPACE: u32 = 0xb0;
const P_STATS: u32 = 0xb8;
const P_ARGS: u32 = 0xc0;
const P_NUMTHREADS: u32 = 0xc8;
const P_TEXTVP: u32 = 0xd0;
const P_FD: u32 = 0xd8;
const P_SIGACTS: u32 = 0xe0;
const P_SIGLIST: u32 = 0xe8;
const P_XEXIT: u32 = 0xf8;
const P_XSIG: u32 = 0xfa;
const P_ACFLAG: u32 = 0xfc;
const P_SYSENT: u32 = 0x100;
const P_SWTICK: u32 = 0x108;
const P_RUX: u32 = 0x110;
const P_TRACEFLAG: u32 = 0x120;
const P_PD: u32 = 0x128;

const TD_SIZE: u32 = 0x100;
const TD_PLIST: u32 = 0x10;
const TD_TID: u32 = 0x30;
const TD_NAME: u32 = 0x40;
const TD_WMESG: u32 = 0x58;
const TD_WCHAN: u32 = 0x60;
const TD_PRIORITY: u32 = 0x68;
const TD_BASE_PRI: u32 = 0x69;
const TD_PRI_CLASS: u32 = 0x6a;
const TD_USER_PRI: u32 = 0x6b;
const TD_FLAGS: u32 = 0x6c;
const TD_STATE: u32 = 0x70;
const TD_INHIBITORS: u32 = 0x74;
const TD_LASTCPU: u32 = 0x78;
const TD_ONCPU: u32 = 0x7c;
const TD_BLOCKED: u32 = 0x80;
const TD_LOCKNAME: u32 = 0x88;
const TD_SIGLIST: u32 = 0x90;
const TD_SIGMASK: u32 = 0xa0;

const CRED_SIZE: u32 = 0x40;
const CR_UID: u32 = 0x4;
const CR_RUID: u32 = 0x8;
const CR_SVUID: u32 = 0xc;
const CR_NGROUPS: u32 = 0x10;
const CR_RGID: u32 = 0x14;
const CR_SVGID: u32 = 0x18;
const CR_PRISON: u32 = 0x20;
const CR_FLAGS: u32 = 0x28;
const CR_GROUPS: u32 = 0x30;

const PRISON_SIZE: u32 = 0x20;
const PR_ID: u32 = 0x8;
const PR_VNET: u32 = 0x10;
const VNET_SIZE: u32 = 0x30;
const VNET_MAGIC: u32 = 0x10;
const VNET_DATA_MEM: u32 = 0x20;
const VNET_DATA_BASE: u32 = 0x28;
const VNET_MAGIC_N: u64 = 0x3e0d_8f29;
const PGRP_SIZE: u32 = 0x30;
const PG_SESSION: u32 = 0x10;
const PG_ID: u32 = 0x20;
const SESS_SIZE: u32 = 0x60;
const S_LEADER: u32 = 0x8;
const S_TTYVP: u32 = 0x10;
const S_TTYP: u32 = 0x18;
const S_SID: u32 = 0x20;
const S_LOGIN: u32 = 0x24;
const TTY_SIZE: u32 = 0x40;
const T_PGRP: u32 = 0x10;
const T_SESSION: u32 = 0x18;
const T_DEV: u32 = 0x20;
const CDEV_SIZE: u32 = 0x100;
const CDP_SIZE: u32 = 0x120;
const CDP_INODE: u32 = 0x108;
const VM_SIZE: u32 = 0xa0;
const VM_MAP_SIZE: u32 = 0x8;
const VM_SWRSS: u32 = 0x40;
const VM_TSIZE: u32 = 0x48;
const VM_DSIZE: u32 = 0x50;
const VM_SSIZE: u32 = 0x58;
const VM_PMAP: u32 = 0x80;
const PM_STATS: u32 = 0x8;
const PSTATS_SIZE: u32 = 0x30;
const P_START: u32 = 0x10;
const SIGACTS_SIZE: u32 = 0x40;
const PS_SIGIGNORE: u32 = 0x10;
const PS_SIGCATCH: u32 = 0x20;
const SYSENT_SIZE: u32 = 0x30;
const SV_NAME: u32 = 0x8;
const TH_SIZE: u32 = 0x80;
const TH_BOOTTIME: u32 = 0x40;

// FreeBSD values.
const PRS_NEW: u64 = 0;
const PRS_NORMAL: u64 = 1;
const PRS_ZOMBIE: u64 = 2;
const TDS_INHIBITED: u64 = 1;
const TDS_RUNQ: u64 = 3;
const TDS_RUNNING: u64 = 4;
const TDI_SUSPENDED: u64 = 1;
const TDI_SLEEPING: u64 = 2;
const TDI_LOCK: u64 = 8;
const TDI_IWAIT: u64 = 0x10;
const P_KPROC: u64 = 0x4;
const P_CONTROLT: u64 = 0x2;
const P_SYSTEM: u64 = 0x200;
const P_WEXIT: u64 = 0x2000;
const P_INMEM: u64 = 0x1000_0000;
const P_STOPPED_SIG: u64 = 0x20000;

/// Builds the type list: ids are list index + 1.
struct Tb {
    v: Vec<Ty>,
}

impl Tb {
    fn add(&mut self, t: Ty) -> u32 {
        self.v.push(t);
        self.v.len() as u32
    }
    fn int(&mut self, name: &str, bits: u32, signed: bool) -> u32 {
        self.add(Ty::Int {
            name: name.into(),
            bits,
            signed,
        })
    }
    /// A struct whose members are (name, type, byte offset).
    fn st(&mut self, name: &str, size: u32, ms: &[(&str, u32, u32)]) -> u32 {
        self.add(Ty::Struct {
            name: name.into(),
            size,
            members: ms.iter().map(|&(n, t, o)| Member::at(n, t, o)).collect(),
        })
    }
    /// Reserves an id to define later (a struct referring to itself through pointers).
    fn reserve(&mut self) -> u32 {
        self.add(Ty::Fwd {
            name: String::new(),
            union: false,
        })
    }
    fn define(&mut self, id: u32, name: &str, size: u32, ms: &[(&str, u32, u32)]) {
        self.v[id as usize - 1] = Ty::Struct {
            name: name.into(),
            size,
            members: ms.iter().map(|&(n, t, o)| Member::at(n, t, o)).collect(),
        };
    }
    fn ptr(&mut self, to: u32) -> u32 {
        self.add(Ty::Ptr { to })
    }
    fn arr(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.add(Ty::Array { elem, index, n })
    }
}

/// The FreeBSD-like types of a kernel with `word`-byte pointers and longs.
fn freebsd_types(word: u32) -> Vec<Ty> {
    let mut b = Tb { v: Vec::new() };
    let w = word;
    let int = b.int("int", 32, true);
    let uint = b.int("u_int", 32, false);
    let chr = b.int("char", 8, true);
    let uchr = b.int("u_char", 8, false);
    let ushort = b.int("u_short", 16, false);
    let long = b.int("long", w * 8, true);
    let ulong = b.int("u_long", w * 8, false);
    let u64t = b.int("uint64_t", 64, false);
    let time_t = b.int("time_t", w * 8, true);
    let pid_t = b.add(Ty::Typedef {
        name: "pid_t".into(),
        to: int,
    });
    let uid_t = b.add(Ty::Typedef {
        name: "uid_t".into(),
        to: uint,
    });
    let gid_t = b.add(Ty::Typedef {
        name: "gid_t".into(),
        to: uint,
    });
    let voidp = b.ptr(0);
    let cchar = b.add(Ty::Const { to: chr });
    let ccharp = b.ptr(cchar);
    let charp = b.ptr(chr);
    let bits4 = b.arr(uint, int, 4);
    let sigset_s = b.st("__sigset", 16, &[("__bits", bits4, 0)]);
    let sigset = b.add(Ty::Typedef {
        name: "sigset_t".into(),
        to: sigset_s,
    });
    let p_states = b.add(Ty::Enum {
        name: "p_states".into(),
        size: 4,
        values: vec![
            ("PRS_NEW".into(), 0),
            ("PRS_NORMAL".into(), 1),
            ("PRS_ZOMBIE".into(), 2),
        ],
    });
    let td_states = b.add(Ty::Enum {
        name: "td_states".into(),
        size: 4,
        values: vec![
            ("TDS_INACTIVE".into(), 0),
            ("TDS_INHIBITED".into(), 1),
            ("TDS_CAN_RUN".into(), 2),
            ("TDS_RUNQ".into(), 3),
            ("TDS_RUNNING".into(), 4),
        ],
    });
    let proc_ = b.reserve();
    let thread = b.reserve();
    let procp = b.ptr(proc_);
    let procpp = b.ptr(procp);
    let threadp = b.ptr(thread);
    let threadpp = b.ptr(threadp);
    let p_list = b.st("", 2 * w, &[("le_next", procp, 0), ("le_prev", procpp, w)]);
    let p_threads = b.st(
        "",
        2 * w,
        &[("tqh_first", threadp, 0), ("tqh_last", threadpp, w)],
    );
    let td_plist = b.st(
        "",
        2 * w,
        &[("tqe_next", threadp, 0), ("tqe_prev", threadpp, w)],
    );
    let comm = b.arr(chr, int, 20);
    let login = b.arr(chr, int, 33);
    let vnet_ = b.reserve();
    let vnetp = b.ptr(vnet_);
    let vnetpp = b.ptr(vnetp);
    let vnet_le = b.st("", 2 * w, &[("le_next", vnetp, 0), ("le_prev", vnetpp, w)]);
    b.define(
        vnet_,
        "vnet",
        VNET_SIZE,
        &[
            ("vnet_le", vnet_le, 0),
            ("vnet_magic_n", uint, VNET_MAGIC),
            ("vnet_ifcnt", uint, VNET_MAGIC + 4),
            ("vnet_sockcnt", uint, VNET_MAGIC + 8),
            ("vnet_data_mem", voidp, VNET_DATA_MEM),
            ("vnet_data_base", ulong, VNET_DATA_BASE),
        ],
    );
    let prison = b.st(
        "prison",
        PRISON_SIZE,
        &[("pr_id", int, PR_ID), ("pr_vnet", vnetp, PR_VNET)],
    );
    let prisonp = b.ptr(prison);
    let gidp = b.ptr(gid_t);
    let ucred = b.st(
        "ucred",
        CRED_SIZE,
        &[
            ("cr_uid", uid_t, CR_UID),
            ("cr_ruid", uid_t, CR_RUID),
            ("cr_svuid", uid_t, CR_SVUID),
            ("cr_ngroups", int, CR_NGROUPS),
            ("cr_rgid", gid_t, CR_RGID),
            ("cr_svgid", gid_t, CR_SVGID),
            ("cr_prison", prisonp, CR_PRISON),
            ("cr_flags", uint, CR_FLAGS),
            ("cr_groups", gidp, CR_GROUPS),
        ],
    );
    let ucredp = b.ptr(ucred);
    let cdev = b.st("cdev", CDEV_SIZE, &[("si_flags", uint, 0)]);
    let cdevp = b.ptr(cdev);
    b.st(
        "cdev_priv",
        CDP_SIZE,
        &[("cdp_c", cdev, 0), ("cdp_inode", u64t, CDP_INODE)],
    );
    let session = b.reserve();
    let sessionp = b.ptr(session);
    let pgrp = b.st(
        "pgrp",
        PGRP_SIZE,
        &[
            ("pg_session", sessionp, PG_SESSION),
            ("pg_id", pid_t, PG_ID),
        ],
    );
    let pgrpp = b.ptr(pgrp);
    let tty = b.st(
        "tty",
        TTY_SIZE,
        &[
            ("t_pgrp", pgrpp, T_PGRP),
            ("t_session", sessionp, T_SESSION),
            ("t_dev", cdevp, T_DEV),
        ],
    );
    let ttyp = b.ptr(tty);
    b.define(
        session,
        "session",
        SESS_SIZE,
        &[
            ("s_leader", procp, S_LEADER),
            ("s_ttyvp", voidp, S_TTYVP),
            ("s_ttyp", ttyp, S_TTYP),
            ("s_sid", pid_t, S_SID),
            ("s_login", login, S_LOGIN),
        ],
    );
    let vm_map = b.st("vm_map", 0x40, &[("size", ulong, VM_MAP_SIZE)]);
    let pm_stats = b.st(
        "pmap_statistics",
        2 * w,
        &[("resident_count", long, 0), ("wired_count", long, w)],
    );
    let pmap = b.st("pmap", 0x20, &[("pm_stats", pm_stats, PM_STATS)]);
    let vmspace = b.st(
        "vmspace",
        VM_SIZE,
        &[
            ("vm_map", vm_map, 0),
            ("vm_swrss", long, VM_SWRSS),
            ("vm_tsize", long, VM_TSIZE),
            ("vm_dsize", long, VM_DSIZE),
            ("vm_ssize", long, VM_SSIZE),
            ("vm_pmap", pmap, VM_PMAP),
        ],
    );
    let vmspacep = b.ptr(vmspace);
    let timeval = b.st(
        "timeval",
        2 * w,
        &[("tv_sec", time_t, 0), ("tv_usec", long, w)],
    );
    let pstats = b.st("pstats", PSTATS_SIZE, &[("p_start", timeval, P_START)]);
    let pstatsp = b.ptr(pstats);
    let sigacts = b.st(
        "sigacts",
        SIGACTS_SIZE,
        &[
            ("ps_sigignore", sigset, PS_SIGIGNORE),
            ("ps_sigcatch", sigset, PS_SIGCATCH),
        ],
    );
    let sigactsp = b.ptr(sigacts);
    let sysent = b.st("sysentvec", SYSENT_SIZE, &[("sv_name", ccharp, SV_NAME)]);
    let sysentp = b.ptr(sysent);
    let rux = b.st("rusage_ext", 0x10, &[("rux_runtime", u64t, 0)]);
    let bintime = b.st("bintime", w + 8, &[("sec", time_t, 0), ("frac", u64t, w)]);
    b.st(
        "timehands",
        TH_SIZE,
        &[("th_boottime", bintime, TH_BOOTTIME)],
    );
    b.define(
        proc_,
        "proc",
        PROC_SIZE,
        &[
            ("p_list", p_list, P_LIST),
            ("p_threads", p_threads, P_THREADS),
            ("p_ucred", ucredp, P_UCRED),
            ("p_pid", pid_t, P_PID),
            ("p_pptr", procp, P_PPTR),
            ("p_oppid", pid_t, P_OPPID),
            ("p_pgrp", pgrpp, P_PGRP),
            ("p_comm", comm, P_COMM),
            ("p_state", p_states, P_STATE),
            ("p_flag", int, P_FLAG),
            ("p_nice", chr, P_NICE),
            ("p_lock", int, P_LOCK),
            ("p_vmspace", vmspacep, P_VMSPACE),
            ("p_stats", pstatsp, P_STATS),
            ("p_args", voidp, P_ARGS),
            ("p_numthreads", int, P_NUMTHREADS),
            ("p_textvp", voidp, P_TEXTVP),
            ("p_fd", voidp, P_FD),
            ("p_sigacts", sigactsp, P_SIGACTS),
            ("p_siglist", sigset, P_SIGLIST),
            ("p_xexit", ushort, P_XEXIT),
            ("p_xsig", uchr, P_XSIG),
            ("p_acflag", ushort, P_ACFLAG),
            ("p_sysent", sysentp, P_SYSENT),
            ("p_swtick", int, P_SWTICK),
            ("p_rux", rux, P_RUX),
            ("p_traceflag", int, P_TRACEFLAG),
            ("p_pd", voidp, P_PD),
        ],
    );
    b.define(
        thread,
        "thread",
        TD_SIZE,
        &[
            ("td_plist", td_plist, TD_PLIST),
            ("td_tid", int, TD_TID),
            ("td_name", comm, TD_NAME),
            ("td_wmesg", ccharp, TD_WMESG),
            ("td_wchan", voidp, TD_WCHAN),
            ("td_priority", uchr, TD_PRIORITY),
            ("td_base_pri", uchr, TD_BASE_PRI),
            ("td_pri_class", uchr, TD_PRI_CLASS),
            ("td_user_pri", uchr, TD_USER_PRI),
            ("td_flags", int, TD_FLAGS),
            ("td_state", td_states, TD_STATE),
            ("td_inhibitors", int, TD_INHIBITORS),
            ("td_lastcpu", int, TD_LASTCPU),
            ("td_oncpu", int, TD_ONCPU),
            ("td_blocked", voidp, TD_BLOCKED),
            ("td_lockname", ccharp, TD_LOCKNAME),
            ("td_siglist", sigset, TD_SIGLIST),
            ("td_sigmask", sigset, TD_SIGMASK),
        ],
    );
    let _ = charp;
    b.v
}

// ---------------------------------------------------------------------------------------------
// The kernel memory image: objects allocated in one arena of kernel virtual memory.

struct Img {
    word: u64,
    base: u64,
    bytes: Vec<u8>,
}

impl Img {
    fn new(word: u64, base: u64) -> Img {
        Img {
            word,
            base,
            bytes: Vec::new(),
        }
    }
    fn alloc(&mut self, size: u32) -> u64 {
        let at = self.bytes.len().next_multiple_of(64);
        self.bytes.resize(at + size as usize, 0);
        self.base + at as u64
    }
    fn put(&mut self, va: u64, b: &[u8]) {
        let o = (va - self.base) as usize;
        self.bytes[o..o + b.len()].copy_from_slice(b);
    }
    fn n(&mut self, obj: u64, off: u32, v: u64, size: usize) {
        self.put(obj + off as u64, &v.to_le_bytes()[..size]);
    }
    fn ptr(&mut self, obj: u64, off: u32, v: u64) {
        let w = self.word as usize;
        self.n(obj, off, v, w);
    }
    fn str(&mut self, s: &str) -> u64 {
        let va = self.alloc(s.len() as u32 + 1);
        self.put(va, s.as_bytes());
        va
    }
}

/// Addresses and values the expected rows need.
struct Model {
    img: Img,
    /// Symbols as the kernel ELF carries them.
    syms: Vec<(&'static str, u64)>,
    procs: Vec<u64>,
    /// Credentials: root's, the user's, the set-uid worker's.
    creds: [u64; 3],
    /// Threads of each proc in `procs`.
    threads: Vec<Vec<u64>>,
    wchan: u64,
    args: u64,
    vmspace3: u64,
    textvp: u64,
    fd: u64,
    pd: u64,
    tdev: u64,
    /// The unmapped address the damage tests point at.
    hole: u64,
    /// VIMAGE: the symbols a kernel built with it adds (set_vnet range, vnet_entry_ symbols,
    /// dumptid, proc0, vnet_head), proc0's prison and vnet, and where the set lies.
    vnet_syms: Vec<(&'static str, u64)>,
    prison0: u64,
    vnet0: u64,
    set_vnet: u64,
    /// vnet0's copy of the set (vnet_data_mem); vnet_data_base = this - set_vnet.
    vnet_data: u64,
}

/// Size of the model's set_vnet; `vnet_entry_tcbinfo` lies at +0x40 in it.
const SET_VNET_LEN: u64 = 0x100;
const TCBINFO_OFF: u64 = 0x40;
const TCBINFO_VAL: u64 = 0x7c7c_1234_5678_9abc;

const FREQ: u64 = 2_000_000_000;
const BOOT_SEC: u64 = 1_700_000_000;

fn set_comm(img: &mut Img, p: u64, s: &str) {
    img.put(p + P_COMM as u64, s.as_bytes());
}

/// Builds the process list:
///  pid 0 "kernel" (P_SYSTEM, threads "swapper" sleeping and "irq9: em0" in interrupt wait),
///  pid 1 "init" (running), pid 100 "sh" (session leader on a terminal), pid 200 "worker"
///  (three threads, jailed, set-uid, traced: p_oppid 100), pid 300 "defunct" (zombie),
///  pid 400 (PRS_NEW, never listed), pid 500 "vi" (stopped). allproc: 500, 400, 300, 200,
///  100, 1, 0.
fn model(word: u64, base: u64, hole: u64) -> Model {
    let mut img = Img::new(word, base);
    let w = word as usize;
    // Globals.
    let nprocs = img.alloc(4);
    let allproc = img.alloc(8);
    let ticks = img.alloc(4);
    let hz = img.alloc(4);
    let freq = img.alloc(8);
    let timehands_var = img.alloc(8);
    img.n(nprocs, 0, 7, 4);
    img.n(ticks, 0, 100_000, 4);
    img.n(hz, 0, 1000, 4);
    img.n(freq, 0, FREQ, 8);
    let th = img.alloc(TH_SIZE);
    img.ptr(timehands_var, 0, th);
    img.n(th, TH_BOOTTIME, BOOT_SEC, w);
    img.n(th, TH_BOOTTIME + word as u32, 1 << 63, 8); // + 0.5 s
    let sysent = img.alloc(SYSENT_SIZE);
    let svname = img.str("FreeBSD ELF64");
    img.ptr(sysent, SV_NAME, svname);
    // Jails, credentials.
    let prison0 = img.alloc(PRISON_SIZE);
    let prison3 = img.alloc(PRISON_SIZE);
    img.n(prison3, PR_ID, 3, 4);
    let cred = |img: &mut Img, ids: [u32; 5], groups: &[u32], prison: u64| {
        let c = img.alloc(CRED_SIZE);
        for (off, v) in [CR_UID, CR_RUID, CR_SVUID, CR_RGID, CR_SVGID]
            .into_iter()
            .zip(ids)
        {
            img.n(c, off, v as u64, 4);
        }
        img.n(c, CR_NGROUPS, groups.len() as u64, 4);
        let g = img.alloc(4 * groups.len() as u32);
        for (i, &x) in groups.iter().enumerate() {
            img.n(g, 4 * i as u32, x as u64, 4);
        }
        img.ptr(c, CR_GROUPS, g);
        img.ptr(c, CR_PRISON, prison);
        c
    };
    let cred_root = cred(&mut img, [0, 0, 0, 0, 0], &[0, 5], prison0);
    let cred_user = cred(
        &mut img,
        [1001, 1001, 1001, 1001, 1001],
        &[1001, 0, 20],
        prison0,
    );
    let cred_suid = cred(&mut img, [1002, 1001, 1002, 1002, 1001], &[1002], prison3);
    // Processes and threads.
    let procs: Vec<u64> = (0..7).map(|_| img.alloc(PROC_SIZE)).collect();
    let [p500, p400, p300, p200, p100, p1, p0] = procs[..] else {
        unreachable!()
    };
    img.ptr(allproc, 0, p500);
    for pair in procs.windows(2) {
        img.ptr(pair[0], P_LIST, pair[1]);
    }
    for (p, pid) in [
        (p0, 0),
        (p1, 1),
        (p100, 100),
        (p200, 200),
        (p300, 300),
        (p400, 400),
        (p500, 500),
    ] {
        img.n(p, P_PID, pid, 4);
        img.n(p, P_STATE, PRS_NORMAL, 4);
        img.ptr(p, P_SYSENT, sysent);
    }
    img.n(p400, P_STATE, PRS_NEW, 4);
    img.n(p300, P_STATE, PRS_ZOMBIE, 4);
    // Sessions, process groups, the terminal.
    let session = |img: &mut Img, sid: u64, leader: u64, login: &str| {
        let s = img.alloc(SESS_SIZE);
        img.n(s, S_SID, sid, 4);
        img.ptr(s, S_LEADER, leader);
        img.put(s + S_LOGIN as u64, login.as_bytes());
        s
    };
    let pgrp = |img: &mut Img, id: u64, s: u64| {
        let g = img.alloc(PGRP_SIZE);
        img.n(g, PG_ID, id, 4);
        img.ptr(g, PG_SESSION, s);
        g
    };
    let s0 = session(&mut img, 0, p0, "root");
    let s1 = session(&mut img, 1, p1, "root");
    let s100 = session(&mut img, 100, p100, "alice");
    let g0 = pgrp(&mut img, 0, s0);
    let g1 = pgrp(&mut img, 1, s1);
    let g100 = pgrp(&mut img, 100, s100);
    let g200 = pgrp(&mut img, 200, s100);
    let g500 = pgrp(&mut img, 500, s100);
    let cdp = img.alloc(CDP_SIZE);
    let tdev = 0x5c;
    img.n(cdp, CDP_INODE, tdev, 8);
    let tty = img.alloc(TTY_SIZE);
    img.ptr(tty, T_DEV, cdp); // cdp_c is at offset 0
    img.ptr(tty, T_PGRP, g200);
    img.ptr(tty, T_SESSION, s100);
    img.ptr(s100, S_TTYP, tty);
    let ttyvp = img.alloc(16);
    img.ptr(s100, S_TTYVP, ttyvp);
    let vm0 = img.alloc(VM_SIZE);
    let vm3 = img.alloc(VM_SIZE);
    img.n(vm3, VM_MAP_SIZE, 0x20_0000, w);
    img.n(vm3, VM_PMAP + PM_STATS, 123, w);
    img.n(vm3, VM_SWRSS, 4, w);
    img.n(vm3, VM_TSIZE, 10, w);
    img.n(vm3, VM_DSIZE, 20, w);
    img.n(vm3, VM_SSIZE, 30, w);
    let stats = img.alloc(PSTATS_SIZE);
    img.n(stats, P_START, 10, w);
    img.n(stats, P_START + word as u32, 700_000, w);
    let sa = img.alloc(SIGACTS_SIZE);
    img.n(sa, PS_SIGIGNORE, 0x4, 4);
    img.n(sa, PS_SIGCATCH, 0x8000, 4);
    let args = img.alloc(32);
    let textvp = img.alloc(16);
    let fd = img.alloc(16);
    let pd = img.alloc(16);
    let wchan = img.alloc(16);
    let lockname = img.str("vm object");
    let turnstile = img.alloc(16);
    let mut threads = vec![Vec::new(); 7];
    let mut thread = |img: &mut Img, pi: usize, tid: u64, name: &str, wmesg: Option<&str>| {
        let t = img.alloc(TD_SIZE);
        img.n(t, TD_TID, tid, 4);
        img.put(t + TD_NAME as u64, name.as_bytes());
        if let Some(m) = wmesg {
            let s = img.str(m);
            img.ptr(t, TD_WMESG, s);
            img.ptr(t, TD_WCHAN, wchan);
        }
        img.n(t, TD_LASTCPU, 1, 4);
        img.n(t, TD_ONCPU, (-1i32) as u32 as u64, 4);
        let p = procs[pi];
        match threads[pi].last() {
            None => img.ptr(p, P_THREADS, t),
            Some(&prev) => img.ptr(prev, TD_PLIST, t),
        }
        threads[pi].push(t);
        t
    };
    // pid 0: kernel.
    img.n(p0, P_FLAG, P_SYSTEM | P_KPROC | P_INMEM, 4);
    set_comm(&mut img, p0, "kernel");
    img.ptr(p0, P_UCRED, cred_root);
    img.ptr(p0, P_PGRP, g0);
    img.ptr(p0, P_VMSPACE, vm0);
    img.n(p0, P_NUMTHREADS, 2, 4);
    let t = thread(&mut img, 6, 100_000, "swapper", Some("swapin"));
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_SLEEPING, 4);
    img.n(t, TD_PRIORITY, 84, 1);
    img.n(t, TD_BASE_PRI, 84, 1);
    let t = thread(&mut img, 6, 100_001, "irq9: em0", None);
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_IWAIT, 4);
    img.n(t, TD_PRIORITY, 12, 1);
    img.n(t, TD_PRI_CLASS, 1, 1);
    img.n(t, TD_LASTCPU, 300, 4);
    // pid 1: init, running on CPU 0.
    img.n(p1, P_FLAG, P_INMEM, 4);
    set_comm(&mut img, p1, "init");
    img.ptr(p1, P_UCRED, cred_root);
    img.ptr(p1, P_PPTR, p0);
    img.ptr(p1, P_PGRP, g1);
    img.n(p1, P_NUMTHREADS, 1, 4);
    let t = thread(&mut img, 5, 100_002, "init", None);
    img.n(t, TD_STATE, TDS_RUNNING, 4);
    img.n(t, TD_ONCPU, 0, 4);
    img.n(t, TD_FLAGS, 0x4, 4);
    // pid 100: sh, session leader on the terminal; a 19-character comm.
    img.n(p100, P_FLAG, P_CONTROLT | P_INMEM, 4);
    set_comm(&mut img, p100, "sh-with-a-long-name");
    img.ptr(p100, P_UCRED, cred_user);
    img.ptr(p100, P_PPTR, p1);
    img.ptr(p100, P_PGRP, g100);
    img.ptr(p100, P_VMSPACE, vm3);
    img.ptr(p100, P_STATS, stats);
    img.ptr(p100, P_ARGS, args);
    img.ptr(p100, P_TEXTVP, textvp);
    img.ptr(p100, P_FD, fd);
    img.ptr(p100, P_PD, pd);
    img.ptr(p100, P_SIGACTS, sa);
    img.n(p100, P_SIGLIST, 0x2, 4);
    img.n(p100, P_NICE, 0, 1);
    img.n(p100, P_NUMTHREADS, 1, 4);
    img.n(p100, P_ACFLAG, 0x10, 2);
    let t = thread(&mut img, 4, 100_100, "sh", Some("wait"));
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_SLEEPING, 4);
    img.n(t, TD_SIGLIST, 0x1, 4);
    img.n(t, TD_SIGMASK, 0x10, 4);
    img.n(t, TD_PRIORITY, 152, 1);
    img.n(t, TD_BASE_PRI, 120, 1);
    img.n(t, TD_PRI_CLASS, 3, 1);
    img.n(t, TD_USER_PRI, 120, 1);
    // pid 200: worker, three threads, jailed, set-uid, reparented to a debugger (p_oppid).
    img.n(p200, P_FLAG, P_CONTROLT | P_INMEM, 4);
    set_comm(&mut img, p200, "worker");
    img.ptr(p200, P_UCRED, cred_suid);
    img.ptr(p200, P_PPTR, p1);
    img.n(p200, P_OPPID, 100, 4);
    img.ptr(p200, P_PGRP, g200);
    img.n(p200, P_NICE, (-5i8) as u8 as u64, 1);
    img.n(p200, P_NUMTHREADS, 3, 4);
    img.n(p200, P_SWTICK, 40_000, 4);
    img.n(p200, P_RUX, 3 * FREQ + FREQ / 2, 8);
    img.n(p200, P_TRACEFLAG, 0x3, 4);
    let t = thread(&mut img, 3, 100_200, "worker", None);
    img.n(t, TD_STATE, TDS_RUNQ, 4);
    let t = thread(&mut img, 3, 100_201, "io thread number1", Some("select"));
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_SLEEPING, 4);
    let t = thread(&mut img, 3, 100_202, "locker", None);
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_LOCK, 4);
    img.ptr(t, TD_BLOCKED, turnstile);
    img.ptr(t, TD_LOCKNAME, lockname);
    // pid 300: zombie of sh, exit status 3.
    img.n(p300, P_FLAG, P_WEXIT, 4);
    set_comm(&mut img, p300, "defunct");
    img.ptr(p300, P_UCRED, cred_user);
    img.ptr(p300, P_PPTR, p100);
    img.ptr(p300, P_PGRP, g100);
    img.n(p300, P_XEXIT, 3, 2);
    img.n(p300, P_NICE, 7, 1);
    img.n(p300, P_NUMTHREADS, 1, 4);
    thread(&mut img, 2, 100_300, "defunct", Some("exit"));
    // pid 400: being forked.
    set_comm(&mut img, p400, "newborn");
    // pid 500: vi, stopped by a signal.
    img.n(p500, P_FLAG, P_CONTROLT | P_STOPPED_SIG | P_INMEM, 4);
    set_comm(&mut img, p500, "vi");
    img.ptr(p500, P_UCRED, cred_user);
    img.ptr(p500, P_PPTR, p100);
    img.ptr(p500, P_PGRP, g500);
    img.n(p500, P_NUMTHREADS, 1, 4);
    let t = thread(&mut img, 0, 100_500, "vi", None);
    img.n(t, TD_STATE, TDS_INHIBITED, 4);
    img.n(t, TD_INHIBITORS, TDI_SUSPENDED, 4);
    // VIMAGE: proc0's prison is prison0, whose vnet is vnet0; vnet0's copy of set_vnet.
    let set_vnet = img.alloc(SET_VNET_LEN as u32);
    let vnet_data = img.alloc(SET_VNET_LEN as u32);
    img.n(vnet_data, TCBINFO_OFF as u32, TCBINFO_VAL, w);
    let vnet0 = img.alloc(VNET_SIZE);
    img.n(vnet0, VNET_MAGIC, VNET_MAGIC_N, 4);
    img.ptr(vnet0, VNET_DATA_MEM, vnet_data);
    img.n(vnet0, VNET_DATA_BASE, vnet_data.wrapping_sub(set_vnet), w);
    img.ptr(prison0, PR_VNET, vnet0);
    let vnet_head = img.alloc(8);
    img.ptr(vnet_head, 0, vnet0);
    let dumptid = img.alloc(4);
    img.n(dumptid, 0, 100_002, 4);
    let ifnet = img.alloc(8);
    let vnet_syms = vec![
        ("__start_set_vnet", set_vnet),
        ("__stop_set_vnet", set_vnet + SET_VNET_LEN),
        ("vnet_head", vnet_head),
        ("dumptid", dumptid),
        ("proc0", p0),
        ("vnet_entry_tcbinfo", set_vnet + TCBINFO_OFF),
        ("vnet_entry_ifnet", set_vnet + 0x8),
        ("ifnet", ifnet),
        ("vnet_entry_outside", set_vnet + SET_VNET_LEN),
    ];
    let syms = vec![
        ("nprocs", nprocs),
        ("allproc", allproc),
        ("ticks", ticks),
        ("hz", hz),
        ("cpu_tick_frequency", freq),
        ("timehands", timehands_var),
    ];
    Model {
        img,
        syms,
        procs,
        creds: [cred_root, cred_user, cred_suid],
        threads,
        wchan,
        args,
        vmspace3: vm3,
        textvp,
        fd,
        pd,
        tdev,
        hole,
        vnet_syms,
        prison0,
        vnet0,
        set_vnet,
        vnet_data,
    }
}

// ---------------------------------------------------------------------------------------------
// Expected rows, written out from the model.

fn cs<const N: usize>(s: &str) -> [u8; N] {
    let mut a = [0u8; N];
    a[..s.len()].copy_from_slice(s.as_bytes());
    a
}

/// Rows of `kvm_getprocs(KERN_PROC_ALL)` (every thread), in allproc order.
fn expected_threads(m: &Model) -> Vec<KinfoProc> {
    let [p500, _p400, p300, p200, p100, p1, p0] = m.procs[..] else {
        unreachable!()
    };
    let th = &m.threads;
    let base = |paddr: u64, pid: i32, comm: &str| {
        let mut k = KinfoProc::zeroed();
        k.ki_structsize = abi::KINFO_PROC_SIZE as i32;
        k.ki_paddr = paddr;
        k.ki_pid = pid;
        k.ki_comm = cs(comm);
        k.ki_emul = cs("FreeBSD ELF64");
        k.ki_jobc = -1;
        k.ki_tpgid = 0;
        k.ki_lastcpu = 1;
        k.ki_lastcpu_old = 1;
        k.ki_oncpu = -1;
        k.ki_oncpu_old = 255;
        k.ki_swtime = 100; // (ticks - 0) / hz
        k.ki_tdev = abi::NODEV;
        k.ki_tdev_freebsd11 = u32::MAX;
        k
    };
    let root = |k: &mut KinfoProc| {
        k.ki_ngroups = 2;
        k.ki_groups[1] = 5;
        k.ki_login = cs("root");
    };
    let user = |k: &mut KinfoProc| {
        (k.ki_uid, k.ki_ruid, k.ki_svuid, k.ki_rgid, k.ki_svgid) = (1001, 1001, 1001, 1001, 1001);
        k.ki_ngroups = 3;
        k.ki_groups[..3].copy_from_slice(&[1001, 0, 20]);
        k.ki_login = cs("alice");
        k.ki_sid = 100;
    };
    let on_tty = |k: &mut KinfoProc| {
        k.ki_tdev = m.tdev;
        k.ki_tdev_freebsd11 = m.tdev as u32;
        k.ki_tpgid = 200;
        k.ki_tsid = 100;
        k.ki_kiflag |= abi::KI_CTTY;
    };
    let mut out = Vec::new();

    // pid 500: vi, stopped.
    let mut k = base(p500, 500, "vi");
    user(&mut k);
    on_tty(&mut k);
    k.ki_pgid = 500;
    k.ki_ppid = 100;
    k.ki_numthreads = 1;
    k.ki_flag = (P_CONTROLT | P_STOPPED_SIG | P_INMEM) as i64;
    k.ki_stat = abi::SSTOP;
    k.ki_tid = 100_500;
    k.ki_tdname = cs("vi");
    k.ki_tdaddr = th[0][0];
    out.push(k);

    // pid 300: zombie (no thread is read; flags and nice stay zero, as FreeBSD leaves them).
    let mut k = base(p300, 300, "defunct");
    user(&mut k);
    k.ki_pgid = 100;
    k.ki_ppid = 100;
    k.ki_numthreads = 1;
    k.ki_xstat = 3 << 8;
    k.ki_kiflag = abi::KI_CTTY; // its session has a controlling terminal vnode
    k.ki_stat = abi::SZOMB;
    k.ki_lastcpu = 0;
    k.ki_lastcpu_old = 0;
    k.ki_oncpu = 0;
    k.ki_oncpu_old = 0;
    k.ki_swtime = 0;
    out.push(k);

    // pid 200: worker, three threads.
    let mut k = base(p200, 200, "worker");
    (k.ki_uid, k.ki_ruid, k.ki_svuid, k.ki_rgid, k.ki_svgid) = (1002, 1001, 1002, 1002, 1001);
    k.ki_ngroups = 1;
    k.ki_groups[0] = 1002;
    k.ki_login = cs("alice");
    k.ki_sid = 100;
    on_tty(&mut k);
    k.ki_jid = 3;
    k.ki_pgid = 200;
    k.ki_ppid = 100; // p_oppid wins over p_pptr (init)
    k.ki_numthreads = 3;
    k.ki_nice = -5;
    k.ki_flag = (P_CONTROLT | P_INMEM) as i64;
    k.ki_runtime = 3_500_000;
    k.ki_swtime = 60;
    k.ki_traceflag = 3;
    let mut t = k;
    t.ki_stat = abi::SRUN;
    t.ki_tid = 100_200;
    t.ki_tdname = cs("worker");
    t.ki_tdaddr = th[3][0];
    out.push(t);
    let mut t = k;
    t.ki_stat = abi::SSLEEP;
    t.ki_tid = 100_201;
    t.ki_tdname = cs("io thread number");
    t.ki_wmesg = cs("select");
    t.ki_wchan = m.wchan;
    t.ki_tdaddr = th[3][1];
    out.push(t);
    let mut t = k;
    t.ki_stat = abi::SLOCK;
    t.ki_tid = 100_202;
    t.ki_tdname = cs("locker");
    t.ki_kiflag |= abi::KI_LOCKBLOCK;
    t.ki_lockname = cs("vm objec");
    t.ki_tdaddr = th[3][2];
    out.push(t);

    // pid 100: sh, session leader with the terminal.
    let mut k = base(p100, 100, "sh-with-a-long-name");
    user(&mut k);
    on_tty(&mut k);
    k.ki_kiflag |= abi::KI_SLEADER;
    k.ki_pgid = 100;
    k.ki_ppid = 1;
    k.ki_numthreads = 1;
    k.ki_flag = (P_CONTROLT | P_INMEM) as i64;
    k.ki_args = m.args;
    k.ki_textvp = m.textvp;
    k.ki_fd = m.fd;
    k.ki_pd = m.pd;
    k.ki_vmspace = m.vmspace3;
    k.ki_size = 0x20_0000;
    k.ki_rssize = 123;
    k.ki_swrss = 4;
    k.ki_tsize = 10;
    k.ki_dsize = 20;
    k.ki_ssize = 30;
    k.ki_acflag = 0x10;
    k.ki_sigignore.bits[0] = 0x4;
    k.ki_sigcatch.bits[0] = 0x8000;
    k.ki_siglist.bits[0] = 0x3;
    k.ki_sigmask.bits[0] = 0x10;
    k.ki_start.tv_sec = BOOT_SEC as i64 + 11;
    k.ki_start.tv_usec = 200_000;
    k.ki_stat = abi::SSLEEP;
    k.ki_wmesg = cs("wait");
    k.ki_wchan = m.wchan;
    k.ki_pri = abi::Priority {
        pri_class: 3,
        pri_level: 152,
        pri_native: 120,
        pri_user: 120,
    };
    k.ki_tid = 100_100;
    k.ki_tdname = cs("sh");
    k.ki_tdaddr = th[4][0];
    out.push(k);

    // pid 1: init.
    let mut k = base(p1, 1, "init");
    root(&mut k);
    k.ki_pgid = 1;
    k.ki_sid = 1;
    k.ki_kiflag = abi::KI_SLEADER;
    k.ki_ppid = 0;
    k.ki_numthreads = 1;
    k.ki_flag = P_INMEM as i64;
    k.ki_stat = abi::SRUN;
    k.ki_oncpu = 0;
    k.ki_oncpu_old = 0;
    k.ki_tdflags = 4;
    k.ki_tid = 100_002;
    k.ki_tdname = cs("init");
    k.ki_tdaddr = th[5][0];
    out.push(k);

    // pid 0: kernel, two threads.
    let mut k = base(p0, 0, "kernel");
    root(&mut k);
    k.ki_kiflag = abi::KI_SLEADER;
    k.ki_numthreads = 2;
    k.ki_flag = (P_SYSTEM | P_KPROC | P_INMEM) as i64;
    let mut t = k;
    t.ki_stat = abi::SSLEEP;
    t.ki_wmesg = cs("swapin");
    t.ki_wchan = m.wchan;
    t.ki_pri.pri_level = 84;
    t.ki_pri.pri_native = 84;
    t.ki_tid = 100_000;
    t.ki_tdname = cs("swapper");
    t.ki_tdaddr = th[6][0];
    out.push(t);
    let mut t = k;
    t.ki_stat = abi::SWAIT;
    t.ki_pri.pri_level = 12;
    t.ki_pri.pri_class = 1;
    t.ki_lastcpu = 300;
    t.ki_lastcpu_old = 254;
    t.ki_tid = 100_001;
    t.ki_tdname = cs("irq9: em0");
    t.ki_tdaddr = th[6][1];
    out.push(t);
    out
}

/// ki_vmspace of pid 0 (proc0's vmspace has no sizes).
fn fix_vm0(m: &Model, rows: &mut [KinfoProc], vm0: u64) {
    for r in rows.iter_mut().filter(|r| r.ki_paddr == m.procs[6]) {
        r.ki_vmspace = vm0;
    }
}

/// One row per process: its first thread.
fn first_threads(rows: &[KinfoProc]) -> Vec<KinfoProc> {
    let mut out: Vec<KinfoProc> = Vec::new();
    for r in rows {
        if out.last().map(|l| l.ki_paddr) != Some(r.ki_paddr) {
            out.push(*r);
        }
    }
    out
}

fn show(rows: &[KinfoProc]) -> Vec<String> {
    rows.iter().map(|r| format!("{:#?}", r)).collect()
}

fn check_rows(got: &[KinfoProc], want: &[KinfoProc], what: &str) {
    let (g, w) = (show(got), show(want));
    assert_eq!(
        g.len(),
        w.len(),
        "{}: {} rows, want {} (pids {:?})",
        what,
        g.len(),
        w.len(),
        got.iter().map(|r| (r.ki_pid, r.ki_tid)).collect::<Vec<_>>()
    );
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if a != b {
            let diff: Vec<String> = a
                .lines()
                .zip(b.lines())
                .filter(|(x, y)| x != y)
                .map(|(x, y)| format!("got {} / want {}", x.trim(), y.trim()))
                .collect();
            panic!("{}: row {} (pid {}): {:#?}", what, i, want[i].ki_pid, diff);
        }
    }
}

fn getprocs(k: &Kvm, op: i32, arg: i32) -> kvm::Result<Vec<KinfoProc>> {
    k.lock().getprocs(op, arg).map(|r| r.to_vec())
}

/// Which of the model's rows an op selects.
type Filter = Box<dyn Fn(&KinfoProc) -> bool>;

/// Every op against the model's rows.
fn check_all_ops(k: &Kvm, m: &Model, vm0: u64, what: &str) {
    let mut all = expected_threads(m);
    fix_vm0(m, &mut all, vm0);
    let procs = first_threads(&all);
    let q = |op: i32, arg: i32| {
        getprocs(k, op, arg).unwrap_or_else(|e| panic!("{}: op {} arg {}: {}", what, op, arg, e))
    };
    check_rows(&q(abi::KERN_PROC_ALL, 0), &all, &format!("{} ALL", what));
    check_rows(
        &q(abi::KERN_PROC_PROC, 0),
        &procs,
        &format!("{} PROC", what),
    );
    let inc = abi::KERN_PROC_INC_THREAD;
    check_rows(
        &q(abi::KERN_PROC_PROC | inc, 0),
        &all,
        &format!("{} PROC|INC_THREAD", what),
    );
    let sel = |rows: &[KinfoProc], f: &dyn Fn(&KinfoProc) -> bool| -> Vec<KinfoProc> {
        rows.iter().filter(|r| f(r)).copied().collect()
    };
    let cases: Vec<(i32, i32, Filter)> = vec![
        (abi::KERN_PROC_PID, 200, Box::new(|r| r.ki_pid == 200)),
        (abi::KERN_PROC_PID, 0, Box::new(|r| r.ki_pid == 0)),
        (abi::KERN_PROC_PGRP, 100, Box::new(|r| r.ki_pgid == 100)),
        (abi::KERN_PROC_SESSION, 100, Box::new(|r| r.ki_sid == 100)),
        (abi::KERN_PROC_SESSION, 1, Box::new(|r| r.ki_pid == 1)),
        (
            abi::KERN_PROC_TTY,
            m.tdev as i32,
            Box::new(|r| [500, 200, 100].contains(&r.ki_pid)),
        ),
        (abi::KERN_PROC_UID, 1001, Box::new(|r| r.ki_uid == 1001)),
        (abi::KERN_PROC_UID, 0, Box::new(|r| r.ki_pid <= 1)),
        (abi::KERN_PROC_RUID, 1001, Box::new(|r| r.ki_ruid == 1001)),
        (abi::KERN_PROC_RGID, 1002, Box::new(|r| r.ki_pid == 200)),
        (
            abi::KERN_PROC_GID,
            1001,
            Box::new(|r| r.ki_groups[0] == 1001),
        ),
        (abi::KERN_PROC_GID, 0, Box::new(|r| r.ki_pid <= 1)),
    ];
    for (op, arg, f) in &cases {
        let label = format!("{} op {} arg {}", what, op, arg);
        check_rows(&q(*op, *arg), &sel(&procs, f.as_ref()), &label);
        check_rows(
            &q(*op | inc, *arg),
            &sel(&all, f.as_ref()),
            &format!("{} |INC_THREAD", label),
        );
    }
    // The filters select something each time, except the PRS_NEW process.
    assert_eq!(q(abi::KERN_PROC_RUID, 1001).len(), 4, "{}", what);
    assert_eq!(
        q(abi::KERN_PROC_TTY | inc, m.tdev as i32).len(),
        5,
        "{}",
        what
    );
    // A pid that is not listed (pid 400 is still being forked), an unknown op.
    for op in [abi::KERN_PROC_PID, abi::KERN_PROC_PID | inc] {
        let e = getprocs(k, op, 400).expect_err("pid 400 is not listed");
        assert_eq!(e.errno(), libc::ESRCH, "{}: {}", what, e);
    }
    let e = getprocs(k, 7, 0).expect_err("op 7 is unknown");
    assert_eq!(e.errno(), libc::EINVAL, "{}: {}", what, e);
    // Dead kernels have no user space to read, as FreeBSD says.
    let e = k
        .lock()
        .getargv(&procs[0], ArgvKind::Args, 0)
        .err()
        .unwrap_or_else(|| panic!("{}: kvm_getargv succeeded", what))
        .to_string();
    assert!(
        e.contains("cannot read user space from dead kernel"),
        "{}: {}",
        what,
        e
    );
}

// ---------------------------------------------------------------------------------------------
// Dumps.

struct Amd64Setup {
    m: Amd64Machine,
    model: Model,
    vm0: u64,
}

/// The model in an amd64 machine: kernel image 2 MiB page at KERNBASE + 2 MiB, objects from
/// KERNBASE + 0x21_0000. Nothing is mapped at KERNBASE + 0x70_0000 (the hole).
fn amd64_setup(edit: impl FnOnce(&mut Model)) -> Amd64Setup {
    let mut m = Amd64Machine::new(
        vec![(0x1000, 0x9f000), (0x10_0000, 0x400_0000)],
        0x200_0000,
        DMAPBASE,
        DMAPBASE + 0x400_0000,
    );
    m.map(DMAPBASE, 0, GIB, PG_RW | PG_NX);
    m.map(KERNBASE + 0x20_0000, 0x20_0000, MIB2, PG_RW);
    let mut model = model(8, KERNBASE + 0x21_0000, KERNBASE + 0x70_0000);
    edit(&mut model);
    let vm0 = vm0_of(&model);
    let mut phys = m.phys.clone();
    put_img(&mut phys, |va| m.truth(va), &model.img);
    m.phys = phys;
    m.finalize(KERNBASE, KERNBASE + 0x20_0100);
    Amd64Setup { m, model, vm0 }
}

fn vm0_of(model: &Model) -> u64 {
    let p0 = model.procs[6];
    let o = (p0 + P_VMSPACE as u64 - model.img.base) as usize;
    let w = model.img.word as usize;
    let mut b = [0u8; 8];
    b[..w].copy_from_slice(&model.img.bytes[o..o + w]);
    u64::from_le_bytes(b)
}

fn put_img(phys: &mut Phys, truth: impl Fn(u64) -> Option<u64>, img: &Img) {
    for (i, chunk) in img.bytes.chunks(256).enumerate() {
        let va = img.base + 256 * i as u64;
        let pa = truth(va).unwrap_or_else(|| panic!("model VA 0x{:x} not mapped", va));
        phys.write(pa, chunk);
    }
}

/// How the test kernel carries its types.
#[derive(Clone, Copy, Debug)]
enum TypeFormat {
    Btf,
    /// `.SUNW_ctf`: CTF version, zlib-compressed or not.
    Ctf(u8, bool),
}

/// The kernel ELF: symbols, and the types (as BTF) unless `types` is None.
fn kernel_elf(
    path: &Path,
    class64: bool,
    machine: u16,
    syms: &[(&str, u64)],
    types: Option<&[Ty]>,
) {
    kernel_elf_as(path, class64, machine, syms, types, TypeFormat::Btf);
}

fn kernel_elf_as(
    path: &Path,
    class64: bool,
    machine: u16,
    syms: &[(&str, u64)],
    types: Option<&[Ty]>,
    format: TypeFormat,
) {
    let (name, blob) = match format {
        TypeFormat::Btf => (".BTF", types.map(btfwriter::write_btf)),
        TypeFormat::Ctf(v, z) => (
            ".SUNW_ctf",
            types.map(|t| ctfwriter::write_ctf(t, &ctfwriter::CtfOpts::new(v, z))),
        ),
    };
    let extra: Vec<(&str, &[u8])> = blob.iter().map(|b| (name, &b[..])).collect();
    write_kernel_elf_with(path, class64, machine, syms, &extra);
}

fn open_exec(kernel: &Path, core: &Path) -> Box<Kvm> {
    Kvm::open(OpenArgs {
        execfile: Some(kernel.as_os_str()),
        corefile: Some(core.as_os_str()),
        flags: 0,
        program: None,
        resolver: None,
    })
    .unwrap_or_else(|e| panic!("open {}: {}", core.display(), e))
}

struct Amd64Files {
    dir: TempDir,
    elf: PathBuf,
    mini: PathBuf,
    kernel: PathBuf,
}

fn amd64_files(
    s: &Amd64Setup,
    name: &str,
    syms: &[(&'static str, u64)],
    types: bool,
) -> Amd64Files {
    let dir = TempDir::new(name);
    let elf = dir.file("vmcore.elf");
    write_amd64_elf(&elf, &s.m);
    let mini = dir.file("vmcore.v3");
    let kva_len = 0u64.wrapping_sub(KERNBASE);
    write_amd64_minidump(&mini, &s.m, 3, KERNBASE, kva_len, &[]);
    let kernel = dir.file("kernel");
    let mut all = vec![
        ("kernbase", s.m.kernbase_sym),
        ("KPML4phys", s.m.kpml4phys_sym),
    ];
    all.extend_from_slice(syms);
    let t = freebsd_types(8);
    kernel_elf(&kernel, true, 62, &all, types.then_some(&t[..]));
    Amd64Files {
        dir,
        elf,
        mini,
        kernel,
    }
}

#[test]
fn amd64_minidump_and_full_dump_list_processes() {
    let s = amd64_setup(|_| {});
    let f = amd64_files(&s, "amd64", &s.model.syms, true);
    for (what, core) in [("amd64 minidump v3", &f.mini), ("amd64 ELF dump", &f.elf)] {
        let k = open_exec(&f.kernel, core);
        check_all_ops(&k, &s.model, s.vm0, what);
        // Other calls are unaffected; a second listing gives the same rows.
        let again = getprocs(&k, abi::KERN_PROC_PROC, 0).unwrap();
        assert_eq!(again.len(), 6, "{}", what);
    }
}

/// A kernel carrying CTF instead of BTF (what FreeBSD's GENERIC ships): the same rows.
#[test]
fn amd64_kernel_with_ctf_v2_and_v3() {
    let s = amd64_setup(|_| {});
    let f = amd64_files(&s, "amd64-ctf", &s.model.syms, false);
    let mut all = vec![
        ("kernbase", s.m.kernbase_sym),
        ("KPML4phys", s.m.kpml4phys_sym),
    ];
    all.extend_from_slice(&s.model.syms);
    let t = freebsd_types(8);
    for format in [
        TypeFormat::Ctf(3, true),
        TypeFormat::Ctf(3, false),
        TypeFormat::Ctf(2, true),
    ] {
        kernel_elf_as(&f.kernel, true, 62, &all, Some(&t[..]), format);
        for (what, core) in [("minidump v3", &f.mini), ("ELF dump", &f.elf)] {
            let k = open_exec(&f.kernel, core);
            check_all_ops(&k, &s.model, s.vm0, &format!("{:?} {}", format, what));
        }
    }
}

#[test]
fn i386_minidump_lists_processes_with_4_byte_pointers() {
    for pae in [false, true] {
        let kb = 0x0040_0000u64;
        let mut chunks = vec![(0x1000, 0x9f000), (0x10_0000, 0x200_0000)];
        if pae {
            chunks.push((0x1_0000_0000, 0x1_0100_0000));
        }
        let mut m = I386Machine::new(chunks, kb as u32, pae);
        let sp = if pae { MIB2 } else { 2 * MIB2 };
        m.map(kb, 0x40_0000, sp, 2);
        let model = model(4, kb + 0x1000, kb + 0x80_0000);
        let vm0 = vm0_of(&model);
        let mut phys = m.phys.clone();
        put_img(&mut phys, |va| m.truth(va), &model.img);
        m.phys = phys;
        let dir = TempDir::new(&format!("i386-{}", pae));
        let core = dir.file("vmcore");
        write_i386_minidump(&core, &m, 2, &[]);
        let kernel = dir.file("kernel");
        for format in [TypeFormat::Btf, TypeFormat::Ctf(3, true)] {
            let t = freebsd_types(4);
            kernel_elf_as(&kernel, false, 3, &model.syms, Some(&t[..]), format);
            let k = open_exec(&kernel, &core);
            check_all_ops(&k, &model, vm0, &format!("i386 pae={} {:?}", pae, format));
        }
    }
}

fn err_of(r: kvm::Result<Vec<KinfoProc>>, what: &str) -> String {
    match r {
        Ok(v) => panic!("{}: succeeded with {} rows", what, v.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn kernel_without_types_fails_getprocs_only() {
    let s = amd64_setup(|_| {});
    let f = amd64_files(&s, "notypes", &s.model.syms, false);
    for core in [&f.mini, &f.elf] {
        let k = open_exec(&f.kernel, core);
        let e = err_of(getprocs(&k, abi::KERN_PROC_PROC, 0), "no types");
        assert!(
            e.contains("type information (CTF)") && e.contains("no .BTF section"),
            "{}",
            e
        );
        // Reads keep working.
        let mut b = [0u8; 4];
        k.lock().read(s.model.syms[0].1, &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 7);
    }
    // Without an execfile (symbols from a resolver), there is no kernel file to take types from.
    let table: Vec<(Vec<u8>, u64)> = s
        .model
        .syms
        .iter()
        .map(|(n, v)| (format!("_{}", n).into_bytes(), *v))
        .collect();
    let k = Kvm::open(OpenArgs {
        execfile: None,
        corefile: Some(f.mini.as_os_str()),
        flags: 0,
        program: None,
        resolver: Some(Box::new(move |name: &[u8]| {
            table.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
        })),
    })
    .unwrap();
    let e = err_of(getprocs(&k, abi::KERN_PROC_PROC, 0), "no execfile");
    assert!(
        e.contains("type information (CTF)") && e.contains("execfile"),
        "{}",
        e
    );
    let _ = &f.dir;
}

#[test]
fn missing_symbols_and_damaged_lists_are_errors() {
    // allproc missing from the kernel's symbols.
    let s = amd64_setup(|_| {});
    let syms: Vec<(&'static str, u64)> = s
        .model
        .syms
        .iter()
        .filter(|(n, _)| *n != "allproc")
        .copied()
        .collect();
    let f = amd64_files(&s, "noallproc", &syms, true);
    let k = open_exec(&f.kernel, &f.mini);
    let e = err_of(getprocs(&k, abi::KERN_PROC_ALL, 0), "no allproc");
    assert_eq!(e, "_allproc: no such symbol");

    // A cycle: pid 1's next points back at pid 200. Every op fails rather than hangs.
    let s = amd64_setup(|m| {
        let (p1, p200) = (m.procs[5], m.procs[3]);
        m.img.ptr(p1, P_LIST, p200);
    });
    let f = amd64_files(&s, "cycle", &s.model.syms, true);
    for core in [&f.mini, &f.elf] {
        let k = open_exec(&f.kernel, core);
        for (op, arg) in [(abi::KERN_PROC_ALL, 0), (abi::KERN_PROC_PID, 12345)] {
            let e = err_of(getprocs(&k, op, arg), "cycle");
            assert!(
                e.contains("loops") && e.contains(&format!("0x{:x}", s.model.procs[3])),
                "{}",
                e
            );
        }
    }

    // A thread list that loops.
    let s = amd64_setup(|m| {
        let t = m.threads[3][2];
        let first = m.threads[3][0];
        m.img.ptr(t, TD_PLIST, first);
    });
    let f = amd64_files(&s, "tdcycle", &s.model.syms, true);
    let k = open_exec(&f.kernel, &f.mini);
    let e = err_of(getprocs(&k, abi::KERN_PROC_ALL, 0), "thread cycle");
    assert!(e.contains("thread list") && e.contains("loops"), "{}", e);
    // Without threads only the first one is read: the listing still works.
    assert_eq!(getprocs(&k, abi::KERN_PROC_PROC, 0).unwrap().len(), 6);

    // A process group pointer into unmapped memory, and a next pointer there.
    let s = amd64_setup(|m| {
        let (p100, hole) = (m.procs[4], m.hole);
        m.img.ptr(p100, P_PGRP, hole);
    });
    let f = amd64_files(&s, "hole", &s.model.syms, true);
    let k = open_exec(&f.kernel, &f.elf);
    let e = err_of(getprocs(&k, abi::KERN_PROC_PROC, 0), "pgrp hole");
    assert!(
        e.contains("can't read pgrp") && e.contains(&format!("0x{:x}", s.model.hole)),
        "{}",
        e
    );
    // A process filtered out before its group is read is not affected (as in FreeBSD).
    assert_eq!(getprocs(&k, abi::KERN_PROC_PID, 1).unwrap().len(), 1);

    let s = amd64_setup(|m| {
        let (p1, hole) = (m.procs[5], m.hole);
        m.img.ptr(p1, P_LIST, hole);
    });
    let f = amd64_files(&s, "nexthole", &s.model.syms, true);
    let k = open_exec(&f.kernel, &f.mini);
    let e = err_of(getprocs(&k, abi::KERN_PROC_PROC, 0), "next hole");
    assert!(
        e.contains("can't read proc") && e.contains(&format!("0x{:x}", s.model.hole)),
        "{}",
        e
    );
}

const ARM_KERNBASE: u64 = 0xffff_0000_0000_0000;
const ARM_DMAPBASE: u64 = 0xffff_a000_0000_0000;
const EM_AARCH64: u16 = 183;

#[test]
fn arm64_minidump_lists_processes() {
    for page in [4096, 16384] {
        let chunks = vec![(0x4000_0000, 0x4800_0000)];
        let mut m = Arm64Machine::new(page, chunks, ARM_KERNBASE, ARM_DMAPBASE);
        m.map(ARM_KERNBASE + 0x20_0000, 0x4020_0000, MIB2, ATTR_XN);
        let model = model(8, ARM_KERNBASE + 0x21_0000, ARM_KERNBASE + 0x70_0000);
        let vm0 = vm0_of(&model);
        let mut phys = m.phys.clone();
        put_img(&mut phys, |va| m.truth(va), &model.img);
        m.phys = phys;
        let dir = TempDir::new(&format!("arm64-{}", page));
        let core = dir.file("vmcore");
        write_arm64_minidump(&core, &m, 3, &[]);
        let kernel = dir.file("kernel");
        kernel_elf(
            &kernel,
            true,
            EM_AARCH64,
            &model.syms,
            Some(&freebsd_types(8)),
        );
        let k = open_exec(&kernel, &core);
        check_all_ops(&k, &model, vm0, &format!("arm64 {}K", page / 1024));
    }
}

#[test]
fn zombies_on_a_separate_zombproc_list_come_last() {
    // Kernels before FreeBSD 12 keep zombies on `zombproc`: pid 300 moves there.
    let s = amd64_setup(|m| {
        let (p400, p300, p200) = (m.procs[1], m.procs[2], m.procs[3]);
        m.img.ptr(p400, P_LIST, p200);
        m.img.ptr(p300, P_LIST, 0);
        let z = m.img.alloc(8);
        m.img.ptr(z, 0, p300);
        m.syms.push(("zombproc", z));
    });
    let f = amd64_files(&s, "zombproc", &s.model.syms, true);
    let k = open_exec(&f.kernel, &f.mini);
    let mut want = expected_threads(&s.model);
    fix_vm0(&s.model, &mut want, s.vm0);
    let (zombie, mut rest): (Vec<KinfoProc>, Vec<KinfoProc>) =
        want.into_iter().partition(|r| r.ki_pid == 300);
    rest.extend(zombie);
    check_rows(
        &getprocs(&k, abi::KERN_PROC_ALL, 0).unwrap(),
        &rest,
        "zombproc ALL",
    );
    check_rows(
        &getprocs(&k, abi::KERN_PROC_PID, 300).unwrap(),
        &rest[rest.len() - 1..],
        "zombproc PID 300",
    );
    // A damaged zombie list costs its rows only, as in FreeBSD.
    let s = amd64_setup(|m| {
        let (p400, p300, p200, hole) = (m.procs[1], m.procs[2], m.procs[3], m.hole);
        m.img.ptr(p400, P_LIST, p200);
        m.img.ptr(p300, P_LIST, hole);
        let z = m.img.alloc(8);
        m.img.ptr(z, 0, p300);
        m.syms.push(("zombproc", z));
    });
    let f = amd64_files(&s, "zombproc-bad", &s.model.syms, true);
    let k = open_exec(&f.kernel, &f.mini);
    let rows = getprocs(&k, abi::KERN_PROC_PROC, 0).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.ki_pid).collect::<Vec<_>>(),
        [500, 200, 100, 1, 0]
    );
}

#[test]
fn kernels_with_a_separate_effective_gid() {
    // Newer kernels have `cr_gid` as a member; cr_groups then holds supplementary groups only.
    let mut types = freebsd_types(8);
    let gid_t = types
        .iter()
        .position(|t| matches!(t, Ty::Typedef { name, .. } if name == "gid_t"))
        .unwrap() as u32
        + 1;
    for t in types.iter_mut() {
        if let Ty::Struct { name, members, .. } = t {
            if name == "ucred" {
                members.push(Member::at("cr_gid", gid_t, 0x38));
            }
        }
    }
    let s = amd64_setup(|m| {
        let [root, user, suid] = m.creds;
        m.img.n(user, 0x38, 20, 4);
        m.img.n(suid, 0x38, 1002, 4);
        m.img.n(root, CR_NGROUPS, 16, 4); // 1 + 16 groups: more than kinfo_proc holds
    });
    let dir = TempDir::new("crgid");
    let core = dir.file("vmcore.v3");
    write_amd64_minidump(&core, &s.m, 3, KERNBASE, 0u64.wrapping_sub(KERNBASE), &[]);
    let kernel = dir.file("kernel");
    let mut syms = vec![
        ("kernbase", s.m.kernbase_sym),
        ("KPML4phys", s.m.kpml4phys_sym),
    ];
    syms.extend_from_slice(&s.model.syms);
    kernel_elf(&kernel, true, 62, &syms, Some(&types));
    let k = open_exec(&kernel, &core);
    let rows = getprocs(&k, abi::KERN_PROC_PROC, 0).unwrap();
    let by_pid = |pid: i32| rows.iter().find(|r| r.ki_pid == pid).unwrap();
    let groups = |r: &KinfoProc| r.ki_groups[..r.ki_ngroups as usize].to_vec();
    assert_eq!(groups(by_pid(100)), [20, 1001, 0, 20]);
    assert_eq!(groups(by_pid(200)), [1002, 1002]);
    assert_eq!(by_pid(100).ki_cr_flags, 0);
    let root = by_pid(1);
    assert_eq!(root.ki_ngroups, 16);
    assert_eq!(root.ki_cr_flags, abi::KI_CRF_GRP_OVERFLOW);
    assert_eq!(&root.ki_groups[..3], &[0, 0, 5]);
    let gid20: Vec<i32> = getprocs(&k, abi::KERN_PROC_GID, 20)
        .unwrap()
        .iter()
        .map(|r| r.ki_pid)
        .collect();
    assert_eq!(gid20, [500, 300, 100]);
}

#[test]
fn corrupted_process_memory_gives_rows_or_errors_never_a_crash() {
    let base = amd64_setup(|_| {});
    let dir = TempDir::new("mutate");
    let kernel = dir.file("kernel");
    let mut syms = vec![
        ("kernbase", base.m.kernbase_sym),
        ("KPML4phys", base.m.kpml4phys_sym),
    ];
    syms.extend_from_slice(&base.model.syms);
    kernel_elf(&kernel, true, 62, &syms, Some(&freebsd_types(8)));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let core = dir.file("vmcore");
    for round in 0..60 {
        let s = amd64_setup(|m| {
            let len = m.img.bytes.len() as u64;
            for _ in 0..1 + next() % 8 {
                let off = (next() % (len / 8)) * 8;
                let va = m.img.base + off;
                let v = match next() % 4 {
                    0 => 0,
                    1 => m.img.base + next() % len, // somewhere inside the objects
                    2 => next(),
                    _ => m.hole,
                };
                m.img.ptr(va, 0, v);
            }
        });
        write_amd64_minidump(&core, &s.m, 3, KERNBASE, 0u64.wrapping_sub(KERNBASE), &[]);
        let k = open_exec(&kernel, &core);
        for op in [
            abi::KERN_PROC_ALL,
            abi::KERN_PROC_PROC,
            abi::KERN_PROC_TTY | abi::KERN_PROC_INC_THREAD,
        ] {
            match getprocs(&k, op, 0x5c) {
                Ok(rows) => assert!(rows.len() < 1 << 20, "round {}: {} rows", round, rows.len()),
                Err(e) => assert!(!e.to_string().is_empty(), "round {}", round),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kvm_nlist's vnet_entry_ retry (FreeBSD's kvm_vnet.c through _kvm_nlist): the virtualized
// network stack variables of a VIMAGE kernel, relocated into the vnet FreeBSD selects.

/// kvm_nlist2 of `names`: (value, n_type) per name, None when not found.
fn nlist(k: &Kvm, names: &[&str]) -> Vec<Option<(u64, u8)>> {
    let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    k.lock()
        .nlist(&names)
        .unwrap()
        .into_iter()
        .map(|s| s.map(|s| (s.value, s.n_type)))
        .collect()
}

fn errbuf(k: &Kvm) -> String {
    let st = k.lock();
    let b = &st.errbuf;
    String::from_utf8_lossy(&b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]).into_owned()
}

/// The model's kernel symbols plus the VIMAGE ones, minus `drop`.
fn vimage_syms(model: &Model, drop: &str) -> Vec<(&'static str, u64)> {
    model
        .syms
        .iter()
        .chain(model.vnet_syms.iter())
        .filter(|(n, _)| *n != drop)
        .copied()
        .collect()
}

fn sym_of(model: &Model, name: &str) -> u64 {
    model
        .syms
        .iter()
        .chain(model.vnet_syms.iter())
        .find(|(n, _)| *n == name)
        .unwrap()
        .1
}

#[test]
fn vnet_symbols_are_relocated_into_the_dumps_vnet() {
    let s = amd64_setup(|_| {});
    let m = &s.model;
    let f = amd64_files(&s, "vnet", &vimage_syms(m, ""), true);
    let tcb_entry = m.set_vnet + TCBINFO_OFF;
    // vnet_data_base = vnet_data_mem - __start_set_vnet; the variable is base + entry value.
    let base = m.vnet_data.wrapping_sub(m.set_vnet);
    assert_eq!(base.wrapping_add(tcb_entry), m.vnet_data + TCBINFO_OFF);
    for (what, core) in [("minidump", &f.mini), ("ELF dump", &f.elf)] {
        let k = open_exec(&f.kernel, core);
        let entry_type = nlist(&k, &["vnet_entry_tcbinfo"])[0].unwrap().1;
        let got = nlist(
            &k,
            &[
                "_tcbinfo", "tcbinfo", "_ifnet", "_outside", "_nprocs", "_nosuch",
            ],
        );
        // A VNET variable: the prefixed symbol's type, its value moved into proc0's vnet.
        assert_eq!(
            got[0],
            Some((m.vnet_data + TCBINFO_OFF, entry_type)),
            "{}",
            what
        );
        // The leading underscore is optional, as in FreeBSD's prefixing.
        assert_eq!(got[1], got[0], "{}", what);
        // A name found directly is not retried, so not adjusted.
        assert_eq!(got[2].map(|g| g.0), Some(sym_of(m, "ifnet")), "{}", what);
        // A vnet_entry_ symbol outside [__start_set_vnet, __stop_set_vnet): not adjusted.
        assert_eq!(
            got[3].map(|g| g.0),
            Some(m.set_vnet + SET_VNET_LEN),
            "{}",
            what
        );
        assert_eq!(got[4].map(|g| g.0), Some(sym_of(m, "nprocs")), "{}", what);
        assert_eq!(got[5], None, "{}", what);
        assert_eq!(errbuf(&k), "", "{}", what);
        // The relocated address holds vnet0's copy of the variable.
        let mut b = [0u8; 8];
        k.lock().read(got[0].unwrap().0, &mut b).unwrap();
        assert_eq!(u64::from_le_bytes(b), TCBINFO_VAL, "{}", what);
        // The selection is kept: a second call gives the same answer.
        assert_eq!(nlist(&k, &["_tcbinfo"])[0], got[0], "{}", what);
    }
}

/// Without a positive dumptid FreeBSD looks for the caller's pid from &allproc on: here pid
/// 200 is given this process's pid, and its prison has a vnet of its own.
#[test]
fn vnet_of_the_callers_pid_without_dumptid() {
    let me = std::process::id() as u64;
    let mut data1 = 0;
    let s = amd64_setup(|m| {
        let dumptid = m.vnet_syms.iter().find(|(n, _)| *n == "dumptid").unwrap().1;
        m.img.n(dumptid, 0, 0, 4);
        // FreeBSD reads &allproc as a struct proc: in its kernels p_list is the first member,
        // so the list head is the pseudo-proc's p_list.le_next. The model's p_list is at
        // P_LIST; put the head there too.
        let allproc = m.syms.iter().find(|(n, _)| *n == "allproc").unwrap().1;
        let first = m.procs[0];
        m.img.ptr(allproc, P_LIST, first);
        let p200 = m.procs[3];
        m.img.n(p200, P_PID, me, 4);
        let prison3 = m.img.alloc(PRISON_SIZE);
        m.img.ptr(m.creds[2], CR_PRISON, prison3);
        let vnet1 = m.img.alloc(VNET_SIZE);
        data1 = m.img.alloc(SET_VNET_LEN as u32);
        m.img.n(vnet1, VNET_MAGIC, VNET_MAGIC_N, 4);
        m.img
            .n(vnet1, VNET_DATA_BASE, data1.wrapping_sub(m.set_vnet), 8);
        m.img.ptr(prison3, PR_VNET, vnet1);
    });
    let f = amd64_files(&s, "vnet-pid", &vimage_syms(&s.model, ""), true);
    let k = open_exec(&f.kernel, &f.mini);
    assert_eq!(
        nlist(&k, &["_tcbinfo"])[0].map(|g| g.0),
        Some(data1 + TCBINFO_OFF)
    );
}

#[test]
fn failed_vnet_selection_leaves_the_names_missing() {
    let names = ["_tcbinfo", "_nprocs"];
    let check = |k: &Kvm, what: &str, err: &str| {
        let got = nlist(k, &names);
        assert_eq!(got[0], None, "{}", what);
        assert!(got[1].is_some(), "{}", what);
        let e = errbuf(k);
        if err.is_empty() {
            assert_eq!(e, "", "{}", what);
        } else {
            assert!(e.starts_with(err), "{}: {}", what, e);
        }
    };
    // No types in the kernel file: silently nothing.
    let s = amd64_setup(|_| {});
    let f = amd64_files(&s, "vnet-notypes", &vimage_syms(&s.model, ""), false);
    check(&open_exec(&f.kernel, &f.mini), "no types", "");
    // A kernel without __start_set_vnet (no VIMAGE): silently nothing.
    let f = amd64_files(
        &s,
        "vnet-nostart",
        &vimage_syms(&s.model, "__start_set_vnet"),
        true,
    );
    check(&open_exec(&f.kernel, &f.mini), "no __start_set_vnet", "");
    // Nor without proc0 (FreeBSD needs all six symbols).
    let f = amd64_files(&s, "vnet-noproc0", &vimage_syms(&s.model, "proc0"), true);
    check(&open_exec(&f.kernel, &f.mini), "no proc0", "");
    // FreeBSD's messages for damaged structures.
    type Edit = Box<dyn FnOnce(&mut Model)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "unreadable prison",
            Box::new(|m: &mut Model| {
                let h = m.hole;
                m.img.ptr(m.creds[0], CR_PRISON, h)
            }),
            "_kvm_vnet_selectpid: prison",
        ),
        (
            "no jail",
            Box::new(|m: &mut Model| m.img.ptr(m.creds[0], CR_PRISON, 0)),
            "_kvm_vnet_selectpid: no jail",
        ),
        (
            "no vnet",
            Box::new(|m: &mut Model| m.img.ptr(m.prison0, PR_VNET, 0)),
            "_kvm_vnet_selectpid: no vnet",
        ),
        (
            "bad magic",
            Box::new(|m: &mut Model| m.img.n(m.vnet0, VNET_MAGIC, 0x1234, 4)),
            "_kvm_vnet_selectpid: invalid vnet magic#",
        ),
        (
            "unreadable cred",
            Box::new(|m: &mut Model| {
                let h = m.hole;
                m.img.ptr(m.procs[6], P_UCRED, h)
            }),
            "_kvm_vnet_selectpid: cred",
        ),
    ];
    for (what, edit, err) in cases {
        let s = amd64_setup(edit);
        let f = amd64_files(&s, "vnet-bad", &vimage_syms(&s.model, ""), true);
        for core in [&f.mini, &f.elf] {
            let k = open_exec(&f.kernel, core);
            check(&k, what, err);
            // FreeBSD tries again at the next miss; still nothing.
            check(&k, what, err);
        }
    }
}

/// An i386 kernel (4-byte pointers and uintptr_t) whose vnet data lies below the set, so that
/// vnet_data_base is "negative": the relocated address wraps at 32 bits as the kernel's does.
#[test]
fn i386_vnet_symbols_wrap_at_32_bits() {
    let kb = 0x0040_0000u64;
    let mut m = I386Machine::new(
        vec![(0x1000, 0x9f000), (0x10_0000, 0x200_0000)],
        kb as u32,
        false,
    );
    m.map(kb, 0x40_0000, 2 * MIB2, 2);
    // The model starts one page above kb; vnet0's data is that free page at kb.
    let mut model = model(4, kb + 0x1000, kb + 0x80_0000);
    let data = kb;
    let base = data.wrapping_sub(model.set_vnet) & 0xffff_ffff;
    assert!(base > 0x8000_0000);
    model.img.n(model.vnet0, VNET_DATA_BASE, base, 4);
    let mut phys = m.phys.clone();
    put_img(&mut phys, |va| m.truth(va), &model.img);
    phys.write(
        m.truth(data + TCBINFO_OFF).unwrap(),
        &0x1234_5678u32.to_le_bytes(),
    );
    m.phys = phys;
    let dir = TempDir::new("i386-vnet");
    let core = dir.file("vmcore");
    write_i386_minidump(&core, &m, 2, &[]);
    let kernel = dir.file("kernel");
    let t = freebsd_types(4);
    for format in [TypeFormat::Btf, TypeFormat::Ctf(3, true)] {
        kernel_elf_as(
            &kernel,
            false,
            3,
            &vimage_syms(&model, ""),
            Some(&t[..]),
            format,
        );
        let k = open_exec(&kernel, &core);
        let got = nlist(&k, &["_tcbinfo"])[0].map(|g| g.0);
        assert_eq!(got, Some(data + TCBINFO_OFF), "{:?}", format);
        let mut b = [0u8; 4];
        k.lock().read(got.unwrap(), &mut b).unwrap();
        assert_eq!(u32::from_le_bytes(b), 0x1234_5678, "{:?}", format);
    }
}
