//! The running system.
pub mod kcore;
pub mod linux;
