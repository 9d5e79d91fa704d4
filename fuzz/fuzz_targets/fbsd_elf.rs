//! FreeBSD ELF full dumps: the ELF/program-header/note parser on arbitrary bytes, then the same
//! bytes (with ELF magic, OSABI standalone and ET_CORE forced so the probe accepts them) opened
//! through the descriptor with kernbase/KPML4phys symbols, and reads through the page tables.
#![no_main]

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::FromRawFd;

use kvm::{Kvm, OpenArgs};
use libfuzzer_sys::fuzz_target;

const KERNBASE: u64 = 0xffff_ffff_8000_0000;

fuzz_target!(|data: &[u8]| {
    let _ = kvm::dump::freebsd_elf::parse_core("fuzz", data);
    let mut core = data.to_vec();
    if core.len() < 64 {
        core.resize(64, 0);
    }
    core[..4].copy_from_slice(b"\x7fELF");
    core[7] = 255;
    if core[5] != 2 {
        core[16..18].copy_from_slice(&4u16.to_le_bytes());
    } else {
        core[16..18].copy_from_slice(&4u16.to_be_bytes());
    }
    let aim = u32::from_le_bytes([core[8], core[9], core[10], core[11]]) as u64;
    // SAFETY: memfd_create with a static NUL-terminated name; the fd is owned by `file`.
    let fd = unsafe { libc::memfd_create(c"kvm-fuzz-fbsd-elf".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&core).expect("write to memfd");
    let path = format!("/proc/self/fd/{}", fd);
    let args = OpenArgs {
        corefile: Some(OsStr::new(&path)),
        resolver: Some(Box::new(move |name: &[u8]| match name {
            b"kernbase" => Some(KERNBASE),
            b"KPML4phys" => Some(KERNBASE + aim),
            _ => None,
        })),
        ..Default::default()
    };
    if let Ok(kd) = Kvm::open(args) {
        let mut st = kd.lock();
        let mut buf = vec![0u8; 10000];
        for addr in [KERNBASE, KERNBASE + aim, 0xffff_f800_0000_0000, aim << 12, u64::MAX - 8] {
            let _ = st.read(addr, &mut buf);
        }
        let _ = st.walk_pages_collect();
    }
});
