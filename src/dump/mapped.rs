//! The one place that maps dump files into memory. Everything else sees a `&[u8]`.
//!
//! Dumps can be larger than RAM: mapping lets the kernel page them in on demand, and reads of
//! uncompressed dumps become plain memory copies.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};

/// A read-only mapping of a whole file (empty files give an empty slice).
pub struct Mapped {
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    pub fn map(file: &File, path: &Path) -> Result<Mapped> {
        let len = file
            .metadata()
            .map_err(|e| Error::sys(path.display().to_string(), e))?
            .len();
        if len == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: the mapping is read-only and private to this process. If another process
        // truncates the file while it is mapped, accesses past the new end raise SIGBUS; dump
        // files are not modified while they are examined, which is the same assumption every
        // mmap-based dump reader (crash, libkdumpfile) makes.
        let map = unsafe { memmap2::MmapOptions::new().map(file) }
            .map_err(|e| Error::sys(format!("{}: mmap", path.display()), e))?;
        Ok(Mapped { map: Some(map) })
    }

    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }
}
