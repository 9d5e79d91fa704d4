//! kvm_getloadavg, kvm_getcptime, kvm_getncpus, kvm_getmaxcpu, kvm_getswapinfo on the live
//! system, compared with /proc and /sys read independently.

use std::ffi::OsStr;

use kvm::abi::{KvmSwap, SWIF_DEV_PREFIX};
use kvm::{Kvm, OpenArgs};

fn open() -> Box<Kvm> {
    Kvm::open(OpenArgs {
        corefile: Some(OsStr::new("/dev/null")),
        ..Default::default()
    })
    .expect("kvm_open of the live system")
}

fn loadavg_file() -> [f64; 3] {
    let t = std::fs::read_to_string("/proc/loadavg").unwrap();
    let v: Vec<f64> = t
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    [v[0], v[1], v[2]]
}

#[test]
fn loadavg_equals_proc_loadavg() {
    let kd = open();
    // The kernel updates the averages every 5 s: the answer equals a reading before or after.
    let before = loadavg_file();
    let got = kd.lock().loadavg().unwrap();
    let after = loadavg_file();
    assert!(
        got == before || got == after,
        "{got:?} vs {before:?} / {after:?}"
    );
}

fn cpu_line() -> Vec<i64> {
    let t = std::fs::read_to_string("/proc/stat").unwrap();
    let l = t.lines().find(|l| l.starts_with("cpu ")).unwrap();
    l.split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect()
}

#[test]
fn cptime_is_the_cpu_line_in_freebsd_order() {
    let kd = open();
    let b = cpu_line();
    let got = kd.lock().cptime().unwrap();
    let a = cpu_line();
    // user, nice, system, idle, iowait, irq, softirq
    let fold = |v: &[i64]| [v[0], v[1], v[2], v[5] + v[6], v[3] + v[4]];
    let (lo, hi) = (fold(&b), fold(&a));
    for i in 0..5 {
        assert!(
            lo[i] <= got[i] && got[i] <= hi[i],
            "state {i}: {} <= {} <= {}",
            lo[i],
            got[i],
            hi[i]
        );
    }
    assert!(got[4] > 0, "some idle time");
}

fn cpu_list_file(name: &str) -> Vec<u32> {
    let t = std::fs::read_to_string(format!("/sys/devices/system/cpu/{name}")).unwrap();
    let mut v = Vec::new();
    for part in t.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => v.extend(a.parse::<u32>().unwrap()..=b.parse().unwrap()),
            None => v.push(part.parse().unwrap()),
        }
    }
    v
}

#[test]
fn ncpus_and_maxcpu() {
    let kd = open();
    let ncpus = kd.lock().ncpus().unwrap();
    let maxcpu = kd.lock().maxcpu().unwrap();
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let lines = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    assert_eq!(ncpus as usize, cpu_list_file("online").len());
    assert_eq!(ncpus as usize, lines);
    assert_eq!(
        maxcpu as u32,
        cpu_list_file("possible").iter().max().unwrap() + 1
    );
    assert!(maxcpu >= ncpus && ncpus >= 1);
}

fn name(s: &KvmSwap) -> String {
    let n = s.ksw_devname.iter().position(|&c| c == 0).unwrap();
    String::from_utf8_lossy(&s.ksw_devname[..n]).into_owned()
}

#[test]
fn swapinfo_rows_and_total() {
    let kd = open();
    let page_kb = 4;
    let text = std::fs::read_to_string("/proc/swaps").unwrap();
    let devices: Vec<(String, u64, u64)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (
                w[0].replace("\\040", " "),
                w[2].parse().unwrap(),
                w[3].parse().unwrap(),
            )
        })
        .collect();
    for flags in [0, SWIF_DEV_PREFIX] {
        let rows = kd.lock().swapinfo(16, flags).unwrap();
        assert_eq!(
            rows.len(),
            devices.len().min(15) + 1,
            "devices then the total row"
        );
        let total = rows.last().unwrap();
        assert_eq!(name(total), "", "the total row has an empty name");
        let (mut t, mut u) = (0u32, 0u32);
        for (row, (dev, size, used)) in rows.iter().zip(&devices) {
            let want = if flags & SWIF_DEV_PREFIX != 0 {
                dev.clone()
            } else {
                dev.strip_prefix("/dev/").unwrap_or(dev).to_string()
            };
            assert_eq!(name(row), want);
            // Used can move between the two reads; size cannot.
            assert_eq!(row.ksw_total as u64, size / page_kb);
            assert!((row.ksw_used as i64 - (used / page_kb) as i64).abs() < 1024);
            t += row.ksw_total;
            u += row.ksw_used;
        }
        assert_eq!((total.ksw_total, total.ksw_used), (t, u));
    }
    // maxswap 1: only the total row (it still covers every device).
    let rows = kd.lock().swapinfo(1, 0).unwrap();
    assert_eq!(rows.len(), 1);
    if devices.is_empty() {
        println!("note: no swap configured; only the empty total row was checked");
        assert_eq!((rows[0].ksw_total, rows[0].ksw_used), (0, 0));
    }
}
