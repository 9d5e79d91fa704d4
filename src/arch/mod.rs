//! Page-table walkers, one file per architecture.
pub mod fbsd_amd64;
pub mod fbsd_arm64;
pub mod fbsd_i386;
pub mod x86_64;
