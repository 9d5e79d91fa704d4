//! Random 4 KiB kvm_read on a 4 GiB sparse FreeBSD amd64 v3 minidump and on the same memory as
//! a full ELF dump (kernel-map and direct-map addresses), against pread(2) of the same pages at
//! their file offsets in the same run; plus kvm open time. Prints each figure and the ratio.

#[path = "../tests/fbsd/writer.rs"]
mod writer;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use kvm::{Kvm, OpenArgs};
use writer::*;

const KERNBASE: u64 = 0xffff_ffff_8000_0000;
const DMAPBASE: u64 = 0xffff_f800_0000_0000;
const RAM_END: u64 = 1 << 32;
const SAMPLES: usize = 100_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn open(core: &Path, syms: &[(&'static str, u64)]) -> Box<Kvm> {
    let syms: Vec<(Vec<u8>, u64)> = syms
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), *v))
        .collect();
    Kvm::open(OpenArgs {
        execfile: None,
        corefile: Some(core.as_os_str()),
        flags: 0,
        program: None,
        resolver: Some(Box::new(move |name: &[u8]| {
            syms.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
        })),
    })
    .unwrap_or_else(|e| panic!("open {}: {}", core.display(), e))
}

fn time_kvm(k: &Kvm, vas: &[u64]) -> Duration {
    let mut buf = vec![0u8; 4096];
    let mut sum = 0u64;
    let t = Instant::now();
    let mut g = k.lock();
    for &va in vas {
        let n = g.read(va, &mut buf).expect("kvm read");
        assert_eq!(n, 4096);
        sum = sum.wrapping_add(buf[7] as u64);
    }
    drop(g);
    let d = t.elapsed();
    std::hint::black_box(sum);
    d
}

fn time_pread(f: &std::fs::File, offs: &[u64]) -> Duration {
    let mut buf = vec![0u8; 4096];
    let mut sum = 0u64;
    let t = Instant::now();
    for &o in offs {
        f.read_exact_at(&mut buf, o).expect("pread");
        sum = sum.wrapping_add(buf[7] as u64);
    }
    let d = t.elapsed();
    std::hint::black_box(sum);
    d
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let dir = std::env::temp_dir().join(format!("kvm-fbsd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t_gen = Instant::now();
    let chunks = vec![(0x1000, 0x9f000), (0x10_0000, RAM_END)];
    let mut m = Amd64Machine::new(chunks.clone(), 0x200_0000, DMAPBASE, DMAPBASE + RAM_END);
    for g in 0..4u64 {
        m.map(DMAPBASE + (g << 30), g << 30, 1 << 30, PG_RW | PG_NX);
    }
    let mut rng = Rng(0x1234_5678_9abc_def1);
    // Kernel map: 256 MiB of 4 KiB pages onto scattered frames, then 1 GiB of 2 MiB pages.
    let kmap4k = 65_536u64;
    for i in 0..kmap4k {
        let pa = 0x1000_0000 + ((i * 7919) % kmap4k) * 4096;
        m.map(KERNBASE + 0x4000_0000 + i * 4096, pa, 4096, PG_RW);
    }
    for i in 0..512u64 {
        m.map(
            KERNBASE + (i << 21),
            0x4000_0000 + (i << 21),
            1 << 21,
            PG_RW,
        );
    }
    // Sparse content: one page in 256 carries data, the rest are holes.
    for pa in (0x10_0000..RAM_END).step_by(256 * 4096) {
        m.phys.fill(pa);
    }
    m.finalize(KERNBASE, KERNBASE + 0x20_0100);
    let mut all: Vec<u64> = Vec::with_capacity((RAM_END / 4096) as usize);
    for &(s, e) in &chunks {
        all.extend((s..e).step_by(4096));
    }
    let mini = dir.join("vmcore.v3");
    let sparse = write_amd64_minidump(&mini, &m, 3, KERNBASE, 0u64.wrapping_sub(KERNBASE), &all);
    let elf = dir.join("vmcore.elf");
    write_amd64_elf(&elf, &m);
    println!(
        "fixture: {} pages of RAM ({} MiB), minidump {} MiB apparent, generated in {:.1} s",
        all.len(),
        all.len() * 4 / 1024,
        std::fs::metadata(&mini).unwrap().len() >> 20,
        t_gen.elapsed().as_secs_f64()
    );
    let syms = [("kernbase", KERNBASE), ("KPML4phys", KERNBASE + 0x20_0100)];

    // Open time (median of 21).
    for (name, path, s) in [
        ("minidump v3", &mini, &[][..]),
        ("ELF full dump", &elf, &syms[..]),
    ] {
        let mut ts: Vec<Duration> = (0..21)
            .map(|_| {
                let t = Instant::now();
                let k = open(path, s);
                let d = t.elapsed();
                drop(k);
                d
            })
            .collect();
        ts.sort();
        println!(
            "open {:14}: median {:8.3} ms (target < 5 ms)",
            name,
            ts[10].as_secs_f64() * 1e3
        );
    }

    // Sample pages: kernel-map VAs (4 KiB and 2 MiB mappings) and direct-map VAs.
    let mut kva = Vec::with_capacity(SAMPLES);
    let mut dva = Vec::with_capacity(SAMPLES);
    for i in 0..SAMPLES {
        let va = if i % 2 == 0 {
            KERNBASE + 0x4000_0000 + (rng.next() % kmap4k) * 4096
        } else {
            KERNBASE + (rng.next() % 262_144) * 4096
        };
        kva.push(va);
        dva.push(DMAPBASE + all[(rng.next() % all.len() as u64) as usize]);
    }
    // File offsets of the same pages: minidump = sparse + rank (every RAM page is dumped, so
    // rank = index in `all`); ELF = PT_LOAD offset + (pa - p_paddr).
    let mini_off = |pa: u64| sparse + all.binary_search(&pa).unwrap() as u64 * 4096;
    let elf_data = 4096u64; // headers fit in the first page
    let elf_off = |pa: u64| {
        if pa < 0x9f000 {
            elf_data + pa - 0x1000
        } else {
            elf_data + (0x9f000 - 0x1000) + pa - 0x10_0000
        }
    };
    let kpa: Vec<u64> = kva.iter().map(|&v| m.truth(v).unwrap()).collect();
    let dpa: Vec<u64> = dva.iter().map(|&v| v - DMAPBASE).collect();

    let kmini = open(&mini, &[]);
    let kelf = open(&elf, &syms);
    let fmini = std::fs::File::open(&mini).unwrap();
    let felf = std::fs::File::open(&elf).unwrap();
    // Check correctness of the offsets once, then warm the page cache for both readers.
    {
        let mut a = vec![0u8; 4096];
        let mut b = vec![0u8; 4096];
        for (i, &va) in kva.iter().enumerate().take(2000) {
            kmini.lock().read(va, &mut a).unwrap();
            fmini.read_exact_at(&mut b, mini_off(kpa[i])).unwrap();
            assert!(
                a == b && a == m.phys.read(kpa[i], 4096),
                "minidump content at 0x{:x}",
                va
            );
            kelf.lock().read(va, &mut a).unwrap();
            felf.read_exact_at(&mut b, elf_off(kpa[i])).unwrap();
            assert!(a == b, "ELF content at 0x{:x}", va);
        }
    }
    // (name, descriptor, file, addresses, file offsets of the same pages)
    type Case<'a> = (&'a str, &'a Kvm, &'a std::fs::File, Vec<u64>, Vec<u64>);
    let cases: Vec<Case> = vec![
        (
            "minidump kmap",
            &kmini,
            &fmini,
            kva.clone(),
            kpa.iter().map(|&p| mini_off(p)).collect(),
        ),
        (
            "minidump dmap",
            &kmini,
            &fmini,
            dva.clone(),
            dpa.iter().map(|&p| mini_off(p)).collect(),
        ),
        (
            "ELF kmap",
            &kelf,
            &felf,
            kva.clone(),
            kpa.iter().map(|&p| elf_off(p)).collect(),
        ),
        (
            "ELF dmap",
            &kelf,
            &felf,
            dva.clone(),
            dpa.iter().map(|&p| elf_off(p)).collect(),
        ),
    ];
    println!(
        "random 4 KiB reads, {} distinct-ish pages per case:",
        SAMPLES
    );
    for (name, k, f, vas, offs) in &cases {
        // First pass: page cache cold for pread and mapping cold for kvm (faults included).
        let p0 = time_pread(f, offs);
        let k0 = time_kvm(k, vas);
        let mut best_k = Duration::MAX;
        let mut best_p = Duration::MAX;
        for _ in 0..3 {
            best_p = best_p.min(time_pread(f, offs));
            best_k = best_k.min(time_kvm(k, vas));
        }
        println!(
            "  {:14} first pass: kvm {:6.2} M/s, pread {:5.2} M/s, ratio {:5.2}x | steady: kvm {:6.2} M/s, pread {:5.2} M/s, ratio {:5.2}x",
            name,
            rate(vas.len(), k0) / 1e6,
            rate(offs.len(), p0) / 1e6,
            p0.as_secs_f64() / k0.as_secs_f64(),
            rate(vas.len(), best_k) / 1e6,
            rate(offs.len(), best_p) / 1e6,
            best_p.as_secs_f64() / best_k.as_secs_f64(),
        );
    }
    drop(cases);
    drop(kmini);
    drop(kelf);
    let _ = std::fs::remove_dir_all(&dir);
}
