//! Damaged Linux dumps: truncated, zero-filled, bit-flipped and wrong-endian files give clean
//! errors (or, where the damage only hits page data, per-page read errors), never a panic.

mod common;

use common::*;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

fn write_prefix(src: &Path, dst: &Path, len: u64) {
    let mut out = std::fs::File::create(dst).unwrap();
    let f = std::fs::File::open(src).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0u64;
    while off < len {
        let n = ((len - off) as usize).min(buf.len());
        let k = f.read_at(&mut buf[..n], off).unwrap();
        if k == 0 {
            break;
        }
        out.write_all(&buf[..k]).unwrap();
        off += k as u64;
    }
}

fn open_err(core: &Path) -> String {
    match open_bare(core) {
        Ok(_) => panic!("{}: opened although damaged", core.display()),
        Err(e) => e.to_string(),
    }
}

/// Opens and exercises a possibly damaged dump; only panics are failures.
fn exercise(core: &Path, banner: u64, with_symbols: bool) {
    if let Ok(k) = open_bare(core) {
        let mut st = k.lock();
        let mut b = vec![0u8; 8192];
        let _ = st.read(banner, &mut b);
        let _ = st.read(0xffff_ffff_8100_0000, &mut b);
        if with_symbols {
            let _ = st.nlist(&[b"jiffies".as_slice()]);
        }
    }
}

fn scratch_file(name: &str) -> PathBuf {
    scratch("linux-dump-corrupt").join(name)
}

#[test]
fn truncated_dumps_fail_cleanly() {
    let Some(dir) = set_dir("kaslr") else { return };
    let truth = kallsyms_map(&kallsyms(&dir));
    let version = std::fs::read(dir.join("truth/version")).unwrap();
    for (f, cuts) in [
        ("vmcore.elf", &[0u64, 40, 63, 200, 2000, 4096, 8 << 20][..]),
        ("vmcore.kdump-zlib", &[0, 100, 463, 4096, 8192, 300_000][..]),
        ("vmcore.kdump-zlib.flat", &[0, 12, 4096, 5000, 200_000][..]),
    ] {
        for &cut in cuts {
            let p = scratch_file(&format!("{}.cut{}", f, cut));
            write_prefix(&dir.join(f), &p, cut);
            let e = open_err(&p);
            assert!(!e.is_empty(), "{} cut at {}", f, cut);
        }
    }
    // A kdump cut in the page data still opens; pages beyond the cut fail with an error,
    // pages before it read correctly.
    for f in ["vmcore.kdump-zlib", "vmcore.kdump-zlib.flat"] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        let p = scratch_file(&format!("{}.half", f));
        write_prefix(&dir.join(f), &p, len * 9 / 10);
        match open_bare(&p) {
            Ok(k) => {
                let mut st = k.lock();
                let mut b = vec![0u8; version.len()];
                match st.read(truth["linux_banner"], &mut b) {
                    Ok(n) => assert_eq!(&b[..n], &version[..n]),
                    Err(e) => assert!(e.to_string().contains("0x"), "{}", e),
                }
                let mut failures = 0;
                let mut a = truth["_stext"];
                for _ in 0..2000 {
                    if st.read(a, &mut [0u8; 8]).is_err() {
                        failures += 1;
                    }
                    a += 4096 * 7;
                }
                let _ = failures;
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

#[test]
fn zero_filled_and_wrong_endian_headers_are_refused() {
    let Some(dir) = set_dir("kaslr") else { return };
    // Zero-filled first block: nothing recognizable.
    for f in FORMATS {
        let p = scratch_file(&format!("{}.zero", f));
        write_prefix(&dir.join(f), &p, 16384);
        let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        file.write_all_at(&[0u8; 4096], 0).unwrap();
        let e = open_err(&p);
        assert!(e.contains("unrecognized core file format"), "{}", e);
    }
    // Big-endian ELF: refused by name.
    let p = scratch_file("vmcore.elf.be");
    write_prefix(&dir.join("vmcore.elf"), &p, 65536);
    let file = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    file.write_all_at(&[2], 5).unwrap();
    let e = open_err(&p);
    assert!(e.contains("little-endian"), "{}", e);
    // kdump header with its integers byte-swapped (as a big-endian writer would store them).
    let p = scratch_file("vmcore.kdump.be");
    write_prefix(&dir.join("vmcore.kdump-zlib"), &p, 1 << 20);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&p)
        .unwrap();
    let mut hdr = [0u8; 464];
    file.read_exact_at(&mut hdr, 0).unwrap();
    for off in [8usize, 424, 428, 432, 436, 440, 444, 448, 452, 456, 460] {
        hdr[off..off + 4].reverse();
    }
    file.write_all_at(&hdr, 0).unwrap();
    let e = open_err(&p);
    assert!(
        e.contains("big-endian") || e.contains("header_version"),
        "{}",
        e
    );
}

#[test]
fn bit_flips_never_panic() {
    let Some(dir) = set_dir("kaslr") else { return };
    let truth = kallsyms_map(&kallsyms(&dir));
    let banner = truth["linux_banner"];
    let mut rng = Rng(0xb17f_11b5);
    for f in FORMATS {
        let src = dir.join(f);
        let p = scratch_file(&format!("{}.flip", f));
        let len = std::fs::metadata(&src).unwrap().len();
        // ELF: the headers and notes are what matter; keep 1 MiB plus a sparse tail so the
        // PT_LOAD table still fits the file size.
        if f.ends_with(".elf") {
            write_prefix(&src, &p, 1 << 20);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .unwrap()
                .set_len(len)
                .unwrap();
        } else {
            std::fs::copy(&src, &p).unwrap();
            let mut perm = std::fs::metadata(&p).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perm.set_readonly(false);
            std::fs::set_permissions(&p, perm).unwrap();
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        // Flip bits in the metadata region: headers, notes, bitmaps, descriptors, first records.
        let region = if f.ends_with(".elf") { 8192 } else { 400_000 };
        for i in 0..40 {
            let mut undo = Vec::new();
            for _ in 0..1 + rng.below(4) {
                let off = rng.below(region);
                let mut b = [0u8];
                file.read_exact_at(&mut b, off).unwrap();
                undo.push((off, b[0]));
                b[0] ^= 1 << rng.below(8);
                file.write_all_at(&b, off).unwrap();
            }
            exercise(&p, banner, i % 8 == 0);
            for (off, b) in undo.into_iter().rev() {
                file.write_all_at(&[b], off).unwrap();
            }
        }
    }
}
