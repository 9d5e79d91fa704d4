//! x86_64 4/5-level page-table translation and enumeration over arbitrary "physical memory".
#![no_main]
use kvm::arch::x86_64::{translate, walk, PhysRead};
use libfuzzer_sys::fuzz_target;

struct Mem<'a>(&'a [u8]);

impl PhysRead for Mem<'_> {
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> kvm::Result<usize> {
        // Physical memory wraps around the input so that random entries often hit tables.
        if self.0.is_empty() {
            return Err(kvm::Error::bad_address(pa, "empty"));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.0[((pa as usize).wrapping_add(i)) % self.0.len()];
        }
        Ok(buf.len())
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let root = u64::from_le_bytes(data[..8].try_into().unwrap());
    let va = u64::from_le_bytes(data[8..16].try_into().unwrap());
    let mut m = Mem(&data[16..]);
    for levels in [4, 5] {
        let _ = translate(&mut m, root, levels, va);
        let mut n = 0;
        walk(&mut m, root, levels, 0, u64::MAX, &mut |_| {
            n += 1;
            n < 256
        });
    }
});
