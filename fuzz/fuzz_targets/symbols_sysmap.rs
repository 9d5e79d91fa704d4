//! Arbitrary bytes as a System.map / kallsyms listing: line parsing, placeholder detection and
//! index building, then lookups of every name. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = kvm::symbols::sysmap::parse_text(data.to_vec(), "fuzz.map", false) {
        assert!(idx.len() > 0);
        let mut n = 0usize;
        for (name, _) in idx.iter() {
            assert!(idx.get_raw(name).is_some());
            n += 1;
        }
        assert_eq!(n, idx.len());
    }
});
