//! Arbitrary bytes opened as a core file through the core's open path (probe table, format
//! parsers), then a few reads, a symbol lookup and a page walk on whatever opened. Nothing may
//! panic; errors are fine.
#![no_main]

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::FromRawFd;

use kvm::{Kvm, OpenArgs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // An anonymous in-memory file, opened again by path as a core file.
    // SAFETY: memfd_create with a static NUL-terminated name; the fd is owned by `file`.
    let fd = unsafe { libc::memfd_create(c"kvm-fuzz".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(data).expect("write to memfd");
    let path = format!("/proc/self/fd/{}", fd);
    let args = OpenArgs {
        corefile: Some(OsStr::new(&path)),
        ..Default::default()
    };
    if let Ok(kd) = Kvm::open(args) {
        let mut st = kd.lock();
        let mut buf = [0u8; 64];
        for addr in [0u64, 0x1000, 0xffff_ffff_8100_0000, u64::MAX - 8] {
            let _ = st.read(addr, &mut buf);
        }
        let _ = st.nlist(&[b"init_task".as_slice(), b"_version".as_slice()]);
        let _ = st.walk_pages_collect();
        let _ = st.getprocs(0, 0);
    }
});
