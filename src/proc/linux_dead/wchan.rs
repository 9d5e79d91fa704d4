//! Wait channels of sleeping tasks in a dead x86_64 kernel, found as the kernel's own get_wchan
//! does: unwind the task's stack from its saved switch frame with the kernel's ORC tables
//! (`__start_orc_unwind_ip` / `__start_orc_unwind`) and take the first return address outside
//! the scheduler and lock text. Layouts (orc_entry bitfields, inactive_task_frame) come from BTF.

use super::layout::F;
use super::{read_exact, KernelMemory};
use crate::btf::{Btf, Member};

/// ORC register numbers (arch/x86/include/asm/orc_types.h, stable since 4.14).
const ORC_REG_PREV_SP: u64 = 1;
const ORC_REG_BP: u64 = 4;
const ORC_REG_SP: u64 = 5;
const ORC_REG_UNDEFINED: u64 = 0;
/// Largest ORC ip table accepted (vmlinux has ~1.5 MB).
const MAX_TABLE: u64 = 64 << 20;
const MAX_FRAMES: usize = 32;

pub struct Unwinder {
    /// Relative ip table (entry i describes the code at &table[i] + table[i]).
    ips: Vec<i32>,
    ip_base: u64,
    orc_base: u64,
    orc_size: u64,
    sp_offset: Member,
    bp_offset: Member,
    sp_reg: Member,
    bp_reg: Member,
    kind: Member,
    end: Option<Member>,
    /// ORC_TYPE_CALL: 0 while orc_entry has an `end` bit (up to 6.3), 2 afterwards.
    call_type: u64,
    frame_bp: usize,
    frame_ret: usize,
    frame_size: usize,
    pub thread_sp: F,
    pub on_rq: Option<F>,
    skip: [(u64, u64); 2],
}

fn bits(raw: u64, m: &Member, signed: bool) -> i64 {
    let size = if m.bitfield_size != 0 {
        m.bitfield_size
    } else {
        16
    };
    let v = (raw >> m.bit_offset) & ((1u64 << size) - 1);
    if signed && size < 64 && v >> (size - 1) & 1 == 1 {
        (v | !((1u64 << size) - 1)) as i64
    } else {
        v as i64
    }
}

impl Unwinder {
    /// Loads the ORC ip table; None when the kernel has no ORC data or BTF lacks the types.
    pub fn load(btf: &Btf, mem: &mut dyn KernelMemory) -> Option<Unwinder> {
        let f = |s: &str, m: &str| btf.field(s, m).ok();
        let ip_base = mem.symbol("__start_orc_unwind_ip")?;
        let ip_end = mem.symbol("__stop_orc_unwind_ip")?;
        let orc_base = mem.symbol("__start_orc_unwind")?;
        let len = ip_end
            .checked_sub(ip_base)
            .filter(|&l| l > 0 && l <= MAX_TABLE)?;
        let mut raw = vec![0u8; len as usize];
        read_exact(mem, ip_base, &mut raw).ok()?;
        let ips = raw
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let thread_sp = f("task_struct", "thread.sp")?;
        let on_rq = f("task_struct", "on_rq").and_then(|m| {
            Some(F {
                off: m.offset() as usize,
                size: btf.size_of(m.type_id)? as usize,
            })
        });
        let end = f("orc_entry", "end");
        let sym =
            |mem: &mut dyn KernelMemory, a: &str, b: &str| Some((mem.symbol(a)?, mem.symbol(b)?));
        Some(Unwinder {
            ips,
            ip_base,
            orc_base,
            orc_size: btf.struct_size("orc_entry").ok()?,
            sp_offset: f("orc_entry", "sp_offset")?,
            bp_offset: f("orc_entry", "bp_offset")?,
            sp_reg: f("orc_entry", "sp_reg")?,
            bp_reg: f("orc_entry", "bp_reg")?,
            kind: f("orc_entry", "type")?,
            call_type: if end.is_some() { 0 } else { 2 },
            end,
            frame_bp: f("inactive_task_frame", "bp")?.offset() as usize,
            frame_ret: f("inactive_task_frame", "ret_addr")?.offset() as usize,
            frame_size: btf.struct_size("inactive_task_frame").ok()? as usize,
            thread_sp: F {
                off: thread_sp.offset() as usize,
                size: 8,
            },
            on_rq,
            skip: [
                sym(mem, "__sched_text_start", "__sched_text_end")?,
                sym(mem, "__lock_text_start", "__lock_text_end").unwrap_or((0, 0)),
            ],
        })
    }

    /// Index of the ORC entry covering `ip` (the last table ip at or below it).
    fn find(&self, ip: u64) -> Option<usize> {
        let at = |i: usize| (self.ip_base + 4 * i as u64).wrapping_add(self.ips[i] as i64 as u64);
        if self.ips.is_empty() || ip < at(0) {
            return None;
        }
        let (mut lo, mut hi) = (0usize, self.ips.len());
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if at(mid) <= ip {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    fn word(mem: &mut dyn KernelMemory, va: u64) -> Option<u64> {
        let mut b = [0u8; 8];
        read_exact(mem, va, &mut b).ok()?;
        Some(u64::from_le_bytes(b))
    }

    /// The wait channel (a kernel text address) of a blocked task whose task_struct copy is
    /// `task`, or None when the stack cannot be unwound to a non-scheduler function.
    pub fn wchan(&self, mem: &mut dyn KernelMemory, task: &[u8]) -> Option<u64> {
        let sp0 = self.thread_sp.get(task);
        let mut frame = vec![0u8; self.frame_size];
        read_exact(mem, sp0, &mut frame).ok()?;
        let g = |o: usize| F { off: o, size: 8 }.get(&frame);
        let (mut ip, mut bp, mut sp) = (
            g(self.frame_ret),
            g(self.frame_bp),
            sp0.wrapping_add(self.frame_size as u64),
        );
        for _ in 0..MAX_FRAMES {
            if !self.skip.iter().any(|&(s, e)| ip >= s && ip < e) {
                return self.find(ip).map(|_| ip);
            }
            // Return addresses point after the call: look up the call instruction's entry.
            let i = self.find(ip.wrapping_sub(1))?;
            let mut e = [0u8; 8];
            let n = (self.orc_size as usize).min(8);
            read_exact(mem, self.orc_base + i as u64 * self.orc_size, &mut e[..n]).ok()?;
            let raw = u64::from_le_bytes(e);
            if self.end.map(|m| bits(raw, &m, false)).unwrap_or(0) != 0
                || bits(raw, &self.kind, false) as u64 != self.call_type
            {
                return None;
            }
            let sp_off = bits(raw, &self.sp_offset, true);
            let cfa = match bits(raw, &self.sp_reg, false) as u64 {
                ORC_REG_SP => sp.wrapping_add(sp_off as u64),
                ORC_REG_BP => bp.wrapping_add(sp_off as u64),
                _ => return None,
            };
            let bp_off = bits(raw, &self.bp_offset, true) as u64;
            bp = match bits(raw, &self.bp_reg, false) as u64 {
                ORC_REG_UNDEFINED => bp,
                ORC_REG_PREV_SP => Self::word(mem, cfa.wrapping_add(bp_off))?,
                ORC_REG_BP => Self::word(mem, bp.wrapping_add(bp_off))?,
                _ => return None,
            };
            ip = Self::word(mem, cfa.wrapping_sub(8))?;
            if cfa <= sp {
                return None; // the stack must grow toward higher addresses as we unwind
            }
            sp = cfa;
        }
        None
    }
}

/// FreeBSD-style wait message for a Linux wait-channel function (the live backend's table,
/// spec §4.5), else the function name cut to WMESGLEN.
pub fn wmesg(sym: &str) -> &[u8] {
    match sym {
        "do_select" | "core_sys_select" | "do_sys_poll" | "do_poll" => "select",
        "ep_poll" => "kqread",
        "hrtimer_nanosleep" | "do_nanosleep" | "clock_nanosleep" => "nanslp",
        "do_wait" | "kernel_wait4" | "do_waitid" => "wait",
        "futex_wait_queue" | "futex_wait_queue_me" | "futex_wait" => "uwait",
        "pipe_read" | "pipe_wait_readable" => "piperd",
        "pipe_write" | "pipe_wait_writable" => "pipewr",
        "n_tty_read" => "ttyin",
        "sigsuspend" | "sys_pause" | "__x64_sys_pause" | "__do_sys_pause" => "pause",
        "do_sigtimedwait" => "sigwait",
        _ => return &sym.as_bytes()[..sym.len().min(crate::abi::WMESGLEN)],
    }
    .as_bytes()
}
