//! Encodes a list of `typemodel::Ty` as a BTF blob (Linux Documentation/bpf/btf.rst): a
//! 24-byte header, the type section (one record per type, ids in list order from 1) and the
//! string section (starting with the empty string). Little-endian, as kernels on x86 and arm64.
#![allow(dead_code)]

use super::typemodel::{Member, Ty};

const BTF_MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;

/// The string section under construction: each distinct name stored once.
struct Strings {
    buf: Vec<u8>,
}

impl Strings {
    fn add(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let pat: Vec<u8> = s.bytes().chain([0]).collect();
        // Reuse an earlier copy that starts at a string boundary.
        let mut at = 0;
        while at < self.buf.len() {
            let end = at + self.buf[at..].iter().position(|&b| b == 0).unwrap() + 1;
            if self.buf[at..end] == pat[..] {
                return at as u32;
            }
            at = end;
        }
        let off = self.buf.len() as u32;
        self.buf.extend_from_slice(&pat);
        off
    }
}

fn info(kind: u32, vlen: usize, kflag: bool) -> u32 {
    assert!(vlen <= 0xffff, "too many members");
    (kflag as u32) << 31 | kind << 24 | vlen as u32
}

fn push(out: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        out.extend_from_slice(&w.to_le_bytes());
    }
}

fn members(out: &mut Vec<u8>, strs: &mut Strings, ms: &[Member], kflag: bool) {
    for m in ms {
        let off = if kflag {
            assert!(
                m.bit_offset < 1 << 24,
                "bit offset too large for a bitfield struct"
            );
            m.bitfield_bits << 24 | m.bit_offset
        } else {
            m.bit_offset
        };
        push(out, &[strs.add(&m.name), m.ty, off]);
    }
}

/// The BTF blob describing `types` (type id = index + 1).
pub fn write_btf(types: &[Ty]) -> Vec<u8> {
    let mut strs = Strings { buf: vec![0] };
    let mut t = Vec::new();
    for ty in types {
        match ty {
            Ty::Int { name, bits, signed } => {
                let n = strs.add(name);
                push(&mut t, &[n, info(KIND_INT, 0, false), bits.div_ceil(8)]);
                // encoding (bit 24: signed), offset 0, bits.
                push(&mut t, &[(*signed as u32) << 24 | bits]);
            }
            Ty::Ptr { to } => push(&mut t, &[0, info(KIND_PTR, 0, false), *to]),
            Ty::Array { elem, index, n } => {
                push(&mut t, &[0, info(KIND_ARRAY, 0, false), 0]);
                push(&mut t, &[*elem, *index, *n]);
            }
            Ty::Struct {
                name,
                size,
                members: ms,
            }
            | Ty::Union {
                name,
                size,
                members: ms,
            } => {
                let kind = if matches!(ty, Ty::Struct { .. }) {
                    KIND_STRUCT
                } else {
                    KIND_UNION
                };
                let kflag = ms.iter().any(|m| m.bitfield_bits != 0);
                let n = strs.add(name);
                push(&mut t, &[n, info(kind, ms.len(), kflag), *size]);
                members(&mut t, &mut strs, ms, kflag);
            }
            Ty::Enum { name, size, values } => {
                let n = strs.add(name);
                push(&mut t, &[n, info(KIND_ENUM, values.len(), false), *size]);
                for (vn, v) in values {
                    push(&mut t, &[strs.add(vn), *v as u32]);
                }
            }
            Ty::Typedef { name, to } => {
                let n = strs.add(name);
                push(&mut t, &[n, info(KIND_TYPEDEF, 0, false), *to]);
            }
            Ty::Fwd { name, union } => {
                let n = strs.add(name);
                push(&mut t, &[n, info(KIND_FWD, 0, *union), 0]);
            }
            Ty::Const { to } => push(&mut t, &[0, info(KIND_CONST, 0, false), *to]),
            Ty::Volatile { to } => push(&mut t, &[0, info(KIND_VOLATILE, 0, false), *to]),
        }
    }
    let mut blob = Vec::new();
    blob.extend_from_slice(&BTF_MAGIC.to_le_bytes());
    blob.extend_from_slice(&[1, 0]); // version 1, flags 0
    push(
        &mut blob,
        &[24, 0, t.len() as u32, t.len() as u32, strs.buf.len() as u32],
    );
    blob.extend_from_slice(&t);
    blob.extend_from_slice(&strs.buf);
    blob
}
