//! The /proc/kcore reader on a synthetic ELF core with known segments (the real file is
//! tested in the qemu guest, tests/kcore_guest.rs): address -> segment -> file offset,
//! reads across contiguous segments, short counts at the end of a mapped range, unmapped
//! addresses, damaged headers.

use std::fs::File;
use std::path::{Path, PathBuf};

use kvm::live::kcore::Kcore;

fn tmp(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kcore-tests");
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// ELF64 LE ET_CORE with one PT_NOTE and PT_LOADs (vaddr, len); each segment's bytes are
/// `(segment number << 4) ^ (offset in segment)` so any misplaced read shows.
fn write_core(segs: &[(u64, u64)]) -> Vec<u8> {
    let phnum = segs.len() + 1;
    let data_start = 64 + 56 * phnum as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\x00");
    out.resize(16, 0);
    out.extend_from_slice(&4u16.to_le_bytes()); // ET_CORE
    out.extend_from_slice(&62u16.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // entry
    out.extend_from_slice(&64u64.to_le_bytes()); // phoff
    out.extend_from_slice(&0u64.to_le_bytes()); // shoff
    out.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, phnum as u16, 64, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let ph = |out: &mut Vec<u8>, typ: u32, off: u64, va: u64, len: u64| {
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&7u32.to_le_bytes());
        for v in [off, va, 0, len, len, 4096] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    };
    ph(&mut out, 4, data_start, 0, 0); // PT_NOTE, empty
    let mut off = data_start;
    for &(va, len) in segs {
        ph(&mut out, 1, off, va, len);
        off += len;
    }
    for (n, &(_, len)) in segs.iter().enumerate() {
        out.extend((0..len).map(|i| ((n as u64) << 4 ^ i) as u8));
    }
    out
}

fn expect_byte(seg: usize, i: u64) -> u8 {
    ((seg as u64) << 4 ^ i) as u8
}

#[test]
fn kcore_segments_reads_and_errors() {
    // (unsorted on purpose) seg0 and seg1 are contiguous, seg2 stands alone.
    let segs = [
        (0xffff_8880_0000_0000u64, 0x2000u64),
        (0xffff_8880_0000_2000, 0x1000),
        (0xffff_ffff_8100_0000, 0x3000),
    ];
    let img = write_core(&[segs[2], segs[0], segs[1]]);
    let path = tmp("kcore.elf");
    std::fs::write(&path, &img).unwrap();
    let k = Kcore::from_file(File::open(&path).unwrap(), "kcore.elf").unwrap();
    assert_eq!(k.segments().len(), 3);
    assert!(k.segments().windows(2).all(|w| w[0].vaddr < w[1].vaddr));
    // Segment order in the file: seg2 is number 0, seg0 number 1, seg1 number 2.
    let mut buf = [0u8; 32];
    assert_eq!(k.read(0xffff_ffff_8100_0100, &mut buf).unwrap(), 32);
    assert!(buf
        .iter()
        .enumerate()
        .all(|(i, &b)| b == expect_byte(0, 0x100 + i as u64)));
    // Across two contiguous segments: one full read.
    let mut buf = vec![0u8; 0x20];
    assert_eq!(k.read(0xffff_8880_0000_1ff0, &mut buf).unwrap(), 0x20);
    assert_eq!(buf[0], expect_byte(1, 0x1ff0));
    assert_eq!(buf[0x10], expect_byte(2, 0));
    // End of a mapped range: the short count.
    let mut buf = vec![0u8; 0x40];
    assert_eq!(k.read(0xffff_ffff_8100_2ff0, &mut buf).unwrap(), 0x10);
    assert_eq!(buf[0xf], expect_byte(0, 0x2fff));
    // Unmapped first byte: an error naming the address.
    let err = k.read(0xffff_ffff_8100_3000, &mut buf).unwrap_err();
    assert_eq!(err.errno(), libc::EFAULT);
    assert!(err.to_string().contains("0xffffffff81003000"), "{}", err);
    let err = k.read(0x10, &mut buf).unwrap_err().to_string();
    assert!(
        err.contains("invalid address (0x10)") && err.contains("not mapped"),
        "{}",
        err
    );
    // Empty read.
    assert_eq!(k.read(0x10, &mut []).unwrap(), 0);
}

#[test]
fn kcore_bad_files() {
    let good = write_core(&[(0xffff_ffff_8100_0000, 0x1000)]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("short header", good[..40].to_vec()),
        ("not elf", vec![b'x'; 200]),
        ("truncated program headers", good[..100].to_vec()),
        ("32-bit", {
            let mut g = good.clone();
            g[4] = 1;
            g
        }),
        ("not a core", {
            let mut g = good.clone();
            g[16] = 2;
            g
        }),
        ("bad phentsize", {
            let mut g = good.clone();
            g[54] = 40;
            g
        }),
    ];
    for (what, bytes) in cases {
        let path = tmp(&format!("bad-{}.elf", what.replace(' ', "-")));
        std::fs::write(&path, &bytes).unwrap();
        match Kcore::from_file(File::open(&path).unwrap(), "bad.kcore") {
            Ok(_) => panic!("{}: accepted", what),
            Err(e) => {
                let m = e.to_string();
                assert!(m.starts_with("bad.kcore"), "{}: {}", what, m);
                eprintln!("{}: {}", what, m);
            }
        }
    }
    // Segment data cut off: reads of the missing part fail or come back short, no panic.
    let cut = &good[..good.len() - 0x800];
    let path = tmp("cut.elf");
    std::fs::write(&path, cut).unwrap();
    let k = Kcore::from_file(File::open(&path).unwrap(), "cut").unwrap();
    let mut buf = vec![0u8; 0x1000];
    assert_eq!(k.read(0xffff_ffff_8100_0000, &mut buf).unwrap(), 0x800);
    assert!(k.read(0xffff_ffff_8100_0900, &mut buf).is_err());
    // Missing file.
    let err = Kcore::open(Path::new("/nonexistent/kcore"))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "cannot read kernel memory: /nonexistent/kcore: No such file or directory"
    );
}
