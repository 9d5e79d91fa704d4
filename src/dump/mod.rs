//! Crash dump formats. Like FreeBSD's `struct kvm_arch` table: each format offers a cheap
//! `probe` on the file's first bytes and an `open`; adding a format is one file and one entry.

use std::fs::File;
use std::path::Path;

use crate::backend::{Backend, SymbolLookup};
use crate::error::{Error, Result};

pub mod elf;
pub mod flattened;
pub mod freebsd_elf;
pub mod freebsd_kernel;
pub mod freebsd_minidump_aarch64;
pub mod freebsd_minidump_amd64;
pub mod freebsd_minidump_common;
pub mod freebsd_minidump_i386;
pub mod kdump;
pub mod linux;
pub mod lzo;
pub mod mapped;
pub mod physmem;
pub mod vmcoreinfo;

/// How many leading bytes of the core file the probes get.
pub const PROBE_LEN: usize = 4096;

/// A format's opener: the core file, its path, the open flags and the symbol lookup.
pub type OpenFn = fn(File, &Path, i32, &mut dyn SymbolLookup) -> Result<Box<dyn Backend>>;

/// One entry of the probe table: a cheap test on the file's first bytes and the opener.
pub struct Format {
    pub name: &'static str,
    pub probe: fn(&[u8]) -> bool,
    pub open: OpenFn,
}

/// The probe table, tried in order.
pub static FORMATS: &[Format] = &[
    // Linux ELF vmcores (VMCOREINFO or Linux-style notes); FreeBSD ELF dumps are not claimed.
    Format {
        name: "Linux ELF vmcore",
        probe: elf::is_linux_vmcore,
        open: linux::open_elf,
    },
    Format {
        name: "Linux kdump-compressed dump",
        probe: kdump::probe,
        open: linux::open_kdump,
    },
    Format {
        name: "makedumpfile flattened dump",
        probe: flattened::probe,
        open: linux::open_flattened,
    },
    Format {
        name: "FreeBSD amd64 minidump",
        probe: freebsd_minidump_amd64::probe,
        open: freebsd_minidump_amd64::open,
    },
    Format {
        name: "FreeBSD arm64 minidump",
        probe: freebsd_minidump_aarch64::probe,
        open: freebsd_minidump_aarch64::open,
    },
    Format {
        name: "FreeBSD i386 minidump",
        probe: freebsd_minidump_i386::probe,
        open: freebsd_minidump_i386::open,
    },
    // After every real minidump probe: names the platform of minidumps nobody reads.
    Format {
        name: "FreeBSD minidump (other platform)",
        probe: freebsd_minidump_common::probe_any,
        open: freebsd_minidump_common::open_unsupported,
    },
    // Keep after the Linux ELF vmcore entry: FreeBSD full dumps are ELF cores too.
    Format {
        name: "FreeBSD amd64 full dump (ELF)",
        probe: freebsd_elf::probe,
        open: freebsd_elf::open,
    },
];

/// Opens `file` with the first format whose probe accepts its first bytes.
pub fn open(
    file: File,
    path: &Path,
    flags: i32,
    syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    use std::os::unix::fs::FileExt;
    let mut head = vec![0u8; PROBE_LEN];
    let mut n = 0;
    while n < head.len() {
        match file.read_at(&mut head[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::sys(path.display().to_string(), e)),
        }
    }
    head.truncate(n);
    for f in FORMATS {
        if (f.probe)(&head) {
            return (f.open)(file, path, flags, syms);
        }
    }
    Err(Error::format(format!(
        "{}: unrecognized core file format (first bytes {})",
        path.display(),
        describe_magic(&head)
    )))
}

/// A short printable rendering of a file's first bytes for error messages.
pub fn describe_magic(head: &[u8]) -> String {
    if head.is_empty() {
        return "none: the file is empty".into();
    }
    let shown: String = head
        .iter()
        .take(8)
        .map(|&b| {
            if b.is_ascii_graphic() {
                (b as char).to_string()
            } else {
                format!("\\x{:02x}", b)
            }
        })
        .collect();
    format!("\"{}\"", shown)
}
