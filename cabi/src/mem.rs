//! Kernel memory and symbols: kvm_read*, kvm_write, kvm_nlist*, kvm_walk_pages, per-CPU reads,
//! kvm_native, kvm_kerndisp.

use std::ffi::CStr;
use std::os::raw::{c_int, c_void};

use kvm_core::symbols::Symbol;
use kvm_core::{Error, Result};

use crate::types::{
    kssize_t, kvaddr_t, kvm_nlist, kvm_page, kvm_t, kvm_walk_pages_cb_t, nlist, ssize_t, u_long,
    WalkCb,
};
use crate::{call, null_arg};

/// The caller's buffer as a slice (NULL is only accepted for a zero length).
fn out_slice<'a>(func: &str, buf: *mut c_void, len: usize) -> Result<&'a mut [u8]> {
    if len == 0 {
        return Ok(&mut []);
    }
    if buf.is_null() {
        return Err(null_arg(func, "buffer"));
    }
    if len > isize::MAX as usize {
        return Err(Error::msg(format!("{}: length {} too large", func, len)));
    }
    // SAFETY: the caller promises `len` writable bytes at `buf` (kvm_read(3)).
    Ok(unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, len) })
}

fn in_slice<'a>(func: &str, buf: *const c_void, len: usize) -> Result<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    if buf.is_null() {
        return Err(null_arg(func, "buffer"));
    }
    if len > isize::MAX as usize {
        return Err(Error::msg(format!("{}: length {} too large", func, len)));
    }
    // SAFETY: the caller promises `len` readable bytes at `buf` (kvm_write(3)).
    Ok(unsafe { std::slice::from_raw_parts(buf as *const u8, len) })
}

/// Reads kernel virtual memory; the count read, or -1 (kvm_geterr says why).
#[no_mangle]
pub extern "C" fn kvm_read(
    kd: *mut kvm_t,
    addr: u_long,
    buf: *mut c_void,
    nbytes: usize,
) -> ssize_t {
    kvm_read2(kd, addr as kvaddr_t, buf, nbytes)
}

/// kvm_read with a 64-bit address on every host.
#[no_mangle]
pub extern "C" fn kvm_read2(
    kd: *mut kvm_t,
    addr: kvaddr_t,
    buf: *mut c_void,
    nbytes: usize,
) -> ssize_t {
    call(kd, "kvm_read", |st| {
        let b = out_slice("kvm_read", buf, nbytes)?;
        st.read(addr, b).map(|n| n as isize)
    })
}

/// Writes kernel virtual memory (live kernel opened for writing only).
#[no_mangle]
pub extern "C" fn kvm_write(
    kd: *mut kvm_t,
    addr: u_long,
    buf: *const c_void,
    nbytes: usize,
) -> ssize_t {
    call(kd, "kvm_write", |st| {
        let b = in_slice("kvm_write", buf, nbytes)?;
        st.write(addr, b).map(|n| n as isize)
    })
}

/// Entries of a name-terminated list (NULL or "" name ends it).
fn names_of<'a, T>(
    list: *mut T,
    name: impl Fn(&T) -> *const std::os::raw::c_char,
) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut p = list;
    loop {
        // SAFETY: the caller's list is terminated by an entry with a NULL or empty name.
        let e = unsafe { &*p };
        let n = name(e);
        if n.is_null() {
            break;
        }
        // SAFETY: names are NUL-terminated strings.
        let s = unsafe { CStr::from_ptr(n) }.to_bytes();
        if s.is_empty() {
            break;
        }
        out.push(s);
        // SAFETY: still inside the caller's array (this entry was not the terminator).
        p = unsafe { p.add(1) };
    }
    out
}

/// Fills entry i of the caller's name list from `found[i]` (None: not found) with `set`.
/// Returns how many were not found.
fn fill_entries<T>(
    list: *mut T,
    found: &[Option<Symbol>],
    mut set: impl FnMut(&mut T, Option<&Symbol>),
) -> c_int {
    let mut missing = 0;
    for (i, sym) in found.iter().enumerate() {
        // SAFETY: i < number of named entries names_of counted.
        let e = unsafe { &mut *list.add(i) };
        set(e, sym.as_ref());
        if sym.is_none() {
            missing += 1;
        }
    }
    missing
}

/// Looks up kernel symbols (classic `struct nlist`, native kernels only). Returns the number
/// of names not found, or -1.
#[no_mangle]
pub extern "C" fn kvm_nlist(kd: *mut kvm_t, nl: *mut nlist) -> c_int {
    call(kd, "kvm_nlist", |st| {
        if nl.is_null() {
            return Err(null_arg("kvm_nlist", "name list"));
        }
        if !st.native() {
            return Err(Error::msg("kvm_nlist of non-native vmcore"));
        }
        let names = names_of(nl, |e| e.n_name);
        let found = st.nlist(&names)?;
        Ok(fill_entries(nl, &found, |e, sym| {
            e.n_other = 0;
            e.n_desc = 0;
            e.n_type = sym.map_or(0, |s| s.n_type);
            e.n_value = sym.map_or(0, |s| s.value as u_long);
        }))
    })
}

/// Looks up kernel symbols with 64-bit values. Returns the number not found, or -1.
#[no_mangle]
pub extern "C" fn kvm_nlist2(kd: *mut kvm_t, nl: *mut kvm_nlist) -> c_int {
    call(kd, "kvm_nlist2", |st| {
        if nl.is_null() {
            return Err(null_arg("kvm_nlist2", "name list"));
        }
        let names = names_of(nl, |e| e.n_name);
        let found = st.nlist(&names)?;
        Ok(fill_entries(nl, &found, |e, sym| {
            e.n_type = sym.map_or(0, |s| s.n_type);
            e.n_value = sym.map_or(0, |s| s.value);
        }))
    })
}

/// Calls `cb` for every page of a dump. 1 = walk completed, 0 = stopped or not supported.
/// The pages are collected first, so the callback may call back into the library.
#[no_mangle]
pub extern "C" fn kvm_walk_pages(
    kd: *mut kvm_t,
    cb: *mut kvm_walk_pages_cb_t,
    closure: *mut c_void,
) -> c_int {
    ffi!(0, {
        if cb.is_null() {
            crate::errbuf::set_errno(libc::EINVAL);
            return 0;
        }
        // SAFETY: cb points to a function of type kvm_walk_pages_cb_t (kvm_walk_pages(3)).
        let cb: WalkCb = unsafe { std::mem::transmute::<*mut kvm_walk_pages_cb_t, WalkCb>(cb) };
        let (pages, done) = call_pages(kd);
        for p in pages {
            // SAFETY: kvm_page is the C spelling of KvmPage (same layout, checked in types.rs).
            let mut page: kvm_page =
                unsafe { std::mem::transmute::<kvm_core::abi::KvmPage, kvm_page>(p) };
            // SAFETY: calling the caller's callback with a valid page and its closure.
            if unsafe { cb(&mut page, closure) } == 0 {
                return 0;
            }
        }
        done as c_int
    })
}

fn call_pages(kd: *mut kvm_t) -> (Vec<kvm_core::abi::KvmPage>, bool) {
    crate::call_or(
        kd,
        "kvm_walk_pages",
        || (Vec::new(), false),
        |st| st.walk_pages_collect(),
    )
}

/// Reads CPU `cpu`'s copy of a UMA per-CPU object at `base`; -1 on a non-native kernel.
#[no_mangle]
pub extern "C" fn kvm_read_zpcpu(
    kd: *mut kvm_t,
    base: u_long,
    buf: *mut c_void,
    size: usize,
    cpu: c_int,
) -> ssize_t {
    call(kd, "kvm_read_zpcpu", |st| {
        if !st.native() {
            // FreeBSD fails here without a message.
            return Ok(-1);
        }
        let b = out_slice("kvm_read_zpcpu", buf, size)?;
        st.read_zpcpu(base, b, cpu).map(|n| n as isize)
    })
}

/// Sum of a per-CPU counter(9) over all CPUs; 0 when it cannot be read.
#[no_mangle]
pub extern "C" fn kvm_counter_u64_fetch(kd: *mut kvm_t, base: u_long) -> u64 {
    call(kd, "kvm_counter_u64_fetch", |st| {
        if !st.native() {
            return Ok(0);
        }
        let ncpus = st.ncpus()?;
        let mut sum: u64 = 0;
        for cpu in 0..ncpus.max(0) {
            let mut v = [0u8; 8];
            if st.read_zpcpu(base, &mut v, cpu)? != v.len() {
                return Ok(0);
            }
            sum = sum.wrapping_add(u64::from_ne_bytes(v));
        }
        Ok(sum)
    })
}

/// 1 when the examined kernel has this library's architecture (always for the live system).
#[no_mangle]
pub extern "C" fn kvm_native(kd: *mut kvm_t) -> c_int {
    crate::call_or(kd, "kvm_native", || 0, |st| Ok(st.native() as c_int))
}

/// Kernel load displacement (run-time base minus link-time base); 0 = none or unknown.
#[no_mangle]
pub extern "C" fn kvm_kerndisp(kd: *mut kvm_t) -> kssize_t {
    crate::call_or(kd, "kvm_kerndisp", || 0, |st| Ok(st.kerndisp()))
}
