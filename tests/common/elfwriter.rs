//! A tiny ELF writer for tests and benches: an executable with .text/.rodata/.data/.bss and a
//! .symtab/.strtab holding the given symbols, in either class and byte order.
#![allow(dead_code)]

pub const SHN_UNDEF: u16 = 0;
pub const SHN_ABS: u16 = 0xfff1;
pub const SHN_COMMON: u16 = 0xfff2;
/// Section numbers of the sections this writer emits.
pub const SEC_TEXT: u16 = 1;
pub const SEC_RODATA: u16 = 2;
pub const SEC_DATA: u16 = 3;
pub const SEC_BSS: u16 = 4;

pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;
pub const STT_NOTYPE: u8 = 0;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STT_FILE: u8 = 4;

pub const EM_386: u16 = 3;
pub const EM_PPC: u16 = 20;
pub const EM_PPC64: u16 = 21;
pub const EM_X86_64: u16 = 62;

#[derive(Clone, Debug)]
pub struct Sym {
    pub name: String,
    pub value: u64,
    pub bind: u8,
    pub typ: u8,
    pub shndx: u16,
}

struct W {
    buf: Vec<u8>,
    le: bool,
    is64: bool,
}

impl W {
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        let b = if self.le {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u32(&mut self, v: u32) {
        let b = if self.le {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    fn u64(&mut self, v: u64) {
        let b = if self.le {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        };
        self.buf.extend_from_slice(&b);
    }
    /// An address-sized field.
    fn addr(&mut self, v: u64) {
        if self.is64 {
            self.u64(v)
        } else {
            self.u32(v as u32)
        }
    }
    fn align(&mut self, a: usize) {
        while !self.buf.len().is_multiple_of(a) {
            self.buf.push(0);
        }
    }
}

struct Shdr {
    name: u32,
    typ: u32,
    flags: u64,
    addr: u64,
    off: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

/// Writes the ELF image. `osabi` 9 marks a FreeBSD kernel, 0 a Linux/SysV one.
pub fn write_elf(is64: bool, le: bool, machine: u16, osabi: u8, syms: &[Sym]) -> Vec<u8> {
    write_elf_with(is64, le, machine, osabi, syms, &[])
}

/// The .strtab `write_elf` emits for `syms`: a NUL, then each name and a NUL, in order.
pub fn strtab(syms: &[Sym]) -> Vec<u8> {
    let mut strtab = vec![0u8];
    for s in syms {
        strtab.extend_from_slice(s.name.as_bytes());
        strtab.push(0);
    }
    strtab
}

/// `write_elf` plus extra SHT_PROGBITS sections (name, contents), e.g. a `.SUNW_ctf`, after
/// the usual eight (so their indices are 8, 9, ...).
pub fn write_elf_with(
    is64: bool,
    le: bool,
    machine: u16,
    osabi: u8,
    syms: &[Sym],
    extra: &[(&str, &[u8])],
) -> Vec<u8> {
    let mut w = W {
        buf: Vec::new(),
        le,
        is64,
    };
    let ehsize = if is64 { 64 } else { 52 };
    let shentsize: u16 = if is64 { 64 } else { 40 };
    let symsize = if is64 { 24 } else { 16 };
    w.buf.resize(ehsize, 0); // header written last
    let base = if is64 {
        0xffff_ffff_8100_0000u64
    } else {
        0xc040_0000
    };
    // section contents
    let sec = |w: &mut W, data: &[u8]| {
        w.align(16);
        let off = w.buf.len() as u64;
        w.buf.extend_from_slice(data);
        off
    };
    let text_off = sec(&mut w, &[0xc3; 16]);
    let ro_off = sec(&mut w, b"Linux version x\0");
    let data_off = sec(&mut w, &[1; 16]);
    // strtab
    let strtab = strtab(syms);
    let mut name_offs = Vec::with_capacity(syms.len());
    let mut at = 1u32;
    for s in syms {
        name_offs.push(at);
        at += s.name.len() as u32 + 1;
    }
    // symtab: null entry, locals first (ELF rule), then the rest
    w.align(8);
    let sym_off = w.buf.len() as u64;
    let mut order: Vec<usize> = (0..syms.len()).collect();
    order.sort_by_key(|&i| syms[i].bind != STB_LOCAL);
    let nlocal = 1 + syms.iter().filter(|s| s.bind == STB_LOCAL).count() as u32;
    w.buf.extend(std::iter::repeat_n(0u8, symsize));
    for &i in &order {
        let s = &syms[i];
        let info = (s.bind << 4) | (s.typ & 0xf);
        if is64 {
            w.u32(name_offs[i]);
            w.u8(info);
            w.u8(0);
            w.u16(s.shndx);
            w.u64(s.value);
            w.u64(8);
        } else {
            w.u32(name_offs[i]);
            w.u32(s.value as u32);
            w.u32(8);
            w.u8(info);
            w.u8(0);
            w.u16(s.shndx);
        }
    }
    let sym_size = w.buf.len() as u64 - sym_off;
    let str_off = w.buf.len() as u64;
    w.buf.extend_from_slice(&strtab);
    let mut shstr: Vec<u8> =
        b"\0.text\0.rodata\0.data\0.bss\0.symtab\0.strtab\0.shstrtab\0".to_vec();
    for (name, _) in extra {
        shstr.extend_from_slice(name.as_bytes());
        shstr.push(0);
    }
    let shstr = &shstr[..];
    let shstr_off = w.buf.len() as u64;
    w.buf.extend_from_slice(shstr);
    let extra_offs: Vec<u64> = extra.iter().map(|(_, data)| sec(&mut w, data)).collect();
    let nm = |n: &str| {
        let pat = format!("\0{}\0", n);
        shstr
            .windows(pat.len())
            .position(|x| x == pat.as_bytes())
            .unwrap() as u32
            + 1
    };
    let mut shdrs = vec![
        Shdr {
            name: 0,
            typ: 0,
            flags: 0,
            addr: 0,
            off: 0,
            size: 0,
            link: 0,
            info: 0,
            align: 0,
            entsize: 0,
        },
        Shdr {
            name: nm(".text"),
            typ: 1,
            flags: 6,
            addr: base,
            off: text_off,
            size: 16,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        },
        Shdr {
            name: nm(".rodata"),
            typ: 1,
            flags: 2,
            addr: base + 0x100_0000,
            off: ro_off,
            size: 16,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        },
        Shdr {
            name: nm(".data"),
            typ: 1,
            flags: 3,
            addr: base + 0x200_0000,
            off: data_off,
            size: 16,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        },
        Shdr {
            name: nm(".bss"),
            typ: 8,
            flags: 3,
            addr: base + 0x300_0000,
            off: data_off + 16,
            size: 0x1000,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        },
        Shdr {
            name: nm(".symtab"),
            typ: 2,
            flags: 0,
            addr: 0,
            off: sym_off,
            size: sym_size,
            link: 6,
            info: nlocal,
            align: 8,
            entsize: symsize as u64,
        },
        Shdr {
            name: nm(".strtab"),
            typ: 3,
            flags: 0,
            addr: 0,
            off: str_off,
            size: strtab.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Shdr {
            name: nm(".shstrtab"),
            typ: 3,
            flags: 0,
            addr: 0,
            off: shstr_off,
            size: shstr.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
    ];
    for ((name, data), off) in extra.iter().zip(&extra_offs) {
        shdrs.push(Shdr {
            name: nm(name),
            typ: 1,
            flags: 0,
            addr: 0,
            off: *off,
            size: data.len() as u64,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        });
    }
    w.align(8);
    let shoff = w.buf.len() as u64;
    for s in &shdrs {
        w.u32(s.name);
        w.u32(s.typ);
        w.addr(s.flags);
        w.addr(s.addr);
        w.addr(s.off);
        w.addr(s.size);
        w.u32(s.link);
        w.u32(s.info);
        w.addr(s.align);
        w.addr(s.entsize);
    }
    // ELF header
    let body = std::mem::take(&mut w.buf);
    w.buf.extend_from_slice(b"\x7fELF");
    w.u8(if is64 { 2 } else { 1 });
    w.u8(if le { 1 } else { 2 });
    w.u8(1);
    w.u8(osabi);
    w.buf.resize(16, 0);
    w.u16(2); // ET_EXEC
    w.u16(machine);
    w.u32(1);
    w.addr(base);
    w.addr(0); // no program headers
    w.addr(shoff);
    w.u32(0);
    w.u16(ehsize as u16);
    w.u16(0);
    w.u16(0);
    w.u16(shentsize);
    w.u16(shdrs.len() as u16);
    w.u16(7);
    assert_eq!(w.buf.len(), ehsize);
    let mut out = w.buf;
    out.extend_from_slice(&body[ehsize..]);
    out
}

/// The same image with the section header table's position and the symbol table's offset,
/// for tests that cut files at interesting places: (shoff, symtab offset, symtab size).
pub fn layout(img: &[u8]) -> (u64, u64, u64) {
    let is64 = img[4] == 2;
    let le = img[5] == 1;
    let rd = |o: usize, n: usize| -> u64 {
        let mut v = 0u64;
        for i in 0..n {
            let b = img[o + if le { n - 1 - i } else { i }] as u64;
            v = (v << 8) | b;
        }
        v
    };
    let (shoff, shent) = if is64 {
        (rd(0x28, 8), 64)
    } else {
        (rd(0x20, 4), 40)
    };
    let sh = (shoff + 5 * shent) as usize;
    if is64 {
        (shoff, rd(sh + 24, 8), rd(sh + 32, 8))
    } else {
        (shoff, rd(sh + 16, 4), rd(sh + 20, 4))
    }
}
