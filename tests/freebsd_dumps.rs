//! FreeBSD crash dumps read on Linux: fixtures written by tests/fbsd/writer.rs (amd64 minidumps
//! v1-v3 and full ELF dumps, arm64 minidumps v1-v3 with 4 KiB and 16 KiB pages, i386 minidumps
//! v1-v2 PAE and non-PAE), read back through the public descriptor API.

#[path = "fbsd/writer.rs"]
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kvm::abi::KvmPage;
use kvm::{Kvm, OpenArgs};
use writer::*;

const KERNBASE: u64 = 0xffff_ffff_8000_0000;
const DMAPBASE: u64 = 0xffff_f800_0000_0000;
const GIB: u64 = 1 << 30;
const MIB2: u64 = 1 << 21;

struct TempDir(PathBuf);
impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kvm-fbsd-{}-{}", name, std::process::id()));
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

fn open_with(core: &Path, syms: Vec<(&'static str, u64)>) -> kvm::Result<Box<Kvm>> {
    let table: BTreeMap<Vec<u8>, u64> = syms
        .into_iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v))
        .collect();
    Kvm::open(OpenArgs {
        execfile: None,
        corefile: Some(core.as_os_str()),
        flags: 0,
        program: None,
        resolver: Some(Box::new(move |name: &[u8]| table.get(name).copied())),
    })
}

fn open(core: &Path) -> Box<Kvm> {
    open_with(core, vec![]).unwrap_or_else(|e| panic!("open {}: {}", core.display(), e))
}

fn read(k: &Kvm, va: u64, len: usize) -> kvm::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let n = k.lock().read(va, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn expect_err(k: &Kvm, va: u64, len: usize) -> String {
    match read(k, va, len) {
        Ok(b) => panic!(
            "read at 0x{:x} succeeded with {} bytes, expected failure",
            va,
            b.len()
        ),
        Err(e) => {
            let s = e.to_string();
            assert!(
                s.contains(&format!("0x{:x}", va)),
                "error {:?} does not name 0x{:x}",
                s,
                va
            );
            s
        }
    }
}

// ---------------------------------------------------------------------------------------------
// amd64

struct Amd64Fixture {
    m: Amd64Machine,
    /// Pages dumped although only reachable through the direct map.
    extra: Vec<u64>,
    /// Kernel-map VAs of pages with known content (one per filled mapped page).
    kvas: Vec<u64>,
    holes: Vec<u64>,
}

fn amd64_fixture() -> Amd64Fixture {
    let chunks = vec![
        (0x1000, 0x9f000),
        (0x10_0000, 0x400_0000),
        (0x4000_0000, 0x8000_0000),
    ];
    let mut m = Amd64Machine::new(chunks, 0x200_0000, DMAPBASE, DMAPBASE + 0x8000_0000);
    // Direct map: two 1 GiB pages, as pmap's create_pagetables does.
    m.map(DMAPBASE, 0, GIB, PG_RW | PG_NX);
    m.map(DMAPBASE + GIB, GIB, GIB, PG_RW | PG_NX);
    let mut kvas = Vec::new();
    // Kernel image: two 2 MiB pages, fully filled.
    for i in 0..2u64 {
        m.map(
            KERNBASE + 0x20_0000 + i * MIB2,
            0x20_0000 + i * MIB2,
            MIB2,
            PG_RW,
        );
    }
    for pa in (0x20_0000..0x60_0000).step_by(4096) {
        m.phys.fill(pa);
        kvas.push(KERNBASE + pa);
    }
    // 4 KiB pages, scattered in descending physical order, with two holes.
    let mut holes = Vec::new();
    for i in 0..16u64 {
        let va = KERNBASE + 0x60_0000 + i * 4096;
        if i == 5 || i == 11 {
            holes.push(va);
            continue;
        }
        let pa = 0x300_0000 + (15 - i) * 0x3000;
        m.map(va, pa, 4096, if i % 2 == 0 { PG_RW } else { PG_NX });
        m.phys.fill(pa);
        kvas.push(va);
    }
    // Another 2 MiB page, read-only and NX.
    m.map(KERNBASE + 0xa0_0000, 0x100_0000, MIB2, PG_NX);
    for pa in (0x100_0000..0x120_0000).step_by(4096) {
        m.phys.fill(pa);
        kvas.push(KERNBASE + 0xa0_0000 + pa - 0x100_0000);
    }
    // A 1 GiB page with content at its edges and across an inner 2 MiB boundary.
    let g = 0xffff_ffff_c000_0000;
    m.map(g, 0x4000_0000, GIB, PG_RW);
    for off in [0u64, 0x1f_f000, 0x20_0000, 0x3fff_e000, 0x3fff_f000] {
        m.phys.fill(0x4000_0000 + off);
        kvas.push(g + off);
    }
    holes.push(KERNBASE + 0x70_0000); // no PTE page at all there
    holes.push(KERNBASE + 0x1000); // below the kernel image
    let extra = vec![0x5000, 0x280_0000, 0x280_1000];
    for &pa in &extra {
        m.phys.fill(pa);
    }
    // KPML4phys lives in the kernel image's data.
    m.finalize(KERNBASE, KERNBASE + 0x30_0100);
    Amd64Fixture {
        m,
        extra,
        kvas,
        holes,
    }
}

fn amd64_syms(f: &Amd64Fixture) -> Vec<(&'static str, u64)> {
    vec![
        ("kernbase", f.m.kernbase_sym),
        ("KPML4phys", f.m.kpml4phys_sym),
    ]
}

/// Kernel-map length covered by the minidump page map: from KERNBASE to the top of memory.
const KVA_LEN: u64 = 0u64.wrapping_sub(KERNBASE);

struct Amd64Files {
    _dir: TempDir,
    elf: PathBuf,
    mini: Vec<(u32, PathBuf)>,
}

fn amd64_files(f: &Amd64Fixture, name: &str) -> Amd64Files {
    let dir = TempDir::new(name);
    let elf = dir.file("vmcore.elf");
    write_amd64_elf(&elf, &f.m);
    let mini = (1..=3)
        .map(|v| {
            let p = dir.file(&format!("vmcore.v{}", v));
            write_amd64_minidump(&p, &f.m, v, KERNBASE, KVA_LEN, &f.extra);
            (v, p)
        })
        .collect();
    Amd64Files {
        _dir: dir,
        elf,
        mini,
    }
}

/// Addresses read in every amd64 format, with the expected bytes from the model.
fn amd64_samples(f: &Amd64Fixture) -> Vec<(u64, usize)> {
    let mut v: Vec<(u64, usize)> = f.kvas.iter().map(|&va| (va, 4096)).collect();
    // Across page boundaries: 4 KiB pages with discontiguous frames, 2 MiB -> 2 MiB, inside 1 GiB.
    v.push((KERNBASE + 0x60_0800, 4096));
    v.push((KERNBASE + 0x60_0123, 3 * 4096));
    v.push((KERNBASE + 0x3f_f800, 8192));
    v.push((0xffff_ffff_c01f_f800, 4096));
    v.push((0xffff_ffff_fffe_ff00, 0x1100));
    v.push((KERNBASE + 0x20_0000, 0x40_0000)); // 4 MiB at once
                                               // Direct map.
    for &pa in &f.extra {
        v.push((DMAPBASE + pa, 4096));
    }
    v.push((DMAPBASE + 0x280_0800, 4096));
    v.push((DMAPBASE + 0x20_0000 + 0x10, 100));
    v
}

fn check_reads(k: &Kvm, f: &Amd64Fixture, what: &str) {
    for (va, len) in amd64_samples(f) {
        let pa = f.m.truth(va).unwrap();
        let want = f.m.phys.read(pa, 0).len(); // keep the model honest about zero-length reads
        assert_eq!(want, 0);
        let got =
            read(k, va, len).unwrap_or_else(|e| panic!("{}: read 0x{:x}+{}: {}", what, va, len, e));
        assert_eq!(got.len(), len, "{}: short read at 0x{:x}", what, va);
        // Expected bytes page by page through the model (mappings are not contiguous in pa).
        let mut want = Vec::with_capacity(len);
        let mut a = va;
        while want.len() < len {
            let n = ((4096 - (a & 4095)) as usize).min(len - want.len());
            want.extend(f.m.phys.read(f.m.truth(a).unwrap(), n));
            a = a.wrapping_add(n as u64);
        }
        assert!(
            got == want,
            "{}: content differs at 0x{:x}+{}",
            what,
            va,
            len
        );
    }
}

#[test]
fn amd64_all_formats_read_known_content() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "reads");
    let elf = open_with(&files.elf, amd64_syms(&f)).unwrap();
    check_reads(&elf, &f, "ELF full dump");
    assert!(elf.lock().native() == cfg!(target_arch = "x86_64"));
    assert_eq!(elf.lock().kerndisp(), 0);
    for (v, p) in &files.mini {
        let k = open(p);
        check_reads(&k, &f, &format!("minidump v{}", v));
        assert!(k.lock().native() == cfg!(target_arch = "x86_64"));
        assert_eq!(k.lock().kerndisp(), 0);
    }
}

#[test]
fn amd64_formats_read_identically() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "same");
    let elf = open_with(&files.elf, amd64_syms(&f)).unwrap();
    let minis: Vec<_> = files.mini.iter().map(|(v, p)| (*v, open(p))).collect();
    let mut n = 0;
    for (va, len) in amd64_samples(&f) {
        let a = read(&elf, va, len).unwrap();
        for (v, k) in &minis {
            assert!(
                read(k, va, len).unwrap() == a,
                "v{} differs from ELF at 0x{:x}",
                v,
                va
            );
        }
        n += 1;
    }
    assert!(n > 1500, "only {} samples", n);
}

#[test]
fn amd64_unmapped_addresses_fail_naming_the_address() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "unmapped");
    let elf = open_with(&files.elf, amd64_syms(&f)).unwrap();
    let minis: Vec<_> = files.mini.iter().map(|(v, p)| (*v, open(p))).collect();
    for &va in &f.holes {
        expect_err(&elf, va, 16);
        for (_, k) in &minis {
            expect_err(k, va, 16);
        }
    }
    // A read that starts mapped and runs into a hole fails as a whole (kvm_read returns -1).
    let before_hole = f.holes[0] - 4096 + 100;
    for (_, k) in &minis {
        let e = expect_err(k, f.holes[0], 1);
        assert!(e.contains("pte not valid"), "{}", e);
        assert!(read(k, before_hole, 8192).is_err());
    }
    assert!(read(&elf, before_hole, 8192).is_err());
    // Physical memory outside the dump through the direct map: a gap between RAM chunks.
    expect_err(&elf, DMAPBASE + 0xa_0000, 8);
    for (_, k) in &minis {
        let e = expect_err(k, DMAPBASE + 0xa_0000, 8);
        assert!(e.contains("not in minidump"), "{}", e);
        // RAM that was not dumped.
        expect_err(k, DMAPBASE + 0x380_0000, 8);
        // Neither kernel map nor direct map.
        let e = expect_err(k, 0x1000, 8);
        assert!(e.contains("not minidumped"), "{}", e);
    }
}

fn pages_by_kva(pages: &[KvmPage]) -> BTreeMap<u64, KvmPage> {
    pages
        .iter()
        .filter(|p| p.kp_kmap_vaddr != 0)
        .map(|p| (p.kp_kmap_vaddr, *p))
        .collect()
}

#[test]
fn amd64_walk_pages_visits_exactly_the_dumped_set() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "walk");
    let elf = open_with(&files.elf, amd64_syms(&f)).unwrap();
    let (pages, done) = elf.lock().walk_pages_collect().unwrap();
    assert!(
        pages.is_empty() && !done,
        "ELF dumps have no kvm_walk_pages"
    );
    let kmaps: Vec<&Mapping> = f.m.maps.iter().filter(|m| m.va >= KERNBASE).collect();
    for (v, p) in &files.mini {
        let k = open(p);
        let (pages, done) = k.lock().walk_pages_collect().unwrap();
        assert!(done, "v{} walk did not complete", v);
        let file = std::fs::File::open(p).unwrap();
        let at = |off: i64| {
            use std::os::unix::fs::FileExt;
            let mut b = vec![0u8; 4096];
            file.read_exact_at(&mut b, off as u64).unwrap();
            b
        };
        // Phase 1: exactly the kernel map, in VA order.
        let kpages = pages_by_kva(&pages);
        let phase1: Vec<&KvmPage> = pages.iter().take_while(|p| p.kp_kmap_vaddr != 0).collect();
        assert_eq!(
            phase1.len(),
            kpages.len(),
            "v{}: kernel-map records not first or repeated",
            v
        );
        assert!(phase1
            .windows(2)
            .all(|w| w[0].kp_kmap_vaddr < w[1].kp_kmap_vaddr));
        let mut expect = BTreeMap::new();
        for m in &kmaps {
            let step = if *v == 1 { 4096 } else { m.size.min(MIB2) };
            let mut a = 0;
            while a < m.size {
                expect.insert(m.va + a, (m.pa + a, step));
                a += step;
            }
        }
        let got: BTreeMap<u64, (u64, u64)> = kpages
            .iter()
            .map(|(&va, p)| (va, (p.kp_paddr, p.kp_len)))
            .collect();
        assert!(
            got == expect,
            "v{}: kernel-map walk differs ({} vs {} records)",
            v,
            got.len(),
            expect.len()
        );
        for p in kpages.values() {
            assert_eq!(p.kp_version, 2);
            assert_eq!(p.kp_dmap_vaddr, DMAPBASE + p.kp_paddr);
            let m =
                f.m.maps
                    .iter()
                    .find(|m| m.va <= p.kp_kmap_vaddr && p.kp_kmap_vaddr - m.va < m.size)
                    .unwrap();
            let want = 1
                | if m.flags & PG_RW != 0 { 2 } else { 0 }
                | if m.flags & PG_NX == 0 { 4 } else { 0 };
            assert_eq!(p.kp_prot, want, "v{} prot at 0x{:x}", v, p.kp_kmap_vaddr);
            assert!(p.kp_offset > 0);
            // Content at kp_offset: every page with data, and a sample of the zero pages.
            if f.m.phys.data.contains_key(&p.kp_paddr) || p.kp_paddr % (64 * 4096) == 0 {
                assert!(
                    at(p.kp_offset) == f.m.phys.read(p.kp_paddr, 4096),
                    "v{} kp_offset of 0x{:x}",
                    v,
                    p.kp_paddr
                );
            }
        }
        // Phase 2: every other dumped page once, with no kernel-map address.
        let covered: BTreeSet<u64> = expect
            .values()
            .flat_map(|&(pa, len)| (0..len / 4096).map(move |i| pa + i * 4096))
            .collect();
        let rest: Vec<&KvmPage> = pages[phase1.len()..].iter().collect();
        assert!(rest
            .iter()
            .all(|p| p.kp_kmap_vaddr == 0 && p.kp_len == 4096 && p.kp_prot == 3));
        let rest_pa: Vec<u64> = rest.iter().map(|p| p.kp_paddr).collect();
        let mut want_rest: Vec<u64> = f.extra.clone();
        if *v >= 2 {
            want_rest.extend(f.m.table_pages().into_iter().filter(|pa| {
                // Page-table pages the minidump page map references (PT pages under PDEs).
                (0..KVA_LEN >> 21).any(|i| {
                    let pde = f.m.pde_for(KERNBASE.wrapping_add(i << 21));
                    pde & PG_V != 0 && pde & PG_PS == 0 && pde & 0x000f_ffff_ffff_f000 == *pa
                })
            }));
        }
        want_rest.retain(|pa| !covered.contains(pa));
        want_rest.sort();
        assert_eq!(rest_pa, want_rest, "v{}: phase 2 pages", v);
        for p in rest {
            assert_eq!(p.kp_dmap_vaddr, DMAPBASE + p.kp_paddr);
            assert!(at(p.kp_offset) == f.m.phys.read(p.kp_paddr, 4096));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged files

fn open_err(p: &Path, syms: Vec<(&'static str, u64)>) -> String {
    match open_with(p, syms) {
        Ok(_) => panic!("{} opened although damaged", p.display()),
        Err(e) => e.to_string(),
    }
}

/// A copy of `src` cut to `len` bytes: the first 256 KiB (headers, bitmaps) are copied, the
/// rest stays a hole (the fixtures' page data is not needed by these checks).
fn copy_truncated(src: &Path, dst: &Path, len: u64) {
    use std::os::unix::fs::FileExt;
    let head_len = len.min(256 * 1024) as usize;
    let mut head = vec![0u8; head_len];
    std::fs::File::open(src)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    let out = std::fs::File::create(dst).unwrap();
    out.write_all_at(&head, 0).unwrap();
    out.set_len(len).unwrap();
}

#[test]
fn damaged_files_give_precise_errors() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "damaged");
    let dir = TempDir::new("damaged-out");
    let v3 = &files.mini[2].1;
    let mut hdr = vec![0u8; 4096];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(v3).unwrap(), &mut hdr, 0)
        .unwrap();
    let msgbufsize = u32::from_le_bytes(hdr[28..32].try_into().unwrap()) as u64;
    let bitmapsize = u32::from_le_bytes(hdr[32..36].try_into().unwrap()) as u64;
    let pmapsize = u32::from_le_bytes(hdr[36..40].try_into().unwrap()) as u64;
    let rnd = |x: u64| x.div_ceil(4096) * 4096;
    let bitmap_off = 4096 + rnd(msgbufsize) + 4096;
    let pmap_off = bitmap_off + rnd(bitmapsize);
    let sparse = pmap_off + rnd(pmapsize);
    let p = dir.file("t");
    copy_truncated(v3, &p, 50);
    assert!(open_err(&p, vec![]).contains("cannot read dump header"));
    copy_truncated(v3, &p, bitmap_off + 10);
    let e = open_err(&p, vec![]);
    assert!(
        e.contains("bitmap") && e.contains("extends past the end"),
        "{}",
        e
    );
    copy_truncated(v3, &p, pmap_off + 4096);
    let e = open_err(&p, vec![]);
    assert!(
        e.contains("page map") && e.contains("extends past the end"),
        "{}",
        e
    );
    copy_truncated(v3, &p, sparse + 4096 * 3);
    let e = open_err(&p, vec![]);
    assert!(
        e.contains("truncated minidump") && e.contains("bitmap lists"),
        "{}",
        e
    );
    // Unknown version.
    let mut b = hdr.clone();
    put32(&mut b, 24, 7);
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("wrong minidump version. expected 3 got 7"));
    put32(&mut b, 24, 0);
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("got 0"));
    // A bitmap size larger than the file.
    let mut b = hdr.clone();
    put32(&mut b, 32, 0xffff_f000);
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("extends past the end"));
    // Another platform's minidump.
    let mut b = vec![0u8; 4096];
    b[..24].copy_from_slice(b"minidump FreeBSD/sparc64");
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("sparc64"));
    // Magic field with trailing junk (libkvm compares all 24 bytes).
    let mut b = hdr.clone();
    b[22] = b'X';
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("not a minidump for this platform"));
    // arm64 unknown page-size flag.
    let mut b = vec![0u8; 4096];
    b[..22].copy_from_slice(b"minidump FreeBSD/arm64");
    put32(&mut b, 24, 3);
    put32(&mut b, 76, 2);
    std::fs::write(&p, &b).unwrap();
    assert!(open_err(&p, vec![]).contains("unknown page size flag 2"));
    // ELF: no symbols, truncated segment, cut program headers.
    let e = open_err(&files.elf, vec![]);
    assert!(e.contains("bad namelist - no kernbase"), "{}", e);
    let e = open_err(&files.elf, vec![("kernbase", KERNBASE)]);
    assert!(e.contains("bad namelist - no KPML4phys"), "{}", e);
    let len = std::fs::metadata(&files.elf).unwrap().len();
    copy_truncated(&files.elf, &p, len - 4096);
    let e = open_err(&p, amd64_syms(&f));
    assert!(
        e.contains("truncated core") && e.contains("program header 2"),
        "{}",
        e
    );
    copy_truncated(&files.elf, &p, 64 + 56);
    let e = open_err(&p, amd64_syms(&f));
    assert!(e.contains("program header table"), "{}", e);
    // KPML4phys pointing outside the dump.
    let e = open_err(
        &files.elf,
        vec![
            ("kernbase", KERNBASE),
            ("KPML4phys", KERNBASE + 0x3000_0000),
        ],
    );
    assert!(e.contains("cannot read KPML4phys"), "{}", e);
}

// ---------------------------------------------------------------------------------------------
// arm64

const ARM_KERNBASE: u64 = 0xffff_0000_0000_0000;
const ARM_DMAPBASE: u64 = 0xffff_a000_0000_0000;

fn arm64_fixture(page: u64) -> (Arm64Machine, Vec<u64>, Vec<u64>) {
    let chunks = vec![(0x4000_0000, 0x4800_0000), (0x5000_0000, 0x5100_0000)];
    let mut m = Arm64Machine::new(page, chunks, ARM_KERNBASE, ARM_DMAPBASE);
    let mut kvas = Vec::new();
    // Kernel text: a 2 MiB block (written as L3 pages), read-only executable.
    m.map(ARM_KERNBASE + 0x20_0000, 0x4020_0000, MIB2, ATTR_AP_RO);
    for i in 0..MIB2 / page {
        m.phys.fill(0x4020_0000 + i * page);
        kvas.push(ARM_KERNBASE + 0x20_0000 + i * page);
    }
    // Scattered single pages, non-executable data; one in the second RAM chunk.
    for i in 0..8u64 {
        if i == 3 {
            continue;
        }
        let pa = if i == 6 {
            0x5000_0000 + 5 * page
        } else {
            0x4100_0000 + (8 - i) * 3 * page
        };
        let va = ARM_KERNBASE + 0x40_0000 + i * page;
        m.map(va, pa, page, ATTR_XN);
        m.phys.fill(pa);
        kvas.push(va);
    }
    let extra = vec![0x4200_0000, 0x5000_0000];
    for &pa in &extra {
        m.phys.fill(pa);
    }
    (m, kvas, extra)
}

fn check_arm64(page: u64, version: u32) {
    let (m, kvas, extra) = arm64_fixture(page);
    let dir = TempDir::new(&format!("arm64-{}-{}", page, version));
    let p = dir.file("vmcore");
    write_arm64_minidump(&p, &m, version, &extra);
    let k = open(&p);
    assert!(!k.lock().native() || cfg!(target_arch = "aarch64"));
    let what = format!("arm64 {}K v{}", page / 1024, version);
    let mut samples: Vec<(u64, usize)> = kvas.iter().map(|&v| (v, page as usize)).collect();
    samples.push((ARM_KERNBASE + 0x40_0000 + 100, 2 * page as usize)); // across scattered pages
    samples.push((ARM_KERNBASE + 0x20_0000 + 7, MIB2 as usize)); // block -> next page
    for &pa in &extra {
        samples.push((ARM_DMAPBASE + pa - 0x4000_0000, page as usize));
    }
    samples.push((ARM_DMAPBASE + 0x20_0000 + page - 8, 16));
    for (va, len) in samples {
        let got = read(&k, va, len).unwrap_or_else(|e| panic!("{}: 0x{:x}: {}", what, va, e));
        let mut want = Vec::new();
        let mut a = va;
        while want.len() < len {
            let n = ((page - (a & (page - 1))) as usize).min(len - want.len());
            want.extend(m.phys.read(m.truth(a).unwrap(), n));
            a += n as u64;
        }
        assert!(got == want, "{}: content differs at 0x{:x}", what, va);
    }
    expect_err(&k, ARM_KERNBASE + 0x40_0000 + 3 * page, 8);
    expect_err(&k, ARM_KERNBASE + 0x1000_0000, 8);
    expect_err(&k, ARM_DMAPBASE + 0x300_0000, 8); // RAM not dumped
    expect_err(&k, 0x1000, 8);
    // walk: kernel map pages (len = page) then the other dumped pages once.
    let (pages, done) = k.lock().walk_pages_collect().unwrap();
    assert!(done);
    let kp = pages_by_kva(&pages);
    assert_eq!(kp.len(), m.l3.len(), "{}", what);
    for p in kp.values() {
        assert_eq!(p.kp_len, page);
        assert_eq!(Some(p.kp_paddr), m.truth(p.kp_kmap_vaddr));
        assert_eq!(p.kp_dmap_vaddr, ARM_DMAPBASE + p.kp_paddr - 0x4000_0000);
        let ro = p.kp_kmap_vaddr < ARM_KERNBASE + 0x40_0000;
        assert_eq!(p.kp_prot, if ro { 1 | 4 } else { 1 | 2 }, "{} prot", what);
    }
    let rest: Vec<u64> = pages
        .iter()
        .filter(|p| p.kp_kmap_vaddr == 0)
        .map(|p| p.kp_paddr)
        .collect();
    assert_eq!(rest, extra, "{}: phase 2", what);
    assert_eq!(pages.len(), kp.len() + extra.len());
}

#[test]
fn arm64_minidumps_all_versions_and_page_sizes() {
    for v in 1..=3 {
        check_arm64(4096, v);
    }
    check_arm64(16384, 3);
}

// ---------------------------------------------------------------------------------------------
// i386

fn check_i386(pae: bool, version: u32, kernbase: u32) {
    let mut chunks = vec![(0x1000, 0x9f000), (0x10_0000, 0x200_0000)];
    if pae {
        chunks.push((0x1_0000_0000, 0x1_0100_0000)); // RAM above 4 GiB
    }
    let mut m = I386Machine::new(chunks, kernbase, pae);
    let kb = kernbase as u64;
    let mut kvas = Vec::new();
    // A superpage (4 MiB non-PAE / 2 MiB PAE) as fake PTEs.
    let sp = if pae { MIB2 } else { 2 * MIB2 };
    m.map(kb, 0x40_0000, sp, 2);
    for i in 0..sp / 4096 {
        if i % 7 == 0 {
            m.phys.fill(0x40_0000 + i * 4096);
        }
        kvas.push(kb + i * 4096);
    }
    for i in 0..6u64 {
        if i == 2 {
            continue;
        }
        let pa = if pae && i == 4 {
            0x1_0000_3000
        } else {
            0x100_0000 + (6 - i) * 0x2000
        };
        let va = kb + sp + i * 4096;
        m.map(va, pa, 4096, if pae && i == 1 { 1 << 63 } else { 0 });
        m.phys.fill(pa);
        kvas.push(va);
    }
    let extra = vec![0x2000];
    m.phys.fill(0x2000);
    let dir = TempDir::new(&format!("i386-{}-{}", pae, version));
    let p = dir.file("vmcore");
    write_i386_minidump(&p, &m, version, &extra);
    let k = open(&p);
    let what = format!("i386 pae={} v{}", pae, version);
    assert!(!k.lock().native(), "{}: never native on this host", what);
    for &va in &kvas {
        let got = read(&k, va, 4096).unwrap_or_else(|e| panic!("{}: 0x{:x}: {}", what, va, e));
        assert!(
            got == m.phys.read(m.truth(va).unwrap(), 4096),
            "{}: 0x{:x}",
            what,
            va
        );
    }
    let cross = kb + sp - 10;
    let got = read(&k, cross, 20).unwrap();
    let mut want = m.phys.read(m.truth(cross).unwrap(), 10);
    want.extend(m.phys.read(m.truth(kb + sp).unwrap(), 10));
    assert_eq!(got, want, "{}: across superpage -> 4K page", what);
    expect_err(&k, kb + sp + 2 * 4096, 4);
    if kb > 0x1000 {
        expect_err(&k, kb - 0x1000, 4);
    }
    expect_err(&k, kb + 0x1000_0000, 4);
    let (pages, done) = k.lock().walk_pages_collect().unwrap();
    assert!(done);
    let kp = pages_by_kva(&pages);
    assert_eq!(kp.len(), m.ptes.len());
    for p in kp.values() {
        assert_eq!(Some(p.kp_paddr), m.truth(p.kp_kmap_vaddr));
        assert_eq!(p.kp_dmap_vaddr, 0);
        let nx = pae && p.kp_kmap_vaddr == kb + sp + 4096;
        let rw = p.kp_kmap_vaddr < kb + sp;
        assert_eq!(
            p.kp_prot,
            1 | if rw { 2 } else { 0 } | if nx { 0 } else { 4 },
            "{} prot",
            what
        );
    }
    let rest: Vec<u64> = pages
        .iter()
        .filter(|p| p.kp_kmap_vaddr == 0)
        .map(|p| p.kp_paddr)
        .collect();
    assert_eq!(rest, extra);
}

#[test]
fn i386_minidumps_pae_and_non_pae() {
    for pae in [false, true] {
        for v in [1, 2] {
            check_i386(pae, v, 0x0040_0000);
        }
    }
    check_i386(false, 1, 0xc000_0000);
}

// ---------------------------------------------------------------------------------------------
// Kernel symbols from a FreeBSD kernel ELF given as execfile.

#[test]
fn amd64_full_dump_with_kernel_elf_execfile() {
    let f = amd64_fixture();
    let files = amd64_files(&f, "execfile");
    let kernel = files._dir.file("kernel");
    write_kernel_elf(
        &kernel,
        true,
        62,
        &[
            ("kernbase", f.m.kernbase_sym),
            ("KPML4phys", f.m.kpml4phys_sym),
            ("_version", KERNBASE + 0x20_0040),
        ],
    );
    if let Err(e) = kvm::symbols::load_file(&kernel) {
        println!(
            "skipped: symbols::load_file cannot read the kernel ELF on this branch yet ({})",
            e
        );
        return;
    }
    let k = Kvm::open(OpenArgs {
        execfile: Some(kernel.as_os_str()),
        corefile: Some(files.elf.as_os_str()),
        flags: 0,
        program: None,
        resolver: None,
    })
    .unwrap_or_else(|e| panic!("open with execfile: {}", e));
    let r = k
        .lock()
        .nlist(&[b"_version", b"KPML4phys", b"no_such_symbol"])
        .unwrap();
    assert_eq!(r[0].map(|s| s.value), Some(KERNBASE + 0x20_0040));
    assert_eq!(r[1].map(|s| s.value), Some(f.m.kpml4phys_sym));
    assert!(r[2].is_none());
    check_reads(&k, &f, "ELF full dump with kernel execfile");
    for (_, p) in &files.mini {
        let k = Kvm::open(OpenArgs {
            execfile: Some(kernel.as_os_str()),
            corefile: Some(p.as_os_str()),
            flags: 0,
            program: None,
            resolver: None,
        })
        .unwrap();
        let v = k.lock().nlist(&[b"_version"]).unwrap()[0].unwrap().value;
        assert_eq!(read(&k, v, 16).unwrap(), f.m.phys.read(0x20_0040, 16));
    }
}

// ---------------------------------------------------------------------------------------------
// Mutated files: damaged headers, dump_avail, bitmaps and page maps never crash the reader.

/// A small amd64 machine (64 MiB, 4 KiB and 2 MiB kernel pages) for the mutation runs.
fn small_amd64() -> Amd64Machine {
    let mut m = Amd64Machine::new(
        vec![(0x1000, 0x9f000), (0x10_0000, 0x400_0000)],
        0x200_0000,
        DMAPBASE,
        DMAPBASE + 0x400_0000,
    );
    m.map(DMAPBASE, 0, GIB, PG_RW | PG_NX);
    m.map(KERNBASE + 0x20_0000, 0x20_0000, MIB2, PG_RW);
    for i in 0..8u64 {
        m.map(
            KERNBASE + 0x40_0000 + i * 4096,
            0x300_0000 + i * 0x2000,
            4096,
            PG_RW,
        );
        m.phys.fill(0x300_0000 + i * 0x2000);
    }
    m.phys.fill(0x20_0000);
    m.finalize(KERNBASE, KERNBASE + 0x20_0100);
    m
}

#[test]
fn mutated_dumps_give_errors_not_crashes() {
    let dir = TempDir::new("mutate");
    // (file, symbols for the resolver, addresses to read)
    type Seed = (PathBuf, Vec<(&'static str, u64)>, Vec<u64>);
    let mut seeds: Vec<Seed> = Vec::new();
    let m = small_amd64();
    let kvas = vec![
        KERNBASE + 0x20_0000,
        KERNBASE + 0x40_0ff0,
        DMAPBASE + 0x300_0000,
        0x1000,
    ];
    for v in 1..=3 {
        let p = dir.file(&format!("amd64.v{}", v));
        write_amd64_minidump(&p, &m, v, KERNBASE, 0x4000_0000, &[0x5000]);
        seeds.push((p, vec![], kvas.clone()));
    }
    let p = dir.file("amd64.elf");
    write_amd64_elf(&p, &m);
    seeds.push((
        p,
        vec![("kernbase", KERNBASE), ("KPML4phys", KERNBASE + 0x20_0100)],
        kvas.clone(),
    ));
    for (page, v) in [(4096, 1), (4096, 3), (16384, 3)] {
        let (am, akvas, extra) = arm64_fixture(page);
        let p = dir.file(&format!("arm64.{}.v{}", page, v));
        write_arm64_minidump(&p, &am, v, &extra);
        seeds.push((
            p,
            vec![],
            vec![akvas[0], akvas[akvas.len() - 1], ARM_DMAPBASE + 0x20_0000],
        ));
    }
    for (pae, v) in [(false, 1), (true, 2)] {
        let mut im = I386Machine::new(
            vec![(0x1000, 0x9f000), (0x10_0000, 0x100_0000)],
            0x40_0000,
            pae,
        );
        im.map(0x40_0000, 0x40_0000, MIB2, 2);
        im.map(0x60_0000, 0x80_0000, 4096, 0);
        im.phys.fill(0x80_0000);
        let p = dir.file(&format!("i386.{}.v{}", pae, v));
        write_i386_minidump(&p, &im, v, &[]);
        seeds.push((p, vec![], vec![0x40_0000, 0x60_0000, 0x5f_fffc]));
    }
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut opened, mut refused) = (0, 0);
    let out = dir.file("mutant");
    for (seed, syms, addrs) in &seeds {
        let orig = std::fs::read(seed).unwrap();
        // Mutations stay in the metadata (headers, dump_avail, bitmap, page map, page tables).
        let span = orig.len().min(96 * 1024);
        for round in 0..80 {
            let mut b = orig.clone();
            if round % 5 == 4 {
                b.truncate((next() % orig.len() as u64) as usize);
            } else {
                for _ in 0..1 + next() % 8 {
                    let i = (next() % span as u64) as usize;
                    b[i] = if next() % 3 == 0 { 0xff } else { next() as u8 };
                }
            }
            std::fs::write(&out, &b).unwrap();
            match open_with(&out, syms.clone()) {
                Ok(k) => {
                    opened += 1;
                    for &va in addrs {
                        match read(&k, va, 5000) {
                            Ok(_) => {}
                            Err(e) => assert!(!e.to_string().is_empty()),
                        }
                    }
                    let _ = k.lock().walk_pages_collect();
                }
                Err(e) => {
                    refused += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
    }
    println!("mutants: {} opened, {} refused", opened, refused);
    assert!(
        opened > 0 && refused > 0,
        "{} opened, {} refused",
        opened,
        refused
    );
}

/// A FreeBSD user-process core (OSABI FreeBSD, a "FreeBSD" NT_PRSTATUS note) is refused with a
/// message saying what it is, rather than failing later on symbols.
#[test]
fn process_core_is_not_taken_for_a_kernel_dump() {
    let dir = TempDir::new("proccore");
    let p = dir.file("prog.core");
    let mut f = vec![0u8; 8192];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[7] = 9; // ELFOSABI_FREEBSD
    f[16..18].copy_from_slice(&4u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    put64(&mut f, 32, 64);
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    // PT_NOTE at 0x200: namesz 8 ("FreeBSD\0"), descsz 4, type 1 (NT_PRSTATUS).
    put32(&mut f, 64, 4);
    put64(&mut f, 64 + 8, 0x200);
    put64(&mut f, 64 + 32, 24);
    put32(&mut f, 0x200, 8);
    put32(&mut f, 0x204, 4);
    put32(&mut f, 0x208, 1);
    f[0x20c..0x214].copy_from_slice(b"FreeBSD\0");
    // PT_LOAD of one page.
    put32(&mut f, 120, 1);
    put64(&mut f, 120 + 8, 4096);
    put64(&mut f, 120 + 32, 4096);
    put64(&mut f, 120 + 40, 4096);
    std::fs::write(&p, &f).unwrap();
    let e = open_err(&p, vec![("kernbase", KERNBASE), ("KPML4phys", KERNBASE)]);
    assert!(e.contains("process core"), "{}", e);
}

/// A current kernel's v3 minidump: the page map starts at VM_MIN_KERNEL_ADDRESS
/// (0xfffffe0000000000) and covers ~2 TiB of mostly invalid PDEs (8 MiB of page map).
#[test]
fn amd64_v3_with_vm_min_kernel_address() {
    const VM_MIN_KERNEL_ADDRESS: u64 = 0xffff_fe00_0000_0000;
    let mut f = amd64_fixture();
    // Some kernel memory in the KVA area below KERNBASE, with 4 KiB pages.
    let kva = VM_MIN_KERNEL_ADDRESS + 0x12_3400_0000;
    for i in 0..4u64 {
        let pa = 0x290_0000 + i * 4096;
        f.m.map(kva + i * 4096, pa, 4096, PG_RW | PG_NX);
        f.m.phys.fill(pa);
        f.kvas.push(kva + i * 4096);
    }
    f.m.finalize(KERNBASE, KERNBASE + 0x30_0100);
    let dir = TempDir::new("modern");
    let p = dir.file("vmcore.v3");
    let len = 0u64.wrapping_sub(VM_MIN_KERNEL_ADDRESS);
    write_amd64_minidump(&p, &f.m, 3, VM_MIN_KERNEL_ADDRESS, len, &f.extra);
    let elf = dir.file("vmcore.elf");
    write_amd64_elf(&elf, &f.m);
    let k = open(&p);
    check_reads(&k, &f, "v3 from VM_MIN_KERNEL_ADDRESS");
    let e = open_with(&elf, amd64_syms(&f)).unwrap();
    for i in 0..3u64 {
        let va = kva + i * 4096 + 100;
        assert_eq!(read(&k, va, 5000).unwrap(), read(&e, va, 5000).unwrap());
    }
    expect_err(&k, kva + 4 * 4096, 8);
    expect_err(&k, VM_MIN_KERNEL_ADDRESS, 8);
}

/// An i386 minidump read with symbols from an ELF32 FreeBSD kernel given as execfile.
#[test]
fn i386_minidump_with_elf32_kernel_execfile() {
    let mut m = I386Machine::new(
        vec![(0x1000, 0x9f000), (0x10_0000, 0x100_0000)],
        0x40_0000,
        false,
    );
    m.map(0x40_0000, 0x40_0000, 4 * MIB2, 2);
    m.phys.fill(0x40_1000);
    let dir = TempDir::new("i386-exec");
    let core = dir.file("vmcore");
    write_i386_minidump(&core, &m, 2, &[]);
    let kernel = dir.file("kernel");
    write_kernel_elf(
        &kernel,
        false,
        3,
        &[("_version", 0x40_1040), ("ostype", 0x40_1100)],
    );
    if let Err(e) = kvm::symbols::load_file(&kernel) {
        println!(
            "skipped: symbols::load_file cannot read an ELF32 kernel here ({})",
            e
        );
        return;
    }
    let k = Kvm::open(OpenArgs {
        execfile: Some(kernel.as_os_str()),
        corefile: Some(core.as_os_str()),
        flags: 0,
        program: None,
        resolver: None,
    })
    .unwrap();
    let r = k.lock().nlist(&[b"_version", b"ostype"]).unwrap();
    assert_eq!(r[0].unwrap().value, 0x40_1040);
    let v = r[1].unwrap().value;
    assert_eq!(read(&k, v, 64).unwrap(), m.phys.read(0x40_1100, 64));
    assert!(!k.lock().native());
}

// ---------------------------------------------------------------------------------------------
// Statistics from kernel globals (kvm_getloadavg, kvm_getcptime, kvm_getncpus, kvm_getmaxcpu,
// kvm_getpcpu, kvm_read_zpcpu, kvm_dpcpu_setcpu and kvm_nlist's pcpu_entry_ retry), laid out
// in the dump's memory the way a FreeBSD kernel of that word size does.

/// Load averages as fixpt_t with fscale 2048: 1.5, 0.25, 2.75.
const LDAVG: [u32; 3] = [3072, 512, 5632];
const FSCALE: i64 = 2048;
const NCPUS: i32 = 2;
const MAXCPUS: i32 = 4;
/// dpcpu_off: CPUs 0 and 1 present, 2 and 3 absent.
const DPCPU_OFF: [u64; 4] = [0x200, 0x400, 0, 0];
/// Value of the per-CPU variable `pcpu_entry_foo` in CPU 0's and CPU 1's copies.
const FOO: [u64; 2] = [0x1111_2222_3333_4444, 0x5555_6666_7777_8888];
/// counter(9) values at zpcpu offset COUNTER_BASE on CPUs 0 and 1.
const COUNTER: [u64; 2] = [1000, 234];
const COUNTER_BASE: u64 = 0x100;

/// Where a kernel of this word size keeps its globals: three pages from `g` (globals and the
/// set_pcpu range in the first, struct pcpu of CPU 0 and CPU 1 in the next two).
struct StatsImage {
    word: usize,
    g: u64,
    /// FreeBSD's `__pcpu` (amd64): zpcpu offsets are relative to it.
    with_pcpu_var: bool,
}

impl StatsImage {
    fn cp_time(&self) -> [i64; 5] {
        if self.word == 8 {
            [11, 22, 33, 44, (1 << 40) + 5]
        } else {
            [11, 22, 33, 44, -5] // a 32-bit long is sign-extended
        }
    }
    fn pcpu(&self, cpu: u64) -> u64 {
        self.g + 4096 * (1 + cpu)
    }
    fn start(&self) -> u64 {
        self.g + 0x800
    }
    fn foo(&self) -> u64 {
        self.g + 0x810
    }
    fn outside(&self) -> u64 {
        self.g + 0x980
    }
    /// (va, bytes) to store.
    fn writes(&self) -> Vec<(u64, Vec<u8>)> {
        let w = self.word;
        let word = |v: u64| v.to_le_bytes()[..w].to_vec();
        let mut out = Vec::new();
        let mut la = Vec::new();
        for v in LDAVG {
            la.extend(v.to_le_bytes());
        }
        la.resize(12usize.next_multiple_of(w), 0xee); // padding before `long fscale`
        la.extend(word(FSCALE as u64));
        out.push((self.g, la));
        out.push((
            self.g + 0x40,
            self.cp_time()
                .iter()
                .flat_map(|&v| word(v as u64))
                .collect(),
        ));
        out.push((self.g + 0x80, NCPUS.to_le_bytes().to_vec()));
        out.push((self.g + 0x84, MAXCPUS.to_le_bytes().to_vec()));
        let c2p = [self.pcpu(0), self.pcpu(1), 0, 0];
        out.push((self.g + 0xc0, c2p.iter().flat_map(|&v| word(v)).collect()));
        out.push((
            self.g + 0x100,
            DPCPU_OFF.iter().flat_map(|&v| word(v)).collect(),
        ));
        if self.with_pcpu_var {
            out.push((self.g + 0x140, word(self.pcpu(0))));
        }
        for cpu in 0..2 {
            out.push((self.foo() + DPCPU_OFF[cpu], FOO[cpu].to_le_bytes().to_vec()));
            // Something recognisable at the start of each struct pcpu, and the counter.
            out.push((self.pcpu(cpu as u64), vec![0xc0 + cpu as u8; 16]));
            out.push((
                self.pcpu(cpu as u64) + COUNTER_BASE,
                COUNTER[cpu].to_le_bytes().to_vec(),
            ));
        }
        out
    }
    /// Kernel symbols as a kvm_open2 resolver is asked for them (FreeBSD's n_name spelling).
    fn resolver_syms(&self) -> Vec<(&'static str, u64)> {
        self.elf_syms()
            .into_iter()
            .map(|(n, v)| {
                let n: &'static str = if n.starts_with("pcpu_entry_") {
                    n
                } else {
                    Box::leak(format!("_{}", n).into_boxed_str())
                };
                (n, v)
            })
            .collect()
    }
    /// Kernel symbols as a kernel ELF carries them.
    fn elf_syms(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("averunnable", self.g),
            ("cp_time", self.g + 0x40),
            ("mp_ncpus", self.g + 0x80),
            ("mp_maxcpus", self.g + 0x84),
            ("cpuid_to_pcpu", self.g + 0xc0),
            ("dpcpu_off", self.g + 0x100),
            ("__start_set_pcpu", self.start()),
            ("__stop_set_pcpu", self.g + 0x900),
            ("pcpu_entry_foo", self.foo()),
            ("pcpu_entry_outside", self.outside()),
        ];
        if self.with_pcpu_var {
            v.push(("__pcpu", self.g + 0x140));
        }
        v
    }
}

fn without(syms: &[(&'static str, u64)], name: &str) -> Vec<(&'static str, u64)> {
    syms.iter().filter(|(n, _)| *n != name).copied().collect()
}

fn with_value(syms: &[(&'static str, u64)], name: &str, v: u64) -> Vec<(&'static str, u64)> {
    syms.iter()
        .map(|&(n, old)| (n, if n == name { v } else { old }))
        .collect()
}

fn err_text<T: std::fmt::Debug>(r: kvm::Result<T>, what: &str) -> String {
    match r {
        Ok(v) => panic!("{}: expected an error, got {:?}", what, v),
        Err(e) => e.to_string(),
    }
}

/// Every statistics call on one opened dump, with exact expectations.
/// `pcpu_size`: sizeof(struct pcpu) of this kernel when fixed (amd64, i386), else None.
fn check_stats(k: &Kvm, img: &StatsImage, pcpu_size: Option<usize>, what: &str) {
    let mut st = k.lock();
    let la = st
        .loadavg()
        .unwrap_or_else(|e| panic!("{}: loadavg: {}", what, e));
    assert_eq!(la, [1.5, 0.25, 2.75], "{}: loadavg", what);
    let cp = st
        .cptime()
        .unwrap_or_else(|e| panic!("{}: cptime: {}", what, e));
    assert_eq!(cp, img.cp_time(), "{}: cp_time", what);
    assert_eq!(st.ncpus().unwrap(), NCPUS, "{}", what);
    assert_eq!(st.maxcpu().unwrap(), MAXCPUS, "{}", what);
    // kvm_getpcpu: absent CPUs and CPUs >= maxcpus give None.
    for cpu in [2, 3, 4, 100, -1] {
        assert!(st.getpcpu(cpu).unwrap().is_none(), "{}: pcpu {}", what, cpu);
    }
    match pcpu_size {
        Some(size) => {
            for cpu in 0..2u8 {
                let pc = st.getpcpu(cpu as i32).unwrap().unwrap();
                assert_eq!(pc.len(), size, "{}", what);
                assert_eq!(pc[..16], [0xc0 + cpu; 16], "{}: pcpu {}", what, cpu);
                let c = u64::from_le_bytes(pc[COUNTER_BASE as usize..][..8].try_into().unwrap());
                assert_eq!(c, COUNTER[cpu as usize]);
            }
            // kvm_read_zpcpu and the sum kvm_counter_u64_fetch makes.
            let base = if img.with_pcpu_var {
                COUNTER_BASE
            } else {
                img.pcpu(0) + COUNTER_BASE
            };
            let mut sum = 0;
            for cpu in 0..st.ncpus().unwrap() {
                let mut b = [0u8; 8];
                assert_eq!(st.read_zpcpu(base, &mut b, cpu).unwrap(), 8, "{}", what);
                sum += u64::from_le_bytes(b);
            }
            assert_eq!(sum, COUNTER[0] + COUNTER[1], "{}: counter", what);
        }
        None => {
            let e = err_text(st.getpcpu(0), what);
            assert!(e.contains("sizeof(struct pcpu)"), "{}: {}", what, e);
            let e = err_text(st.read_zpcpu(COUNTER_BASE, &mut [0u8; 8], 0), what);
            assert!(e.contains("sizeof(struct pcpu)"), "{}: {}", what, e);
        }
    }
    // DPCPU: CPU 0 selected by default; pcpu_entry_ retry relocates values in the set only.
    let names: [&[u8]; 4] = [b"_foo", b"foo", b"_outside", b"_no_such_dpcpu"];
    let r = st.nlist(&names).unwrap();
    assert_eq!(
        r[0].map(|s| s.value),
        Some(img.foo() + DPCPU_OFF[0]),
        "{}",
        what
    );
    assert_eq!(
        r[1].map(|s| s.value),
        Some(img.foo() + DPCPU_OFF[0]),
        "{}",
        what
    );
    assert_eq!(r[2].map(|s| s.value), Some(img.outside()), "{}", what);
    assert!(r[3].is_none(), "{}", what);
    let v = r[0].unwrap().value;
    assert_eq!(read_st(&mut st, v, 8), FOO[0].to_le_bytes(), "{}", what);
    st.dpcpu_setcpu(1).unwrap();
    let v = st.nlist(&[b"_foo"]).unwrap()[0].unwrap().value;
    assert_eq!(v, img.foo() + DPCPU_OFF[1], "{}", what);
    let mut b = [0u8; 8];
    assert_eq!(st.read(v, &mut b).unwrap(), 8);
    assert_eq!(b, FOO[1].to_le_bytes(), "{}: CPU 1's copy", what);
    // Symbols found directly are never relocated.
    let d = st.nlist(&[b"pcpu_entry_foo"]).unwrap()[0].unwrap().value;
    assert_eq!(d, img.foo(), "{}", what);
    assert_eq!(
        err_text(st.dpcpu_setcpu(2), what),
        "_kvm_dpcpu_setcpu: CPU 2 not found"
    );
    assert_eq!(
        err_text(st.dpcpu_setcpu(4), what),
        "_kvm_dpcpu_setcpu: CPU 4 too big"
    );
    // A failed selection keeps the previous CPU.
    let v = st.nlist(&[b"_foo"]).unwrap()[0].unwrap().value;
    assert_eq!(v, img.foo() + DPCPU_OFF[1], "{}", what);
    st.dpcpu_setcpu(0).unwrap();
}

fn read_st(st: &mut kvm::KvmState, va: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let n = st.read(va, &mut b).unwrap();
    b.truncate(n);
    b
}

fn put_image(phys: &mut Phys, truth: impl Fn(u64) -> Option<u64>, img: &StatsImage) {
    for (va, bytes) in img.writes() {
        let pa = truth(va).unwrap_or_else(|| panic!("stats image VA 0x{:x} not mapped", va));
        phys.write(pa, &bytes);
    }
}

/// The error cases on one dump: symbols missing from the kernel, globals at unmapped
/// addresses, all with the names or addresses in the message.
fn check_stats_errors(core: &Path, base: &[(&'static str, u64)], hole: u64, what: &str) {
    let open_k = |syms: Vec<(&'static str, u64)>| open_with(core, syms).unwrap();
    let k = open_k(without(base, "_averunnable"));
    assert_eq!(
        err_text(k.lock().loadavg(), what),
        "_averunnable: no such symbol"
    );
    let k = open_k(with_value(base, "_averunnable", hole));
    let e = err_text(k.lock().loadavg(), what);
    assert!(
        e.starts_with("can't read averunnable") && e.contains(&format!("0x{:x}", hole)),
        "{}: {}",
        what,
        e
    );
    let k = open_k(without(base, "_cp_time"));
    let e = err_text(k.lock().cptime(), what);
    assert!(e.starts_with("_cp_time: no such symbol"), "{}: {}", what, e);
    assert!(e.contains("struct pcpu"), "{}: {}", what, e);
    let k = open_k(with_value(base, "_cp_time", hole));
    let e = err_text(k.lock().cptime(), what);
    assert!(
        e.starts_with("cannot read cp_time array") && e.contains(&format!("0x{:x}", hole)),
        "{}: {}",
        what,
        e
    );
    let k = open_k(without(base, "_cpuid_to_pcpu"));
    assert_eq!(
        err_text(k.lock().ncpus(), what),
        "unable to find cpuid_to_pcpu"
    );
    let k = open_k(without(base, "_mp_maxcpus"));
    assert_eq!(
        err_text(k.lock().maxcpu(), what),
        "unable to find mp_maxcpus"
    );
    assert_eq!(
        err_text(k.lock().dpcpu_setcpu(0), what),
        "kvm_dpcpu_setcpu: init failed (_mp_maxcpus: no such symbol)"
    );
    // Without the DPCPU table there is no pcpu_entry_ retry.
    assert!(k.lock().nlist(&[b"_foo"]).unwrap()[0].is_none());
    let k = open_k(without(base, "_mp_ncpus"));
    assert_eq!(err_text(k.lock().ncpus(), what), "unable to find mp_ncpus");
    let k = open_k(with_value(base, "_mp_ncpus", hole));
    let e = err_text(k.lock().ncpus(), what);
    assert!(
        e.starts_with("cannot read mp_ncpus") && e.contains(&format!("0x{:x}", hole)),
        "{}: {}",
        what,
        e
    );
    let k = open_k(with_value(base, "_mp_maxcpus", hole));
    let e = err_text(k.lock().maxcpu(), what);
    assert!(e.starts_with("cannot read mp_maxcpus"), "{}: {}", what, e);
    let k = open_k(without(base, "_dpcpu_off"));
    assert_eq!(
        err_text(k.lock().dpcpu_setcpu(1), what),
        "kvm_dpcpu_setcpu: init failed (_dpcpu_off: no such symbol)"
    );
    let k = open_k(with_value(base, "_dpcpu_off", hole));
    let e = err_text(k.lock().dpcpu_setcpu(1), what);
    assert!(
        e.starts_with("kvm_dpcpu_setcpu: init failed (cannot read dpcpu_off array")
            && e.contains(&format!("0x{:x}", hole)),
        "{}: {}",
        what,
        e
    );
    // The statistics that do not need the missing symbol still work.
    let k = open_k(without(base, "_dpcpu_off"));
    assert_eq!(k.lock().ncpus().unwrap(), NCPUS);
    assert_eq!(k.lock().loadavg().unwrap(), [1.5, 0.25, 2.75]);
}

fn amd64_stats_fixture() -> (Amd64Fixture, StatsImage) {
    let mut f = amd64_fixture();
    let img = StatsImage {
        word: 8,
        g: KERNBASE + 0x58_0000,
        with_pcpu_var: true,
    };
    let m = &mut f.m;
    let (mut phys, truth) = (m.phys.clone(), |va| m.truth(va));
    put_image(&mut phys, truth, &img);
    f.m.phys = phys;
    (f, img)
}

#[test]
fn amd64_statistics_all_formats() {
    let (f, img) = amd64_stats_fixture();
    let files = amd64_files(&f, "stats");
    let mut syms = amd64_syms(&f);
    syms.extend(img.resolver_syms());
    let mut cores = vec![("ELF full dump".to_string(), files.elf.clone())];
    for (v, p) in &files.mini {
        cores.push((format!("minidump v{}", v), p.clone()));
    }
    for (what, core) in &cores {
        let k = open_with(core, syms.clone()).unwrap();
        check_stats(&k, &img, Some(4096), &format!("amd64 {}", what));
    }
    check_stats_errors(&files.elf, &syms, f.holes[0], "amd64 ELF");
    check_stats_errors(&files.mini[2].1, &syms, f.holes[0], "amd64 v3");
}

#[test]
fn amd64_statistics_with_kernel_elf_execfile() {
    let (f, img) = amd64_stats_fixture();
    let files = amd64_files(&f, "stats-exec");
    let kernel = files._dir.file("kernel");
    let mut syms = vec![
        ("kernbase", f.m.kernbase_sym),
        ("KPML4phys", f.m.kpml4phys_sym),
    ];
    syms.extend(img.elf_syms());
    write_kernel_elf(&kernel, true, 62, &syms);
    for core in [&files.elf, &files.mini[2].1] {
        let k = Kvm::open(OpenArgs {
            execfile: Some(kernel.as_os_str()),
            corefile: Some(core.as_os_str()),
            flags: 0,
            program: None,
            resolver: None,
        })
        .unwrap();
        check_stats(&k, &img, Some(4096), "amd64 with kernel ELF");
    }
}

#[test]
fn arm64_statistics_all_versions_and_page_sizes() {
    for (page, version) in [(4096, 1), (4096, 2), (4096, 3), (16384, 3)] {
        let (mut m, _, extra) = arm64_fixture(page);
        let img = StatsImage {
            word: 8,
            g: ARM_KERNBASE + 0x30_0000,
            with_pcpu_var: false,
        };
        let mut phys = m.phys.clone();
        put_image(&mut phys, |va| m.truth(va), &img);
        m.phys = phys;
        let dir = TempDir::new(&format!("arm64-stats-{}-{}", page, version));
        let p = dir.file("vmcore");
        write_arm64_minidump(&p, &m, version, &extra);
        let syms = img.resolver_syms();
        let k = open_with(&p, syms.clone()).unwrap();
        let what = format!("arm64 {}K v{}", page / 1024, version);
        check_stats(&k, &img, None, &what);
        if version == 3 {
            check_stats_errors(&p, &syms, ARM_KERNBASE + 0x1000_0000, &what);
        }
    }
}

fn i386_stats_machine(pae: bool, kernbase: u32) -> (I386Machine, StatsImage) {
    let mut chunks = vec![(0x1000, 0x9f000), (0x10_0000, 0x200_0000)];
    if pae {
        chunks.push((0x1_0000_0000, 0x1_0100_0000));
    }
    let mut m = I386Machine::new(chunks, kernbase, pae);
    let kb = kernbase as u64;
    m.map(kb, 0x40_0000, MIB2, 2);
    let img = StatsImage {
        word: 4,
        g: kb + 0x10_0000,
        with_pcpu_var: false,
    };
    let mut phys = m.phys.clone();
    put_image(&mut phys, |va| m.truth(va), &img);
    m.phys = phys;
    (m, img)
}

#[test]
fn i386_statistics_pae_and_non_pae() {
    for (pae, version, kernbase) in [
        (false, 1, 0x0040_0000),
        (false, 2, 0x0040_0000),
        (true, 1, 0x0040_0000),
        (true, 2, 0x0040_0000),
        (false, 2, 0xc000_0000),
    ] {
        let (m, img) = i386_stats_machine(pae, kernbase);
        let dir = TempDir::new(&format!("i386-stats-{}-{}-{:x}", pae, version, kernbase));
        let p = dir.file("vmcore");
        write_i386_minidump(&p, &m, version, &[]);
        let syms = img.resolver_syms();
        let k = open_with(&p, syms.clone()).unwrap();
        let what = format!("i386 pae={} v{} kernbase 0x{:x}", pae, version, kernbase);
        check_stats(&k, &img, Some(4096), &what);
        if version == 2 {
            check_stats_errors(&p, &syms, kernbase as u64 + 0x80_0000, &what);
        }
    }
}

#[test]
fn i386_statistics_with_elf32_kernel_execfile() {
    let (m, img) = i386_stats_machine(false, 0x0040_0000);
    let dir = TempDir::new("i386-stats-exec");
    let core = dir.file("vmcore");
    write_i386_minidump(&core, &m, 2, &[]);
    let kernel = dir.file("kernel");
    write_kernel_elf(&kernel, false, 3, &img.elf_syms());
    let k = Kvm::open(OpenArgs {
        execfile: Some(kernel.as_os_str()),
        corefile: Some(core.as_os_str()),
        flags: 0,
        program: None,
        resolver: None,
    })
    .unwrap();
    check_stats(&k, &img, Some(4096), "i386 with ELF32 kernel");
}
