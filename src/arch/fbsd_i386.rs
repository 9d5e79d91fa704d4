//! i386 PTE bits for FreeBSD minidumps (constants from FreeBSD's kvm_i386.h).

use crate::abi::{VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE};

pub const PAGE_SIZE: u64 = 4096;
pub const PG_V: u64 = 0x001;
pub const PG_RW: u64 = 0x002;
pub const PG_NX: u64 = 1 << 63;
pub const PG_FRAME: u64 = 0xffff_f000;
pub const PG_FRAME_PAE: u64 = 0x000f_ffff_ffff_f000;

/// kvm_page protection: READ always, WRITE if PG_RW, EXECUTE unless NX (PAE only).
pub fn entry_prot(e: u64) -> u8 {
    let mut p = VM_PROT_READ;
    if e & PG_RW != 0 {
        p |= VM_PROT_WRITE;
    }
    if e & PG_NX == 0 {
        p |= VM_PROT_EXECUTE;
    }
    p
}
