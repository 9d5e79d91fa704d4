//! A read-only memory map of a dump file: the only `unsafe` of the FreeBSD dump readers.
//!
//! Mapping (instead of pread) lets a kvm_read be one bounds-checked memcpy with no system call.
//! The risk memmap2 documents (another process truncating the file while it is mapped raises
//! SIGBUS) is the same one FreeBSD's libkvm accepts when it mmaps the sparse page area.

use std::fs::File;

use memmap2::Mmap;

use crate::error::{Error, Result};

pub struct MappedFile {
    /// None for an empty file (a zero-length mapping is not allowed).
    map: Option<Mmap>,
}

impl MappedFile {
    /// Maps all of `file` read-only; `what` names the file in error messages.
    pub fn new(file: &File, what: &str) -> Result<Self> {
        let len = file
            .metadata()
            .map_err(|e| Error::sys(what.to_string(), e))?
            .len();
        if len == 0 {
            return Ok(MappedFile { map: None });
        }
        // SAFETY: the mapping is private and read-only; every access goes through `bytes()`,
        // a slice bounded by the length the kernel mapped.
        let map =
            unsafe { Mmap::map(file) }.map_err(|e| Error::sys(format!("{}: mmap", what), e))?;
        Ok(MappedFile { map: Some(map) })
    }

    /// The whole file.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.map {
            Some(m) => m,
            None => &[],
        }
    }

    /// Tells the kernel that accesses will be random (no read-ahead around each fault).
    pub fn advise_random(&self) {
        if let Some(m) = &self.map {
            let _ = m.advise(memmap2::Advice::Random);
        }
    }
}
