//! A small BTF (BPF Type Format) reader: enough of the kernel's own type information to find
//! struct member offsets by name, so the dead-kernel process walker never hard-codes a layout.
//!
//! Format (Linux Documentation/bpf/btf.rst): a header (magic 0xeB9F, version 1, flags, hdr_len,
//! type_off/len, str_off/len relative to the end of the header), a type section of variable-length
//! records (id 1 is the first; 0 is void) and a string section. Every read is bounds-checked;
//! a corrupt blob gives an error naming the offset, never a panic.
//!
//! FreeBSD kernels carry CTF instead: `crate::ctf` converts it into this same `Btf`.

pub mod elf;

use std::collections::HashMap;

use crate::error::{Error, Result};

const BTF_MAGIC: u16 = 0xeb9f;

// Type kinds.
pub const KIND_INT: u8 = 1;
pub const KIND_PTR: u8 = 2;
pub const KIND_ARRAY: u8 = 3;
pub const KIND_STRUCT: u8 = 4;
pub const KIND_UNION: u8 = 5;
pub const KIND_ENUM: u8 = 6;
pub const KIND_FWD: u8 = 7;
pub const KIND_TYPEDEF: u8 = 8;
pub const KIND_VOLATILE: u8 = 9;
pub const KIND_CONST: u8 = 10;
pub const KIND_RESTRICT: u8 = 11;
pub const KIND_FUNC: u8 = 12;
pub const KIND_FUNC_PROTO: u8 = 13;
pub const KIND_VAR: u8 = 14;
pub const KIND_DATASEC: u8 = 15;
pub const KIND_FLOAT: u8 = 16;
pub const KIND_DECL_TAG: u8 = 17;
pub const KIND_TYPE_TAG: u8 = 18;
pub const KIND_ENUM64: u8 = 19;

/// One type record, decoded just enough to navigate.
#[derive(Clone, Copy, Debug)]
struct TypeRec {
    kind: u8,
    kflag: bool,
    vlen: u16,
    name_off: u32,
    /// size (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or referenced type id (PTR, TYPEDEF, ...).
    size_type: u32,
    /// Offset of the kind-specific data in the type section.
    extra: u32,
}

/// A struct/union member as found by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// Offset from the start of the outermost struct searched, in bits.
    pub bit_offset: u64,
    /// Bitfield width in bits, 0 for an ordinary member.
    pub bitfield_size: u32,
    /// The member's type id (not resolved through typedefs).
    pub type_id: u32,
}

impl Member {
    /// Byte offset of an ordinary (non-bitfield) member.
    pub fn offset(&self) -> u64 {
        self.bit_offset / 8
    }
}

/// A parsed BTF blob.
pub struct Btf {
    types_sec: Vec<u8>,
    strings: Vec<u8>,
    big_endian: bool,
    /// Index = type id; entry 0 stands for void.
    types: Vec<TypeRec>,
    /// Named structs and unions: name -> type id (first complete definition wins).
    aggregates: HashMap<Box<str>, u32>,
    /// Size of a pointer in bytes (8 unless a converter for a 32-bit kernel says otherwise).
    ptr_size: u64,
    /// Which format the types came from, for messages ("BTF", or "CTF" when converted).
    origin: &'static str,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Btf({} types)", self.types.len().saturating_sub(1))
    }
}

fn bad(what: impl Into<String>) -> Error {
    Error::format(format!("BTF: {}", what.into()))
}

fn rd_u16(b: &[u8], off: usize, be: bool) -> Option<u16> {
    let s: [u8; 2] = b.get(off..off.checked_add(2)?)?.try_into().ok()?;
    Some(if be {
        u16::from_be_bytes(s)
    } else {
        u16::from_le_bytes(s)
    })
}

fn rd_u32(b: &[u8], off: usize, be: bool) -> Option<u32> {
    let s: [u8; 4] = b.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(if be {
        u32::from_be_bytes(s)
    } else {
        u32::from_le_bytes(s)
    })
}

/// Bytes of kind-specific data following a type record's 12-byte common part.
fn extra_len(kind: u8, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
        KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
        _ => return None,
    })
}

/// Recursion limit for anonymous-member searches and typedef chains (a corrupt blob may loop).
const MAX_DEPTH: usize = 32;

impl Btf {
    /// Parses a raw BTF blob (e.g. /sys/kernel/btf/vmlinux, a vmlinux .BTF section, or the
    /// bytes between __start_BTF and __stop_BTF of a dump).
    pub fn parse(data: &[u8]) -> Result<Btf> {
        let magic_le = rd_u16(data, 0, false).ok_or_else(|| bad("blob too short for a header"))?;
        let be = if magic_le == BTF_MAGIC {
            false
        } else if magic_le.swap_bytes() == BTF_MAGIC {
            true
        } else {
            return Err(bad(format!(
                "bad magic 0x{:04x} (expected 0xeb9f): not BTF data",
                magic_le
            )));
        };
        let version = *data
            .get(2)
            .ok_or_else(|| bad("blob too short for a header"))?;
        if version != 1 {
            return Err(bad(format!("unsupported version {}", version)));
        }
        let field = |off: usize| rd_u32(data, off, be).ok_or_else(|| bad("truncated header"));
        let hdr_len = field(4)? as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(bad(format!(
                "header length {} invalid for a {}-byte blob",
                hdr_len,
                data.len()
            )));
        }
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let section = |off: usize, len: usize, name: &str| -> Result<&[u8]> {
            hdr_len
                .checked_add(off)
                .and_then(|s| Some((s, s.checked_add(len)?)))
                .and_then(|(s, e)| data.get(s..e))
                .ok_or_else(|| {
                    bad(format!(
                        "{} section (offset {}, length {}) runs past the {}-byte blob",
                        name,
                        off,
                        len,
                        data.len()
                    ))
                })
        };
        let types_sec = section(type_off, type_len, "type")?;
        let strings = section(str_off, str_len, "string")?;
        if !strings.is_empty() && strings[0] != 0 {
            return Err(bad("string section does not start with an empty string"));
        }

        // Roughly 24 bytes per record in vmlinux; reserve to avoid regrowth.
        let mut types = Vec::with_capacity(types_sec.len() / 24 + 1);
        types.push(TypeRec {
            kind: 0,
            kflag: false,
            vlen: 0,
            name_off: 0,
            size_type: 0,
            extra: 0,
        });
        let mut off = 0usize;
        while off < types_sec.len() {
            let trunc = || bad(format!("type record at offset {} is truncated", off));
            let name_off = rd_u32(types_sec, off, be).ok_or_else(trunc)?;
            let info = rd_u32(types_sec, off + 4, be).ok_or_else(trunc)?;
            let size_type = rd_u32(types_sec, off + 8, be).ok_or_else(trunc)?;
            let kind = ((info >> 24) & 0x1f) as u8;
            let vlen = (info & 0xffff) as u16;
            let extra = extra_len(kind, vlen as usize).ok_or_else(|| {
                bad(format!(
                    "unknown type kind {} at offset {} (type id {})",
                    kind,
                    off,
                    types.len()
                ))
            })?;
            let end = off
                .checked_add(12 + extra)
                .filter(|&e| e <= types_sec.len())
                .ok_or_else(trunc)?;
            types.push(TypeRec {
                kind,
                kflag: info & 0x8000_0000 != 0,
                vlen,
                name_off,
                size_type,
                extra: (off + 12) as u32,
            });
            off = end;
        }
        if types.len() > u32::MAX as usize {
            return Err(bad("too many types"));
        }

        let mut btf = Btf {
            types_sec: types_sec.to_vec(),
            strings: strings.to_vec(),
            big_endian: be,
            types,
            aggregates: HashMap::new(),
            ptr_size: 8,
            origin: "BTF",
        };
        let mut aggregates: HashMap<Box<str>, u32> = HashMap::with_capacity(btf.types.len() / 8);
        for (id, t) in btf.types.iter().enumerate().skip(1) {
            if (t.kind == KIND_STRUCT || t.kind == KIND_UNION) && t.name_off != 0 {
                if let Some(name) = btf.str_at(t.name_off) {
                    if !name.is_empty() {
                        aggregates.entry(name.into()).or_insert(id as u32);
                    }
                }
            }
        }
        btf.aggregates = aggregates;
        Ok(btf)
    }

    /// Sets the pointer size (4 for a 32-bit kernel) and the format named in messages: for
    /// converters such as `crate::ctf` that build a `Btf` from another format.
    pub(crate) fn set_source(&mut self, origin: &'static str, ptr_size: u64) {
        self.origin = origin;
        self.ptr_size = ptr_size;
    }

    /// Makes `name` find `id` (overriding the first-definition rule), for formats whose
    /// lookup prefers a particular definition (CTF's "root" types).
    pub(crate) fn prefer_aggregate(&mut self, name: &str, id: u32) {
        if matches!(self.kind(id), Some(KIND_STRUCT) | Some(KIND_UNION)) {
            self.aggregates.insert(name.into(), id);
        }
    }

    /// Size of a pointer in bytes.
    pub fn pointer_size(&self) -> u64 {
        self.ptr_size
    }

    /// Number of types (not counting void).
    pub fn type_count(&self) -> usize {
        self.types.len() - 1
    }

    fn str_at(&self, off: u32) -> Option<&str> {
        let rest = self.strings.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    fn rec(&self, id: u32) -> Option<&TypeRec> {
        self.types.get(id as usize).filter(|_| id != 0)
    }

    fn u32_at(&self, off: usize) -> Option<u32> {
        rd_u32(&self.types_sec, off, self.big_endian)
    }

    /// Kind of a type id (None for void or an id out of range).
    pub fn kind(&self, id: u32) -> Option<u8> {
        self.rec(id).map(|t| t.kind)
    }

    /// Name of a type (empty for anonymous types).
    pub fn name(&self, id: u32) -> Option<&str> {
        self.rec(id).and_then(|t| self.str_at(t.name_off))
    }

    /// The struct or union called `name`.
    pub fn find_aggregate(&self, name: &str) -> Option<u32> {
        self.aggregates.get(name).copied()
    }

    /// Follows typedef / const / volatile / restrict / type-tag links to the underlying type.
    pub fn resolve(&self, mut id: u32) -> Option<u32> {
        for _ in 0..MAX_DEPTH {
            let t = self.rec(id)?;
            match t.kind {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = t.size_type
                }
                _ => return Some(id),
            }
        }
        None
    }

    /// Size in bytes of a type (pointers are `pointer_size()` bytes, 8 for BTF).
    pub fn size_of(&self, id: u32) -> Option<u64> {
        let id = self.resolve(id)?;
        let t = self.rec(id)?;
        match t.kind {
            KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT
            | KIND_DATASEC => Some(t.size_type as u64),
            KIND_PTR => Some(self.ptr_size),
            KIND_ARRAY => {
                let (elem, n) = self.array(id)?;
                if elem == id {
                    return None;
                }
                // An array of arrays recurses; depth is bounded by resolve's chain limit.
                self.size_of_depth(elem, 1)?.checked_mul(n as u64)
            }
            _ => None,
        }
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Option<u64> {
        if depth > MAX_DEPTH {
            return None;
        }
        let id = self.resolve(id)?;
        let t = self.rec(id)?;
        if t.kind == KIND_ARRAY {
            let (elem, n) = self.array(id)?;
            return self.size_of_depth(elem, depth + 1)?.checked_mul(n as u64);
        }
        self.size_of(id)
    }

    /// Element type and element count of an array type (after resolving typedefs).
    pub fn array(&self, id: u32) -> Option<(u32, u32)> {
        let id = self.resolve(id)?;
        let t = self.rec(id)?;
        if t.kind != KIND_ARRAY {
            return None;
        }
        let e = t.extra as usize;
        Some((self.u32_at(e)?, self.u32_at(e + 8)?))
    }

    /// Target type of a pointer (after resolving typedefs), None if `id` is not a pointer.
    pub fn pointee(&self, id: u32) -> Option<u32> {
        let id = self.resolve(id)?;
        let t = self.rec(id)?;
        (t.kind == KIND_PTR).then_some(t.size_type)
    }

    /// Members of a struct or union: (name, type id, bit offset, bitfield size).
    fn members(&self, id: u32) -> impl Iterator<Item = (u32, u32, u64, u32)> + '_ {
        let t = self.rec(id).copied();
        let n = match t {
            Some(t) if t.kind == KIND_STRUCT || t.kind == KIND_UNION => t.vlen as usize,
            _ => 0,
        };
        (0..n).filter_map(move |i| {
            let t = t?;
            let off = t.extra as usize + i * 12;
            let name = self.u32_at(off)?;
            let ty = self.u32_at(off + 4)?;
            let raw = self.u32_at(off + 8)?;
            let (bits, size) = if t.kflag {
                ((raw & 0x00ff_ffff) as u64, raw >> 24)
            } else {
                (raw as u64, 0)
            };
            Some((name, ty, bits, size))
        })
    }

    /// Finds member `name` of struct/union `id`, looking inside anonymous struct/union members
    /// as C does. The returned offset is relative to the start of `id`.
    pub fn member(&self, id: u32, name: &str) -> Option<Member> {
        self.member_depth(self.resolve(id)?, name, 0)
    }

    fn member_depth(&self, id: u32, name: &str, depth: usize) -> Option<Member> {
        if depth > MAX_DEPTH {
            return None;
        }
        for (noff, ty, bits, size) in self.members(id) {
            if noff != 0 {
                if self.str_at(noff) == Some(name) {
                    return Some(Member {
                        bit_offset: bits,
                        bitfield_size: size,
                        type_id: ty,
                    });
                }
                continue;
            }
            // Anonymous member: search inside if it is a struct or union.
            let inner = self.resolve(ty)?;
            if matches!(self.kind(inner), Some(KIND_STRUCT) | Some(KIND_UNION)) {
                if let Some(mut m) = self.member_depth(inner, name, depth + 1) {
                    m.bit_offset = m.bit_offset.checked_add(bits)?;
                    return Some(m);
                }
            }
        }
        None
    }

    /// Follows a dotted path of embedded members ("signal.pids" is not allowed across pointers:
    /// only `a.b` where `a` is an embedded struct/union). Returns the last member with its offset
    /// relative to `id`.
    pub fn member_path(&self, id: u32, path: &str) -> Option<Member> {
        let mut cur = self.resolve(id)?;
        let mut total = 0u64;
        let mut last = None;
        for part in path.split('.') {
            if last.is_some() {
                cur = self.resolve(last.map(|m: Member| m.type_id)?)?;
            }
            let m = self.member(cur, part)?;
            total = total.checked_add(m.bit_offset)?;
            last = Some(Member {
                bit_offset: total,
                ..m
            });
        }
        last
    }

    /// Convenience: `struct_name.path` as a member, with a message naming what is missing.
    pub fn field(&self, struct_name: &str, path: &str) -> Result<Member> {
        let id = self.find_aggregate(struct_name).ok_or_else(|| {
            self.err(format!(
                "no struct {} in the kernel's {}",
                struct_name, self.origin
            ))
        })?;
        self.member_path(id, path)
            .ok_or_else(|| self.err(format!("struct {} has no member {}", struct_name, path)))
    }

    /// Size of the named struct/union.
    pub fn struct_size(&self, name: &str) -> Result<u64> {
        self.find_aggregate(name)
            .and_then(|id| self.size_of(id))
            .ok_or_else(|| {
                self.err(format!(
                    "no struct {} in the kernel's {}",
                    name, self.origin
                ))
            })
    }

    fn err(&self, what: String) -> Error {
        Error::format(format!("{}: {}", self.origin, what))
    }

    /// Value of an enumerator (e.g. "PIDTYPE_PGID"), searched in every enum.
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        for t in self.types.iter().skip(1) {
            let (stride, wide) = match t.kind {
                KIND_ENUM => (8, false),
                KIND_ENUM64 => (12, true),
                _ => continue,
            };
            for i in 0..t.vlen as usize {
                let off = t.extra as usize + i * stride;
                let Some(noff) = self.u32_at(off) else {
                    break;
                };
                if self.str_at(noff) != Some(name) {
                    continue;
                }
                let lo = self.u32_at(off + 4)?;
                if wide {
                    let hi = self.u32_at(off + 8)?;
                    return Some(((hi as u64) << 32 | lo as u64) as i64);
                }
                // kind_flag set means unsigned; otherwise sign-extend.
                return Some(if t.kflag { lo as i64 } else { lo as i32 as i64 });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a tiny BTF blob: int, struct inner {int a; int b:3; int c:5;}, struct outer
    /// { int x; union { struct inner in; long y; }; int arr[4]; }.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0inner\0a\0b\0c\0outer\0x\0in\0y\0arr\0long\0".to_vec();
        let s = |name: &str| -> u32 {
            let pat = format!("\0{}\0", name);
            (strings
                .windows(pat.len())
                .position(|w| w == pat.as_bytes())
                .unwrap()
                + 1) as u32
        };
        let mut t = Vec::new();
        let mut push = |v: &[u32]| {
            for x in v {
                t.extend_from_slice(&x.to_le_bytes());
            }
        };
        // 1: int (4 bytes, signed)
        push(&[s("int"), (KIND_INT as u32) << 24, 4, 0x0100_0020]);
        // 2: struct inner, 3 members, bitfields (kflag)
        push(&[s("inner"), 0x8000_0000 | (KIND_STRUCT as u32) << 24 | 3, 8]);
        push(&[s("a"), 1, 0]);
        push(&[s("b"), 1, 3 << 24 | 32]);
        push(&[s("c"), 1, 5 << 24 | 35]);
        // 3: long
        push(&[s("long"), (KIND_INT as u32) << 24, 8, 0x0100_0040]);
        // 4: anonymous union { struct inner in; long y; }
        push(&[0, (KIND_UNION as u32) << 24 | 2, 8]);
        push(&[s("in"), 2, 0]);
        push(&[s("y"), 3, 0]);
        // 5: int[4]
        push(&[0, (KIND_ARRAY as u32) << 24, 0]);
        push(&[1, 1, 4]);
        // 6: struct outer { int x; union; int arr[4]; }
        push(&[s("outer"), (KIND_STRUCT as u32) << 24 | 3, 32]);
        push(&[s("x"), 1, 0]);
        push(&[0, 4, 64]);
        push(&[s("arr"), 5, 128]);
        let mut blob = Vec::new();
        blob.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        blob.extend_from_slice(&[1, 0]);
        blob.extend_from_slice(&24u32.to_le_bytes());
        blob.extend_from_slice(&0u32.to_le_bytes());
        blob.extend_from_slice(&(t.len() as u32).to_le_bytes());
        blob.extend_from_slice(&(t.len() as u32).to_le_bytes());
        blob.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        blob.extend_from_slice(&t);
        blob.extend_from_slice(&strings);
        blob
    }

    #[test]
    fn members_anonymous_and_bitfields() {
        let blob = sample();
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.type_count(), 6);
        let outer = btf.find_aggregate("outer").unwrap();
        assert_eq!(btf.size_of(outer), Some(32));
        let y = btf.member(outer, "y").unwrap();
        assert_eq!(y.offset(), 8);
        let c = btf.member_path(outer, "in.c").unwrap();
        assert_eq!((c.bit_offset, c.bitfield_size), (64 + 35, 5));
        let arr = btf.member(outer, "arr").unwrap();
        assert_eq!(arr.offset(), 16);
        assert_eq!(btf.array(arr.type_id), Some((1, 4)));
        assert_eq!(btf.size_of(arr.type_id), Some(16));
        assert!(btf.member(outer, "nope").is_none());
        assert!(btf.field("outer", "in.zz").is_err());
    }

    #[test]
    fn corrupt_blobs_are_errors() {
        let blob = sample();
        for cut in 0..blob.len() {
            let _ = Btf::parse(&blob[..cut]);
        }
        let mut bad_magic = blob.clone();
        bad_magic[0] = 0;
        let e = Btf::parse(&bad_magic).unwrap_err().to_string();
        assert!(e.contains("magic"), "{}", e);
        let mut bad_len = blob.clone();
        bad_len[12] = 0xff;
        bad_len[13] = 0xff;
        assert!(Btf::parse(&bad_len).is_err());
    }
}
