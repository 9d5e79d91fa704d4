//! ELF vmcore header/notes and VMCOREINFO parsing on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kvm::dump::elf::is_linux_vmcore(data);
    if let Ok(core) = kvm::dump::elf::parse_header(data) {
        for n in kvm::dump::elf::elf_notes(data, &core) {
            let desc = &data[n.desc_off..n.desc_off + n.desc_len];
            if n.name == b"VMCOREINFO" {
                let _ = kvm::dump::vmcoreinfo::VmcoreInfo::parse(desc);
            }
        }
    }
    let info = kvm::dump::vmcoreinfo::VmcoreInfo::parse(data);
    let _ = (
        info.osrelease(),
        info.page_size(),
        info.kerneloffset(),
        info.number("phys_base"),
        info.symbol("init_top_pgt"),
        info.symbols().count(),
    );
});
