//! System statistics: load averages, swap, CPU times, CPU counts, per-CPU data.

use std::os::raw::{c_double, c_int, c_long, c_uint, c_void};

use crate::types::{kvm_swap, kvm_t};
use crate::{call, call_or, handle, null_arg};

/// Up to `nelem` (at most 3) load averages; the count stored, or -1.
#[no_mangle]
pub extern "C" fn kvm_getloadavg(kd: *mut kvm_t, loadavg: *mut c_double, nelem: c_int) -> c_int {
    call(kd, "kvm_getloadavg", |st| {
        if nelem <= 0 {
            // FreeBSD's MIN arithmetic: nothing written, nelem returned.
            return Ok(nelem);
        }
        if loadavg.is_null() {
            return Err(null_arg("kvm_getloadavg", "loadavg array"));
        }
        let la = st.loadavg()?;
        let n = (nelem as usize).min(3);
        for (i, v) in la.iter().take(n).enumerate() {
            // SAFETY: the caller's array holds nelem >= n doubles.
            unsafe { *loadavg.add(i) = *v };
        }
        Ok(n as c_int)
    })
}

/// Swap devices (at most maxswap-1 rows) then a total row; returns the number of device rows.
/// A NULL descriptor clears cached state and returns 0.
#[no_mangle]
pub extern "C" fn kvm_getswapinfo(
    kd: *mut kvm_t,
    swap_ary: *mut kvm_swap,
    maxswap: c_int,
    flags: c_int,
) -> c_int {
    if handle(kd).is_none() {
        return 0;
    }
    call(kd, "kvm_getswapinfo", |st| {
        if maxswap <= 0 {
            return Ok(-1);
        }
        if swap_ary.is_null() {
            return Err(null_arg("kvm_getswapinfo", "swap array"));
        }
        let rows = st.swapinfo(maxswap as usize, flags)?;
        let rows = &rows[..rows.len().min(maxswap as usize)];
        // SAFETY: the caller's array holds maxswap entries and rows.len() <= maxswap; kvm_swap is
        // the C spelling of KvmSwap (same layout, checked in types.rs).
        unsafe {
            std::ptr::copy_nonoverlapping(rows.as_ptr() as *const kvm_swap, swap_ary, rows.len())
        };
        Ok(rows.len() as c_int - 1)
    })
}

/// CPUSTATES (5) tick counters: user, nice, sys, intr, idle. NULL descriptor: 0 (cache reset).
#[no_mangle]
pub extern "C" fn kvm_getcptime(kd: *mut kvm_t, cp_time: *mut c_long) -> c_int {
    if handle(kd).is_none() {
        return 0;
    }
    call(kd, "kvm_getcptime", |st| {
        if cp_time.is_null() {
            return Err(null_arg("kvm_getcptime", "cp_time array"));
        }
        let t = st.cptime()?;
        for (i, v) in t.iter().enumerate() {
            // SAFETY: the caller's array holds CPUSTATES longs.
            unsafe { *cp_time.add(i) = *v as c_long };
        }
        Ok(0)
    })
}

/// Number of CPUs present, or -1.
#[no_mangle]
pub extern "C" fn kvm_getncpus(kd: *mut kvm_t) -> c_int {
    call(kd, "kvm_getncpus", |st| st.ncpus())
}

/// Highest possible CPU count, or -1. NULL descriptor: 0 (cache reset).
#[no_mangle]
pub extern "C" fn kvm_getmaxcpu(kd: *mut kvm_t) -> c_int {
    if handle(kd).is_none() {
        return 0;
    }
    call(kd, "kvm_getmaxcpu", |st| st.maxcpu())
}

/// A malloc'd copy of CPU `cpu`'s per-CPU area (the caller frees it); NULL when that CPU does
/// not exist (and for a NULL descriptor); (void *)-1 on error.
#[no_mangle]
pub extern "C" fn kvm_getpcpu(kd: *mut kvm_t, cpu: c_int) -> *mut c_void {
    if handle(kd).is_none() {
        return std::ptr::null_mut();
    }
    let failed = || usize::MAX as *mut c_void;
    call_or(kd, "kvm_getpcpu", failed, |st| {
        let Some(data) = st.getpcpu(cpu)? else {
            return Ok(std::ptr::null_mut());
        };
        // SAFETY: plain malloc; the copy below stays within the allocation.
        let p = unsafe { libc::malloc(data.len().max(1)) };
        if p.is_null() {
            return Err(kvm_core::Error::msg("out of memory"));
        }
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p as *mut u8, data.len()) };
        Ok(p)
    })
}

/// Selects the CPU whose copy of dynamic per-CPU symbols kvm_nlist reports; 0 or -1.
#[no_mangle]
pub extern "C" fn kvm_dpcpu_setcpu(kd: *mut kvm_t, cpu: c_uint) -> c_int {
    call(kd, "kvm_dpcpu_setcpu", |st| st.dpcpu_setcpu(cpu).map(|_| 0))
}
