//! Finding the `.BTF` section of a vmlinux ELF file (stripped kernels keep it).

use crate::error::{Error, Result};

fn u16le(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(o..o.checked_add(2)?)?.try_into().ok()?,
    ))
}
fn u32le(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(o..o.checked_add(4)?)?.try_into().ok()?,
    ))
}
fn u64le(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(o..o.checked_add(8)?)?.try_into().ok()?,
    ))
}

/// True if `data` starts like an ELF file.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
}

/// The bytes of the `.BTF` section of a little-endian ELF64 file held in `data`.
pub fn btf_section(data: &[u8]) -> Result<&[u8]> {
    let bad = |why: &str| Error::format(format!("vmlinux ELF: {}", why));
    if !is_elf(data) || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err(bad("not a little-endian ELF64 file"));
    }
    let shoff = u64le(data, 0x28).ok_or_else(|| bad("truncated header"))? as usize;
    let shentsize = u16le(data, 0x3a).ok_or_else(|| bad("truncated header"))? as usize;
    let shnum = u16le(data, 0x3c).ok_or_else(|| bad("truncated header"))? as usize;
    let shstrndx = u16le(data, 0x3e).ok_or_else(|| bad("truncated header"))? as usize;
    if shentsize < 64 {
        return Err(bad("section header entries too small"));
    }
    let sh = |i: usize| -> Option<(u32, u64, u64)> {
        let o = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32le(data, o)?,
            u64le(data, o + 0x18)?,
            u64le(data, o + 0x20)?,
        ))
    };
    let (_, stroff, strsize) = sh(shstrndx).ok_or_else(|| bad("no section name table"))?;
    let names = (stroff as usize)
        .checked_add(strsize as usize)
        .and_then(|e| data.get(stroff as usize..e))
        .ok_or_else(|| bad("section name table out of the file"))?;
    for i in 0..shnum {
        let Some((name, off, size)) = sh(i) else {
            break;
        };
        let n = names.get(name as usize..).unwrap_or(&[]);
        if n.starts_with(b".BTF\0") {
            return (off as usize)
                .checked_add(size as usize)
                .and_then(|e| data.get(off as usize..e))
                .ok_or_else(|| bad(".BTF section runs past the end of the file"));
        }
    }
    Err(bad(
        "no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?)",
    ))
}
