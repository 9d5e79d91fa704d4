//! Builds the C part of libkvm (_kvm_err is C-variadic), sets the soname and the export list,
//! and generates kvm.h with cbindgen into <target>/include/kvm.h.

use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());

    // _kvm_err: linked whole so the symbol is present even though Rust never calls it.
    cc::Build::new()
        .file(dir.join("csrc/kvm_err.c"))
        .warnings(true)
        .extra_warnings(true)
        .cargo_metadata(false)
        .compile("kvm_err");
    let out = std::env::var("OUT_DIR").unwrap();
    println!("cargo:rustc-link-search=native={}", out);
    println!("cargo:rustc-link-lib=static:+whole-archive=kvm_err");

    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libkvm.so.7");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        dir.join("libkvm.map").display()
    );
    for f in ["csrc/kvm_err.c", "libkvm.map", "cbindgen.toml", "src"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    header(&dir);
}

/// kvm.h from the extern "C" functions and C types of this crate.
fn header(dir: &std::path::Path) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("../target"));
    let inc = target.join("include");
    std::fs::create_dir_all(&inc).expect("create target/include");
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen: generating kvm.h")
        .write_to_file(inc.join("kvm.h"));
}
