//! Decodes the kernel's compressed kallsyms tables from a dump, located through VMCOREINFO's
//! SYMBOL(kallsyms_*) entries (Linux >= 6.0 exports them for this purpose).
//!
//! Layout (kernel/kallsyms.c): `kallsyms_names` is a stream of entries, each a length (one byte,
//! or two when the first has bit 7 set: low 7 bits + next byte << 7) then that many token
//! numbers; a token expands to a NUL-terminated string at `kallsyms_token_table +
//! kallsyms_token_index[token]`. The first character of an expanded name is its type letter.
//! Addresses: `kallsyms_offsets[i]` (s32) relative to `kallsyms_relative_base`; with
//! absolute per-CPU symbols, non-negative values are absolute and negative ones are
//! `relative_base - 1 - value`.

use crate::abi;
use crate::dump::vmcoreinfo::VmcoreInfo;
use crate::error::{Error, Result};
use crate::symbols::{Symbol, SymbolIndex};

/// Upper bound on the symbol count a sane kernel has (guards against corrupt dumps).
const MAX_SYMS: u32 = 4_000_000;
const CHUNK: usize = 64 * 1024;

/// Kernel-memory reader: fills `buf` from kernel virtual address `va`, returns bytes read.
pub type KvaReader<'a> = dyn FnMut(u64, &mut [u8]) -> Result<usize> + 'a;

/// a.out-style type for a kallsyms type letter (uppercase = global).
pub fn nlist_type(c: u8) -> u8 {
    let base = match c.to_ascii_lowercase() {
        b't' | b'w' => abi::N_TEXT,
        b'd' | b'r' | b'g' | b'v' => abi::N_DATA,
        b'b' | b's' => abi::N_BSS,
        b'a' => abi::N_ABS,
        _ => abi::N_DATA,
    };
    if c.is_ascii_uppercase() {
        base | abi::N_EXT
    } else {
        base
    }
}

/// Sequential reader over kernel memory with a chunk buffer.
struct Stream<'r, 'a> {
    read: &'r mut KvaReader<'a>,
    base: u64,
    buf: Vec<u8>,
    buf_va: u64,
}

impl Stream<'_, '_> {
    fn byte(&mut self, va: u64) -> Result<u8> {
        let rel = va.wrapping_sub(self.buf_va);
        if rel < self.buf.len() as u64 {
            return Ok(self.buf[rel as usize]);
        }
        self.buf.resize(CHUNK, 0);
        let n = (self.read)(va, &mut self.buf)?;
        self.buf.truncate(n);
        self.buf_va = va;
        if n == 0 {
            return Err(Error::format(format!(
                "kallsyms table at 0x{:x}: cannot read 0x{:x}",
                self.base, va
            )));
        }
        Ok(self.buf[0])
    }
}

fn read_exact(read: &mut KvaReader<'_>, va: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    let n = read(va, &mut v).map_err(|e| Error::format(format!("kallsyms: {}: {}", what, e)))?;
    if n != len {
        return Err(Error::format(format!(
            "kallsyms: {} at 0x{:x} is cut short ({} of {} bytes readable)",
            what, va, n, len
        )));
    }
    Ok(v)
}

/// The decoded table: (name, type letter, address), in kernel order.
pub fn decode(read: &mut KvaReader<'_>, info: &VmcoreInfo) -> Result<Vec<(String, u8, u64)>> {
    let sym = |n: &str| {
        info.symbol(n).ok_or_else(|| {
            Error::format(format!(
                "VMCOREINFO has no SYMBOL({}): cannot decode kallsyms",
                n
            ))
        })
    };
    let names = sym("kallsyms_names")?;
    let num_syms_va = sym("kallsyms_num_syms")?;
    let token_table = sym("kallsyms_token_table")?;
    let token_index = sym("kallsyms_token_index")?;
    let offsets_va = sym("kallsyms_offsets")?;
    let relative_base_va = sym("kallsyms_relative_base")?;

    let n = u32::from_le_bytes(
        read_exact(read, num_syms_va, 4, "kallsyms_num_syms")?
            .try_into()
            .unwrap_or([0; 4]),
    );
    if n == 0 || n > MAX_SYMS {
        return Err(Error::format(format!(
            "kallsyms_num_syms = {} is not plausible",
            n
        )));
    }
    let rb = read_exact(read, relative_base_va, 8, "kallsyms_relative_base")?;
    let relative_base = u64::from_le_bytes(rb.try_into().unwrap_or([0; 8]));
    let offs_raw = read_exact(read, offsets_va, n as usize * 4, "kallsyms_offsets")?;
    let offsets: Vec<i32> = offs_raw
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect();
    // Only kernels with absolute per-CPU symbols store negative offsets.
    let absolute_percpu = offsets.iter().any(|&o| o < 0);

    let idx_raw = read_exact(read, token_index, 512, "kallsyms_token_index")?;
    let tok_idx: Vec<u16> = idx_raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let tok_len = tok_idx.iter().copied().max().unwrap_or(0) as usize + 256;
    let mut table = vec![0u8; tok_len];
    let got = read(token_table, &mut table)
        .map_err(|e| Error::format(format!("kallsyms: kallsyms_token_table: {}", e)))?;
    table.truncate(got);
    let tokens: Vec<&[u8]> = tok_idx
        .iter()
        .map(|&i| {
            let rest = table.get(i as usize..).unwrap_or(&[]);
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();

    let mut s = Stream {
        read,
        base: names,
        buf: Vec::new(),
        buf_va: 0,
    };
    let mut out = Vec::with_capacity(n as usize);
    let mut pos = names;
    let mut name = Vec::with_capacity(128);
    for (i, &off) in offsets.iter().enumerate() {
        let mut len = s.byte(pos)? as usize;
        pos += 1;
        if len & 0x80 != 0 {
            len = (len & 0x7f) | ((s.byte(pos)? as usize) << 7);
            pos += 1;
        }
        name.clear();
        for _ in 0..len {
            let t = s.byte(pos)?;
            pos += 1;
            name.extend_from_slice(tokens[t as usize]);
        }
        if name.is_empty() {
            return Err(Error::format(format!(
                "kallsyms: symbol {} has an empty name (corrupt table at 0x{:x})",
                i, pos
            )));
        }
        let addr = if !absolute_percpu {
            relative_base.wrapping_add(off as u32 as u64)
        } else if off >= 0 {
            off as u64
        } else {
            relative_base
                .wrapping_sub(1)
                .wrapping_sub(off as i64 as u64)
        };
        let ty = name[0];
        let text = String::from_utf8_lossy(&name[1..]).into_owned();
        out.push((text, ty, addr));
    }
    Ok(out)
}

/// The dump's kallsyms as a symbol index (runtime addresses: displacement 0).
pub fn index(read: &mut KvaReader<'_>, info: &VmcoreInfo) -> Result<SymbolIndex> {
    let syms = decode(read, info)?;
    let mut idx = SymbolIndex::with_capacity("kallsyms in the dump", syms.len());
    for (name, ty, addr) in &syms {
        idx.insert(
            name,
            Symbol {
                value: *addr,
                n_type: nlist_type(*ty),
            },
        );
    }
    Ok(idx)
}
