//! Linux crash dumps (ELF, kdump-compressed, flattened) on the real generated dump sets.

mod common;

use common::*;

#[test]
fn banner_reads_proc_version_on_every_set_and_format() {
    for (label, dir) in sets() {
        let version = std::fs::read(dir.join("truth/version")).unwrap();
        for f in FORMATS {
            let core = dir.join(f);
            let k = open_bare(&core).unwrap_or_else(|e| panic!("{} {}: open: {}", label, f, e));
            let addr = nlist1(&k, "linux_banner").expect("linux_banner");
            let mut buf = vec![0u8; version.len()];
            let n = k.lock().read(addr, &mut buf).expect("read banner");
            assert_eq!(n, buf.len(), "{} {}", label, f);
            assert_eq!(
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&version),
                "{} {}",
                label,
                f
            );
        }
    }
}

/// Core-kernel text/data symbols of truth/kallsyms (no module symbols: modules live in
/// vmalloc space; no absolute per-CPU offsets).
fn core_symbols(syms: &[KSym]) -> Vec<KSym> {
    let m = kallsyms_map(syms);
    let stext = m["_stext"];
    syms.iter()
        .filter(|s| s.module.is_none() && s.addr >= stext && "TtDdRrBb".contains(s.ty))
        .cloned()
        .collect()
}

#[test]
fn bare_dump_symbols_match_truth_kallsyms() {
    for (label, dir) in sets() {
        let truth = kallsyms_map(&kallsyms(&dir));
        for f in FORMATS {
            let k = open_bare(&dir.join(f)).unwrap();
            for name in [
                "linux_banner",
                "init_task",
                "jiffies",
                "_stext",
                "init_top_pgt",
            ] {
                assert_eq!(
                    nlist1(&k, name),
                    Some(truth[name]),
                    "{} {} {}",
                    label,
                    f,
                    name
                );
            }
            // A name the kernel does not have is reported as not found.
            assert_eq!(nlist1(&k, "no_such_symbol_in_linux"), None);
        }
    }
}

#[test]
fn kerndisp_is_kerneloffset_and_native() {
    for (label, dir) in sets() {
        let koff =
            i64::from_str_radix(&vmcoreinfo_value(&dir, "KERNELOFFSET").unwrap(), 16).unwrap();
        let truth = kallsyms_map(&kallsyms(&dir));
        assert_eq!(
            koff as u64,
            truth["_stext"] - 0xffff_ffff_8100_0000,
            "{}",
            label
        );
        for f in FORMATS {
            let k = open_bare(&dir.join(f)).unwrap();
            let mut st = k.lock();
            assert_eq!(st.kerndisp(), koff, "{} {}", label, f);
            assert!(st.native());
            assert!(!st.is_live());
        }
    }
}

#[test]
fn thousand_random_symbols_read_identically_in_every_format() {
    for (label, dir) in sets() {
        let syms = core_symbols(&kallsyms(&dir));
        let mut rng = Rng(0x5eed_0000 + label.len() as u64);
        let picks: Vec<u64> = (0..1000)
            .map(|_| syms[rng.below(syms.len() as u64) as usize].addr)
            .collect();
        let mut results: Vec<Vec<Result<Vec<u8>, String>>> = Vec::new();
        for f in FORMATS {
            let k = open_bare(&dir.join(f)).unwrap();
            let mut st = k.lock();
            results.push(
                picks
                    .iter()
                    .map(|&a| {
                        let mut b = [0u8; 32];
                        match st.read(a, &mut b) {
                            Ok(n) => Ok(b[..n].to_vec()),
                            Err(e) => Err(e.to_string()),
                        }
                    })
                    .collect(),
            );
        }
        let ok = results[0].iter().filter(|r| r.is_ok()).count();
        // Freed __init text is unmapped after boot; everything else must be readable.
        assert!(
            ok >= 950,
            "{}: only {} of 1000 symbols readable from the ELF dump",
            label,
            ok
        );
        for (i, f) in FORMATS.iter().enumerate().skip(1) {
            for (j, (a, b)) in results[0].iter().zip(&results[i]).enumerate() {
                assert_eq!(a, b, "{} {} symbol at 0x{:x}", label, f, picks[j]);
            }
        }
        for (j, r) in results[0].iter().enumerate() {
            if let Ok(v) = r {
                assert_eq!(v.len(), 32, "{}: short read at 0x{:x}", label, picks[j]);
            }
        }
    }
}

#[test]
fn reads_cross_pages_and_stop_at_unmapped_memory() {
    for (label, dir) in sets() {
        let truth = kallsyms_map(&kallsyms(&dir));
        for f in FORMATS {
            let k = open_bare(&dir.join(f)).unwrap();
            let mut st = k.lock();
            // 3 pages starting mid-page equal the same bytes read page by page.
            let start = truth["linux_banner"] - 100;
            let mut big = vec![0u8; 3 * 4096];
            assert_eq!(st.read(start, &mut big).unwrap(), big.len());
            let mut pieces = Vec::new();
            let mut a = start;
            while a < start + big.len() as u64 {
                let n = (4096 - (a & 0xfff)).min(start + big.len() as u64 - a) as usize;
                let mut p = vec![0u8; n];
                assert_eq!(st.read(a, &mut p).unwrap(), n);
                pieces.extend_from_slice(&p);
                a += n as u64;
            }
            assert_eq!(big, pieces, "{} {}", label, f);
            // A non-canonical address fails with an error naming it.
            let e = st.read(0x8000_0000_0000_0000, &mut [0u8; 8]).unwrap_err();
            assert!(e.to_string().contains("0x8000000000000000"), "{}", e);
            // A range running from mapped into unmapped memory gives a short count.
            let (pages, _) = st.walk_pages_collect().unwrap();
            let mut kmap: Vec<(u64, u64)> = pages
                .iter()
                .filter(|p| p.kp_kmap_vaddr >= 0xffff_ffff_8000_0000)
                .map(|p| (p.kp_kmap_vaddr, p.kp_len))
                .collect();
            kmap.sort();
            let edge = kmap
                .windows(2)
                .find(|w| w[0].0 + w[0].1 != w[1].0)
                .map(|w| w[0].0 + w[0].1)
                .expect("a hole in the kernel text mapping");
            let mut b = vec![0u8; 8192];
            let n = st.read(edge - 4096, &mut b).unwrap();
            assert_eq!(
                n, 4096,
                "{} {}: short count up to the unmapped page",
                label, f
            );
        }
    }
}

#[test]
fn walk_pages_visits_every_kernel_text_page_once() {
    for (label, dir) in sets() {
        let truth = kallsyms_map(&kallsyms(&dir));
        let phys_base: i64 = vmcoreinfo_value(&dir, "NUMBER(phys_base)")
            .unwrap()
            .parse()
            .unwrap();
        let (stext, end) = (truth["_stext"], truth["_end"]);
        for f in FORMATS {
            let k = open_bare(&dir.join(f)).unwrap();
            let mut st = k.lock();
            let (pages, done) = st.walk_pages_collect().unwrap();
            assert!(done, "{} {}: walk did not complete", label, f);
            let mut count = std::collections::HashMap::new();
            for p in &pages {
                assert_eq!(p.kp_version, 2);
                assert!(p.kp_len == 4096 || p.kp_len == 2 << 20, "len {}", p.kp_len);
                if p.kp_kmap_vaddr >= 0xffff_ffff_8000_0000
                    && p.kp_kmap_vaddr < 0xffff_ffff_c000_0000
                {
                    // Text-mapping pages: physical = virtual - __START_KERNEL_map + phys_base.
                    assert_eq!(
                        p.kp_paddr,
                        (p.kp_kmap_vaddr - 0xffff_ffff_8000_0000).wrapping_add(phys_base as u64),
                        "{} {}",
                        label,
                        f
                    );
                    let mut o = 0;
                    while o < p.kp_len {
                        *count.entry(p.kp_kmap_vaddr + o).or_insert(0u32) += 1;
                        o += 4096;
                    }
                }
            }
            let mut mapped = 0;
            let mut va = stext;
            while va < end {
                let readable = st.read(va, &mut [0u8; 1]).is_ok();
                let c = count.get(&va).copied().unwrap_or(0);
                assert_eq!(
                    c, readable as u32,
                    "{} {}: page 0x{:x} seen {} times",
                    label, f, va, c
                );
                mapped += readable as usize;
                va += 4096;
            }
            assert!(mapped > 1000, "{} {}: only {} text pages", label, f, mapped);
            // Physical phase: dumped pages not seen in the kernel map, each exactly once; with
            // the kernel-map pages they cover all 256 MiB of guest RAM.
            let mut kmap_pfns = std::collections::HashSet::new();
            for p in pages.iter().filter(|p| p.kp_kmap_vaddr != 0) {
                let mut o = 0;
                while o < p.kp_len {
                    kmap_pfns.insert((p.kp_paddr + o) >> 12);
                    o += 4096;
                }
            }
            let mut phys = std::collections::HashSet::new();
            for p in pages.iter().filter(|p| p.kp_kmap_vaddr == 0) {
                assert!(
                    phys.insert(p.kp_paddr >> 12),
                    "{} {}: pa 0x{:x} twice",
                    label,
                    f,
                    p.kp_paddr
                );
                assert!(!kmap_pfns.contains(&(p.kp_paddr >> 12)));
                assert!(p.kp_offset >= 0);
            }
            let ram = (0..65536u64)
                .filter(|pfn| phys.contains(pfn) || kmap_pfns.contains(pfn))
                .count();
            assert_eq!(ram, 65536, "{} {}", label, f);
        }
    }
}

struct NoSyms;
impl kvm::SymbolLookup for NoSyms {
    fn lookup(&mut self, _: &str) -> Option<u64> {
        None
    }
}

fn backend(core: &std::path::Path) -> Box<dyn kvm::Backend> {
    let f = std::fs::File::open(core).unwrap();
    kvm::dump::open(f, core, libc::O_RDONLY, &mut NoSyms).unwrap()
}

fn index_from(syms: &[KSym], shift: i64) -> kvm::symbols::SymbolIndex {
    let mut idx = kvm::symbols::SymbolIndex::new("test symbols");
    for s in syms {
        idx.insert(
            &s.name,
            kvm::symbols::Symbol {
                value: s.addr.wrapping_add(shift as u64),
                n_type: 0,
            },
        );
    }
    idx
}

#[test]
fn symbol_files_are_displaced_or_refused() {
    let Some(dir) = set_dir("kaslr") else { return };
    let syms: Vec<KSym> = kallsyms(&dir)
        .into_iter()
        .filter(|s| s.module.is_none())
        .collect();
    let koff = i64::from_str_radix(&vmcoreinfo_value(&dir, "KERNELOFFSET").unwrap(), 16).unwrap();
    assert_ne!(koff, 0, "the kaslr set should be relocated");
    for f in FORMATS {
        let mut b = backend(&dir.join(f));
        // A kallsyms copy holds run-time addresses.
        assert_eq!(b.symbol_displacement(&index_from(&syms, 0)).unwrap(), 0);
        // A System.map / vmlinux holds link-time addresses.
        assert_eq!(
            b.symbol_displacement(&index_from(&syms, -koff)).unwrap(),
            koff
        );
        // Another kernel: _stext does not match.
        let e = b
            .symbol_displacement(&index_from(&syms, 0x20_0000))
            .unwrap_err();
        assert!(e.to_string().contains("_stext"), "{}", e);
        // Same _stext, but linux_banner elsewhere: refused by the banner check.
        let mut wrong = index_from(&syms, 0);
        let mut moved = kvm::symbols::SymbolIndex::new("moved banner");
        moved.insert(
            "linux_banner",
            kvm::symbols::Symbol {
                value: wrong.get_raw("linux_banner").unwrap().value + 64,
                n_type: 0,
            },
        );
        for (n, s) in wrong.iter() {
            moved.insert(n, s);
        }
        wrong = moved;
        let e = b.symbol_displacement(&wrong).unwrap_err();
        assert!(e.to_string().contains("linux_banner"), "{}", e);
    }
    // The nokaslr boot of the same kernel build is the same kernel: accepted, displaced.
    if let Some(nk) = set_dir("nokaslr") {
        let nsyms: Vec<KSym> = kallsyms(&nk)
            .into_iter()
            .filter(|s| s.module.is_none())
            .collect();
        let mut b = backend(&dir.join("vmcore.elf"));
        assert_eq!(b.symbol_displacement(&index_from(&nsyms, 0)).unwrap(), koff);
    }
}

#[test]
fn writes_are_refused() {
    let Some(dir) = set_dir("kaslr") else { return };
    for f in FORMATS {
        let k = open_bare(&dir.join(f)).unwrap();
        let e = k
            .lock()
            .write(0xffff_ffff_8100_0000, &[0u8; 4])
            .unwrap_err();
        assert!(
            e.to_string().contains("not implemented for dead kernels"),
            "{}",
            e
        );
    }
}

/// Writes truth/kallsyms as a System.map would hold it: link-time addresses (minus
/// KERNELOFFSET), core kernel symbols only.
fn write_system_map(dir: &std::path::Path, out: &std::path::Path, shift: i64) {
    let mut text = String::new();
    for s in kallsyms(dir).into_iter().filter(|s| s.module.is_none()) {
        let a = if s.ty == 'A' || s.ty == 'a' {
            s.addr
        } else {
            s.addr.wrapping_add(shift as u64)
        };
        text.push_str(&format!("{:016x} {} {}\n", a, s.ty, s.name));
    }
    std::fs::write(out, text).unwrap();
}

#[test]
fn execfile_kallsyms_copy_and_system_map_are_relocated() {
    for (label, dir) in sets() {
        let truth = kallsyms_map(&kallsyms(&dir));
        let koff =
            i64::from_str_radix(&vmcoreinfo_value(&dir, "KERNELOFFSET").unwrap(), 16).unwrap();
        let map = scratch("linux-execfile").join(format!("System.map-{}", label));
        write_system_map(&dir, &map, -koff);
        let copy = dir.join("truth/kallsyms");
        for f in FORMATS {
            for exec in [copy.as_os_str(), map.as_os_str()] {
                let k = open_with_exec(exec, &dir.join(f))
                    .unwrap_or_else(|e| panic!("{} {} {:?}: {}", label, f, exec, e));
                for name in ["linux_banner", "init_task", "jiffies"] {
                    assert_eq!(
                        nlist1(&k, name),
                        Some(truth[name]),
                        "{} {} {:?}",
                        label,
                        f,
                        exec
                    );
                }
            }
        }
    }
}

#[test]
fn execfile_of_another_kernel_is_refused() {
    let Some(dir) = set_dir("kaslr") else { return };
    let koff = i64::from_str_radix(&vmcoreinfo_value(&dir, "KERNELOFFSET").unwrap(), 16).unwrap();
    let map = scratch("linux-execfile").join("System.map-other");
    // Same names, text shifted by 2 MiB: a different build.
    write_system_map(&dir, &map, -koff + 0x20_0000);
    for f in FORMATS {
        let e = match open_with_exec(map.as_os_str(), &dir.join(f)) {
            Ok(_) => panic!("{}: a mismatching System.map was accepted", f),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("do not match") && e.contains("_stext"), "{}", e);
    }
    // Debian's placeholder System.map has no symbols: a clear error, not a crash.
    let e = open_with_exec(dir.join("System.map").as_os_str(), &dir.join("vmcore.elf"));
    assert!(e.is_err());
}

/// Builds the ELF-backed dump with a VMCOREINFO text edited by `edit`.
fn elf_with_vmcoreinfo(
    dir: &std::path::Path,
    edit: &dyn Fn(&str) -> Option<String>,
) -> kvm::Result<kvm::dump::linux::LinuxDump> {
    let path = dir.join("vmcore.elf");
    let file = std::fs::File::open(&path).unwrap();
    let map = kvm::dump::mapped::Mapped::map(&file, &path).unwrap();
    let parts = kvm::dump::elf::open(map, &path).unwrap();
    let text = String::from_utf8(parts.vmcoreinfo.clone().unwrap()).unwrap();
    let edited = edit(&text);
    kvm::dump::linux::LinuxDump::new(
        Box::new(parts.mem),
        edited.as_deref().map(|s| s.as_bytes()),
        &path,
        1,
    )
}

#[test]
fn vmcoreinfo_symbols_are_the_fallback_and_bad_vmcoreinfo_is_refused() {
    use kvm::Backend;
    let Some(dir) = set_dir("kaslr") else { return };
    let truth = kallsyms_map(&kallsyms(&dir));
    // Without the kallsyms entries (kernels before 6.0): SYMBOL() entries only.
    let mut d = elf_with_vmcoreinfo(&dir, &|t| {
        Some(
            t.lines()
                .filter(|l| !l.contains("kallsyms"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
    .unwrap();
    let idx = d.own_symbols().unwrap().unwrap();
    assert_eq!(idx.source, "VMCOREINFO SYMBOL() entries");
    assert_eq!(
        idx.lookup("init_uts_ns").unwrap().value,
        truth["init_uts_ns"]
    );
    assert_eq!(idx.lookup("_stext").unwrap().value, truth["_stext"]);
    assert!(idx.lookup("linux_banner").is_none());
    // With them: the full table, same count as the core-kernel part of truth/kallsyms.
    let mut d = elf_with_vmcoreinfo(&dir, &|t| Some(t.to_string())).unwrap();
    let idx = d.own_symbols().unwrap().unwrap();
    assert_eq!(idx.source, "kallsyms in the dump");
    let all = kallsyms(&dir);
    let core: std::collections::HashSet<&str> = all
        .iter()
        .filter(|s| s.module.is_none())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(idx.len(), core.len(), "distinct core-kernel names");
    for (name, sym) in idx.iter().take(5000) {
        assert_eq!(Some(&sym.value), truth.get(name), "{}", name);
    }
    assert!(idx.len() > 50_000, "{} symbols", idx.len());
    // No VMCOREINFO at all.
    let e = elf_with_vmcoreinfo(&dir, &|_| None).err().unwrap();
    assert!(e.to_string().contains("no VMCOREINFO"), "{}", e);
    // A wrong phys_base (what QEMU writes into the kdump sub-header) is caught.
    let e = elf_with_vmcoreinfo(&dir, &|t| {
        Some(
            t.lines()
                .map(|l| {
                    if l.starts_with("NUMBER(phys_base)=") {
                        "NUMBER(phys_base)=0".to_string()
                    } else {
                        l.to_string()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
    .err()
    .unwrap();
    assert!(
        e.to_string().contains("phys_base") || e.to_string().contains("page table"),
        "{}",
        e
    );
}
