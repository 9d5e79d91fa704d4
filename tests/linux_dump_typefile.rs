//! `ps -M vmcore -N vmlinux` with Debian's stripped vmlinux: the execfile has no symbol table but
//! carries the kernel's BTF, so symbols come from the dump itself and types from the file.

mod common;

use common::*;
use kvm::abi::KERN_PROC_PROC;

#[test]
fn stripped_vmlinux_as_execfile_gives_types_and_dump_symbols() {
    let sets = sets();
    if sets.is_empty() {
        println!("skipped: no Linux dump sets (run `make fixtures`)");
        return;
    }
    for (label, dir) in sets {
        let vmlinux = dir.join("vmlinux");
        let pids_final = std::fs::read_to_string(dir.join("truth/pids-final.txt")).unwrap();
        let want: Vec<i32> = pids_final
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        assert!(!want.is_empty(), "{}: empty pids-final.txt", label);
        for f in ["vmcore.elf", "vmcore.kdump-zlib"] {
            let core = dir.join(f);
            let k = open_with_exec(vmlinux.as_os_str(), &core)
                .unwrap_or_else(|e| panic!("{} {}: open with stripped vmlinux: {}", label, f, e));
            let rows: Vec<i32> = k
                .lock()
                .getprocs(KERN_PROC_PROC, 0)
                .unwrap()
                .iter()
                .map(|p| p.ki_pid)
                .collect();
            for pid in &want {
                assert!(rows.contains(pid), "{} {}: pid {} missing", label, f, pid);
            }
            // Symbols still resolve, from the dump's own kallsyms.
            let truth = kallsyms_map(&kallsyms(&dir));
            assert_eq!(
                nlist1(&k, "linux_banner"),
                truth.get("linux_banner").copied(),
                "{} {}",
                label,
                f
            );
        }
        // The placeholder System.map is not a type file: its clear error wins.
        let placeholder = dir.join("System.map");
        let e = match open_with_exec(placeholder.as_os_str(), &dir.join("vmcore.elf")) {
            Ok(_) => panic!("{}: the placeholder System.map was accepted", label),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("dbg"), "{}: unclear error: {}", label, e);
    }
}
