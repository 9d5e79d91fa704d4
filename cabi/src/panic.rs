//! No Rust panic may unwind into C. Every entry point runs its body through `guard`, which turns
//! a panic into the function's documented failure value (and EIO in errno).

use std::panic::{catch_unwind, AssertUnwindSafe};

/// The value an entry point returns when it fails (or panics).
pub trait FailValue {
    fn fail() -> Self;
}

impl FailValue for i32 {
    fn fail() -> Self {
        -1
    }
}

impl FailValue for isize {
    fn fail() -> Self {
        -1
    }
}

/// kvm_counter_u64_fetch and kvm_kerndisp report failure as 0 ("unknown").
impl FailValue for u64 {
    fn fail() -> Self {
        0
    }
}

impl FailValue for i64 {
    fn fail() -> Self {
        0
    }
}

impl<T> FailValue for *mut T {
    fn fail() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> FailValue for *const T {
    fn fail() -> Self {
        std::ptr::null()
    }
}

/// Text of a panic payload, for the error buffer.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "unknown panic"
    }
}

/// Runs `f`; a panic becomes `fail` with errno EIO.
pub fn guard_or<R>(fail: impl FnOnce() -> R, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            crate::errbuf::set_errno(libc::EIO);
            fail()
        }
    }
}

/// Runs `f`; a panic becomes `R::fail()`.
pub fn guard<R: FailValue>(f: impl FnOnce() -> R) -> R {
    guard_or(R::fail, f)
}

/// Wraps an entry point's body: `ffi!({ ... })` or `ffi!(fail_expr, { ... })`.
#[macro_export]
macro_rules! ffi {
    ($body:block) => {
        $crate::panic::guard(move || $body)
    };
    ($fail:expr, $body:block) => {
        $crate::panic::guard_or(move || $fail, move || $body)
    };
}
