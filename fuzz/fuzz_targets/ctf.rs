//! Arbitrary bytes as a FreeBSD CTF blob (a .SUNW_ctf section) or a kernel ELF carrying one:
//! parse, convert to BTF, then the lookups the dead-FreeBSD process walker makes. Nothing may
//! panic, loop or allocate without bound; errors are fine.
#![no_main]

use kvm::btf::Btf;
use kvm::ctf;
use libfuzzer_sys::fuzz_target;

fn exercise(btf: &Btf) {
    for (s, m) in [
        ("proc", "p_pid"),
        ("proc", "p_comm"),
        ("proc", "p_rux.rux_runtime"),
        ("thread", "td_tid"),
        ("ucred", "cr_uid"),
        ("a", "b.c.d"),
    ] {
        if let Ok(f) = btf.field(s, m) {
            let _ = btf.size_of(f.type_id);
            let _ = btf.array(f.type_id);
            let _ = btf.pointee(f.type_id);
            let _ = btf.resolve(f.type_id);
        }
    }
    let _ = btf.struct_size("proc");
    let _ = btf.enum_value("PRS_ZOMBIE");
    // Every type id, including ones past the end.
    for id in 0..(btf.type_count() as u32 + 2).min(4096) {
        let _ = btf.size_of(id);
        let _ = btf.name(id);
        let _ = btf.member(id, "x");
        let _ = btf.pointee(id);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(btf) = ctf::parse(data) {
        exercise(&btf);
    }
    // The same bytes as their own external string table, with 32-bit pointers.
    if let Ok(btf) = ctf::parse_with(data, Some(data), Some(4)) {
        exercise(&btf);
    }
    if let Ok(btf) = ctf::from_elf(data) {
        exercise(&btf);
    }
});
