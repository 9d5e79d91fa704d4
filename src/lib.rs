//! Safe core of a FreeBSD libkvm-compatible kernel memory interface for Linux.
//!
//! Layers (see README.md): `kvm` (the descriptor) -> `backend` (trait) -> `live` / `dump`
//! (sources of kernel memory) -> `arch` (page-table walks); `symbols` builds one hashed index;
//! `proc` turns /proc or a dead kernel's task list into `kinfo_proc` records.
//! Nothing here knows about C; `cabi/` is the extern "C" layer.

pub mod abi;
pub mod arch;
pub mod backend;
pub mod btf;
pub mod ctf;
pub mod dump;
pub mod error;
pub mod kvm;
pub mod live;
pub mod proc;
pub mod symbols;

pub use backend::{ArgvKind, Backend, KernelFamily, SymbolLookup};
pub use error::{Error, Result};
pub use kvm::{Kvm, KvmState, OpenArgs, Resolver};
