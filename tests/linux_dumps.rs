//! Linux crash dumps (ELF, kdump-compressed, flattened) on the real generated dump sets.

mod common;

use common::*;

#[test]
fn banner_reads_proc_version_on_every_set_and_format() {
    for (label, dir) in sets() {
        let version = std::fs::read(dir.join("truth/version")).unwrap();
        for f in FORMATS {
            let core = dir.join(f);
            let k = open_bare(&core).unwrap_or_else(|e| panic!("{} {}: open: {}", label, f, e));
            let addr = nlist1(&k, "linux_banner").expect("linux_banner");
            let mut buf = vec![0u8; version.len()];
            let n = k.lock().read(addr, &mut buf).expect("read banner");
            assert_eq!(n, buf.len(), "{} {}", label, f);
            assert_eq!(
                String::from_utf8_lossy(&buf),
                String::from_utf8_lossy(&version),
                "{} {}",
                label,
                f
            );
        }
    }
}
