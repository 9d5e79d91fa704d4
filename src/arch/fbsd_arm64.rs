//! arm64 descriptor bits for FreeBSD minidumps (constants from FreeBSD's kvm_aarch64.h).

use crate::abi::{VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE};

/// Upper and lower attribute bits; the output address is what remains (bits 12..49).
pub const ATTR_MASK: u64 = 0xfffc_0000_0000_0fff;
pub const ATTR_DESCR_MASK: u64 = 3;
pub const L3_PAGE: u64 = 3;
/// AP[2] (read-only) is bit 7.
pub const ATTR_AP_RO: u64 = 1 << 7;
/// PXN | UXN.
pub const ATTR_XN: u64 = (1 << 53) | (1 << 54);

/// kvm_page protection: READ always, WRITE unless AP read-only, EXECUTE unless XN.
pub fn entry_prot(d: u64) -> u8 {
    let mut p = VM_PROT_READ;
    if d & ATTR_AP_RO == 0 {
        p |= VM_PROT_WRITE;
    }
    if d & ATTR_XN == 0 {
        p |= VM_PROT_EXECUTE;
    }
    p
}
