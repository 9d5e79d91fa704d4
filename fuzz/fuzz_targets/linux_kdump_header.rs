//! kdump-compressed header, sub-header, bitmaps, descriptors and page decompression, and the
//! flattened-record index, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use kvm::dump::physmem::PhysMem;

fuzz_target!(|data: &[u8]| {
    let _ = kvm::dump::flattened::index(data);
    let path = std::path::Path::new("fuzz-input");
    if let Ok(mut parts) =
        kvm::dump::kdump::open_source(kvm::dump::kdump::InMemory(data.to_vec()), path, "fuzz")
    {
        let mut buf = [0u8; 64];
        for pa in [0u64, 4096, 0x10_0000, 0x1000_0000] {
            let _ = parts.mem.read_phys(pa, &mut buf);
        }
        let mut n = 0;
        parts.mem.for_each_page(4096, &mut |_, _| {
            n += 1;
            n < 64
        });
    }
});
