//! Kernel symbols: kvm_nlist through the descriptor and the symbol loaders, on this machine's
//! /proc/kallsyms, the qemu guest's kallsyms, Debian's placeholder files, synthetic ELF
//! kernels and bad input.

mod common {
    pub mod elfwriter;
}

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use common::elfwriter::*;
use kvm::abi::{N_ABS, N_BSS, N_DATA, N_EXT, N_FN, N_TEXT, N_UNDF};
use kvm::symbols::{self, SymbolKind};
use kvm::{Kvm, OpenArgs};

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("symbols-tests");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

fn dumps_dir() -> PathBuf {
    std::env::var_os("KVM_LINUX_DUMPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux-dumps"))
}

/// First address listed for each name (the index keeps the first definition, as kallsyms
/// lists the kernel before modules), plus the type letter.
fn parse_listing(text: &str) -> (Vec<String>, HashMap<String, (u64, u8)>) {
    let mut order = Vec::new();
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(a), Some(t), Some(n)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let a = u64::from_str_radix(a, 16).unwrap();
        if !map.contains_key(n) {
            order.push(n.to_string());
            map.insert(n.to_string(), (a, t.as_bytes()[0]));
        }
    }
    (order, map)
}

/// Small deterministic PRNG (xorshift64*), seeded from the clock; the seed is printed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("random seed {:#x}", seed);
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn open(exec: Option<&Path>, core: Option<&str>, flags: i32) -> Box<Kvm> {
    Kvm::open(OpenArgs {
        execfile: exec.map(|p| p.as_os_str()),
        corefile: core.map(OsStr::new),
        flags,
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("kvm open: {}", e))
}

fn letter_type(c: u8) -> u8 {
    let t = match c.to_ascii_lowercase() {
        b'a' => N_ABS,
        b't' | b'w' | b'r' | b'i' => N_TEXT,
        b'd' | b'g' | b'v' | b'p' | b'u' => N_DATA,
        b'b' | b's' => N_BSS,
        _ => N_UNDF,
    };
    if c.is_ascii_uppercase() || c == b'w' || c == b'v' || c == b'u' {
        t | N_EXT
    } else {
        t
    }
}

#[test]
fn live_kallsyms_nlist() {
    let text = match std::fs::read_to_string("/proc/kallsyms") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("skipped: /proc/kallsyms unreadable: {}", e);
            return;
        }
    };
    let (order, map) = parse_listing(&text);
    let kd = open(None, None, libc::O_RDONLY);
    let mut st = kd.lock();
    if map.values().all(|v| v.0 == 0) {
        let err = st.nlist(&[b"_text"]).unwrap_err().to_string();
        eprintln!(
            "this machine hides kallsyms addresses; checked the error: {}",
            err
        );
        assert!(
            err.contains("kptr_restrict") && err.contains("/proc/kallsyms"),
            "{}",
            err
        );
        return;
    }
    // Names that appear once (kallsyms is re-read by the library: duplicates of local names
    // keep the first, which is what we expect too, but single ones avoid any doubt).
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        if let Some(n) = line.split_whitespace().nth(2) {
            *counts.entry(n).or_default() += 1;
        }
    }
    let mut rng = Rng::new();
    let mut names: Vec<&str> = Vec::new();
    while names.len() < 200 {
        let n = &order[(rng.next() % order.len() as u64) as usize];
        if counts[n.as_str()] == 1 && map[n].0 != 0 {
            names.push(n);
        }
    }
    names.push("_text");
    let bytes: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let got = st.nlist(&bytes).unwrap();
    for (n, g) in names.iter().zip(&got) {
        let (addr, letter) = map[*n];
        let s = g.unwrap_or_else(|| panic!("{} not found", n));
        assert_eq!(s.value, addr, "{} ({})", n, letter as char);
        // FreeBSD's live lookup reports every symbol as N_TEXT.
        assert_eq!(s.n_type, N_TEXT, "{}", n);
    }
    // Unknown names are counted as missing and leave nothing behind.
    let known = *names
        .iter()
        .find(|n| !n.starts_with('_') && !map.contains_key(&format!("_{}", n)))
        .expect("a name without a leading underscore");
    let got = st
        .nlist(&[
            b"_text",
            b"no_such_symbol_kvmtest",
            known.as_bytes(),
            b"_no_such_either",
        ])
        .unwrap();
    assert_eq!(got.iter().filter(|s| s.is_none()).count(), 2);
    assert_eq!(got[0].unwrap().value, map["_text"].0);
    assert_eq!(got[2].unwrap().value, map[known].0);
    // a.out-style leading underscore: "_<known>" is not in kallsyms, "<known>" is.
    let under = format!("_{}", known);
    let got = st.nlist(&[under.as_bytes(), b"__text"]).unwrap();
    assert_eq!(got[0].unwrap().value, map[known].0);
    // "__text": not listed as such, found without one underscore.
    if !map.contains_key("__text") {
        assert_eq!(got[1].unwrap().value, map["_text"].0);
    }
    // An empty list is 0 entries, no error.
    assert!(st.nlist(&[]).unwrap().is_empty());
    // kvm_kerndisp: the KASLR displacement from the same _text.
    drop(st);
    let disp = kd.lock().kerndisp();
    assert_eq!(
        disp,
        map["_text"].0.wrapping_sub(0xffff_ffff_8100_0000) as i64
    );
    eprintln!(
        "live: {} kallsyms names, _text {:#x}, kerndisp {:#x}",
        order.len(),
        map["_text"].0,
        disp
    );
}

#[test]
fn live_write_refused_and_kcore_missing() {
    let kd = open(None, None, libc::O_RDWR);
    let mut st = kd.lock();
    let err = st
        .write(0xffff_ffff_8100_0000, &[0u8; 4])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no writable kernel memory"), "{}", err);
    drop(st);
    // O_RDONLY: refused as FreeBSD does (EBADF) before the backend is asked.
    let kd = open(None, None, libc::O_RDONLY);
    let err = kd
        .lock()
        .write(0xffff_ffff_8100_0000, &[0u8; 4])
        .unwrap_err();
    assert_eq!(err.errno(), libc::EBADF);
    if !Path::new("/proc/kcore").exists() {
        let mut buf = [0u8; 16];
        let err = kd
            .lock()
            .read(0xffff_ffff_8100_0000, &mut buf)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/proc/kcore") && err.contains("No such file"),
            "{}",
            err
        );
        eprintln!("no /proc/kcore here (tested in the qemu guest): {}", err);
    }
    // "/dev/null" core: no kernel memory, a 0-byte (short) read.
    let kd = open(None, Some("/dev/null"), libc::O_RDONLY);
    let mut buf = [0u8; 16];
    assert_eq!(kd.lock().read(0xffff_ffff_8100_0000, &mut buf).unwrap(), 0);
}

#[test]
fn guest_kallsyms_as_execfile() {
    let path = dumps_dir().join("truth/kallsyms");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} absent (make-dumps.sh not run)", path.display());
        return;
    };
    let (order, map) = parse_listing(&text);
    assert!(order.len() > 50_000, "{} names", order.len());
    // Directly: every name, every value.
    let idx = symbols::load_file(&path).unwrap();
    assert_eq!(idx.kind, SymbolKind::Kallsyms);
    assert_eq!(idx.len(), order.len());
    assert_eq!(idx.skipped_lines, 0);
    for n in &order {
        assert_eq!(idx.get_raw(n).map(|s| s.value), Some(map[n].0), "{}", n);
    }
    // Through the descriptor (live "/dev/null" core: the process interface only): 1,000
    // random names resolve to exactly the listed addresses (no displacement for a kallsyms copy).
    let kd = open(Some(&path), Some("/dev/null"), libc::O_RDONLY);
    let mut rng = Rng::new();
    let names: Vec<&str> = (0..1000)
        .map(|_| order[(rng.next() % order.len() as u64) as usize].as_str())
        .collect();
    let bytes: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
    let got = kd.lock().nlist(&bytes).unwrap();
    for (n, g) in names.iter().zip(&got) {
        let s = g.unwrap_or_else(|| panic!("{} not found", n));
        assert_eq!(s.value, map[*n].0, "{}", n);
        assert_eq!(s.n_type, letter_type(map[*n].1), "{}", n);
    }
    // Module symbols are in (qemu_fw_cfg is loaded in the guest).
    let modsym = text.lines().find(|l| l.ends_with("[qemu_fw_cfg]")).unwrap();
    let modname = modsym.split_whitespace().nth(2).unwrap();
    let got = kd.lock().nlist(&[modname.as_bytes()]).unwrap();
    assert_eq!(got[0].unwrap().value, map[modname].0);
}

#[test]
fn debian_placeholder_and_stripped_vmlinux() {
    let dir = dumps_dir();
    let map = dir.join("System.map");
    let vmlinux = dir.join("vmlinux");
    let vmlinuz = dir.join("vmlinuz");
    if !map.exists() || !vmlinux.exists() {
        eprintln!("skipped: {} has no System.map/vmlinux", dir.display());
        return;
    }
    let err = symbols::load_file(&map).unwrap_err().to_string();
    eprintln!("{}", err);
    assert!(
        err.contains("placeholder") && err.contains("-dbg") && err.contains("/proc/kallsyms"),
        "{}",
        err
    );
    // Through kvm_nlist too: an error, not an empty success.
    let kd = open(Some(&map), Some("/dev/null"), libc::O_RDONLY);
    let err = kd.lock().nlist(&[b"linux_banner"]).unwrap_err().to_string();
    assert!(err.contains("placeholder"), "{}", err);

    let err = symbols::load_file(&vmlinux).unwrap_err().to_string();
    eprintln!("{}", err);
    assert!(
        err.contains("no symbol table") && err.contains("System.map") && err.contains("kallsyms"),
        "{}",
        err
    );
    if vmlinuz.exists() {
        let err = symbols::load_file(&vmlinuz).unwrap_err().to_string();
        eprintln!("{}", err);
        assert!(
            err.contains("bzImage") && err.contains("System.map or vmlinux"),
            "{}",
            err
        );
    }
}

/// (name, value, bind, type, section, expected n_type)
fn synthetic_symbols(is64: bool) -> Vec<(Sym, u8)> {
    let base: u64 = if is64 {
        0xffff_ffff_8100_0000
    } else {
        0xc040_0000
    };
    let s = |name: &str, off: u64, bind: u8, typ: u8, shndx: u16, want: u8| {
        let value = if shndx == SHN_ABS || shndx == SHN_UNDEF || shndx == SHN_COMMON {
            off
        } else {
            base + off
        };
        (
            Sym {
                name: name.into(),
                value,
                bind,
                typ,
                shndx,
            },
            want,
        )
    };
    vec![
        // Linux-style
        s("_text", 0, STB_GLOBAL, STT_NOTYPE, SEC_TEXT, N_TEXT | N_EXT),
        s(
            "start_kernel",
            0x10,
            STB_GLOBAL,
            STT_FUNC,
            SEC_TEXT,
            N_TEXT | N_EXT,
        ),
        s(
            "linux_banner",
            0x100_0000,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_RODATA,
            N_TEXT | N_EXT,
        ),
        s(
            "init_task",
            0x200_0040,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "jiffies_64",
            0x200_0080,
            STB_WEAK,
            STT_OBJECT,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "__per_cpu_start",
            0,
            STB_GLOBAL,
            STT_NOTYPE,
            SHN_ABS,
            N_ABS | N_EXT,
        ),
        s("static_helper", 0x20, STB_LOCAL, STT_FUNC, SEC_TEXT, N_TEXT),
        s(
            "local_counter",
            0x300_0010,
            STB_LOCAL,
            STT_OBJECT,
            SEC_BSS,
            N_BSS,
        ),
        s("vmlinux.o", 0, STB_LOCAL, STT_FILE, SHN_ABS, N_FN),
        // FreeBSD-style
        s(
            "allproc",
            0x300_0100,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_BSS,
            N_BSS | N_EXT,
        ),
        s(
            "nprocs",
            0x200_0100,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "hz",
            0x200_0104,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "mp_maxcpus",
            0x200_0108,
            STB_GLOBAL,
            STT_OBJECT,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "__start_set_pcpu",
            0x200_0200,
            STB_GLOBAL,
            STT_NOTYPE,
            SEC_DATA,
            N_DATA | N_EXT,
        ),
        s(
            "kernbase",
            if is64 {
                0xffff_ffff_8000_0000
            } else {
                0xc000_0000
            },
            STB_GLOBAL,
            STT_NOTYPE,
            SHN_ABS,
            N_ABS | N_EXT,
        ),
        s("kern_ident_file.c", 0, STB_LOCAL, STT_FILE, SHN_ABS, N_FN),
        s(
            "undefined_weak",
            0,
            STB_WEAK,
            STT_NOTYPE,
            SHN_UNDEF,
            N_UNDF | N_EXT,
        ),
        s(
            "common_thing",
            16,
            STB_GLOBAL,
            STT_OBJECT,
            SHN_COMMON,
            N_UNDF | N_EXT,
        ),
        s(
            "top_of_addr",
            if is64 { u64::MAX - 7 } else { 0xffff_fff8 },
            STB_GLOBAL,
            STT_NOTYPE,
            SHN_ABS,
            N_ABS | N_EXT,
        ),
    ]
}

#[test]
fn synthetic_elf_all_classes_and_byte_orders() {
    for (is64, le, machine, osabi) in [
        (true, true, EM_X86_64, 0),
        (true, true, EM_X86_64, 9),
        (false, true, EM_386, 9),
        (true, false, EM_PPC64, 9),
        (false, false, EM_PPC, 0),
    ] {
        let syms = synthetic_symbols(is64);
        let plain: Vec<Sym> = syms.iter().map(|s| s.0.clone()).collect();
        let img = write_elf(is64, le, machine, osabi, &plain);
        let path = tmp(&format!(
            "synthetic-{}-{}-{}.elf",
            if is64 { 64 } else { 32 },
            if le { "le" } else { "be" },
            osabi
        ));
        std::fs::write(&path, &img).unwrap();
        let idx = symbols::load_file(&path).unwrap();
        assert_eq!(idx.kind, SymbolKind::Elf);
        assert_eq!(idx.len(), syms.len());
        for (s, want) in &syms {
            let got = idx
                .get_raw(&s.name)
                .unwrap_or_else(|| panic!("{} missing", s.name));
            assert_eq!(
                got.value,
                s.value,
                "{} value ({}-bit {})",
                s.name,
                if is64 { 64 } else { 32 },
                if le { "LE" } else { "BE" }
            );
            assert_eq!(got.n_type, *want, "{} n_type", s.name);
        }
        // The same from memory (the parser the fuzz target uses).
        let idx2 = symbols::elf::parse_bytes(&img, "mem").unwrap();
        assert_eq!(idx2.len(), idx.len());
    }
}

#[test]
fn synthetic_elf_through_kvm_nlist() {
    // FreeBSD-style names without _text: no displacement on the live descriptor.
    let syms: Vec<(Sym, u8)> = synthetic_symbols(true)
        .into_iter()
        .filter(|s| s.0.name != "_text")
        .collect();
    let plain: Vec<Sym> = syms.iter().map(|s| s.0.clone()).collect();
    let path = tmp("synthetic-kvm.elf");
    std::fs::write(&path, write_elf(true, true, EM_X86_64, 9, &plain)).unwrap();
    let kd = open(Some(&path), Some("/dev/null"), libc::O_RDONLY);
    let got = kd
        .lock()
        .nlist(&[
            b"_hz",
            b"_nprocs",
            b"allproc",
            b"_mp_maxcpus",
            b"_kernbase",
            b"nope",
            b"_nope",
        ])
        .unwrap();
    let val = |n: &str| syms.iter().find(|s| s.0.name == n).unwrap().0.value;
    assert_eq!(got[0].unwrap().value, val("hz"));
    assert_eq!(got[0].unwrap().n_type, N_DATA | N_EXT);
    assert_eq!(got[1].unwrap().value, val("nprocs"));
    assert_eq!(got[2].unwrap().value, val("allproc"));
    assert_eq!(got[2].unwrap().n_type, N_BSS | N_EXT);
    assert_eq!(got[3].unwrap().value, val("mp_maxcpus"));
    assert_eq!(got[4].unwrap().value, val("kernbase"));
    assert!(got[5].is_none() && got[6].is_none());
}

#[test]
fn duplicate_names_later_elf_symbol_wins() {
    let mk = |v: u64, bind: u8| Sym {
        name: "dup".into(),
        value: v,
        bind,
        typ: STT_OBJECT,
        shndx: SEC_DATA,
    };
    // locals are written first, so the global is the later one
    let img = write_elf(
        true,
        true,
        EM_X86_64,
        0,
        &[mk(0x1000, STB_GLOBAL), mk(0x2000, STB_LOCAL)],
    );
    let idx = symbols::elf::parse_bytes(&img, "dup").unwrap();
    assert_eq!(idx.get_raw("dup").unwrap().value, 0x1000);
    assert_eq!(idx.get_raw("dup").unwrap().n_type, N_DATA | N_EXT);
}

#[test]
fn truncated_elf_is_a_clear_error() {
    let plain: Vec<Sym> = synthetic_symbols(true).into_iter().map(|s| s.0).collect();
    let img = write_elf(true, true, EM_X86_64, 0, &plain);
    let (shoff, symoff, symsize) = layout(&img);
    for cut in [
        4,
        20,
        63,
        shoff as usize + 10,
        shoff as usize + 64 * 3,
        (symoff + symsize / 2) as usize,
    ] {
        let path = tmp(&format!("truncated-{}.elf", cut));
        std::fs::write(&path, &img[..cut]).unwrap();
        let err = symbols::load_file(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{}", err);
        assert!(
            err.contains("truncated") || err.contains("bad ELF"),
            "cut {}: {}",
            cut,
            err
        );
        eprintln!("cut at {}: {}", cut, err);
    }
    // Every prefix from memory: an error or a (partial) index, never a panic.
    for cut in 0..img.len() {
        let _ = symbols::elf::parse_bytes(&img[..cut], "mem");
    }
    // Garbage written over the section header table.
    let mut bad = img.clone();
    for b in &mut bad[shoff as usize..] {
        *b = 0xff;
    }
    assert!(symbols::elf::parse_bytes(&bad, "garbage").is_err());
}

#[test]
fn system_map_lines_and_errors() {
    let good =
        "ffffffff81000000 T _text\nffffffff82000000 D init_task\nffffffff83000000 B some_bss\n";
    let mixed = format!(
        "{}this is not a symbol line\nffffffffzz000000 T badhex\n00000000000000001 T too_long_addr\nffffffff84000000 T\n\nffffffff85000000 r ro_thing\n",
        good
    );
    let path = tmp("mixed.map");
    std::fs::write(&path, &mixed).unwrap();
    let idx = symbols::load_file(&path).unwrap();
    assert_eq!(idx.kind, SymbolKind::SystemMap);
    assert_eq!(idx.len(), 4);
    assert_eq!(idx.skipped_lines, 4);
    assert_eq!(idx.first_skipped_line, 4);
    assert_eq!(
        idx.get_raw("init_task").unwrap().value,
        0xffff_ffff_8200_0000
    );
    assert_eq!(idx.get_raw("init_task").unwrap().n_type, N_DATA | N_EXT);
    assert_eq!(idx.get_raw("some_bss").unwrap().n_type, N_BSS | N_EXT);
    assert_eq!(idx.get_raw("ro_thing").unwrap().n_type, N_TEXT);

    // Nothing parses: an error naming the first bad line.
    let path = tmp("allbad.map");
    std::fs::write(&path, "hello world\nsecond line here\n").unwrap();
    let err = symbols::load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && err.contains("hello world") && err.contains("2 malformed"),
        "{}",
        err
    );

    // A kallsyms copy taken without privilege: all zero.
    let path = tmp("zeros.kallsyms");
    std::fs::write(
        &path,
        "0000000000000000 T _text\n0000000000000000 D jiffies\n",
    )
    .unwrap();
    let err = symbols::load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("every symbol address is 0") && err.contains("kptr_restrict"),
        "{}",
        err
    );

    // A non-ELF binary file.
    let path = tmp("random.bin");
    let bin: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bin).unwrap();
    let err = symbols::load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("not an ELF kernel image, System.map or kallsyms"),
        "{}",
        err
    );

    // Empty file.
    let path = tmp("empty.map");
    std::fs::write(&path, "").unwrap();
    let err = symbols::load_file(&path).unwrap_err().to_string();
    assert!(err.contains("empty"), "{}", err);

    // Missing file: the path and strerror.
    let path = tmp("does-not-exist.map");
    let err = symbols::load_file(&path).unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT);
    assert_eq!(
        err.to_string(),
        format!("{}: No such file or directory", path.display())
    );
    // ... and through kvm_nlist.
    let kd = open(Some(&path), Some("/dev/null"), libc::O_RDONLY);
    let err = kd.lock().nlist(&[b"x"]).unwrap_err().to_string();
    assert!(err.contains("No such file or directory"), "{}", err);
}

#[test]
fn relocation_of_execfiles_on_live() {
    // The running kernel's _text, as the test reads it (0 when hidden: then no displacement).
    let live_text = std::fs::read_to_string("/proc/kallsyms")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[2] == "_text").then(|| u64::from_str_radix(f[0], 16).unwrap())
            })
        })
        .unwrap_or(0);
    let disp = if live_text == 0 {
        0
    } else {
        live_text.wrapping_sub(0xffff_ffff_8100_0000)
    };
    // A System.map holds link-time addresses: shifted by the running kernel's displacement.
    let path = tmp("linktime.map");
    std::fs::write(&path, "ffffffff81000000 T _text\nffffffff81234560 T some_function\nffffffff82a00000 D some_data\n").unwrap();
    assert_eq!(
        symbols::load_file(&path).unwrap().kind,
        SymbolKind::SystemMap
    );
    let kd = open(Some(&path), Some("/dev/null"), libc::O_RDONLY);
    let got = kd.lock().nlist(&[b"some_function", b"_some_data"]).unwrap();
    assert_eq!(
        got[0].unwrap().value,
        0xffff_ffff_8123_4560u64.wrapping_add(disp)
    );
    assert_eq!(
        got[1].unwrap().value,
        0xffff_ffff_82a0_0000u64.wrapping_add(disp)
    );
    assert_eq!(got[1].unwrap().n_type, N_DATA | N_EXT);
    // A kallsyms copy of a KASLR kernel (no modules loaded): run-time addresses, used as is.
    let path = tmp("kaslr-copy.kallsyms");
    std::fs::write(
        &path,
        "ffffffffb9400000 T _text\nffffffffba561900 D linux_banner\n",
    )
    .unwrap();
    assert_eq!(
        symbols::load_file(&path).unwrap().kind,
        SymbolKind::Kallsyms
    );
    let kd = open(Some(&path), Some("/dev/null"), libc::O_RDONLY);
    let got = kd.lock().nlist(&[b"linux_banner"]).unwrap();
    assert_eq!(got[0].unwrap().value, 0xffff_ffff_ba56_1900);
}
