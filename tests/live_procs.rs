//! kvm_getprocs / kvm_getargv / kvm_getenvv on the live system (through the Rust core API).
//! Runs as root: children are spawned with known argv, environment, process group, session,
//! controlling pty, credentials and threads, and every result is compared with what /proc says.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kvm::abi::{self, KinfoProc};
use kvm::proc::linux_procfs::{Options, ProcFs};
use kvm::{ArgvKind, Kvm, OpenArgs};
use rustix::process::Signal;

const HELPER_ENV: &str = "LIVE_PROCS_HELPER";
const P_STOPPED_TRACE: i64 = 0x40000;
const PF_KTHREAD: u64 = 0x0020_0000;

fn open() -> Box<Kvm> {
    Kvm::open(OpenArgs {
        corefile: Some(OsStr::new("/dev/null")),
        ..Default::default()
    })
    .expect("kvm_open of the live system")
}

fn procs(kd: &Kvm, op: i32, arg: i32) -> Vec<KinfoProc> {
    kd.lock()
        .getprocs(op, arg)
        .unwrap_or_else(|e| panic!("getprocs({op:#x}, {arg}): {e}"))
        .to_vec()
}

fn pids_of(rows: &[KinfoProc]) -> BTreeSet<i32> {
    rows.iter().map(|k| k.ki_pid).collect()
}

fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// A child killed and reaped when dropped (also on test failure).
struct Kid(Child);

impl Kid {
    fn spawn(cmd: &mut Command) -> Kid {
        Kid(cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child"))
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: i32, sig: Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        let _ = rustix::process::kill_process(p, sig);
    }
}

/// Kills every process of session `sid` except ourselves (children of a reaped session leader
/// are reparented and must not outlive the test).
fn kill_session(sid: i32) {
    for (pid, f) in all_stats() {
        if field_sid(&f) == sid && pid != std::process::id() as i32 {
            signal(pid, Signal::KILL);
        }
    }
}

/// /proc/PID/stat split independently of the library: (comm, fields 3..) so that index 0 is
/// field 3.
fn stat_of(path: &str) -> Option<(Vec<u8>, Vec<String>)> {
    let raw = std::fs::read(path).ok()?;
    let open = raw.iter().position(|&c| c == b'(')?;
    let close = raw.iter().rposition(|&c| c == b')')?;
    let comm = raw[open + 1..close].to_vec();
    let rest = String::from_utf8_lossy(&raw[close + 1..]).into_owned();
    Some((comm, rest.split_whitespace().map(String::from).collect()))
}

/// Field N (proc(5) numbering, N >= 3) of /proc/PID/stat.
fn field(f: &[String], n: usize) -> i64 {
    f[n - 3]
        .parse::<i64>()
        .unwrap_or_else(|_| f[n - 3].parse::<u64>().unwrap() as i64)
}

fn all_stats() -> Vec<(i32, Vec<String>)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            if let Some((_, f)) = stat_of(&format!("/proc/{pid}/stat")) {
                v.push((pid, f));
            }
        }
    }
    v
}

fn status_of(pid: i32) -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` has exec'd `comm` (after fork the child still shows our name).
fn wait_comm(pid: i32, comm: &str) {
    wait_until(&format!("pid {pid} to become {comm}"), || {
        stat_of(&format!("/proc/{pid}/stat")).is_some_and(|(c, _)| c == comm.as_bytes())
    });
}

fn sleeper() -> Command {
    let mut c = Command::new("sleep");
    c.arg("1000");
    c
}

#[test]
fn pgrp_session_uid_gid_filters_find_exact_sets() {
    let kd = open();
    // Process group of three.
    let a = Kid::spawn(sleeper().process_group(0));
    let b = Kid::spawn(sleeper().process_group(a.pid()));
    let c = Kid::spawn(sleeper().process_group(a.pid()));
    // A session of two: setsid execs sh, which starts a background sleep and waits.
    let s = Kid::spawn(Command::new("setsid").args(["sh", "-c", "sleep 1000 & sleep 1000; :"]));
    // Credentials no other process on the machine has.
    let u = Kid::spawn(sleeper().uid(54321).gid(54322));
    for k in [&a, &b, &c, &u] {
        wait_comm(k.pid(), "sleep");
    }
    let sid = s.pid();
    wait_until("the session's two sleeps", || {
        all_stats()
            .iter()
            .filter(|(_, f)| field_sid(f) == sid)
            .count()
            == 3
    });
    let expect_session: BTreeSet<i32> = all_stats()
        .into_iter()
        .filter(|(_, f)| field_sid(f) == sid)
        .map(|(p, _)| p)
        .collect();

    let want: BTreeSet<i32> = [a.pid(), b.pid(), c.pid()].into();
    assert_eq!(pids_of(&procs(&kd, abi::KERN_PROC_PGRP, a.pid())), want);
    let rows = procs(&kd, abi::KERN_PROC_SESSION, sid);
    assert_eq!(pids_of(&rows), expect_session);
    assert_eq!(rows.len(), 3, "sh + two sleeps in the new session");
    let leader = rows.iter().find(|k| k.ki_pid == sid).unwrap();
    assert_ne!(leader.ki_kiflag & abi::KI_SLEADER, 0);
    assert!(rows
        .iter()
        .filter(|k| k.ki_pid != sid)
        .all(|k| k.ki_kiflag & abi::KI_SLEADER == 0));

    for (op, arg) in [
        (abi::KERN_PROC_UID, 54321),
        (abi::KERN_PROC_RUID, 54321),
        (abi::KERN_PROC_GID, 54322),
        (abi::KERN_PROC_RGID, 54322),
    ] {
        let rows = procs(&kd, op, arg);
        assert_eq!(pids_of(&rows), [u.pid()].into(), "op {op}");
    }
    let k = procs(&kd, abi::KERN_PROC_PID, u.pid())[0];
    assert_eq!((k.ki_uid, k.ki_ruid, k.ki_svuid), (54321, 54321, 54321));
    assert_eq!((k.ki_rgid, k.ki_svgid), (54322, 54322));
    assert_eq!(
        (k.ki_ngroups, k.ki_groups[0]),
        (1, 54322),
        "groups[0] is the egid"
    );
    // With INC_THREAD the same single-threaded processes give one row each.
    let rows = procs(
        &kd,
        abi::KERN_PROC_PGRP | abi::KERN_PROC_INC_THREAD,
        a.pid(),
    );
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|k| k.ki_tid == k.ki_pid));
    drop(s);
    kill_session(sid);
}

/// Session id (field 6) of a `stat_of` row.
fn field_sid(f: &[String]) -> i32 {
    f.get(3).and_then(|s| s.parse().ok()).unwrap_or(-1)
}

#[test]
fn tty_filter_and_controlling_terminal() {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("posix_openpt");
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let name = name.to_str().unwrap().to_string();
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .unwrap();
    let rdev = slave.metadata().unwrap().rdev();
    // setsid --ctty makes the pty (stdin) the new session's controlling terminal.
    let kid = Kid(Command::new("setsid")
        .args(["-c", "sleep", "1000"])
        .stdin(slave)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    wait_comm(kid.pid(), "sleep");
    wait_until("the pty to become the controlling tty", || {
        stat_of(&format!("/proc/{}/stat", kid.pid())).is_some_and(|(_, f)| field(&f, 7) != 0)
    });
    let kd = open();
    let rows = procs(&kd, abi::KERN_PROC_TTY, rdev as i32);
    assert_eq!(pids_of(&rows), [kid.pid()].into(), "tty {name}");
    let k = rows[0];
    assert_eq!(k.ki_tdev, rdev, "ki_tdev is the st_rdev of {name}");
    assert_eq!(k.ki_tdev_freebsd11, rdev as u32);
    assert_ne!(k.ki_flag & abi::P_CONTROLT, 0);
    assert_ne!(k.ki_kiflag & abi::KI_CTTY, 0);
    assert_eq!(k.ki_tsid, kid.pid());
    assert_eq!(k.ki_sid, kid.pid());
    let (_, f) = stat_of(&format!("/proc/{}/stat", kid.pid())).unwrap();
    assert_eq!(k.ki_tpgid as i64, field(&f, 8));
    // A NODEV arg matches nothing (FreeBSD's live kernel behaviour).
    assert!(procs(&kd, abi::KERN_PROC_TTY, -1).is_empty());
    // Processes without a terminal carry NODEV and no P_CONTROLT.
    let me = procs(&kd, abi::KERN_PROC_PID, std::process::id() as i32)[0];
    let (_, mf) = stat_of("/proc/self/stat").unwrap();
    if field(&mf, 7) == 0 {
        assert_eq!(me.ki_tdev, abi::NODEV);
        assert_eq!(me.ki_flag & abi::P_CONTROLT, 0);
    }
    drop(master);
}

#[test]
fn fields_equal_proc() {
    let kid = Kid::spawn(Command::new("nice").args(["-n", "5", "sleep", "1000"]));
    wait_comm(kid.pid(), "sleep");
    wait_until("sleep to block in nanosleep", || {
        std::fs::read_to_string(format!("/proc/{}/wchan", kid.pid()))
            .is_ok_and(|w| w.contains("nanosleep"))
    });
    let pid = kid.pid();
    let kd = open();
    let k = procs(&kd, abi::KERN_PROC_PID, pid)[0];
    let (comm, f) = stat_of(&format!("/proc/{pid}/stat")).unwrap();
    let st = status_of(pid);
    let hz = 100; // USER_HZ on x86_64
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime ").map(|v| v.trim().parse().unwrap()))
        .unwrap();
    assert_eq!(k.ki_structsize, 1088);
    assert_eq!(k.ki_pid, pid);
    assert_eq!(k.ki_tid, pid);
    assert_eq!(cstr(&k.ki_comm), &comm[..]);
    assert_eq!(cstr(&k.ki_tdname), &comm[..]);
    assert_eq!(k.ki_ppid as i64, field(&f, 4));
    assert_eq!(k.ki_pgid as i64, field(&f, 5));
    assert_eq!(k.ki_sid as i64, field(&f, 6));
    assert_eq!(k.ki_stat, abi::SSLEEP);
    assert_eq!(k.ki_tdflags, 0x8, "TDF_SINTR for an interruptible sleep");
    // `nice -n 5` adds to the niceness the test itself runs with (make check may run under nice).
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own_nice: i64 = own[own.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(k.ki_nice as i64, (own_nice + 5).min(19));
    assert_eq!(k.ki_nice as i64, field(&f, 19));
    assert_eq!(k.ki_numthreads as i64, field(&f, 20));
    assert_eq!(k.ki_size as i64, field(&f, 23));
    // Resident pages: status's exact VmRSS (stat's rss is an approximate counter sum on
    // recent kernels).
    let status = std::fs::read_to_string(format!("/proc/{}/status", k.ki_pid)).unwrap();
    let rss_kb: i64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        .unwrap();
    let page_kb = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64 / 1024;
    assert_eq!(k.ki_rssize, rss_kb / page_kb);
    let start = field(&f, 22);
    assert_eq!(k.ki_start.tv_sec, btime + start / hz);
    assert_eq!(k.ki_start.tv_usec, (start % hz) * 10_000);
    assert_eq!(
        k.ki_runtime as i64,
        (field(&f, 14) + field(&f, 15)) * 10_000
    );
    assert_eq!(k.ki_lastcpu as i64, field(&f, 39));
    assert_eq!(k.ki_oncpu, abi::NOCPU);
    let uid: Vec<u32> = st["Uid"]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let gid: Vec<u32> = st["Gid"]
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!([k.ki_ruid, k.ki_uid, k.ki_svuid], [uid[0], uid[1], uid[2]]);
    assert_eq!(
        [k.ki_rgid, k.ki_groups[0], k.ki_svgid],
        [gid[0], gid[1], gid[2]]
    );
    let hexmask = |key: &str| u64::from_str_radix(&st[key], 16).unwrap();
    assert_eq!(
        k.ki_sigignore,
        abi::Sigset::from_linux_mask(hexmask("SigIgn"))
    );
    assert_eq!(
        k.ki_sigcatch,
        abi::Sigset::from_linux_mask(hexmask("SigCgt"))
    );
    assert_eq!(
        k.ki_sigmask,
        abi::Sigset::from_linux_mask(hexmask("SigBlk"))
    );
    let kb = |key: &str| {
        st[key]
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };
    assert_eq!(k.ki_rusage.ru_maxrss, kb("VmHWM"));
    assert_eq!(k.ki_tsize, kb("VmExe") * 1024 / 4096);
    assert_eq!(k.ki_ssize, kb("VmStk") * 1024 / 4096);
    assert_eq!(k.ki_rusage.ru_minflt, field(&f, 10));
    assert_ne!(k.ki_flag & abi::P_INMEM, 0);
    assert_eq!(k.ki_flag & (abi::P_SYSTEM | abi::P_KPROC), 0);
    assert_eq!(k.ki_sflag, 1, "PS_INMEM");
    assert_eq!(k.ki_pri.pri_class, abi::PRI_TIMESHARE);
    assert!(k.ki_swtime > 0);
    assert_eq!(cstr(&k.ki_emul), b"Linux ELF64");
    assert_eq!(k.ki_udata, 0);
    assert_eq!(k.ki_paddr, 0);
    // sleep(1) blocks in clock_nanosleep: a wait channel and FreeBSD's "nanslp".
    assert_ne!(k.ki_wchan, 0);
    assert_eq!(cstr(&k.ki_wmesg), b"nanslp");
    // ki_start is bit-identical across calls (top matches records by it).
    for _ in 0..3 {
        let again = procs(&kd, abi::KERN_PROC_PROC, 0);
        let k2 = again.iter().find(|x| x.ki_pid == pid).unwrap();
        assert_eq!(k2.ki_start, k.ki_start);
    }
}

#[test]
fn kernel_threads_are_system_processes() {
    let kd = open();
    let rows = procs(&kd, abi::KERN_PROC_PROC, 0);
    let mut seen = 0;
    for k in &rows {
        let Some((_, f)) = stat_of(&format!("/proc/{}/stat", k.ki_pid)) else {
            continue;
        };
        let kthread = field(&f, 9) as u64 & PF_KTHREAD != 0;
        let sys = k.ki_flag & (abi::P_SYSTEM | abi::P_KPROC) == abi::P_SYSTEM | abi::P_KPROC;
        assert_eq!(kthread, sys, "pid {}", k.ki_pid);
        if kthread {
            seen += 1;
            let argv = kd.lock().getargv(k, ArgvKind::Args, 0).unwrap().is_none();
            assert!(argv, "kernel thread {} has no argv", k.ki_pid);
        }
    }
    if seen == 0 {
        println!("skipped: no kernel threads visible in this /proc");
    }
}

#[test]
fn records_descending_and_well_formed() {
    let kd = open();
    for op in [abi::KERN_PROC_PROC, abi::KERN_PROC_ALL] {
        let rows = procs(&kd, op, 0);
        assert!(rows.len() > 1);
        for w in rows.windows(2) {
            assert!(
                w[0].ki_pid > w[1].ki_pid
                    || (w[0].ki_pid == w[1].ki_pid && w[0].ki_tid < w[1].ki_tid),
                "order {} {} / {} {}",
                w[0].ki_pid,
                w[0].ki_tid,
                w[1].ki_pid,
                w[1].ki_tid
            );
        }
        for k in &rows {
            assert_eq!(k.ki_structsize, 1088);
            assert!(k.ki_pid > 0 && k.ki_tid > 0);
            assert!(!cstr(&k.ki_comm).is_empty());
            assert_eq!(k.ki_udata, 0);
            if k.ki_stat != abi::SZOMB {
                assert!(k.ki_swtime > 0);
                assert_ne!(k.ki_flag & abi::P_INMEM, 0);
            }
        }
    }
    let me = std::process::id() as i32;
    assert!(pids_of(&procs(&kd, abi::KERN_PROC_PROC, 0)).contains(&me));
}

#[test]
fn threads_give_one_row_each() {
    let exe = std::env::current_exe().unwrap();
    let kid = Kid::spawn(
        Command::new(exe)
            .args(["--exact", "helper_child", "--ignored", "--test-threads=1"])
            .env(HELPER_ENV, "threads"),
    );
    let pid = kid.pid();
    let task_ids = || -> BTreeSet<i32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until("the helper's worker threads", || {
        let names: Vec<String> = task_ids()
            .iter()
            .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/task/{t}/comm")).ok())
            .collect();
        names.iter().filter(|n| n.starts_with("kvmworker")).count() == 3
    });
    let tids = task_ids();
    assert!(tids.len() >= 4);
    let kd = open();
    let rows = procs(&kd, abi::KERN_PROC_PID | abi::KERN_PROC_INC_THREAD, pid);
    let got: BTreeSet<i32> = rows.iter().map(|k| k.ki_tid).collect();
    assert_eq!(rows.len(), got.len(), "distinct ki_tid");
    assert_eq!(got, tids);
    assert!(rows
        .iter()
        .all(|k| k.ki_pid == pid && k.ki_numthreads as usize == tids.len()));
    for k in &rows {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{}/comm", k.ki_tid)).unwrap();
        assert_eq!(cstr(&k.ki_tdname), comm.trim_end().as_bytes());
        assert_eq!(
            cstr(&k.ki_comm),
            cstr(&rows[0].ki_comm),
            "ki_comm is the process's"
        );
    }
    let names: BTreeSet<&[u8]> = rows.iter().map(|k| cstr(&k.ki_tdname)).collect();
    for n in [&b"kvmworker0"[..], b"kvmworker1", b"kvmworker2"] {
        assert!(names.contains(n));
    }
    // KERN_PROC_ALL expands threads too; KERN_PROC_PROC and plain PID do not.
    let all = procs(&kd, abi::KERN_PROC_ALL, 0);
    assert_eq!(all.iter().filter(|k| k.ki_pid == pid).count(), tids.len());
    let one = procs(&kd, abi::KERN_PROC_PROC, 0);
    assert_eq!(one.iter().filter(|k| k.ki_pid == pid).count(), 1);
    let p = procs(&kd, abi::KERN_PROC_PID, pid);
    assert_eq!(
        (p.len(), p[0].ki_tid, p[0].ki_numthreads as usize),
        (1, pid, tids.len())
    );
    // A non-leader thread id is not a process id (FreeBSD: ESRCH).
    let other = *tids.iter().find(|&&t| t != pid).unwrap();
    let e = kd
        .lock()
        .getprocs(abi::KERN_PROC_PID, other)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.errno(), libc::ESRCH);
}

/// Not a test: the body of helper processes started by the tests above (selected by env).
#[test]
#[ignore]
fn helper_child() {
    match std::env::var(HELPER_ENV).as_deref() {
        Ok("threads") => {
            for i in 0..3 {
                std::thread::Builder::new()
                    .name(format!("kvmworker{i}"))
                    .spawn(|| std::thread::sleep(Duration::from_secs(1000)))
                    .unwrap();
            }
            std::thread::sleep(Duration::from_secs(1000));
        }
        Ok("env_of_pid1") => {
            let kd = open();
            let rows = procs(&kd, abi::KERN_PROC_PID, 1);
            let mut st = kd.lock();
            let line = match st.getargv(&rows[0], ArgvKind::Env, 0) {
                Ok(v) => format!("RESULT ok {}", v.is_some()),
                Err(e) => format!("RESULT err {} {}", e.errno(), e),
            };
            println!("{line}");
        }
        _ => {}
    }
}

/// The strings of a kvm_getargv result (pointers are addresses into `buf`).
fn strings(kd: &Kvm, kp: &KinfoProc, kind: ArgvKind, nchr: i32) -> Option<Vec<Vec<u8>>> {
    let mut st = kd.lock();
    let v = st.getargv(kp, kind, nchr).unwrap()?;
    let base = v.buf.as_ptr() as usize;
    assert_eq!(*v.ptrs.last().unwrap(), 0, "NULL-terminated vector");
    let out = v.ptrs[..v.ptrs.len() - 1]
        .iter()
        .map(|&p| cstr(&v.buf[p - base..]).to_vec())
        .collect();
    Some(out)
}

fn split_like_kvm(raw: &[u8], nchr: usize) -> Vec<Vec<u8>> {
    let mut b = raw.to_vec();
    if nchr != 0 && b.len() >= nchr {
        b.truncate(nchr);
        *b.last_mut().unwrap() = 0;
    }
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect::<Vec<_>>()
        [..b.iter().filter(|&&c| c == 0).count()]
        .to_vec()
}

#[test]
fn argv_and_environment_with_nchr_limits() {
    let kid = Kid::spawn(
        Command::new("sh")
            .args([
                "-c",
                "sleep 1000; :",
                "arg0",
                "",
                "arg with space",
                "",
                "last",
            ])
            .env_clear()
            .env("KVMTEST_A", "1")
            .env("KVMTEST_EMPTY", ""),
    );
    let pid = kid.pid();
    wait_until("sh to start", || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sh\0-c\0"))
    });
    let kd = open();
    let k = procs(&kd, abi::KERN_PROC_PID, pid)[0];
    let full: Vec<&[u8]> = vec![
        b"sh",
        b"-c",
        b"sleep 1000; :",
        b"arg0",
        b"",
        b"arg with space",
        b"",
        b"last",
    ];
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 0).unwrap(),
        full,
        "nchr 0 = no limit, empty strings kept"
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, raw.len() as i32 + 100).unwrap(),
        full
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, raw.len() as i32).unwrap(),
        full
    );
    // nchr counts NUL bytes; the string that overflows is cut and the vector ends there.
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 1).unwrap(),
        vec![b"".to_vec()]
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 3).unwrap(),
        vec![b"sh".to_vec()]
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 5).unwrap(),
        vec![b"sh".to_vec(), b"-".to_vec()]
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 6).unwrap(),
        vec![b"sh".to_vec(), b"-c".to_vec()]
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Args, 12).unwrap(),
        vec![b"sh".to_vec(), b"-c".to_vec(), b"sleep".to_vec()]
    );
    for n in 1..=raw.len() + 2 {
        let got = strings(&kd, &k, ArgvKind::Args, n as i32).unwrap();
        assert_eq!(got, split_like_kvm(&raw, n), "nchr {n}");
        let bytes: usize = got.iter().map(|s| s.len() + 1).sum();
        assert!(bytes <= n, "nchr {n}: {bytes} bytes including NULs");
    }
    let env = strings(&kd, &k, ArgvKind::Env, 0).unwrap();
    assert_eq!(
        env,
        vec![b"KVMTEST_A=1".to_vec(), b"KVMTEST_EMPTY=".to_vec()]
    );
    assert_eq!(
        strings(&kd, &k, ArgvKind::Env, 5).unwrap(),
        vec![b"KVMT".to_vec()]
    );
}

#[test]
fn zombie_is_reported() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    wait_until("the child to become a zombie", || {
        stat_of(&format!("/proc/{pid}/stat")).is_some_and(|(_, f)| f[0] == "Z")
    });
    let kd = open();
    let rows = procs(&kd, abi::KERN_PROC_PID, pid);
    let k = rows[0];
    assert_eq!(k.ki_stat, abi::SZOMB);
    assert_ne!(k.ki_flag & abi::P_WEXIT, 0);
    assert_eq!(k.ki_ppid, std::process::id() as i32);
    assert_eq!(k.ki_wchan, 0);
    assert!(pids_of(&procs(&kd, abi::KERN_PROC_PROC, 0)).contains(&pid));
    assert!(
        kd.lock().getargv(&k, ArgvKind::Args, 0).unwrap().is_none(),
        "a zombie has no argv"
    );
    child.wait().unwrap();
}

#[test]
fn stopped_and_traced_states() {
    let kid = Kid::spawn(&mut sleeper());
    let pid = kid.pid();
    wait_comm(pid, "sleep");
    signal(pid, Signal::STOP);
    wait_until("the stop", || {
        stat_of(&format!("/proc/{pid}/stat")).is_some_and(|(_, f)| f[0] == "T")
    });
    let kd = open();
    let k = procs(&kd, abi::KERN_PROC_PID, pid)[0];
    assert_eq!(k.ki_stat, abi::SSTOP);
    assert_ne!(k.ki_flag & abi::P_STOPPED_SIG, 0);
    assert_eq!(k.ki_flag & P_STOPPED_TRACE, 0);
    signal(pid, Signal::CONT);
}

#[test]
fn error_paths() {
    let kd = open();
    for op in [7, 9, 12, 99, -1, 0x20] {
        let e = kd.lock().getprocs(op, 0).map(|_| ()).unwrap_err();
        assert_eq!(e.errno(), libc::EINVAL, "op {op}");
        assert!(e.to_string().contains("invalid op"), "{e}");
    }
    let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in [pid_max + 1, i32::MAX, 0, -5] {
        let e = kd
            .lock()
            .getprocs(abi::KERN_PROC_PID, pid)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(e.errno(), libc::ESRCH, "pid {pid}");
        assert_eq!(e.to_string(), "kvm_getprocs: No such process");
    }
    // argv of a process that does not exist: an error, not an empty vector.
    let mut kp = KinfoProc::zeroed();
    kp.ki_pid = pid_max + 1;
    let e = kd
        .lock()
        .getargv(&kp, ArgvKind::Args, 0)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.errno(), libc::ESRCH);
    // Empty result of a filter op: Ok and empty (not an error).
    assert!(procs(&kd, abi::KERN_PROC_UID, 1_999_999_999).is_empty());
}

#[test]
fn other_users_environment_is_refused() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "helper_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, "env_of_pid1")
        .uid(65534)
        .gid(65534)
        .output();
    let out = match out {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            println!("skipped: the test binary is not executable by uid 65534 ({e})");
            return;
        }
        r => r.unwrap(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .find("RESULT")
        .and_then(|i| text[i..].lines().next())
        .unwrap_or_else(|| panic!("helper said: {text}"));
    assert!(
        line.starts_with(&format!("RESULT err {} ", libc::EACCES)),
        "{line}"
    );
    assert!(
        line.contains("/proc/1/environ: Permission denied"),
        "{line}"
    );
}

#[test]
fn parallel_and_serial_reading_agree() {
    // Enough processes for the parallel path (>= 256).
    let kids: Vec<Kid> = (0..300).map(|_| Kid::spawn(&mut sleeper())).collect();
    for k in &kids {
        // Settled: blocked in the nanosleep that lasts the whole test (stable state and wchan).
        let pid = k.pid();
        wait_until("sleep to block in nanosleep", || {
            std::fs::read_to_string(format!("/proc/{pid}/wchan"))
                .is_ok_and(|w| w.contains("nanosleep"))
        });
    }
    let mut pf = ProcFs::new();
    let ser = pf
        .getprocs_with(
            abi::KERN_PROC_PROC,
            0,
            Options {
                serial: true,
                wchan: true,
                workers: 0,
            },
        )
        .unwrap();
    let par = pf
        .getprocs_with(
            abi::KERN_PROC_PROC,
            0,
            Options {
                serial: false,
                wchan: true,
                workers: 2,
            },
        )
        .unwrap();
    let ours: BTreeSet<i32> = kids.iter().map(Kid::pid).collect();
    for rows in [&ser, &par] {
        assert!(ours.is_subset(&pids_of(rows)));
        assert!(rows.windows(2).all(|w| w[0].ki_pid > w[1].ki_pid));
    }
    // A serial read after the parallel one too: a sleeper's wait channel can change for a moment
    // (timer migration under load), so the parallel row must equal one of the serial reads.
    let ser_after = pf
        .getprocs_with(
            abi::KERN_PROC_PROC,
            0,
            Options {
                serial: true,
                wchan: true,
                workers: 0,
            },
        )
        .unwrap();
    let by_pid: HashMap<i32, &KinfoProc> = ser.iter().map(|k| (k.ki_pid, k)).collect();
    let by_pid_after: HashMap<i32, &KinfoProc> = ser_after.iter().map(|k| (k.ki_pid, k)).collect();
    for k in par.iter().filter(|k| ours.contains(&k.ki_pid)) {
        let s = by_pid[&k.ki_pid];
        assert_eq!(
            (k.ki_ppid, k.ki_pgid, k.ki_sid, k.ki_uid, k.ki_start, k.ki_comm),
            (s.ki_ppid, s.ki_pgid, s.ki_sid, s.ki_uid, s.ki_start, s.ki_comm)
        );
        let sched = |r: &KinfoProc| (r.ki_stat, r.ki_wchan, r.ki_wmesg);
        let a = by_pid_after[&k.ki_pid];
        assert!(
            sched(k) == sched(s) || sched(k) == sched(a),
            "pid {}: parallel {:?} vs serial {:?} / {:?}",
            k.ki_pid,
            sched(k),
            sched(s),
            sched(a)
        );
    }
    let nowchan = pf
        .getprocs_with(
            abi::KERN_PROC_PROC,
            0,
            Options {
                serial: false,
                wchan: false,
                workers: 2,
            },
        )
        .unwrap();
    assert!(nowchan
        .iter()
        .filter(|k| ours.contains(&k.ki_pid))
        .all(|k| k.ki_wchan == 0));
    let threads = pf
        .getprocs_with(
            abi::KERN_PROC_ALL,
            0,
            Options {
                serial: false,
                wchan: true,
                workers: 2,
            },
        )
        .unwrap();
    assert!(ours.is_subset(&pids_of(&threads)));
}

#[test]
fn churn_never_errors_or_tears() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while n < 3000 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Batches of short-lived children that exit while being listed.
                let batch: Vec<Child> = (0..20)
                    .filter_map(|_| Command::new("true").stdout(Stdio::null()).spawn().ok())
                    .collect();
                n += batch.len();
                for mut c in batch {
                    let _ = c.wait();
                }
            }
            n
        })
    };
    let kd = open();
    let mut calls = 0;
    while !spawner.is_finished() {
        for op in [abi::KERN_PROC_PROC, abi::KERN_PROC_ALL, abi::KERN_PROC_UID] {
            let rows = procs(&kd, op, 0);
            calls += 1;
            for k in &rows {
                assert_eq!(k.ki_structsize, 1088);
                assert!(k.ki_pid > 0 && k.ki_tid > 0);
                assert!(!cstr(&k.ki_comm).is_empty(), "pid {}", k.ki_pid);
                assert!((abi::SIDL..=abi::SLOCK).contains(&k.ki_stat));
                if op == abi::KERN_PROC_UID {
                    assert_eq!(k.ki_uid, 0);
                }
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let spawned = spawner.join().unwrap();
    assert!(spawned >= 1000, "only {spawned} children spawned");
    assert!(calls > 3);
    println!("churn: {spawned} children, {calls} kvm_getprocs calls");
}

#[test]
fn zombie_leader_with_live_thread_reports_the_thread_state() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target").join("test-peers");
    std::fs::create_dir_all(&out).unwrap();
    let exe = out.join("zombie_leader");
    let st = Command::new("cc")
        .args(["-O2", "-pthread", "-o"])
        .arg(&exe)
        .arg(root.join("tests/peers/zombie_leader.c"))
        .status();
    if !st.is_ok_and(|s| s.success()) {
        println!("skipped: no C compiler to build tests/peers/zombie_leader.c");
        return;
    }
    let kid = Kid::spawn(&mut Command::new(&exe));
    let pid = kid.pid();
    // The second thread must also have reached pause(): until then it shows R, not S.
    let other_thread_sleeps = || {
        std::fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|dir| {
            dir.flatten()
                .filter(|e| e.file_name() != *pid.to_string().as_str())
                .any(|e| {
                    stat_of(&format!("{}/stat", e.path().display()))
                        .is_some_and(|(_, f)| f[0] == "S")
                })
        })
    };
    wait_until("the leader to exit while its thread sleeps", || {
        stat_of(&format!("/proc/{pid}/stat"))
            .is_some_and(|(_, f)| f[0] == "Z" && field(&f, 20) == 2)
            && other_thread_sleeps()
    });
    let kd = open();
    let k = procs(&kd, abi::KERN_PROC_PID, pid)[0];
    assert_eq!(k.ki_stat, abi::SSLEEP, "the live thread's state, not SZOMB");
    assert_eq!(k.ki_flag & abi::P_WEXIT, 0);
    assert_eq!(k.ki_numthreads, 2);
    let rows = procs(&kd, abi::KERN_PROC_PID | abi::KERN_PROC_INC_THREAD, pid);
    assert_eq!(rows.len(), 2);
    let leader = rows.iter().find(|r| r.ki_tid == pid).unwrap();
    let other = rows.iter().find(|r| r.ki_tid != pid).unwrap();
    assert_eq!(leader.ki_stat, abi::SZOMB);
    assert_eq!(other.ki_stat, abi::SSLEEP);
}

#[test]
fn long_command_names_get_freebsd_length() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("test-peers");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kvmtest_long_command_name");
    let _ = std::fs::remove_file(&link);
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap();
    std::os::unix::fs::symlink(sleep, &link).unwrap();
    let kid = Kid::spawn(Command::new(&link).arg("1000"));
    let pid = kid.pid();
    wait_comm(pid, "kvmtest_long_co");
    // exec sets the name before the argument area: wait for both.
    wait_until("argv of the new image", || {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
    });
    let kd = open();
    let k = procs(&kd, abi::KERN_PROC_PID, pid)[0];
    assert_eq!(
        cstr(&k.ki_comm),
        b"kvmtest_long_comman",
        "19 bytes, as FreeBSD keeps"
    );
    assert_eq!(
        cstr(&k.ki_tdname),
        b"kvmtest_long_co",
        "the thread name stays Linux's"
    );
    // A 15-byte name whose argv[0] says something else keeps its 15 bytes.
    let link15 = dir.join("kvmtest_other15");
    let _ = std::fs::remove_file(&link15);
    std::os::unix::fs::symlink(sleep, &link15).unwrap();
    let other = Kid::spawn(
        Command::new(&link15)
            .arg0("unrelated_argv0_name")
            .arg("1000"),
    );
    wait_comm(other.pid(), "kvmtest_other15");
    let o = procs(&kd, abi::KERN_PROC_PID, other.pid())[0];
    assert_eq!(cstr(&o.ki_comm), b"kvmtest_other15");
}
