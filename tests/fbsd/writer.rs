//! Test-side writer of FreeBSD crash dumps, following ../shared/spec/freebsd-dump-formats.md and
//! errata.md field by field: amd64 minidumps v1-v3 and full ELF dumps, arm64 minidumps v1-v3
//! (4 KiB / 16 KiB pages), i386 minidumps v1-v2 (PAE and non-PAE), and a minimal FreeBSD
//! kernel ELF with a symbol table. Files are written sparse: only pages with content are
//! written, the rest stay holes (zeros).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Deterministic page content for physical address `pa` (every byte depends on pa and index).
pub fn pattern(pa: u64, len: usize) -> Vec<u8> {
    let mut x = pa ^ 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn round_up(x: u64, p: u64) -> u64 {
    x.div_ceil(p) * p
}

/// Physical memory: chunks of RAM and the content of the pages that are not zero.
#[derive(Clone, Debug)]
pub struct Phys {
    pub page: u64,
    /// [start, end) RAM chunks, sorted (dump_avail / ELF PT_LOADs).
    pub chunks: Vec<(u64, u64)>,
    pub data: BTreeMap<u64, Vec<u8>>,
}

impl Phys {
    pub fn new(page: u64, chunks: Vec<(u64, u64)>) -> Phys {
        Phys {
            page,
            chunks,
            data: BTreeMap::new(),
        }
    }
    pub fn in_ram(&self, pa: u64) -> bool {
        self.chunks.iter().any(|&(s, e)| pa >= s && pa < e)
    }
    /// Gives page `pa` its pattern content.
    pub fn fill(&mut self, pa: u64) {
        assert!(self.in_ram(pa), "pa 0x{:x} not in RAM", pa);
        let p = self.page;
        self.data
            .insert(pa & !(p - 1), pattern(pa & !(p - 1), p as usize));
    }
    pub fn write_u64(&mut self, pa: u64, v: u64) {
        let p = self.page;
        let base = pa & !(p - 1);
        let pg = self.data.entry(base).or_insert_with(|| vec![0; p as usize]);
        let o = (pa - base) as usize;
        pg[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    /// Stores `b` at physical `pa` (pages keep their other content; new pages start zeroed).
    pub fn write(&mut self, pa: u64, b: &[u8]) {
        let p = self.page;
        for (i, &x) in b.iter().enumerate() {
            let a = pa + i as u64;
            let base = a & !(p - 1);
            let pg = self.data.entry(base).or_insert_with(|| vec![0; p as usize]);
            pg[(a - base) as usize] = x;
        }
    }
    /// Bytes of physical memory (zeros where nothing was written).
    pub fn read(&self, pa: u64, len: usize) -> Vec<u8> {
        let p = self.page;
        let mut out = Vec::with_capacity(len);
        let mut a = pa;
        while out.len() < len {
            let base = a & !(p - 1);
            let o = (a - base) as usize;
            let n = (p as usize - o).min(len - out.len());
            match self.data.get(&base) {
                Some(pg) => out.extend_from_slice(&pg[o..o + n]),
                None => out.extend(std::iter::repeat_n(0, n)),
            }
            a += n as u64;
        }
        out
    }
}

/// One virtual->physical mapping of the model (truth for the tests).
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub va: u64,
    pub pa: u64,
    pub size: u64,
    pub flags: u64,
}

pub const PG_V: u64 = 1;
pub const PG_RW: u64 = 2;
pub const PG_PS: u64 = 0x80;
pub const PG_NX: u64 = 1 << 63;
const FRAME: u64 = 0x000f_ffff_ffff_f000;

/// An amd64 machine: RAM, 4-level page tables built from mappings, kernel symbols.
pub struct Amd64Machine {
    pub phys: Phys,
    pub pml4_pa: u64,
    tables: BTreeMap<u64, [u64; 512]>,
    next_table: u64,
    pub maps: Vec<Mapping>,
    pub dmapbase: u64,
    pub dmapend: u64,
    /// Value of the kernel symbol `kernbase`.
    pub kernbase_sym: u64,
    /// Address of the kernel variable KPML4phys.
    pub kpml4phys_sym: u64,
}

impl Amd64Machine {
    /// `table_area`: physical pages handed out for page-table pages.
    pub fn new(chunks: Vec<(u64, u64)>, table_area: u64, dmapbase: u64, dmapend: u64) -> Self {
        let mut m = Amd64Machine {
            phys: Phys::new(4096, chunks),
            pml4_pa: 0,
            tables: BTreeMap::new(),
            next_table: table_area,
            maps: Vec::new(),
            dmapbase,
            dmapend,
            kernbase_sym: 0,
            kpml4phys_sym: 0,
        };
        m.pml4_pa = m.alloc_table();
        m
    }

    fn alloc_table(&mut self) -> u64 {
        let pa = self.next_table;
        assert!(self.phys.in_ram(pa));
        self.next_table += 4096;
        self.tables.insert(pa, [0; 512]);
        pa
    }

    fn entry_table(&mut self, table: u64, idx: usize) -> u64 {
        let e = self.tables[&table][idx];
        if e & PG_V != 0 {
            assert!(e & PG_PS == 0, "mapping overlaps a large page");
            return e & FRAME;
        }
        let t = self.alloc_table();
        self.tables.get_mut(&table).unwrap()[idx] = t | PG_V | PG_RW;
        t
    }

    /// Maps `size` (4 KiB, 2 MiB or 1 GiB) at `va` to `pa` with extra entry `flags`.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, flags: u64) {
        assert_eq!(va % size, 0);
        assert_eq!(pa % size, 0);
        let pdp = self.entry_table(self.pml4_pa, ((va >> 39) & 511) as usize);
        let leaf = pa | PG_V | flags;
        if size == 1 << 30 {
            self.tables.get_mut(&pdp).unwrap()[((va >> 30) & 511) as usize] = leaf | PG_PS;
        } else {
            let pd = self.entry_table(pdp, ((va >> 30) & 511) as usize);
            if size == 1 << 21 {
                self.tables.get_mut(&pd).unwrap()[((va >> 21) & 511) as usize] = leaf | PG_PS;
            } else {
                assert_eq!(size, 4096);
                let pt = self.entry_table(pd, ((va >> 21) & 511) as usize);
                self.tables.get_mut(&pt).unwrap()[((va >> 12) & 511) as usize] = leaf;
            }
        }
        self.maps.push(Mapping {
            va,
            pa,
            size,
            flags: leaf,
        });
    }

    /// Truth: physical address of `va` from the mapping list.
    pub fn truth(&self, va: u64) -> Option<u64> {
        self.maps
            .iter()
            .find(|m| va >= m.va && va - m.va < m.size)
            .map(|m| m.pa + (va - m.va))
    }

    /// Leaf entry for `va` from the page tables: (entry, size) — used to build page maps.
    pub fn leaf(&self, va: u64) -> Option<(u64, u64)> {
        let pml4e = self.tables[&self.pml4_pa][((va >> 39) & 511) as usize];
        if pml4e & PG_V == 0 {
            return None;
        }
        let pdpe = self.tables[&(pml4e & FRAME)][((va >> 30) & 511) as usize];
        if pdpe & PG_V == 0 {
            return None;
        }
        if pdpe & PG_PS != 0 {
            return Some((pdpe, 1 << 30));
        }
        let pde = self.tables[&(pdpe & FRAME)][((va >> 21) & 511) as usize];
        if pde & PG_V == 0 {
            return None;
        }
        if pde & PG_PS != 0 {
            return Some((pde, 1 << 21));
        }
        let pte = self.tables[&(pde & FRAME)][((va >> 12) & 511) as usize];
        (pte & PG_V != 0).then_some((pte, 4096))
    }

    /// The PD-level view of `va` (2 MiB slot): a PDE, a fake PS PDE for a 1 GiB page, or 0.
    pub fn pde_for(&self, va: u64) -> u64 {
        let pml4e = self.tables[&self.pml4_pa][((va >> 39) & 511) as usize];
        if pml4e & PG_V == 0 {
            return 0;
        }
        let pdpe = self.tables[&(pml4e & FRAME)][((va >> 30) & 511) as usize];
        if pdpe & PG_V == 0 {
            return 0;
        }
        if pdpe & PG_PS != 0 {
            return ((pdpe & 0x000f_ffff_c000_0000) + (va & ((1 << 30) - 1) & !((1 << 21) - 1)))
                | (pdpe & (PG_NX | 0xfff));
        }
        self.tables[&(pdpe & FRAME)][((va >> 21) & 511) as usize]
    }

    /// Writes the page tables and KPML4phys into physical memory.
    pub fn finalize(&mut self, kernbase_sym: u64, kpml4phys_sym: u64) {
        self.kernbase_sym = kernbase_sym;
        self.kpml4phys_sym = kpml4phys_sym;
        for (&pa, t) in &self.tables {
            let mut pg = vec![0u8; 4096];
            for (i, e) in t.iter().enumerate() {
                pg[i * 8..i * 8 + 8].copy_from_slice(&e.to_le_bytes());
            }
            self.phys.data.insert(pa, pg);
        }
        self.phys
            .write_u64(kpml4phys_sym - kernbase_sym, self.pml4_pa);
    }

    pub fn table_pages(&self) -> Vec<u64> {
        self.tables.keys().copied().collect()
    }
}

/// A sparse file under construction.
pub struct Out {
    f: File,
    len: u64,
}

impl Out {
    pub fn create(path: &Path) -> Out {
        Out {
            f: File::create(path).unwrap(),
            len: 0,
        }
    }
    pub fn at(&mut self, off: u64, b: &[u8]) {
        if b.iter().any(|&x| x != 0) {
            self.f.write_all_at(b, off).unwrap();
        }
        self.len = self.len.max(off + b.len() as u64);
    }
    pub fn reserve(&mut self, end: u64) {
        self.len = self.len.max(end);
    }
    pub fn finish(self) {
        self.f.set_len(self.len).unwrap();
    }
}

/// How pages are numbered in a minidump bitmap.
#[derive(Clone, Debug)]
pub enum BitIds {
    /// pa / page (no dump_avail), with this many bits.
    Flat(u64),
    /// dump_avail ranges.
    Avail(Vec<(u64, u64)>),
}

impl BitIds {
    pub fn bit(&self, pa: u64, page: u64) -> u64 {
        match self {
            BitIds::Flat(_) => pa / page,
            BitIds::Avail(r) => {
                let mut adj = 0;
                for &(s, e) in r {
                    if pa >= s && pa < e {
                        return adj + (pa - s) / page;
                    }
                    adj += e.div_ceil(page) - s / page;
                }
                panic!("pa 0x{:x} outside dump_avail", pa)
            }
        }
    }
    pub fn nbits(&self, page: u64) -> u64 {
        match self {
            BitIds::Flat(n) => *n,
            BitIds::Avail(r) => r.iter().map(|&(s, e)| e.div_ceil(page) - s / page).sum(),
        }
    }
    pub fn dump_avail_bytes(&self) -> Option<Vec<u8>> {
        match self {
            BitIds::Flat(_) => None,
            BitIds::Avail(r) => {
                let mut b = Vec::new();
                for &(s, e) in r {
                    b.extend_from_slice(&s.to_le_bytes());
                    b.extend_from_slice(&e.to_le_bytes());
                }
                b.extend_from_slice(&[0; 16]);
                Some(b)
            }
        }
    }
}

/// The generic minidump body: header page (header bytes given), msgbuf, [dump_avail], bitmap,
/// page map, then each present page in bit order. `bitmap_round`: write bitmapsize as a page
/// multiple (amd64 v3 / arm64 / i386 v2) or the raw byte count (older versions).
pub struct MiniBody<'a> {
    pub page: u64,
    pub msgbuf: &'a [u8],
    pub ids: BitIds,
    /// Write dump_avail as a whole zero-padded page (dumpavailsize = round_page).
    pub present: Vec<u64>,
    pub pmap: Vec<u8>,
    pub bitmap_round: bool,
}

/// Sizes the header must carry: (msgbufsize, dumpavailsize, bitmapsize, pmapsize).
pub struct Sizes {
    pub msgbufsize: u32,
    pub dumpavailsize: u32,
    pub bitmapsize: u32,
    pub pmapsize: u32,
}

impl MiniBody<'_> {
    pub fn sizes(&self) -> Sizes {
        let nbits = self.ids.nbits(self.page);
        let raw = nbits.div_ceil(8);
        let bitmapsize = if self.bitmap_round {
            round_up(raw, self.page)
        } else {
            raw
        };
        Sizes {
            msgbufsize: self.msgbuf.len() as u32,
            dumpavailsize: match self.ids.dump_avail_bytes() {
                Some(b) => round_up(b.len() as u64, self.page) as u32,
                None => 0,
            },
            bitmapsize: bitmapsize as u32,
            pmapsize: self.pmap.len() as u32,
        }
    }

    /// Writes the file; `header` already holds magic, version and the `sizes()` values.
    pub fn write(&self, path: &Path, header: &[u8], phys: &Phys) -> u64 {
        let p = self.page;
        let s = self.sizes();
        let mut out = Out::create(path);
        out.at(0, header);
        let mut off = p;
        out.at(off, self.msgbuf);
        off += round_up(s.msgbufsize as u64, p);
        if let Some(da) = self.ids.dump_avail_bytes() {
            out.at(off, &da);
            off += round_up(s.dumpavailsize as u64, p);
        }
        let mut bm = vec![0u8; s.bitmapsize as usize];
        let mut bits: Vec<(u64, u64)> = self
            .present
            .iter()
            .map(|&pa| (self.ids.bit(pa, p), pa))
            .collect();
        bits.sort();
        bits.dedup();
        for &(b, _) in &bits {
            bm[(b / 8) as usize] |= 1 << (b % 8);
        }
        out.at(off, &bm);
        off += round_up(s.bitmapsize as u64, p);
        out.at(off, &self.pmap);
        off += round_up(s.pmapsize as u64, p);
        let sparse = off;
        for (rank, &(_, pa)) in bits.iter().enumerate() {
            let at = sparse + rank as u64 * p;
            if let Some(pg) = phys.data.get(&pa) {
                out.at(at, pg);
            } else if phys.page < p {
                // 16 KiB dump pages from a 4 KiB-granular model: assemble.
                out.at(at, &phys.read(pa, p as usize));
            }
            out.reserve(at + p);
        }
        out.finish();
        sparse
    }
}

pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn magic(b: &mut [u8], m: &str) {
    b[..m.len()].copy_from_slice(m.as_bytes());
}

/// Pages of every kernel-map leaf at or above `kernbase` up to `kva_end`.
fn kmap_pages(m: &Amd64Machine, kernbase: u64, kva_len: u64) -> Vec<u64> {
    let mut v = Vec::new();
    for mp in &m.maps {
        if mp.va >= kernbase && mp.va - kernbase < kva_len {
            let mut a = 0;
            while a < mp.size {
                v.push(mp.pa + a);
                a += 4096;
            }
        }
    }
    v
}

/// amd64 minidump v1/v2/v3 of `m`: the page map covers kva_len bytes from kernbase; `extra` are more
/// pages to dump (e.g. reachable only through the direct map). Returns the sparse offset.
pub fn write_amd64_minidump(
    path: &Path,
    m: &Amd64Machine,
    version: u32,
    kernbase: u64,
    kva_len: u64,
    extra: &[u64],
) -> u64 {
    let mut pmap = Vec::new();
    let mut present = kmap_pages(m, kernbase, kva_len);
    if version == 1 {
        for i in 0..kva_len / 4096 {
            let va = kernbase.wrapping_add(i * 4096);
            let e = match m.leaf(va) {
                Some((e, 4096)) => e,
                Some((e, size)) => {
                    let frame = if size == 1 << 30 {
                        0x000f_ffff_c000_0000
                    } else {
                        0x000f_ffff_ffe0_0000
                    };
                    ((e & frame) + (va & (size - 1))) | (e & (PG_NX | 0x7f))
                }
                None => 0,
            };
            pmap.extend_from_slice(&e.to_le_bytes());
        }
    } else {
        for i in 0..kva_len >> 21 {
            let va = kernbase.wrapping_add(i << 21);
            let pde = m.pde_for(va);
            if pde & PG_V != 0 && pde & PG_PS == 0 {
                present.push(pde & FRAME); // the page-table page is dumped
            }
            pmap.extend_from_slice(&pde.to_le_bytes());
        }
    }
    present.extend_from_slice(extra);
    present.sort();
    present.dedup();
    let max_pa = m.phys.chunks.iter().map(|c| c.1).max().unwrap();
    let ids = if version == 3 {
        BitIds::Avail(m.phys.chunks.clone())
    } else {
        BitIds::Flat(max_pa / 4096)
    };
    let body = MiniBody {
        page: 4096,
        msgbuf: b"FreeBSD msgbuf: panic: test fixture\n",
        ids,
        present,
        pmap,
        bitmap_round: version == 3,
    };
    let s = body.sizes();
    let mut h = vec![0u8; 4096];
    magic(&mut h, "minidump FreeBSD/amd64");
    put32(&mut h, 24, version);
    put32(&mut h, 28, s.msgbufsize);
    put32(&mut h, 32, s.bitmapsize);
    put32(&mut h, 36, s.pmapsize);
    put64(&mut h, 40, kernbase);
    put64(&mut h, 48, m.dmapbase);
    put64(&mut h, 56, m.dmapend);
    if version == 3 {
        put32(&mut h, 64, s.dumpavailsize);
    }
    body.write(path, &h, &m.phys)
}

/// Full ELF dump of `m`: ELF64 ET_CORE, OSABI standalone, one PT_LOAD per RAM chunk.
pub fn write_amd64_elf(path: &Path, m: &Amd64Machine) {
    let n = m.phys.chunks.len() as u64;
    let mut out = Out::create(path);
    let mut eh = vec![0u8; 64];
    eh[..4].copy_from_slice(b"\x7fELF");
    eh[4] = 2; // ELFCLASS64
    eh[5] = 1; // ELFDATA2LSB
    eh[6] = 1; // EV_CURRENT
    eh[7] = 255; // ELFOSABI_STANDALONE
    eh[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
    eh[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    eh[20..24].copy_from_slice(&1u32.to_le_bytes());
    eh[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    eh[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    eh[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    eh[56..58].copy_from_slice(&(n as u16).to_le_bytes());
    eh[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    out.at(0, &eh);
    let mut off = round_up(64 + 56 * n, 4096);
    for (i, &(s, e)) in m.phys.chunks.iter().enumerate() {
        let mut ph = vec![0u8; 56];
        put32(&mut ph, 0, 1); // PT_LOAD
        put32(&mut ph, 4, 7);
        put64(&mut ph, 8, off);
        put64(&mut ph, 16, 0);
        put64(&mut ph, 24, s);
        put64(&mut ph, 32, e - s);
        put64(&mut ph, 40, e - s);
        put64(&mut ph, 48, 4096);
        out.at(64 + 56 * i as u64, &ph);
        for (&pa, pg) in m.phys.data.range(s..e) {
            out.at(off + pa - s, pg);
        }
        off += e - s;
    }
    out.reserve(off);
    out.finish();
}

/// arm64 model: RAM, L3 page mappings at kernbase (blocks become runs of L3 pages).
pub struct Arm64Machine {
    pub phys: Phys,
    pub page: u64,
    pub kernbase: u64,
    pub dmapphys: u64,
    pub dmapbase: u64,
    pub dmapend: u64,
    /// L3 descriptor per page index from kernbase.
    pub l3: BTreeMap<u64, u64>,
    pub maps: Vec<Mapping>,
}

pub const ATTR_AF: u64 = 1 << 10;
pub const ATTR_AP_RO: u64 = 1 << 7;
pub const ATTR_XN: u64 = (1 << 53) | (1 << 54);

impl Arm64Machine {
    pub fn new(page: u64, chunks: Vec<(u64, u64)>, kernbase: u64, dmapbase: u64) -> Self {
        let dmapphys = chunks[0].0;
        let end = chunks.iter().map(|c| c.1).max().unwrap();
        Arm64Machine {
            phys: Phys::new(page, chunks),
            page,
            kernbase,
            dmapphys,
            dmapbase,
            dmapend: dmapbase + (end - dmapphys),
            l3: BTreeMap::new(),
            maps: Vec::new(),
        }
    }
    /// Maps `size` bytes (a multiple of the page) at `va` to `pa`, one L3 page each.
    pub fn map(&mut self, va: u64, pa: u64, size: u64, attrs: u64) {
        let mut a = 0;
        while a < size {
            let k = (va + a - self.kernbase) / self.page;
            self.l3.insert(k, (pa + a) | attrs | ATTR_AF | 3);
            a += self.page;
        }
        self.maps.push(Mapping {
            va,
            pa,
            size,
            flags: attrs,
        });
    }
    pub fn truth(&self, va: u64) -> Option<u64> {
        if va >= self.dmapbase && va < self.dmapend {
            return Some(va - self.dmapbase + self.dmapphys);
        }
        self.maps
            .iter()
            .find(|m| va >= m.va && va - m.va < m.size)
            .map(|m| m.pa + (va - m.va))
    }
}

pub fn write_arm64_minidump(path: &Path, m: &Arm64Machine, version: u32, extra: &[u64]) -> u64 {
    let p = m.page;
    let nl3 = m.l3.keys().max().map_or(0, |k| k + 1);
    let nl3 = round_up(nl3, 4096 / 8); // whole pages of descriptors
    let mut pmap = vec![0u8; (nl3 * 8) as usize];
    for (&k, &d) in &m.l3 {
        pmap[(k * 8) as usize..(k * 8 + 8) as usize].copy_from_slice(&d.to_le_bytes());
    }
    let mut present: Vec<u64> = m.l3.values().map(|d| d & !0xfffc_0000_0000_0fff).collect();
    present.extend_from_slice(extra);
    present.sort();
    present.dedup();
    let max_pa = m.phys.chunks.iter().map(|c| c.1).max().unwrap();
    let ids = if version >= 2 {
        BitIds::Avail(m.phys.chunks.clone())
    } else {
        BitIds::Flat(max_pa / p)
    };
    let body = MiniBody {
        page: p,
        msgbuf: b"arm64 msgbuf\n",
        ids,
        present,
        pmap,
        bitmap_round: version >= 2,
    };
    let s = body.sizes();
    let mut h = vec![0u8; p as usize];
    magic(&mut h, "minidump FreeBSD/arm64");
    put32(&mut h, 24, version);
    put32(&mut h, 28, s.msgbufsize);
    put32(&mut h, 32, s.bitmapsize);
    put32(&mut h, 36, s.pmapsize);
    put64(&mut h, 40, m.kernbase);
    put64(&mut h, 48, m.dmapphys);
    put64(&mut h, 56, m.dmapbase);
    put64(&mut h, 64, m.dmapend);
    if version >= 2 {
        put32(&mut h, 72, s.dumpavailsize);
    }
    if version >= 3 {
        put32(&mut h, 76, if p == 16384 { 1 } else { 0 });
    }
    body.write(path, &h, &m.phys)
}

/// i386 model: RAM and a PTE per 4 KiB page from kernbase.
pub struct I386Machine {
    pub phys: Phys,
    pub kernbase: u32,
    pub pae: bool,
    pub ptes: BTreeMap<u64, u64>,
    pub maps: Vec<Mapping>,
}

impl I386Machine {
    pub fn new(chunks: Vec<(u64, u64)>, kernbase: u32, pae: bool) -> Self {
        I386Machine {
            phys: Phys::new(4096, chunks),
            kernbase,
            pae,
            ptes: BTreeMap::new(),
            maps: Vec::new(),
        }
    }
    /// Maps `size` bytes at `va` (superpages become runs of fake PTEs, as the kernel writes).
    pub fn map(&mut self, va: u64, pa: u64, size: u64, flags: u64) {
        let mut a = 0;
        while a < size {
            self.ptes
                .insert((va + a - self.kernbase as u64) / 4096, (pa + a) | 1 | flags);
            a += 4096;
        }
        self.maps.push(Mapping {
            va,
            pa,
            size,
            flags,
        });
    }
    pub fn truth(&self, va: u64) -> Option<u64> {
        self.maps
            .iter()
            .find(|m| va >= m.va && va - m.va < m.size)
            .map(|m| m.pa + (va - m.va))
    }
}

pub fn write_i386_minidump(path: &Path, m: &I386Machine, version: u32, extra: &[u64]) -> u64 {
    let esz = if m.pae { 8 } else { 4 };
    let n = m.ptes.keys().max().map_or(0, |k| k + 1);
    let n = round_up(n, 4096 / esz);
    let mut pmap = vec![0u8; (n * esz) as usize];
    for (&k, &e) in &m.ptes {
        let o = (k * esz) as usize;
        if m.pae {
            pmap[o..o + 8].copy_from_slice(&e.to_le_bytes());
        } else {
            pmap[o..o + 4].copy_from_slice(&(e as u32).to_le_bytes());
        }
    }
    let mut present: Vec<u64> = m.ptes.values().map(|e| e & 0x000f_ffff_ffff_f000).collect();
    present.extend_from_slice(extra);
    present.sort();
    present.dedup();
    let max_pa = m.phys.chunks.iter().map(|c| c.1).max().unwrap();
    let ids = if version == 2 {
        BitIds::Avail(m.phys.chunks.clone())
    } else {
        BitIds::Flat(max_pa / 4096)
    };
    let body = MiniBody {
        page: 4096,
        msgbuf: b"i386 msgbuf\n",
        ids,
        present,
        pmap,
        bitmap_round: version == 2,
    };
    let s = body.sizes();
    let mut h = vec![0u8; 4096];
    magic(&mut h, "minidump FreeBSD/i386");
    put32(&mut h, 24, version);
    put32(&mut h, 28, s.msgbufsize);
    put32(&mut h, 32, s.bitmapsize);
    put32(&mut h, 36, s.pmapsize);
    put32(&mut h, 40, m.kernbase);
    put32(&mut h, 44, m.pae as u32);
    if version == 2 {
        put32(&mut h, 48, s.dumpavailsize);
    }
    body.write(path, &h, &m.phys)
}

/// A minimal FreeBSD kernel ELF (ET_EXEC, OSABI FreeBSD) with a .symtab holding `syms`.
pub fn write_kernel_elf(path: &Path, class64: bool, machine: u16, syms: &[(&str, u64)]) {
    write_kernel_elf_with(path, class64, machine, syms, &[]);
}

/// Same, with extra sections (name, contents), e.g. a `.BTF` section with the kernel's types.
pub fn write_kernel_elf_with(
    path: &Path,
    class64: bool,
    machine: u16,
    syms: &[(&str, u64)],
    extra: &[(&str, &[u8])],
) {
    let mut strtab = vec![0u8];
    let mut symtab = Vec::new();
    let entsz = if class64 { 24 } else { 16 };
    symtab.extend(std::iter::repeat_n(0, entsz)); // null symbol
    for (name, value) in syms {
        let name_off = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        let mut s = vec![0u8; entsz];
        put32(&mut s, 0, name_off);
        if class64 {
            s[4] = 0x11; // STB_GLOBAL, STT_OBJECT
            s[6..8].copy_from_slice(&0xfff1u16.to_le_bytes()); // SHN_ABS
            put64(&mut s, 8, *value);
            put64(&mut s, 16, 8);
        } else {
            put32(&mut s, 4, *value as u32);
            put32(&mut s, 8, 4);
            s[12] = 0x11;
            s[14..16].copy_from_slice(&0xfff1u16.to_le_bytes());
        }
        symtab.extend_from_slice(&s);
    }
    // Section name table: .symtab, .strtab, the extra sections, .shstrtab.
    let mut shstr = vec![0u8];
    let mut name_of = |n: &str| {
        let o = shstr.len() as u32;
        shstr.extend_from_slice(n.as_bytes());
        shstr.push(0);
        o
    };
    let mut secs: Vec<(u32, u32, Vec<u8>, u32, u32, u64)> = vec![
        (name_of(".symtab"), 2, symtab, 2, 1, entsz as u64),
        (name_of(".strtab"), 3, strtab, 0, 0, 0),
    ];
    for (n, data) in extra {
        secs.push((name_of(n), 1, data.to_vec(), 0, 0, 0));
    }
    let shs_name = name_of(".shstrtab");
    secs.push((shs_name, 3, shstr, 0, 0, 0));
    let ehsz = if class64 { 64u64 } else { 52 };
    let shentsz = if class64 { 64u64 } else { 40 };
    let mut offs = Vec::new();
    let mut at = ehsz;
    for s in &secs {
        at = round_up(at, 8);
        offs.push(at);
        at += s.2.len() as u64;
    }
    let sh_off = round_up(at, 8);
    let nsec = secs.len() as u64 + 1;
    let mut f = vec![0u8; (sh_off + nsec * shentsz) as usize];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = if class64 { 2 } else { 1 };
    f[5] = 1;
    f[6] = 1;
    f[7] = 9; // ELFOSABI_FREEBSD
    f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    f[18..20].copy_from_slice(&machine.to_le_bytes());
    put32(&mut f, 20, 1);
    let (shnum, shstrndx) = (nsec as u16, nsec as u16 - 1);
    if class64 {
        put64(&mut f, 40, sh_off);
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[58..60].copy_from_slice(&64u16.to_le_bytes());
        f[60..62].copy_from_slice(&shnum.to_le_bytes());
        f[62..64].copy_from_slice(&shstrndx.to_le_bytes());
    } else {
        put32(&mut f, 32, sh_off as u32);
        f[40..42].copy_from_slice(&52u16.to_le_bytes());
        f[46..48].copy_from_slice(&40u16.to_le_bytes());
        f[48..50].copy_from_slice(&shnum.to_le_bytes());
        f[50..52].copy_from_slice(&shstrndx.to_le_bytes());
    }
    for (i, (name, ty, data, link, info, ent)) in secs.iter().enumerate() {
        let off = offs[i];
        f[off as usize..off as usize + data.len()].copy_from_slice(data);
        let o = (sh_off + (i as u64 + 1) * shentsz) as usize;
        put32(&mut f, o, *name);
        put32(&mut f, o + 4, *ty);
        if class64 {
            put64(&mut f, o + 24, off);
            put64(&mut f, o + 32, data.len() as u64);
            put32(&mut f, o + 40, *link);
            put32(&mut f, o + 44, *info);
            put64(&mut f, o + 48, 8);
            put64(&mut f, o + 56, *ent);
        } else {
            put32(&mut f, o + 16, off as u32);
            put32(&mut f, o + 20, data.len() as u32);
            put32(&mut f, o + 24, *link);
            put32(&mut f, o + 28, *info);
            put32(&mut f, o + 32, 4);
            put32(&mut f, o + 36, *ent as u32);
        }
    }
    std::fs::write(path, f).unwrap();
}
