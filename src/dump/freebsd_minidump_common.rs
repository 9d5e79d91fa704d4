//! What the FreeBSD minidump formats (amd64, arm64, i386) share: little-endian field access,
//! the section layout, dump_avail bit-id arithmetic and the bitmap of dumped pages with an O(1)
//! rank (a table of popcount prefixes), which gives each present page's file offset.
//!
//! Everything here works on byte slices of the mapped file and never trusts a size from the
//! file: every offset is computed with checked arithmetic and compared with the file length.
//!
//! Where this port departs from FreeBSD's libkvm on purpose (../shared/spec/errata.md):
//! * a physical address in a gap between dump_avail ranges is absent (libkvm aliases it to the
//!   previous range); overlapping or descending dump_avail ranges are refused;
//! * a file too short for the pages its bitmap lists is refused at open with the counts (libkvm
//!   treats the missing pages as absent);
//! * kvm_walk_pages phase 2 reports each dumped page that phase 1 did not, exactly once, with
//!   kmap_vaddr 0 (libkvm's loop revisits the phase-1 pages instead); pages beyond the direct
//!   map get dmap_vaddr 0 instead of ending the walk; amd64 v1 and i386 dumps are walked too;
//! * arm64 kp_dmap_vaddr is dmapbase + pa - dmapphys (libkvm forgets dmapphys).

use crate::abi::{KvmPage, LIBKVM_WALK_PAGES_VERSION};
use crate::error::{Error, Result};

/// Little-endian u32 at `off`, None when out of bounds.
#[inline]
pub fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Little-endian u64 at `off`, None when out of bounds.
#[inline]
pub fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// `x` rounded up to a multiple of `ps` (a power of two); None on overflow.
#[inline]
pub fn round_up(x: u64, ps: u64) -> Option<u64> {
    Some(x.checked_add(ps - 1)? & !(ps - 1))
}

/// strncmp(expected, field, field.len()) == 0, as libkvm compares the 24-byte magic.
pub fn magic_matches(field: &[u8], expected: &str) -> bool {
    let e = expected.as_bytes();
    if field.len() < e.len() || &field[..e.len()] != e {
        return false;
    }
    field.len() == e.len() || field[e.len()] == 0
}

/// A printable rendering of a magic field for messages.
pub fn show_magic(field: &[u8]) -> String {
    field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{:02x}", b)
            }
        })
        .collect()
}

/// Refuses a header shorter than `need` bytes.
pub fn check_header_len(path: &str, b: &[u8], need: usize) -> Result<()> {
    if b.len() < need {
        return Err(Error::format(format!(
            "{}: cannot read dump header ({} bytes, need {})",
            path,
            b.len(),
            need
        )));
    }
    Ok(())
}

/// Refuses a header whose 24-byte magic field is not `magic` (`b` holds at least 24 bytes).
pub fn check_magic(path: &str, b: &[u8], magic: &str) -> Result<()> {
    if !magic_matches(&b[..24], magic) {
        return Err(Error::format(format!(
            "{}: not a minidump for this platform (magic \"{}\", expected \"{}\")",
            path,
            show_magic(&b[..24]),
            magic
        )));
    }
    Ok(())
}

/// Refuses a version outside 1..=`max`, with libkvm's amd64/i386 message.
pub fn check_version(path: &str, version: u32, max: u32) -> Result<()> {
    if !(1..=max).contains(&version) {
        return Err(Error::format(format!(
            "{}: wrong minidump version. expected {} got {}",
            path, max, version
        )));
    }
    Ok(())
}

/// Byte ranges of a minidump's sections. Each section starts on a page boundary.
#[derive(Clone, Debug)]
pub struct Sections {
    pub page_size: u64,
    pub msgbuf_off: u64,
    pub msgbuf_size: u64,
    pub dump_avail_off: u64,
    pub dump_avail_size: u64,
    pub bitmap_off: u64,
    pub bitmap_size: u64,
    pub pmap_off: u64,
    pub pmap_size: u64,
    pub sparse_off: u64,
}

impl Sections {
    /// Lays out header page, msgbuf, dump_avail, bitmap, page map and page data, and checks that
    /// everything before the page data lies inside the file.
    pub fn new(
        path: &str,
        file_len: u64,
        page_size: u64,
        msgbufsize: u64,
        dumpavailsize: u64,
        bitmapsize: u64,
        pmapsize: u64,
    ) -> Result<Sections> {
        let overflow = || Error::format(format!("{}: minidump section sizes overflow", path));
        let msgbuf_off = page_size;
        let dump_avail_off = msgbuf_off
            .checked_add(round_up(msgbufsize, page_size).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let bitmap_off = dump_avail_off
            .checked_add(round_up(dumpavailsize, page_size).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let pmap_off = bitmap_off
            .checked_add(round_up(bitmapsize, page_size).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let sparse_off = pmap_off
            .checked_add(round_up(pmapsize, page_size).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        let s = Sections {
            page_size,
            msgbuf_off,
            msgbuf_size: msgbufsize,
            dump_avail_off,
            dump_avail_size: dumpavailsize,
            bitmap_off,
            bitmap_size: bitmapsize,
            pmap_off,
            pmap_size: pmapsize,
            sparse_off,
        };
        for (name, off, len) in [
            ("msgbuf", s.msgbuf_off, s.msgbuf_size),
            ("dump_avail", s.dump_avail_off, s.dump_avail_size),
            ("bitmap", s.bitmap_off, s.bitmap_size),
            ("page map", s.pmap_off, s.pmap_size),
        ] {
            let end = off.checked_add(len).ok_or_else(overflow)?;
            if end > file_len {
                return Err(Error::format(format!(
                    "{}: truncated minidump: {} ({} bytes at offset {}) extends past the end of the file ({} bytes)",
                    path, name, len, off, file_len
                )));
            }
        }
        Ok(s)
    }

    /// The section's bytes (bounds were checked in `new`).
    pub fn slice<'a>(&self, file: &'a [u8], off: u64, len: u64) -> &'a [u8] {
        let start = (off as usize).min(file.len());
        let end = (off.saturating_add(len) as usize).min(file.len());
        &file[start..end]
    }
}

/// One dump_avail range, in pages: bit-ids `first_bit ..first_bit + npages` stand for the
/// physical pages `start_page ..start_page + npages`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvailRange {
    pub start_page: u64,
    pub npages: u64,
    pub first_bit: u64,
}

/// dump_avail: the physical ranges whose pages are numbered consecutively by bit-ids.
#[derive(Clone, Debug)]
pub struct DumpAvail {
    ranges: Vec<AvailRange>,
    page_shift: u32,
}

impl DumpAvail {
    /// Parses the kernel's `vm_paddr_t dump_avail[]` (pairs of little-endian u64 [start, end),
    /// ended by a pair whose end is 0 or by the end of the section).
    pub fn parse(path: &str, bytes: &[u8], page_size: u64) -> Result<DumpAvail> {
        let page_shift = page_size.trailing_zeros();
        let mut ranges = Vec::new();
        let mut next_bit: u64 = 0;
        let mut i = 0usize;
        while let (Some(start), Some(end)) = (le64(bytes, i), le64(bytes, i + 8)) {
            if end == 0 {
                break;
            }
            let first = start >> page_shift;
            let last = end.div_ceil(page_size);
            if last < first {
                return Err(Error::format(format!(
                    "{}: dump_avail entry {} is inverted (start 0x{:x}, end 0x{:x})",
                    path,
                    i / 16,
                    start,
                    end
                )));
            }
            let npages = last - first;
            if let Some(prev) = ranges.last() {
                let prev: &AvailRange = prev;
                if prev.start_page + prev.npages > first {
                    // Overlapping or descending ranges would give one page two bit-ids.
                    return Err(Error::format(format!(
                        "{}: dump_avail entry {} (start 0x{:x}) overlaps or precedes the previous range",
                        path,
                        i / 16,
                        start
                    )));
                }
            }
            ranges.push(AvailRange {
                start_page: first,
                npages,
                first_bit: next_bit,
            });
            next_bit = next_bit.checked_add(npages).ok_or_else(|| {
                Error::format(format!("{}: dump_avail page count overflows", path))
            })?;
            i += 16;
        }
        Ok(Self::from_ranges(ranges, page_shift))
    }

    /// What libkvm assumes for dumps without dump_avail: one range from 0 covering the bitmap.
    pub fn implied(nbits: u64, page_size: u64) -> DumpAvail {
        Self::from_ranges(
            vec![AvailRange {
                start_page: 0,
                npages: nbits,
                first_bit: 0,
            }],
            page_size.trailing_zeros(),
        )
    }

    /// `ranges` are ascending and disjoint (checked by `parse`).
    fn from_ranges(ranges: Vec<AvailRange>, page_shift: u32) -> DumpAvail {
        DumpAvail { ranges, page_shift }
    }

    pub fn ranges(&self) -> &[AvailRange] {
        &self.ranges
    }

    /// Bit-id of the page holding `pa` (binary search over the ranges); None for addresses
    /// outside every range, including the gaps between ranges, which libkvm would alias to the
    /// previous range.
    #[inline]
    pub fn bit_id(&self, pa: u64) -> Option<u64> {
        let pn = pa >> self.page_shift;
        let i = self.ranges.partition_point(|r| r.start_page <= pn);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        let rel = pn.checked_sub(r.start_page)?;
        (rel < r.npages).then(|| r.first_bit + rel)
    }

    /// Physical address of bit-id `bit` (inverse of `bit_id`).
    pub fn pa_of_bit(&self, bit: u64) -> Option<u64> {
        let i = self.ranges.partition_point(|r| r.first_bit <= bit);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        let rel = bit - r.first_bit;
        if rel >= r.npages {
            return None;
        }
        r.start_page
            .checked_add(rel)?
            .checked_mul(1u64 << self.page_shift)
    }
}

/// Words per rank-table bin: rank = bins[w / BIN_WORDS] + popcounts of at most 7 words + 1.
const BIN_WORDS: usize = 8;

/// The bitmap of dumped pages with a popcount prefix table for O(1) rank.
#[derive(Clone, Debug)]
pub struct PageBitmap {
    words: Vec<u64>,
    nbits: u64,
    /// bins[k] = number of set bits in words[0 .. k*BIN_WORDS].
    bins: Vec<u64>,
    total: u64,
}

impl PageBitmap {
    /// `bytes`: bit i is bit i%8 of byte i/8 (equivalently of little-endian 64-bit words).
    pub fn new(bytes: &[u8]) -> PageBitmap {
        let mut words = Vec::with_capacity(bytes.len().div_ceil(8));
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            words.push(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            words.push(u64::from_le_bytes(w));
        }
        let mut bins = Vec::with_capacity(words.len() / BIN_WORDS + 2);
        let mut total = 0u64;
        for (i, w) in words.iter().enumerate() {
            if i % BIN_WORDS == 0 {
                bins.push(total);
            }
            total += w.count_ones() as u64;
        }
        bins.push(total);
        PageBitmap {
            words,
            nbits: bytes.len() as u64 * 8,
            bins,
            total,
        }
    }

    pub fn nbits(&self) -> u64 {
        self.nbits
    }

    /// Number of set bits.
    pub fn count(&self) -> u64 {
        self.total
    }

    #[inline]
    pub fn is_set(&self, bit: u64) -> bool {
        bit < self.nbits && self.words[(bit / 64) as usize] & (1u64 << (bit % 64)) != 0
    }

    /// Number of set bits below `bit` (bit < nbits).
    #[inline]
    pub fn rank(&self, bit: u64) -> u64 {
        let w = (bit / 64) as usize;
        let bin = w / BIN_WORDS;
        let mut r = self.bins[bin];
        for x in &self.words[bin * BIN_WORDS..w] {
            r += x.count_ones() as u64;
        }
        let mask = (1u64 << (bit % 64)) - 1;
        r + (self.words[w] & mask).count_ones() as u64
    }

    /// Set bits in increasing order.
    pub fn iter_set(&self) -> impl Iterator<Item = u64> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as u64;
                w &= w - 1;
                Some(i as u64 * 64 + b)
            })
        })
    }
}

/// Physical page -> file offset for a minidump: dump_avail, bitmap rank and the page-data base.
#[derive(Clone, Debug)]
pub struct PageIndex {
    pub page_size: u64,
    pub avail: DumpAvail,
    pub bitmap: PageBitmap,
    pub sparse_off: u64,
}

impl PageIndex {
    /// Builds the index and checks that every page the bitmap lists is in the file.
    pub fn new(
        path: &str,
        file_len: u64,
        s: &Sections,
        file: &[u8],
        use_dump_avail: bool,
    ) -> Result<PageIndex> {
        let bitmap = PageBitmap::new(s.slice(file, s.bitmap_off, s.bitmap_size));
        let avail = if use_dump_avail && s.dump_avail_size > 0 {
            DumpAvail::parse(
                path,
                s.slice(file, s.dump_avail_off, s.dump_avail_size),
                s.page_size,
            )?
        } else {
            DumpAvail::implied(bitmap.nbits(), s.page_size)
        };
        let need = bitmap
            .count()
            .checked_mul(s.page_size)
            .and_then(|n| n.checked_add(s.sparse_off))
            .ok_or_else(|| Error::format(format!("{}: page data size overflows", path)))?;
        if need > file_len {
            return Err(Error::format(format!(
                "{}: truncated minidump: the bitmap lists {} pages ({} bytes from offset {}) but the file has {} bytes",
                path,
                bitmap.count(),
                bitmap.count() * s.page_size,
                s.sparse_off,
                file_len
            )));
        }
        Ok(PageIndex {
            page_size: s.page_size,
            avail,
            bitmap,
            sparse_off: s.sparse_off,
        })
    }

    /// File offset of the start of the dumped page holding `pa`, None when not dumped.
    #[inline]
    pub fn offset_of(&self, pa: u64) -> Option<u64> {
        let bit = self.avail.bit_id(pa)?;
        if !self.bitmap.is_set(bit) {
            return None;
        }
        Some(self.sparse_off + self.bitmap.rank(bit) * self.page_size)
    }

    /// kp_offset for walk_pages: the offset, or -1 when absent.
    pub fn kp_offset(&self, pa: u64) -> i64 {
        self.offset_of(pa).map_or(-1, |o| o as i64)
    }
}

/// Copies kernel memory at `va` out of the mapped file, chunk by chunk, with `translate`
/// giving (file offset, bytes valid from there) for an address. A translation failure anywhere
/// fails the whole read (kvm_read returns -1 then, even after some pages were copied); data
/// cut short by the end of the file gives a short count.
pub fn read_chunks(
    file: &[u8],
    va: u64,
    buf: &mut [u8],
    mut translate: impl FnMut(u64) -> Result<(u64, u64)>,
) -> Result<usize> {
    let mut done = 0usize;
    while done < buf.len() {
        let cur = va
            .checked_add(done as u64)
            .ok_or_else(|| Error::bad_address(va, "address range wraps around"))?;
        let (off, valid) = translate(cur)?;
        let want = (buf.len() - done).min(valid.min(usize::MAX as u64) as usize);
        let start = off.min(file.len() as u64) as usize;
        let avail = file.len() - start;
        let n = want.min(avail);
        buf[done..done + n].copy_from_slice(&file[start..start + n]);
        done += n;
        if n < want || n == 0 {
            break;
        }
    }
    Ok(done)
}

/// Builds a kvm_page record.
pub fn page(pa: u64, kva: u64, dva: u64, prot: u8, offset: i64, len: u64) -> KvmPage {
    KvmPage {
        kp_version: LIBKVM_WALK_PAGES_VERSION,
        kp_paddr: pa,
        kp_kmap_vaddr: kva,
        kp_dmap_vaddr: dva,
        kp_prot: prot,
        kp_offset: offset,
        kp_len: len,
    }
}

/// Marks which bit-ids phase 1 of kvm_walk_pages reported, so phase 2 reports each remaining
/// dumped page exactly once.
pub struct Marker {
    words: Vec<u64>,
}

impl Marker {
    pub fn new(nbits: u64) -> Marker {
        Marker {
            words: vec![0; nbits.div_ceil(64) as usize],
        }
    }

    pub fn mark(&mut self, bit: u64) {
        if let Some(w) = self.words.get_mut((bit / 64) as usize) {
            *w |= 1u64 << (bit % 64);
        }
    }

    pub fn marked(&self, bit: u64) -> bool {
        self.words
            .get((bit / 64) as usize)
            .is_some_and(|w| w & (1u64 << (bit % 64)) != 0)
    }
}

/// Phase 2 of kvm_walk_pages: every dumped page not reported in phase 1, ascending, with no
/// kernel-map address; `dmap` gives the direct-map address of a physical address (0 if none).
pub fn walk_remaining(
    idx: &PageIndex,
    marker: &Marker,
    dmap: impl Fn(u64) -> u64,
    prot: u8,
    cb: &mut dyn FnMut(&KvmPage) -> bool,
) -> bool {
    for (rank, bit) in idx.bitmap.iter_set().enumerate() {
        if marker.marked(bit) {
            continue;
        }
        let Some(pa) = idx.avail.pa_of_bit(bit) else {
            // Bits past the last dump_avail range stand for no physical page.
            break;
        };
        let off = idx.sparse_off + rank as u64 * idx.page_size;
        if !cb(&page(pa, 0, dmap(pa), prot, off as i64, idx.page_size)) {
            return false;
        }
    }
    true
}

/// Any file starting with "minidump" (FreeBSD's own test for a minidump).
pub fn probe_any(head: &[u8]) -> bool {
    head.starts_with(b"minidump")
}

/// Open for minidumps of platforms this library does not read: a message naming the platform.
pub fn open_unsupported(
    _file: std::fs::File,
    path: &std::path::Path,
    _flags: i32,
    _syms: &mut dyn crate::backend::SymbolLookup,
) -> Result<Box<dyn crate::backend::Backend>> {
    let mut head = [0u8; 24];
    let n = {
        use std::os::unix::fs::FileExt;
        _file.read_at(&mut head, 0).unwrap_or(0)
    };
    Err(Error::unsupported(format!(
        "{}: not a minidump for a supported platform (magic \"{}\"; supported: amd64, arm64, i386)",
        path.display(),
        show_magic(&head[..n])
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_matches_naive_count() {
        let mut bytes = vec![0u8; 200];
        let mut x = 0x1234_5678u32;
        for b in bytes.iter_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
        let bm = PageBitmap::new(&bytes);
        let mut naive = 0;
        for bit in 0..bm.nbits() {
            assert_eq!(bm.rank(bit), naive, "rank of bit {}", bit);
            if bytes[(bit / 8) as usize] & (1 << (bit % 8)) != 0 {
                assert!(bm.is_set(bit));
                naive += 1;
            } else {
                assert!(!bm.is_set(bit));
            }
        }
        assert_eq!(bm.count(), naive);
        assert_eq!(bm.iter_set().count() as u64, naive);
    }

    #[test]
    fn dump_avail_ids_skip_gaps() {
        let mut b = Vec::new();
        for v in [0u64, 0x9f000, 0x100000, 0x200000, 0, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let da = DumpAvail::parse("t", &b, 4096).unwrap();
        assert_eq!(da.bit_id(0), Some(0));
        assert_eq!(da.bit_id(0x9e123), Some(0x9e));
        assert_eq!(da.bit_id(0xa0000), None, "gap address must be absent");
        assert_eq!(da.bit_id(0x100000), Some(0x9f));
        assert_eq!(da.bit_id(0x1ff000), Some(0x9f + 0xff));
        assert_eq!(da.bit_id(0x200000), None);
        for bit in 0..(0x9f + 0x100) {
            let pa = da.pa_of_bit(bit).unwrap();
            assert_eq!(da.bit_id(pa), Some(bit));
        }
        assert_eq!(da.pa_of_bit(0x9f + 0x100), None);
        let mut bad = Vec::new();
        for v in [0x100000u64, 0x200000, 0x1ff000, 0x300000, 0, 0] {
            bad.extend_from_slice(&v.to_le_bytes());
        }
        let e = DumpAvail::parse("t", &bad, 4096).unwrap_err().to_string();
        assert!(
            e.contains("dump_avail entry 1") && e.contains("overlaps"),
            "{}",
            e
        );
    }

    #[test]
    fn magic_compare_is_strncmp() {
        let mut f = [0u8; 24];
        f[..22].copy_from_slice(b"minidump FreeBSD/amd64");
        assert!(magic_matches(&f, "minidump FreeBSD/amd64"));
        f[22] = b'x';
        assert!(!magic_matches(&f, "minidump FreeBSD/amd64"));
        assert!(!magic_matches(&f, "minidump FreeBSD/arm64"));
    }
}
