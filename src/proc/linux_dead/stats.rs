//! System statistics of a dead Linux kernel: load average, CPU counts, cp_time, per-CPU offsets.

use super::{read_exact, read_u64, sym, KernelMemory};
use crate::abi::CPUSTATES;
use crate::btf::Btf;
use crate::error::{Error, Result};

/// Linux's load average fixed point (include/linux/sched/loadavg.h FSHIFT).
const LINUX_FSHIFT: u32 = 11;
/// USER_HZ: cp_time is reported in the ticks /proc/stat uses (the live backend does the same).
const USER_HZ: u64 = 100;
const MAX_CPUS: u32 = 8192;

/// kvm_getloadavg: avenrun[3].
pub fn loadavg(mem: &mut dyn KernelMemory) -> Result<[f64; 3]> {
    let a = sym(mem, "avenrun")?;
    let mut out = [0.0; 3];
    for (i, v) in out.iter_mut().enumerate() {
        let raw = read_u64(mem, a + 8 * i as u64)?;
        *v = raw as f64 / (1u64 << LINUX_FSHIFT) as f64;
    }
    Ok(out)
}

/// nr_cpu_ids: the number of possible CPU ids (kvm_getmaxcpu).
pub fn maxcpu(mem: &mut dyn KernelMemory) -> Result<i32> {
    let a = sym(mem, "nr_cpu_ids")?;
    let mut b = [0u8; 4];
    read_exact(mem, a, &mut b)?;
    let n = u32::from_le_bytes(b);
    if n == 0 || n > MAX_CPUS {
        return Err(Error::format(format!(
            "nr_cpu_ids = {} is not plausible",
            n
        )));
    }
    Ok(n as i32)
}

fn mask(mem: &mut dyn KernelMemory, name: &str, n: u32) -> Result<Vec<bool>> {
    let a = sym(mem, name)?;
    let words = n.div_ceil(64) as usize;
    let mut b = vec![0u8; words * 8];
    read_exact(mem, a, &mut b)?;
    Ok((0..n as usize)
        .map(|i| b[i / 8] & (1 << (i % 8)) != 0)
        .collect())
}

/// kvm_getncpus: online CPUs (popcount of __cpu_online_mask).
pub fn ncpus(mem: &mut dyn KernelMemory) -> Result<i32> {
    let n = maxcpu(mem)? as u32;
    Ok(mask(mem, "__cpu_online_mask", n)?
        .iter()
        .filter(|&&b| b)
        .count() as i32)
}

/// __per_cpu_offset[cpu] for a possible CPU, None otherwise.
pub fn percpu_offset(mem: &mut dyn KernelMemory, cpu: u32) -> Result<Option<u64>> {
    let n = maxcpu(mem)? as u32;
    if cpu >= n || !mask(mem, "__cpu_possible_mask", n)?[cpu as usize] {
        return Ok(None);
    }
    let tab = sym(mem, "__per_cpu_offset")?;
    Ok(Some(read_u64(mem, tab + 8 * cpu as u64)?))
}

/// kvm_getcptime: kernel_cpustat.cpustat[] summed over possible CPUs, in USER_HZ ticks, mapped
/// to FreeBSD's CP_USER, CP_NICE, CP_SYS, CP_INTR, CP_IDLE (as the live backend maps /proc/stat).
/// Layout and indexes come from BTF when available; without it the layout every kernel since
/// 3.x has (cpustat[] first, enum cpu_usage_stat order USER, NICE, SYSTEM, SOFTIRQ, IRQ, IDLE,
/// IOWAIT, STEAL) is assumed, so the call works on a dump whose BTF is missing.
pub fn cptime(mem: &mut dyn KernelMemory, btf: Option<&Btf>) -> Result<[i64; CPUSTATES]> {
    let var = sym(mem, "kernel_cpustat")?;
    let names = [
        "CPUTIME_USER",
        "CPUTIME_NICE",
        "CPUTIME_SYSTEM",
        "CPUTIME_SOFTIRQ",
        "CPUTIME_IRQ",
        "CPUTIME_IDLE",
        "CPUTIME_IOWAIT",
        "CPUTIME_STEAL",
    ];
    let (arr, idxs): (u64, Vec<u64>) = match btf {
        Some(btf) => {
            let arr = btf.field("kernel_cpustat", "cpustat")?.offset();
            let idx = |n: &str| -> Result<u64> {
                btf.enum_value(n)
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| Error::format(format!("kernel BTF: no enumerator {}", n)))
            };
            (arr, names.iter().map(|n| idx(n)).collect::<Result<_>>()?)
        }
        None => (0, (0..8).collect()),
    };
    let n = maxcpu(mem)? as u32;
    let possible = mask(mem, "__cpu_possible_mask", n)?;
    let mut sum = [0u64; 8];
    for cpu in 0..n {
        if !possible[cpu as usize] {
            continue;
        }
        let Some(off) = percpu_offset(mem, cpu)? else {
            continue;
        };
        let base = var.wrapping_add(off).wrapping_add(arr);
        for (s, &i) in sum.iter_mut().zip(&idxs) {
            *s = s.saturating_add(read_u64(mem, base + 8 * i)?);
        }
    }
    let t = |ns: u64| (ns / (1_000_000_000 / USER_HZ)) as i64;
    // [user, nice, system, softirq, irq, idle, iowait, steal]
    Ok([
        t(sum[0]),
        t(sum[1]),
        t(sum[2] + sum[7]),
        t(sum[3] + sum[4]),
        t(sum[5] + sum[6]),
    ])
}

/// kvm_getpcpu: Linux has no `struct pcpu`. A CPU that does not exist gives `None` (FreeBSD's
/// NULL); an existing one an error pointing to kvm_dpcpu_setcpu / kvm_read_zpcpu, which work
/// with Linux per-CPU variables through `percpu_offset`.
pub fn getpcpu(mem: &mut dyn KernelMemory, cpu: i32) -> Result<Option<Vec<u8>>> {
    let Ok(cpu) = u32::try_from(cpu) else {
        return Ok(None);
    };
    match percpu_offset(mem, cpu)? {
        None => Ok(None),
        Some(_) => Err(Error::unsupported(
            "kvm_getpcpu: a Linux kernel has no struct pcpu; read per-CPU variables with \
             kvm_dpcpu_setcpu and kvm_read_zpcpu",
        )),
    }
}
