//! Finding a kernel ELF's `.SUNW_ctf` section (32/64-bit, either byte order) and the string
//! table its external names refer to (the one the symbol table links to, else `.strtab`).

use std::fs::File;

use goblin::elf::section_header::{SectionHeader, SHT_NOBITS, SHT_SYMTAB};

use super::{bad, parse_with, MAX_DATA};
use crate::btf::Btf;
use crate::error::{Error, Result};
use crate::symbols::elf::{read_sections, FileSource, ReadAt};

/// Reads section `what` (offset, size) whole, refusing sizes past the file or MAX_DATA.
fn read_section<R: ReadAt + ?Sized>(
    r: &R,
    source: &str,
    what: &str,
    off: u64,
    size: u64,
) -> Result<Vec<u8>> {
    if size > MAX_DATA as u64 {
        return Err(bad(format!(
            "{}: section {} is {} bytes, more than the {} MiB accepted",
            source,
            what,
            size,
            MAX_DATA >> 20
        )));
    }
    if off.checked_add(size).is_none_or(|e| e > r.size()) {
        return Err(bad(format!(
            "{}: section {} (offset 0x{:x}, {} bytes) runs past the end of the {}-byte file",
            source,
            what,
            off,
            size,
            r.size()
        )));
    }
    let mut buf = vec![0u8; size as usize];
    let n = r
        .read_at(&mut buf, off)
        .map_err(|e| Error::sys(format!("{}: reading {}", source, what), e))?;
    if n != buf.len() {
        return Err(bad(format!(
            "{}: section {}: only {} of {} bytes could be read",
            source, what, n, size
        )));
    }
    Ok(buf)
}

/// An ELF image's section headers and their names, for finding sections by name.
struct Named {
    secs: crate::symbols::elf::Sections,
    names: Vec<u8>,
}

impl Named {
    fn read<R: ReadAt + ?Sized>(r: &R, source: &str) -> Result<Named> {
        let secs = read_sections(r, source)?;
        let shstr = secs
            .shdrs
            .get(secs.header.e_shstrndx as usize)
            .ok_or_else(|| {
                bad(format!(
                    "{}: no section name table (e_shstrndx {} of {} sections)",
                    source,
                    secs.header.e_shstrndx,
                    secs.shdrs.len()
                ))
            })?;
        let names = read_section(r, source, "section names", shstr.sh_offset, shstr.sh_size)?;
        Ok(Named { secs, names })
    }

    fn name_of(&self, i: usize) -> &[u8] {
        let n = self.secs.shdrs[i].sh_name;
        self.names
            .get(n..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .unwrap_or(&[])
    }

    fn find(&self, name: &[u8]) -> Option<&SectionHeader> {
        (0..self.secs.shdrs.len())
            .find(|&i| self.name_of(i) == name)
            .map(|i| &self.secs.shdrs[i])
    }

    /// The contents of section `name`; None when the image has no such section.
    fn contents<R: ReadAt + ?Sized>(
        &self,
        r: &R,
        source: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>> {
        let Some(sh) = self.find(name.as_bytes()) else {
            return Ok(None);
        };
        if sh.sh_type == SHT_NOBITS {
            return Err(bad(format!(
                "{}: the {} section has no contents in the file (SHT_NOBITS)",
                source, name
            )));
        }
        read_section(r, source, name, sh.sh_offset, sh.sh_size).map(Some)
    }
}

/// The types of the `.SUNW_ctf` section; None when the image has none.
fn ctf_of<R: ReadAt + ?Sized>(r: &R, source: &str, elf: &Named) -> Result<Option<Btf>> {
    let Some(blob) = elf.contents(r, source, ".SUNW_ctf")? else {
        return Ok(None);
    };
    // External names index the string table of the symbol table (ctf_open's CTF_STRTAB_1).
    let strtab = elf
        .secs
        .shdrs
        .iter()
        .find(|s| s.sh_type == SHT_SYMTAB)
        .and_then(|s| elf.secs.shdrs.get(s.sh_link as usize))
        .or_else(|| elf.find(b".strtab"));
    let strtab = match strtab {
        Some(s) if s.sh_type != SHT_NOBITS => {
            Some(read_section(r, source, ".strtab", s.sh_offset, s.sh_size)?)
        }
        _ => None,
    };
    let ptr = if elf.secs.ctx.container.is_big() {
        8
    } else {
        4
    };
    parse_with(&blob, strtab.as_deref(), Some(ptr))
        .map(Some)
        .map_err(|e| Error::format(format!("{}: {}", source, e)))
}

fn from_reader<R: ReadAt + ?Sized>(r: &R, source: &str) -> Result<Btf> {
    ctf_of(r, source, &Named::read(r, source)?)?.ok_or_else(|| {
        bad(format!(
            "{}: no .SUNW_ctf section: the kernel was built without CTF (WITH_CTF)",
            source
        ))
    })
}

/// A kernel image's type information: its CTF (`.SUNW_ctf`, what FreeBSD kernels built
/// WITH_CTF carry), else a `.BTF` section; None when it has neither.
pub fn kernel_types_of_file(file: &File, source: &str) -> Result<Option<Btf>> {
    let size = file
        .metadata()
        .map_err(|e| Error::sys(source.to_string(), e))?
        .len();
    let r = FileSource { file, size };
    let elf = Named::read(&r, source)?;
    if let Some(btf) = ctf_of(&r, source, &elf)? {
        return Ok(Some(btf));
    }
    match elf.contents(&r, source, ".BTF")? {
        Some(blob) => Btf::parse(&blob)
            .map(Some)
            .map_err(|e| Error::format(format!("{}: {}", source, e))),
        None => Ok(None),
    }
}

/// The kernel's types from the `.SUNW_ctf` section of an ELF image held in memory.
pub fn from_elf(elf: &[u8]) -> Result<Btf> {
    from_reader(elf, "kernel ELF")
}

/// The kernel's types from the `.SUNW_ctf` section of the ELF file `file` (named `source` in
/// messages), reading only the sections needed.
pub fn from_file(file: &File, source: &str) -> Result<Btf> {
    let size = file
        .metadata()
        .map_err(|e| Error::sys(source.to_string(), e))?
        .len();
    from_reader(&FileSource { file, size }, source)
}
