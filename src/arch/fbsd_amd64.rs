//! amd64 page-table math for FreeBSD dumps (constants from FreeBSD's kvm_amd64.h): entry bits,
//! protection of an entry, and the 4-level walk used by full (ELF) dumps.

use crate::abi::{VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE};

pub const PAGE_SIZE: u64 = 4096;
pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_MASK: u64 = PAGE_SIZE - 1;
pub const PDRSHIFT: u32 = 21;
pub const NBPDR: u64 = 1 << PDRSHIFT;
pub const PDRMASK: u64 = NBPDR - 1;
pub const PDPSHIFT: u32 = 30;
pub const NBPDP: u64 = 1 << PDPSHIFT;
pub const PDPMASK: u64 = NBPDP - 1;
pub const PML4SHIFT: u32 = 39;
pub const NPTEPG: u64 = 512;

pub const PG_V: u64 = 0x001;
pub const PG_RW: u64 = 0x002;
pub const PG_PS: u64 = 0x080;
pub const PG_NX: u64 = 1 << 63;
pub const PG_FRAME: u64 = 0x000f_ffff_ffff_f000;
pub const PG_PS_FRAME: u64 = 0x000f_ffff_ffe0_0000;
pub const PG_1GB_FRAME: u64 = 0x000f_ffff_c000_0000;

/// kvm_page protection of a page-table entry: READ always, WRITE if PG_RW, EXECUTE unless NX.
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

/// Walks the 4-level tables below `pml4` (the kernel's PML4 page) for `va`, reading entries of
/// lower levels with `read_phys_u64`. Returns the physical address and how many bytes are
/// contiguous from it within the mapping (to the end of the 4 KiB / 2 MiB / 1 GiB page), or
/// the reason the address does not translate.
pub fn walk(
    pml4: &[u64; 512],
    va: u64,
    mut read_phys_u64: impl FnMut(u64) -> Option<u64>,
) -> Result<(u64, u64), String> {
    let pml4e = pml4[((va >> PML4SHIFT) & 511) as usize];
    if pml4e & PG_V == 0 {
        return Err("pml4e not valid".into());
    }
    let pdpe_pa = (pml4e & PG_FRAME) + ((va >> PDPSHIFT) & 511) * 8;
    let pdpe = read_phys_u64(pdpe_pa)
        .ok_or_else(|| format!("pdpe at physical address 0x{:x} not in dump", pdpe_pa))?;
    if pdpe & PG_V == 0 {
        return Err("pdpe not valid".into());
    }
    if pdpe & PG_PS != 0 {
        let off = va & PDPMASK;
        return Ok(((pdpe & PG_1GB_FRAME) + off, NBPDP - off));
    }
    let pde_pa = (pdpe & PG_FRAME) + ((va >> PDRSHIFT) & 511) * 8;
    let pde = read_phys_u64(pde_pa)
        .ok_or_else(|| format!("pde at physical address 0x{:x} not in dump", pde_pa))?;
    if pde & PG_V == 0 {
        return Err("pde not valid".into());
    }
    if pde & PG_PS != 0 {
        let off = va & PDRMASK;
        return Ok(((pde & PG_PS_FRAME) + off, NBPDR - off));
    }
    let pte_pa = (pde & PG_FRAME) + ((va >> PAGE_SHIFT) & 511) * 8;
    let pte = read_phys_u64(pte_pa)
        .ok_or_else(|| format!("pte at physical address 0x{:x} not in dump", pte_pa))?;
    if pte & PG_V == 0 {
        return Err("pte not valid".into());
    }
    let off = va & PAGE_MASK;
    Ok(((pte & PG_FRAME) + off, PAGE_SIZE - off))
}
