//! kdump-compressed dumps in every codec, made from the real QEMU kdump-zlib dump by the test
//! converter: every page reads back identical to the ELF dump; excluded pages give a clean
//! error; a flattened file with reordered, overlapping records reads the same.

mod common;

use common::kdump_convert::{self, Source, LZO, SNAPPY, ZLIB, ZSTD};
use common::*;
use kvm::dump::linux::LinuxDump;

/// Every physical page of the ELF dump compared with `other`; pfns in `excluded` must fail
/// with an "excluded" error instead.
fn compare_all_pages(label: &str, elf: &mut LinuxDump, other: &mut LinuxDump, excluded: &[u64]) {
    let excl: std::collections::HashSet<u64> = excluded.iter().copied().collect();
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    let mut compared = 0;
    for pfn in 0..65536u64 {
        let pa = pfn * 4096;
        assert_eq!(elf.read_phys(pa, &mut a).unwrap(), 4096);
        match other.read_phys(pa, &mut b) {
            Ok(n) => {
                assert!(
                    !excl.contains(&pfn),
                    "{}: excluded pfn 0x{:x} was readable",
                    label,
                    pfn
                );
                assert_eq!(n, 4096);
                assert!(a == b, "{}: page 0x{:x} differs", label, pa);
                compared += 1;
            }
            Err(e) => {
                assert!(excl.contains(&pfn), "{}: pfn 0x{:x}: {}", label, pfn, e);
                let t = e.to_string();
                assert!(
                    t.contains("excluded") && t.contains(&format!("0x{:x}", pa)),
                    "{}",
                    t
                );
            }
        }
    }
    assert_eq!(compared + excluded.len(), 65536, "{}", label);
}

#[test]
fn every_codec_reads_back_identical_to_the_elf_dump() {
    for (label, dir) in sets() {
        let out = scratch(&format!("kdump-codecs/{}", label));
        let src = Source::load(&dir.join("vmcore.kdump-zlib"));
        let pages = src.pages();
        let mut elf = LinuxDump::open_path(&dir.join("vmcore.elf")).unwrap();
        let version = std::fs::read(dir.join("truth/version")).unwrap();
        // Every codec on the default set; one codec each on the others (the debug-build
        // converter needs ~1 min per variant).
        let codecs: &[(&str, u32)] = match label {
            "kaslr" => &[
                ("zlib", ZLIB),
                ("lzo", LZO),
                ("snappy", SNAPPY),
                ("zstd", ZSTD),
            ],
            "nokaslr" => &[("snappy", SNAPPY)],
            _ => &[("lzo", LZO)],
        };
        for &(name, codec) in codecs {
            let p = out.join(format!("vmcore.kdump-{}", name));
            let excluded = kdump_convert::convert(&src, &pages, &p, codec, &|_, _| false);
            assert!(excluded.is_empty());
            let mut d = LinuxDump::open_path(&p).unwrap();
            compare_all_pages(&format!("{} {}", label, name), &mut elf, &mut d, &[]);
            // And through kvm_open: the banner by the dump's own symbols.
            let k = open_bare(&p).unwrap();
            let addr = nlist1(&k, "linux_banner").unwrap();
            let mut buf = vec![0u8; version.len()];
            assert_eq!(k.lock().read(addr, &mut buf).unwrap(), buf.len());
            assert_eq!(buf, version, "{} {}", label, name);
        }
    }
}

#[test]
fn filtered_dump_reports_excluded_pages() {
    for (label, dir) in sets() {
        let out = scratch(&format!("kdump-codecs/{}", label));
        let src = Source::load(&dir.join("vmcore.kdump-zlib"));
        let pages = src.pages();
        let p = out.join("vmcore.kdump-filtered");
        // dump_level 1: zero-filled pages are left out (what makedumpfile -d 1 does).
        let excluded = kdump_convert::convert(&src, &pages, &p, ZSTD, &|_, page| {
            page.iter().all(|&b| b == 0)
        });
        assert!(
            excluded.len() > 1000,
            "{}: {} zero pages",
            label,
            excluded.len()
        );
        let ram_excluded: Vec<u64> = excluded.iter().copied().filter(|&p| p < 65536).collect();
        let mut elf = LinuxDump::open_path(&dir.join("vmcore.elf")).unwrap();
        let mut d = LinuxDump::open_path(&p).unwrap();
        compare_all_pages(
            &format!("{} filtered", label),
            &mut elf,
            &mut d,
            &ram_excluded,
        );
        // Through kvm_read: an excluded page's kernel address fails and names the address.
        let k = open_bare(&p).unwrap();
        let mut st = k.lock();
        let (pages_walked, _) = st.walk_pages_collect().unwrap();
        // A kernel-map page whose frame was excluded (zero-filled bss or free memory).
        let hole = pages_walked
            .iter()
            .filter(|pg| pg.kp_kmap_vaddr != 0)
            .find_map(|pg| {
                (0..pg.kp_len / 4096).find_map(|i| {
                    let pfn = (pg.kp_paddr >> 12) + i;
                    ram_excluded
                        .binary_search(&pfn)
                        .is_ok()
                        .then_some(pg.kp_kmap_vaddr + i * 4096)
                })
            })
            .expect("an excluded page mapped in the kernel map");
        let e = st.read(hole, &mut [0u8; 16]).unwrap_err();
        assert!(e.to_string().contains(&format!("0x{:x}", hole)), "{}", e);
        assert!(e.to_string().contains("excluded"), "{}", e);
    }
}

#[test]
fn flattened_records_out_of_order_and_overlapping() {
    let Some(dir) = set_dir("kaslr") else { return };
    let out = scratch("kdump-codecs/flat");
    let flat = out.join("vmcore.kdump-zlib.reordered.flat");
    kdump_convert::flatten(&dir.join("vmcore.kdump-zlib"), &flat, 100_003);
    let mut elf = LinuxDump::open_path(&dir.join("vmcore.elf")).unwrap();
    let mut d = LinuxDump::open_path(&flat).unwrap();
    compare_all_pages("reordered flat", &mut elf, &mut d, &[]);
}
