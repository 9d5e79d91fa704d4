//! The VMCOREINFO note: `KEY=value` lines written by the Linux kernel for dump readers.
//!
//! Conventions (measured on real dumps): SYMBOL() values are hex without `0x` and already
//! relocated; KERNELOFFSET is hex; NUMBER() values are signed decimal (phys_base is often
//! negative under KASLR); OFFSET/SIZE/LENGTH are decimal.

use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct VmcoreInfo {
    map: HashMap<String, String>,
}

impl VmcoreInfo {
    /// Parses the note text. Never fails: unknown or malformed lines are skipped, so that a
    /// damaged note still yields what it can. The text may end in NUL padding.
    pub fn parse(text: &[u8]) -> VmcoreInfo {
        let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
        let mut map = HashMap::new();
        for line in text[..end].split(|&b| b == b'\n') {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let line = line.trim_end_matches('\r');
            if let Some((k, v)) = line.split_once('=') {
                if !k.is_empty() && !map.contains_key(k) {
                    map.insert(k.to_string(), v.to_string());
                }
            }
        }
        VmcoreInfo { map }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|s| s.as_str())
    }

    pub fn osrelease(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }

    pub fn page_size(&self) -> Option<u64> {
        self.get("PAGESIZE")?.trim().parse().ok()
    }

    /// SYMBOL(name): a hex address.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        parse_hex(self.get(&format!("SYMBOL({})", name))?)
    }

    /// NUMBER(name): signed decimal (hex with a 0x prefix is accepted too).
    pub fn number(&self, name: &str) -> Option<i64> {
        parse_signed(self.get(&format!("NUMBER({})", name))?)
    }

    pub fn offset(&self, name: &str) -> Option<u64> {
        self.get(&format!("OFFSET({})", name))?.trim().parse().ok()
    }

    pub fn size(&self, name: &str) -> Option<u64> {
        self.get(&format!("SIZE({})", name))?.trim().parse().ok()
    }

    /// KERNELOFFSET: hex, the KASLR displacement of the kernel text (0 when absent).
    pub fn kerneloffset(&self) -> Option<u64> {
        parse_hex(self.get("KERNELOFFSET")?)
    }

    /// All SYMBOL(name) entries.
    pub fn symbols(&self) -> impl Iterator<Item = (&str, u64)> {
        self.map.iter().filter_map(|(k, v)| {
            let name = k.strip_prefix("SYMBOL(")?.strip_suffix(')')?;
            Some((name, parse_hex(v)?))
        })
    }
}

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

fn parse_signed(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let v: i64 = if let Some(h) = body.strip_prefix("0x") {
        i64::try_from(u64::from_str_radix(h, 16).ok()?).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if neg { v.checked_neg()? } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kinds() {
        let v = VmcoreInfo::parse(
            b"OSRELEASE=6.1.0\nPAGESIZE=4096\nSYMBOL(_stext)=ffffffffb9400000\nNUMBER(phys_base)=-876609536\nKERNELOFFSET=38400000\nbroken\n\0\0",
        );
        assert_eq!(v.osrelease(), Some("6.1.0"));
        assert_eq!(v.page_size(), Some(4096));
        assert_eq!(v.symbol("_stext"), Some(0xffffffffb9400000));
        assert_eq!(v.number("phys_base"), Some(-876609536));
        assert_eq!(v.kerneloffset(), Some(0x38400000));
        assert_eq!(v.symbols().count(), 1);
        assert_eq!(v.number("missing"), None);
    }
}
