//! ELF vmcores of Linux: /proc/vmcore copies (kdump, `makedumpfile -E`) and QEMU's
//! `dump-guest-memory`. PT_LOAD segments hold physical memory (p_paddr); the PT_NOTE segment
//! holds the VMCOREINFO note and per-CPU notes.
//!
//! FreeBSD ELF full dumps are the "fbsd" helper's: `is_linux_vmcore` tells them apart by the
//! notes, so both probes can share the ELF magic.

use std::path::Path;

use crate::dump::mapped::Mapped;
use crate::dump::physmem::PhysMem;
use crate::error::{Error, Result};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const ET_CORE: u16 = 4;
const EM_X86_64: u16 = 62;
const ELFOSABI_FREEBSD: u8 = 9;
/// FreeBSD's kernel dumper marks full dumps with this OS/ABI.
const ELFOSABI_STANDALONE: u8 = 255;
const PN_XNUM: u16 = 0xffff;

/// One program header (ELF64, little-endian).
#[derive(Clone, Copy, Debug, Default)]
pub struct Phdr {
    pub p_type: u32,
    pub p_flags: u32,
    pub p_offset: u64,
    pub p_vaddr: u64,
    pub p_paddr: u64,
    pub p_filesz: u64,
    pub p_memsz: u64,
}

/// One ELF note: name (without NUL), type and the byte range of its descriptor in the input.
#[derive(Clone, Debug)]
pub struct Note {
    pub name: Vec<u8>,
    pub n_type: u32,
    pub desc_off: usize,
    pub desc_len: usize,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// The parsed header of an ELF64 little-endian core file.
#[derive(Clone, Debug)]
pub struct ElfCore {
    pub osabi: u8,
    pub machine: u16,
    pub phdrs: Vec<Phdr>,
}

/// Parses the ELF header and program headers from `b` (the whole file, or as much as is
/// available: headers that lie beyond `b` are an error).
pub fn parse_header(b: &[u8]) -> Result<ElfCore> {
    if b.len() < 64 || &b[..4] != b"\x7fELF" {
        return Err(Error::format(
            "not an ELF file (bad magic or shorter than an ELF header)",
        ));
    }
    if b[4] != 2 {
        return Err(Error::format(format!(
            "ELF class {} is not supported (only 64-bit ELF vmcores)",
            b[4]
        )));
    }
    if b[5] != 1 {
        return Err(Error::format(format!(
            "ELF data encoding {} is not supported (only little-endian x86_64 vmcores)",
            b[5]
        )));
    }
    let e_type = u16_at(b, 16).unwrap_or(0);
    if e_type != ET_CORE {
        return Err(Error::format(format!(
            "ELF type {} is not a core file (ET_CORE)",
            e_type
        )));
    }
    let machine = u16_at(b, 18).unwrap_or(0);
    let phoff = u64_at(b, 32).unwrap_or(0);
    let shoff = u64_at(b, 40).unwrap_or(0);
    let phentsize = u16_at(b, 54).unwrap_or(0) as usize;
    let mut phnum = u16_at(b, 56).unwrap_or(0) as usize;
    if phnum == PN_XNUM as usize {
        // More than 65534 headers: the real count is in section header 0's sh_info.
        let info = usize::try_from(shoff)
            .ok()
            .and_then(|o| u32_at(b, o.checked_add(44)?))
            .ok_or_else(|| {
                Error::format("ELF: e_phnum is PN_XNUM but section header 0 is missing")
            })?;
        phnum = info as usize;
    }
    if phentsize < 56 {
        return Err(Error::format(format!(
            "ELF: program header size {} is too small",
            phentsize
        )));
    }
    let mut phdrs = Vec::with_capacity(phnum.min(4096));
    for i in 0..phnum {
        let off = usize::try_from(phoff)
            .ok()
            .and_then(|p| p.checked_add(i.checked_mul(phentsize)?))
            .ok_or_else(|| Error::format("ELF: program header offset overflows"))?;
        let get = |o: usize| u64_at(b, off + o);
        let ph = (|| {
            Some(Phdr {
                p_type: u32_at(b, off)?,
                p_flags: u32_at(b, off + 4)?,
                p_offset: get(8)?,
                p_vaddr: get(16)?,
                p_paddr: get(24)?,
                p_filesz: get(32)?,
                p_memsz: get(40)?,
            })
        })()
        .ok_or_else(|| {
            Error::format(format!(
                "ELF: program header {} of {} lies beyond the end of the file",
                i, phnum
            ))
        })?;
        phdrs.push(ph);
    }
    Ok(ElfCore {
        osabi: b[7],
        machine,
        phdrs,
    })
}

/// Parses the notes in `b[off..off+len]` (stops at the first malformed note).
pub fn parse_notes(b: &[u8], off: u64, len: u64) -> Vec<Note> {
    let mut out = Vec::new();
    let (Ok(start), Ok(len)) = (usize::try_from(off), usize::try_from(len)) else {
        return out;
    };
    let end = start.saturating_add(len).min(b.len());
    let mut p = start;
    let align4 = |x: usize| x.checked_add(3).map(|v| v & !3);
    while p.saturating_add(12) <= end {
        let (Some(namesz), Some(descsz), Some(n_type)) =
            (u32_at(b, p), u32_at(b, p + 4), u32_at(b, p + 8))
        else {
            break;
        };
        let name_off = p + 12;
        let Some(desc_off) = align4(name_off.saturating_add(namesz as usize)) else {
            break;
        };
        let Some(next) = desc_off.checked_add(descsz as usize).and_then(align4) else {
            break;
        };
        if desc_off.saturating_add(descsz as usize) > end || name_off + namesz as usize > end {
            break;
        }
        let mut name = b[name_off..name_off + namesz as usize].to_vec();
        while name.last() == Some(&0) {
            name.pop();
        }
        out.push(Note {
            name,
            n_type,
            desc_off,
            desc_len: descsz as usize,
        });
        if next <= p {
            break;
        }
        p = next;
    }
    out
}

/// All notes of all PT_NOTE segments that lie within `b`.
pub fn elf_notes(b: &[u8], core: &ElfCore) -> Vec<Note> {
    core.phdrs
        .iter()
        .filter(|p| p.p_type == PT_NOTE)
        .flat_map(|p| parse_notes(b, p.p_offset, p.p_filesz))
        .collect()
}

/// Probe: an ELF64 core whose notes (as far as `head` reaches) carry a VMCOREINFO note or
/// Linux-style per-CPU notes ("CORE", "QEMU", "LINUX"), and which is not marked FreeBSD
/// (OS/ABI FreeBSD or STANDALONE, as FreeBSD's kernel dumper writes).
/// A big-endian ELF core with a VMCOREINFO string is claimed too, to refuse it clearly.
pub fn is_linux_vmcore(head: &[u8]) -> bool {
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 {
        return false;
    }
    if head[5] == 2 {
        return head.windows(10).any(|w| w == b"VMCOREINFO");
    }
    let Ok(core) = parse_header(head) else {
        return false;
    };
    let notes = elf_notes(head, &core);
    if notes.iter().any(|n| n.name == b"VMCOREINFO") {
        return true;
    }
    core.osabi != ELFOSABI_FREEBSD
        && core.osabi != ELFOSABI_STANDALONE
        && notes
            .iter()
            .any(|n| n.name == b"CORE" || n.name == b"QEMU" || n.name == b"LINUX")
}

/// A PT_LOAD segment of physical memory.
#[derive(Clone, Copy, Debug)]
struct Seg {
    pa: u64,
    filesz: u64,
    memsz: u64,
    offset: u64,
}

/// Physical memory of an ELF vmcore, served from the file mapping.
pub struct ElfMem {
    map: Mapped,
    segs: Vec<Seg>,
    last: usize,
}

/// What an ELF vmcore holds besides memory.
pub struct ElfParts {
    pub mem: ElfMem,
    pub vmcoreinfo: Option<Vec<u8>>,
    pub machine: u16,
    pub nr_cpus: usize,
}

pub fn open(map: Mapped, path: &Path) -> Result<ElfParts> {
    let b = map.bytes();
    let core = parse_header(b).map_err(|e| Error::format(format!("{}: {}", path.display(), e)))?;
    if core.machine != EM_X86_64 {
        return Err(Error::format(format!(
            "{}: ELF machine {} is not supported (only x86_64 Linux vmcores)",
            path.display(),
            core.machine
        )));
    }
    let notes = elf_notes(b, &core);
    let vmcoreinfo = notes
        .iter()
        .find(|n| n.name == b"VMCOREINFO")
        .map(|n| b[n.desc_off..n.desc_off + n.desc_len].to_vec());
    let nr_cpus = notes
        .iter()
        .filter(|n| n.name == b"CORE" && n.n_type == 1)
        .count();
    let flen = b.len() as u64;
    let mut segs = Vec::new();
    for (i, p) in core.phdrs.iter().enumerate() {
        if p.p_type != PT_LOAD || p.p_memsz == 0 {
            continue;
        }
        let end = p.p_offset.checked_add(p.p_filesz);
        if end.is_none_or(|e| e > flen) || p.p_paddr.checked_add(p.p_memsz).is_none() {
            return Err(Error::format(format!(
                "{}: PT_LOAD {} (offset 0x{:x}, size 0x{:x}) lies beyond the end of the file (0x{:x} bytes): truncated dump?",
                path.display(), i, p.p_offset, p.p_filesz, flen
            )));
        }
        segs.push(Seg {
            pa: p.p_paddr,
            filesz: p.p_filesz.min(p.p_memsz),
            memsz: p.p_memsz,
            offset: p.p_offset,
        });
    }
    if segs.is_empty() {
        return Err(Error::format(format!(
            "{}: ELF vmcore has no PT_LOAD segment of memory",
            path.display()
        )));
    }
    segs.sort_by_key(|s| s.pa);
    Ok(ElfParts {
        mem: ElfMem { map, segs, last: 0 },
        vmcoreinfo,
        machine: core.machine,
        nr_cpus,
    })
}

impl ElfMem {
    fn find(&mut self, pa: u64) -> Option<Seg> {
        let hit = |s: &Seg| pa >= s.pa && pa - s.pa < s.memsz;
        if let Some(s) = self.segs.get(self.last) {
            if hit(s) {
                return Some(*s);
            }
        }
        let i = self.segs.partition_point(|s| s.pa <= pa);
        if i > 0 && hit(&self.segs[i - 1]) {
            self.last = i - 1;
            return Some(self.segs[i - 1]);
        }
        // Overlapping segments (kexec adds one for the kernel image inside a RAM range).
        let j = self.segs.iter().position(hit)?;
        self.last = j;
        Some(self.segs[j])
    }

    /// The mapped file, for zero-copy reads.
    pub fn bytes(&self) -> &[u8] {
        self.map.bytes()
    }

    /// File offset of physical address `pa` and the contiguous byte count there.
    pub fn locate(&mut self, pa: u64) -> Option<(usize, usize)> {
        let s = self.find(pa)?;
        let rel = pa - s.pa;
        if rel >= s.filesz {
            return None;
        }
        let off = usize::try_from(s.offset + rel).ok()?;
        let n = usize::try_from(s.filesz - rel).unwrap_or(usize::MAX);
        Some((off, n))
    }
}

impl PhysMem for ElfMem {
    fn format_name(&self) -> String {
        "ELF vmcore".into()
    }

    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let cur = pa.wrapping_add(done as u64);
            let Some(s) = self.find(cur) else {
                if done == 0 {
                    return Err(Error::bad_address(
                        cur,
                        format!("physical address 0x{:x} not in the ELF vmcore", cur),
                    ));
                }
                break;
            };
            let rel = cur - s.pa;
            if rel >= s.filesz {
                if done == 0 {
                    return Err(Error::bad_address(
                        cur,
                        format!(
                            "physical address 0x{:x} was excluded from the ELF vmcore (p_memsz beyond p_filesz)",
                            cur
                        ),
                    ));
                }
                break;
            }
            let n = ((s.filesz - rel).min((buf.len() - done) as u64)) as usize;
            let off = (s.offset + rel) as usize;
            let src = &self.map.bytes()[off..off + n];
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(done)
    }

    fn page_offset(&mut self, pa: u64) -> Option<i64> {
        self.locate(pa).map(|(off, _)| off as i64)
    }

    fn for_each_page(&mut self, page_size: u64, cb: &mut dyn FnMut(u64, i64) -> bool) -> bool {
        let mut next_pa = 0u64;
        for s in self.segs.clone() {
            let first = s.pa.div_ceil(page_size).max(next_pa / page_size);
            let end = (s.pa + s.filesz) / page_size;
            for pfn in first..end {
                let pa = pfn * page_size;
                let off = s.offset + (pa - s.pa);
                if !cb(pa, off as i64) {
                    return false;
                }
                next_pa = pa + page_size;
            }
        }
        true
    }
}
