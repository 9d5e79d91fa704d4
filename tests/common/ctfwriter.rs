//! A CTF writer for tests: encodes a `typemodel` type list as a FreeBSD `.SUNW_ctf` blob,
//! version 2 or 3, compressed or not, in either byte order, following sys/sys/ctf.h field by
//! field. Type ids are the model's (index + 1); `CtfOpts::extra` kinds the model lacks follow
//! them, and the bitfield integers ctfconvert would create (a copy of the member's integer
//! type with the bitfield's width) come last.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;

use super::elfwriter;
use super::typemodel::Ty;

pub const CTF_MAGIC: u16 = 0xcff1;
pub const K_INTEGER: u32 = 1;
pub const K_FLOAT: u32 = 2;
pub const K_POINTER: u32 = 3;
pub const K_ARRAY: u32 = 4;
pub const K_FUNCTION: u32 = 5;
pub const K_STRUCT: u32 = 6;
pub const K_UNION: u32 = 7;
pub const K_ENUM: u32 = 8;
pub const K_FORWARD: u32 = 9;
pub const K_TYPEDEF: u32 = 10;
pub const K_VOLATILE: u32 = 11;
pub const K_CONST: u32 = 12;
pub const K_RESTRICT: u32 = 13;
pub const INT_SIGNED: u32 = 1;
pub const INT_CHAR: u32 = 2;
pub const FP_DOUBLE: u32 = 2;

/// Kinds the type model does not have, appended after it.
#[derive(Clone, Debug)]
pub enum Extra {
    Func {
        ret: u32,
        args: Vec<u32>,
    },
    Float {
        name: String,
        size: u32,
    },
    Restrict {
        to: u32,
    },
    Unknown,
    /// A raw record of any kind number with no kind-specific data (for bad-kind tests).
    RawKind {
        kind: u32,
    },
}

#[derive(Clone, Debug)]
pub struct CtfOpts {
    pub version: u8,
    pub compress: bool,
    pub big_endian: bool,
    /// An ELF string table: names found in it are written as external references (bit 31).
    pub external: Option<Vec<u8>>,
    pub extra: Vec<Extra>,
    /// Type ids written without the root flag (invisible to CTF name lookups).
    pub non_root: Vec<u32>,
    /// Makes a child container of the named parent.
    pub parent: Option<String>,
}

impl CtfOpts {
    pub fn new(version: u8, compress: bool) -> CtfOpts {
        CtfOpts {
            version,
            compress,
            big_endian: false,
            external: None,
            extra: Vec::new(),
            non_root: Vec::new(),
            parent: None,
        }
    }
}

/// Where the type section and string section landed, for corruption tests (offsets in the
/// uncompressed blob, counted from its start).
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub typeoff: usize,
    pub stroff: usize,
    pub strlen: usize,
}

struct Enc {
    buf: Vec<u8>,
    be: bool,
    v3: bool,
}

impl Enc {
    fn u16(&mut self, v: u32) {
        assert!(v <= 0xffff, "{} does not fit a 16-bit field", v);
        let v = v as u16;
        self.buf.extend_from_slice(&if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&if self.be {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    /// A type id field: `ushort` in v2, `uint` in v3.
    fn id(&mut self, v: u32) {
        if self.v3 {
            self.u32(v)
        } else {
            self.u16(v)
        }
    }
    /// `ctf_stype` (+ lsizehi/lsizelo of `ctf_type` when `size` needs them).
    fn header(&mut self, name: u32, kind: u32, root: bool, vlen: u32, size_or_type: u64) {
        self.u32(name);
        let (max_vlen, sent) = if self.v3 {
            (0x00ff_ffff, 0xffff_ffffu64)
        } else {
            (0x3ff, 0xffff)
        };
        assert!(vlen <= max_vlen, "vlen {} too large for the version", vlen);
        if self.v3 {
            self.u32(kind << 26 | (root as u32) << 25 | vlen);
        } else {
            self.u16(kind << 11 | (root as u32) << 10 | vlen);
        }
        if size_or_type >= sent {
            if self.v3 {
                self.u32(sent as u32)
            } else {
                self.u16(sent as u32)
            }
            self.u32((size_or_type >> 32) as u32);
            self.u32(size_or_type as u32);
        } else if self.v3 {
            self.u32(size_or_type as u32)
        } else {
            self.u16(size_or_type as u32)
        }
    }
}

struct Strings {
    tab: Vec<u8>,
    seen: HashMap<String, u32>,
    external: Option<Vec<u8>>,
}

impl Strings {
    fn name(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        if let Some(ext) = &self.external {
            let pat = [&[0u8][..], s.as_bytes(), &[0]].concat();
            if let Some(p) = ext.windows(pat.len()).position(|w| w == &pat[..]) {
                return 0x8000_0000 | (p as u32 + 1);
            }
        }
        if let Some(&o) = self.seen.get(s) {
            return o;
        }
        let o = self.tab.len() as u32;
        self.tab.extend_from_slice(s.as_bytes());
        self.tab.push(0);
        self.seen.insert(s.to_string(), o);
        o
    }
}

/// Follows typedefs and qualifiers in the model to an Int: (name, bits, signed).
fn model_int(types: &[Ty], mut id: u32) -> Option<(String, u32, bool)> {
    for _ in 0..32 {
        match types.get((id as usize).checked_sub(1)?)? {
            Ty::Typedef { to, .. } | Ty::Const { to } | Ty::Volatile { to } => id = *to,
            Ty::Int { name, bits, signed } => return Some((name.clone(), *bits, *signed)),
            _ => return None,
        }
    }
    None
}

/// Encodes `types` as a CTF blob.
pub fn write_ctf(types: &[Ty], o: &CtfOpts) -> Vec<u8> {
    write_ctf_placed(types, o).0
}

/// `write_ctf`, also saying where the sections are.
pub fn write_ctf_placed(types: &[Ty], o: &CtfOpts) -> (Vec<u8>, Placement) {
    let v3 = o.version >= 3;
    let mut strs = Strings {
        tab: vec![0],
        seen: HashMap::new(),
        external: o.external.clone(),
    };
    let label = strs.name("FreeBSD-test");
    // Bitfield integers: (name, storage bits, width, signed) -> id, after model and extras.
    let mut bitints: Vec<(String, u32, u32, bool)> = Vec::new();
    let first_bitint = (types.len() + o.extra.len()) as u32 + 1;
    let mut member_type = HashMap::new();
    for t in types {
        if let Ty::Struct { members, .. } | Ty::Union { members, .. } = t {
            for m in members.iter().filter(|m| m.bitfield_bits > 0) {
                let Some((name, bits, signed)) = model_int(types, m.ty) else {
                    continue;
                };
                let key = (name, bits, m.bitfield_bits, signed);
                let idx = match bitints.iter().position(|k| *k == key) {
                    Some(i) => i,
                    None => {
                        bitints.push(key);
                        bitints.len() - 1
                    }
                };
                member_type.insert((m.ty, m.bitfield_bits), first_bitint + idx as u32);
            }
        }
    }
    let ntypes = first_bitint - 1 + bitints.len() as u32;

    let mut t = Enc {
        buf: Vec::new(),
        be: o.big_endian,
        v3,
    };
    let thresh: u64 = if v3 { 1 << 29 } else { 1 << 13 };
    let int_encoding = |name: &str, bits: u32, signed: bool| {
        let mut e = 0;
        if signed {
            e |= INT_SIGNED;
        }
        if name.contains("char") {
            e |= INT_CHAR;
        }
        e << 24 | bits
    };
    for (i, ty) in types.iter().enumerate() {
        let root = !o.non_root.contains(&(i as u32 + 1));
        match ty {
            Ty::Int { name, bits, signed } => {
                let n = strs.name(name);
                t.header(n, K_INTEGER, root, 0, bits.div_ceil(8) as u64);
                t.u32(int_encoding(name, *bits, *signed));
            }
            Ty::Ptr { to } => t.header(0, K_POINTER, root, 0, *to as u64),
            Ty::Array { elem, index, n } => {
                t.header(0, K_ARRAY, root, 0, 0);
                t.id(*elem);
                t.id(*index);
                t.u32(*n);
            }
            Ty::Struct {
                name,
                size,
                members,
            }
            | Ty::Union {
                name,
                size,
                members,
            } => {
                let kind = if matches!(ty, Ty::Struct { .. }) {
                    K_STRUCT
                } else {
                    K_UNION
                };
                let n = strs.name(name);
                t.header(n, kind, root, members.len() as u32, *size as u64);
                let large = *size as u64 >= thresh;
                for m in members {
                    let mn = strs.name(&m.name);
                    let mty = if m.bitfield_bits > 0 {
                        *member_type.get(&(m.ty, m.bitfield_bits)).unwrap_or(&m.ty)
                    } else {
                        m.ty
                    };
                    t.u32(mn);
                    t.id(mty);
                    let off = m.bit_offset as u64;
                    if !large {
                        // ctf_member: the offset is as wide as a type id.
                        t.id(off as u32);
                    } else {
                        if !v3 {
                            t.u16(0); // ctlm_pad
                        }
                        t.u32((off >> 32) as u32);
                        t.u32(off as u32);
                    }
                }
            }
            Ty::Enum { name, size, values } => {
                let n = strs.name(name);
                t.header(n, K_ENUM, root, values.len() as u32, *size as u64);
                for (vn, v) in values {
                    let vn = strs.name(vn);
                    t.u32(vn);
                    t.u32(*v as u32);
                }
            }
            Ty::Typedef { name, to } => {
                let n = strs.name(name);
                t.header(n, K_TYPEDEF, root, 0, *to as u64);
            }
            Ty::Fwd { name, union } => {
                let n = strs.name(name);
                let k = if *union { K_UNION } else { K_STRUCT };
                t.header(n, K_FORWARD, root, 0, k as u64);
            }
            Ty::Const { to } => t.header(0, K_CONST, root, 0, *to as u64),
            Ty::Volatile { to } => t.header(0, K_VOLATILE, root, 0, *to as u64),
        }
    }
    for e in &o.extra {
        match e {
            Extra::Func { ret, args } => {
                t.header(0, K_FUNCTION, true, args.len() as u32, *ret as u64);
                for &a in args {
                    t.id(a);
                }
                if !v3 && args.len() % 2 == 1 {
                    t.u16(0); // v2 pads the argument list to four bytes
                }
            }
            Extra::Float { name, size } => {
                let n = strs.name(name);
                t.header(n, K_FLOAT, true, 0, *size as u64);
                t.u32((FP_DOUBLE << 24) | (size * 8));
            }
            Extra::Restrict { to } => t.header(0, K_RESTRICT, true, 0, *to as u64),
            Extra::Unknown => t.header(0, 0, true, 0, 0),
            Extra::RawKind { kind } => t.header(0, *kind, true, 0, 0),
        }
    }
    for (name, bits, width, signed) in &bitints {
        // ctfconvert's bitfield intrinsic: same name and size, fewer bits, not a root type.
        let n = strs.name(name);
        t.header(n, K_INTEGER, false, 0, bits.div_ceil(8) as u64);
        t.u32(int_encoding(name, *width, *signed));
    }

    // Label section: one label naming the last type (as ctfmerge -L writes).
    let mut body = Enc {
        buf: Vec::new(),
        be: o.big_endian,
        v3,
    };
    body.u32(label);
    body.u32(ntypes);
    let objtoff = body.buf.len() as u32;
    // Data-object section: a type id per data symbol (contents irrelevant here).
    body.id(1);
    body.id(2);
    let funcoff = body.buf.len() as u32;
    // Function section: an info word, return type, args per function symbol; one here.
    body.id(K_FUNCTION << if v3 { 26 } else { 11 });
    body.id(1);
    while !body.buf.len().is_multiple_of(4) {
        body.buf.push(0);
    }
    let typeoff = body.buf.len() as u32;
    body.buf.extend_from_slice(&t.buf);
    let (parlabel, parname) = match &o.parent {
        Some(p) => (strs.name("PARENT"), strs.name(p)),
        None => (0, 0),
    };
    let stroff = body.buf.len() as u32;
    let strlen = strs.tab.len() as u32;
    body.buf.extend_from_slice(&strs.tab);

    let mut h = Enc {
        buf: Vec::new(),
        be: o.big_endian,
        v3,
    };
    h.u16(CTF_MAGIC as u32);
    h.buf.push(o.version);
    h.buf.push(if o.compress { 1 } else { 0 });
    for v in [
        parlabel, parname, 0, objtoff, funcoff, typeoff, stroff, strlen,
    ] {
        h.u32(v);
    }
    assert_eq!(h.buf.len(), 36);
    let placement = Placement {
        typeoff: 36 + typeoff as usize,
        stroff: 36 + stroff as usize,
        strlen: strlen as usize,
    };
    let mut out = h.buf;
    if o.compress {
        let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::default());
        z.write_all(&body.buf).unwrap();
        out = z.finish().unwrap();
    } else {
        out.extend_from_slice(&body.buf);
    }
    (out, placement)
}

/// A minimal FreeBSD kernel ELF carrying `blob` as its `.SUNW_ctf` section (and `syms` in
/// its symbol table, whose string table is what external CTF names refer to).
pub fn ctf_elf(blob: &[u8], is64: bool, le: bool, syms: &[elfwriter::Sym]) -> Vec<u8> {
    let machine = if is64 {
        elfwriter::EM_X86_64
    } else {
        elfwriter::EM_386
    };
    elfwriter::write_elf_with(is64, le, machine, 9, syms, &[(".SUNW_ctf", blob)])
}
