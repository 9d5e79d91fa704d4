//! The running system.
pub mod linux;
