//! ELF kernel images (Linux vmlinux, FreeBSD kernel): the first SHT_SYMTAB and its string
//! table, 32/64-bit, either byte order, read with pread (never the whole image).
//!
//! n_type follows FreeBSD's nlist(3): SHN_UNDF/SHN_COMMON -> N_UNDF; SHN_ABS -> N_FN for
//! STT_FILE else N_ABS; PROGBITS -> N_DATA if writable else N_TEXT; NOBITS -> N_BSS; other
//! sections -> N_UNDF; `| N_EXT` for global and weak bindings. A duplicate name overwrites.

use std::fs::File;
use std::io;

use goblin::container::{Container, Ctx};
use goblin::elf::header::{self, Header};
use goblin::elf::section_header::{self, SectionHeader};
use goblin::elf::sym;

use super::{scan_cstr, Builder, Entry, Symbol, SymbolIndex, SymbolKind, MAX_NAME_LEN};
use crate::abi::{N_ABS, N_BSS, N_DATA, N_EXT, N_FN, N_TEXT, N_UNDF};
use crate::error::{Error, Result};

/// Positional reads from a file or a byte slice (the latter for tests and fuzzing).
pub trait ReadAt {
    /// Reads as much of `buf` as the source holds from `off`; returns the count.
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize>;
    fn size(&self) -> u64;
}

/// A file read with pread (`ReadAt` over a `File` whose size is known).
pub struct FileSource<'a> {
    pub file: &'a File,
    pub size: u64,
}

impl ReadAt for FileSource<'_> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut n = 0;
        while n < buf.len() {
            match self.file.read_at(&mut buf[n..], off + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<usize> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// Indexes the symbol table of the ELF file `file` (named `source` in messages).
pub fn load(file: &File, source: &str) -> Result<SymbolIndex> {
    let size = file
        .metadata()
        .map_err(|e| Error::sys(source.to_string(), e))?
        .len();
    index(&FileSource { file, size }, source)
}

/// Indexes an ELF image held in memory (tests, fuzzing).
pub fn parse_bytes(data: &[u8], source: &str) -> Result<SymbolIndex> {
    index(data, source)
}

/// Reads exactly `len` bytes at `off`, or says which part of the file is missing.
fn read_exact<R: ReadAt + ?Sized>(
    r: &R,
    source: &str,
    what: &str,
    off: u64,
    len: u64,
) -> Result<Vec<u8>> {
    let end = off.checked_add(len);
    if end.is_none_or(|e| e > r.size()) {
        return Err(Error::format(format!(
            "{}: truncated ELF: {} at offset 0x{:x} ({} bytes) ends beyond the end of the file ({} bytes)",
            source,
            what,
            off,
            len,
            r.size()
        )));
    }
    let mut buf = vec![0u8; len as usize];
    let n = r
        .read_at(&mut buf, off)
        .map_err(|e| Error::sys(format!("{}: reading {}", source, what), e))?;
    if n != buf.len() {
        return Err(Error::format(format!(
            "{}: truncated ELF: {} at offset 0x{:x}: only {} of {} bytes could be read",
            source, what, off, n, len
        )));
    }
    Ok(buf)
}

/// The ELF header and section headers of an image.
pub struct Sections {
    pub header: Header,
    pub ctx: Ctx,
    pub shdrs: Vec<SectionHeader>,
}

/// Parses the ELF header and the section header table.
pub fn read_sections<R: ReadAt + ?Sized>(r: &R, source: &str) -> Result<Sections> {
    let mut head = [0u8; header::header64::SIZEOF_EHDR];
    let n = r
        .read_at(&mut head, 0)
        .map_err(|e| Error::sys(source.to_string(), e))?;
    let need = match head.get(header::EI_CLASS) {
        Some(&header::ELFCLASS32) => header::header32::SIZEOF_EHDR,
        Some(&header::ELFCLASS64) => header::header64::SIZEOF_EHDR,
        Some(&c) if n > header::EI_CLASS => {
            return Err(Error::format(format!(
                "{}: bad ELF header: unknown class {} (neither 32- nor 64-bit)",
                source, c
            )))
        }
        _ => header::SIZEOF_IDENT,
    };
    if n < need {
        return Err(Error::format(format!(
            "{}: truncated ELF: the header needs {} bytes, the file has {}",
            source, need, n
        )));
    }
    let header = goblin::elf::Elf::parse_header(&head[..need])
        .map_err(|e| Error::format(format!("{}: bad ELF header: {}", source, e)))?;
    let container = header
        .container()
        .map_err(|e| Error::format(format!("{}: bad ELF header: {}", source, e)))?;
    let endian = header
        .endianness()
        .map_err(|e| Error::format(format!("{}: bad ELF header: {}", source, e)))?;
    let ctx = Ctx::new(container, endian);
    let entsize = SectionHeader::size(ctx) as u64;
    if header.e_shoff == 0 {
        return Ok(Sections {
            header,
            ctx,
            shdrs: Vec::new(),
        });
    }
    if header.e_shentsize as u64 != entsize {
        return Err(Error::format(format!(
            "{}: bad ELF header: section header size {} (expected {})",
            source, header.e_shentsize, entsize
        )));
    }
    let mut count = header.e_shnum as u64;
    if count == 0 {
        // More than SHN_LORESERVE sections: the count is in section 0's sh_size.
        let first = read_exact(r, source, "section header 0", header.e_shoff, entsize)?;
        let sh0 = SectionHeader::parse_from(&first, 0, 1, ctx)
            .map_err(|e| Error::format(format!("{}: bad section header 0: {}", source, e)))?;
        count = sh0.first().map_or(0, |s| s.sh_size);
        if count == 0 {
            return Ok(Sections {
                header,
                ctx,
                shdrs: Vec::new(),
            });
        }
    }
    let bytes = count.checked_mul(entsize).filter(|&b| b <= r.size());
    let Some(bytes) = bytes else {
        return Err(Error::format(format!(
            "{}: truncated ELF: {} section headers do not fit in the file ({} bytes)",
            source,
            count,
            r.size()
        )));
    };
    let table = read_exact(r, source, "section header table", header.e_shoff, bytes)?;
    let shdrs = SectionHeader::parse_from(&table, 0, count as usize, ctx)
        .map_err(|e| Error::format(format!("{}: bad section header table: {}", source, e)))?;
    Ok(Sections { header, ctx, shdrs })
}

/// Where real Linux symbols come from, for the "stripped" message.
const WHERE_SYMBOLS: &str = "real symbols come from the System.map of the linux-image-<version>-dbg package (or its vmlinux in /usr/lib/debug/boot), from /proc/kallsyms of the running kernel, or from a vmlinux with symbols";

fn index<R: ReadAt + ?Sized + Sync>(r: &R, source: &str) -> Result<SymbolIndex> {
    let Sections { header, ctx, shdrs } = read_sections(r, source)?;
    if header.e_type == header::ET_CORE {
        return Err(Error::format(format!(
            "{}: is an ELF core dump, not a kernel image: give it as the core file, and a vmlinux, System.map or kallsyms copy as the kernel file",
            source
        )));
    }
    let Some(symtab) = shdrs
        .iter()
        .find(|s| s.sh_type == section_header::SHT_SYMTAB)
    else {
        return Err(Error::format(format!(
            "{}: ELF image has no symbol table (.symtab): it is stripped; {}",
            source, WHERE_SYMBOLS
        )));
    };
    let Some(strtab) = shdrs.get(symtab.sh_link as usize) else {
        return Err(Error::format(format!(
            "{}: bad ELF: the symbol table's string table is section {}, but there are only {} sections",
            source,
            symtab.sh_link,
            shdrs.len()
        )));
    };
    if strtab.sh_type != section_header::SHT_STRTAB {
        return Err(Error::format(format!(
            "{}: bad ELF: section {} linked from .symtab is not a string table (type {})",
            source, symtab.sh_link, strtab.sh_type
        )));
    }
    let symsize = sym::Sym::size(ctx.container) as u64;
    if symtab.sh_entsize != 0 && symtab.sh_entsize != symsize {
        return Err(Error::format(format!(
            "{}: bad ELF: symbol entry size {} (expected {})",
            source, symtab.sh_entsize, symsize
        )));
    }
    if strtab.sh_size > u32::MAX as u64 {
        return Err(Error::format(format!(
            "{}: string table too large ({} bytes)",
            source, strtab.sh_size
        )));
    }
    let count = symtab.sh_size / symsize;
    // Checked up front so a bogus size cannot make us allocate beyond the file.
    if symtab
        .sh_offset
        .checked_add(count * symsize)
        .is_none_or(|e| e > r.size())
    {
        return Err(Error::format(format!(
            "{}: truncated ELF: symbol table at offset 0x{:x} ({} bytes) ends beyond the end of the file ({} bytes)",
            source,
            symtab.sh_offset,
            symtab.sh_size,
            r.size()
        )));
    }
    let strings = read_exact(r, source, "string table", strtab.sh_offset, strtab.sh_size)?;
    let is64 = ctx.container == Container::Big;
    let le = ctx.le.is_little();
    // Section kinds by index, so each symbol's type is one table look-up.
    let kinds: Vec<u8> = shdrs
        .iter()
        .map(|s| match s.sh_type {
            section_header::SHT_PROGBITS => {
                if s.sh_flags & section_header::SHF_WRITE as u64 != 0 {
                    N_DATA
                } else {
                    N_TEXT
                }
            }
            section_header::SHT_NOBITS => N_BSS,
            _ => N_UNDF,
        })
        .collect();
    let table = Table {
        offset: symtab.sh_offset,
        symsize,
        is64,
        le,
        strings: &strings,
        kinds: &kinds,
        source,
    };
    // Hashing every name is most of the cost: a kernel-sized table is split between two
    // threads (the caller's and one more) when the machine has a second CPU.
    let two = count >= PARALLEL_MIN_SYMS
        && std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
    let b = if two {
        let half = count / 2;
        let (first, second) = std::thread::scope(|s| {
            let other = s.spawn(|| table.parse(r, half..count));
            (table.parse(r, 0..half), other.join())
        });
        let mut b = first?;
        b.append(
            second
                .map_err(|_| Error::format(format!("{}: symbol table reader failed", source)))??,
        );
        b
    } else {
        table.parse(r, 0..count)?
    };
    // A later duplicate overwrites, as FreeBSD's nlist does.
    let mut idx = b.finish(source, strings, true);
    idx.kind = SymbolKind::Elf;
    Ok(idx)
}

/// Tables smaller than this are read by one thread (a thread costs more than it saves).
const PARALLEL_MIN_SYMS: u64 = 32_768;

/// A validated symbol table and what decoding its entries needs.
struct Table<'a> {
    offset: u64,
    symsize: u64,
    is64: bool,
    le: bool,
    strings: &'a [u8],
    kinds: &'a [u8],
    source: &'a str,
}

impl Table<'_> {
    /// Decodes and hashes the symbols `range`, streamed through a small buffer (a table can be
    /// tens of MB).
    fn parse<R: ReadAt + ?Sized>(&self, r: &R, range: std::ops::Range<u64>) -> Result<Builder> {
        const CHUNK_SYMS: u64 = 4096;
        let mut b = Builder::with_capacity((range.end - range.start) as usize);
        let mut buf = vec![0u8; (CHUNK_SYMS.min(range.end - range.start) * self.symsize) as usize];
        let mut done = range.start;
        while done < range.end {
            let n = (range.end - done).min(CHUNK_SYMS);
            let bytes = (n * self.symsize) as usize;
            let off = self.offset + done * self.symsize;
            let got = r
                .read_at(&mut buf[..bytes], off)
                .map_err(|e| Error::sys(format!("{}: reading the symbol table", self.source), e))?;
            if got != bytes {
                return Err(Error::format(format!(
                    "{}: truncated ELF: symbol table at offset 0x{:x}: only {} of {} bytes could be read",
                    self.source, off, got, bytes
                )));
            }
            for raw in buf[..bytes].chunks_exact(self.symsize as usize) {
                let s = decode(raw, self.is64, self.le);
                add_symbol(&mut b, self.strings, &s, self.kinds);
            }
            done += n;
        }
        Ok(b)
    }
}

/// The fields of one ELF symbol nlist needs.
struct RawSym {
    name: u32,
    info: u8,
    shndx: u16,
    value: u64,
}

#[inline]
fn decode(b: &[u8], is64: bool, le: bool) -> RawSym {
    let u16_at = |o: usize| {
        let a = [b[o], b[o + 1]];
        if le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    if is64 {
        // Elf64_Sym: name u32, info u8, other u8, shndx u16, value u64, size u64.
        let v = [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]];
        RawSym {
            name: u32_at(0),
            info: b[4],
            shndx: u16_at(6),
            value: if le {
                u64::from_le_bytes(v)
            } else {
                u64::from_be_bytes(v)
            },
        }
    } else {
        // Elf32_Sym: name u32, value u32, size u32, info u8, other u8, shndx u16.
        RawSym {
            name: u32_at(0),
            info: b[12],
            shndx: u16_at(14),
            value: u32_at(4) as u64,
        }
    }
}

#[inline]
fn add_symbol(b: &mut Builder, strings: &[u8], s: &RawSym, kinds: &[u8]) {
    let start = s.name as usize;
    // An unterminated name at the end of the table is dropped.
    let Some((len, h, ascii)) = scan_cstr(strings, start) else {
        return;
    };
    if len == 0
        || len > MAX_NAME_LEN
        || (!ascii && std::str::from_utf8(&strings[start..start + len]).is_err())
    {
        return;
    }
    let n_type = match s.shndx {
        x if x as u32 == section_header::SHN_UNDEF => N_UNDF,
        x if x as u32 == section_header::SHN_COMMON => N_UNDF,
        x if x as u32 == section_header::SHN_ABS => {
            if sym::st_type(s.info) == sym::STT_FILE {
                N_FN
            } else {
                N_ABS
            }
        }
        x => kinds.get(x as usize).copied().unwrap_or(N_UNDF),
    };
    let bind = sym::st_bind(s.info);
    let n_type = if bind == sym::STB_GLOBAL || bind == sym::STB_WEAK {
        n_type | N_EXT
    } else {
        n_type
    };
    if let Some(e) = Entry::new(
        start,
        len,
        Symbol {
            value: s.value,
            n_type,
        },
    ) {
        b.push_hashed(e, h);
    }
}
