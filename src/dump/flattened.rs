//! makedumpfile's flattened format (what `makedumpfile -F` and QEMU write): a 4 KiB header
//! starting "makedumpfile", then records `{be64 offset, be64 size, size bytes of data}` that
//! place data at an offset of the logical (reassembled) file, ended by offset = size = -1.
//!
//! Read in place: the records are indexed on open (one pass over their headers) into sorted,
//! non-overlapping extents; later records win where they overlap earlier ones, as they would
//! when reassembled with `makedumpfile -R`. Nothing is rewritten.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use crate::dump::kdump::{self, ByteSource, KdumpParts};
use crate::dump::mapped::Mapped;
use crate::error::{Error, Result};

pub const SIGNATURE: &[u8] = b"makedumpfile\0";
const HEADER_SIZE: usize = 4096;

/// One run of logical bytes stored contiguously in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    pub logical: u64,
    pub len: u64,
    pub file: u64,
}

/// The flattened file with its extent index.
pub struct FlatFile {
    map: Mapped,
    extents: Vec<Extent>,
    size: u64,
    /// True when the records ended without the end marker (a truncated file).
    pub truncated: bool,
}

/// Indexes the records of a flattened file held in `b`. Returns the extents (sorted,
/// non-overlapping), the logical size and whether the end marker was missing.
pub fn index(b: &[u8]) -> Result<(Vec<Extent>, u64, bool)> {
    if b.len() < HEADER_SIZE || !b.starts_with(SIGNATURE) {
        return Err(Error::format(
            "flattened dump: missing \"makedumpfile\" signature or header shorter than 4096 bytes",
        ));
    }
    let be = |o: usize| -> Option<i64> {
        Some(i64::from_be_bytes(
            b.get(o..o.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    let ftype = be(16).unwrap_or(0);
    if ftype != 1 {
        return Err(Error::format(format!(
            "flattened dump: header type {} is not 1 (flat header)",
            ftype
        )));
    }
    let mut recs: Vec<Extent> = Vec::new();
    let mut sorted = true;
    let mut p = HEADER_SIZE;
    let mut truncated = true;
    while let (Some(off), Some(size)) = (be(p), be(p + 8)) {
        if off == -1 && size == -1 {
            truncated = false;
            break;
        }
        if off < 0 || size < 0 {
            return Err(Error::format(format!(
                "flattened dump: record at file offset 0x{:x} has offset {} and size {}",
                p, off, size
            )));
        }
        let data = p + 16;
        let avail = (b.len() - data.min(b.len())) as u64;
        let len = (size as u64).min(avail);
        if len > 0 {
            let e = Extent {
                logical: off as u64,
                len,
                file: data as u64,
            };
            if let Some(last) = recs.last() {
                if e.logical < last.logical + last.len {
                    sorted = false;
                }
            }
            recs.push(e);
        }
        if (size as u64) > avail {
            break; // cut short: keep what is there
        }
        p = match data.checked_add(size as usize) {
            Some(n) => n,
            None => break,
        };
    }
    if !sorted {
        recs = resolve_overlaps(&recs);
    }
    let size = recs.last().map(|e| e.logical + e.len).unwrap_or(0);
    Ok((recs, size, truncated))
}

/// Applies records in write order so that later data replaces earlier data.
fn resolve_overlaps(recs: &[Extent]) -> Vec<Extent> {
    let mut m: BTreeMap<u64, (u64, u64)> = BTreeMap::new(); // start -> (end, file)
    for r in recs {
        let (s, e) = (r.logical, r.logical.saturating_add(r.len));
        let hit: Vec<u64> = m
            .range(..e)
            .rev()
            .take_while(|(_, &(end, _))| end > s)
            .map(|(&k, _)| k)
            .collect();
        // take_while stops at the first non-overlap scanning down; intervals are disjoint, so
        // every overlapping one is adjacent in that order.
        for k in hit {
            let (end, file) = m.remove(&k).unwrap_or((k, 0));
            if k < s {
                m.insert(k, (s, file));
            }
            if end > e {
                m.insert(e, (end, file + (e - k)));
            }
        }
        m.insert(s, (e, r.file));
    }
    m.into_iter()
        .map(|(s, (e, f))| Extent {
            logical: s,
            len: e - s,
            file: f,
        })
        .collect()
}

impl FlatFile {
    pub fn new(map: Mapped) -> Result<FlatFile> {
        let (extents, size, truncated) = index(map.bytes())?;
        Ok(FlatFile {
            map,
            extents,
            size,
            truncated,
        })
    }

    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    fn find(&self, off: u64) -> Option<usize> {
        let i = self.extents.partition_point(|e| e.logical <= off);
        i.checked_sub(1)
    }
}

impl ByteSource for FlatFile {
    fn len(&self) -> u64 {
        self.size
    }

    fn get(&self, off: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let end = off.checked_add(len as u64)?;
        if end > self.size {
            return None;
        }
        let b = self.map.bytes();
        if let Some(i) = self.find(off) {
            let e = self.extents[i];
            if end <= e.logical + e.len {
                let s = (e.file + off - e.logical) as usize;
                return Some(Cow::Borrowed(&b[s..s + len]));
            }
        }
        // Spans several records (or gaps, which read as zeros like in a reassembled file).
        let mut out = vec![0u8; len];
        let start = self.find(off).unwrap_or(0);
        for e in &self.extents[start..] {
            if e.logical >= end {
                break;
            }
            let lo = e.logical.max(off);
            let hi = (e.logical + e.len).min(end);
            if lo < hi {
                let s = (e.file + lo - e.logical) as usize;
                let d = (lo - off) as usize;
                out[d..d + (hi - lo) as usize].copy_from_slice(&b[s..s + (hi - lo) as usize]);
            }
        }
        Some(Cow::Owned(out))
    }

    fn file_offset(&self, off: u64) -> Option<u64> {
        let e = self.extents[self.find(off)?];
        (off < e.logical + e.len).then(|| e.file + off - e.logical)
    }
}

/// Probe: the flattened header signature.
pub fn probe(head: &[u8]) -> bool {
    head.starts_with(SIGNATURE)
}

/// Opens a flattened file holding a kdump-compressed dump.
pub fn open(map: Mapped, path: &Path) -> Result<KdumpParts<FlatFile>> {
    let flat =
        FlatFile::new(map).map_err(|e| Error::format(format!("{}: {}", path.display(), e)))?;
    let head = flat.get(0, 8.min(flat.len() as usize));
    let is_kdump = head.as_deref().is_some_and(|h| h == kdump::SIGNATURE);
    if !is_kdump {
        let what = if head.as_deref().is_some_and(|h| h.starts_with(b"\x7fELF")) {
            "an ELF dump (reassemble it with makedumpfile -R first)".to_string()
        } else {
            format!(
                "no kdump-compressed dump (logical bytes {})",
                crate::dump::describe_magic(head.as_deref().unwrap_or(&[]))
            )
        };
        return Err(Error::format(format!(
            "{}: flattened makedumpfile file holds {}",
            path.display(),
            what
        )));
    }
    kdump::open_source(flat, path, "flattened kdump-compressed dump")
}
