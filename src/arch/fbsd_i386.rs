//! i386 PTE bits for FreeBSD minidumps (constants from FreeBSD's kvm_i386.h).

/// The valid, writable and no-execute bits and the protection they give are amd64's (NX is
/// only set in PAE entries).
pub use crate::arch::fbsd_amd64::{entry_prot, PG_NX, PG_RW, PG_V};

pub const PAGE_SIZE: u64 = 4096;
pub const PG_FRAME: u64 = 0xffff_f000;
pub const PG_FRAME_PAE: u64 = 0x000f_ffff_ffff_f000;
