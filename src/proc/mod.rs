//! Turning a kernel's process table into `kinfo_proc` records: /proc on the live system,
//! the task list of a dead Linux kernel.
pub mod freebsd_dead;
pub mod linux_dead;
pub mod linux_map;
pub mod linux_procfs;
pub mod linux_stats;
pub mod procfs_parse;
