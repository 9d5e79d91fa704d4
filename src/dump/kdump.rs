//! kdump-compressed ("diskdump") files as written by makedumpfile and QEMU.
//!
//! Layout, in blocks of `block_size` bytes: block 0 = `disk_dump_header` ("KDUMP   "),
//! then `sub_hdr_size` blocks of `kdump_sub_header` (phys_base, VMCOREINFO and note offsets),
//! then `bitmap_blocks` blocks holding two bitmaps of equal size (1st: pages that exist in
//! memory, 2nd: pages that were dumped), then one 24-byte page descriptor per set bit of the
//! 2nd bitmap in pfn order, then page data. A page that exists but is not dumped was excluded
//! by the dump filter: reads of it fail and say so (they are not zeros).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use crate::dump::mapped::Mapped;
use crate::dump::physmem::PhysMem;
use crate::error::{Error, Result};

pub const SIGNATURE: &[u8; 8] = b"KDUMP   ";

pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;
const COMPRESSED_ANY: u32 = DUMP_DH_COMPRESSED_ZLIB
    | DUMP_DH_COMPRESSED_LZO
    | DUMP_DH_COMPRESSED_SNAPPY
    | DUMP_DH_COMPRESSED_ZSTD;

/// Size of one page descriptor on disk.
pub const PAGE_DESC_SIZE: u64 = 24;

/// Environment variable setting the decompressed-page cache size (in pages).
pub const CACHE_ENV: &str = "LIBKVM_KDUMP_CACHE_PAGES";
pub const DEFAULT_CACHE_PAGES: usize = 4096;

/// The bytes of a kdump file: the plain file, or a flattened file's index.
pub trait ByteSource: Send {
    /// Logical length of the kdump file.
    fn len(&self) -> u64;
    /// The bytes [off, off+len): borrowed when contiguous. None past the end.
    fn get(&self, off: u64, len: usize) -> Option<Cow<'_, [u8]>>;
    /// Offset in the real file of logical offset `off` (for kvm_walk_pages' kp_offset).
    fn file_offset(&self, off: u64) -> Option<u64>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A plain (reassembled) kdump file: logical offsets are file offsets.
pub struct Plain(pub Mapped);

impl ByteSource for Plain {
    fn len(&self) -> u64 {
        self.0.bytes().len() as u64
    }
    fn get(&self, off: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let off = usize::try_from(off).ok()?;
        self.0
            .bytes()
            .get(off..off.checked_add(len)?)
            .map(Cow::Borrowed)
    }
    fn file_offset(&self, off: u64) -> Option<u64> {
        (off < self.len()).then_some(off)
    }
}

/// A kdump file held in memory (fuzzing, tests of small synthetic files).
pub struct InMemory(pub Vec<u8>);

impl ByteSource for InMemory {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn get(&self, off: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let off = usize::try_from(off).ok()?;
        self.0.get(off..off.checked_add(len)?).map(Cow::Borrowed)
    }
    fn file_offset(&self, off: u64) -> Option<u64> {
        (off < self.len()).then_some(off)
    }
}

fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4])))
        .unwrap_or(0)
}
fn le64(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// The parsed `disk_dump_header` and `kdump_sub_header` (x86_64 layout).
#[derive(Clone, Debug, Default)]
pub struct KdumpHeader {
    pub header_version: i32,
    pub machine: String,
    pub status: u32,
    pub block_size: u64,
    pub sub_hdr_size: u64,
    pub bitmap_blocks: u64,
    pub max_mapnr: u64,
    pub nr_cpus: i32,
    /// As written (QEMU writes a wrong value: VMCOREINFO's NUMBER(phys_base) is preferred).
    pub sub_phys_base: u64,
    pub dump_level: i32,
    pub split: i32,
    pub offset_vmcoreinfo: u64,
    pub size_vmcoreinfo: u64,
}

impl KdumpHeader {
    pub fn bitmap_offset(&self) -> u64 {
        (1 + self.sub_hdr_size) * self.block_size
    }
    /// Bytes of one bitmap (half of the bitmap blocks).
    pub fn bitmap_len(&self) -> u64 {
        self.bitmap_blocks * self.block_size / 2
    }
    pub fn desc_offset(&self) -> u64 {
        (1 + self.sub_hdr_size + self.bitmap_blocks) * self.block_size
    }
}

/// Parses the header block and the sub-header. `block0` holds the file's first bytes (at least
/// 464), `sub` the bytes at offset `block_size` (the sub-header; may be short or empty).
/// Validates everything later code relies on, with checked arithmetic.
pub fn parse_header(block0: &[u8], sub_at: &dyn Fn(u64) -> Option<Vec<u8>>) -> Result<KdumpHeader> {
    if block0.len() < 464 || &block0[..8] != SIGNATURE {
        return Err(Error::format(
            "kdump: missing \"KDUMP   \" signature or header shorter than 464 bytes",
        ));
    }
    let header_version = le32(block0, 8) as i32;
    if !(1..=64).contains(&header_version) {
        return Err(Error::format(format!(
            "kdump: header_version {} is not plausible (corrupt or big-endian header?)",
            header_version
        )));
    }
    // utsname: 6 fields of 65 bytes from offset 12; machine is the 5th.
    let m = &block0[12 + 4 * 65..12 + 5 * 65];
    let machine =
        String::from_utf8_lossy(&m[..m.iter().position(|&c| c == 0).unwrap_or(65)]).into_owned();
    // After utsname (ends at 402) comes an 8-aligned struct timeval (16 bytes) at 408.
    let status = le32(block0, 424);
    let block_size = le32(block0, 428) as i32;
    let sub_hdr_size = le32(block0, 432) as i32;
    let bitmap_blocks = le32(block0, 436) as u64;
    let max_mapnr32 = le32(block0, 440) as u64;
    let nr_cpus = le32(block0, 460) as i32;
    if block_size != 4096 {
        return Err(Error::format(format!(
            "kdump: block_size {} is not supported (x86_64 dumps use 4096)",
            block_size
        )));
    }
    if !(0..=1 << 20).contains(&sub_hdr_size) {
        return Err(Error::format(format!(
            "kdump: sub_hdr_size {} is not plausible",
            sub_hdr_size
        )));
    }
    let mut h = KdumpHeader {
        header_version,
        machine,
        status,
        block_size: block_size as u64,
        sub_hdr_size: sub_hdr_size as u64,
        bitmap_blocks,
        max_mapnr: max_mapnr32,
        nr_cpus,
        ..Default::default()
    };
    if bitmap_blocks == 0 || !bitmap_blocks.is_multiple_of(2) {
        return Err(Error::format(format!(
            "kdump: bitmap_blocks {} is not a positive even number",
            bitmap_blocks
        )));
    }
    if sub_hdr_size > 0 {
        let sub = sub_at(h.block_size).unwrap_or_default();
        if sub.len() < 32 {
            return Err(Error::format(
                "kdump: the sub-header lies beyond the end of the file",
            ));
        }
        h.sub_phys_base = le64(&sub, 0);
        h.dump_level = le32(&sub, 8) as i32;
        h.split = le32(&sub, 12) as i32;
        if header_version >= 3 {
            h.offset_vmcoreinfo = le64(&sub, 32);
            h.size_vmcoreinfo = le64(&sub, 40);
        }
        if header_version >= 6 {
            let m64 = le64(&sub, 96);
            if m64 != 0 {
                h.max_mapnr = m64;
            }
        }
    }
    let bits = h
        .bitmap_len()
        .checked_mul(8)
        .ok_or_else(|| Error::format("kdump: bitmap size overflows"))?;
    if h.max_mapnr == 0 || h.max_mapnr > bits {
        return Err(Error::format(format!(
            "kdump: max_mapnr {} does not fit the bitmap of {} bits",
            h.max_mapnr, bits
        )));
    }
    Ok(h)
}

/// A decompressed-page cache of bounded size with CLOCK replacement. Slots are allocated on
/// first use, so a small working set costs little memory.
struct PageCache {
    cap: usize,
    page: usize,
    data: Vec<u8>,
    tags: Vec<u64>,
    referenced: Vec<bool>,
    map: HashMap<u64, u32>,
    hand: usize,
}

impl PageCache {
    fn new(cap: usize, page: usize) -> Self {
        PageCache {
            cap: cap.max(1),
            page,
            data: Vec::new(),
            tags: Vec::new(),
            referenced: Vec::new(),
            map: HashMap::new(),
            hand: 0,
        }
    }

    fn get(&mut self, pfn: u64) -> Option<usize> {
        let s = *self.map.get(&pfn)? as usize;
        self.referenced[s] = true;
        Some(s)
    }

    /// A slot for `pfn` (evicting another page if full). The caller fills it.
    fn alloc(&mut self, pfn: u64) -> usize {
        let s = if self.tags.len() < self.cap {
            self.tags.push(pfn);
            self.referenced.push(true);
            self.data.resize(self.data.len() + self.page, 0);
            self.tags.len() - 1
        } else {
            loop {
                let h = self.hand;
                self.hand = (self.hand + 1) % self.cap;
                if self.referenced[h] {
                    self.referenced[h] = false;
                } else {
                    self.map.remove(&self.tags[h]);
                    self.tags[h] = pfn;
                    self.referenced[h] = true;
                    break h;
                }
            }
        };
        self.map.insert(pfn, s as u32);
        s
    }

    fn forget(&mut self, pfn: u64) {
        self.map.remove(&pfn);
    }

    fn slot(&self, s: usize) -> &[u8] {
        &self.data[s * self.page..(s + 1) * self.page]
    }
}

/// A page descriptor.
#[derive(Clone, Copy, Debug)]
pub struct PageDesc {
    pub offset: u64,
    pub size: u32,
    pub flags: u32,
}

/// Physical memory of a kdump-compressed file.
pub struct KdumpMem<S: ByteSource> {
    src: S,
    pub header: KdumpHeader,
    /// Number of dumped pages before each 512-bit group of the 2nd bitmap.
    rank: Vec<u64>,
    cache: PageCache,
    zlib: flate2::Decompress,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    label: &'static str,
}

/// What the opener needs besides the memory.
pub struct KdumpParts<S: ByteSource> {
    pub mem: KdumpMem<S>,
    pub vmcoreinfo: Option<Vec<u8>>,
}

fn cache_pages() -> usize {
    std::env::var(CACHE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_CACHE_PAGES)
}

/// Opens kdump data from `src`. `label` names the container ("kdump-compressed" or
/// "flattened kdump") for messages.
pub fn open_source<S: ByteSource>(
    src: S,
    path: &Path,
    label: &'static str,
) -> Result<KdumpParts<S>> {
    let p = path.display();
    let block0 = src
        .get(0, 4096.min(src.len() as usize))
        .ok_or_else(|| Error::format(format!("{}: cannot read the kdump header", p)))?
        .into_owned();
    let h = parse_header(&block0, &|off| {
        let n = 4096u64.min(src.len().saturating_sub(off)) as usize;
        src.get(off, n).map(|c| c.into_owned())
    })
    .map_err(|e| Error::format(format!("{}: {}", p, e)))?;
    if h.split != 0 {
        return Err(Error::format(format!(
            "{}: split kdump files (makedumpfile --split) are not supported",
            p
        )));
    }
    if !h.machine.is_empty() && h.machine != "x86_64" {
        return Err(Error::format(format!(
            "{}: kdump of machine \"{}\" is not supported (only x86_64)",
            p, h.machine
        )));
    }
    let bm_end = h
        .desc_offset()
        .checked_add(0)
        .filter(|&e| e <= src.len())
        .ok_or_else(|| {
            Error::format(format!(
                "{}: the bitmaps end at 0x{:x}, beyond the end of the file (0x{:x} bytes): truncated dump?",
                p,
                h.desc_offset(),
                src.len()
            ))
        })?;
    let _ = bm_end;
    // Rank index over the 2nd bitmap, built from the bitmap in one pass.
    let words = h.max_mapnr.div_ceil(64);
    let bm2 = src
        .get(h.bitmap_offset() + h.bitmap_len(), (words * 8) as usize)
        .ok_or_else(|| Error::format(format!("{}: cannot read the 2nd bitmap", p)))?;
    let mut rank = Vec::with_capacity(words.div_ceil(8) as usize + 1);
    let mut total = 0u64;
    for (i, w) in bm2.chunks_exact(8).enumerate() {
        if i % 8 == 0 {
            rank.push(total);
        }
        total += u64::from_le_bytes(w.try_into().unwrap_or([0; 8])).count_ones() as u64;
    }
    rank.push(total);
    drop(bm2);
    let desc_end = h
        .desc_offset()
        .checked_add(total.saturating_mul(PAGE_DESC_SIZE));
    if desc_end.is_none_or(|e| e > src.len()) {
        return Err(Error::format(format!(
            "{}: {} page descriptors from 0x{:x} do not fit in the file (0x{:x} bytes): truncated dump?",
            p,
            total,
            h.desc_offset(),
            src.len()
        )));
    }
    let vmcoreinfo = if h.size_vmcoreinfo > 0 && h.size_vmcoreinfo < (1 << 20) {
        src.get(h.offset_vmcoreinfo, h.size_vmcoreinfo as usize)
            .map(|c| c.into_owned())
    } else {
        None
    };
    let mem = KdumpMem {
        cache: PageCache::new(cache_pages(), h.block_size as usize),
        rank,
        header: h,
        src,
        zlib: flate2::Decompress::new(true),
        zstd: None,
        label,
    };
    Ok(KdumpParts { mem, vmcoreinfo })
}

impl<S: ByteSource> KdumpMem<S> {
    fn bm_word(&self, second: bool, w: u64) -> u64 {
        let base = self.header.bitmap_offset() + if second { self.header.bitmap_len() } else { 0 };
        self.src
            .get(base + w * 8, 8)
            .map(|c| u64::from_le_bytes(c[..8].try_into().unwrap_or([0; 8])))
            .unwrap_or(0)
    }

    fn bit(&self, second: bool, pfn: u64) -> bool {
        self.bm_word(second, pfn / 64) >> (pfn % 64) & 1 == 1
    }

    /// Descriptor of a dumped page, or an error saying why the page is not there.
    pub fn desc(&self, pfn: u64) -> Result<PageDesc> {
        let pa = pfn * self.header.block_size;
        if pfn >= self.header.max_mapnr {
            return Err(Error::bad_address(
                pa,
                format!(
                    "physical address 0x{:x} is beyond the dump (max_mapnr {})",
                    pa, self.header.max_mapnr
                ),
            ));
        }
        if !self.bit(true, pfn) {
            let why = if self.bit(false, pfn) {
                format!(
                    "physical page 0x{:x} was excluded from the dump (filtered out, dump_level {})",
                    pa, self.header.dump_level
                )
            } else {
                format!(
                    "physical address 0x{:x} not in the dump (no memory there)",
                    pa
                )
            };
            return Err(Error::bad_address(pa, why));
        }
        let w = pfn / 64;
        let mut r = self.rank[(w / 8) as usize];
        for i in (w / 8) * 8..w {
            r += self.bm_word(true, i).count_ones() as u64;
        }
        r += (self.bm_word(true, w) & ((1u64 << (pfn % 64)) - 1)).count_ones() as u64;
        let off = self.header.desc_offset() + r * PAGE_DESC_SIZE;
        let d = self
            .src
            .get(off, PAGE_DESC_SIZE as usize)
            .ok_or_else(|| Error::bad_address(pa, "page descriptor beyond the end of the file"))?;
        let desc = PageDesc {
            offset: le64(&d, 0),
            size: le32(&d, 8),
            flags: le32(&d, 12),
        };
        if desc.offset == 0 && desc.size == 0 {
            return Err(Error::bad_address(
                pa,
                format!("physical page 0x{:x} was not written (incomplete dump)", pa),
            ));
        }
        Ok(desc)
    }

    fn codec(flags: u32) -> &'static str {
        match flags & COMPRESSED_ANY {
            DUMP_DH_COMPRESSED_ZLIB => "zlib",
            DUMP_DH_COMPRESSED_LZO => "lzo",
            DUMP_DH_COMPRESSED_SNAPPY => "snappy",
            DUMP_DH_COMPRESSED_ZSTD => "zstd",
            _ => "unknown",
        }
    }

    /// Decompresses page `pfn` (descriptor `d`) into the cache; returns the slot.
    fn load(&mut self, pfn: u64, d: PageDesc) -> Result<usize> {
        let bs = self.header.block_size as usize;
        let pa = pfn * bs as u64;
        let bad = |why: String| Error::bad_address(pa, why);
        if d.size as usize > bs || d.size == 0 {
            return Err(bad(format!(
                "page descriptor of physical 0x{:x} has size {} (block size {})",
                pa, d.size, bs
            )));
        }
        let input = self.src.get(d.offset, d.size as usize).ok_or_else(|| {
            bad(format!(
                "data of physical page 0x{:x} (offset 0x{:x}, {} bytes) is beyond the end of the file",
                pa, d.offset, d.size
            ))
        })?;
        let slot = self.cache.alloc(pfn);
        let out = &mut self.cache.data[slot * bs..(slot + 1) * bs];
        let res: std::result::Result<usize, String> = match d.flags & COMPRESSED_ANY {
            0 => {
                if d.size as usize == bs {
                    out.copy_from_slice(&input);
                    Ok(bs)
                } else {
                    Err(format!("uncompressed page of {} bytes", d.size))
                }
            }
            DUMP_DH_COMPRESSED_ZLIB => {
                self.zlib.reset(true);
                match self
                    .zlib
                    .decompress(&input, out, flate2::FlushDecompress::Finish)
                {
                    Ok(_) => Ok(self.zlib.total_out() as usize),
                    Err(e) => Err(e.to_string()),
                }
            }
            DUMP_DH_COMPRESSED_LZO => crate::dump::lzo::decompress(&input, out),
            DUMP_DH_COMPRESSED_SNAPPY => match snap::raw::decompress_len(&input) {
                Ok(n) if n == bs => snap::raw::Decoder::new()
                    .decompress(&input, out)
                    .map_err(|e| e.to_string()),
                Ok(n) => Err(format!("snappy length {}", n)),
                Err(e) => Err(e.to_string()),
            },
            DUMP_DH_COMPRESSED_ZSTD => {
                if self.zstd.is_none() {
                    self.zstd = zstd::bulk::Decompressor::new().ok();
                }
                match self.zstd.as_mut() {
                    Some(z) => z
                        .decompress_to_buffer(&input[..], out)
                        .map_err(|e| e.to_string()),
                    None => Err("cannot create a zstd decompressor".into()),
                }
            }
            f => Err(format!("unknown compression flags 0x{:x}", f)),
        };
        match res {
            Ok(n) if n == bs => Ok(slot),
            Ok(n) => {
                self.cache.forget(pfn);
                Err(bad(format!(
                    "physical page 0x{:x}: {} data decompressed to {} bytes, not {}",
                    pa,
                    Self::codec(d.flags),
                    n,
                    bs
                )))
            }
            Err(e) => {
                self.cache.forget(pfn);
                Err(bad(format!(
                    "physical page 0x{:x}: corrupt {} data at file offset 0x{:x}: {}",
                    pa,
                    Self::codec(d.flags),
                    d.offset,
                    e
                )))
            }
        }
    }
}

impl<S: ByteSource> PhysMem for KdumpMem<S> {
    fn format_name(&self) -> String {
        self.label.to_string()
    }

    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize> {
        let bs = self.header.block_size;
        let mut done = 0usize;
        while done < buf.len() {
            let cur = pa.wrapping_add(done as u64);
            let pfn = cur / bs;
            let in_page = (cur % bs) as usize;
            let n = (bs as usize - in_page).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            let r = if let Some(s) = self.cache.get(pfn) {
                dst.copy_from_slice(&self.cache.slot(s)[in_page..in_page + n]);
                Ok(())
            } else {
                match self.desc(pfn) {
                    Err(e) => Err(e),
                    Ok(d) if d.flags & COMPRESSED_ANY == 0 && d.size as u64 == bs => {
                        // Stored uncompressed: copy straight from the file.
                        match self.src.get(d.offset + in_page as u64, n) {
                            Some(src) => {
                                dst.copy_from_slice(&src);
                                Ok(())
                            }
                            None => Err(Error::bad_address(
                                cur,
                                format!(
                                    "data of physical 0x{:x} is beyond the end of the file",
                                    cur
                                ),
                            )),
                        }
                    }
                    Ok(d) => self.load(pfn, d).map(|s| {
                        dst.copy_from_slice(&self.cache.slot(s)[in_page..in_page + n]);
                    }),
                }
            };
            match r {
                Ok(()) => done += n,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    fn page_offset(&mut self, pa: u64) -> Option<i64> {
        let d = self.desc(pa / self.header.block_size).ok()?;
        Some(
            self.src
                .file_offset(d.offset)
                .map(|o| o as i64)
                .unwrap_or(-1),
        )
    }

    fn for_each_page(&mut self, page_size: u64, cb: &mut dyn FnMut(u64, i64) -> bool) -> bool {
        let bs = self.header.block_size;
        if page_size != bs {
            return true;
        }
        let words = self.header.max_mapnr.div_ceil(64);
        for w in 0..words {
            let mut word = self.bm_word(true, w);
            while word != 0 {
                let b = word.trailing_zeros() as u64;
                word &= word - 1;
                let pfn = w * 64 + b;
                if pfn >= self.header.max_mapnr {
                    break;
                }
                let off = self.page_offset(pfn * bs).unwrap_or(-1);
                if !cb(pfn * bs, off) {
                    return false;
                }
            }
        }
        true
    }
}

/// Opens a plain kdump file from its mapping.
pub fn open(map: Mapped, path: &Path) -> Result<KdumpParts<Plain>> {
    open_source(Plain(map), path, "kdump-compressed dump")
}

/// Probe: the diskdump signature.
pub fn probe(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE)
}
