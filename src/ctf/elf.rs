//! Finding a kernel ELF's `.SUNW_ctf` section (32/64-bit, either byte order) and the string
//! table its external names refer to (the one the symbol table links to, else `.strtab`).

use std::fs::File;
use std::io;

use goblin::elf::section_header::{SHT_NOBITS, SHT_SYMTAB};

use super::{bad, parse_with, MAX_DATA};
use crate::btf::Btf;
use crate::error::{Error, Result};
use crate::symbols::elf::{read_sections, ReadAt};

struct FileAt<'a> {
    file: &'a File,
    size: u64,
}

impl ReadAt for FileAt<'_> {
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

fn from_reader<R: ReadAt + ?Sized>(r: &R, source: &str) -> Result<Btf> {
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
    let name_of = |i: usize| -> &[u8] {
        let n = secs.shdrs[i].sh_name;
        names
            .get(n..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .unwrap_or(&[])
    };
    let ctf = (0..secs.shdrs.len())
        .find(|&i| name_of(i) == b".SUNW_ctf")
        .ok_or_else(|| {
            bad(format!(
                "{}: no .SUNW_ctf section: the kernel was built without CTF (WITH_CTF)",
                source
            ))
        })?;
    let sh = &secs.shdrs[ctf];
    if sh.sh_type == SHT_NOBITS {
        return Err(bad(format!(
            "{}: the .SUNW_ctf section has no contents in the file (SHT_NOBITS)",
            source
        )));
    }
    let blob = read_section(r, source, ".SUNW_ctf", sh.sh_offset, sh.sh_size)?;
    // External names index the string table of the symbol table (ctf_open's CTF_STRTAB_1).
    let strtab = secs
        .shdrs
        .iter()
        .find(|s| s.sh_type == SHT_SYMTAB)
        .and_then(|s| secs.shdrs.get(s.sh_link as usize))
        .or_else(|| {
            (0..secs.shdrs.len())
                .find(|&i| name_of(i) == b".strtab")
                .map(|i| &secs.shdrs[i])
        });
    let strtab = match strtab {
        Some(s) if s.sh_type != SHT_NOBITS => {
            Some(read_section(r, source, ".strtab", s.sh_offset, s.sh_size)?)
        }
        _ => None,
    };
    let ptr = if secs.ctx.container.is_big() { 8 } else { 4 };
    parse_with(&blob, strtab.as_deref(), Some(ptr))
        .map_err(|e| Error::format(format!("{}: {}", source, e)))
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
    from_reader(&FileAt { file, size }, source)
}
