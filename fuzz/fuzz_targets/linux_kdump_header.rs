//! kdump-compressed header, sub-header, bitmaps, descriptors and page decompression, and the
//! flattened-record index. The input is used twice: as a whole file, and as byte patches
//! (u16 offset, value) applied to a small valid synthetic kdump, so that corruption of every
//! field is reached quickly.
#![no_main]
use kvm::dump::physmem::PhysMem;
use libfuzzer_sys::fuzz_target;

const B: usize = 4096;

/// header | sub-header | 1st bitmap | 2nd bitmap | descriptors | page data
fn synthetic() -> Vec<u8> {
    let mut f = vec![0u8; 5 * B];
    f[..8].copy_from_slice(b"KDUMP   ");
    f[8..12].copy_from_slice(&6i32.to_le_bytes());
    f[12 + 4 * 65..12 + 4 * 65 + 6].copy_from_slice(b"x86_64");
    f[424..428].copy_from_slice(&1u32.to_le_bytes());
    f[428..432].copy_from_slice(&(B as i32).to_le_bytes());
    f[432..436].copy_from_slice(&1i32.to_le_bytes());
    f[436..440].copy_from_slice(&2u32.to_le_bytes());
    f[440..444].copy_from_slice(&64u32.to_le_bytes());
    f[460..464].copy_from_slice(&1i32.to_le_bytes());
    let info = b"OSRELEASE=6.1.0\nPAGESIZE=4096\nNUMBER(phys_base)=0\n";
    f[B + 32..B + 40].copy_from_slice(&((B + 512) as u64).to_le_bytes());
    f[B + 40..B + 48].copy_from_slice(&(info.len() as u64).to_le_bytes());
    f[B + 96..B + 104].copy_from_slice(&64u64.to_le_bytes());
    f[B + 512..B + 512 + info.len()].copy_from_slice(info);
    f[2 * B] = 0xff; // 1st bitmap: pfns 0..11 exist
    f[2 * B + 1] = 0x0f;
    f[3 * B] = 0xff; // 2nd bitmap: pfns 0..7 dumped, 8..11 excluded
    let data0 = 5 * B;
    let flags = [0u32, 1, 2, 4, 0x20, 0, 0, 0];
    let mut data = Vec::new();
    for (i, &fl) in flags.iter().enumerate() {
        let size = if fl == 0 { B } else { 64 + i * 8 };
        let d = 4 * B + i * 24;
        f[d..d + 8].copy_from_slice(&((data0 + data.len()) as u64).to_le_bytes());
        f[d + 8..d + 12].copy_from_slice(&(size as u32).to_le_bytes());
        f[d + 12..d + 16].copy_from_slice(&fl.to_le_bytes());
        data.extend((0..size).map(|k| (k * 31 + i) as u8));
    }
    f.extend_from_slice(&data);
    f
}

fn exercise(bytes: Vec<u8>) {
    let path = std::path::Path::new("fuzz-input");
    if let Ok(mut parts) =
        kvm::dump::kdump::open_source(kvm::dump::kdump::InMemory(bytes), path, "fuzz")
    {
        let mut buf = [0u8; 64];
        for pfn in 0..16u64 {
            let _ = parts.mem.read_phys(pfn * 4096 + 4000, &mut buf);
        }
        let mut n = 0;
        parts.mem.for_each_page(4096, &mut |_, _| {
            n += 1;
            n < 64
        });
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = kvm::dump::flattened::index(data);
    exercise(data.to_vec());
    let mut f = synthetic();
    for p in data.chunks_exact(3) {
        let off = u16::from_le_bytes([p[0], p[1]]) as usize % f.len();
        f[off] = p[2];
    }
    exercise(f);
});
