//! Text symbol listings: System.map and kallsyms (`address type name [module]`), including the
//! live /proc/kallsyms.

use std::io::{BufRead, Read};

use super::{valid_name, Builder, Symbol, SymbolIndex, SymbolKind};
use crate::abi::{N_ABS, N_BSS, N_COMM, N_DATA, N_EXT, N_TEXT, N_UNDF};
use crate::error::{Error, Result};

pub const PROC_KALLSYMS: &str = "/proc/kallsyms";

/// Debian ships this one-line file in linux-image-*; the real map is in the -dbg package.
const DEBIAN_PLACEHOLDER: &[u8] = b"The real System.map is in";

/// nm's type letter -> a.out n_type (upper case = global, which a.out calls external).
/// Read-only data counts as text, as FreeBSD's nlist does for non-writable sections.
pub fn letter_to_ntype(c: u8) -> u8 {
    let base = match c.to_ascii_lowercase() {
        b'a' => N_ABS,
        b't' | b'w' | b'r' | b'i' => N_TEXT,
        b'd' | b'g' | b'v' | b'p' | b'u' => N_DATA,
        b'b' | b's' => N_BSS,
        b'c' => N_COMM,
        // U (undefined), N (debugging), ? (unknown): listed but no place in the kernel.
        _ => N_UNDF,
    };
    // Weak (W/w, V/v) and unique (u) symbols are global bindings whatever the case.
    if c.is_ascii_uppercase() || matches!(c, b'w' | b'v' | b'u') {
        base | N_EXT
    } else {
        base
    }
}

/// True when `head` (the file's first bytes) is plausibly a text listing: no NUL bytes and
/// almost only printable ASCII / whitespace.
pub fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    let odd = head
        .iter()
        .filter(|&&b| {
            !(b.is_ascii_graphic() || b == b' ' || b == b'\t' || b == b'\n' || b == b'\r')
        })
        .count();
    odd * 100 <= head.len()
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parses one line; returns (value, letter, name start, name end, has module) relative to
/// the line, or None when it is not `address type name [\[module\]]`.
fn parse_line(line: &[u8]) -> Option<(u64, u8, usize, usize, bool)> {
    let mut i = 0;
    let mut value: u64 = 0;
    while i < line.len() && !is_space(line[i]) {
        let d = (line[i] as char).to_digit(16)? as u64;
        if i >= 16 {
            return None; // more than 64 bits
        }
        value = (value << 4) | d;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let s = i;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    if i == s || i >= line.len() {
        return None;
    }
    let letter = line[i];
    i += 1;
    if !letter.is_ascii_alphabetic() && letter != b'?' && letter != b'-' {
        return None;
    }
    let s = i;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    if i == s || i >= line.len() {
        return None;
    }
    let name_start = i;
    while i < line.len() && !is_space(line[i]) {
        i += 1;
    }
    let name_end = i;
    while i < line.len() && is_space(line[i]) {
        i += 1;
    }
    let module = if i < line.len() {
        // kallsyms: "\t[module]" and nothing else.
        if line[i] != b'[' || line[line.len() - 1] != b']' {
            return None;
        }
        true
    } else {
        false
    };
    Some((value, letter, name_start, name_end, module))
}

/// A printable excerpt of a line for messages.
fn excerpt(line: &[u8]) -> String {
    excerpt_n(line, 80)
}

fn excerpt_n(line: &[u8], max: usize) -> String {
    let mut s: String = line
        .iter()
        .take(max)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                (b as char).to_string()
            } else {
                format!("\\x{:02x}", b)
            }
        })
        .collect();
    if line.len() > max {
        s.push_str("...");
    }
    s
}

/// Builds an index from a System.map or kallsyms text. `live`: the text is /proc/kallsyms.
/// The text becomes the index's name arena (no per-line allocation).
/// On the live kernel every found symbol is N_TEXT, as FreeBSD's kldsym lookup reports.
pub fn parse_text(text: Vec<u8>, source: &str, live: bool) -> Result<SymbolIndex> {
    if let Some(p) = find(&text[..text.len().min(4096)], DEBIAN_PLACEHOLDER) {
        let start = text[..p]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let end = text[p..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| p + i);
        let line = excerpt_n(&text[start..end], 200);
        let quoted = line.splitn(3, ' ').nth(2).unwrap_or(&line).to_string();
        return Err(Error::format(format!(
            "{}: Debian's placeholder System.map (\"{}\"): it holds no symbols. Real symbols come from the System.map of the linux-image-<version>-dbg package (/usr/lib/debug/boot/System.map-<version>), from /proc/kallsyms of the running kernel, or from a vmlinux with symbols",
            source, quoted
        )));
    }
    if text.len() > u32::MAX as usize {
        return Err(Error::format(format!(
            "{}: symbol listing too large ({} bytes, at most 4 GiB)",
            source,
            text.len()
        )));
    }
    // ~40 bytes per kallsyms line.
    let guess = text.len() / 40 + 16;
    let mut good = 0usize;
    let mut bad = 0usize;
    let mut first_bad: Option<(usize, usize, usize)> = None; // (line number, start, end)
    let mut nonzero = false;
    let mut modules = false;
    let mut text_value = None;
    let mut b = Builder::with_capacity(guess);
    let mut pos = 0usize;
    let mut lineno = 0usize;
    while pos < text.len() {
        lineno += 1;
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
        let mut line_end = end;
        if line_end > pos && text[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = &text[pos..line_end];
        let blank = line.iter().all(|&b| is_space(b));
        if !blank {
            let parsed = parse_line(line).filter(|&(_, _, ns, ne, _)| valid_name(&line[ns..ne]));
            match parsed {
                Some((value, letter, ns, ne, module)) => {
                    good += 1;
                    nonzero |= value != 0;
                    modules |= module;
                    let sym = Symbol {
                        value,
                        n_type: if live {
                            N_TEXT
                        } else {
                            letter_to_ntype(letter)
                        },
                    };
                    if &line[ns..ne] == b"_text" {
                        text_value = Some(value);
                    }
                    b.push(pos + ns, &line[ns..ne], sym);
                }
                None => {
                    bad += 1;
                    if first_bad.is_none() {
                        first_bad = Some((lineno, pos, line_end));
                    }
                }
            }
        }
        pos = end + 1;
    }
    if good == 0 {
        return Err(match first_bad {
            Some((n, s, e)) => Error::format(format!(
                "{}: no line is a System.map/kallsyms entry (`address type name`): {} malformed line(s), line {} is \"{}\"",
                source,
                bad,
                n,
                excerpt(&text[s..e])
            )),
            None => Error::format(format!(
                "{}: no symbols: the file holds only blank lines",
                source
            )),
        });
    }
    if !nonzero {
        let restrict = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        return Err(Error::format(if live {
            format!(
                "{}: every symbol address reads as 0: the kernel hides them (kernel.kptr_restrict = {}; real addresses need CAP_SYSLOG, i.e. root, and kptr_restrict <= 1)",
                source, restrict
            )
        } else {
            format!(
                "{}: every symbol address is 0: this listing was copied from /proc/kallsyms while the kernel hid addresses (kptr_restrict, or not root); copy it again as root",
                source
            )
        }));
    }
    // Kernel symbols come before module ones: the first definition wins.
    let mut idx = b.finish(source, text, false);
    // Run-time addresses: the live file, module symbols (only kallsyms lists them), or an
    // x86_64 `_text` away from its link address (a KASLR kernel's kallsyms).
    let relocated = text_value.is_some_and(|t| {
        (0xffff_ffff_8000_0000..0xffff_ffff_c000_0000).contains(&t)
            && t != crate::live::kcore::X86_64_LINK_TEXT
    });
    idx.kind = if live || modules || relocated {
        SymbolKind::Kallsyms
    } else {
        SymbolKind::SystemMap
    };
    idx.skipped_lines = bad;
    idx.first_skipped_line = first_bad.map_or(0, |b| b.0);
    Ok(idx)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The running kernel's symbols from /proc/kallsyms.
pub fn load_kallsyms() -> Result<SymbolIndex> {
    load_kallsyms_from(PROC_KALLSYMS, true)
}

/// Reads a kallsyms file (size 0 in stat for procfs, so read to the end).
pub fn load_kallsyms_from(path: &str, live: bool) -> Result<SymbolIndex> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::sys(path, e))?;
    let mut text = Vec::with_capacity(4 << 20);
    f.read_to_end(&mut text).map_err(|e| Error::sys(path, e))?;
    parse_text(text, path, live)
}

/// The value of `name` in a kallsyms file, reading only until it is found (`_text` is among
/// the first lines). Ok(None): not listed or hidden (address 0).
pub fn kallsyms_value(path: &str, name: &str) -> Result<Option<u64>> {
    let f = std::fs::File::open(path).map_err(|e| Error::sys(path, e))?;
    let mut r = std::io::BufReader::with_capacity(64 * 1024, f);
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        let n = r
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::sys(path, e))?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        if let Some((value, _, ns, ne, _)) = parse_line(&line) {
            if &line[ns..ne] == name.as_bytes() {
                return Ok(if value == 0 { None } else { Some(value) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let t = b"ffffffff81000000 T _text\n\
                  0000000000000000 A fixed_percpu_data\n\
                  ffffffffc0000010 t fw_cfg_read\t[qemu_fw_cfg]\n\
                  garbage line here\n\
                  \n\
                  ffffffff81000000 T _text_dup_name_second\r\n\
                  ffffffff82000000 D _text\n"
            .to_vec();
        let idx = parse_text(t, "t", false).unwrap();
        assert_eq!(idx.kind, SymbolKind::Kallsyms);
        assert_eq!(idx.skipped_lines, 1);
        assert_eq!(idx.first_skipped_line, 4);
        assert_eq!(
            idx.get_raw("_text"),
            Some(Symbol {
                value: 0xffffffff81000000,
                n_type: N_TEXT | N_EXT
            })
        );
        assert_eq!(
            idx.get_raw("fixed_percpu_data").unwrap().n_type,
            N_ABS | N_EXT
        );
        assert_eq!(
            idx.get_raw("fw_cfg_read").unwrap().value,
            0xffffffffc0000010
        );
        assert!(idx.get_raw("_text_dup_name_second").is_some());
        assert_eq!(idx.len(), 4);
    }

    #[test]
    fn too_long_address() {
        assert!(parse_line(b"12345678901234567 T x").is_none());
        assert!(parse_line(b"1234567890123456 T x").is_some());
        assert!(parse_line(b"zz T x").is_none());
        assert!(parse_line(b"10 T").is_none());
        assert!(parse_line(b"10 TT x").is_none());
        assert!(parse_line(b"10 T x y").is_none());
    }
}
