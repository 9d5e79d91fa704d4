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

/// One reader's samples over the rounds.
struct Series {
    name: String,
    rows: usize,
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    fn new(name: &str) -> Series {
        Series {
            name: name.to_string(),
            rows: 0,
            wall: Vec::new(),
            cpu: Vec::new(),
        }
    }
    fn med(&mut self) -> (f64, f64) {
        (median(&mut self.wall), median(&mut self.cpu))
    }
}

/// Our modes (name, LIBKVM_SERIAL, LIBKVM_LINUX_NOWCHAN, LIBKVM_WORKERS), selected through the
/// environment switches the library reads at each call.
const MODES: [(&str, bool, bool, &str); 5] = [
    ("libkvm default (workers = online CPUs)", false, false, ""),
    (
        "libkvm forced parallel (LIBKVM_WORKERS=2)",
        false,
        false,
        "2",
    ),
    ("libkvm serial (LIBKVM_SERIAL=1)", true, false, ""),
    ("libkvm default, no wchan", false, true, ""),
    ("libkvm serial, no wchan", true, true, ""),
];

fn set_mode(serial: bool, nowchan: bool, workers: &str) {
    // Single-threaded at this point: nothing else reads the environment concurrently.
    for (name, on, val) in [
        ("LIBKVM_SERIAL", serial, "1"),
        ("LIBKVM_LINUX_NOWCHAN", nowchan, "1"),
        ("LIBKVM_WORKERS", !workers.is_empty(), workers),
    ] {
        if on {
            std::env::set_var(name, val);
        } else {
            std::env::remove_var(name);
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_num("KVM_BENCH_PROCS", 10_000);
    let rounds = env_num("KVM_BENCH_PASSES", 7).clamp(1, 64);
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
        "setup: {} idle processes spawned in {:.1} s ({existing} existed; pid_max {pid_max}); {rounds} rounds, readers interleaved in each round",
        idle.count,
        t.elapsed().as_secs_f64(),
    );
    if idle.count < n {
        println!(
            "warning: only {} of {n} idle processes could be created",
            idle.count
        );
    }

    let kd = Kvm::open(OpenArgs {
        corefile: Some(OsStr::new("/dev/null")),
        ..Default::default()
    })
    .expect("kvm_open");
    // Memory: the first call on a fresh handle (result array, pid list, worker buffers).
    set_mode(false, false, "");
    let hwm0 = vm_hwm_kb();
    let first_rows = kd
        .lock()
        .getprocs(KERN_PROC_PROC, 0)
        .expect("kvm_getprocs")
        .len();
    let hwm1 = vm_hwm_kb();
    let cap = ProcFs::new()
        .getprocs_with(KERN_PROC_PROC, 0, Options::from_env())
        .map(|v| v.capacity())
        .unwrap_or(0);

    let mut ours: Vec<Series> = MODES.iter().map(|m| Series::new(m.0)).collect();
    let peers: Vec<(&str, Option<&Path>, &str)> = vec![
        ("plain C stat+status+wchan", plain.as_deref(), "wchan"),
        ("plain C stat+status", plain.as_deref(), "nowchan"),
        ("libproc2 stat+status+wchan", libproc2.as_deref(), "wchan"),
        ("libproc2 stat+status", libproc2.as_deref(), "nowchan"),
    ];
    let mut theirs: Vec<Series> = peers.iter().map(|p| Series::new(p.0)).collect();
    let mut wchans = 0;
    for _ in 0..rounds {
        let mut st = kd.lock();
        for (i, &(_, serial, nowchan, workers)) in MODES.iter().enumerate() {
            set_mode(serial, nowchan, workers);
            let (w0, c0) = (Instant::now(), cpu_ms());
            let rows = st.getprocs(KERN_PROC_PROC, 0).expect("kvm_getprocs").len();
            ours[i].wall.push(w0.elapsed().as_secs_f64() * 1e3);
            ours[i].cpu.push(cpu_ms() - c0);
            ours[i].rows = rows;
        }
        drop(st);
        for (i, &(_, exe, mode)) in peers.iter().enumerate() {
            if let Some((rows, wc, w, c)) = exe.and_then(|e| run_peer(e, mode, 1)) {
                theirs[i].rows = rows;
                theirs[i].wall.push(w);
                theirs[i].cpu.push(c);
                if i == 0 {
                    wchans = wc;
                }
            }
        }
    }
    set_mode(false, false, "");

    println!();
    println!(
        "{:<44} {:>7} {:>10} {:>10}",
        "reader (one full pass, median)", "rows", "wall ms", "cpu ms"
    );
    let mut med = Vec::new();
    for s in ours.iter_mut().chain(theirs.iter_mut()) {
        if s.wall.is_empty() {
            println!("{:<44} (not measured)", s.name);
            med.push(None);
            continue;
        }
        let (w, c) = s.med();
        println!("{:<44} {:>7} {w:>10.1} {c:>10.1}", s.name, s.rows);
        med.push(Some((w, c)));
    }
    println!("(plain C with wchan read {wchans} wchan files: blocked tasks with a wait channel)");
    println!();
    let get = |i: usize| med[i];
    let (def, par, ser, def_nw, ser_nw, pc_w, pc, lp_w, lp) = (0, 1, 2, 3, 4, 5, 6, 7, 8);
    if let (Some(d), Some(p), Some(s), Some(c)) = (get(def), get(par), get(ser), get(pc_w)) {
        println!(
            "CPU time vs plain C (with wchan):   default {:.3}x, forced parallel {:.3}x, serial {:.3}x  (target <= 1.1x)",
            d.1 / c.1,
            p.1 / c.1,
            s.1 / c.1
        );
    }
    if let (Some(d), Some(s), Some(c)) = (get(def_nw), get(ser_nw), get(pc)) {
        println!(
            "CPU time vs plain C (no wchan):     default {:.3}x, serial {:.3}x  (target <= 1.1x)",
            d.1 / c.1,
            s.1 / c.1
        );
    }
    if let (Some(d), Some(p), Some(s), Some(l)) = (get(def), get(par), get(ser), get(lp_w)) {
        println!(
            "wall time, libproc2 / libkvm (with wchan): default {:.2}x faster, forced parallel {:.2}x, serial {:.2}x  (target >= 1.5x)",
            l.0 / d.0,
            l.0 / p.0,
            l.0 / s.0
        );
    }
    if let (Some(d), Some(s), Some(l)) = (get(def_nw), get(ser_nw), get(lp)) {
        println!(
            "wall time, libproc2 / libkvm (no wchan):   default {:.2}x faster, serial {:.2}x",
            l.0 / d.0,
            l.0 / s.0
        );
    }
    if let (Some(p), Some(s)) = (get(par), get(ser)) {
        println!("forced parallel / serial wall time: {:.2}", p.0 / s.0);
    }
    println!(
        "memory: result array {first_rows} rows x {ROW} B = {:.2} MiB (capacity {:.3}x cnt); peak RSS grew {:.2} MiB over the first call ({:.2}x the array)",
        (first_rows * ROW) as f64 / 1048576.0,
        cap as f64 / first_rows.max(1) as f64,
        hwm1.saturating_sub(hwm0) as f64 / 1024.0,
        (hwm1.saturating_sub(hwm0) * 1024) as f64 / (first_rows * ROW).max(1) as f64
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    drop(idle);
}
