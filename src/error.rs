//! One error type for the whole core. Its `Display` text is what lands in the caller's errbuf
//! (or on stderr after the `kvm_open` prefix); wording follows FreeBSD libkvm where tools rely on it.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// A system call failed: "<context>: <strerror>" (FreeBSD's `_kvm_syserr`).
    Sys { context: String, source: io::Error },
    /// A kernel virtual address that cannot be read or written ("soft": never printed to stderr).
    BadAddress { addr: u64, why: String },
    /// A file's content is corrupt, truncated or not in a supported format.
    Format { what: String },
    /// The operation is not possible with this backend; the text says why.
    Unsupported(String),
    /// A symbol needed internally was not found.
    NoSymbol(String),
    /// Any other message, shown as is.
    Msg(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn sys(context: impl Into<String>, source: io::Error) -> Self {
        Error::Sys {
            context: context.into(),
            source,
        }
    }
    pub fn bad_address(addr: u64, why: impl Into<String>) -> Self {
        Error::BadAddress {
            addr,
            why: why.into(),
        }
    }
    pub fn format(what: impl Into<String>) -> Self {
        Error::Format { what: what.into() }
    }
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported(what.into())
    }
    pub fn msg(what: impl Into<String>) -> Self {
        Error::Msg(what.into())
    }
    /// Soft errors go to the error buffer even for `kvm_open(..., errstr)` handles, so that
    /// debuggers probing bogus pointers do not spam stderr (FreeBSD does the same).
    pub fn is_soft(&self) -> bool {
        matches!(self, Error::BadAddress { .. })
    }
    /// errno value that best describes the error, for callers that look at errno.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Sys { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            Error::BadAddress { .. } => libc::EFAULT,
            Error::Format { .. } => libc::EINVAL,
            Error::Unsupported(_) => libc::EOPNOTSUPP,
            Error::NoSymbol(_) => libc::ENOENT,
            Error::Msg(_) => libc::EINVAL,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sys { context, source } => {
                // strerror text without Rust's " (os error N)" suffix, as C's strerror prints it.
                match source.raw_os_error() {
                    Some(code) => write!(f, "{}: {}", context, strerror(code)),
                    None => write!(f, "{}: {}", context, source),
                }
            }
            Error::BadAddress { addr, why } => write!(f, "invalid address (0x{:x}): {}", addr, why),
            Error::Format { what } => f.write_str(what),
            Error::Unsupported(s) | Error::Msg(s) => f.write_str(s),
            Error::NoSymbol(name) => write!(f, "{}: no such symbol", name),
        }
    }
}

impl std::error::Error for Error {}

/// C's strerror text for an errno value.
pub fn strerror(code: i32) -> String {
    let s = io::Error::from_raw_os_error(code).to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
