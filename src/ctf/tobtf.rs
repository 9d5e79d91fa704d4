//! Re-encoding decoded CTF types as a BTF blob, type id for type id, so `Btf` serves both.
//!
//! CTF kind -> BTF kind: INTEGER -> INT, FLOAT -> FLOAT, POINTER -> PTR, ARRAY -> ARRAY,
//! FUNCTION -> FUNC_PROTO, STRUCT/UNION -> STRUCT/UNION, ENUM -> ENUM, FORWARD -> FWD,
//! TYPEDEF/VOLATILE/CONST/RESTRICT -> the same, UNKNOWN -> an anonymous FWD (it has no size).
//! A CTF bitfield is a member whose integer type has fewer bits than its size; BTF says the
//! same with the struct's kind flag and a bitfield size in the member's offset word.

use std::collections::HashMap;

use super::bad;
use super::types::*;
use crate::btf;
use crate::error::Result;

/// Name references: internal offsets are kept as is (the internal table is copied first),
/// external ones (bit 31 set) are copied from the ELF string table and appended.
struct Names<'a> {
    internal: &'a [u8],
    external: Option<&'a [u8]>,
    out: Vec<u8>,
    appended: HashMap<u32, u32>,
}

impl Names<'_> {
    fn map(&mut self, raw: u32, whose: &dyn Fn() -> String) -> Result<u32> {
        let off = raw & 0x7fff_ffff;
        let external = raw >> 31 != 0;
        if off == 0 {
            return Ok(0);
        }
        if !external {
            let ok = self
                .internal
                .get(off as usize..)
                .is_some_and(|s| s.contains(&0));
            if !ok {
                return Err(bad(format!(
                    "{}: name offset {} is past the end of the {}-byte string table (or unterminated)",
                    whose(),
                    off,
                    self.internal.len()
                )));
            }
            return Ok(off);
        }
        if let Some(&o) = self.appended.get(&off) {
            return Ok(o);
        }
        let Some(tab) = self.external else {
            return Err(bad(format!(
                "{}: its name is in the ELF string table (external name offset {}), which was not given: read the CTF with ctf::from_elf",
                whose(),
                off
            )));
        };
        let s = tab
            .get(off as usize..)
            .and_then(|s| Some(&s[..s.iter().position(|&b| b == 0)?]))
            .ok_or_else(|| {
                bad(format!(
                    "{}: external name offset {} is past the end of the {}-byte ELF string table",
                    whose(),
                    off,
                    tab.len()
                ))
            })?;
        let o = u32::try_from(self.out.len()).map_err(|_| bad("string table too large"))?;
        self.out.extend_from_slice(s);
        self.out.push(0);
        self.appended.insert(off, o);
        Ok(o)
    }
}

/// Little-endian BTF type section writer.
struct Out(Vec<u8>);

impl Out {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn common(&mut self, name: u32, kind: u8, kflag: bool, vlen: u32, size_type: u32) {
        self.u32(name);
        self.u32((kflag as u32) << 31 | (kind as u32) << 24 | vlen);
        self.u32(size_type);
    }
}

/// Longest typedef/qualifier/array chain followed while looking for a bitfield's integer.
const MAX_CHAIN: usize = 64;

fn chain_next(t: &CtfType) -> Option<u32> {
    match t.kind {
        K_TYPEDEF | K_VOLATILE | K_CONST | K_RESTRICT => Some(t.ref_type),
        K_ARRAY => Some(t.array.0),
        _ => None,
    }
}

/// Rejects cycles of typedefs, qualifiers and array element types (which would make a type
/// have no size or resolve forever). Ids are range-checked already.
fn check_loops(d: &Decoded) -> Result<()> {
    // 0 = not seen, 1 = on the current path, 2 = known to end.
    let mut state = vec![0u8; d.types.len()];
    let mut path = Vec::new();
    for start in 1..d.types.len() {
        let mut id = start;
        loop {
            match state[id] {
                2 => break,
                1 => {
                    return Err(bad(format!(
                        "type id {} is part of a loop of typedefs, qualifiers or arrays",
                        id
                    )))
                }
                _ => {}
            }
            match chain_next(&d.types[id]) {
                Some(next) if next != 0 => {
                    state[id] = 1;
                    path.push(id);
                    id = next as usize;
                }
                _ => {
                    state[id] = 2;
                    break;
                }
            }
        }
        for &p in &path {
            state[p] = 2;
        }
        path.clear();
    }
    Ok(())
}

/// If member type `ty` is a bitfield integer: (bits, bit offset within its storage unit).
fn bitfield(d: &Decoded, mut ty: u32) -> Option<(u32, u32)> {
    for _ in 0..MAX_CHAIN {
        let t = d.types.get(ty as usize)?;
        match t.kind {
            K_TYPEDEF | K_VOLATILE | K_CONST | K_RESTRICT => ty = t.ref_type,
            K_INTEGER => {
                let bits = t.encoding & 0xffff;
                let off = (t.encoding >> 16) & 0xff;
                let full = t.size.saturating_mul(8);
                let narrow = bits > 0 && (bits as u64) < full && bits <= 0xff;
                return (narrow || (off != 0 && bits <= 0xff)).then_some((bits, off));
            }
            _ => return None,
        }
    }
    None
}

/// The converted blob and the root (name-visible) structs and unions, in id order.
pub struct Converted {
    pub blob: Vec<u8>,
    pub roots: Vec<u32>,
}

/// Builds the BTF blob for `d`, whose names live in `internal` (the CTF string table) or
/// `external` (the ELF's .strtab).
pub fn convert(d: &Decoded, internal: &[u8], external: Option<&[u8]>) -> Result<Converted> {
    if !internal.is_empty() && internal[0] != 0 {
        return Err(bad("the string table does not start with an empty string"));
    }
    let ntypes = d.types.len() - 1;
    let max_id = u32::try_from(ntypes).map_err(|_| bad("too many types"))?;
    let check_id = |id: u32, whose: &dyn Fn() -> String| -> Result<u32> {
        if id > max_id {
            let hint = if id >= 0x8000_0000 || (id >= 0x8000 && max_id < 0x8000) {
                " (a reference into a parent container?)"
            } else {
                ""
            };
            return Err(bad(format!(
                "{} refers to type id {}, but there are only {} types{}",
                whose(),
                id,
                ntypes,
                hint
            )));
        }
        Ok(id)
    };
    let mut names = Names {
        internal,
        external,
        out: if internal.is_empty() {
            vec![0]
        } else {
            internal.to_vec()
        },
        appended: HashMap::new(),
    };
    // First pass: every reference in range, so the loop check and bitfield lookups can index.
    for (id, t) in d.types.iter().enumerate().skip(1) {
        let whose = || format!("type id {} (offset {} of the type section)", id, t.offset);
        match t.kind {
            K_POINTER | K_TYPEDEF | K_VOLATILE | K_CONST | K_RESTRICT | K_FUNCTION => {
                check_id(t.ref_type, &whose)?;
            }
            K_ARRAY => {
                check_id(t.array.0, &whose)?;
                check_id(t.array.1, &whose)?;
            }
            _ => {}
        }
        match t.kind {
            K_FUNCTION => {
                for &a in &d.args[t.first..t.first + t.vlen as usize] {
                    check_id(a, &|| format!("{}: an argument", whose()))?;
                }
            }
            K_STRUCT | K_UNION => {
                for (i, m) in d.members[t.first..t.first + t.vlen as usize]
                    .iter()
                    .enumerate()
                {
                    check_id(m.ty, &|| format!("{}: member {}", whose(), i))?;
                }
            }
            _ => {}
        }
    }
    check_loops(d)?;

    let mut out = Out(Vec::with_capacity(
        d.types.len() * 16 + d.members.len() * 12,
    ));
    let mut roots = Vec::new();
    for (id, t) in d.types.iter().enumerate().skip(1) {
        let whose = || format!("type id {} (offset {} of the type section)", id, t.offset);
        let name = names.map(t.name, &whose)?;
        let size32 = || {
            u32::try_from(t.size).map_err(|_| {
                bad(format!(
                    "{}: size {} does not fit in 32 bits",
                    whose(),
                    t.size
                ))
            })
        };
        let vlen16 = || {
            if t.vlen > 0xffff {
                Err(bad(format!(
                    "{}: {} members or values are more than BTF can describe (65535)",
                    whose(),
                    t.vlen
                )))
            } else {
                Ok(t.vlen)
            }
        };
        match t.kind {
            K_UNKNOWN => out.common(name, btf::KIND_FWD, false, 0, 0),
            K_INTEGER => {
                out.common(name, btf::KIND_INT, false, 0, size32()?);
                let enc = (t.encoding >> 24) & 0x7; // signed, char, bool: same bits in BTF
                let off = (t.encoding >> 16) & 0xff;
                let bits = (t.encoding & 0xffff).min(0xff);
                out.u32(enc << 24 | off << 16 | bits);
            }
            K_FLOAT => out.common(name, btf::KIND_FLOAT, false, 0, size32()?),
            K_POINTER => out.common(name, btf::KIND_PTR, false, 0, t.ref_type),
            K_ARRAY => {
                out.common(name, btf::KIND_ARRAY, false, 0, 0);
                out.u32(t.array.0);
                out.u32(t.array.1);
                out.u32(t.array.2);
            }
            K_FUNCTION => {
                let args = &d.args[t.first..t.first + t.vlen as usize];
                // Over-long argument lists are dropped rather than refused: nothing reads them.
                let args = if args.len() > 0xffff { &[][..] } else { args };
                out.common(
                    name,
                    btf::KIND_FUNC_PROTO,
                    false,
                    args.len() as u32,
                    t.ref_type,
                );
                for &a in args {
                    out.u32(0);
                    out.u32(a);
                }
            }
            K_STRUCT | K_UNION => {
                let vlen = vlen16()?;
                let size = size32()?;
                let members = &d.members[t.first..t.first + vlen as usize];
                let fields: Vec<Option<(u32, u32)>> =
                    members.iter().map(|m| bitfield(d, m.ty)).collect();
                // BTF's bitfield encoding leaves 24 bits for the offset; a struct too large for
                // it (over 2 MiB) keeps its offsets and loses its bitfield widths instead.
                let kflag = fields.iter().any(Option::is_some)
                    && members.iter().zip(&fields).all(|(m, bf)| {
                        let extra = bf.map_or(0, |b| b.1) as u64;
                        m.bit_offset.saturating_add(extra) <= 0x00ff_ffff
                    });
                let kind = if t.kind == K_STRUCT {
                    btf::KIND_STRUCT
                } else {
                    btf::KIND_UNION
                };
                out.common(name, kind, kflag, vlen, size);
                if t.root && name != 0 {
                    roots.push(id as u32);
                }
                for (i, (m, bf)) in members.iter().zip(&fields).enumerate() {
                    let mwhose = || format!("{}: member {}", whose(), i);
                    let mname = names.map(m.name, &mwhose)?;
                    let (bits, extra) = bf.unwrap_or((0, 0));
                    let at = m.bit_offset.checked_add(extra as u64);
                    let limit = if kflag { 0x00ff_ffff } else { u32::MAX as u64 };
                    let at = at.filter(|&a| a <= limit).ok_or_else(|| {
                        bad(format!(
                            "{}: bit offset {} is more than BTF can describe",
                            mwhose(),
                            m.bit_offset
                        ))
                    })? as u32;
                    out.u32(mname);
                    out.u32(m.ty);
                    out.u32(if kflag { bits << 24 | at } else { at });
                }
            }
            K_ENUM => {
                let vlen = vlen16()?;
                out.common(name, btf::KIND_ENUM, false, vlen, size32()?);
                for (i, &(n, v)) in d.enums[t.first..t.first + vlen as usize].iter().enumerate() {
                    let n = names.map(n, &|| format!("{}: enumerator {}", whose(), i))?;
                    out.u32(n);
                    out.u32(v as u32);
                }
            }
            K_FORWARD => {
                let union = t.ref_type == K_UNION as u32;
                out.common(name, btf::KIND_FWD, union, 0, 0);
            }
            K_TYPEDEF | K_VOLATILE | K_CONST | K_RESTRICT => {
                let kind = match t.kind {
                    K_TYPEDEF => btf::KIND_TYPEDEF,
                    K_VOLATILE => btf::KIND_VOLATILE,
                    K_CONST => btf::KIND_CONST,
                    _ => btf::KIND_RESTRICT,
                };
                out.common(name, kind, false, 0, t.ref_type);
            }
            k => return Err(bad(format!("{}: unknown kind {}", whose(), k))),
        }
    }

    let types = out.0;
    let strings = names.out;
    let type_len = u32::try_from(types.len()).map_err(|_| bad("too many types for BTF"))?;
    let str_len = u32::try_from(strings.len()).map_err(|_| bad("string table too large"))?;
    let mut blob = Vec::with_capacity(24 + types.len() + strings.len());
    blob.extend_from_slice(&0xeb9fu16.to_le_bytes());
    blob.extend_from_slice(&[1, 0]); // version 1, no flags
    for v in [24, 0, type_len, type_len, str_len] {
        blob.extend_from_slice(&v.to_le_bytes());
    }
    blob.extend_from_slice(&types);
    blob.extend_from_slice(&strings);
    Ok(Converted { blob, roots })
}
