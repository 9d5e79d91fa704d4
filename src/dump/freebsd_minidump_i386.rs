//! FreeBSD i386 minidumps, versions 1-2 (sys/i386/include/minidump.h), PAE (8-byte PTEs) and
//! non-PAE (4-byte PTEs). The PTE array maps one 4 KiB page per entry from kernbase; there is
//! no direct map. v2 adds dump_avail.

use std::fs::File;
use std::path::Path;

use crate::abi::KvmPage;
use crate::arch::fbsd_i386::*;
use crate::backend::{Backend, KernelFamily, SymbolLookup};
use crate::dump::freebsd_minidump_common::{
    check_header_len, check_magic, check_version, le32, le64, page, read_chunks, walk_remaining,
    Marker, PageIndex, Sections,
};
use crate::dump::mapped::Mapped;
use crate::error::{Error, Result};

pub const MAGIC: &str = "minidump FreeBSD/i386";
pub const VERSION: u32 = 2;
/// sizeof(struct minidumphdr): 48 for v1, 52 with v2's dumpavailsize.
pub const HEADER_LEN_V1: usize = 48;
pub const HEADER_LEN_V2: usize = 52;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    pub msgbufsize: u32,
    pub bitmapsize: u32,
    pub ptesize: u32,
    pub kernbase: u32,
    pub paemode: u32,
    pub dumpavailsize: u32,
}

pub fn parse_header(path: &str, b: &[u8]) -> Result<Header> {
    check_header_len(path, b, HEADER_LEN_V1)?;
    check_magic(path, b, MAGIC)?;
    let r32 = |o| le32(b, o).unwrap_or(0);
    let version = r32(24);
    check_version(path, version, VERSION)?;
    if version == 2 {
        check_header_len(path, b, HEADER_LEN_V2)?;
    }
    Ok(Header {
        version,
        msgbufsize: r32(28),
        bitmapsize: r32(32),
        ptesize: r32(36),
        kernbase: r32(40),
        paemode: r32(44),
        dumpavailsize: if version == 2 { r32(48) } else { 0 },
    })
}

pub struct I386Minidump {
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
    Ok(Box::new(I386Minidump::open(&file, path)?))
}

impl I386Minidump {
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
            hdr.ptesize as u64,
        )?;
        let index = PageIndex::new(&path, b.len() as u64, &sections, b, hdr.version == 2)?;
        Ok(I386Minidump {
            path,
            map,
            hdr,
            sections,
            index,
            procs: Default::default(),
        })
    }

    fn pte_size(&self) -> u64 {
        if self.hdr.paemode != 0 {
            8
        } else {
            4
        }
    }

    #[inline]
    fn pte(&self, k: u64) -> Option<u64> {
        let sz = self.pte_size();
        if k >= self.hdr.ptesize as u64 / sz {
            return None;
        }
        let off = (self.sections.pmap_off + k * sz) as usize;
        if sz == 8 {
            le64(self.map.bytes(), off)
        } else {
            le32(self.map.bytes(), off).map(u64::from)
        }
    }

    fn frame(&self, pte: u64) -> u64 {
        pte & if self.hdr.paemode != 0 {
            PG_FRAME_PAE
        } else {
            PG_FRAME
        }
    }

    #[inline]
    pub fn translate(&self, va: u64) -> Result<(u64, u64)> {
        let off = va & (PAGE_SIZE - 1);
        let kernbase = self.hdr.kernbase as u64;
        if va < kernbase {
            return Err(Error::bad_address(va, "virtual address not minidumped"));
        }
        let pte = self
            .pte((va - kernbase) >> 12)
            .ok_or_else(|| Error::bad_address(va, "beyond the minidump's PTE array"))?;
        if pte & PG_V == 0 {
            return Err(Error::bad_address(va, "pte not valid"));
        }
        let pa = self.frame(pte);
        let base = self.index.offset_of(pa).ok_or_else(|| {
            Error::bad_address(va, format!("physical address 0x{:x} not in minidump", pa))
        })?;
        Ok((base + off, PAGE_SIZE - off))
    }
}

impl Backend for I386Minidump {
    crate::dump::freebsd_kernel::freebsd_kernel_stats!(crate::dump::freebsd_kernel::I386);
    crate::proc::freebsd_dead::freebsd_dead_procs!(crate::dump::freebsd_kernel::I386);

    fn describe(&self) -> String {
        format!(
            "FreeBSD i386 {}minidump v{} ({})",
            if self.hdr.paemode != 0 { "PAE " } else { "" },
            self.hdr.version,
            self.path
        )
    }

    fn family(&self) -> KernelFamily {
        KernelFamily::FreeBSD
    }

    fn native(&self) -> bool {
        cfg!(target_arch = "x86")
    }

    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        read_chunks(self.map.bytes(), va, buf, |a| self.translate(a))
    }

    /// Phase 1 the kernel map (no direct map on i386: kp_dmap_vaddr 0); phase 2 the other
    /// dumped pages with no virtual address at all, so every dumped page is seen once.
    fn walk_pages(&mut self, cb: &mut dyn FnMut(&KvmPage) -> bool) -> Result<bool> {
        let mut marker = Marker::new(self.index.bitmap.nbits());
        let n = self.hdr.ptesize as u64 / self.pte_size();
        for k in 0..n {
            let pte = self.pte(k).unwrap_or(0);
            if pte & PG_V == 0 {
                continue;
            }
            let pa = self.frame(pte);
            if let Some(bit) = self.index.avail.bit_id(pa) {
                marker.mark(bit);
            }
            let va = self.hdr.kernbase as u64 + (k << 12);
            let p = page(
                pa,
                va,
                0,
                entry_prot(pte),
                self.index.kp_offset(pa),
                PAGE_SIZE,
            );
            if !cb(&p) {
                return Ok(false);
            }
        }
        Ok(walk_remaining(
            &self.index,
            &marker,
            |_| 0,
            crate::abi::VM_PROT_READ | crate::abi::VM_PROT_WRITE,
            cb,
        ))
    }
}
