//! Turning a kernel's process table into `kinfo_proc` records: /proc on the live system,
//! the task list of a dead Linux kernel.
pub mod linux_dead;
