//! Arbitrary bytes as a kernel BTF blob (or an ELF file carrying .BTF): parse, then the lookups
//! the dead-Linux process walker does (struct members incl. anonymous ones, arrays, enums, the
//! whole layout resolution). Nothing may panic or loop; errors are fine.
#![no_main]

use kvm::btf::Btf;
use kvm::proc::linux_dead::{btf_from_file_bytes, layout::Layout};
use libfuzzer_sys::fuzz_target;

fn exercise(btf: &Btf) {
    let _ = Layout::from_btf(btf);
    for (s, m) in [
        ("task_struct", "comm"),
        ("task_struct", "thread_info.cpu"),
        ("tty_struct", "ctrl.pgrp"),
        ("mm_struct", "rss_stat"),
        ("a", "b.c.d"),
    ] {
        if let Ok(f) = btf.field(s, m) {
            let _ = btf.size_of(f.type_id);
            let _ = btf.array(f.type_id);
            let _ = btf.pointee(f.type_id);
        }
    }
    let _ = btf.enum_value("PIDTYPE_SID");
    // Every type id, including ones past the end.
    for id in 0..(btf.type_count() as u32 + 2).min(4096) {
        let _ = btf.size_of(id);
        let _ = btf.name(id);
        let _ = btf.member(id, "x");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = Btf::parse(data) {
        exercise(&btf);
    }
    if let Ok(btf) = btf_from_file_bytes(data) {
        exercise(&btf);
    }
});
