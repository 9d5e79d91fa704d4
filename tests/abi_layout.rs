//! The Rust `#[repr(C)]` types and constants of src/abi.rs against the golden FreeBSD amd64
//! tables (tests/data/abi, copied from ../shared/abi): offset and size of every member listed,
//! every total size, and every constant both sides define. The C headers are checked against
//! the same tables by ctests (make check), so the two cannot drift apart.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};

use kvm::abi::{self, KinfoProc, KvmPage, KvmSwap, Priority, Rusage, Sigset, Timeval};

const LAYOUTS: &str = include_str!("data/abi/freebsd-amd64-layouts.tsv");
const CONSTANTS: &str = include_str!("data/abi/freebsd-constants.tsv");
const ABI_RS: &str = include_str!("../src/abi.rs");
const C_HEADERS: [&str; 3] = [
    include_str!("../include/sys/user.h"),
    include_str!("../include/sys/sysctl.h"),
    include_str!("../include/nlist.h"),
];

fn size_of_field<T, F>(_: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// (member, offset, size) of each listed field of a struct.
macro_rules! fields {
    ($t:ty; $($f:ident),* $(,)?) => {
        vec![$((stringify!($f), offset_of!($t, $f), size_of_field::<$t, _>(|s| &s.$f))),*]
    };
}

/// struct name in the table -> (total size, fields), for every struct the core defines.
fn rust_layouts() -> HashMap<&'static str, (usize, Vec<(&'static str, usize, usize)>)> {
    let mut m = HashMap::new();
    m.insert("kinfo_proc", (size_of::<KinfoProc>(), fields!(KinfoProc; ki_structsize, ki_layout, ki_args, ki_paddr, ki_addr, ki_tracep, ki_textvp, ki_fd, ki_vmspace, ki_wchan, ki_pid, ki_ppid, ki_pgid, ki_tpgid, ki_sid, ki_tsid, ki_jobc, ki_spare_short1, ki_tdev_freebsd11, ki_siglist, ki_sigmask, ki_sigignore, ki_sigcatch, ki_uid, ki_ruid, ki_svuid, ki_rgid, ki_svgid, ki_ngroups, ki_spare_short2, ki_groups, ki_size, ki_rssize, ki_swrss, ki_tsize, ki_dsize, ki_ssize, ki_xstat, ki_acflag, ki_pctcpu, ki_estcpu, ki_slptime, ki_swtime, ki_cow, ki_runtime, ki_start, ki_childtime, ki_flag, ki_kiflag, ki_traceflag, ki_stat, ki_nice, ki_lock, ki_rqindex, ki_oncpu_old, ki_lastcpu_old, ki_tdname, ki_wmesg, ki_login, ki_lockname, ki_comm, ki_emul, ki_loginclass, ki_moretdname, ki_sparestrings, ki_spareints, ki_tdev, ki_oncpu, ki_lastcpu, ki_tracer, ki_flag2, ki_fibnum, ki_cr_flags, ki_jid, ki_numthreads, ki_tid, ki_pri, ki_rusage, ki_rusage_ch, ki_pcb, ki_kstack, ki_udata, ki_tdaddr, ki_pd, ki_spareptrs, ki_sparelongs, ki_sflag, ki_tdflags)));
    m.insert(
        "priority",
        (
            size_of::<Priority>(),
            fields!(Priority; pri_class, pri_level, pri_native, pri_user),
        ),
    );
    m.insert(
        "timeval",
        (size_of::<Timeval>(), fields!(Timeval; tv_sec, tv_usec)),
    );
    m.insert("rusage", (size_of::<Rusage>(), fields!(Rusage; ru_utime, ru_stime, ru_maxrss, ru_ixrss, ru_idrss, ru_isrss, ru_minflt, ru_majflt, ru_nswap, ru_inblock, ru_oublock, ru_msgsnd, ru_msgrcv, ru_nsignals, ru_nvcsw, ru_nivcsw)));
    // FreeBSD's member is __bits; Rust calls it bits.
    let mut sig = fields!(Sigset; bits);
    sig[0].0 = "__bits";
    m.insert("__sigset", (size_of::<Sigset>(), sig));
    m.insert("kvm_swap", (size_of::<KvmSwap>(), fields!(KvmSwap; ksw_devname, ksw_used, ksw_total, ksw_flags, ksw_reserved1, ksw_reserved2)));
    m.insert("kvm_page", (size_of::<KvmPage>(), fields!(KvmPage; kp_version, kp_paddr, kp_kmap_vaddr, kp_dmap_vaddr, kp_prot, kp_offset, kp_len)));
    m
}

fn tsv(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split('\t').collect())
        .collect()
}

#[test]
fn every_member_matches_freebsd_amd64() {
    let rust = rust_layouts();
    let mut checked = 0;
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
    for row in tsv(LAYOUTS) {
        let (st, member, off, size): (&str, &str, usize, usize) = (
            row[0],
            row[1],
            row[2].parse().unwrap(),
            row[3].parse().unwrap(),
        );
        let Some((total, fields)) = rust.get(st) else {
            continue;
        };
        if member == "<TOTAL>" {
            assert_eq!(*total, off, "sizeof({})", st);
            checked += 1;
            continue;
        }
        let f = fields
            .iter()
            .find(|f| f.0 == member)
            .unwrap_or_else(|| panic!("{}.{} missing in Rust", st, member));
        assert_eq!(f.1, off, "offset of {}.{}", st, member);
        assert_eq!(f.2, size, "size of {}.{}", st, member);
        seen.entry(st).or_default().push(member);
        checked += 1;
    }
    // And the other way round: no Rust field the table does not know.
    for (st, (_, fields)) in &rust {
        for f in fields {
            assert!(
                seen.get(st).is_some_and(|v| v.contains(&f.0)),
                "{}.{} not in the FreeBSD table",
                st,
                f.0
            );
        }
    }
    assert_eq!(size_of::<KinfoProc>(), 1088);
    assert!(checked > 130, "only {} rows checked", checked);
}

fn parse_value(v: &str) -> i128 {
    let (neg, v) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let n = match v.strip_prefix("0x") {
        Some(h) => i128::from_str_radix(h, 16).unwrap(),
        None => v.parse::<i128>().unwrap(),
    };
    if neg {
        -n
    } else {
        n
    }
}

/// Every constant of src/abi.rs that FreeBSD also defines, with its Rust value.
fn rust_constants() -> Vec<(&'static str, i128)> {
    vec![
        ("WMESGLEN", abi::WMESGLEN as i128),
        ("LOCKNAMELEN", abi::LOCKNAMELEN as i128),
        ("TDNAMLEN", abi::TDNAMLEN as i128),
        ("COMMLEN", abi::COMMLEN as i128),
        ("KI_EMULNAMELEN", abi::KI_EMULNAMELEN as i128),
        ("KI_NGROUPS", abi::KI_NGROUPS as i128),
        ("LOGNAMELEN", abi::LOGNAMELEN as i128),
        ("LOGINCLASSLEN", abi::LOGINCLASSLEN as i128),
        ("KI_NSPARE_INT", abi::KI_NSPARE_INT as i128),
        ("KI_NSPARE_LONG", abi::KI_NSPARE_LONG as i128),
        ("KI_NSPARE_PTR", abi::KI_NSPARE_PTR as i128),
        ("KINFO_PROC_SIZE", abi::KINFO_PROC_SIZE as i128),
        (
            "LIBKVM_WALK_PAGES_VERSION",
            abi::LIBKVM_WALK_PAGES_VERSION as i128,
        ),
        ("VM_PROT_NONE", abi::VM_PROT_NONE as i128),
        ("VM_PROT_READ", abi::VM_PROT_READ as i128),
        ("VM_PROT_WRITE", abi::VM_PROT_WRITE as i128),
        ("VM_PROT_EXECUTE", abi::VM_PROT_EXECUTE as i128),
        ("KERN_PROC_ALL", abi::KERN_PROC_ALL as i128),
        ("KERN_PROC_PID", abi::KERN_PROC_PID as i128),
        ("KERN_PROC_PGRP", abi::KERN_PROC_PGRP as i128),
        ("KERN_PROC_SESSION", abi::KERN_PROC_SESSION as i128),
        ("KERN_PROC_TTY", abi::KERN_PROC_TTY as i128),
        ("KERN_PROC_UID", abi::KERN_PROC_UID as i128),
        ("KERN_PROC_RUID", abi::KERN_PROC_RUID as i128),
        ("KERN_PROC_PROC", abi::KERN_PROC_PROC as i128),
        ("KERN_PROC_RGID", abi::KERN_PROC_RGID as i128),
        ("KERN_PROC_GID", abi::KERN_PROC_GID as i128),
        ("KERN_PROC_INC_THREAD", abi::KERN_PROC_INC_THREAD as i128),
        ("SIDL", abi::SIDL as i128),
        ("SRUN", abi::SRUN as i128),
        ("SSLEEP", abi::SSLEEP as i128),
        ("SSTOP", abi::SSTOP as i128),
        ("SZOMB", abi::SZOMB as i128),
        ("SWAIT", abi::SWAIT as i128),
        ("SLOCK", abi::SLOCK as i128),
        ("P_CONTROLT", abi::P_CONTROLT as i128),
        ("P_KPROC", abi::P_KPROC as i128),
        ("P_PPWAIT", abi::P_PPWAIT as i128),
        ("P_HADTHREADS", abi::P_HADTHREADS as i128),
        ("P_SUGID", abi::P_SUGID as i128),
        ("P_SYSTEM", abi::P_SYSTEM as i128),
        ("P_TRACED", abi::P_TRACED as i128),
        ("P_WEXIT", abi::P_WEXIT as i128),
        ("P_EXEC", abi::P_EXEC as i128),
        ("P_STOPPED_SIG", abi::P_STOPPED_SIG as i128),
        ("P_INMEM", abi::P_INMEM as i128),
        ("TDF_SINTR", abi::TDF_SINTR as i128),
        ("KI_CTTY", abi::KI_CTTY as i128),
        ("KI_SLEADER", abi::KI_SLEADER as i128),
        ("KI_LOCKBLOCK", abi::KI_LOCKBLOCK as i128),
        ("KI_CRF_GRP_OVERFLOW", abi::KI_CRF_GRP_OVERFLOW as i128),
        ("PRI_ITHD", abi::PRI_ITHD as i128),
        ("PRI_REALTIME", abi::PRI_REALTIME as i128),
        ("PRI_TIMESHARE", abi::PRI_TIMESHARE as i128),
        ("PRI_IDLE", abi::PRI_IDLE as i128),
        ("NODEV", abi::NODEV as i128),
        ("NOCPU", abi::NOCPU as i128),
        ("NOCPU_OLD", abi::NOCPU_OLD as i128),
        ("FSHIFT", abi::FSHIFT as i128),
        ("FSCALE", abi::FSCALE as i128),
        ("CPUSTATES", abi::CPUSTATES as i128),
        ("SWIF_DEV_PREFIX", abi::SWIF_DEV_PREFIX as i128),
        ("FREEBSD_ARG_MAX", abi::FREEBSD_ARG_MAX as i128),
        ("_POSIX2_LINE_MAX", abi::POSIX2_LINE_MAX as i128),
        ("N_UNDF", abi::N_UNDF as i128),
        ("N_ABS", abi::N_ABS as i128),
        ("N_TEXT", abi::N_TEXT as i128),
        ("N_DATA", abi::N_DATA as i128),
        ("N_BSS", abi::N_BSS as i128),
        ("N_INDR", abi::N_INDR as i128),
        ("N_COMM", abi::N_COMM as i128),
        ("N_FN", abi::N_FN as i128),
        ("N_EXT", abi::N_EXT as i128),
    ]
}

#[test]
fn every_constant_matches_freebsd() {
    let golden: HashMap<&str, i128> = tsv(CONSTANTS)
        .into_iter()
        .filter(|r| !r[1].starts_with('"'))
        .map(|r| (r[0], parse_value(r[1])))
        .collect();
    let mut checked = 0;
    for (name, value) in rust_constants() {
        let Some(&want) = golden.get(name) else {
            continue;
        };
        // Signedness differs by type (NODEV is u64::MAX, FreeBSD writes 0xffff...): compare bits.
        let same = value == want || (value as u64) == (want as u64);
        assert!(same, "{}: Rust {}, FreeBSD {}", name, value, want);
        checked += 1;
    }
    assert!(checked >= 60, "only {} constants checked", checked);
    // A constant added to src/abi.rs under a FreeBSD name must be added to the list above.
    let listed: Vec<&str> = rust_constants().iter().map(|c| c.0).collect();
    for line in ABI_RS.lines() {
        let Some(rest) = line.trim_start().strip_prefix("pub const ") else {
            continue;
        };
        let name = rest.split(':').next().unwrap().trim();
        let fb = if name == "POSIX2_LINE_MAX" {
            "_POSIX2_LINE_MAX"
        } else {
            name
        };
        if golden.contains_key(fb) {
            assert!(
                listed.contains(&fb),
                "src/abi.rs constant {} is not checked: add it to rust_constants()",
                name
            );
        }
    }
}

/// `#define NAME value` of the hand-written C headers where value is a plain integer literal
/// (possibly in parentheses); expressions and function-like macros are left out.
fn header_defines() -> HashMap<&'static str, i128> {
    let mut defs = HashMap::new();
    for text in C_HEADERS {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            if it.next() != Some("#define") {
                continue;
            }
            let (Some(name), Some(value)) = (it.next(), it.next()) else {
                continue;
            };
            let v = value.trim_start_matches('(').trim_end_matches(')');
            let plain = v.strip_prefix('-').unwrap_or(v);
            let numeric = match plain.strip_prefix("0x") {
                Some(h) => !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()),
                None => !plain.is_empty() && plain.chars().all(|c| c.is_ascii_digit()),
            };
            let whole = it.next().is_none_or(|t| t.starts_with("/*"));
            if !name.contains('(') && numeric && whole {
                defs.insert(name, parse_value(v));
            }
        }
    }
    defs
}

/// One source of truth: a constant that both src/abi.rs and include/ define has one value, even
/// where the golden tables do not list it (TDF_SINTR, for example).
#[test]
fn header_constants_match_rust() {
    let defs = header_defines();
    let mut checked = 0;
    for (name, value) in rust_constants() {
        let Some(&h) = defs.get(name) else {
            continue;
        };
        let same = value == h || (value as u64) == (h as u64);
        assert!(same, "{}: Rust {}, include/ {}", name, value, h);
        checked += 1;
    }
    assert!(defs.contains_key("TDF_SINTR") && defs.contains_key("PS_INMEM"));
    assert!(checked >= 50, "only {} constants checked", checked);
}
