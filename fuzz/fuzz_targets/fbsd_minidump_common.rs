//! Shared body of the fbsd_minidump_* targets: a FreeBSD minidump whose header fields (after
//! the magic), dump_avail, bitmap, page map and page data all come from the fuzzer, opened
//! through the descriptor, then reads at kernel-map / direct-map addresses taken from the header
//! and a full kvm_walk_pages. Nothing may panic; errors are fine.

use std::ffi::OsStr;
use std::io::Write;
use std::os::fd::FromRawFd;

use kvm::{Kvm, OpenArgs};

/// Where one platform's header keeps the addresses the reads start from.
pub struct Platform {
    pub magic: &'static [u8],
    /// Width of `kernbase` at offset 40 (4 on i386, 8 elsewhere).
    pub kernbase_len: usize,
    /// Offset of `dmapbase`, when the platform has a direct map.
    pub dmapbase_off: Option<usize>,
}

fn field(b: &[u8], off: usize, len: usize) -> u64 {
    let mut v = [0u8; 8];
    if let Some(s) = b.get(off..off + len) {
        v[..len].copy_from_slice(s);
    }
    u64::from_le_bytes(v)
}

pub fn run(p: &Platform, data: &[u8]) {
    let mut core = vec![0u8; 24];
    core[..p.magic.len()].copy_from_slice(p.magic);
    core.extend_from_slice(data);
    // SAFETY: memfd_create with a static NUL-terminated name; the fd is owned by `file`.
    let fd = unsafe { libc::memfd_create(c"kvm-fuzz-fbsd".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0, "memfd_create failed");
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&core).expect("write to memfd");
    let path = format!("/proc/self/fd/{}", fd);
    let args = OpenArgs {
        corefile: Some(OsStr::new(&path)),
        ..Default::default()
    };
    if let Ok(kd) = Kvm::open(args) {
        let mut st = kd.lock();
        let kernbase = field(&core, 40, p.kernbase_len);
        let dmapbase = p.dmapbase_off.map_or(0, |off| field(&core, off, 8));
        let mut buf = vec![0u8; 20000];
        for addr in [
            kernbase,
            kernbase.wrapping_add(0x1ff_f00),
            kernbase.wrapping_add(field(data, 0, 4) << 12),
            dmapbase,
            dmapbase.wrapping_add(field(data, 4, 4) << 12),
            u64::MAX - 8,
        ] {
            let _ = st.read(addr, &mut buf);
        }
        let _ = st.walk_pages_collect();
        let _ = st.native();
        let _ = st.kerndisp();
    }
}
