//! Linux task facts -> FreeBSD `kinfo_proc` vocabulary (state, flags, priority, wait message),
//! as ../shared/spec/kinfo_proc-from-linux.md §4 maps them. Pure functions, no I/O.

use crate::abi::{self, Priority, Timeval};

// FreeBSD values the shared abi module does not define (values from ../shared/abi).
pub const P_STOPPED_TRACE: i64 = 0x40000;
pub const PS_INMEM: i64 = 0x1;
pub use crate::abi::TDF_SINTR;
/// ps prints 'I' (idle) for sleepers whose ki_slptime reaches MAXSLP.
pub const MAXSLP: u32 = 20;
pub const PRI_FIFO: u8 = 10;
pub const PRI_MIN_REALTIME: u32 = 16;
pub const PRI_MIN_KERN: u32 = 48;
pub const PRI_MAX_KERN: u32 = 87;
pub const PRI_MIN_TIMESHARE: u32 = 88;
pub const PRI_MAX_TIMESHARE: u32 = 223;
pub const PRI_MAX_IDLE: u32 = 255;

// Linux PF_* task flags (stat field 9).
pub const PF_EXITING: u32 = 0x4;
pub const PF_FORKNOEXEC: u32 = 0x40;
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// What a Linux state letter means for a FreeBSD record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateMap {
    pub stat: u8,
    pub tdflags: i64,
    pub flags: i64,
    pub slptime: u32,
}

/// Linux `stat` state letter -> ki_stat, ki_tdflags, extra ki_flag bits, ki_slptime (§4.4).
pub fn map_state(c: u8) -> StateMap {
    let m = |stat, tdflags, flags, slptime| StateMap {
        stat,
        tdflags,
        flags,
        slptime,
    };
    match c {
        b'R' | b'W' => m(abi::SRUN, 0, 0, 0),
        b'S' | b'P' => m(abi::SSLEEP, TDF_SINTR, 0, 0),
        b'D' | b'K' => m(abi::SSLEEP, 0, 0, 0),
        b'I' => m(abi::SSLEEP, TDF_SINTR, 0, MAXSLP),
        b'T' => m(abi::SSTOP, 0, abi::P_STOPPED_SIG, 0),
        b't' => m(abi::SSTOP, 0, P_STOPPED_TRACE, 0),
        b'Z' | b'X' | b'x' => m(abi::SZOMB, 0, abi::P_WEXIT, 0),
        _ => m(abi::SSLEEP, TDF_SINTR, 0, 0),
    }
}

/// True for states in which a task can have a wait channel worth reading.
pub fn is_blocked(c: u8) -> bool {
    matches!(c, b'S' | b'D' | b'I')
}

fn rt_level(rtp: i64) -> u8 {
    // POSIX 1..99 onto FreeBSD's 32 real-time levels; 99 is the most urgent (lowest number).
    let rtp = rtp.clamp(1, 99) as u32;
    (PRI_MIN_REALTIME + (31 - (rtp - 1) * 31 / 98)) as u8
}

fn nice_level(nice: i32, lo: u32, hi: u32) -> u8 {
    let step = (nice.clamp(-20, 19) + 20) as u32;
    (lo + step * (hi - lo) / 39) as u8
}

/// struct priority from scheduling policy, rt priority, effective priority (stat 18), nice
/// (§4.7). Kernel threads of the normal policy land in FreeBSD's kernel range.
pub fn map_priority(policy: u32, rtp: u32, prio18: i32, nice: i32, kthread: bool) -> Priority {
    let (class, native, level) = match policy {
        1 | 2 => {
            let native = rt_level(rtp as i64);
            let level = if prio18 < 0 {
                rt_level(-1 - prio18 as i64)
            } else {
                native
            };
            (
                if policy == 1 {
                    PRI_FIFO
                } else {
                    abi::PRI_REALTIME
                },
                native,
                level,
            )
        }
        6 => (
            abi::PRI_REALTIME,
            PRI_MIN_REALTIME as u8,
            PRI_MIN_REALTIME as u8,
        ),
        5 => (abi::PRI_IDLE, PRI_MAX_IDLE as u8, PRI_MAX_IDLE as u8),
        _ if kthread => {
            let n = nice_level(nice, PRI_MIN_KERN, PRI_MAX_KERN);
            (abi::PRI_TIMESHARE, n, n)
        }
        _ => {
            let n = nice_level(nice, PRI_MIN_TIMESHARE, PRI_MAX_TIMESHARE);
            // A normal task boosted by priority inheritance shows an RT effective priority.
            let level = if prio18 < 0 {
                rt_level(-1 - prio18 as i64)
            } else {
                n
            };
            (abi::PRI_TIMESHARE, n, level)
        }
    };
    Priority {
        pri_class: class,
        pri_level: level,
        pri_native: native,
        pri_user: native,
    }
}

/// Clock ticks -> timeval.
pub fn ticks_to_tv(t: u64, hz: u64) -> Timeval {
    let hz = hz.max(1);
    Timeval {
        tv_sec: (t / hz) as i64,
        tv_usec: ((t % hz) * 1_000_000 / hz) as i64,
    }
}

/// Clock ticks -> microseconds (multiply first; u128 so huge tick counts cannot overflow).
pub fn ticks_to_us(t: u64, hz: u64) -> u64 {
    (t as u128 * 1_000_000 / hz.max(1) as u128).min(u64::MAX as u128) as u64
}

/// FreeBSD-style wait message for a Linux wait-channel symbol (§4.5): common sleeps get the
/// word a FreeBSD user knows, anything else the symbol itself (truncated by the caller).
pub fn wmesg_for(sym: &[u8]) -> &[u8] {
    match sym {
        b"do_select"
        | b"core_sys_select"
        | b"do_sys_poll"
        | b"do_poll"
        | b"do_poll.constprop.0" => b"select",
        b"ep_poll" | b"do_epoll_wait" => b"kqread",
        b"hrtimer_nanosleep" | b"do_nanosleep" | b"clock_nanosleep" | b"common_nsleep" => b"nanslp",
        b"do_wait" | b"kernel_wait4" | b"do_waitid" => b"wait",
        b"futex_wait_queue" | b"futex_wait_queue_me" | b"futex_wait" | b"futex_do_wait" => b"uwait",
        b"pipe_read" | b"pipe_wait_readable" => b"piperd",
        b"pipe_write" | b"pipe_wait_writable" => b"pipewr",
        b"n_tty_read" => b"ttyin",
        b"unix_stream_read_generic" | b"unix_stream_data_wait" | b"sk_wait_data" => b"sbwait",
        b"inet_csk_accept" | b"unix_wait_for_peer" => b"accept",
        b"sigsuspend" | b"sys_pause" | b"__x64_sys_pause" | b"__do_sys_pause" => b"pause",
        b"do_sigtimedwait" => b"sigwait",
        _ => sym,
    }
}

/// A stable non-NULL token for `ki_wchan`: FNV-1a of the symbol with the top bit set, so equal
/// channels compare equal and no value looks like a real kernel address.
pub fn wchan_token(sym: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in sym {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h | (1 << 63)
}

/// Controlling terminal: Linux tty_nr is bit-identical to glibc's st_rdev for every real tty
/// (§4.6), so it is used as the dev_t; 0 means none (NODEV).
pub fn tty_dev(tty_nr: i32) -> u64 {
    if tty_nr == 0 {
        abi::NODEV
    } else {
        tty_nr as u32 as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        let p = map_priority(0, 0, 20, 0, false);
        assert_eq!(p.pri_class, abi::PRI_TIMESHARE);
        assert!(p.pri_level as u32 >= PRI_MIN_TIMESHARE && p.pri_level as u32 <= PRI_MAX_TIMESHARE);
        assert_eq!(
            map_priority(0, 0, 0, -20, false).pri_level as u32,
            PRI_MIN_TIMESHARE
        );
        assert_eq!(
            map_priority(0, 0, 39, 19, false).pri_level as u32,
            PRI_MAX_TIMESHARE
        );
        assert_eq!(
            map_priority(1, 99, -100, 0, false).pri_level as u32,
            PRI_MIN_REALTIME
        );
        assert_eq!(map_priority(1, 99, -100, 0, false).pri_class, PRI_FIFO);
        assert_eq!(
            map_priority(2, 1, -2, 0, false).pri_level as u32,
            PRI_MIN_REALTIME + 31
        );
        let k = map_priority(0, 0, 20, 0, true);
        assert!(k.pri_level as u32 >= PRI_MIN_KERN && k.pri_level as u32 <= PRI_MAX_KERN);
        assert_eq!(map_priority(5, 0, 39, 0, false).pri_class, abi::PRI_IDLE);
    }

    #[test]
    fn states_and_times() {
        assert_eq!(map_state(b'R').stat, abi::SRUN);
        assert_eq!(map_state(b'S').tdflags, TDF_SINTR);
        assert_eq!(map_state(b'D').tdflags, 0);
        assert_eq!(map_state(b'I').slptime, MAXSLP);
        assert_eq!(map_state(b'Z').stat, abi::SZOMB);
        assert_eq!(map_state(b't').flags, P_STOPPED_TRACE);
        assert_eq!(
            ticks_to_tv(12345, 100),
            Timeval {
                tv_sec: 123,
                tv_usec: 450_000
            }
        );
        assert_eq!(ticks_to_us(3, 100), 30_000);
        assert_eq!(tty_dev(0), abi::NODEV);
        assert_eq!(tty_dev(34816), 34816);
        assert_eq!(wmesg_for(b"hrtimer_nanosleep"), b"nanslp");
        assert_eq!(wmesg_for(b"worker_thread"), b"worker_thread");
        assert_ne!(wchan_token(b"a"), wchan_token(b"b"));
        assert!(wchan_token(b"") >> 63 == 1);
    }
}
