//! extern "C" layer of libkvm: argument checks, NULL handling, errbuf copies, catch_unwind.
//!
//! Every function here is a thin wrapper: it turns C pointers into safe values, calls the core
//! (`kvm_core::Kvm` / `KvmState`) and turns the result back into FreeBSD's conventions (failure
//! value, error text in the descriptor or the caller's errbuf, errno). No logic beyond that.

#![allow(non_camel_case_types, clippy::missing_safety_doc)]

pub mod errbuf;
#[macro_use]
pub mod panic;
pub mod types;

mod mem;
mod open;
mod procs;
mod stats;

use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

use kvm_core::{Error, Kvm, KvmState, Result};

use crate::errbuf::set_errno;
use crate::panic::FailValue;
pub use crate::types::*;

/// The descriptor behind a non-NULL `kvm_t *`.
pub(crate) fn handle<'a>(kd: *const kvm_t) -> Option<&'a Kvm> {
    // SAFETY: a non-NULL kvm_t * is a handle returned by kvm_open* and not yet closed
    // (the C contract of every kvm(3) function).
    unsafe { kd.as_ref() }
}

/// Runs one call on a locked descriptor. An error is recorded the FreeBSD way (errbuf or
/// stderr), errno is set from it and `fail` is returned; a panic becomes an error too.
pub(crate) fn call_or<R>(
    kd: *const kvm_t,
    name: &str,
    fail: impl FnOnce() -> R,
    f: impl FnOnce(&mut KvmState) -> Result<R>,
) -> R {
    let Some(k) = handle(kd) else {
        set_errno(libc::EINVAL);
        return fail();
    };
    let res = catch_unwind(AssertUnwindSafe(|| {
        let mut st = k.lock();
        f(&mut st).map_err(|e| {
            st.report(&e);
            e.errno()
        })
    }));
    match res {
        Ok(Ok(v)) => v,
        Ok(Err(errno)) => {
            set_errno(errno);
            fail()
        }
        Err(payload) => {
            // The guard was released while unwinding; the lock is free again.
            let text = format!(
                "{}: internal error: {}",
                name,
                panic::panic_text(payload.as_ref())
            );
            let _ = catch_unwind(AssertUnwindSafe(|| k.lock().set_err(text.as_bytes())));
            set_errno(libc::EIO);
            fail()
        }
    }
}

pub(crate) fn call<R: FailValue>(
    kd: *const kvm_t,
    name: &str,
    f: impl FnOnce(&mut KvmState) -> Result<R>,
) -> R {
    call_or(kd, name, R::fail, f)
}

/// A clear error for a NULL pointer argument.
pub(crate) fn null_arg(func: &str, what: &str) -> Error {
    Error::msg(format!("{}: {} is NULL", func, what))
}

static EMPTY: &[u8; 1] = b"\0";

/// Last error text of `kd`; "" for a NULL descriptor. Success never clears it.
#[no_mangle]
pub extern "C" fn kvm_geterr(kd: *mut kvm_t) -> *mut c_char {
    ffi!({
        match handle(kd) {
            Some(k) => k.errbuf_ptr() as *mut c_char,
            None => EMPTY.as_ptr() as *mut c_char,
        }
    })
}

/// Frees the descriptor and everything it owns. NULL: -1 with errno EINVAL.
///
/// # Safety
/// `kd` is NULL or a descriptor from kvm_open* not closed before.
#[no_mangle]
pub unsafe extern "C" fn kvm_close(kd: *mut kvm_t) -> c_int {
    ffi!({
        if kd.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        // SAFETY: kd came from Box::into_raw in kvm_open* and is closed only once.
        drop(unsafe { Box::from_raw(kd) });
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn open_devnull() -> *mut kvm_t {
        let mut errbuf = [0 as c_char; 2048];
        let kd = open::kvm_openfiles(
            std::ptr::null(),
            c"/dev/null".as_ptr(),
            std::ptr::null(),
            0,
            errbuf.as_mut_ptr(),
        );
        assert!(!kd.is_null());
        kd
    }

    /// A panic inside a call becomes the failure value and a message, and the descriptor
    /// stays usable (its lock was released while unwinding).
    #[test]
    fn panic_becomes_error() {
        let kd = open_devnull();
        let r: c_int = call(kd, "kvm_test", |_| -> Result<c_int> {
            panic!("boom {}", 7)
        });
        assert_eq!(r, -1);
        let msg = unsafe { CStr::from_ptr(kvm_geterr(kd)) }.to_str().unwrap();
        assert_eq!(msg, "kvm_test: internal error: boom 7");
        let p: *mut u8 = call(kd, "kvm_test", |_| -> Result<*mut u8> { panic!("again") });
        assert!(p.is_null());
        let v = ffi!(-5, { panic!("outside a descriptor") });
        assert_eq!(v, -5);
        assert_eq!(unsafe { kvm_close(kd) }, 0);
    }

    /// A NULL descriptor fails with EINVAL before any work.
    #[test]
    fn null_descriptor() {
        let r: c_int = call(std::ptr::null(), "kvm_test", |_| Ok(1));
        assert_eq!(r, -1);
        assert_eq!(unsafe { *libc::__errno_location() }, libc::EINVAL);
    }
}
