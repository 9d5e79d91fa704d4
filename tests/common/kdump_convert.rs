//! Test-only converter: rewrites a real kdump-compressed (zlib) file into the other codecs
//! (lzo, snappy, zstd), a filtered dump with excluded pages, and a flattened file with
//! out-of-order, overlapping records. Written from the diskdump format description and
//! independent of the library's reader (its own header/bitmap/descriptor parsing).
//!
//! Layout kept from the source: header block, sub-header blocks (VMCOREINFO/notes stay at
//! their offsets), then the two bitmaps, the page descriptors (24 bytes: offset, size, flags,
//! page_flags) and the page data, rewritten.

use std::io::Write;
use std::path::Path;

pub const ZLIB: u32 = 0x1;
pub const LZO: u32 = 0x2;
pub const SNAPPY: u32 = 0x4;
pub const ZSTD: u32 = 0x20;

fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn le64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// A parsed source kdump held in memory (test input is a 35-45 MB file).
pub struct Source {
    pub data: Vec<u8>,
    pub block: usize,
    pub meta_blocks: usize,
    pub bitmap_len: usize,
    pub max_mapnr: u64,
}

impl Source {
    pub fn load(path: &Path) -> Source {
        let data = std::fs::read(path).unwrap();
        assert_eq!(&data[..8], b"KDUMP   ");
        let block = le32(&data, 428) as usize;
        let sub = le32(&data, 432) as usize;
        let bitmap_blocks = le32(&data, 436) as usize;
        let mut max_mapnr = le32(&data, 440) as u64;
        if le32(&data, 8) >= 6 && le64(&data, block + 96) != 0 {
            max_mapnr = le64(&data, block + 96);
        }
        Source {
            block,
            meta_blocks: 1 + sub,
            bitmap_len: bitmap_blocks * block / 2,
            max_mapnr,
            data,
        }
    }

    fn bitmap2(&self) -> &[u8] {
        let o = self.meta_blocks * self.block + self.bitmap_len;
        &self.data[o..o + self.bitmap_len]
    }

    fn desc_base(&self) -> usize {
        self.meta_blocks * self.block + 2 * self.bitmap_len
    }

    /// Every dumped page in pfn order, decompressed: (pfn, contents).
    pub fn pages(&self) -> Vec<(u64, Vec<u8>)> {
        let bm = self.bitmap2();
        let mut out = Vec::new();
        let mut i = 0usize;
        for pfn in 0..self.max_mapnr {
            if bm[(pfn / 8) as usize] >> (pfn % 8) & 1 == 0 {
                continue;
            }
            let d = self.desc_base() + i * 24;
            i += 1;
            let (off, size, flags) = (
                le64(&self.data, d) as usize,
                le32(&self.data, d + 8) as usize,
                le32(&self.data, d + 12),
            );
            let raw = &self.data[off..off + size];
            let page = if flags & ZLIB != 0 {
                let mut z = flate2::Decompress::new(true);
                let mut v = vec![0u8; self.block];
                z.decompress(raw, &mut v, flate2::FlushDecompress::Finish)
                    .unwrap();
                assert_eq!(z.total_out() as usize, self.block);
                v
            } else {
                assert_eq!(flags, 0);
                raw.to_vec()
            };
            out.push((pfn, page));
        }
        out
    }
}

fn compress(codec: u32, page: &[u8], dict: &mut lzokay_native::Dict) -> Vec<u8> {
    match codec {
        ZLIB => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(page).unwrap();
            e.finish().unwrap()
        }
        LZO => lzokay_native::compress_with_dict(page, dict).unwrap(),
        SNAPPY => snap::raw::Encoder::new().compress_vec(page).unwrap(),
        ZSTD => zstd::bulk::compress(page, 1).unwrap(),
        _ => unreachable!(),
    }
}

/// Writes a kdump file with pages compressed by `codec`; pages for which `exclude(pfn, page)`
/// is true are left out of the 2nd bitmap (filtered). All-zero pages share one data copy, as
/// makedumpfile does. Returns the pfns excluded.
pub fn convert(
    src: &Source,
    pages: &[(u64, Vec<u8>)],
    out: &Path,
    codec: u32,
    exclude: &dyn Fn(u64, &[u8]) -> bool,
) -> Vec<u64> {
    let b = src.block;
    let mut head = src.data[..src.meta_blocks * b].to_vec();
    head[424..428].copy_from_slice(&codec.to_le_bytes()); // status: the codec in use
    let bm1_off = src.meta_blocks * b;
    let mut bm1 = src.data[bm1_off..bm1_off + src.bitmap_len].to_vec();
    let mut bm2 = vec![0u8; src.bitmap_len];
    let mut excluded = Vec::new();
    let kept: Vec<&(u64, Vec<u8>)> = pages
        .iter()
        .filter(|(pfn, page)| {
            bm1[(*pfn / 8) as usize] |= 1 << (pfn % 8);
            if exclude(*pfn, page) {
                excluded.push(*pfn);
                false
            } else {
                bm2[(*pfn / 8) as usize] |= 1 << (pfn % 8);
                true
            }
        })
        .collect();
    if !excluded.is_empty() {
        head[b + 8..b + 12].copy_from_slice(&1i32.to_le_bytes()); // dump_level 1
    }
    let data_start = (src.meta_blocks * b + 2 * src.bitmap_len + kept.len() * 24) as u64;
    let mut descs = Vec::with_capacity(kept.len() * 24);
    let mut data = Vec::new();
    let mut zero_desc: Option<(u64, u32, u32)> = None;
    let mut dict = lzokay_native::Dict::new();
    for (_, page) in kept {
        let is_zero = page.iter().all(|&x| x == 0);
        let (off, size, flags) = match (is_zero, zero_desc) {
            (true, Some(z)) => z,
            _ => {
                let c = compress(codec, page, &mut dict);
                let (bytes, flags) = if c.len() < b {
                    (c, codec)
                } else {
                    (page.clone(), 0)
                };
                let d = (data_start + data.len() as u64, bytes.len() as u32, flags);
                data.extend_from_slice(&bytes);
                if is_zero {
                    zero_desc = Some(d);
                }
                d
            }
        };
        descs.extend_from_slice(&off.to_le_bytes());
        descs.extend_from_slice(&size.to_le_bytes());
        descs.extend_from_slice(&flags.to_le_bytes());
        descs.extend_from_slice(&0u64.to_le_bytes());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    for part in [&head, &bm1, &bm2, &descs, &data] {
        f.write_all(part).unwrap();
    }
    f.flush().unwrap();
    excluded
}

/// Writes `plain` (a kdump file) in makedumpfile's flattened format with records of at most
/// `chunk` bytes, written back to front, plus a bogus first header block that a later record
/// overwrites (so a reader must apply records in order and let later ones win).
pub fn flatten(plain: &Path, out: &Path, chunk: usize) {
    let data = std::fs::read(plain).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap());
    let mut hdr = vec![0u8; 4096];
    hdr[..13].copy_from_slice(b"makedumpfile\0");
    hdr[16..24].copy_from_slice(&1i64.to_be_bytes());
    hdr[24..32].copy_from_slice(&1i64.to_be_bytes());
    f.write_all(&hdr).unwrap();
    let rec = |f: &mut std::io::BufWriter<std::fs::File>, off: usize, bytes: &[u8]| {
        f.write_all(&(off as i64).to_be_bytes()).unwrap();
        f.write_all(&(bytes.len() as i64).to_be_bytes()).unwrap();
        f.write_all(bytes).unwrap();
    };
    rec(&mut f, 0, &vec![0xa5u8; 4096]);
    let mut starts: Vec<usize> = (0..data.len()).step_by(chunk).collect();
    starts.reverse();
    for s in starts {
        let e = (s + chunk).min(data.len());
        rec(&mut f, s, &data[s..e]);
    }
    f.write_all(&(-1i64).to_be_bytes()).unwrap();
    f.write_all(&(-1i64).to_be_bytes()).unwrap();
    f.flush().unwrap();
}
