//! FreeBSD's CTF (Compact C Type Format, the kernel ELF's `.SUNW_ctf` section) read into the
//! same [`Btf`] the Linux code navigates, so one API finds struct members by name for both.
//!
//! Format (FreeBSD sys/sys/ctf.h; ctfconvert/ctfmerge write it, GENERIC is built WITH_CTF):
//! a 36-byte header — magic 0xcff1 in the producer's byte order, version (2 up to FreeBSD 13,
//! 3 from 14), flags (bit 0: everything after the header is one zlib stream), parent label and
//! parent name (string references, 0 for a standalone container), then the offsets, relative to
//! the end of the header, of the label, data-object, function-info, type and string sections,
//! and the string section's length. The data after the header is `stroff + strlen` bytes once
//! decompressed. Only the type and string sections are needed here. See `types.rs` for the
//! type records and `tobtf.rs` for the conversion.
//!
//! Every read is bounds-checked; corrupt input gives an error saying what is wrong where.

mod elf;
mod tobtf;
mod types;

use std::collections::HashSet;
use std::io::Read;

use crate::btf::Btf;
use crate::error::{Error, Result};

pub use elf::{from_elf, from_file, kernel_types_of_file};

pub const CTF_MAGIC: u16 = 0xcff1;
/// GNU binutils' libctf uses a different, incompatible CTF (".ctf" sections).
const GNU_CTF_MAGIC: u16 = 0xdff2;
pub const HEADER_LEN: usize = 36;
pub const CTF_F_COMPRESS: u8 = 1;
/// Largest decompressed CTF accepted (a GENERIC kernel's is a few MiB).
pub const MAX_DATA: usize = 256 << 20;
/// zlib cannot expand data by more than about 1032:1; a header claiming more is corrupt.
const MAX_ZLIB_RATIO: usize = 1100;

pub(crate) fn bad(what: impl Into<String>) -> Error {
    Error::format(format!("CTF: {}", what.into()))
}

/// The CTF header (`ctf_header_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub flags: u8,
    pub big_endian: bool,
    pub parlabel: u32,
    pub parname: u32,
    pub lbloff: u32,
    pub objtoff: u32,
    pub funcoff: u32,
    pub typeoff: u32,
    pub stroff: u32,
    pub strlen: u32,
}

impl Header {
    /// Parses and checks the header at the start of `blob`.
    pub fn parse(blob: &[u8]) -> Result<Header> {
        let magic = blob
            .get(..2)
            .map(|m| u16::from_le_bytes([m[0], m[1]]))
            .ok_or_else(|| {
                bad(format!(
                    "{}-byte blob is too short for a header",
                    blob.len()
                ))
            })?;
        let big_endian = if magic == CTF_MAGIC {
            false
        } else if magic.swap_bytes() == CTF_MAGIC {
            true
        } else if magic == GNU_CTF_MAGIC || magic.swap_bytes() == GNU_CTF_MAGIC {
            return Err(bad(
                "magic 0xdff2 is GNU libctf's format, not FreeBSD's (0xcff1)",
            ));
        } else {
            return Err(bad(format!(
                "bad magic 0x{:04x} (expected 0xcff1): not CTF data",
                magic
            )));
        };
        if blob.len() < HEADER_LEN {
            return Err(bad(format!(
                "truncated header: {} of {} bytes",
                blob.len(),
                HEADER_LEN
            )));
        }
        let version = blob[2];
        match version {
            2 | 3 => {}
            1 => return Err(bad("version 1 (pre-FreeBSD CTF) is not supported")),
            v => {
                return Err(bad(format!(
                    "unsupported version {} (2 and 3 are known)",
                    v
                )))
            }
        }
        let w = |i: usize| {
            let b: [u8; 4] = blob[4 + 4 * i..8 + 4 * i].try_into().unwrap_or_default();
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let h = Header {
            version,
            flags: blob[3],
            big_endian,
            parlabel: w(0),
            parname: w(1),
            lbloff: w(2),
            objtoff: w(3),
            funcoff: w(4),
            typeoff: w(5),
            stroff: w(6),
            strlen: w(7),
        };
        let order = [
            ("label", h.lbloff),
            ("object", h.objtoff),
            ("function", h.funcoff),
            ("type", h.typeoff),
            ("string", h.stroff),
        ];
        for pair in order.windows(2) {
            if pair[0].1 > pair[1].1 {
                return Err(bad(format!(
                    "corrupt header: the {} section (offset {}) starts after the {} section (offset {})",
                    pair[0].0, pair[0].1, pair[1].0, pair[1].1
                )));
            }
        }
        Ok(h)
    }

    /// Bytes of data after the header (decompressed).
    pub fn data_len(&self) -> u64 {
        self.stroff as u64 + self.strlen as u64
    }

    pub fn compressed(&self) -> bool {
        self.flags & CTF_F_COMPRESS != 0
    }
}

/// The data after the header, decompressed if need be.
fn data(blob: &[u8], h: &Header) -> Result<Vec<u8>> {
    let want = h.data_len();
    if want > MAX_DATA as u64 {
        return Err(bad(format!(
            "header says the data is {} bytes, more than the {} MiB accepted",
            want,
            MAX_DATA >> 20
        )));
    }
    let want = want as usize;
    let rest = &blob[HEADER_LEN..];
    if !h.compressed() {
        return rest.get(..want).map(<[u8]>::to_vec).ok_or_else(|| {
            bad(format!(
                "truncated: the header says {} bytes of data follow it, the blob has {}",
                want,
                rest.len()
            ))
        });
    }
    if want > rest.len().saturating_mul(MAX_ZLIB_RATIO).saturating_add(64) {
        return Err(bad(format!(
            "header says {} compressed bytes expand to {}: more than zlib can produce",
            rest.len(),
            want
        )));
    }
    let mut out = Vec::with_capacity(want.min(rest.len().saturating_mul(8)));
    flate2::read::ZlibDecoder::new(rest)
        .take(want as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(format!("corrupt zlib data after the header: {}", e)))?;
    if out.len() != want {
        return Err(bad(format!(
            "zlib data after the header expands to {}{} bytes, the header says {}",
            if out.len() > want { "more than " } else { "" },
            out.len().min(want),
            want
        )));
    }
    Ok(out)
}

/// Name of a header string reference, for messages.
fn header_name(strings: &[u8], raw: u32) -> String {
    if raw >> 31 != 0 {
        return format!("external string {}", raw & 0x7fff_ffff);
    }
    strings
        .get(raw as usize..)
        .and_then(|s| s.split(|&b| b == 0).next())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .unwrap_or_else(|| format!("string {}", raw))
}

/// Parses a `.SUNW_ctf` section's bytes (names in the ELF string table are not available:
/// use [`from_elf`] for containers that have them). Pointers are taken to be as wide as the
/// container's `long`.
pub fn parse(blob: &[u8]) -> Result<Btf> {
    parse_with(blob, None, None)
}

/// Parses a CTF blob with the ELF's string table (`external`, for names whose reference has
/// bit 31 set) and the pointer size (None: as wide as `long`, 8 if there is no `long`).
pub fn parse_with(blob: &[u8], external: Option<&[u8]>, ptr_size: Option<u64>) -> Result<Btf> {
    let h = Header::parse(blob)?;
    let data = data(blob, &h)?;
    // Offsets are ordered (Header::parse) and the data holds stroff + strlen bytes.
    let types_sec = &data[h.typeoff as usize..h.stroff as usize];
    let strings = &data[h.stroff as usize..];
    if h.parname != 0 {
        return Err(bad(format!(
            "this is a child container (its parent is \"{}\", label \"{}\"): only a standalone kernel CTF is supported",
            header_name(strings, h.parname),
            header_name(strings, h.parlabel)
        )));
    }
    let layout = types::Layout {
        v3: h.version == 3,
        be: h.big_endian,
    };
    let decoded = types::decode(types_sec, layout)?;
    let conv = tobtf::convert(&decoded, strings, external)?;
    let mut btf = Btf::parse(&conv.blob)
        .map_err(|e| bad(format!("converted type information is invalid: {}", e)))?;
    let ptr = ptr_size.unwrap_or_else(|| long_size(&btf).unwrap_or(8));
    btf.set_source("CTF", ptr);
    // CTF lookups by name see root types only: let the first root definition win.
    let mut seen = HashSet::new();
    for id in conv.roots {
        if let Some(name) = btf.name(id).map(str::to_owned) {
            if seen.insert(name.clone()) {
                btf.prefer_aggregate(&name, id);
            }
        }
    }
    Ok(btf)
}

/// Size of the integer type `long` (4 on ILP32 kernels, 8 on LP64).
fn long_size(btf: &Btf) -> Option<u64> {
    (1..=btf.type_count() as u32)
        .find(|&id| {
            btf.kind(id) == Some(crate::btf::KIND_INT)
                && matches!(btf.name(id), Some("long") | Some("long int"))
        })
        .and_then(|id| btf.size_of(id))
        .filter(|&s| s == 4 || s == 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v2 little-endian uncompressed blob: int, struct s { int a; int b:3; }, int *.
    fn tiny() -> Vec<u8> {
        let strings = b"\0int\0s\0a\0b\0".to_vec();
        let mut t = Vec::new();
        let rec = |t: &mut Vec<u8>, name: u32, kind: u16, root: bool, vlen: u16, st: u16| {
            t.extend_from_slice(&name.to_le_bytes());
            t.extend_from_slice(&(kind << 11 | (root as u16) << 10 | vlen).to_le_bytes());
            t.extend_from_slice(&st.to_le_bytes());
        };
        rec(&mut t, 1, 1, true, 0, 4); // 1: int
        t.extend_from_slice(&(1u32 << 24 | 32).to_le_bytes());
        rec(&mut t, 1, 1, false, 0, 4); // 2: int:3
        t.extend_from_slice(&(1u32 << 24 | 3).to_le_bytes());
        rec(&mut t, 5, 6, true, 2, 8); // 3: struct s
        for (n, ty, off) in [(7u32, 1u16, 0u16), (9, 2, 32)] {
            t.extend_from_slice(&n.to_le_bytes());
            t.extend_from_slice(&ty.to_le_bytes());
            t.extend_from_slice(&off.to_le_bytes());
        }
        rec(&mut t, 0, 3, true, 0, 1); // 4: int *
        let mut b = Vec::new();
        b.extend_from_slice(&CTF_MAGIC.to_le_bytes());
        b.extend_from_slice(&[2, 0]);
        for v in [0, 0, 0, 0, 0, 0, t.len() as u32, strings.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&t);
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn tiny_blob() {
        let btf = parse(&tiny()).unwrap();
        assert_eq!(btf.type_count(), 4);
        assert_eq!(btf.struct_size("s").unwrap(), 8);
        let b = btf.field("s", "b").unwrap();
        assert_eq!((b.bit_offset, b.bitfield_size), (32, 3));
        assert_eq!(btf.pointee(4), Some(1));
        assert_eq!(btf.size_of(4), Some(8));
        let e = btf.field("s", "zz").unwrap_err().to_string();
        assert!(e.starts_with("CTF:"), "{}", e);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let b = tiny();
        for cut in 0..b.len() {
            assert!(parse(&b[..cut]).is_err(), "cut at {}", cut);
        }
    }
}
