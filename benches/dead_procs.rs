//! kvm_getprocs(KERN_PROC_ALL) on the real Linux dumps: open time, first listing (reads the
//! kernel's BTF out of the dump and parses it), steady passes, per task; peers measured in the
//! same run: the bare BTF parse, and reading every task_struct with kvm_read (the memory floor
//! of any task-list walk).
//!
//! Run: cargo bench --bench dead_procs   (KVM_LINUX_DUMPS* select the dump sets)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kvm::abi;

fn dirs() -> Vec<(&'static str, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    [
        ("kaslr", "KVM_LINUX_DUMPS", "linux-dumps"),
        ("nokaslr", "KVM_LINUX_DUMPS_NOKASLR", "linux-dumps-nokaslr"),
        ("la57", "KVM_LINUX_DUMPS_LA57", "linux-dumps-la57"),
    ]
    .into_iter()
    .filter_map(|(l, var, def)| {
        let d = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(def));
        if d.join("vmcore.elf").is_file() {
            Some((l, d))
        } else {
            println!("skipped: dump set {} not found at {}", l, d.display());
            None
        }
    })
    .collect()
}

fn open(core: &std::path::Path) -> Box<kvm::Kvm> {
    kvm::Kvm::open(kvm::OpenArgs {
        corefile: Some(core.as_os_str()),
        flags: libc::O_RDONLY,
        ..Default::default()
    })
    .unwrap()
}

fn best<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.unwrap())
}

/// The dump's memory with the truth kallsyms as symbols, to time BTF loading on its own.
struct Mem {
    dump: kvm::dump::linux::LinuxDump,
    syms: std::collections::HashMap<String, u64>,
}

impl kvm::proc::linux_dead::KernelMemory for Mem {
    fn read(&mut self, va: u64, buf: &mut [u8]) -> kvm::Result<usize> {
        kvm::Backend::read(&mut self.dump, va, buf)
    }
    fn read_user(&mut self, pgd: u64, va: u64, buf: &mut [u8]) -> kvm::Result<usize> {
        self.dump.read_user(pgd, va, buf)
    }
    fn symbol(&mut self, name: &str) -> Option<u64> {
        self.syms.get(name).copied()
    }
}

fn kallsyms(dir: &std::path::Path) -> std::collections::HashMap<String, u64> {
    let text = std::fs::read_to_string(dir.join("truth/kallsyms")).unwrap();
    let mut m = std::collections::HashMap::new();
    for l in text.lines() {
        let mut it = l.split_whitespace();
        if let (Some(a), Some(_), Some(n)) = (it.next(), it.next(), it.next()) {
            if let Ok(a) = u64::from_str_radix(a, 16) {
                m.entry(n.to_string()).or_insert(a);
            }
        }
    }
    m
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let sets = dirs();
    if sets.is_empty() {
        return;
    }
    // The largest dump set (by task count) is what the targets talk about; all are printed.
    for (label, dir) in sets {
        let raw = std::fs::read(dir.join("truth/btf-vmlinux")).unwrap();
        let (parse, btf) = best(5, || kvm::btf::Btf::parse(&raw).unwrap());
        let task_size = btf.struct_size("task_struct").unwrap() as usize;
        println!(
            "[{}] BTF parse (peer): {:.2} ms for {} bytes, {} types (target < 100 ms)",
            label,
            ms(parse),
            raw.len(),
            btf.type_count()
        );
        for f in ["vmcore.elf", "vmcore.kdump-zlib", "vmcore.kdump-zlib.flat"] {
            let core = dir.join(f);
            // BTF read out of this dump (__start_BTF..__stop_BTF) and parsed, on a fresh open.
            let mut mem = Mem {
                dump: kvm::dump::linux::LinuxDump::open_path(&core).unwrap(),
                syms: kallsyms(&dir),
            };
            let t = Instant::now();
            kvm::proc::linux_dead::DeadLinux::from_memory(&mut mem).unwrap();
            let btf_dump = t.elapsed();
            drop(mem);
            let t = Instant::now();
            let k = open(&core);
            let open_t = t.elapsed();
            println!(
                "[{} {}] BTF from the dump (read 4.3 MB + parse + layout): {:.2} ms (target < 100 ms)",
                label,
                f,
                ms(btf_dump)
            );
            let mut st = k.lock();
            // Symbols (kallsyms decoded from the dump) load on first use: time them apart.
            let t = Instant::now();
            st.nlist(&[b"init_task"]).unwrap();
            let syms_t = t.elapsed();
            let t = Instant::now();
            let first = st.getprocs(abi::KERN_PROC_ALL, 0).unwrap().len();
            let first_t = t.elapsed();
            // Steady state: pages cached by the backend / the OS.
            let (pass, n) = best(20, || st.getprocs(abi::KERN_PROC_ALL, 0).unwrap().len());
            assert_eq!(n, first);
            let (pass_proc, np) = best(20, || st.getprocs(abi::KERN_PROC_PROC, 0).unwrap().len());
            // Peer: kvm_read of every task_struct the listing covers (the addresses come from a
            // walk of init_task.tasks done once up front, outside the timing).
            let init = st.nlist(&[b"init_task"]).unwrap()[0].unwrap().value;
            let toff = btf.field("task_struct", "tasks").unwrap().offset();
            let mut addrs = vec![init];
            let mut b = [0u8; 8];
            st.read(init + toff, &mut b).unwrap();
            let mut cur = u64::from_le_bytes(b);
            while cur != init + toff && addrs.len() < 100_000 {
                addrs.push(cur - toff);
                st.read(cur, &mut b).unwrap();
                cur = u64::from_le_bytes(b);
            }
            let mut buf = vec![0u8; task_size];
            let (reads, _) = best(20, || {
                for &a in &addrs {
                    st.read(a, &mut buf).unwrap();
                }
            });
            let per_task = pass.as_secs_f64() / n as f64;
            println!(
                "[{} {}] open {:.2} ms; symbols from the dump {:.2} ms; first KERN_PROC_ALL \
                 (BTF, ORC table and text symbols for wait channels loaded) {:.2} ms; \
                 pass {:.3} ms for {} rows = {:.2} us/row (x1000 rows: {:.1} ms, target < 50 ms); \
                 KERN_PROC_PROC {:.3} ms for {} rows; peer: kvm_read of {} task_structs ({} B) \
                 {:.3} ms; ratio pass/peer {:.2}; ratio first-call/bare-BTF-parse {:.2}",
                label,
                f,
                ms(open_t),
                ms(syms_t),
                ms(first_t),
                ms(pass),
                n,
                per_task * 1e6,
                per_task * 1000.0 * 1e3,
                ms(pass_proc),
                np,
                addrs.len(),
                task_size,
                ms(reads),
                pass.as_secs_f64() / reads.as_secs_f64(),
                first_t.as_secs_f64() / parse.as_secs_f64()
            );
        }
    }
}
