//! FreeBSD arm64 minidumps, versions 1-3 (sys/arm64/include/minidump.h).
//!
//! The page map is an array of L3 descriptors, one per page from kernbase. v2 adds dump_avail,
//! v3 a flags word selecting 4 KiB or 16 KiB pages; with 16 KiB pages every section, bit-id and
//! page-data stride uses 16 KiB. The direct map starts at dmapbase and maps physical dmapphys.

use std::fs::File;
use std::path::Path;

use crate::abi::{KvmPage, VM_PROT_READ, VM_PROT_WRITE};
use crate::arch::fbsd_arm64::*;
use crate::backend::{Backend, KernelFamily, SymbolLookup};
use crate::dump::freebsd_minidump_common::{
    check_header_len, check_magic, le32, le64, page, read_chunks, walk_remaining, Marker,
    PageIndex, Sections,
};
use crate::dump::mapped::Mapped;
use crate::error::{Error, Result};

pub const MAGIC: &str = "minidump FreeBSD/arm64";
pub const VERSION: u32 = 3;
pub const HEADER_LEN: usize = 80;
pub const FLAG_PS_MASK: u32 = 3;
pub const FLAG_PS_4K: u32 = 0;
pub const FLAG_PS_16K: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub msgbufsize: u32,
    pub bitmapsize: u32,
    pub pmapsize: u32,
    pub kernbase: u64,
    pub dmapphys: u64,
    pub dmapbase: u64,
    pub dmapend: u64,
    pub dumpavailsize: u32,
    pub flags: u32,
    /// 4096 or 16384, from flags.
    pub page_size: u64,
}

pub fn parse_header(path: &str, b: &[u8]) -> Result<Header> {
    check_header_len(path, b, HEADER_LEN)?;
    check_magic(path, b, MAGIC)?;
    let r32 = |o| le32(b, o).unwrap_or(0);
    let r64 = |o| le64(b, o).unwrap_or(0);
    let version = r32(24);
    // Not check_version: libkvm's arm64 message capitalizes "Expected".
    if !(1..=VERSION).contains(&version) {
        return Err(Error::format(format!(
            "{}: wrong minidump version. Expected {} got {}",
            path, VERSION, version
        )));
    }
    let flags = if version >= 3 { r32(76) } else { FLAG_PS_4K };
    let page_size = match flags & FLAG_PS_MASK {
        FLAG_PS_4K => 4096,
        FLAG_PS_16K => 16384,
        other => {
            return Err(Error::format(format!(
                "{}: unknown page size flag {:x}",
                path, other
            )))
        }
    };
    Ok(Header {
        version,
        msgbufsize: r32(28),
        bitmapsize: r32(32),
        pmapsize: r32(36),
        kernbase: r64(40),
        dmapphys: r64(48),
        dmapbase: r64(56),
        dmapend: r64(64),
        dumpavailsize: if version >= 2 { r32(72) } else { 0 },
        flags,
        page_size,
    })
}

pub struct Arm64Minidump {
    path: String,
    map: Mapped,
    pub hdr: Header,
    pub sections: Sections,
    pub index: PageIndex,
    page_shift: u32,
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
    Ok(Box::new(Arm64Minidump::open(&file, path)?))
}

impl Arm64Minidump {
    pub fn open(file: &File, path: &Path) -> Result<Self> {
        let path = path.display().to_string();
        let map = Mapped::map(file, Path::new(&path))?;
        let b = map.bytes();
        let hdr = parse_header(&path, b)?;
        let sections = Sections::new(
            &path,
            b.len() as u64,
            hdr.page_size,
            hdr.msgbufsize as u64,
            hdr.dumpavailsize as u64,
            hdr.bitmapsize as u64,
            hdr.pmapsize as u64,
        )?;
        let index = PageIndex::new(&path, b.len() as u64, &sections, b, hdr.version >= 2)?;
        let page_shift = hdr.page_size.trailing_zeros();
        Ok(Arm64Minidump {
            path,
            map,
            hdr,
            sections,
            index,
            page_shift,
            procs: Default::default(),
        })
    }

    #[inline]
    fn l3(&self, k: u64) -> Option<u64> {
        if k >= self.hdr.pmapsize as u64 / 8 {
            return None;
        }
        le64(self.map.bytes(), (self.sections.pmap_off + k * 8) as usize)
    }

    /// File offset of `va` and the bytes valid from there (to the end of its page).
    #[inline]
    pub fn translate(&self, va: u64) -> Result<(u64, u64)> {
        let ps = self.hdr.page_size;
        let off = va & (ps - 1);
        let base = if va >= self.hdr.dmapbase && va < self.hdr.dmapend {
            let pa = (va - self.hdr.dmapbase)
                .checked_add(self.hdr.dmapphys)
                .ok_or_else(|| Error::bad_address(va, "direct map address overflows"))?
                & !(ps - 1);
            self.index.offset_of(pa).ok_or_else(|| {
                Error::bad_address(va, format!("direct map address 0x{:x} not in minidump", va))
            })?
        } else if va >= self.hdr.kernbase {
            let d = self
                .l3((va - self.hdr.kernbase) >> self.page_shift)
                .ok_or_else(|| Error::bad_address(va, "beyond the minidump's page map"))?;
            if d & ATTR_DESCR_MASK != L3_PAGE {
                return Err(Error::bad_address(va, "l3 descriptor not valid"));
            }
            let pa = d & !ATTR_MASK;
            self.index.offset_of(pa).ok_or_else(|| {
                Error::bad_address(va, format!("physical address 0x{:x} not in minidump", pa))
            })?
        } else {
            return Err(Error::bad_address(va, "virtual address not minidumped"));
        };
        Ok((base + off, ps - off))
    }

    /// Direct-map address of `pa` (0 when the direct map does not cover it).
    fn dmap_of(&self, pa: u64) -> u64 {
        let Some(rel) = pa.checked_sub(self.hdr.dmapphys) else {
            return 0;
        };
        match self.hdr.dmapbase.checked_add(rel) {
            Some(d)
                if d.checked_add(self.hdr.page_size)
                    .is_some_and(|e| e <= self.hdr.dmapend) =>
            {
                d
            }
            _ => 0,
        }
    }
}

impl Backend for Arm64Minidump {
    crate::dump::freebsd_kernel::freebsd_kernel_stats!(crate::dump::freebsd_kernel::ARM64);
    crate::proc::freebsd_dead::freebsd_dead_procs!(crate::dump::freebsd_kernel::ARM64);

    fn describe(&self) -> String {
        format!(
            "FreeBSD arm64 minidump v{} with {} KiB pages ({})",
            self.hdr.version,
            self.hdr.page_size / 1024,
            self.path
        )
    }

    fn family(&self) -> KernelFamily {
        KernelFamily::FreeBSD
    }

    fn native(&self) -> bool {
        cfg!(target_arch = "aarch64")
    }

    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        read_chunks(self.map.bytes(), va, buf, |a| self.translate(a))
    }

    fn walk_pages(&mut self, cb: &mut dyn FnMut(&KvmPage) -> bool) -> Result<bool> {
        let ps = self.hdr.page_size;
        let mut marker = Marker::new(self.index.bitmap.nbits());
        for k in 0..self.hdr.pmapsize as u64 / 8 {
            let d = self.l3(k).unwrap_or(0);
            if d & ATTR_DESCR_MASK != L3_PAGE {
                continue;
            }
            let va = self.hdr.kernbase.wrapping_add(k << self.page_shift);
            let pa = d & !ATTR_MASK;
            if let Some(bit) = self.index.avail.bit_id(pa) {
                marker.mark(bit);
            }
            let p = page(
                pa,
                va,
                self.dmap_of(pa),
                entry_prot(d),
                self.index.kp_offset(pa),
                ps,
            );
            if !cb(&p) {
                return Ok(false);
            }
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
