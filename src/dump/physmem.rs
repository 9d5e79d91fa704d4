//! Physical memory of a Linux dump, whatever the file format (ELF, kdump, flattened kdump).

use crate::error::Result;

pub trait PhysMem: Send {
    /// Format name for messages ("ELF vmcore", "kdump-compressed (zlib)", ...).
    fn format_name(&self) -> String;

    /// Reads physical memory at `pa`. Returns the byte count, short when the range runs out of
    /// the dump after the first byte; an absent or excluded first byte is an error saying which.
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize>;

    /// Calls `cb(pa, file_offset)` for every present page of `page_size` bytes, in increasing
    /// address order (file offset -1 when the data has no single place in the file).
    /// Returns false if `cb` stopped the walk.
    fn for_each_page(&mut self, page_size: u64, cb: &mut dyn FnMut(u64, i64) -> bool) -> bool;

    /// File offset of the data of the page at `pa`: `None` if the page is not in the dump,
    /// `Some(-1)` if it is but has no single place in the file (e.g. compressed in a copy).
    fn page_offset(&mut self, pa: u64) -> Option<i64>;
}
