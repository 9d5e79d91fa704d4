//! kvm_getprocs, kvm_getargv, kvm_getenvv: arrays and vectors owned by the descriptor.

use std::os::raw::{c_char, c_int};

use kvm_core::ArgvKind;

use crate::types::{kvm_t, KinfoProc};
use crate::{call, null_arg};

/// Processes selected by `op`/`arg`. The array belongs to the descriptor (valid until the next
/// kvm_getprocs or kvm_close) and is writable; an empty selection is a non-NULL pointer with
/// *cnt = 0.
#[no_mangle]
pub extern "C" fn kvm_getprocs(
    kd: *mut kvm_t,
    op: c_int,
    arg: c_int,
    cnt: *mut c_int,
) -> *mut KinfoProc {
    call(kd, "kvm_getprocs", |st| {
        let procs = st.getprocs(op, arg)?;
        let n = c_int::try_from(procs.len()).unwrap_or(c_int::MAX);
        let ptr = procs.as_mut_ptr();
        if !cnt.is_null() {
            // SAFETY: cnt points to the caller's int.
            unsafe { *cnt = n };
        }
        Ok(ptr)
    })
}

fn vector(kd: *mut kvm_t, kp: *const KinfoProc, nchr: c_int, kind: ArgvKind) -> *mut *mut c_char {
    let name = match kind {
        ArgvKind::Args => "kvm_getargv",
        ArgvKind::Env => "kvm_getenvv",
    };
    call(kd, name, |st| {
        if kp.is_null() {
            return Err(null_arg(name, "process"));
        }
        // SAFETY: kp points to a kinfo_proc (usually one returned by kvm_getprocs); copied so
        // the descriptor's array may be reused underneath.
        let kp = unsafe { *kp };
        Ok(match st.getargv(&kp, kind, nchr)? {
            Some(v) => v.ptrs.as_ptr() as *mut *mut c_char,
            None => std::ptr::null_mut(),
        })
    })
}

/// NULL-terminated argument vector of `kp`'s process, at most `nchr` bytes including the NULs
/// (0 = no limit). Storage belongs to the descriptor; the next call reuses it.
#[no_mangle]
pub extern "C" fn kvm_getargv(
    kd: *mut kvm_t,
    kp: *const KinfoProc,
    nchr: c_int,
) -> *mut *mut c_char {
    vector(kd, kp, nchr, ArgvKind::Args)
}

/// Like kvm_getargv, for the environment.
#[no_mangle]
pub extern "C" fn kvm_getenvv(
    kd: *mut kvm_t,
    kp: *const KinfoProc,
    nchr: c_int,
) -> *mut *mut c_char {
    vector(kd, kp, nchr, ArgvKind::Env)
}
