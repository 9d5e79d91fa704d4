//! Runs inside the qemu test guest (tests/guest/run-kcore-test.sh), built statically: opens the
//! live kernel through the library, finds `linux_banner` with kvm_nlist, reads it from
//! /proc/kcore with kvm_read and compares it with /proc/version; also checks an unmapped
//! address, a short read at the end of a mapped range, kvm_kerndisp and kvm_write.
//! Prints "KCORE-PROBE: ok|FAIL <check>" lines and a final "KCORE-PROBE: PASS" or "FAIL".

use std::path::Path;

use kvm::live::kcore::{Kcore, PROC_KCORE, X86_64_LINK_TEXT};
use kvm::{Kvm, OpenArgs};

fn check(ok: bool, what: String, failures: &mut u32) {
    if ok {
        println!("KCORE-PROBE: ok {}", what);
    } else {
        println!("KCORE-PROBE: FAIL {}", what);
        *failures += 1;
    }
}

fn kallsyms(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        let a = it.next()?;
        it.next()?;
        (it.next()? == name).then(|| u64::from_str_radix(a, 16).ok())?
    })
}

/// With kernel.kptr_restrict=2 kallsyms shows zeros: kvm_nlist must fail saying so (never
/// return address 0 as found) and kvm_kerndisp is 0 (unknown).
fn hidden() {
    let mut failures = 0;
    match Kvm::open(OpenArgs {
        flags: libc::O_RDONLY,
        ..Default::default()
    }) {
        Ok(kd) => {
            let mut st = kd.lock();
            match st.nlist(&[b"linux_banner"]) {
                Err(e) => check(
                    e.to_string().contains("kptr_restrict = 2"),
                    format!("hidden kallsyms: kvm_nlist error: {}", e),
                    &mut failures,
                ),
                Ok(v) => check(
                    false,
                    format!("hidden kallsyms: kvm_nlist returned {:x?}", v),
                    &mut failures,
                ),
            }
            let d = st.kerndisp();
            check(
                d == 0,
                format!("hidden kallsyms: kvm_kerndisp {:#x}", d),
                &mut failures,
            );
        }
        Err(e) => check(false, format!("kvm_open: {}", e), &mut failures),
    }
    if failures == 0 {
        println!("KCORE-PROBE: PASS hidden");
    } else {
        println!("KCORE-PROBE: FAIL hidden ({} checks failed)", failures);
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--hidden") {
        return hidden();
    }
    let mut failures = 0;
    let version = std::fs::read("/proc/version").unwrap_or_default();
    let kd = match Kvm::open(OpenArgs {
        flags: libc::O_RDONLY,
        ..Default::default()
    }) {
        Ok(kd) => kd,
        Err(e) => {
            println!("KCORE-PROBE: FAIL kvm_open: {}", e);
            println!("KCORE-PROBE: FAIL");
            return;
        }
    };
    let mut st = kd.lock();
    let syms = st.nlist(&[b"linux_banner", b"_text", b"_linux_banner"]);
    let (banner, text) = match &syms {
        Ok(v) => (v[0], v[1]),
        Err(e) => {
            println!("KCORE-PROBE: FAIL kvm_nlist: {}", e);
            (None, None)
        }
    };
    if let Ok(v) = &syms {
        check(
            v[2].map(|s| s.value) == banner.map(|s| s.value),
            "kvm_nlist _linux_banner (leading underscore) = linux_banner".into(),
            &mut failures,
        );
    }
    match banner {
        Some(b) => {
            check(
                Some(b.value) == kallsyms("linux_banner"),
                format!(
                    "kvm_nlist linux_banner = {:#x} as in /proc/kallsyms",
                    b.value
                ),
                &mut failures,
            );
            let mut buf = vec![0u8; version.len() + 64];
            match st.read(b.value, &mut buf) {
                Ok(n) => {
                    let s = &buf[..n];
                    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
                    check(
                        s == version.as_slice(),
                        format!(
                            "kvm_read linux_banner ({} bytes) == /proc/version: {:?}",
                            s.len(),
                            String::from_utf8_lossy(s).trim_end()
                        ),
                        &mut failures,
                    );
                }
                Err(e) => check(
                    false,
                    format!("kvm_read linux_banner: {}", e),
                    &mut failures,
                ),
            }
        }
        None => check(false, "linux_banner not found".into(), &mut failures),
    }
    // kvm_kerndisp = kallsyms _text - link address
    if let Some(t) = text {
        let d = st.kerndisp();
        check(
            d == t.value.wrapping_sub(X86_64_LINK_TEXT) as i64,
            format!("kvm_kerndisp {:#x} (_text {:#x})", d, t.value),
            &mut failures,
        );
    }
    // An unmapped address: an error naming it.
    let mut small = [0u8; 8];
    match st.read(0x10, &mut small) {
        Err(e) => check(
            e.to_string().contains("0x10"),
            format!("unmapped 0x10: {}", e),
            &mut failures,
        ),
        Ok(n) => check(
            false,
            format!("unmapped 0x10 read {} bytes", n),
            &mut failures,
        ),
    }
    // The end of a mapped range that no other segment continues: a short count.
    match Kcore::open(Path::new(PROC_KCORE)) {
        Ok(k) => {
            let segs = k.segments();
            println!("KCORE-PROBE: info {} PT_LOAD segments", segs.len());
            for s in segs {
                println!(
                    "KCORE-PROBE: info segment {:#x}+{:#x} at file {:#x}",
                    s.vaddr, s.len, s.offset
                );
            }
            let end_of = |s: &kvm::live::kcore::Segment| s.vaddr.wrapping_add(s.len);
            // The kernel image's own segment (KCORE_TEXT: _text to _end) ends where nothing
            // else is mapped.
            let t = text.map_or(0, |t| t.value);
            let lone = segs.iter().find(|s| {
                t >= s.vaddr
                    && t - s.vaddr < s.len
                    && s.len >= 4096
                    && !segs
                        .iter()
                        .any(|o| o.vaddr <= end_of(s) && end_of(s) - o.vaddr < o.len)
            });
            match lone {
                Some(s) => {
                    let mut buf = [0u8; 64];
                    let at = end_of(s) - 16;
                    match st.read(at, &mut buf) {
                        Ok(n) => check(
                            n == 16,
                            format!(
                                "read 64 bytes 16 before the end of segment {:#x}+{:#x}: {} bytes",
                                s.vaddr, s.len, n
                            ),
                            &mut failures,
                        ),
                        Err(e) => check(
                            false,
                            format!("read at end of segment: {}", e),
                            &mut failures,
                        ),
                    }
                }
                None => check(
                    false,
                    "no segment holds _text alone to test a short read".into(),
                    &mut failures,
                ),
            }
        }
        Err(e) => check(false, format!("open /proc/kcore: {}", e), &mut failures),
    }
    drop(st);
    // A link-time System.map as execfile: values move by the running kernel's displacement.
    if let (Some(b), Some(t)) = (banner, text) {
        let disp = t.value.wrapping_sub(X86_64_LINK_TEXT);
        let map = format!(
            "{:016x} T _text\n{:016x} D linux_banner\n",
            X86_64_LINK_TEXT,
            b.value.wrapping_sub(disp)
        );
        let path = "/linktime.System.map";
        let r = std::fs::write(path, map)
            .map_err(|e| e.to_string())
            .and_then(|_| {
                Kvm::open(OpenArgs {
                    execfile: Some(std::ffi::OsStr::new(path)),
                    flags: libc::O_RDONLY,
                    ..Default::default()
                })
                .map_err(|e| e.to_string())
            });
        match r {
            Ok(kd) => {
                let mut st = kd.lock();
                let got = st.nlist(&[b"linux_banner"]).ok().and_then(|v| v[0]);
                check(
                    got.map(|s| s.value) == Some(b.value),
                    format!(
                        "link-time System.map relocated by {:#x}: linux_banner {:x?}",
                        disp,
                        got.map(|s| s.value)
                    ),
                    &mut failures,
                );
                let mut buf = vec![0u8; version.len()];
                let ok = got.is_some_and(|s| st.read(s.value, &mut buf).ok() == Some(buf.len()))
                    && buf == version;
                check(
                    ok,
                    "kvm_read through the relocated symbol == /proc/version".into(),
                    &mut failures,
                );
            }
            Err(e) => check(
                false,
                format!("kvm_open with System.map: {}", e),
                &mut failures,
            ),
        }
    }
    // kvm_write on the live system: refused.
    match Kvm::open(OpenArgs {
        flags: libc::O_RDWR,
        ..Default::default()
    }) {
        Ok(kd) => {
            let r = kd.lock().write(banner.map_or(0, |b| b.value), b"x");
            check(
                matches!(&r, Err(e) if e.to_string().contains("no writable kernel memory")),
                format!("kvm_write refused: {:?}", r.map_err(|e| e.to_string())),
                &mut failures,
            );
        }
        Err(e) => check(false, format!("kvm_open O_RDWR: {}", e), &mut failures),
    }
    if failures == 0 {
        println!("KCORE-PROBE: PASS");
    } else {
        println!("KCORE-PROBE: FAIL ({} checks failed)", failures);
    }
}
