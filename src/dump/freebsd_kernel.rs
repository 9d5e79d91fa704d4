//! FreeBSD kernel globals read from a dump by symbol: the statistics calls (kvm_getloadavg,
//! kvm_getcptime, kvm_getncpus, kvm_getmaxcpu, kvm_getpcpu), UMA per-CPU reads
//! (kvm_read_zpcpu, kvm_counter_u64_fetch) and the dynamic per-CPU (DPCPU) table behind
//! kvm_dpcpu_setcpu and kvm_nlist's `pcpu_entry_` retry. Shared by every FreeBSD dump backend
//! (full ELF dumps and the amd64, arm64 and i386 minidumps); each passes the [`KernelAbi`] of
//! its kernel so that `long`, pointers and byte order are those of the examined kernel, not of
//! this library.
//!
//! Behaviour follows FreeBSD's lib/libkvm (kvm_getloadavg.c, kvm_cptime.c, kvm_pcpu.c and
//! kvm_private.c's `_kvm_nlist`): the same symbols, the same order of checks and the same
//! error texts, with the failing address or missing symbol added where FreeBSD says less.
//! Symbols are looked up with FreeBSD's n_name spelling (leading underscore): a kvm_open2
//! resolver sees exactly the names FreeBSD's libkvm would give it, and a kernel ELF lookup
//! falls back to the name without the underscore.
//!
//! Differences from FreeBSD, on purpose:
//! - FreeBSD refuses loadavg, cp_time, the CPU counts and DPCPU on non-native cores (its
//!   callers' `long` and pointers could not hold the kernel's). Here values are converted to
//!   the caller's types, so i386 and arm64 dumps are answered too; only kvm_nlist (classic
//!   `struct nlist`), kvm_read_zpcpu and kvm_counter_u64_fetch keep FreeBSD's native-only rule.
//! - FreeBSD caches the CPU counts in process-wide statics; here nothing is cached across
//!   handles (the DPCPU table is cached per handle, as FreeBSD does in the kvm_t).

use crate::abi::CPUSTATES;
use crate::backend::{Backend, DpcpuTable, SymbolLookup};
use crate::error::{Error, Result};

/// What the examined kernel's C types look like.
#[derive(Clone, Copy, Debug)]
pub struct KernelAbi {
    /// Architecture name for messages.
    pub arch: &'static str,
    /// sizeof(long) == sizeof(void *) (4 on ILP32, 8 on LP64).
    pub word: usize,
    pub big_endian: bool,
    /// sizeof(struct pcpu), when the kernel fixes it: amd64 and i386 kernels (FreeBSD 13 and
    /// later) pad struct pcpu to UMA_PCPU_ALLOC_SIZE (one 4 KiB page) and assert it at compile
    /// time (sys/{amd64,i386}/include/pcpu_aux.h, "fix pcpu size"). arm64 only asserts that it
    /// divides the page size, so its size depends on the kernel build: None.
    pub pcpu_size: Option<u64>,
    /// kvm_read_zpcpu adds the value of `__pcpu` (FreeBSD's `__OFFSET_BY_PCPU`, amd64 only).
    pub offset_by_pcpu: bool,
}

pub const AMD64: KernelAbi = KernelAbi {
    arch: "amd64",
    word: 8,
    big_endian: false,
    pcpu_size: Some(4096),
    offset_by_pcpu: true,
};

pub const ARM64: KernelAbi = KernelAbi {
    arch: "arm64",
    word: 8,
    big_endian: false,
    pcpu_size: None,
    offset_by_pcpu: false,
};

pub const I386: KernelAbi = KernelAbi {
    arch: "i386",
    word: 4,
    big_endian: false,
    pcpu_size: Some(4096),
    offset_by_pcpu: false,
};

/// More CPUs than any FreeBSD kernel supports (MAXCPU is at most 1024 today): a larger
/// mp_maxcpus is damage, not a reason to allocate gigabytes.
const MAX_PLAUSIBLE_CPUS: i64 = 1 << 16;

impl KernelAbi {
    fn uint(&self, b: &[u8]) -> u64 {
        let mut v = 0u64;
        if self.big_endian {
            for &x in b {
                v = (v << 8) | x as u64;
            }
        } else {
            for &x in b.iter().rev() {
                v = (v << 8) | x as u64;
            }
        }
        v
    }

    fn sint(&self, b: &[u8]) -> i64 {
        let v = self.uint(b);
        let bits = 8 * b.len() as u32;
        if bits >= 64 {
            v as i64
        } else {
            ((v << (64 - bits)) as i64) >> (64 - bits)
        }
    }

    /// An unsigned `long` / pointer / uintptr_t.
    fn word_at(&self, b: &[u8], i: usize) -> u64 {
        self.uint(&b[i * self.word..(i + 1) * self.word])
    }

    /// A signed `long`.
    fn long_at(&self, b: &[u8], i: usize) -> i64 {
        self.sint(&b[i * self.word..(i + 1) * self.word])
    }
}

/// Reads exactly `len` bytes at `va`; `what` names the object in the error.
fn read_exact<B: Backend + ?Sized>(b: &mut B, va: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    match b.read(va, &mut buf) {
        Ok(n) if n == len => Ok(buf),
        Ok(n) => Err(Error::msg(format!(
            "{}: short read at 0x{:x} ({} of {} bytes)",
            what, va, n, len
        ))),
        Err(e) => Err(Error::msg(format!("{}: {}", what, e))),
    }
}

fn read_i32<B: Backend + ?Sized>(b: &mut B, abi: &KernelAbi, va: u64, what: &str) -> Result<i32> {
    let v = read_exact(b, va, 4, what)?;
    Ok(abi.sint(&v) as i32)
}

/// kvm_getloadavg: `averunnable` is `struct loadavg { fixpt_t ldavg[3]; long fscale; }`
/// (fixpt_t = u32; on LP64 four bytes of padding precede `fscale`). As FreeBSD does, a
/// separate `fscale` variable (old kernels) overrides the structure's when it exists and reads.
pub fn loadavg<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<[f64; 3]> {
    let addr = syms
        .lookup("_averunnable")
        .ok_or_else(|| Error::NoSymbol("_averunnable".into()))?;
    let fscale_off = 12usize.next_multiple_of(abi.word);
    let size = fscale_off + abi.word;
    let raw = read_exact(b, addr, size, "can't read averunnable")?;
    let mut fscale = abi.sint(&raw[fscale_off..fscale_off + abi.word]);
    if let Some(fs) = syms.lookup("_fscale") {
        if let Ok(v) = read_i32(b, abi, fs, "fscale") {
            fscale = v as i64;
        }
    }
    let mut out = [0f64; 3];
    for (i, o) in out.iter_mut().enumerate() {
        let ld = abi.uint(&raw[i * 4..i * 4 + 4]);
        // A zero fscale gives inf/NaN, as FreeBSD's double division does.
        *o = ld as f64 / fscale as f64;
    }
    Ok(out)
}

/// kvm_getcptime: `cp_time` is `long[CPUSTATES]`.
///
/// FreeBSD falls back to summing `pc_cp_time` over every CPU's struct pcpu when the kernel has
/// no `cp_time` symbol. That needs the offset of pc_cp_time inside the kernel's struct pcpu,
/// which this library has no compiled-in layout for: a clear error instead of a guess.
pub fn cptime<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<[i64; CPUSTATES]> {
    let Some(addr) = syms.lookup("_cp_time") else {
        return Err(Error::unsupported(
            "_cp_time: no such symbol (summing the per-CPU pc_cp_time instead needs the kernel's struct pcpu layout, not supported on FreeBSD dumps)",
        ));
    };
    let raw = read_exact(b, addr, CPUSTATES * abi.word, "cannot read cp_time array")?;
    let mut out = [0i64; CPUSTATES];
    for (i, o) in out.iter_mut().enumerate() {
        *o = abi.long_at(&raw, i);
    }
    Ok(out)
}

/// What FreeBSD's `_kvm_pcpu_init` gathers.
struct PcpuInfo {
    maxcpu: i32,
    ncpus: i32,
    /// Value of `__pcpu` (amd64), else 0.
    pcpu_base: u64,
    /// `cpuid_to_pcpu[0 .. maxcpu]`: each CPU's struct pcpu, 0 for absent CPUs.
    cpuid_to_pcpu: Vec<u64>,
}

/// FreeBSD's `_kvm_pcpu_init`, same order of checks and messages: the CPU counts are only
/// answered when `cpuid_to_pcpu` (and `__pcpu` on amd64) are there too.
fn pcpu_init<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<PcpuInfo> {
    let c2p = syms
        .lookup("_cpuid_to_pcpu")
        .filter(|&v| v != 0)
        .ok_or_else(|| Error::msg("unable to find cpuid_to_pcpu"))?;
    let maxp = syms
        .lookup("_mp_maxcpus")
        .filter(|&v| v != 0)
        .ok_or_else(|| Error::msg("unable to find mp_maxcpus"))?;
    let maxcpu = read_i32(b, abi, maxp, "cannot read mp_maxcpus")?;
    let ncp = syms
        .lookup("_mp_ncpus")
        .filter(|&v| v != 0)
        .ok_or_else(|| Error::msg("unable to find mp_ncpus"))?;
    let ncpus = read_i32(b, abi, ncp, "cannot read mp_ncpus")?;
    let mut pcpu_base = 0;
    if abi.offset_by_pcpu {
        let p = syms
            .lookup("___pcpu")
            .filter(|&v| v != 0)
            .ok_or_else(|| Error::msg("unable to find __pcpu"))?;
        let raw = read_exact(b, p, abi.word, "cannot read __pcpu")?;
        pcpu_base = abi.word_at(&raw, 0);
    }
    if !(0..=MAX_PLAUSIBLE_CPUS).contains(&(maxcpu as i64)) {
        return Err(Error::msg(format!(
            "cannot read cpuid_to_pcpu array: mp_maxcpus is {} (damaged dump?)",
            maxcpu
        )));
    }
    let raw = read_exact(
        b,
        c2p,
        maxcpu as usize * abi.word,
        "cannot read cpuid_to_pcpu array",
    )?;
    let cpuid_to_pcpu = (0..maxcpu as usize).map(|i| abi.word_at(&raw, i)).collect();
    Ok(PcpuInfo {
        maxcpu,
        ncpus,
        pcpu_base,
        cpuid_to_pcpu,
    })
}

/// kvm_getncpus: `mp_ncpus`.
pub fn ncpus<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<i32> {
    Ok(pcpu_init(b, syms, abi)?.ncpus)
}

/// kvm_getmaxcpu: `mp_maxcpus`.
pub fn maxcpu<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<i32> {
    Ok(pcpu_init(b, syms, abi)?.maxcpu)
}

fn pcpu_size_unknown(abi: &KernelAbi, what: &str) -> Error {
    Error::unsupported(format!(
        "{}: sizeof(struct pcpu) depends on the kernel build on FreeBSD {} (only amd64 and i386 kernels fix it at one page); not supported on this dump",
        what, abi.arch
    ))
}

/// kvm_getpcpu: a copy of CPU `cpu`'s struct pcpu (sizeof(struct pcpu) bytes at
/// cpuid_to_pcpu[cpu]); Ok(None) for CPUs at or above mp_maxcpus or absent.
pub fn getpcpu<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
    cpu: i32,
) -> Result<Option<Vec<u8>>> {
    let info = pcpu_init(b, syms, abi)?;
    let Some(&pc) = usize::try_from(cpu)
        .ok()
        .and_then(|c| info.cpuid_to_pcpu.get(c))
    else {
        return Ok(None);
    };
    if pc == 0 {
        return Ok(None);
    }
    let size = abi
        .pcpu_size
        .ok_or_else(|| pcpu_size_unknown(abi, "kvm_getpcpu"))?;
    read_exact(b, pc, size as usize, "unable to read per-CPU data").map(Some)
}

/// kvm_read_zpcpu's address offset for `cpu`: FreeBSD reads `base + sizeof(struct pcpu) * cpu`
/// (plus `__pcpu` on amd64); struct pcpu being exactly UMA_PCPU_ALLOC_SIZE there, this is the
/// kernel's own zpcpu_offset_cpu. Any CPU number is accepted, as FreeBSD does.
pub fn zpcpu_offset<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
    cpu: u32,
) -> Result<Option<u64>> {
    let info = pcpu_init(b, syms, abi)?;
    let size = abi
        .pcpu_size
        .ok_or_else(|| pcpu_size_unknown(abi, "kvm_read_zpcpu"))?;
    Ok(Some(
        info.pcpu_base.wrapping_add(size.wrapping_mul(cpu as u64)),
    ))
}

/// FreeBSD's `_kvm_dpcpu_init`: `__start_set_pcpu`, `__stop_set_pcpu`, `dpcpu_off` and
/// `mp_maxcpus` must all be known; `dpcpu_off` holds mp_maxcpus uintptr_t offsets.
pub fn dpcpu_table<B: Backend + ?Sized>(
    b: &mut B,
    syms: &mut dyn SymbolLookup,
    abi: &KernelAbi,
) -> Result<Option<DpcpuTable>> {
    let mut need = |name: &str| {
        syms.lookup(name)
            .ok_or_else(|| Error::NoSymbol(name.to_string()))
    };
    let start = need("___start_set_pcpu")?;
    let stop = need("___stop_set_pcpu")?;
    let off = need("_dpcpu_off")?;
    let maxp = need("_mp_maxcpus")?;
    let raw = read_exact(b, maxp, 4, "cannot read mp_maxcpus")?;
    let maxcpus = abi.uint(&raw);
    if maxcpus as i64 > MAX_PLAUSIBLE_CPUS {
        return Err(Error::msg(format!(
            "cannot read dpcpu_off: mp_maxcpus is {} (damaged dump?)",
            maxcpus
        )));
    }
    let raw = read_exact(
        b,
        off,
        maxcpus as usize * abi.word,
        "cannot read dpcpu_off array",
    )?;
    let off = (0..maxcpus as usize)
        .map(|i| abi.word_at(&raw, i))
        .collect();
    Ok(Some(DpcpuTable { start, stop, off }))
}

/// The Backend methods of a FreeBSD dump backend, for a kernel with ABI `$abi`.
///
/// The vnet (`vnet_entry_`) retry of FreeBSD's `_kvm_nlist` needs struct proc, ucred, prison
/// and vnet layouts from the kernel's types: its selection lives with the process walker
/// (`crate::proc::freebsd_dead::vnet`, through the `freebsd_dead_procs!` methods).
macro_rules! freebsd_kernel_stats {
    ($abi:expr) => {
        fn loadavg(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<[f64; 3]> {
            $crate::dump::freebsd_kernel::loadavg(self, syms, &$abi)
        }
        fn cptime(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<[i64; $crate::abi::CPUSTATES]> {
            $crate::dump::freebsd_kernel::cptime(self, syms, &$abi)
        }
        fn ncpus(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<i32> {
            $crate::dump::freebsd_kernel::ncpus(self, syms, &$abi)
        }
        fn maxcpu(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<i32> {
            $crate::dump::freebsd_kernel::maxcpu(self, syms, &$abi)
        }
        fn getpcpu(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
            cpu: i32,
        ) -> $crate::error::Result<Option<Vec<u8>>> {
            $crate::dump::freebsd_kernel::getpcpu(self, syms, &$abi, cpu)
        }
        fn zpcpu_offset(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
            cpu: u32,
        ) -> $crate::error::Result<Option<u64>> {
            $crate::dump::freebsd_kernel::zpcpu_offset(self, syms, &$abi, cpu)
        }
        fn dpcpu_table(
            &mut self,
            syms: &mut dyn $crate::backend::SymbolLookup,
        ) -> $crate::error::Result<Option<$crate::backend::DpcpuTable>> {
            $crate::dump::freebsd_kernel::dpcpu_table(self, syms, &$abi)
        }
    };
}
pub(crate) use freebsd_kernel_stats;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_long_decoding_follows_the_kernel_word() {
        assert_eq!(I386.long_at(&[0xff, 0xff, 0xff, 0xff], 0), -1);
        assert_eq!(
            AMD64.long_at(&[0xfe; 8], 0),
            0xfefe_fefe_fefe_fefeu64 as i64
        );
        assert_eq!(I386.word_at(&[0, 0, 0, 0, 1, 2, 3, 4], 1), 0x0403_0201);
        let be = KernelAbi {
            big_endian: true,
            ..AMD64
        };
        assert_eq!(be.word_at(&[0, 0, 0, 0, 0, 0, 1, 2], 0), 0x102);
    }
}
