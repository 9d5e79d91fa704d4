//! Where a FreeBSD kernel's type information comes from: the kernel ELF given as execfile.
//!
//! Real FreeBSD kernels carry CTF (a `.SUNW_ctf` section); CTF is converted into the same
//! [`Btf`] type by `crate::ctf` (work in progress elsewhere). Until that converter is
//! wired in here, a `.BTF` section is looked for. Every FreeBSD dump backend loads its types
//! through [`kernel_types`] only.

use crate::btf::Btf;
use crate::error::{Error, Result};

/// The bytes of section `name` of an ELF file (32- or 64-bit, either byte order).
/// `Ok(None)` when the file has no such section.
pub fn elf_section<'a>(data: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let bad = |why: &str| Error::format(format!("kernel ELF: {}", why));
    if !data.starts_with(b"\x7fELF") {
        return Err(bad("not an ELF file"));
    }
    let is64 = match data.get(4) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(bad("unknown ELF class")),
    };
    let be = match data.get(5) {
        Some(1) => false,
        Some(2) => true,
        _ => return Err(bad("unknown ELF byte order")),
    };
    let rd = |off: usize, len: usize| -> Option<u64> {
        let b = data.get(off..off.checked_add(len)?)?;
        let mut v = 0u64;
        if be {
            for &x in b {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        Some(v)
    };
    let trunc = || bad("truncated header");
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (
            rd(0x28, 8).ok_or_else(trunc)?,
            rd(0x3a, 2).ok_or_else(trunc)?,
            rd(0x3c, 2).ok_or_else(trunc)?,
            rd(0x3e, 2).ok_or_else(trunc)?,
        )
    } else {
        (
            rd(0x20, 4).ok_or_else(trunc)?,
            rd(0x2e, 2).ok_or_else(trunc)?,
            rd(0x30, 2).ok_or_else(trunc)?,
            rd(0x32, 2).ok_or_else(trunc)?,
        )
    };
    if shentsize < if is64 { 64 } else { 40 } {
        return Err(bad("section header entries too small"));
    }
    // (name, offset, size) of section i.
    let sh = |i: u64| -> Option<(u64, u64, u64)> {
        let o = usize::try_from(shoff.checked_add(i.checked_mul(shentsize)?)?).ok()?;
        let at = |d: usize| o.checked_add(d);
        if is64 {
            Some((rd(o, 4)?, rd(at(0x18)?, 8)?, rd(at(0x20)?, 8)?))
        } else {
            Some((rd(o, 4)?, rd(at(0x10)?, 4)?, rd(at(0x14)?, 4)?))
        }
    };
    let span = |off: u64, size: u64| -> Option<&'a [u8]> {
        let s = usize::try_from(off).ok()?;
        data.get(s..s.checked_add(usize::try_from(size).ok()?)?)
    };
    if shnum == 0 {
        return Ok(None);
    }
    let (_, stroff, strsize) = sh(shstrndx).ok_or_else(|| bad("no section name table"))?;
    let names = span(stroff, strsize).ok_or_else(|| bad("section name table out of the file"))?;
    for i in 0..shnum {
        let Some((n, off, size)) = sh(i) else {
            break;
        };
        let nm = names.get(n as usize..).unwrap_or(&[]);
        if nm.starts_with(name.as_bytes()) && nm.get(name.len()) == Some(&0) {
            return span(off, size)
                .map(Some)
                .ok_or_else(|| bad(&format!("{} section runs past the end of the file", name)));
        }
    }
    Ok(None)
}

/// The kernel's type information from its ELF image.
pub fn kernel_types(elf: &[u8]) -> Result<Btf> {
    if let Some(btf) = elf_section(elf, ".BTF")? {
        return Btf::parse(btf);
    }
    let ctf = elf_section(elf, ".SUNW_ctf")?.is_some();
    Err(Error::format(if ctf {
        "the kernel's CTF (.SUNW_ctf) cannot be read yet by this library, and it has no .BTF section"
    } else {
        "the kernel ELF has no type information (no .SUNW_ctf CTF section, no .BTF section)"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF file with sections (null, `names`..., .shstrtab), each holding its name's bytes.
    fn elf(is64: bool, be: bool, names: &[&str]) -> Vec<u8> {
        let put = |f: &mut Vec<u8>, off: usize, v: u64, len: usize| {
            let b = v.to_le_bytes();
            for i in 0..len {
                f[off + i] = if be { b[len - 1 - i] } else { b[i] };
            }
        };
        let (ehsz, shsz) = if is64 { (64, 64) } else { (52, 40) };
        let mut shstr = vec![0u8];
        let mut secs = Vec::new(); // (name offset, data offset, size)
        let mut f = vec![0u8; ehsz];
        for n in names.iter().chain([&".shstrtab"]) {
            let no = shstr.len();
            shstr.extend_from_slice(n.as_bytes());
            shstr.push(0);
            secs.push((no, f.len(), n.len()));
            f.extend_from_slice(n.as_bytes());
        }
        // .shstrtab's contents are the name table itself.
        let last = secs.len() - 1;
        secs[last].1 = f.len();
        secs[last].2 = shstr.len();
        f.extend_from_slice(&shstr);
        let shoff = f.len();
        f.resize(shoff + shsz * (secs.len() + 1), 0);
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = if is64 { 2 } else { 1 };
        f[5] = if be { 2 } else { 1 };
        let n = secs.len() as u64 + 1;
        if is64 {
            put(&mut f, 0x28, shoff as u64, 8);
            put(&mut f, 0x3a, shsz as u64, 2);
            put(&mut f, 0x3c, n, 2);
            put(&mut f, 0x3e, n - 1, 2);
        } else {
            put(&mut f, 0x20, shoff as u64, 4);
            put(&mut f, 0x2e, shsz as u64, 2);
            put(&mut f, 0x30, n, 2);
            put(&mut f, 0x32, n - 1, 2);
        }
        for (i, (no, off, size)) in secs.into_iter().enumerate() {
            let o = shoff + shsz * (i + 1);
            put(&mut f, o, no as u64, 4);
            if is64 {
                put(&mut f, o + 0x18, off as u64, 8);
                put(&mut f, o + 0x20, size as u64, 8);
            } else {
                put(&mut f, o + 0x10, off as u64, 4);
                put(&mut f, o + 0x14, size as u64, 4);
            }
        }
        f
    }

    #[test]
    fn sections_of_every_class_and_byte_order() {
        for is64 in [false, true] {
            for be in [false, true] {
                let f = elf(is64, be, &[".text", ".BTF.ext", ".BTF", ".SUNW_ctf"]);
                let what = format!("is64 {} be {}", is64, be);
                assert_eq!(
                    elf_section(&f, ".BTF").unwrap(),
                    Some(&b".BTF"[..]),
                    "{}",
                    what
                );
                assert_eq!(
                    elf_section(&f, ".SUNW_ctf").unwrap(),
                    Some(&b".SUNW_ctf"[..]),
                    "{}",
                    what
                );
                assert_eq!(elf_section(&f, ".BT").unwrap(), None, "{}", what);
                for cut in 0..f.len() {
                    let _ = elf_section(&f[..cut], ".BTF");
                }
            }
        }
        assert!(elf_section(b"not an elf", ".BTF").is_err());
    }

    #[test]
    fn kernels_without_types_say_so() {
        let e = kernel_types(&elf(true, false, &[".text"])).unwrap_err();
        assert!(e.to_string().contains("no type information"), "{}", e);
        let e = kernel_types(&elf(false, false, &[".SUNW_ctf"])).unwrap_err();
        assert!(
            e.to_string().contains("CTF (.SUNW_ctf) cannot be read"),
            "{}",
            e
        );
        // A .BTF section that is not BTF is reported as such.
        let e = kernel_types(&elf(true, false, &[".BTF"])).unwrap_err();
        assert!(e.to_string().contains("BTF"), "{}", e);
    }
}
