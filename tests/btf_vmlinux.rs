//! The BTF reader on the real kernel BTF of the generated Linux dumps: every OFFSET()/SIZE()
//! that the kernel itself exports in VMCOREINFO must match what BTF says, and the .BTF section
//! of the (stripped) vmlinux must give the same answers as /sys/kernel/btf/vmlinux.

use std::path::PathBuf;
use std::time::Instant;

use kvm::btf::{self, Btf};

fn dump_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KVM_LINUX_DUMPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/linux-dumps"));
    if dir.join("truth/btf-vmlinux").is_file() {
        Some(dir)
    } else {
        println!("skipped: no Linux dump set at {}", dir.display());
        None
    }
}

/// VMCOREINFO lines `OFFSET(s.m)=n` / `SIZE(s)=n` for structs BTF can name.
fn vmcoreinfo_checks(dir: &std::path::Path) -> Vec<(String, Option<String>, u64)> {
    let text = std::fs::read_to_string(dir.join("vmcoreinfo.txt")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let (key, val) = match line.split_once('=') {
            Some(kv) => kv,
            None => continue,
        };
        let Ok(val) = val.parse::<u64>() else {
            continue;
        };
        if let Some(inner) = key
            .strip_prefix("OFFSET(")
            .and_then(|k| k.strip_suffix(')'))
        {
            if let Some((s, m)) = inner.split_once('.') {
                out.push((s.to_string(), Some(m.to_string()), val));
            }
        } else if let Some(s) = key.strip_prefix("SIZE(").and_then(|k| k.strip_suffix(')')) {
            out.push((s.to_string(), None, val));
        }
    }
    out
}

fn check_against_vmcoreinfo(btf: &Btf, dir: &std::path::Path) -> usize {
    let mut checked = 0;
    for (s, m, val) in vmcoreinfo_checks(dir) {
        let Some(id) = btf.find_aggregate(&s) else {
            continue; // typedef names such as nodemask_t / atomic_long_t
        };
        match m {
            Some(m) => {
                let mem = btf
                    .member_path(id, &m)
                    .unwrap_or_else(|| panic!("{}.{} not found", s, m));
                assert_eq!(mem.offset(), val, "OFFSET({}.{})", s, m);
            }
            None => assert_eq!(btf.size_of(id), Some(val), "SIZE({})", s),
        }
        checked += 1;
    }
    checked
}

#[test]
fn btf_matches_vmcoreinfo_and_is_fast() {
    let Some(dir) = dump_dir() else { return };
    let raw = std::fs::read(dir.join("truth/btf-vmlinux")).unwrap();
    // Best of three: the first run also pays for page faults on the fresh copy.
    let mut best = f64::MAX;
    let mut btf = None;
    for _ in 0..3 {
        let t = Instant::now();
        let b = Btf::parse(&raw).unwrap();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        btf = Some(b);
    }
    let btf = btf.unwrap();
    println!(
        "BTF parse: {} bytes, {} types, {:.1} ms",
        raw.len(),
        btf.type_count(),
        best
    );
    // The 100 ms target is for optimized builds (the bench measures it); unoptimized test
    // builds on a shared machine only get a sanity bound.
    let limit = if cfg!(debug_assertions) {
        1000.0
    } else {
        100.0
    };
    assert!(
        best < limit,
        "BTF parse took {:.1} ms (limit {} ms)",
        best,
        limit
    );
    let n = check_against_vmcoreinfo(&btf, &dir);
    assert!(n >= 40, "only {} VMCOREINFO entries checked", n);

    // Layouts the process walker relies on, with their C types.
    let task = btf.find_aggregate("task_struct").unwrap();
    let comm = btf.member(task, "comm").unwrap();
    assert_eq!(btf.size_of(comm.type_id), Some(16));
    assert_eq!(
        btf.size_of(btf.member(task, "pid").unwrap().type_id),
        Some(4)
    );
    let lh = btf.find_aggregate("list_head").unwrap();
    assert_eq!(btf.member(lh, "next").unwrap().offset(), 0);
    assert_eq!(btf.member(lh, "prev").unwrap().offset(), 8);
    let cred_ptr = btf.member(task, "cred").unwrap().type_id;
    let cred = btf.resolve(btf.pointee(cred_ptr).unwrap()).unwrap();
    assert_eq!(btf.name(cred), Some("cred"));
    // A bitfield inside task_struct (sched_reset_on_fork etc. are 1-bit fields).
    let bf = btf.member(task, "sched_reset_on_fork").unwrap();
    assert_eq!(bf.bitfield_size, 1);
    // Enumerators used for pid types.
    assert_eq!(btf.enum_value("PIDTYPE_PID"), Some(0));
    assert_eq!(btf.enum_value("PIDTYPE_SID"), Some(3));
    // pid.numbers is a flexible/1-element array of struct upid.
    let pid = btf.find_aggregate("pid").unwrap();
    let (elem, _) = btf
        .array(btf.member(pid, "numbers").unwrap().type_id)
        .unwrap();
    assert_eq!(btf.name(btf.resolve(elem).unwrap()), Some("upid"));
}

#[test]
fn vmlinux_btf_section_gives_identical_results() {
    let Some(dir) = dump_dir() else { return };
    let raw = std::fs::read(dir.join("truth/btf-vmlinux")).unwrap();
    let f = std::fs::File::open(dir.join("vmlinux")).unwrap();
    let map = read_all(&f);
    let sect = btf::elf::btf_section(&map).unwrap();
    assert_eq!(
        sect,
        &raw[..],
        ".BTF section differs from /sys/kernel/btf/vmlinux"
    );
    let a = Btf::parse(&raw).unwrap();
    let b = Btf::parse(sect).unwrap();
    assert_eq!(a.type_count(), b.type_count());
    for (s, m) in [
        ("task_struct", "tasks"),
        ("task_struct", "signal"),
        ("signal_struct", "pids"),
        ("mm_struct", "arg_start"),
        ("cred", "euid"),
    ] {
        assert_eq!(
            a.field(s, m).unwrap(),
            b.field(s, m).unwrap(),
            "{}.{}",
            s,
            m
        );
    }
    assert_eq!(
        check_against_vmcoreinfo(&b, &dir),
        check_against_vmcoreinfo(&a, &dir)
    );
    // Not ELF / no .BTF: clear errors.
    assert!(btf::elf::btf_section(&raw).is_err());
    let e = Btf::parse(&map[..4096]).unwrap_err().to_string();
    assert!(e.contains("BTF"), "{}", e);
}

/// Reads the whole vmlinux (66 MB test input; the library itself never reads whole dumps).
fn read_all(f: &std::fs::File) -> Vec<u8> {
    use std::io::Read;
    let mut v = Vec::new();
    let mut f = f;
    f.read_to_end(&mut v).unwrap();
    v
}

/// Deterministic mutations of the real BTF (bit flips in the header and type section, random
/// truncations, lengths set huge): parsing and layout resolution must fail cleanly or succeed,
/// never panic or hang. (The libFuzzer target fuzz/fuzz_targets/btf.rs does the same at scale.)
#[test]
fn mutated_btf_never_panics() {
    let Some(dir) = dump_dir() else { return };
    let raw = std::fs::read(dir.join("truth/btf-vmlinux")).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut ok, mut err) = (0, 0);
    for round in 0..60 {
        let mut m = raw.clone();
        match round % 3 {
            0 => {
                // Flip bytes in the header and the first types (where structure is decided).
                for _ in 0..4 {
                    let i = (next() % 4096) as usize;
                    m[i] ^= (next() % 255 + 1) as u8;
                }
            }
            1 => {
                let cut = (next() % raw.len() as u64) as usize;
                m.truncate(cut);
            }
            _ => {
                // A member's type id or offset anywhere in the type section set to garbage.
                for _ in 0..64 {
                    let i = 24 + (next() % (raw.len() as u64 - 28)) as usize;
                    m[i..i + 4].copy_from_slice(&(next() as u32).to_le_bytes());
                }
            }
        }
        match Btf::parse(&m) {
            Ok(b) => {
                ok += 1;
                let _ = kvm::proc::linux_dead::layout::Layout::from_btf(&b);
                for id in 0..2000 {
                    let _ = b.size_of(id);
                    let _ = b.member(id, "pid");
                }
                let _ = b.enum_value("PIDTYPE_SID");
            }
            Err(e) => {
                err += 1;
                assert!(e.to_string().starts_with("BTF"), "{}", e);
            }
        }
    }
    println!("mutations: {} parsed, {} rejected", ok, err);
    assert!(err > 0 && ok > 0);
}
