//! System statistics of the live Linux system: kvm_getloadavg, kvm_getswapinfo, kvm_getcptime,
//! kvm_getncpus, kvm_getmaxcpu (from /proc and /sys).

use crate::abi::{self, KvmSwap, CPUSTATES, SWIF_DEV_PREFIX};
use crate::error::{Error, Result};
use crate::proc::procfs_parse as parse;

fn slurp(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::sys(path, e))
}

/// /proc/loadavg.
pub fn loadavg() -> Result<[f64; 3]> {
    parse::parse_loadavg(&slurp("/proc/loadavg")?)
        .ok_or_else(|| Error::format("/proc/loadavg: cannot parse the load averages"))
}

/// The `cpu` line of /proc/stat in CPUSTATES order (ticks of USER_HZ).
pub fn cptime() -> Result<[i64; CPUSTATES]> {
    parse::parse_cptime(&slurp("/proc/stat")?)
        .ok_or_else(|| Error::format("/proc/stat: no readable cpu line"))
}

/// Online CPUs (FreeBSD mp_ncpus).
pub fn ncpus() -> Result<i32> {
    if let Ok(t) = std::fs::read("/sys/devices/system/cpu/online") {
        if let Some((n, _)) = parse::parse_cpu_list(&t) {
            return Ok(n as i32);
        }
    }
    match parse::count_cpu_lines(&slurp("/proc/stat")?) {
        0 => Err(Error::format("/proc/stat: no cpuN lines")),
        n => Ok(n as i32),
    }
}

/// Highest possible CPU id + 1 (FreeBSD mp_maxcpus: the size of per-CPU arrays).
pub fn maxcpu() -> Result<i32> {
    if let Ok(t) = std::fs::read("/sys/devices/system/cpu/possible") {
        if let Some((_, top)) = parse::parse_cpu_list(&t) {
            return Ok(top as i32);
        }
    }
    ncpus()
}

/// Swap devices from /proc/swaps in pages. Device names lose their "/dev/" unless
/// SWIF_DEV_PREFIX is given (FreeBSD names devices relative to /dev); swap files keep
/// their path. The handle adds the total row.
pub fn swapinfo(flags: i32, page: u64) -> Result<Vec<KvmSwap>> {
    Ok(swap_rows(&slurp("/proc/swaps")?, flags, page))
}

/// The conversion behind `swapinfo`, on given /proc/swaps text.
pub fn swap_rows(text: &[u8], flags: i32, page: u64) -> Vec<KvmSwap> {
    let kb_per_page = (page / 1024).max(1);
    parse::parse_swaps(text)
        .into_iter()
        .map(|r| {
            let mut s = KvmSwap::default();
            let name: &[u8] = match r.name.strip_prefix(b"/dev/") {
                Some(rest) if flags & SWIF_DEV_PREFIX == 0 => rest,
                _ => &r.name,
            };
            abi::set_cstr(&mut s.ksw_devname, name);
            s.ksw_total = (r.size_kb / kb_per_page).min(u32::MAX as u64) as u32;
            s.ksw_used = (r.used_kb / kb_per_page).min(u32::MAX as u64) as u32;
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_names_and_pages() {
        let t = b"Filename Type Size Used Priority\n/dev/sda2 partition 8192 4096 -2\n/swapfile file 40 0 -3\n";
        let rows = swap_rows(t, 0, 4096);
        assert_eq!(&rows[0].ksw_devname[..5], b"sda2\0");
        assert_eq!((rows[0].ksw_total, rows[0].ksw_used), (2048, 1024));
        assert_eq!(&rows[1].ksw_devname[..10], b"/swapfile\0");
        let rows = swap_rows(t, SWIF_DEV_PREFIX, 4096);
        assert_eq!(&rows[0].ksw_devname[..10], b"/dev/sda2\0");
    }
}
