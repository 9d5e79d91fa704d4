//! FreeBSD amd64 minidumps from fuzzer bytes (see fbsd_minidump_common.rs).
#![no_main]

#[path = "fbsd_minidump_common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

const PLATFORM: common::Platform = common::Platform {
    magic: b"minidump FreeBSD/amd64",
    kernbase_len: 8,
    dmapbase_off: Some(48),
};

fuzz_target!(|data: &[u8]| common::run(&PLATFORM, data));
