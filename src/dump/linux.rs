//! The backend for Linux crash dumps of x86_64 kernels, over any physical-memory format
//! (ELF vmcore, kdump-compressed, flattened kdump).
//!
//! Translation: the kernel page tables (`init_top_pgt`, located through VMCOREINFO and
//! NUMBER(phys_base)) are walked for every address, with a small translation cache. The
//! direct-map base is derived from the dump (SYMBOL(mem_section) is a direct-map address).
//! Writes are always refused (kvm_write on a dump: "not implemented for dead kernels").

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use crate::abi::{
    KvmPage, LIBKVM_WALK_PAGES_VERSION, VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE,
};
use crate::arch::x86_64::{self, PhysRead, START_KERNEL_MAP};
use crate::backend::{Backend, KernelFamily, SymbolLookup};
use crate::dump::mapped::Mapped;
use crate::dump::physmem::PhysMem;
use crate::dump::vmcoreinfo::VmcoreInfo;
use crate::error::{Error, Result};
use crate::symbols::{kallsyms_dump, Symbol, SymbolIndex};

const PAGE: u64 = 4096;
/// Translation cache: TLB_4K slots for 4 KiB pages, then TLB_2M slots for the 2 MiB regions of
/// large-page mappings (the direct map), so random direct-map reads rarely walk.
const TLB_4K: usize = 4096;
const TLB_2M: usize = 1024;
const TLB_SIZE: usize = TLB_4K + TLB_2M;

/// Adapter: the arch walker reads page tables through the dump's physical memory.
struct Phys<'a>(&'a mut dyn PhysMem);

impl PhysRead for Phys<'_> {
    fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize> {
        self.0.read_phys(pa, buf)
    }
}

#[derive(Clone, Copy)]
struct TlbEntry {
    vpn: u64,
    ppn: u64,
}

pub struct LinuxDump {
    mem: Box<dyn PhysMem>,
    info: VmcoreInfo,
    path: String,
    levels: u32,
    /// Physical address of the kernel's top-level page table.
    root: u64,
    kerneloffset: u64,
    phys_base: i64,
    page_offset_base: Option<u64>,
    nr_cpus: usize,
    tlb: Vec<TlbEntry>,
    /// Process listing state (BTF, caches): src/proc/linux_dead.
    pub(crate) procs: crate::proc::linux_dead::glue::DeadSlot,
}

impl LinuxDump {
    /// Builds the backend once a format has produced physical memory and the VMCOREINFO text.
    pub fn new(
        mut mem: Box<dyn PhysMem>,
        vmcoreinfo: Option<&[u8]>,
        path: &Path,
        nr_cpus: usize,
    ) -> Result<LinuxDump> {
        let p = path.display().to_string();
        let fmt = mem.format_name();
        let info = VmcoreInfo::parse(vmcoreinfo.ok_or_else(|| {
            Error::format(format!(
                "{}: {} has no VMCOREINFO: cannot locate the kernel page tables",
                p, fmt
            ))
        })?);
        if info.is_empty() {
            return Err(Error::format(format!(
                "{}: the VMCOREINFO note is empty",
                p
            )));
        }
        match info.page_size() {
            Some(4096) => {}
            other => {
                return Err(Error::format(format!(
                    "{}: VMCOREINFO PAGESIZE {:?} is not supported (x86_64 uses 4096)",
                    p, other
                )))
            }
        }
        let phys_base = info
            .number("phys_base")
            .ok_or_else(|| Error::format(format!("{}: VMCOREINFO has no NUMBER(phys_base)", p)))?;
        let levels = if info.number("pgtable_l5_enabled") == Some(1) {
            5
        } else {
            4
        };
        let root_va = info
            .symbol("init_top_pgt")
            .or_else(|| info.symbol("swapper_pg_dir"))
            .ok_or_else(|| {
                Error::format(format!(
                    "{}: VMCOREINFO has neither SYMBOL(init_top_pgt) nor SYMBOL(swapper_pg_dir)",
                    p
                ))
            })?;
        if root_va < START_KERNEL_MAP {
            return Err(Error::format(format!(
                "{}: page table root 0x{:x} is not in the kernel text mapping",
                p, root_va
            )));
        }
        let root = (root_va - START_KERNEL_MAP).wrapping_add(phys_base as u64);
        let mut probe = [0u8; 8];
        if !matches!(mem.read_phys(root, &mut probe), Ok(8)) {
            return Err(Error::format(format!(
                "{}: the kernel page table (physical 0x{:x} from init_top_pgt and phys_base {}) is not in the {}",
                p, root, phys_base, fmt
            )));
        }
        let kerneloffset = info.kerneloffset().unwrap_or(0);
        let mut d = LinuxDump {
            mem,
            info,
            path: p,
            levels,
            root,
            kerneloffset,
            phys_base,
            page_offset_base: None,
            nr_cpus,
            procs: Default::default(),
            tlb: vec![
                TlbEntry {
                    vpn: u64::MAX,
                    ppn: 0
                };
                TLB_SIZE
            ],
        };
        // The text mapping must agree with phys_base: catches a wrong phys_base early.
        if let Some(stext) = d.info.symbol("_stext") {
            let linear = (stext - START_KERNEL_MAP).wrapping_add(phys_base as u64);
            match d.kva_to_pa(stext) {
                Ok(pa) if pa == linear => {}
                Ok(pa) => {
                    return Err(Error::format(format!(
                        "{}: _stext 0x{:x} maps to physical 0x{:x}, but phys_base {} says 0x{:x}",
                        d.path, stext, pa, phys_base, linear
                    )))
                }
                Err(e) => {
                    return Err(Error::format(format!(
                        "{}: cannot translate _stext through the kernel page tables: {}",
                        d.path, e
                    )))
                }
            }
        }
        Ok(d)
    }

    pub fn vmcoreinfo(&self) -> &VmcoreInfo {
        &self.info
    }

    /// 4 or 5.
    pub fn paging_levels(&self) -> u32 {
        self.levels
    }

    /// NUMBER(phys_base) from VMCOREINFO (signed).
    pub fn phys_base(&self) -> i64 {
        self.phys_base
    }

    /// Physical address of the kernel's top-level page table (init_top_pgt).
    pub fn kernel_pgd_phys(&self) -> u64 {
        self.root
    }

    /// CPUs recorded in the dump's notes/header (0 if unknown).
    pub fn nr_cpus(&self) -> usize {
        self.nr_cpus
    }

    /// Reads physical memory.
    pub fn read_phys(&mut self, pa: u64, buf: &mut [u8]) -> Result<usize> {
        self.mem.read_phys(pa, buf)
    }

    /// Translates a kernel virtual address (cached).
    pub fn kva_to_pa(&mut self, va: u64) -> Result<u64> {
        let vpn = va >> 12;
        let slot = (vpn as usize) & (TLB_4K - 1);
        let e = self.tlb[slot];
        if e.vpn == vpn {
            return Ok((e.ppn << 12) | (va & 0xfff));
        }
        // Large-page entries are tagged with the 2 MiB region number, offset past any vpn.
        let region = va >> 21;
        let tag2m = region | (1 << 63);
        let slot2m = TLB_4K + ((region as usize) & (TLB_2M - 1));
        let e = self.tlb[slot2m];
        if e.vpn == tag2m {
            return Ok((e.ppn << 21) | (va & 0x1f_ffff));
        }
        let t = x86_64::translate(&mut Phys(self.mem.as_mut()), self.root, self.levels, va)?;
        if t.page_size >= 2 << 20 {
            self.tlb[slot2m] = TlbEntry {
                vpn: tag2m,
                ppn: t.pa >> 21,
            };
        } else {
            self.tlb[slot] = TlbEntry {
                vpn,
                ppn: t.pa >> 12,
            };
        }
        Ok(t.pa)
    }

    /// Reads user (or any) virtual memory through the page tables rooted at physical
    /// `pgd_phys` (a process's `mm->pgd` translated to physical). Same return rules as `read`.
    pub fn read_user(&mut self, pgd_phys: u64, va: u64, buf: &mut [u8]) -> Result<usize> {
        let levels = self.levels;
        self.read_via(buf, va, &mut |me, v| {
            x86_64::translate(&mut Phys(me.mem.as_mut()), pgd_phys, levels, v).map(|t| t.pa)
        })
    }

    /// Reads `buf` from `va` page by page, translating each page with `xlate`: the error when
    /// nothing could be read, else the bytes read up to the first failure.
    fn read_via(
        &mut self,
        buf: &mut [u8],
        va: u64,
        xlate: &mut dyn FnMut(&mut Self, u64) -> Result<u64>,
    ) -> Result<usize> {
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let pa = match xlate(self, cur) {
                Ok(pa) => pa,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            };
            let n = ((PAGE - (cur & (PAGE - 1))) as usize).min(buf.len() - done);
            match self.mem.read_phys(pa, &mut buf[done..done + n]) {
                Ok(k) => {
                    done += k;
                    if k < n {
                        break;
                    }
                }
                Err(e) if done == 0 => return Err(readd(cur, e)),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// The randomized base of the direct map (`page_offset_base`), derived from
    /// SYMBOL(mem_section) (a direct-map address) or the `page_offset_base` variable.
    pub fn page_offset_base(&mut self) -> Result<u64> {
        if let Some(b) = self.page_offset_base {
            return Ok(b);
        }
        let mut found = None;
        if let Some(ms) = self.info.symbol("mem_section") {
            if let Ok(pa) = self.kva_to_pa(ms) {
                let base = ms.wrapping_sub(pa);
                // The direct map is PUD-aligned (1 GiB) even with KASLR.
                if base & ((1 << 30) - 1) == 0 {
                    found = Some(base);
                }
            }
        }
        let b = found.ok_or_else(|| {
            Error::format(format!(
                "{}: cannot determine the direct-map base (page_offset_base)",
                self.path
            ))
        })?;
        self.page_offset_base = Some(b);
        Ok(b)
    }

    fn kernel_half(&self) -> u64 {
        if self.levels == 5 {
            0xff00_0000_0000_0000
        } else {
            0xffff_8000_0000_0000
        }
    }

    fn banner_matches(&mut self, addr: u64) -> bool {
        let Some(rel) = self.info.osrelease().map(|s| s.to_string()) else {
            return false;
        };
        let want = format!("Linux version {} ", rel);
        let mut b = vec![0u8; want.len()];
        matches!(self.read(addr, &mut b), Ok(n) if n == b.len()) && b == want.as_bytes()
    }
}

/// Restates a physical-memory error as an error about the virtual address being read.
fn readd(va: u64, e: Error) -> Error {
    match e {
        Error::BadAddress { why, .. } => Error::bad_address(va, why),
        other => Error::bad_address(va, other.to_string()),
    }
}

impl Backend for LinuxDump {
    fn describe(&self) -> String {
        format!(
            "Linux {} {}",
            self.info.osrelease().unwrap_or("(unknown release)"),
            self.mem.format_name()
        )
    }

    // Processes and statistics: src/proc/linux_dead.
    fn set_type_file(&mut self, path: &Path) -> Result<bool> {
        crate::proc::linux_dead::glue::set_type_file(self, path).map(|_| true)
    }
    fn getprocs(
        &mut self,
        syms: &mut dyn SymbolLookup,
        op: i32,
        arg: i32,
    ) -> Result<Vec<crate::abi::KinfoProc>> {
        crate::proc::linux_dead::glue::getprocs(self, syms, op, arg)
    }
    fn getargv(
        &mut self,
        syms: &mut dyn SymbolLookup,
        kp: &crate::abi::KinfoProc,
        kind: crate::backend::ArgvKind,
        limit: usize,
    ) -> Result<Option<Vec<u8>>> {
        crate::proc::linux_dead::glue::getargv(self, syms, kp, kind, limit)
    }
    fn loadavg(&mut self, syms: &mut dyn SymbolLookup) -> Result<[f64; 3]> {
        crate::proc::linux_dead::glue::plain(self, syms, crate::proc::linux_dead::stats::loadavg)
    }
    fn cptime(&mut self, syms: &mut dyn SymbolLookup) -> Result<[i64; crate::abi::CPUSTATES]> {
        crate::proc::linux_dead::glue::cptime(self, syms)
    }
    fn ncpus(&mut self, syms: &mut dyn SymbolLookup) -> Result<i32> {
        crate::proc::linux_dead::glue::plain(self, syms, crate::proc::linux_dead::stats::ncpus)
    }
    fn maxcpu(&mut self, syms: &mut dyn SymbolLookup) -> Result<i32> {
        crate::proc::linux_dead::glue::plain(self, syms, crate::proc::linux_dead::stats::maxcpu)
    }
    fn getpcpu(&mut self, syms: &mut dyn SymbolLookup, cpu: i32) -> Result<Option<Vec<u8>>> {
        crate::proc::linux_dead::glue::plain(self, syms, |m| {
            crate::proc::linux_dead::stats::getpcpu(m, cpu)
        })
    }
    fn percpu_offset(&mut self, syms: &mut dyn SymbolLookup, cpu: u32) -> Result<Option<u64>> {
        crate::proc::linux_dead::glue::plain(self, syms, |m| {
            crate::proc::linux_dead::stats::percpu_offset(m, cpu)
        })
    }

    fn family(&self) -> KernelFamily {
        KernelFamily::Linux
    }

    fn native(&self) -> bool {
        cfg!(target_arch = "x86_64")
    }

    fn kerndisp(&mut self) -> i64 {
        self.kerneloffset as i64
    }

    fn read(&mut self, va: u64, buf: &mut [u8]) -> Result<usize> {
        self.read_via(buf, va, &mut |me, cur| me.kva_to_pa(cur))
    }

    fn walk_pages(&mut self, cb: &mut dyn FnMut(&KvmPage) -> bool) -> Result<bool> {
        let pob = self.page_offset_base().ok();
        let lo = self.kernel_half();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut maps = Vec::new();
        x86_64::walk(
            &mut Phys(self.mem.as_mut()),
            self.root,
            self.levels,
            lo,
            u64::MAX,
            &mut |m| {
                // Direct-map leaves (va == base + pa) are reported in the physical phase.
                if pob.is_some_and(|b| m.va.wrapping_sub(b) == m.pa) {
                    return true;
                }
                maps.push(*m);
                true
            },
        );
        for m in maps {
            // 1 GiB kernel-map pages are reported as 2 MiB pieces (kvm_page has 4K/2M sizes).
            let piece = m.size.min(2 << 20);
            let mut off = 0;
            while off < m.size {
                let pa = m.pa + off;
                let mut prot = VM_PROT_READ;
                if m.writable {
                    prot |= VM_PROT_WRITE;
                }
                if m.executable {
                    prot |= VM_PROT_EXECUTE;
                }
                let fo = self.mem.page_offset(pa);
                let p = KvmPage {
                    kp_version: LIBKVM_WALK_PAGES_VERSION,
                    kp_paddr: pa,
                    kp_kmap_vaddr: m.va + off,
                    kp_dmap_vaddr: match (pob, fo) {
                        (Some(b), Some(_)) => b.wrapping_add(pa),
                        _ => 0,
                    },
                    kp_prot: prot,
                    kp_offset: fo.unwrap_or(-1),
                    kp_len: piece,
                };
                let mut k = 0;
                while k < piece {
                    seen.insert((pa + k) >> 12);
                    k += PAGE;
                }
                if !cb(&p) {
                    return Ok(false);
                }
                off += piece;
            }
        }
        let done = self.mem.for_each_page(PAGE, &mut |pa, fo| {
            if seen.contains(&(pa >> 12)) {
                return true;
            }
            let p = KvmPage {
                kp_version: LIBKVM_WALK_PAGES_VERSION,
                kp_paddr: pa,
                kp_kmap_vaddr: 0,
                kp_dmap_vaddr: pob.map(|b| b.wrapping_add(pa)).unwrap_or(0),
                kp_prot: VM_PROT_READ | VM_PROT_WRITE,
                kp_offset: fo,
                kp_len: PAGE,
            };
            cb(&p)
        });
        Ok(done)
    }

    fn own_symbols(&mut self) -> Result<Option<SymbolIndex>> {
        let info = self.info.clone();
        let decoded = {
            let mut reader = |va: u64, buf: &mut [u8]| self.read(va, buf);
            kallsyms_dump::index(&mut reader, &info)
        };
        match decoded {
            Ok(idx) if !idx.is_empty() => Ok(Some(idx)),
            _ => {
                let mut idx = SymbolIndex::new("VMCOREINFO SYMBOL() entries");
                for (name, value) in info.symbols() {
                    idx.insert(
                        name,
                        Symbol {
                            value,
                            n_type: crate::abi::N_DATA | crate::abi::N_EXT,
                        },
                    );
                }
                Ok(if idx.is_empty() { None } else { Some(idx) })
            }
        }
    }

    fn symbol_displacement(&mut self, index: &SymbolIndex) -> Result<i64> {
        let koff = self.kerneloffset as i64;
        let src = index.source.clone();
        let candidates: Vec<i64> = match (index.get_raw("_stext"), self.info.symbol("_stext")) {
            (Some(file), Some(dump)) => {
                if file.value == dump {
                    vec![0]
                } else if file.value.wrapping_add(koff as u64) == dump {
                    vec![koff]
                } else {
                    return Err(Error::msg(format!(
                        "{}: symbols do not match the dump {}: _stext is 0x{:x} in the file but 0x{:x} in the dump (KERNELOFFSET 0x{:x})",
                        src, self.path, file.value, dump, self.kerneloffset
                    )));
                }
            }
            _ => vec![0, koff],
        };
        // The banner at linux_banner must name the dump's release.
        if let Some(b) = index.get_raw("linux_banner") {
            for &d in &candidates {
                if self.banner_matches(b.value.wrapping_add(d as u64)) {
                    return Ok(d);
                }
            }
            return Err(Error::msg(format!(
                "{}: symbols do not match the dump {}: linux_banner does not read \"Linux version {}\"",
                src,
                self.path,
                self.info.osrelease().unwrap_or("?")
            )));
        }
        Ok(candidates[0])
    }
}

/// Maps `file` and hands the mapping to a format's parser.
pub fn map_file(file: &File, path: &Path) -> Result<Mapped> {
    Mapped::map(file, path)
}

/// FORMATS entry: ELF vmcore.
pub fn open_elf(
    file: File,
    path: &Path,
    _flags: i32,
    _syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    let parts = crate::dump::elf::open(map_file(&file, path)?, path)?;
    Ok(Box::new(LinuxDump::from_elf(parts, path)?))
}

/// FORMATS entry: kdump-compressed file.
pub fn open_kdump(
    file: File,
    path: &Path,
    _flags: i32,
    _syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    let parts = crate::dump::kdump::open(map_file(&file, path)?, path)?;
    Ok(Box::new(LinuxDump::from_kdump(parts, path)?))
}

/// FORMATS entry: makedumpfile flattened file (read in place).
pub fn open_flattened(
    file: File,
    path: &Path,
    _flags: i32,
    _syms: &mut dyn SymbolLookup,
) -> Result<Box<dyn Backend>> {
    let parts = crate::dump::flattened::open(map_file(&file, path)?, path)?;
    Ok(Box::new(LinuxDump::from_kdump(parts, path)?))
}

impl LinuxDump {
    fn from_elf(parts: crate::dump::elf::ElfParts, path: &Path) -> Result<LinuxDump> {
        let info = parts.vmcoreinfo;
        LinuxDump::new(Box::new(parts.mem), info.as_deref(), path, parts.nr_cpus)
    }

    /// A kdump-compressed file, in place or flattened.
    fn from_kdump<S: crate::dump::kdump::ByteSource + 'static>(
        parts: crate::dump::kdump::KdumpParts<S>,
        path: &Path,
    ) -> Result<LinuxDump> {
        let cpus = parts.mem.header.nr_cpus.max(0) as usize;
        LinuxDump::new(Box::new(parts.mem), parts.vmcoreinfo.as_deref(), path, cpus)
    }

    /// Opens a Linux dump file of any supported format directly (for code that needs the
    /// concrete type, e.g. tests and tools; `kvm_open` goes through the FORMATS table).
    pub fn open_path(path: &Path) -> Result<LinuxDump> {
        let file = File::open(path).map_err(|e| Error::sys(path.display().to_string(), e))?;
        let map = map_file(&file, path)?;
        let head = &map.bytes()[..map.bytes().len().min(crate::dump::PROBE_LEN)];
        if crate::dump::elf::is_linux_vmcore(head) {
            LinuxDump::from_elf(crate::dump::elf::open(map, path)?, path)
        } else if crate::dump::kdump::probe(head) {
            LinuxDump::from_kdump(crate::dump::kdump::open(map, path)?, path)
        } else if crate::dump::flattened::probe(head) {
            LinuxDump::from_kdump(crate::dump::flattened::open(map, path)?, path)
        } else {
            Err(Error::format(format!(
                "{}: not a Linux dump (first bytes {})",
                path.display(),
                crate::dump::describe_magic(head)
            )))
        }
    }
}
