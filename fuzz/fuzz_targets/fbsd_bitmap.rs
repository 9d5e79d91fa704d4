//! The minidump bitmap (O(1) rank) and dump_avail bit-id arithmetic on arbitrary bytes: the
//! rank must equal a naive count, and bit-id -> physical address -> bit-id must round-trip.
#![no_main]

use kvm::dump::freebsd_minidump_common::{DumpAvail, PageBitmap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize * 4).min(data.len() - 1) + 1;
    let (avail, bitmap) = data[1..].split_at(split - 1);
    let bm = PageBitmap::new(bitmap);
    let mut naive = 0u64;
    for bit in 0..bm.nbits().min(8192) {
        assert_eq!(bm.rank(bit), naive);
        if bitmap[(bit / 8) as usize] & (1 << (bit % 8)) != 0 {
            assert!(bm.is_set(bit));
            naive += 1;
        }
    }
    assert_eq!(bm.iter_set().count() as u64, bm.count());
    for ps in [4096u64, 16384] {
        if let Ok(da) = DumpAvail::parse("fuzz", avail, ps) {
            for r in da.ranges().iter().take(64) {
                for rel in [0, 1, r.npages / 2, r.npages.saturating_sub(1)] {
                    if rel >= r.npages {
                        continue;
                    }
                    if let Some(pa) = r.start_page.checked_add(rel).and_then(|p| p.checked_mul(ps)) {
                        let bit = da.bit_id(pa).expect("address inside a range has a bit-id");
                        assert_eq!(da.pa_of_bit(bit), Some(pa));
                    }
                }
            }
            for bit in bm.iter_set().take(64) {
                if let Some(pa) = da.pa_of_bit(bit) {
                    assert_eq!(da.bit_id(pa), Some(bit));
                }
            }
        }
    }
});
