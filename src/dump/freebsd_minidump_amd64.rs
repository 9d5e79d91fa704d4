//! FreeBSD amd64 minidumps, versions 1-3 (sys/amd64/include/minidump.h).
//!
//! v1: the page map is an array of PTEs, one per 4 KiB from kernbase. v2/v3: an array of PDEs,
//! one per 2 MiB from kernbase; a PDE is a 2 MiB superpage (PG_PS) or points to a page-table
//! page that is itself in the dump. v3 adds dump_avail. Direct-map addresses translate
//! arithmetically.

use std::fs::File;
use std::path::Path;

use crate::abi::{KvmPage, VM_PROT_READ, VM_PROT_WRITE};
use crate::arch::fbsd_amd64::*;
use crate::backend::{Backend, KernelFamily, SymbolLookup};
use crate::dump::freebsd_minidump_common::{
    check_header_len, check_magic, check_version, le32, le64, page, read_chunks, walk_remaining,
    Marker, PageIndex, Sections,
};
use crate::dump::mapped::Mapped;
use crate::error::{Error, Result};

pub const MAGIC: &str = "minidump FreeBSD/amd64";
pub const VERSION: u32 = 3;
/// sizeof(struct minidumphdr) of v3 (libkvm reads this much for every version).
pub const HEADER_LEN: usize = 72;

/// The parsed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub msgbufsize: u32,
    pub bitmapsize: u32,
    pub pmapsize: u32,
    pub kernbase: u64,
    pub dmapbase: u64,
    pub dmapend: u64,
    pub dumpavailsize: u32,
}

/// Parses and checks the header at the start of `b`.
pub fn parse_header(path: &str, b: &[u8]) -> Result<Header> {
    check_header_len(path, b, HEADER_LEN)?;
    check_magic(path, b, MAGIC)?;
    let r32 = |o| le32(b, o).unwrap_or(0);
    let r64 = |o| le64(b, o).unwrap_or(0);
    let version = r32(24);
    check_version(path, version, VERSION)?;
    Ok(Header {
        version,
        msgbufsize: r32(28),
        bitmapsize: r32(32),
        pmapsize: r32(36),
        kernbase: r64(40),
        dmapbase: r64(48),
        dmapend: r64(56),
        dumpavailsize: if version == 3 { r32(64) } else { 0 },
    })
}

pub struct Amd64Minidump {
    path: String,
    map: Mapped,
    pub hdr: Header,
    pub sections: Sections,
    pub index: PageIndex,
    /// Process listing state (kernel types from the execfile).
    procs: crate::proc::freebsd_dead::Slot,
}

pub fn probe(head: &[u8]) -> bool {
    head.starts_with(MAGIC.as_bytes())
}

pub fn open(
    file: File,
    path: &Path,
    _flags: i32,
    _syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    Ok(Box::new(Amd64Minidump::open(&file, path)?))
}

impl Amd64Minidump {
    pub fn open(file: &File, path: &Path) -> Result<Self> {
        let path = path.display().to_string();
        let map = Mapped::map(file, Path::new(&path))?;
        let b = map.bytes();
        let hdr = parse_header(&path, b)?;
        let sections = Sections::new(
            &path,
            b.len() as u64,
            PAGE_SIZE,
            hdr.msgbufsize as u64,
            hdr.dumpavailsize as u64,
            hdr.bitmapsize as u64,
            hdr.pmapsize as u64,
        )?;
        let index = PageIndex::new(&path, b.len() as u64, &sections, b, hdr.version >= 3)?;
        Ok(Amd64Minidump {
            path,
            map,
            hdr,
            sections,
            index,
            procs: Default::default(),
        })
    }

    /// Page-map entry `k` (PTE for v1, PDE for v2+), None past the end of the page map.
    #[inline]
    fn pmap_entry(&self, k: u64) -> Option<u64> {
        if k >= self.hdr.pmapsize as u64 / 8 {
            return None;
        }
        le64(self.map.bytes(), (self.sections.pmap_off + k * 8) as usize)
    }

    /// Entry `i` of the dumped page-table page at physical `pt_pa`.
    #[inline]
    fn pt_entry(&self, pt_pa: u64, i: u64) -> Option<u64> {
        let off = self.index.offset_of(pt_pa)?;
        le64(self.map.bytes(), (off + i * 8) as usize)
    }

    /// Physical address of the kernel-map address `va` (>= kernbase).
    fn kmap_pa(&self, va: u64) -> std::result::Result<u64, String> {
        let rel = va - self.hdr.kernbase;
        if self.hdr.version == 1 {
            let pte = self
                .pmap_entry(rel >> PAGE_SHIFT)
                .ok_or("beyond the minidump's page map")?;
            if pte & PG_V == 0 {
                return Err("pte not valid".into());
            }
            return Ok(pte & PG_FRAME);
        }
        let pde = self
            .pmap_entry(rel >> PDRSHIFT)
            .ok_or("beyond the minidump's page map")?;
        if pde & PG_V == 0 {
            return Err("pde not valid".into());
        }
        if pde & PG_PS != 0 {
            return Ok((pde & PG_PS_FRAME) + (va & PDRMASK & !PAGE_MASK));
        }
        let pt = pde & PG_FRAME;
        let pte = self
            .pt_entry(pt, (va >> PAGE_SHIFT) & (NPTEPG - 1))
            .ok_or_else(|| format!("cannot find page table entry for 0x{:x}", pt))?;
        if pte & PG_V == 0 {
            return Err("pte not valid".into());
        }
        Ok(pte & PG_FRAME)
    }

    /// File offset of `va` and the bytes valid from there (to the end of its 4 KiB page).
    #[inline]
    pub fn translate(&self, va: u64) -> Result<(u64, u64)> {
        let off = va & PAGE_MASK;
        let base = if va >= self.hdr.kernbase {
            let pa = self
                .kmap_pa(va)
                .map_err(|why| Error::bad_address(va, why))?;
            self.index.offset_of(pa).ok_or_else(|| {
                Error::bad_address(va, format!("physical address 0x{:x} not in minidump", pa))
            })?
        } else if va >= self.hdr.dmapbase && va < self.hdr.dmapend {
            let pa = (va - self.hdr.dmapbase) & !PAGE_MASK;
            self.index.offset_of(pa).ok_or_else(|| {
                Error::bad_address(va, format!("direct map address 0x{:x} not in minidump", va))
            })?
        } else {
            return Err(Error::bad_address(va, "virtual address not minidumped"));
        };
        Ok((base + off, PAGE_SIZE - off))
    }

    fn dmap_of(&self, pa: u64) -> u64 {
        match self.hdr.dmapbase.checked_add(pa) {
            Some(d)
                if d.checked_add(PAGE_SIZE)
                    .is_some_and(|e| e <= self.hdr.dmapend) =>
            {
                d
            }
            _ => 0,
        }
    }

    fn mark_pa(&self, marker: &mut Marker, pa: u64) {
        if let Some(bit) = self.index.avail.bit_id(pa) {
            marker.mark(bit);
        }
    }

    /// Marks the 4 KiB pages of the `size`-byte mapping of `va` to `pa` by entry `e` as seen,
    /// then reports the mapping to `cb`; false when `cb` stops the walk.
    fn report(
        &self,
        marker: &mut Marker,
        cb: &mut dyn FnMut(&KvmPage) -> bool,
        pa: u64,
        va: u64,
        e: u64,
        size: u64,
    ) -> bool {
        for i in 0..size / PAGE_SIZE {
            self.mark_pa(marker, pa + i * PAGE_SIZE);
        }
        let p = page(
            pa,
            va,
            self.dmap_of(pa),
            entry_prot(e),
            self.index.kp_offset(pa),
            size,
        );
        cb(&p)
    }

    /// Phase 1: the kernel map in VA order.
    fn walk_kmap(&self, marker: &mut Marker, cb: &mut dyn FnMut(&KvmPage) -> bool) -> bool {
        let n = self.hdr.pmapsize as u64 / 8;
        for k in 0..n {
            let e = self.pmap_entry(k).unwrap_or(0);
            if e & PG_V == 0 {
                continue;
            }
            if self.hdr.version == 1 {
                let va = self.hdr.kernbase.wrapping_add(k << PAGE_SHIFT);
                if !self.report(marker, cb, e & PG_FRAME, va, e, PAGE_SIZE) {
                    return false;
                }
                continue;
            }
            let va = self.hdr.kernbase.wrapping_add(k << PDRSHIFT);
            if e & PG_PS != 0 {
                if !self.report(marker, cb, e & PG_PS_FRAME, va, e, NBPDR) {
                    return false;
                }
                continue;
            }
            let pt = e & PG_FRAME;
            if self.index.offset_of(pt).is_none() {
                continue;
            }
            for i in 0..NPTEPG {
                let pte = self.pt_entry(pt, i).unwrap_or(0);
                if pte & PG_V == 0 {
                    continue;
                }
                let pva = va.wrapping_add(i * PAGE_SIZE);
                if !self.report(marker, cb, pte & PG_FRAME, pva, pte, PAGE_SIZE) {
                    return false;
                }
            }
        }
        true
    }
}

impl Backend for Amd64Minidump {
    crate::dump::freebsd_kernel::freebsd_kernel_stats!(crate::dump::freebsd_kernel::AMD64);
    crate::proc::freebsd_dead::freebsd_dead_procs!(crate::dump::freebsd_kernel::AMD64);

    fn describe(&self) -> String {
        format!(
            "FreeBSD amd64 minidump v{} ({})",
            self.hdr.version, self.path
        )
    }

    fn family(&self) -> KernelFamily {
        KernelFamily::FreeBSD
    }

    fn native(&self) -> bool {
        cfg!(target_arch = "x86_64")
    }

    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        read_chunks(self.map.bytes(), va, buf, |a| self.translate(a))
    }

    fn walk_pages(&mut self, cb: &mut dyn FnMut(&KvmPage) -> bool) -> Result<bool> {
        let mut marker = Marker::new(self.index.bitmap.nbits());
        if !self.walk_kmap(&mut marker, cb) {
            return Ok(false);
        }
        Ok(walk_remaining(
            &self.index,
            &marker,
            |pa| self.dmap_of(pa),
            VM_PROT_READ | VM_PROT_WRITE,
            cb,
        ))
    }
}
