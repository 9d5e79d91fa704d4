//! Page-table walkers, one file per architecture.

pub mod x86_64;
