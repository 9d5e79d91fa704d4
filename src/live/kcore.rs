//! Kernel memory of the running Linux system: /proc/kcore (an ELF core whose PT_LOAD segments
//! map kernel virtual addresses to file offsets) and the KASLR displacement from kallsyms.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use goblin::container::{Container, Ctx};
use goblin::elf::header;
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};

use crate::error::{Error, Result};
use crate::symbols::{sysmap, SymbolIndex, SymbolKind};

pub const PROC_KCORE: &str = "/proc/kcore";

/// Link-time address of `_text` of an x86_64 Linux kernel (__START_KERNEL_map + 16 MiB).
pub const X86_64_LINK_TEXT: u64 = 0xffff_ffff_8100_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub len: u64,
    pub offset: u64,
}

/// An opened /proc/kcore with its segment table (read once: pread per access afterwards).
pub struct Kcore {
    file: File,
    path: String,
    /// PT_LOAD segments sorted by virtual address.
    segs: Vec<Segment>,
}

impl Kcore {
    pub fn open(path: &Path) -> Result<Kcore> {
        let shown = path.display().to_string();
        let file = File::open(path)
            .map_err(|e| Error::sys(format!("cannot read kernel memory: {}", shown), e))?;
        Kcore::from_file(file, &shown)
    }

    pub fn from_file(file: File, path: &str) -> Result<Kcore> {
        let mut head = [0u8; header::header64::SIZEOF_EHDR];
        let n = pread_full(&file, &mut head, 0)
            .map_err(|e| Error::sys(format!("cannot read kernel memory: {}", path), e))?;
        if n < head.len() || &head[..4] != b"\x7fELF" {
            return Err(Error::format(format!(
                "{}: not an ELF core (kernel memory image) ({} header bytes)",
                path, n
            )));
        }
        let h = goblin::elf::Elf::parse_header(&head)
            .map_err(|e| Error::format(format!("{}: bad ELF header: {}", path, e)))?;
        let container = h
            .container()
            .map_err(|e| Error::format(format!("{}: bad ELF header: {}", path, e)))?;
        let endian = h
            .endianness()
            .map_err(|e| Error::format(format!("{}: bad ELF header: {}", path, e)))?;
        let ctx = Ctx::new(container, endian);
        if container != Container::Big || h.e_type != header::ET_CORE {
            return Err(Error::format(format!(
                "{}: not a 64-bit ELF core (type {}, class {:?})",
                path, h.e_type, container
            )));
        }
        let entsize = ProgramHeader::size(ctx);
        if h.e_phentsize as usize != entsize || h.e_phnum == 0 {
            return Err(Error::format(format!(
                "{}: bad program header table ({} entries of {} bytes)",
                path, h.e_phnum, h.e_phentsize
            )));
        }
        let mut table = vec![0u8; h.e_phnum as usize * entsize];
        let n = pread_full(&file, &mut table, h.e_phoff)
            .map_err(|e| Error::sys(format!("{}: program headers", path), e))?;
        if n != table.len() {
            return Err(Error::format(format!(
                "{}: truncated program header table ({} of {} bytes)",
                path,
                n,
                table.len()
            )));
        }
        let phdrs = ProgramHeader::parse(&table, 0, h.e_phnum as usize, ctx)
            .map_err(|e| Error::format(format!("{}: bad program headers: {}", path, e)))?;
        let mut segs: Vec<Segment> = phdrs
            .iter()
            .filter(|p| p.p_type == PT_LOAD && p.p_filesz > 0)
            .map(|p| Segment {
                vaddr: p.p_vaddr,
                // A segment ends where its virtual range or the address space ends.
                len: p.p_filesz.min(u64::MAX - p.p_vaddr),
                offset: p.p_offset,
            })
            .collect();
        segs.sort_by_key(|s| s.vaddr);
        Ok(Kcore {
            file,
            path: path.to_string(),
            segs,
        })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segs
    }

    fn segment_of(&self, va: u64) -> Option<&Segment> {
        let i = self.segs.partition_point(|s| s.vaddr <= va);
        let hit = |s: &&Segment| va >= s.vaddr && va - s.vaddr < s.len;
        // The nearest lower segment usually holds it; overlapping ones are rare, scan them.
        self.segs[..i].iter().rev().find(hit)
    }

    /// Reads at `va`; a short count when the mapped range ends (or the kernel refuses a page)
    /// after the first byte; an error naming the address when the first byte is unreadable.
    pub fn read(&self, va: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let Some(seg) = self.segment_of(cur) else {
                if done == 0 {
                    return Err(Error::bad_address(
                        va,
                        format!("not mapped in {}", self.path),
                    ));
                }
                break;
            };
            let in_seg = cur - seg.vaddr;
            let n = ((seg.len - in_seg).min((buf.len() - done) as u64)) as usize;
            let Some(off) = seg.offset.checked_add(in_seg) else {
                break;
            };
            match pread_full(&self.file, &mut buf[done..done + n], off) {
                Ok(0) => {
                    if done == 0 {
                        return Err(Error::bad_address(
                            va,
                            format!("{}: no data at file offset 0x{:x}", self.path, off),
                        ));
                    }
                    break;
                }
                Ok(k) => {
                    done += k;
                    if k < n {
                        break;
                    }
                }
                Err(e) => {
                    if done == 0 {
                        return Err(Error::bad_address(
                            va,
                            format!(
                                "{}: {}",
                                self.path,
                                crate::error::strerror(e.raw_os_error().unwrap_or(libc::EIO))
                            ),
                        ));
                    }
                    break;
                }
            }
        }
        Ok(done)
    }
}

fn pread_full(file: &File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if n > 0 => {
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The live backend's kernel-memory state: /proc/kcore opened on first read, and the
/// kallsyms `_text` address looked up once.
#[derive(Default)]
pub struct KernelMemory {
    kcore: Option<Kcore>,
    /// None: not looked up yet; Some(None): hidden or absent.
    text: Option<Option<u64>>,
}

impl KernelMemory {
    pub fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        if self.kcore.is_none() {
            self.kcore = Some(Kcore::open(Path::new(PROC_KCORE))?);
        }
        match &self.kcore {
            Some(k) => k.read(va, buf),
            None => Ok(0),
        }
    }

    /// Run-time `_text` of the running kernel, if kallsyms shows it.
    pub fn running_text(&mut self) -> Option<u64> {
        if self.text.is_none() {
            self.text = Some(
                sysmap::kallsyms_value(sysmap::PROC_KALLSYMS, "_text")
                    .ok()
                    .flatten(),
            );
        }
        self.text.flatten()
    }

    /// KASLR displacement: kallsyms `_text` minus its link-time address (x86_64); 0 when
    /// unknown (addresses hidden) or on other architectures.
    pub fn kerndisp(&mut self) -> i64 {
        if !cfg!(target_arch = "x86_64") {
            return 0;
        }
        self.running_text()
            .map_or(0, |t| t.wrapping_sub(X86_64_LINK_TEXT) as i64)
    }

    /// Displacement for a symbol file given as execfile: a kallsyms copy already holds
    /// run-time addresses (0); a System.map or ELF image holds link-time ones, shifted by the
    /// running `_text` minus the file's `_text` (0 when either is unknown).
    pub fn displacement_for(&mut self, index: &SymbolIndex) -> i64 {
        if index.kind == SymbolKind::Kallsyms {
            return 0;
        }
        let file_text = index
            .get_raw("_text")
            .or_else(|| index.get_raw("_stext"))
            .map(|s| s.value);
        match (file_text, self.running_text()) {
            (Some(f), Some(r)) => r.wrapping_sub(f) as i64,
            _ => 0,
        }
    }
}
