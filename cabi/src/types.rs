//! C-only types of <kvm.h> and <nlist.h>. The plain-data structs shared with the core
//! (kinfo_proc, kvm_swap, kvm_page) live in kvm_core::abi; cbindgen reads that file too.

#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_short, c_uchar, c_uint, c_ulong, c_void};

pub use kvm_core::abi::KinfoProc;
use kvm_core::abi::{KvmPage, KvmSwap};

/// FreeBSD's 64-bit kernel address types (typedefs in the header's prologue).
pub type kvaddr_t = u64;
pub type kpaddr_t = u64;
pub type kssize_t = i64;
pub type u_long = c_ulong;
pub type u_int = c_uint;
pub type u_char = c_uchar;
pub type vm_prot_t = c_uchar;
pub type off_t = libc::off_t;
pub type ssize_t = libc::ssize_t;

/// The opaque handle; C sees `typedef struct __kvm kvm_t`.
pub type kvm_t = kvm_core::Kvm;

/// The callback type of kvm_walk_pages: C declares it as a function type
/// (`typedef int kvm_walk_pages_cb_t(struct kvm_page *, void *)`) and passes a pointer to it.
/// The header's prologue holds that typedef; here it only names the pointee.
pub type kvm_walk_pages_cb_t = c_void;

/// The real signature behind a `kvm_walk_pages_cb_t *`.
pub type WalkCb = unsafe extern "C" fn(*mut kvm_page, *mut c_void) -> c_int;

/// The resolver given to kvm_open2: 0 = found (address stored), non-zero = not found.
pub type Resolver = Option<unsafe extern "C" fn(*const c_char, *mut kvaddr_t) -> c_int>;

/// 64-bit-clean symbol request of kvm_nlist2.
#[repr(C)]
pub struct kvm_nlist {
    pub n_name: *const c_char,
    pub n_type: c_uchar,
    pub n_value: kvaddr_t,
}

/// FreeBSD `struct nlist` (a.out heritage, <nlist.h>). On LP64 the padding member FreeBSD
/// declares between n_name and n_type has zero width.
#[repr(C)]
pub struct nlist {
    pub n_name: *mut c_char,
    pub n_type: c_uchar,
    pub n_other: c_char,
    pub n_desc: c_short,
    pub n_value: c_ulong,
}

/// kvm_getswapinfo flag: prefix device names with "/dev/".
pub const SWIF_DEV_PREFIX: c_int = 0x0002;
/// Version of `struct kvm_page` handed to kvm_walk_pages callbacks.
pub const LIBKVM_WALK_PAGES_VERSION: c_int = 2;
const _: () = assert!(SWIF_DEV_PREFIX == kvm_core::abi::SWIF_DEV_PREFIX);
const _: () = assert!(LIBKVM_WALK_PAGES_VERSION as u32 == kvm_core::abi::LIBKVM_WALK_PAGES_VERSION);

/// C spelling of the core's `KvmSwap` (same layout, checked below), as <kvm.h> declares it.
#[repr(C)]
pub struct kvm_swap {
    pub ksw_devname: [c_char; 32],
    pub ksw_used: u_int,
    pub ksw_total: u_int,
    pub ksw_flags: c_int,
    pub ksw_reserved1: u_int,
    pub ksw_reserved2: u_int,
}

/// C spelling of the core's `KvmPage` (same layout, checked below).
#[repr(C)]
pub struct kvm_page {
    pub kp_version: u_int,
    pub kp_paddr: kpaddr_t,
    pub kp_kmap_vaddr: kvaddr_t,
    pub kp_dmap_vaddr: kvaddr_t,
    pub kp_prot: vm_prot_t,
    pub kp_offset: off_t,
    pub kp_len: usize,
}

/// Same size and every member at the same offset: the C view and the core type are one layout.
macro_rules! same_layout {
    ($c:ty, $core:ty, $($f:ident),*) => {
        const _: () = assert!(std::mem::size_of::<$c>() == std::mem::size_of::<$core>());
        $(const _: () = assert!(std::mem::offset_of!($c, $f) == std::mem::offset_of!($core, $f));)*
    };
}
same_layout!(
    kvm_swap,
    KvmSwap,
    ksw_devname,
    ksw_used,
    ksw_total,
    ksw_flags,
    ksw_reserved1,
    ksw_reserved2
);
same_layout!(
    kvm_page,
    KvmPage,
    kp_version,
    kp_paddr,
    kp_kmap_vaddr,
    kp_dmap_vaddr,
    kp_prot,
    kp_offset,
    kp_len
);

const _: () = assert!(std::mem::size_of::<nlist>() == 24);
const _: () = assert!(std::mem::offset_of!(nlist, n_value) == 16);
const _: () = assert!(std::mem::size_of::<kvm_nlist>() == 24);
const _: () = assert!(std::mem::offset_of!(kvm_nlist, n_value) == 16);

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    const LAYOUTS: &str = include_str!("../../tests/data/abi/freebsd-amd64-layouts.tsv");

    /// The C spellings of this crate against the golden table: every row of their structs.
    #[test]
    fn c_types_match_freebsd_amd64() {
        let ours: &[(&str, &str, usize)] = &[
            ("nlist", "n_name", offset_of!(nlist, n_name)),
            ("nlist", "n_un", offset_of!(nlist, n_name)),
            ("nlist", "n_un.n_name", offset_of!(nlist, n_name)),
            ("nlist", "n_un.n_strx", offset_of!(nlist, n_name)),
            ("nlist", "n_type", offset_of!(nlist, n_type)),
            ("nlist", "n_other", offset_of!(nlist, n_other)),
            ("nlist", "n_desc", offset_of!(nlist, n_desc)),
            ("nlist", "n_value", offset_of!(nlist, n_value)),
            ("nlist", "<TOTAL>", size_of::<nlist>()),
            ("kvm_nlist", "n_name", offset_of!(kvm_nlist, n_name)),
            ("kvm_nlist", "n_type", offset_of!(kvm_nlist, n_type)),
            ("kvm_nlist", "n_value", offset_of!(kvm_nlist, n_value)),
            ("kvm_nlist", "<TOTAL>", size_of::<kvm_nlist>()),
            ("kvm_swap", "ksw_devname", offset_of!(kvm_swap, ksw_devname)),
            ("kvm_swap", "ksw_used", offset_of!(kvm_swap, ksw_used)),
            ("kvm_swap", "ksw_total", offset_of!(kvm_swap, ksw_total)),
            ("kvm_swap", "ksw_flags", offset_of!(kvm_swap, ksw_flags)),
            (
                "kvm_swap",
                "ksw_reserved1",
                offset_of!(kvm_swap, ksw_reserved1),
            ),
            (
                "kvm_swap",
                "ksw_reserved2",
                offset_of!(kvm_swap, ksw_reserved2),
            ),
            ("kvm_swap", "<TOTAL>", size_of::<kvm_swap>()),
            ("kvm_page", "kp_version", offset_of!(kvm_page, kp_version)),
            ("kvm_page", "kp_paddr", offset_of!(kvm_page, kp_paddr)),
            (
                "kvm_page",
                "kp_kmap_vaddr",
                offset_of!(kvm_page, kp_kmap_vaddr),
            ),
            (
                "kvm_page",
                "kp_dmap_vaddr",
                offset_of!(kvm_page, kp_dmap_vaddr),
            ),
            ("kvm_page", "kp_prot", offset_of!(kvm_page, kp_prot)),
            ("kvm_page", "kp_offset", offset_of!(kvm_page, kp_offset)),
            ("kvm_page", "kp_len", offset_of!(kvm_page, kp_len)),
            ("kvm_page", "<TOTAL>", size_of::<kvm_page>()),
        ];
        let mut checked = 0;
        for line in LAYOUTS.lines().skip(1) {
            let r: Vec<&str> = line.split('\t').collect();
            if !["nlist", "kvm_nlist", "kvm_swap", "kvm_page"].contains(&r[0]) {
                continue;
            }
            let want: usize = r[2].parse().unwrap();
            let got = ours
                .iter()
                .find(|o| o.0 == r[0] && o.1 == r[1])
                .unwrap_or_else(|| panic!("{}.{} not checked", r[0], r[1]));
            assert_eq!(got.2, want, "{}.{}", r[0], r[1]);
            checked += 1;
        }
        assert_eq!(checked, ours.len());
    }
}
