//! In-place parsers for the text files of Linux procfs (`/proc/PID/stat`, `/proc/PID/status`,
//! `/proc/swaps`, `/proc/loadavg`, `/proc/stat`, CPU lists). They work on borrowed bytes,
//! allocate nothing (except `parse_swaps`, which returns rows) and never panic on bad input:
//! a malformed file gives `None` or leaves a field at zero.

/// Parses a decimal integer with an optional sign. Values above `i64::MAX` (procfs prints some
/// unsigned longs, e.g. rsslim = 2^64-1) wrap to their two's-complement bit pattern.
pub fn parse_dec(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as u64)?;
    }
    Some(if neg {
        0i64.wrapping_sub(v as i64)
    } else {
        v as i64
    })
}

/// Parses a hexadecimal number without prefix (signal masks in `status`).
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whitespace-separated words of `s` (no allocation).
pub fn words(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&c| is_space(c)).filter(|w| !w.is_empty())
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_space(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_space(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The fields of `/proc/PID/stat` (or `task/TID/stat`) that a `kinfo_proc` needs. Field numbers
/// in the comments are proc(5)'s (1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stat<'a> {
    /// 1: pid (thread id in task/TID/stat).
    pub pid: i32,
    /// 2: command name, the bytes between the first '(' and the last ')'.
    pub comm: &'a [u8],
    /// 3: state letter.
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// 7: controlling terminal, kernel `new_encode_dev` form; 0 = none.
    pub tty_nr: i32,
    pub tpgid: i32,
    /// 9: PF_* flags.
    pub flags: u32,
    pub minflt: u64,
    pub cminflt: u64,
    pub majflt: u64,
    pub cmajflt: u64,
    /// 14-17: clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub cutime: u64,
    pub cstime: u64,
    /// 18: kernel priority as printed (20+nice for normal tasks, -1-rtprio for RT).
    pub priority: i32,
    pub nice: i32,
    pub num_threads: i32,
    /// 22: start time in ticks after boot.
    pub starttime: u64,
    /// 23: virtual size, bytes.
    pub vsize: u64,
    /// 24: resident pages.
    pub rss: i64,
    /// 35: non-zero when the task has a wait channel (modern kernels print 0/1).
    pub wchan: u64,
    /// 39: last CPU.
    pub processor: i32,
    pub rt_priority: u32,
    pub policy: u32,
    /// 52: wait(2)-style exit status (0 without ptrace-read permission).
    pub exit_code: i32,
}

/// The smallest field count accepted (through `rss`, field 24): anything shorter is a torn or
/// foreign file.
const STAT_MIN_FIELDS: usize = 24;

/// Parses one `stat` line. `None` when the line is malformed or too short.
pub fn parse_stat(buf: &[u8]) -> Option<Stat<'_>> {
    let open = memchr::memchr(b'(', buf)?;
    let close = memchr::memrchr(b')', buf)?;
    if close < open {
        return None;
    }
    let pid = parse_dec(trim(&buf[..open]))?;
    let mut st = Stat {
        pid: i32::try_from(pid).ok()?,
        comm: &buf[open + 1..close],
        ..Stat::default()
    };
    // One tight pass over the fields after the comm (this runs once per process and thread).
    let rest = &buf[close + 1..];
    let mut f = [0i64; 53];
    let (mut n, mut i) = (2usize, 0usize);
    while i < rest.len() {
        let c = rest[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        n += 1;
        if n > 52 {
            break;
        }
        if n == 3 {
            st.state = c;
        }
        // Fields we do not use (addresses, limits, signal words) are only stepped over.
        if !matches!(n, 4..=20 | 22..=24 | 35 | 39..=41 | 52) {
            while i < rest.len() && rest[i] != b' ' && rest[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let neg = c == b'-';
        if neg {
            i += 1;
        }
        let start = i;
        let mut v: u64 = 0;
        while i < rest.len() {
            let d = rest[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // procfs numbers fit in 64 bits; wrapping keeps garbage from panicking.
            v = v.wrapping_mul(10).wrapping_add(d as u64);
            i += 1;
        }
        if i == start || (i < rest.len() && !is_space(rest[i])) {
            return None;
        }
        f[n] = if neg {
            (v as i64).wrapping_neg()
        } else {
            v as i64
        };
    }
    st.ppid = f[4] as i32;
    st.pgrp = f[5] as i32;
    st.session = f[6] as i32;
    st.tty_nr = f[7] as i32;
    st.tpgid = f[8] as i32;
    st.flags = f[9] as u32;
    st.minflt = f[10] as u64;
    st.cminflt = f[11] as u64;
    st.majflt = f[12] as u64;
    st.cmajflt = f[13] as u64;
    st.utime = f[14].max(0) as u64;
    st.stime = f[15].max(0) as u64;
    st.cutime = f[16].max(0) as u64;
    st.cstime = f[17].max(0) as u64;
    st.priority = f[18] as i32;
    st.nice = f[19] as i32;
    st.num_threads = f[20] as i32;
    st.starttime = f[22] as u64;
    st.vsize = f[23] as u64;
    st.rss = f[24];
    st.wchan = f[35] as u64;
    st.processor = f[39] as i32;
    st.rt_priority = f[40] as u32;
    st.policy = f[41] as u32;
    st.exit_code = f[52] as i32;
    let n = n.min(52);
    if n < STAT_MIN_FIELDS {
        return None;
    }
    Some(st)
}

/// Supplementary groups kept from `Groups:` (kinfo_proc has 16 slots, the first is the egid).
pub const MAX_SUPP_GROUPS: usize = 15;

/// The lines of `/proc/PID/status` that a `kinfo_proc` needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub tgid: i32,
    pub tracer_pid: i32,
    /// real, effective, saved, filesystem.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    /// First supplementary groups, in the kernel's order.
    pub groups: [u32; MAX_SUPP_GROUPS],
    /// Number of supplementary groups listed (may exceed `groups.len()`).
    pub ngroups: usize,
    pub vm_hwm_kb: u64,
    /// `VmRSS:` (absent for kernel threads). Exact on every kernel, where stat's rss is an
    /// approximate per-CPU counter sum on recent ones.
    pub vm_rss_kb: Option<u64>,
    pub vm_exe_kb: u64,
    pub vm_data_kb: u64,
    pub vm_stk_kb: u64,
    pub sig_pnd: u64,
    pub shd_pnd: u64,
    pub sig_blk: u64,
    pub sig_ign: u64,
    pub sig_cgt: u64,
    pub vcsw: u64,
    pub nvcsw: u64,
    /// `Kthread:` line (kernels >= 6.x); `None` when absent.
    pub kthread: Option<bool>,
    /// Both `Uid:` and `Gid:` were present (a status file without them is torn).
    pub has_creds: bool,
}

fn ids4(v: &[u8]) -> Option<[u32; 4]> {
    let mut out = [0u32; 4];
    let mut n = 0;
    for w in words(v) {
        if n == 4 {
            break;
        }
        out[n] = u32::try_from(parse_dec(w)?).ok()?;
        n += 1;
    }
    (n == 4).then_some(out)
}

/// "  1234 kB" -> 1234.
fn kb(v: &[u8]) -> u64 {
    words(v)
        .next()
        .and_then(parse_dec)
        .map(|x| x.max(0) as u64)
        .unwrap_or(0)
}

fn hex(v: &[u8]) -> u64 {
    parse_hex(trim(v)).unwrap_or(0)
}

fn dec(v: &[u8]) -> i64 {
    parse_dec(trim(v)).unwrap_or(0)
}

static CTXT_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\nvoluntary_ctxt_switches:"));

/// Parses `status`. `None` when the credentials lines are missing (torn or foreign file).
pub fn parse_status(buf: &[u8]) -> Option<Status> {
    let mut st = Status::default();
    let (mut has_uid, mut has_gid) = (false, false);
    let mut rest = buf;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[(end + 1).min(rest.len())..];
        // Cheap first-letter test: most lines (Cap*, Cpus_allowed, Mems_allowed...) are unused.
        if !matches!(
            line.first(),
            Some(b'T' | b'U' | b'G' | b'K' | b'V' | b'S' | b'v' | b'n')
        ) {
            continue;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let (key, val) = (&line[..colon], &line[colon + 1..]);
        match key {
            b"Tgid" => st.tgid = dec(val) as i32,
            b"TracerPid" => st.tracer_pid = dec(val) as i32,
            b"Uid" => {
                st.uid = ids4(val)?;
                has_uid = true;
            }
            b"Gid" => {
                st.gid = ids4(val)?;
                has_gid = true;
            }
            b"Groups" => {
                for w in words(val) {
                    if let Some(g) = parse_dec(w).and_then(|g| u32::try_from(g).ok()) {
                        if st.ngroups < MAX_SUPP_GROUPS {
                            st.groups[st.ngroups] = g;
                        }
                        st.ngroups += 1;
                    }
                }
            }
            b"Kthread" => st.kthread = Some(dec(val) != 0),
            b"VmHWM" => st.vm_hwm_kb = kb(val),
            b"VmRSS" => st.vm_rss_kb = Some(kb(val)),
            b"VmExe" => st.vm_exe_kb = kb(val),
            b"VmData" => st.vm_data_kb = kb(val),
            b"VmStk" => st.vm_stk_kb = kb(val),
            b"SigPnd" => st.sig_pnd = hex(val),
            b"ShdPnd" => st.shd_pnd = hex(val),
            b"SigBlk" => st.sig_blk = hex(val),
            b"SigIgn" => st.sig_ign = hex(val),
            b"SigCgt" => {
                st.sig_cgt = hex(val);
                // Nothing we use sits between the signal masks and the context-switch
                // counters (Cap*, Seccomp, Cpus/Mems_allowed: the longest lines): skip them.
                if let Some(j) = CTXT_FINDER.find(rest) {
                    rest = &rest[j + 1..];
                }
            }
            b"voluntary_ctxt_switches" => st.vcsw = dec(val).max(0) as u64,
            b"nonvoluntary_ctxt_switches" => st.nvcsw = dec(val).max(0) as u64,
            _ => {}
        }
    }
    st.has_creds = has_uid && has_gid;
    st.has_creds.then_some(st)
}

/// `/proc/loadavg`: the three load averages.
pub fn parse_loadavg(buf: &[u8]) -> Option<[f64; 3]> {
    let mut out = [0f64; 3];
    let mut it = words(buf);
    for slot in &mut out {
        let w = std::str::from_utf8(it.next()?).ok()?;
        *slot = w
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= 0.0)?;
    }
    Some(out)
}

/// The aggregate `cpu` line of `/proc/stat` in FreeBSD CPUSTATES order: user, nice, sys,
/// intr (irq + softirq), idle (idle + iowait). Steal and guest time are left out (guest time
/// is already inside user/nice; steal belongs to no FreeBSD state).
pub fn parse_cptime(buf: &[u8]) -> Option<[i64; 5]> {
    let line = buf
        .split(|&c| c == b'\n')
        .find(|l| l.starts_with(b"cpu ") || l.starts_with(b"cpu\t"))?;
    let mut v = [0i64; 7];
    let mut n = 0;
    for w in words(&line[3..]).take(7) {
        v[n] = parse_dec(w)?.max(0);
        n += 1;
    }
    if n < 4 {
        return None;
    }
    let [user, nice, system, idle, iowait, irq, softirq] = v;
    Some([
        user,
        nice,
        system,
        irq.saturating_add(softirq),
        idle.saturating_add(iowait),
    ])
}

/// The `btime` line of `/proc/stat` (boot time, seconds since the epoch).
pub fn parse_btime(buf: &[u8]) -> Option<i64> {
    buf.split(|&c| c == b'\n')
        .find_map(|l| l.strip_prefix(b"btime "))
        .and_then(|v| parse_dec(trim(v)))
}

/// Number of per-CPU `cpuN` lines of `/proc/stat`.
pub fn count_cpu_lines(buf: &[u8]) -> usize {
    buf.split(|&c| c == b'\n')
        .filter(|l| l.len() > 3 && l.starts_with(b"cpu") && l[3].is_ascii_digit())
        .count()
}

/// `/proc/uptime` first field, in hundredths of a second.
pub fn parse_uptime_cs(buf: &[u8]) -> Option<u64> {
    let w = words(buf).next()?;
    let (int, frac) = match w.iter().position(|&c| c == b'.') {
        Some(dot) => (&w[..dot], &w[dot + 1..]),
        None => (w, &b""[..]),
    };
    let secs = u64::try_from(parse_dec(int)?).ok()?;
    let mut cs = 0u64;
    for (i, &c) in frac.iter().take(2).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        cs += (c - b'0') as u64 * if i == 0 { 10 } else { 1 };
    }
    secs.checked_mul(100)?.checked_add(cs)
}

/// A CPU list such as "0-3,8,10-11\n" (sysfs `possible`/`online`): (number of CPUs, highest
/// id + 1).
pub fn parse_cpu_list(buf: &[u8]) -> Option<(u32, u32)> {
    let s = trim(buf);
    if s.is_empty() {
        return None;
    }
    let (mut count, mut top) = (0u32, 0u32);
    for part in s.split(|&c| c == b',') {
        let (lo, hi) = match part.iter().position(|&c| c == b'-') {
            Some(d) => (parse_dec(&part[..d])?, parse_dec(&part[d + 1..])?),
            None => {
                let v = parse_dec(part)?;
                (v, v)
            }
        };
        let lo = u32::try_from(lo).ok()?;
        let hi = u32::try_from(hi).ok()?;
        if hi < lo {
            return None;
        }
        count = count.checked_add(hi - lo + 1)?;
        top = top.max(hi.checked_add(1)?);
    }
    Some((count, top))
}

/// One row of `/proc/swaps`: name (octal escapes such as `\040` undone), size and used in KiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwapRow {
    pub name: Vec<u8>,
    pub size_kb: u64,
    pub used_kb: u64,
}

fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 4 <= s.len()
            && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

/// Parses `/proc/swaps` (header line, then "name type size used priority").
pub fn parse_swaps(buf: &[u8]) -> Vec<SwapRow> {
    let mut rows = Vec::new();
    for line in buf.split(|&c| c == b'\n').skip(1) {
        let mut w = words(line);
        let (Some(name), Some(_ty), Some(size), Some(used)) =
            (w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let (Some(size), Some(used)) = (parse_dec(size), parse_dec(used)) else {
            continue;
        };
        rows.push(SwapRow {
            name: unescape_octal(name),
            size_kb: size.max(0) as u64,
            used_kb: used.max(0) as u64,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_parens_and_spaces_in_comm() {
        let line = b"42 (a) b (c)) S 1 42 42 34816 42 4194560 10 20 1 2 300 400 5 6 20 -5 3 0 12345 1048576 77 18446744073709551615 1 2 3 4 5 0 0 0 65536 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 9\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 42);
        assert_eq!(st.comm, b"a) b (c)");
        assert_eq!(st.state, b'S');
        assert_eq!(
            (st.ppid, st.pgrp, st.session, st.tty_nr, st.tpgid),
            (1, 42, 42, 34816, 42)
        );
        assert_eq!((st.utime, st.stime, st.cutime, st.cstime), (300, 400, 5, 6));
        assert_eq!((st.priority, st.nice, st.num_threads), (20, -5, 3));
        assert_eq!((st.starttime, st.vsize, st.rss), (12345, 1048576, 77));
        assert_eq!((st.wchan, st.processor, st.exit_code), (1, 1, 9));
    }

    #[test]
    fn stat_rejects_garbage() {
        assert!(parse_stat(b"").is_none());
        assert!(parse_stat(b"1 (x) S 1 2").is_none());
        assert!(
            parse_stat(b"x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22")
                .is_none()
        );
        assert!(parse_stat(b")1 (").is_none());
    }

    #[test]
    fn status_fields() {
        let s = b"Name:\tx\nTgid:\t7\nTracerPid:\t3\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 11 \nKthread:\t0\nVmHWM:\t   100 kB\nVmRSS:\t 12 kB\nVmExe:\t 8 kB\nSigPnd:\t0000000000000001\nShdPnd:\t0000000000000100\nSigCgt:\tfffffffe7ffbfeff\nvoluntary_ctxt_switches:\t9\n";
        let st = parse_status(s).unwrap();
        assert_eq!((st.tgid, st.tracer_pid), (7, 3));
        assert_eq!(st.uid, [1, 2, 3, 4]);
        assert_eq!(st.gid, [5, 6, 7, 8]);
        assert_eq!((st.ngroups, st.groups[0], st.groups[1]), (2, 10, 11));
        assert_eq!((st.vm_hwm_kb, st.vm_exe_kb), (100, 8));
        assert_eq!(st.vm_rss_kb, Some(12));
        assert_eq!(
            (st.sig_pnd, st.shd_pnd, st.sig_cgt),
            (1, 0x100, 0xfffffffe7ffbfeff)
        );
        assert_eq!(st.kthread, Some(false));
        assert_eq!(st.vcsw, 9);
        assert!(parse_status(b"Name:\tx\nUid:\t1\t2\n").is_none());
    }

    #[test]
    fn stats_files() {
        assert_eq!(
            parse_loadavg(b"0.97 0.56 0.28 1/93 7822\n"),
            Some([0.97, 0.56, 0.28])
        );
        assert_eq!(parse_loadavg(b"0.97 nan"), None);
        let stat = b"cpu  10 2 30 400 5 6 7 8 0 0\ncpu0 1 1 1 1 1 1 1 1 0 0\ncpu1 1 1 1 1 1 1 1 1 0 0\nbtime 1795702955\n";
        assert_eq!(parse_cptime(stat), Some([10, 2, 30, 13, 405]));
        assert_eq!(parse_btime(stat), Some(1795702955));
        assert_eq!(count_cpu_lines(stat), 2);
        assert_eq!(parse_uptime_cs(b"641.36 966.77\n"), Some(64136));
        assert_eq!(parse_uptime_cs(b"641.3 1"), Some(64130));
        assert_eq!(parse_cpu_list(b"0-3,8,10-11\n"), Some((7, 12)));
        assert_eq!(parse_cpu_list(b"0\n"), Some((1, 1)));
        assert_eq!(parse_cpu_list(b"3-1"), None);
    }

    /// Every prefix and many byte-mutations of real samples: the parsers must not panic.
    #[test]
    fn parsers_survive_truncation_and_mutation() {
        let samples: [&[u8]; 4] = [
            b"7819 (cat) R 7817 7817 32277 34816 -1 4194304 101 0 0 0 0 0 0 0 20 0 1 0 64135 3133440 410 18446744073709551615 94483363840000 94483363859881 140725371144800 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94483363875888 94483363877504 94484044718080 140725371153123 140725371153143 140725371153143 140725371154411 0\n",
            b"Name:\tcat\nTgid:\t7820\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\nVmHWM:\t 1732 kB\nSigCgt:\t0000000000000000\nCapInh:\t0\nvoluntary_ctxt_switches:\t0\n",
            b"Filename Type Size Used Priority\n/dev/sda2 partition 8388604 0 -2\n/a\\040b file 1 1 1\n",
            b"cpu  1 2 3 4 5 6 7 8 0 0\nbtime 17\n0-3,5\n12.34 5\n",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for s in samples {
            for cut in 0..=s.len() {
                exercise(&s[..cut]);
            }
            for _ in 0..2000 {
                let mut m = s.to_vec();
                for _ in 0..4 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let i = (seed % m.len() as u64) as usize;
                    m[i] = (seed >> 32) as u8;
                }
                exercise(&m);
            }
        }
        let g = parse_status(samples[1]).unwrap();
        assert_eq!((g.ngroups, g.groups[14]), (17, 15));
    }

    fn exercise(d: &[u8]) {
        let _ = parse_stat(d);
        let _ = parse_status(d);
        let _ = parse_loadavg(d);
        let _ = parse_cptime(d);
        let _ = parse_btime(d);
        let _ = count_cpu_lines(d);
        let _ = parse_uptime_cs(d);
        let _ = parse_cpu_list(d);
        let _ = parse_swaps(d);
    }

    #[test]
    fn swaps() {
        let t = b"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda2                               partition\t8388604\t\t1024\t\t-2\n/swap\\040file file 4096 0 -3\nbad line\n";
        let rows = parse_swaps(t);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, b"/dev/sda2");
        assert_eq!((rows[0].size_kb, rows[0].used_kb), (8388604, 1024));
        assert_eq!(rows[1].name, b"/swap file");
    }
}
