//! Arbitrary bytes as an ELF kernel image: header, section headers, .symtab/.strtab parsing
//! and index building, then a few lookups and a full iteration. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(idx) = kvm::symbols::elf::parse_bytes(data, "fuzz.elf") {
        let mut n = 0usize;
        for (name, sym) in idx.iter() {
            // every listed name must be found again with the same value
            assert_eq!(idx.get_raw(name).map(|s| s.value), Some(sym.value));
            n += 1;
        }
        assert_eq!(n, idx.len());
        let _ = idx.lookup("_text");
        let _ = idx.lookup_bytes(b"\xff\xfe");
    }
});
