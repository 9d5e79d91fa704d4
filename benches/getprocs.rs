//! Benchmark: one full kvm_getprocs(KERN_PROC_PROC) pass over the live system with 10,000 extra
//! idle processes, against peers measured in the same run:
//!   * a minimal C reader of /proc/PID/stat + status (+ wchan of blocked tasks),
//!   * procps libproc2 reaping the same fields (needs libproc2-dev).
//! Prints wall and CPU time (median of several passes) and the ratios. The peers are compiled
//! with `cc` at run time from benches/peers/. Set KVM_BENCH_PROCS to change the number of idle
//! processes, KVM_BENCH_PASSES the number of measured passes.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Instant;

use kvm::abi::{KinfoProc, KERN_PROC_PROC};
use kvm::proc::linux_procfs::{Options, ProcFs};
use kvm::{Kvm, OpenArgs};
use rustix::time::{clock_gettime, ClockId};

const ROW: usize = std::mem::size_of::<KinfoProc>();

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cpu_ms() -> f64 {
    let t = clock_gettime(ClockId::ProcessCPUTime);
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Compiles a peer program into target/bench-peers; None (with the reason printed) on failure.
fn build_peer(name: &str, libs: &[&str]) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target").join("bench-peers");
    std::fs::create_dir_all(&out_dir).ok()?;
    let out = out_dir.join(name);
    let src = root.join("benches").join("peers").join(format!("{name}.c"));
    let st = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .args(libs)
        .status();
    match st {
        Ok(s) if s.success() => Some(out),
        other => {
            println!("peer {name}: could not compile ({other:?}); skipped");
            None
        }
    }
}

/// The idle processes: killed and reaped when dropped (and by PR_SET_PDEATHSIG if we crash).
struct Idle {
    child: Child,
    stdin: Option<ChildStdin>,
    count: usize,
}

impl Idle {
    fn start(exe: &Path, n: usize) -> Idle {
        let mut child = Command::new(exe)
            .arg(n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start spawn_idle");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let count = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Idle {
            child,
            stdin,
            count,
        }
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs a peer and parses "count=N wchans=W wall_ms=X cpu_ms=Y".
fn run_peer(exe: &Path, mode: &str, passes: usize) -> Option<(usize, usize, f64, f64)> {
    let out = Command::new(exe)
        .arg(mode)
        .arg(passes.to_string())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
    };
    Some((
        get("count=")? as usize,
        get("wchans=")? as usize,
        get("wall_ms=")?,
        get("cpu_ms=")?,
    ))
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

struct Ours {
    rows: usize,
    cap: usize,
    wall: f64,
    cpu: f64,
}

/// `passes` full KERN_PROC_PROC passes through the public handle (after one warm-up pass).
fn measure_kvm(passes: usize) -> Ours {
    let kd = Kvm::open(OpenArgs {
        corefile: Some(OsStr::new("/dev/null")),
        ..Default::default()
    })
    .expect("kvm_open");
    let mut st = kd.lock();
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let (mut rows, mut cap) = (0, 0);
    for p in 0..=passes {
        let (w0, c0) = (Instant::now(), cpu_ms());
        let r = st.getprocs(KERN_PROC_PROC, 0).expect("kvm_getprocs");
        rows = r.len();
        let (w, c) = (w0.elapsed().as_secs_f64() * 1e3, cpu_ms() - c0);
        if p > 0 {
            walls.push(w);
            cpus.push(c);
        }
    }
    drop(st);
    // Capacity of the array the handle returned (the library's own storage).
    let mut pf = ProcFs::new();
    if let Ok(v) = pf.getprocs_with(KERN_PROC_PROC, 0, Options::from_env()) {
        cap = v.capacity();
    }
    Ours {
        rows,
        cap,
        wall: median(&mut walls),
        cpu: median(&mut cpus),
    }
}

fn main() {
    // `cargo bench` passes --bench; a plain `cargo test` run of benches passes nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_num("KVM_BENCH_PROCS", 10_000);
    let passes = env_num("KVM_BENCH_PASSES", 7).clamp(1, 64);
    let Some(spawner) = build_peer("spawn_idle", &[]) else {
        println!("skipped: cannot build the idle-process spawner");
        return;
    };
    let plain = build_peer("plain_c_reader", &[]);
    let libproc2 = build_peer("libproc2_peer", &["-lproc2"]);

    let pid_max: usize = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(32768);
    let existing = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
        .unwrap_or(0);
    let n = n.min(pid_max.saturating_sub(existing + 1000));
    let t = Instant::now();
    let idle = Idle::start(&spawner, n);
    println!(
        "setup: {} idle processes spawned in {:.1} s ({} existed; pid_max {pid_max}); {passes} measured passes each",
        idle.count,
        t.elapsed().as_secs_f64(),
        existing
    );
    if idle.count < n {
        println!(
            "warning: only {} of {n} idle processes could be created",
            idle.count
        );
    }

    let hwm0 = vm_hwm_kb();
    std::env::remove_var("LIBKVM_SERIAL");
    std::env::remove_var("LIBKVM_LINUX_NOWCHAN");
    let par = measure_kvm(passes);
    let hwm1 = vm_hwm_kb();
    std::env::set_var("LIBKVM_SERIAL", "1");
    let ser = measure_kvm(passes);
    std::env::set_var("LIBKVM_LINUX_NOWCHAN", "1");
    let ser_nw = measure_kvm(passes);
    std::env::remove_var("LIBKVM_SERIAL");
    let par_nw = measure_kvm(passes);
    std::env::remove_var("LIBKVM_LINUX_NOWCHAN");

    let pc_w = plain.as_deref().and_then(|p| run_peer(p, "wchan", passes));
    let pc = plain
        .as_deref()
        .and_then(|p| run_peer(p, "nowchan", passes));
    let lp_w = libproc2
        .as_deref()
        .and_then(|p| run_peer(p, "wchan", passes));
    let lp = libproc2
        .as_deref()
        .and_then(|p| run_peer(p, "nowchan", passes));

    println!();
    println!(
        "{:<44} {:>7} {:>10} {:>10}",
        "reader (one full pass, median)", "rows", "wall ms", "cpu ms"
    );
    let line = |name: &str, rows: usize, w: f64, c: f64| {
        println!("{name:<44} {rows:>7} {w:>10.1} {c:>10.1}")
    };
    line("libkvm parallel (default)", par.rows, par.wall, par.cpu);
    line(
        "libkvm serial (LIBKVM_SERIAL=1)",
        ser.rows,
        ser.wall,
        ser.cpu,
    );
    line(
        "libkvm parallel, no wchan",
        par_nw.rows,
        par_nw.wall,
        par_nw.cpu,
    );
    line(
        "libkvm serial, no wchan",
        ser_nw.rows,
        ser_nw.wall,
        ser_nw.cpu,
    );
    if let Some((c, wc, w, cpu)) = pc_w {
        line(
            &format!("plain C stat+status+wchan ({wc} wchan)"),
            c,
            w,
            cpu,
        );
    }
    if let Some((c, _, w, cpu)) = pc {
        line("plain C stat+status", c, w, cpu);
    }
    if let Some((c, _, w, cpu)) = lp_w {
        line("libproc2 stat+status+wchan", c, w, cpu);
    }
    if let Some((c, _, w, cpu)) = lp {
        line("libproc2 stat+status", c, w, cpu);
    }

    println!();
    if let Some((_, _, _, c)) = pc_w {
        println!(
            "CPU time vs plain C (with wchan):   parallel {:.3}x, serial {:.3}x  (target <= 1.1x)",
            par.cpu / c,
            ser.cpu / c
        );
    }
    if let Some((_, _, _, c)) = pc {
        println!(
            "CPU time vs plain C (no wchan):     parallel {:.3}x, serial {:.3}x  (target <= 1.1x)",
            par_nw.cpu / c,
            ser_nw.cpu / c
        );
    }
    if let Some((_, _, w, _)) = lp_w {
        println!(
            "wall time, libproc2 / libkvm (with wchan): {:.2}x faster (serial {:.2}x)  (target >= 1.5x)",
            w / par.wall,
            w / ser.wall
        );
    }
    if let Some((_, _, w, _)) = lp {
        println!(
            "wall time, libproc2 / libkvm (no wchan):   {:.2}x faster (serial {:.2}x)",
            w / par_nw.wall,
            w / ser_nw.wall
        );
    }
    println!(
        "memory: result array {} rows x {ROW} B = {:.2} MiB (capacity {} rows = {:.3}x cnt x 1088); process peak RSS grew {:.2} MiB during the first passes",
        par.rows,
        (par.rows * ROW) as f64 / 1048576.0,
        par.cap,
        par.cap as f64 / par.rows.max(1) as f64,
        hwm1.saturating_sub(hwm0) as f64 / 1024.0
    );
    drop(idle);
}
