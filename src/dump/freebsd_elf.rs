//! FreeBSD amd64 full dumps (debug.minidump=0): an ELF core whose PT_LOAD segments are the
//! physical memory chunks (p_paddr = physical start). Kernel virtual addresses translate
//! through the kernel's own 4-level page tables, found, as FreeBSD's kvm_amd64.c does, via the
//! kernel symbols `kernbase` and `KPML4phys` (a variable holding the PML4's physical address,
//! stored at physical `&KPML4phys - kernbase`).
//!
//! Told apart from Linux ELF vmcores by e_ident[EI_OSABI]: FreeBSD's dumper writes
//! ELFOSABI_STANDALONE (255) and no notes; Linux writes ELFOSABI_NONE and a VMCOREINFO note.

use std::fs::File;
use std::path::Path;

use crate::arch::fbsd_amd64::{walk, PAGE_MASK, PAGE_SIZE};
use crate::backend::{Backend, KernelFamily, SymbolLookup};
use crate::dump::mapped::Mapped;
use crate::error::{Error, Result};

pub const ET_CORE: u16 = 4;
pub const EM_X86_64: u16 = 62;
pub const ELFOSABI_FREEBSD: u8 = 9;
pub const ELFOSABI_STANDALONE: u8 = 255;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PN_XNUM: u16 = 0xffff;

/// One PT_LOAD: physical `paddr .. paddr + len` is at file offset `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub paddr: u64,
    pub len: u64,
    pub offset: u64,
}

/// What the ELF header and program headers of a core say.
#[derive(Clone, Debug)]
pub struct CoreInfo {
    pub class64: bool,
    pub big_endian: bool,
    pub osabi: u8,
    pub machine: u16,
    /// PT_LOAD segments sorted by physical address (checked not to overlap).
    pub loads: Vec<Segment>,
    /// Names of the notes in PT_NOTE segments.
    pub note_names: Vec<String>,
}

struct Rd<'a> {
    b: &'a [u8],
    be: bool,
}

impl Rd<'_> {
    fn get<const N: usize>(&self, off: u64) -> Option<[u8; N]> {
        let off = usize::try_from(off).ok()?;
        self.b.get(off..off.checked_add(N)?)?.try_into().ok()
    }
    fn u16(&self, off: u64) -> Option<u16> {
        let a = self.get::<2>(off)?;
        Some(if self.be {
            u16::from_be_bytes(a)
        } else {
            u16::from_le_bytes(a)
        })
    }
    fn u32(&self, off: u64) -> Option<u32> {
        let a = self.get::<4>(off)?;
        Some(if self.be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        })
    }
    fn u64(&self, off: u64) -> Option<u64> {
        let a = self.get::<8>(off)?;
        Some(if self.be {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        })
    }
}

/// Cheap test on the first bytes: an ELF core written by FreeBSD's kernel dumper.
pub fn probe(head: &[u8]) -> bool {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return false;
    }
    let be = head[5] == 2;
    let e_type = if be {
        u16::from_be_bytes([head[16], head[17]])
    } else {
        u16::from_le_bytes([head[16], head[17]])
    };
    e_type == ET_CORE && matches!(head[7], ELFOSABI_STANDALONE | ELFOSABI_FREEBSD)
}

/// Parses the ELF header, program headers and note names of a core (any class/byte order).
pub fn parse_core(path: &str, b: &[u8]) -> Result<CoreInfo> {
    let bad = |what: String| Error::format(format!("{}: invalid core: {}", path, what));
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err(bad("not an ELF file or ELF header cut short".into()));
    }
    let class64 = match b[4] {
        1 => false,
        2 => true,
        c => return Err(bad(format!("unknown ELF class {}", c))),
    };
    let big_endian = match b[5] {
        1 => false,
        2 => true,
        d => return Err(bad(format!("unknown ELF data encoding {}", d))),
    };
    let r = Rd { b, be: big_endian };
    if class64 && b.len() < 64 {
        return Err(bad("ELF64 header cut short".into()));
    }
    let e_type = r.u16(16).unwrap_or(0);
    if e_type != ET_CORE {
        return Err(bad(format!("e_type is {}, not ET_CORE", e_type)));
    }
    let machine = r.u16(18).unwrap_or(0);
    let (phoff, shoff, phentsize, phnum) = if class64 {
        (r.u64(32), r.u64(40), r.u16(54), r.u16(56))
    } else {
        (
            r.u32(28).map(u64::from),
            r.u32(32).map(u64::from),
            r.u16(42),
            r.u16(44),
        )
    };
    let (phoff, shoff, phentsize, mut phnum) = (
        phoff.unwrap_or(0),
        shoff.unwrap_or(0),
        phentsize.unwrap_or(0) as u64,
        phnum.unwrap_or(0) as u64,
    );
    let min_ent = if class64 { 56 } else { 32 };
    if phentsize < min_ent {
        return Err(bad(format!("e_phentsize {} < {}", phentsize, min_ent)));
    }
    if phnum == PN_XNUM as u64 {
        // The real count is sh_info of section header 0.
        let info_off = shoff.checked_add(if class64 { 44 } else { 28 });
        phnum = info_off
            .and_then(|o| r.u32(o))
            .ok_or_else(|| bad("e_phnum is PN_XNUM but section header 0 is missing".into()))?
            as u64;
    }
    let table_end = phnum
        .checked_mul(phentsize)
        .and_then(|n| n.checked_add(phoff))
        .ok_or_else(|| bad("program header table size overflows".into()))?;
    if table_end > b.len() as u64 {
        return Err(bad(format!(
            "program header table ({} entries at offset {}) extends past the end of the file ({} bytes)",
            phnum,
            phoff,
            b.len()
        )));
    }
    let mut loads = Vec::new();
    let mut note_names = Vec::new();
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        let (ptype, offset, paddr, filesz, memsz) = if class64 {
            (
                r.u32(p),
                r.u64(p + 8),
                r.u64(p + 24),
                r.u64(p + 32),
                r.u64(p + 40),
            )
        } else {
            (
                r.u32(p),
                r.u32(p + 4).map(u64::from),
                r.u32(p + 12).map(u64::from),
                r.u32(p + 16).map(u64::from),
                r.u32(p + 20).map(u64::from),
            )
        };
        let (ptype, offset, paddr, filesz, memsz) = (
            ptype.unwrap_or(0),
            offset.unwrap_or(0),
            paddr.unwrap_or(0),
            filesz.unwrap_or(0),
            memsz.unwrap_or(0),
        );
        let end = offset.checked_add(filesz);
        if (ptype == PT_LOAD || ptype == PT_NOTE) && end.is_none_or(|e| e > b.len() as u64) {
            return Err(Error::format(format!(
                "{}: truncated core: program header {} ({} bytes at offset {}) extends past the end of the file ({} bytes)",
                path,
                i,
                filesz,
                offset,
                b.len()
            )));
        }
        match ptype {
            PT_LOAD => {
                let len = filesz.min(memsz);
                if len > 0 {
                    if paddr.checked_add(len).is_none() {
                        return Err(bad(format!("PT_LOAD {} wraps around the address space", i)));
                    }
                    loads.push(Segment { paddr, len, offset });
                }
            }
            PT_NOTE => note_names.extend(note_names_in(&r, offset, filesz)),
            _ => {}
        }
    }
    loads.sort_by_key(|s| s.paddr);
    for w in loads.windows(2) {
        if w[0].paddr + w[0].len > w[1].paddr {
            return Err(bad(format!(
                "PT_LOAD segments overlap at physical address 0x{:x}",
                w[1].paddr
            )));
        }
    }
    Ok(CoreInfo {
        class64,
        big_endian,
        osabi: b[7],
        machine,
        loads,
        note_names,
    })
}

/// Names of the notes in one PT_NOTE segment (stops at the first malformed note).
fn note_names_in(r: &Rd<'_>, off: u64, len: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut p = off;
    let end = off.saturating_add(len);
    while p.saturating_add(12) <= end && out.len() < 1024 {
        let (Some(namesz), Some(descsz)) = (r.u32(p), r.u32(p + 4)) else {
            break;
        };
        let name_off = p + 12;
        let name_end = name_off.saturating_add(namesz as u64);
        if name_end > end {
            break;
        }
        let name = r.b.get(name_off as usize..name_end as usize).unwrap_or(&[]);
        let name = name.split(|&c| c == 0).next().unwrap_or(&[]);
        out.push(String::from_utf8_lossy(name).into_owned());
        let desc_off = name_off.saturating_add((namesz as u64).div_ceil(4) * 4);
        p = desc_off.saturating_add((descsz as u64).div_ceil(4) * 4);
    }
    out
}

pub struct FreeBsdElfDump {
    path: String,
    map: Mapped,
    pub info: CoreInfo,
    pml4: Box<[u64; 512]>,
    pub kernbase: u64,
    /// Process listing state (kernel types from the execfile).
    procs: crate::proc::freebsd_dead::Slot,
}

pub fn open(
    file: File,
    path: &Path,
    _flags: i32,
    syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    Ok(Box::new(FreeBsdElfDump::open(&file, path, syms)?))
}

impl FreeBsdElfDump {
    pub fn open(file: &File, path: &Path, syms: &mut dyn SymbolLookup) -> Result<Self> {
        let path = path.display().to_string();
        let map = Mapped::map(file, Path::new(&path))?;
        let info = parse_core(&path, map.bytes())?;
        if info.note_names.iter().any(|n| n == "VMCOREINFO") {
            return Err(Error::format(format!(
                "{}: invalid core: it carries a VMCOREINFO note (a Linux vmcore, not a FreeBSD dump)",
                path
            )));
        }
        if info.note_names.iter().any(|n| n == "FreeBSD") {
            return Err(Error::format(format!(
                "{}: invalid core: it carries FreeBSD process notes (a user process core, not a kernel dump)",
                path
            )));
        }
        if !info.class64 || info.machine != EM_X86_64 {
            return Err(Error::unsupported(format!(
                "{}: FreeBSD full dumps are supported for amd64 only (this core: ELF{} machine {})",
                path,
                if info.class64 { 64 } else { 32 },
                info.machine
            )));
        }
        if info.loads.is_empty() {
            return Err(Error::format(format!(
                "{}: invalid core: no PT_LOAD segments (no physical memory)",
                path
            )));
        }
        let mut dump = FreeBsdElfDump {
            path,
            map,
            info,
            pml4: Box::new([0; 512]),
            kernbase: 0,
            procs: Default::default(),
        };
        let kernbase = syms
            .lookup("kernbase")
            .ok_or_else(|| Error::msg("bad namelist - no kernbase"))?;
        let kpml4 = syms
            .lookup("KPML4phys")
            .ok_or_else(|| Error::msg("bad namelist - no KPML4phys"))?;
        // The kernel image is linked so that its data's physical address is va - kernbase.
        let var_pa = kpml4.wrapping_sub(kernbase);
        let pml4_pa = dump.phys_u64(var_pa).ok_or_else(|| {
            Error::format(format!(
                "{}: cannot read KPML4phys (physical address 0x{:x} not in dump)",
                dump.path, var_pa
            ))
        })?;
        for i in 0..512u64 {
            dump.pml4[i as usize] =
                dump.phys_u64((pml4_pa & !PAGE_MASK) + i * 8)
                    .ok_or_else(|| {
                        Error::format(format!(
                    "{}: cannot read KPML4phys: PML4 page at physical address 0x{:x} not in dump",
                    dump.path, pml4_pa
                ))
                    })?;
        }
        dump.kernbase = kernbase;
        Ok(dump)
    }

    /// The segment holding physical `pa`.
    #[inline]
    fn segment(&self, pa: u64) -> Option<&Segment> {
        let i = self.info.loads.partition_point(|s| s.paddr <= pa);
        let s = self.info.loads.get(i.checked_sub(1)?)?;
        (pa - s.paddr < s.len).then_some(s)
    }

    /// File offset of physical `pa` and the bytes available from there in its segment.
    #[inline]
    pub fn phys_offset(&self, pa: u64) -> Option<(u64, u64)> {
        let s = self.segment(pa)?;
        let rel = pa - s.paddr;
        Some((s.offset + rel, s.len - rel))
    }

    fn phys_u64(&self, pa: u64) -> Option<u64> {
        let (off, avail) = self.phys_offset(pa)?;
        if avail < 8 {
            return None;
        }
        Rd {
            b: self.map.bytes(),
            be: self.info.big_endian,
        }
        .u64(off)
    }

    /// File offset of `va` and the bytes valid from there (within its page and its segment).
    #[inline]
    pub fn translate(&self, va: u64) -> Result<(u64, u64)> {
        let (pa, len) = walk(&self.pml4, va, |a| self.phys_u64(a))
            .map_err(|why| Error::bad_address(va, why))?;
        let (off, avail) = self.phys_offset(pa).ok_or_else(|| {
            Error::bad_address(va, format!("physical address 0x{:x} not in dump", pa))
        })?;
        Ok((off, len.min(avail)))
    }

    /// Reads physical memory (for tools and tests that need it).
    pub fn read_phys(&self, pa: u64, buf: &mut [u8]) -> Result<usize> {
        crate::dump::freebsd_minidump_common::read_chunks(self.map.bytes(), pa, buf, |a| {
            let (off, avail) = self.phys_offset(a).ok_or_else(|| {
                Error::bad_address(a, format!("physical address 0x{:x} not in dump", a))
            })?;
            Ok((off, avail.min(PAGE_SIZE - (a & PAGE_MASK))))
        })
    }
}

impl Backend for FreeBsdElfDump {
    crate::dump::freebsd_kernel::freebsd_kernel_stats!(crate::dump::freebsd_kernel::AMD64);
    crate::proc::freebsd_dead::freebsd_dead_procs!(crate::dump::freebsd_kernel::AMD64);

    fn describe(&self) -> String {
        format!("FreeBSD amd64 full dump ({})", self.path)
    }

    fn family(&self) -> KernelFamily {
        KernelFamily::FreeBSD
    }

    fn native(&self) -> bool {
        cfg!(target_arch = "x86_64")
    }

    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        crate::dump::freebsd_minidump_common::read_chunks(self.map.bytes(), va, buf, |a| {
            self.translate(a)
        })
    }
}
