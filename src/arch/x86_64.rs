//! x86_64 page tables: 4-level (48-bit) and 5-level (57-bit, LA57) walks, 2 MiB and 1 GiB
//! pages, and an enumeration of every mapped page for kvm_walk_pages.
//!
//! The walker reads page-table entries through `PhysRead`, so it works on any dump format (and
//! on fuzzed memory: every entry is untrusted; loops are bounded by the table geometry).

use crate::error::{Error, Result};

/// Physical memory of the examined machine.
pub trait PhysRead {
    /// Reads at physical address `pa`; returns the bytes read (short at the end of present
    /// memory). An unreadable first byte is an error.
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize>;
}

/// Start of the kernel text mapping (`__START_KERNEL_map`).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

const PRESENT: u64 = 1;
const RW: u64 = 1 << 1;
const PS: u64 = 1 << 7;
const NX: u64 = 1 << 63;
/// Physical-address bits 12..51 of an entry.
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Result of a translation: the physical address and the page it lies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub pa: u64,
    /// 4 KiB, 2 MiB or 1 GiB.
    pub page_size: u64,
    pub writable: bool,
    pub executable: bool,
}

/// Number of VA bits translated with `levels` levels (4 -> 48, 5 -> 57).
fn va_bits(levels: u32) -> u32 {
    12 + 9 * levels
}

/// True if `va` is canonical for the paging mode.
pub fn is_canonical(va: u64, levels: u32) -> bool {
    let bits = va_bits(levels);
    let top = (va as i64) >> (bits - 1);
    top == 0 || top == -1
}

fn read_entry(mem: &mut dyn PhysRead, pa: u64) -> Result<u64> {
    let mut b = [0u8; 8];
    match mem.read_phys(pa, &mut b)? {
        8 => Ok(u64::from_le_bytes(b)),
        _ => Err(Error::format(format!(
            "page-table entry at physical 0x{:x} is cut short",
            pa
        ))),
    }
}

/// Translates `va` through the page tables rooted at physical `root` (CR3 without flags).
pub fn translate(mem: &mut dyn PhysRead, root: u64, levels: u32, va: u64) -> Result<Translation> {
    if levels != 4 && levels != 5 {
        return Err(Error::format(format!(
            "unsupported paging depth {}",
            levels
        )));
    }
    if !is_canonical(va, levels) {
        return Err(Error::bad_address(
            va,
            format!("not a canonical {}-level paging address", levels),
        ));
    }
    let mut table = root & ADDR_MASK;
    let mut writable = true;
    let mut nx = false;
    for level in (1..=levels).rev() {
        let shift = 12 + 9 * (level - 1);
        let idx = (va >> shift) & 0x1ff;
        let pte_pa = table + idx * 8;
        let e = read_entry(mem, pte_pa).map_err(|e| {
            Error::bad_address(va, format!("cannot read level-{} page table: {}", level, e))
        })?;
        if e & PRESENT == 0 {
            return Err(Error::bad_address(
                va,
                format!("not mapped (level-{} entry not present)", level),
            ));
        }
        writable &= e & RW != 0;
        nx |= e & NX != 0;
        let leaf = level == 1 || ((level == 2 || level == 3) && e & PS != 0);
        if leaf {
            let size = 1u64 << shift;
            let base = e & ADDR_MASK & !(size - 1);
            return Ok(Translation {
                pa: base | (va & (size - 1)),
                page_size: size,
                writable,
                executable: !nx,
            });
        }
        if level >= 4 && e & PS != 0 {
            return Err(Error::bad_address(
                va,
                format!("invalid large page at level {}", level),
            ));
        }
        table = e & ADDR_MASK;
    }
    Err(Error::bad_address(va, "page walk did not end"))
}

/// One mapped page reported by `walk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub va: u64,
    pub pa: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
}

/// Sign-extends a `levels`-level address.
fn canonical(va: u64, levels: u32) -> u64 {
    let bits = va_bits(levels);
    (((va << (64 - bits)) as i64) >> (64 - bits)) as u64
}

/// Calls `cb` for every present leaf mapping whose VA lies in [lo, hi], in increasing VA
/// order. Unreadable tables are skipped (a dump may lack them). Returns false if `cb` stopped.
pub fn walk(
    mem: &mut dyn PhysRead,
    root: u64,
    levels: u32,
    lo: u64,
    hi: u64,
    cb: &mut dyn FnMut(&Mapping) -> bool,
) -> bool {
    if levels != 4 && levels != 5 {
        return true;
    }
    let ctx = WalkCtx { levels, lo, hi };
    walk_table(mem, &ctx, root & ADDR_MASK, levels, 0, true, false, cb)
}

struct WalkCtx {
    levels: u32,
    lo: u64,
    hi: u64,
}

#[allow(clippy::too_many_arguments)]
fn walk_table(
    mem: &mut dyn PhysRead,
    ctx: &WalkCtx,
    table: u64,
    level: u32,
    va_base: u64,
    writable: bool,
    nx: bool,
    cb: &mut dyn FnMut(&Mapping) -> bool,
) -> bool {
    let shift = 12 + 9 * (level - 1);
    let span = 1u64 << shift;
    let mut buf = [0u8; 4096];
    if !matches!(mem.read_phys(table, &mut buf), Ok(4096)) {
        return true;
    }
    for idx in 0..512u64 {
        let raw_va = va_base | (idx << shift);
        let va = canonical(raw_va, ctx.levels);
        let last = va.wrapping_add(span - 1);
        if last < ctx.lo || va > ctx.hi {
            continue;
        }
        let off = (idx * 8) as usize;
        let e = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap_or([0; 8]));
        if e & PRESENT == 0 {
            continue;
        }
        let w = writable && e & RW != 0;
        let x = nx || e & NX != 0;
        let leaf = level == 1 || ((level == 2 || level == 3) && e & PS != 0);
        if leaf {
            let m = Mapping {
                va,
                pa: e & ADDR_MASK & !(span - 1),
                size: span,
                writable: w,
                executable: !x,
            };
            if !cb(&m) {
                return false;
            }
        } else if level > 1
            && e & PS == 0
            && !walk_table(mem, ctx, e & ADDR_MASK, level - 1, raw_va, w, x, cb)
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fake(HashMap<u64, [u8; 4096]>);
    impl PhysRead for Fake {
        fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize> {
            let page = self
                .0
                .get(&(pa & !0xfff))
                .ok_or_else(|| Error::bad_address(pa, "absent"))?;
            let off = (pa & 0xfff) as usize;
            let n = buf.len().min(4096 - off);
            buf[..n].copy_from_slice(&page[off..off + n]);
            Ok(n)
        }
    }
    fn set(m: &mut Fake, table: u64, idx: u64, val: u64) {
        let p = m.0.entry(table).or_insert([0; 4096]);
        p[(idx * 8) as usize..(idx * 8 + 8) as usize].copy_from_slice(&val.to_le_bytes());
    }

    #[test]
    fn four_level_with_large_pages() {
        let mut m = Fake(HashMap::new());
        let va: u64 = 0xffff_ffff_8120_3456;
        // PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000 (2 MiB page at 0x4000_0000)
        set(&mut m, 0x1000, (va >> 39) & 0x1ff, 0x2000 | 3);
        set(&mut m, 0x2000, (va >> 30) & 0x1ff, 0x3000 | 3);
        set(
            &mut m,
            0x3000,
            (va >> 21) & 0x1ff,
            0x4000_0000 | PS | 1 | NX,
        );
        let t = translate(&mut m, 0x1000, 4, va).unwrap();
        assert_eq!(t.pa, 0x4000_0000 | (va & 0x1f_ffff));
        assert_eq!(t.page_size, 2 << 20);
        assert!(!t.writable && !t.executable);
        assert!(translate(&mut m, 0x1000, 4, va + (2 << 20)).is_err());
        assert!(translate(&mut m, 0x1000, 4, 0x0000_8000_0000_0000).is_err());
        let mut seen = Vec::new();
        walk(&mut m, 0x1000, 4, 0, u64::MAX, &mut |mp| {
            seen.push(*mp);
            true
        });
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].va, va & !0x1f_ffff);
    }
}
