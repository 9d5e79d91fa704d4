//! Moving error text to where C callers look for it: the caller's errbuf, stderr, errno.

use std::io::Write as _;
use std::os::raw::c_char;

use kvm_core::abi::POSIX2_LINE_MAX;
use kvm_core::Error;

pub fn set_errno(code: i32) {
    // SAFETY: __errno_location returns this thread's errno slot.
    unsafe { *libc::__errno_location() = code };
}

/// Copies `msg` into a caller's `_POSIX2_LINE_MAX` errbuf, truncated and NUL-terminated.
/// A NULL errbuf is allowed (the message is lost, as on FreeBSD).
///
/// # Safety
/// A non-NULL `errbuf` must point to at least `_POSIX2_LINE_MAX` writable bytes.
pub unsafe fn copy_to_caller(errbuf: *mut c_char, msg: &[u8]) {
    if errbuf.is_null() {
        return;
    }
    let n = msg.len().min(POSIX2_LINE_MAX - 1);
    // SAFETY: the caller promises errbuf holds _POSIX2_LINE_MAX bytes (kvm_openfiles(3)).
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), errbuf as *mut u8, n);
        *errbuf.add(n) = 0;
    }
}

/// kvm_open's failure report: "<errstr>: <message>" on stderr when errstr is not NULL.
pub fn print_with_prefix(prefix: &[u8], e: &Error) {
    let mut line = prefix.to_vec();
    line.extend_from_slice(b": ");
    line.extend_from_slice(e.to_string().as_bytes());
    line.push(b'\n');
    let _ = std::io::stderr().write_all(&line);
}
