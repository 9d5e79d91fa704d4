//! A format-neutral description of C types for test fixtures: the BTF and CTF writers
//! (tests/common/btfwriter.rs, tests/common/ctfwriter.rs) both encode the same list, so one
//! fixture can carry its kernel's type information in either format.
//!
//! Type ids: the type at index `i` of the list has id `i + 1`; id 0 is `void`.
#![allow(dead_code)]

/// One type. Members and referenced types name other types by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// An integer of `bits` bits (8, 16, 32, 64), e.g. "int", "long", "char".
    Int {
        name: String,
        bits: u32,
        signed: bool,
    },
    /// A pointer to type `to` (0 = void *).
    Ptr {
        to: u32,
    },
    /// `elem[n]`, indexed by type `index` (an Int).
    Array {
        elem: u32,
        index: u32,
        n: u32,
    },
    /// A struct of `size` bytes; members at bit offsets.
    Struct {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    /// A union of `size` bytes (members at bit offset 0 usually).
    Union {
        name: String,
        size: u32,
        members: Vec<Member>,
    },
    /// An enum of `size` bytes with (name, value) pairs.
    Enum {
        name: String,
        size: u32,
        values: Vec<(String, i32)>,
    },
    /// `typedef to name;`
    Typedef {
        name: String,
        to: u32,
    },
    /// A forward declaration (`struct name;`).
    Fwd {
        name: String,
        union: bool,
    },
    Const {
        to: u32,
    },
    Volatile {
        to: u32,
    },
}

/// A struct or union member. `bitfield_bits` is 0 for an ordinary member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub ty: u32,
    pub bit_offset: u32,
    pub bitfield_bits: u32,
}

impl Member {
    /// An ordinary member at byte offset `off`.
    pub fn at(name: &str, ty: u32, off: u32) -> Member {
        Member {
            name: name.to_string(),
            ty,
            bit_offset: off * 8,
            bitfield_bits: 0,
        }
    }
}
