//! Fuzz target: the /proc text parsers behind kvm_getprocs and the live statistics must never
//! panic, whatever bytes a procfs file (or a hostile FUSE mount over /proc) returns.
#![no_main]

use kvm::proc::{linux_stats, procfs_parse as p};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(st) = p::parse_stat(data) {
        let _ = kvm::proc::linux_map::map_state(st.state);
        let _ = kvm::proc::linux_map::map_priority(st.policy, st.rt_priority, st.priority, st.nice, false);
        let _ = kvm::proc::linux_map::ticks_to_tv(st.utime, 100);
        let _ = kvm::proc::linux_map::ticks_to_us(st.starttime, 1);
    }
    let _ = p::parse_status(data);
    let _ = p::parse_loadavg(data);
    let _ = p::parse_cptime(data);
    let _ = p::parse_btime(data);
    let _ = p::count_cpu_lines(data);
    let _ = p::parse_uptime_cs(data);
    let _ = p::parse_cpu_list(data);
    let _ = linux_stats::swap_rows(data, 0, 4096);
    let _ = linux_stats::swap_rows(data, kvm::abi::SWIF_DEV_PREFIX, 1);
    let _ = kvm::proc::linux_map::wmesg_for(data);
});
