//! Clock values of the dead kernel: run time in CPU ticks, swap time in scheduler ticks, and
//! the boot time that start times are relative to.

use super::*;

/// Clock values for runtime, swap time and start time.
pub(super) struct Clock {
    pub ticks: i32,
    pub hz: i32,
    pub freq: u64,
    /// Boot time (seconds, microseconds), when the kernel records it.
    pub boot: Option<(i64, i64)>,
}

/// FreeBSD's cputick2usec.
pub(super) fn cputick2usec(tick: u64, freq: u64) -> u64 {
    if freq == 0 {
        return 0;
    }
    (tick / freq)
        .wrapping_mul(1_000_000)
        .wrapping_add((tick % freq).wrapping_mul(1_000_000) / freq)
}

impl DeadFreeBsd {
    /// The time the system booted: timehands' th_boottime (FreeBSD 12 and later), else the
    /// `boottimebin` bintime, else the `boottime` timeval. None when none can be read.
    pub(super) fn boottime(
        &self,
        mem: &mut dyn Backend,
        syms: &mut dyn SymbolLookup,
    ) -> Option<(i64, i64)> {
        let btf = &self.btf;
        let bintime = |mem: &mut dyn Backend, va: u64| -> Option<(i64, i64)> {
            let sec = btf.field("bintime", "sec").ok()?;
            let frac = btf.field("bintime", "frac").ok()?;
            let size = btf.struct_size("bintime").ok()? as usize;
            let b = read_exact(mem, va, size, "bintime").ok()?;
            let sec = F {
                off: sec.offset() as usize,
                size: btf.size_of(sec.type_id)? as usize,
            }
            .get_signed(&b, self.be());
            let frac = F {
                off: frac.offset() as usize,
                size: 8,
            }
            .get(&b, self.be());
            Some((sec, ((frac >> 32) * 1_000_000) as i64 >> 32))
        };
        if let (Some(th), Ok(m)) = (
            syms.lookup("_timehands"),
            btf.field("timehands", "th_boottime"),
        ) {
            if let Ok(p) = self.word(mem, th, "timehands") {
                if p != 0 {
                    if let Some(t) = bintime(mem, p.wrapping_add(m.offset())) {
                        return Some(t);
                    }
                }
            }
        }
        if let Some(a) = syms.lookup("_boottimebin") {
            if let Some(t) = bintime(mem, a) {
                return Some(t);
            }
        }
        let a = syms.lookup("_boottime")?;
        let sec = btf.field("timeval", "tv_sec").ok()?;
        let usec = btf.field("timeval", "tv_usec").ok()?;
        let size = btf.struct_size("timeval").ok()? as usize;
        let b = read_exact(mem, a, size, "boottime").ok()?;
        let get = |m: crate::btf::Member| {
            Some(
                F {
                    off: m.offset() as usize,
                    size: btf.size_of(m.type_id)? as usize,
                }
                .get_signed(&b, self.be()),
            )
        };
        Some((get(sec)?, get(usec)?))
    }
}
