//! Decoding the CTF type section (versions 2 and 3) into flat tables.
//!
//! A record is a short header (`ctf_stype`: name, info, size-or-type) that grows by a 64-bit
//! size (`ctf_type`) when the size field holds the "large size" sentinel, followed by
//! kind-specific data. Type ids are record numbers starting at 1. Every read is bounds-checked
//! against the section and every table grows only by records that are present in full.

use super::bad;
use crate::error::Result;

pub const K_UNKNOWN: u8 = 0;
pub const K_INTEGER: u8 = 1;
pub const K_FLOAT: u8 = 2;
pub const K_POINTER: u8 = 3;
pub const K_ARRAY: u8 = 4;
pub const K_FUNCTION: u8 = 5;
pub const K_STRUCT: u8 = 6;
pub const K_UNION: u8 = 7;
pub const K_ENUM: u8 = 8;
pub const K_FORWARD: u8 = 9;
pub const K_TYPEDEF: u8 = 10;
pub const K_VOLATILE: u8 = 11;
pub const K_CONST: u8 = 12;
pub const K_RESTRICT: u8 = 13;

/// Version-dependent layout constants (sys/sys/ctf.h).
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub v3: bool,
    pub be: bool,
}

impl Layout {
    /// Width of a type id in records (2 bytes in v2, 4 in v3).
    fn id_width(self) -> usize {
        if self.v3 {
            4
        } else {
            2
        }
    }
    /// Size of the short record header (`ctf_stype_v2` 8 bytes, `ctf_stype_v3` 12).
    fn stype_len(self) -> usize {
        if self.v3 {
            12
        } else {
            8
        }
    }
    /// The size field's "look at lsizehi/lsizelo instead" value.
    fn lsize_sent(self) -> u32 {
        if self.v3 {
            0xffff_ffff
        } else {
            0xffff
        }
    }
    /// Structs this large or larger use `ctf_lmember` records.
    fn lstruct_thresh(self) -> u64 {
        if self.v3 {
            1 << 29
        } else {
            1 << 13
        }
    }
    /// (kind, root flag, vlen) from an info word.
    fn info(self, info: u32) -> (u8, bool, u32) {
        if self.v3 {
            (
                (info >> 26) as u8,
                info & (1 << 25) != 0,
                info & 0x00ff_ffff,
            )
        } else {
            (
                ((info >> 11) & 0x1f) as u8,
                info & (1 << 10) != 0,
                info & 0x3ff,
            )
        }
    }
}

/// One decoded type record.
#[derive(Clone, Copy, Debug, Default)]
pub struct CtfType {
    pub kind: u8,
    /// Visible by name (CTF lookups ignore non-root types).
    pub root: bool,
    pub vlen: u32,
    /// Raw name reference (bit 31 selects the external string table).
    pub name: u32,
    /// Size in bytes (integers, floats, structs, unions, enums).
    pub size: u64,
    /// Referenced type (pointers, typedefs, qualifiers, a function's return type; a forward's
    /// kind).
    pub ref_type: u32,
    /// Integer/float encoding word.
    pub encoding: u32,
    /// Array: element type, index type, element count.
    pub array: (u32, u32, u32),
    /// Index of the first entry in the members / enumerators / args table.
    pub first: usize,
    /// Offset of the record in the type section, for messages.
    pub offset: usize,
}

/// A struct/union member.
#[derive(Clone, Copy, Debug)]
pub struct CtfMember {
    pub name: u32,
    pub ty: u32,
    pub bit_offset: u64,
}

/// The whole type section, decoded. `types[0]` stands for void.
#[derive(Debug, Default)]
pub struct Decoded {
    pub types: Vec<CtfType>,
    pub members: Vec<CtfMember>,
    pub enums: Vec<(u32, i32)>,
    pub args: Vec<u32>,
}

struct Rd<'a> {
    b: &'a [u8],
    be: bool,
}

impl Rd<'_> {
    fn u16(&self, off: usize) -> Option<u32> {
        let s: [u8; 2] = self.b.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(if self.be {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        } as u32)
    }
    fn u32(&self, off: usize) -> Option<u32> {
        let s: [u8; 4] = self.b.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if self.be {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }
    /// A type id field (16 or 32 bits).
    fn id(&self, off: usize, l: Layout) -> Option<u32> {
        if l.v3 {
            self.u32(off)
        } else {
            self.u16(off)
        }
    }
}

/// Decodes every record of the type section `sec`.
pub fn decode(sec: &[u8], l: Layout) -> Result<Decoded> {
    let r = Rd { b: sec, be: l.be };
    let mut d = Decoded::default();
    // Small records are at least 8 bytes; reserve for that, never more than the section allows.
    d.types.reserve(sec.len() / 16 + 1);
    d.types.push(CtfType::default());
    let w = l.id_width();
    let mut off = 0usize;
    while off < sec.len() {
        let id = d.types.len();
        let trunc = |what: &str| {
            bad(format!(
                "type id {} (offset {} of the {}-byte type section): {} runs past the end of the section",
                id,
                off,
                sec.len(),
                what
            ))
        };
        let name = r.u32(off).ok_or_else(|| trunc("the record header"))?;
        let (info, st) = if l.v3 {
            (r.u32(off + 4), r.u32(off + 8))
        } else {
            (r.u16(off + 4), r.u16(off + 6))
        };
        let (info, st) = info.zip(st).ok_or_else(|| trunc("the record header"))?;
        let (kind, root, vlen) = l.info(info);
        let mut p = off + l.stype_len();
        let size = if st == l.lsize_sent() {
            let hi = r.u32(p).ok_or_else(|| trunc("the large size"))?;
            let lo = r.u32(p + 4).ok_or_else(|| trunc("the large size"))?;
            p += 8;
            (hi as u64) << 32 | lo as u64
        } else {
            st as u64
        };
        let mut t = CtfType {
            kind,
            root,
            vlen,
            name,
            size,
            ref_type: st,
            offset: off,
            ..CtfType::default()
        };
        let n = vlen as usize;
        // Bytes of kind-specific data, checked before any table grows.
        let need = |each: usize| -> Result<usize> {
            let len = n
                .checked_mul(each)
                .ok_or_else(|| trunc("the member list"))?;
            match p.checked_add(len) {
                Some(e) if e <= sec.len() => Ok(len),
                _ => Err(trunc(&format!("its list of {} entries", n))),
            }
        };
        match kind {
            K_INTEGER | K_FLOAT => {
                t.encoding = r.u32(p).ok_or_else(|| trunc("the encoding word"))?;
                p += 4;
            }
            K_ARRAY => {
                let c = r.id(p, l);
                let i = r.id(p + w, l);
                let e = r.u32(p + 2 * w);
                t.array = match (c, i, e) {
                    (Some(c), Some(i), Some(e)) => (c, i, e),
                    _ => return Err(trunc("the array description")),
                };
                p += 2 * w + 4;
            }
            K_FUNCTION => {
                // v2 pads an odd number of 16-bit argument ids to a multiple of four bytes.
                let slots = if l.v3 { n } else { n + (n & 1) };
                let len = {
                    let len = slots
                        .checked_mul(w)
                        .ok_or_else(|| trunc("the argument list"))?;
                    match p.checked_add(len) {
                        Some(e) if e <= sec.len() => len,
                        _ => return Err(trunc(&format!("its list of {} arguments", n))),
                    }
                };
                t.first = d.args.len();
                for i in 0..n {
                    d.args.push(r.id(p + i * w, l).unwrap_or(0));
                }
                p += len;
            }
            K_STRUCT | K_UNION => {
                let large = size >= l.lstruct_thresh();
                let each = match (large, l.v3) {
                    (false, false) => 8,
                    (false, true) => 12,
                    (true, _) => 16,
                };
                let len = need(each)?;
                t.first = d.members.len();
                for i in 0..n {
                    let m = p + i * each;
                    let name = r.u32(m).unwrap_or(0);
                    let ty = r.id(m + 4, l).unwrap_or(0);
                    let bit_offset = match (large, l.v3) {
                        (false, false) => r.u16(m + 6).unwrap_or(0) as u64,
                        (false, true) => r.u32(m + 8).unwrap_or(0) as u64,
                        // ctf_lmember: v2 has a 16-bit pad after the type, v3 does not.
                        (true, _) => {
                            let hi = r.u32(m + 8).unwrap_or(0) as u64;
                            let lo = r.u32(m + 12).unwrap_or(0) as u64;
                            hi << 32 | lo
                        }
                    };
                    d.members.push(CtfMember {
                        name,
                        ty,
                        bit_offset,
                    });
                }
                p += len;
            }
            K_ENUM => {
                let len = need(8)?;
                t.first = d.enums.len();
                for i in 0..n {
                    let e = p + i * 8;
                    d.enums
                        .push((r.u32(e).unwrap_or(0), r.u32(e + 4).unwrap_or(0) as i32));
                }
                p += len;
            }
            K_UNKNOWN | K_POINTER | K_FORWARD | K_TYPEDEF | K_VOLATILE | K_CONST | K_RESTRICT => {}
            _ => {
                return Err(bad(format!(
                    "type id {} (offset {} of the type section) has unknown kind {}",
                    id, off, kind
                )))
            }
        }
        d.types.push(t);
        off = p;
    }
    Ok(d)
}
