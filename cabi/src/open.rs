//! kvm_open, kvm_openfiles, kvm_open2: one shared open in the core, three ways to report.

use std::ffi::{CStr, OsStr};
use std::os::raw::{c_char, c_int};
use std::os::unix::ffi::OsStrExt;

use kvm_core::{Error, Kvm, OpenArgs};

use crate::errbuf::{copy_to_caller, print_with_prefix, set_errno};
use crate::types::{kvaddr_t, kvm_t, Resolver};

/// A C path argument as an OsStr (NULL = not given).
fn path<'a>(p: *const c_char) -> Option<&'a OsStr> {
    if p.is_null() {
        return None;
    }
    // SAFETY: kvm_open* path arguments are NUL-terminated strings (or NULL).
    Some(OsStr::from_bytes(unsafe { CStr::from_ptr(p) }.to_bytes()))
}

fn open_common(
    execfile: *const c_char,
    corefile: *const c_char,
    flags: c_int,
    program: Option<Vec<u8>>,
    resolver: Resolver,
) -> Result<*mut kvm_t, Error> {
    let resolver = resolver.map(|f| -> kvm_core::Resolver {
        Box::new(move |name: &[u8]| {
            let cname = std::ffi::CString::new(name).ok()?;
            let mut addr: u64 = 0;
            // SAFETY: calling the caller's resolver with a NUL-terminated name and a valid
            // out pointer, as kvm_open2(3) documents.
            let r = unsafe { f(cname.as_ptr(), &mut addr) };
            (r == 0).then_some(addr)
        })
    });
    let args = OpenArgs {
        execfile: path(execfile),
        corefile: path(corefile),
        flags,
        program,
        resolver,
    };
    Kvm::open(args).map(Box::into_raw)
}

/// Opens a descriptor; failures are printed to stderr as "<errstr>: <message>" when errstr
/// is not NULL. The handle keeps a copy of errstr for its later hard errors.
#[no_mangle]
pub extern "C" fn kvm_open(
    execfile: *const c_char,
    corefile: *const c_char,
    swapfile: *const c_char,
    flags: c_int,
    errstr: *const c_char,
) -> *mut kvm_t {
    let _ = swapfile; // unused, as on FreeBSD
    ffi!({
        // SAFETY: errstr is NULL or a NUL-terminated string.
        let program =
            (!errstr.is_null()).then(|| unsafe { CStr::from_ptr(errstr) }.to_bytes().to_vec());
        match open_common(execfile, corefile, flags, program.clone(), None) {
            Ok(kd) => kd,
            Err(e) => {
                if let Some(p) = program {
                    print_with_prefix(&p, &e);
                }
                set_errno(e.errno());
                std::ptr::null_mut()
            }
        }
    })
}

/// Opens a descriptor; failures are copied into errbuf (_POSIX2_LINE_MAX bytes, may be NULL).
#[no_mangle]
pub extern "C" fn kvm_openfiles(
    execfile: *const c_char,
    corefile: *const c_char,
    swapfile: *const c_char,
    flags: c_int,
    errbuf: *mut c_char,
) -> *mut kvm_t {
    let _ = swapfile;
    ffi!({ finish(open_common(execfile, corefile, flags, None, None), errbuf) })
}

/// kvm_openfiles with a symbol resolver that replaces kernel symbol tables.
#[no_mangle]
pub extern "C" fn kvm_open2(
    execfile: *const c_char,
    corefile: *const c_char,
    flags: c_int,
    errbuf: *mut c_char,
    resolver: Option<unsafe extern "C" fn(*const c_char, *mut kvaddr_t) -> c_int>,
) -> *mut kvm_t {
    ffi!({
        finish(
            open_common(execfile, corefile, flags, None, resolver),
            errbuf,
        )
    })
}

fn finish(r: Result<*mut kvm_t, Error>, errbuf: *mut c_char) -> *mut kvm_t {
    match r {
        Ok(kd) => kd,
        Err(e) => {
            // SAFETY: kvm_openfiles(3): errbuf holds _POSIX2_LINE_MAX bytes or is NULL.
            unsafe { copy_to_caller(errbuf, e.to_string().as_bytes()) };
            set_errno(e.errno());
            std::ptr::null_mut()
        }
    }
}
