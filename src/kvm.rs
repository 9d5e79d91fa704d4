//! The descriptor behind a `kvm_t *`: owns the backend, the symbol index, the error text and the
//! storage the man pages say the library owns. Formats are invisible here: the backend seam
//! (src/backend.rs) and the probe table (src/dump/mod.rs) hide them.

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::abi::{self, KinfoProc, KvmPage, KvmSwap, CPUSTATES, POSIX2_LINE_MAX};
use crate::backend::{ArgvKind, Backend, DpcpuTable, KernelFamily, SymbolLookup, VnetTable};
use crate::error::{Error, Result};
use crate::symbols::{self, Symbol, SymbolIndex};

/// MAXPATHLEN on FreeBSD: longer execfile names are refused.
const MAXPATHLEN: usize = 1024;

/// A symbol resolver as given to kvm_open2: name (verbatim) -> address.
pub type Resolver = Box<dyn FnMut(&[u8]) -> Option<u64> + Send>;

/// What to open, as given to kvm_open / kvm_openfiles / kvm_open2.
#[derive(Default)]
pub struct OpenArgs<'a> {
    pub execfile: Option<&'a OsStr>,
    pub corefile: Option<&'a OsStr>,
    pub flags: i32,
    /// kvm_open's errstr: hard errors are printed to stderr with this prefix.
    pub program: Option<Vec<u8>>,
    pub resolver: Option<Resolver>,
}

/// The descriptor. One lock per descriptor: separate descriptors never contend.
pub struct Kvm {
    state: Mutex<KvmState>,
}

/// A NUL-separated string area plus the offsets of each string (for char ** vectors).
#[derive(Default)]
pub struct StringVector {
    pub buf: Vec<u8>,
    /// Addresses of each string in `buf`, then 0 (a NULL terminator); valid until the next call.
    pub ptrs: Vec<usize>,
}

pub struct KvmState {
    /// Last error text, NUL-terminated; stable address for kvm_geterr.
    pub errbuf: [u8; POSIX2_LINE_MAX],
    program: Option<Vec<u8>>,
    flags: i32,
    backend: Box<dyn Backend>,
    resolver: Option<Resolver>,
    execfile: Option<PathBuf>,
    /// Symbols from the execfile (already relocated), or the image's own, loaded on first use.
    symbols: Option<SymbolIndex>,
    symbols_tried: bool,
    /// CPU selected by kvm_dpcpu_setcpu.
    pub dpcpu_cpu: u32,
    /// FreeBSD dumps: the DPCPU table, read on first need and kept (as FreeBSD keeps it in the
    /// kvm_t), and the selected CPU's offset (FreeBSD's dpcpu_curoff).
    dpcpu: Option<DpcpuTable>,
    dpcpu_curoff: u64,
    /// FreeBSD dumps: the selected virtual network stack (kvm_vnet.c), once selected.
    vnet: Option<VnetTable>,
    procs: Vec<KinfoProc>,
    argv: StringVector,
    envv: StringVector,
}

impl Kvm {
    /// Opens a descriptor following FreeBSD's order of checks (which decides which error wins).
    pub fn open(args: OpenArgs<'_>) -> Result<Box<Kvm>> {
        let OpenArgs {
            execfile,
            corefile,
            flags,
            program,
            resolver,
        } = args;
        if let Some(exec) = execfile {
            if exec.len() >= MAXPATHLEN {
                return Err(Error::msg("exec file name too long"));
            }
        }
        if flags & !libc::O_ACCMODE != 0 {
            return Err(Error::msg("bad flags arg"));
        }
        let core_bytes = corefile.map(|c| c.as_bytes());
        let mut exec_symbols = None;
        let backend: Box<dyn Backend> = match core_bytes {
            None | Some(b"/dev/mem") => Box::new(crate::live::linux::LiveLinux::open(true)?),
            Some(b"/dev/null") => Box::new(crate::live::linux::LiveLinux::open(false)?),
            Some(_) => {
                let core = Path::new(corefile.unwrap());
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(flags & libc::O_ACCMODE != libc::O_RDONLY)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(core)
                    .map_err(|e| Error::sys(core.display().to_string(), e))?;
                let meta = file
                    .metadata()
                    .map_err(|e| Error::sys(core.display().to_string(), e))?;
                if meta.file_type().is_file() && meta.len() == 0 {
                    return Err(Error::sys(
                        "empty file",
                        std::io::Error::from_raw_os_error(libc::EINVAL),
                    ));
                }
                // The kernel image is read before the core is probed, as FreeBSD does.
                // A file without a symbol table may still carry the kernel's types (a stripped
                // vmlinux with .BTF): it is offered to the backend once the core is open.
                let mut exec_error = None;
                if let Some(exec) = execfile {
                    match symbols::load_file(Path::new(exec)) {
                        Ok(idx) => exec_symbols = Some(idx),
                        Err(e) => exec_error = Some(e),
                    }
                }
                let mut lookup = Lookup {
                    resolver: None,
                    index: exec_symbols.as_ref(),
                };
                let mut resolver = resolver;
                if let Some(r) = resolver.as_mut() {
                    lookup.resolver = Some(r);
                }
                let opened = crate::dump::open(file, core, flags, &mut lookup);
                let be = match (opened, exec_error) {
                    (Ok(mut be), None) => {
                        // A FreeBSD kernel carries its types (CTF) in the file itself; they are
                        // read when first needed, and a kernel without them only fails
                        // kvm_getprocs.
                        if let (Some(exec), KernelFamily::FreeBSD) = (execfile, be.family()) {
                            be.defer_type_file(Path::new(exec));
                        }
                        be
                    }
                    (Err(e), None) => return Err(e),
                    (Err(_), Some(exec_err)) => return Err(exec_err),
                    (Ok(mut be), Some(exec_err)) => {
                        let exec = Path::new(execfile.unwrap_or_default());
                        match be.set_type_file(exec) {
                            Ok(true) => be,
                            _ => return Err(exec_err),
                        }
                    }
                };
                // With types only from the execfile, symbols come from the image itself.
                let symbol_file = execfile
                    .filter(|_| exec_symbols.is_some())
                    .map(PathBuf::from);
                let mut state = KvmState::new(be, flags, program, resolver, symbol_file);
                if let Some(mut idx) = exec_symbols {
                    idx.displacement = state.backend.symbol_displacement(&idx)?;
                    state.symbols = Some(idx);
                    state.symbols_tried = true;
                }
                return Ok(Box::new(Kvm {
                    state: Mutex::new(state),
                }));
            }
        };
        let state = KvmState::new(
            backend,
            flags,
            program,
            resolver,
            execfile.map(PathBuf::from),
        );
        Ok(Box::new(Kvm {
            state: Mutex::new(state),
        }))
    }

    /// Locks the descriptor for one call.
    pub fn lock(&self) -> parking_lot::MutexGuard<'_, KvmState> {
        self.state.lock()
    }

    /// The error buffer's address, without locking (kvm_geterr may be called from a callback
    /// running under the lock, e.g. during kvm_walk_pages).
    pub fn errbuf_ptr(&self) -> *const u8 {
        // SAFETY-free: taking the address of a field does not read it.
        unsafe { std::ptr::addr_of!((*self.state.data_ptr()).errbuf) as *const u8 }
    }
}

/// Symbol lookups for one call: the resolver replaces the index entirely (FreeBSD semantics).
struct Lookup<'a> {
    resolver: Option<&'a mut Resolver>,
    index: Option<&'a SymbolIndex>,
}

impl Lookup<'_> {
    fn find(&mut self, name: &[u8]) -> Option<Symbol> {
        if let Some(r) = self.resolver.as_mut() {
            return r(name).map(|value| Symbol {
                value,
                n_type: abi::N_DATA | abi::N_EXT,
            });
        }
        let idx = self.index?;
        let s = std::str::from_utf8(name).ok()?;
        idx.lookup(s)
            .or_else(|| s.strip_prefix('_').and_then(|rest| idx.lookup(rest)))
    }
}

impl SymbolLookup for Lookup<'_> {
    fn lookup(&mut self, name: &str) -> Option<u64> {
        self.find(name.as_bytes()).map(|s| s.value)
    }
}

impl KvmState {
    fn new(
        backend: Box<dyn Backend>,
        flags: i32,
        program: Option<Vec<u8>>,
        resolver: Option<Resolver>,
        execfile: Option<PathBuf>,
    ) -> Self {
        KvmState {
            errbuf: [0; POSIX2_LINE_MAX],
            program,
            flags,
            backend,
            resolver,
            execfile,
            symbols: None,
            symbols_tried: false,
            dpcpu_cpu: 0,
            dpcpu: None,
            dpcpu_curoff: 0,
            vnet: None,
            procs: Vec::new(),
            argv: StringVector::default(),
            envv: StringVector::default(),
        }
    }

    /// Records an error the FreeBSD way: hard errors of a kvm_open(errstr) descriptor go to
    /// stderr with the prefix; everything else lands in the error buffer.
    pub fn report(&mut self, e: &Error) {
        let text = e.to_string();
        match (&self.program, e.is_soft()) {
            (Some(prog), false) => {
                let mut line = prog.clone();
                line.extend_from_slice(b": ");
                line.extend_from_slice(text.as_bytes());
                line.push(b'\n');
                let _ = std::io::stderr().write_all(&line);
            }
            _ => self.set_err(text.as_bytes()),
        }
    }

    /// Stores a message in the error buffer, truncated and NUL-terminated.
    pub fn set_err(&mut self, msg: &[u8]) {
        abi::set_cstr(&mut self.errbuf, msg);
    }

    pub fn is_live(&self) -> bool {
        self.backend.is_live()
    }

    pub fn native(&self) -> bool {
        self.backend.native()
    }

    pub fn kerndisp(&mut self) -> i64 {
        self.backend.kerndisp()
    }

    /// kvm_read2: full count, or a short count when the range ends in unreadable memory.
    pub fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.backend.read(addr, buf)?;
        if n < buf.len() && self.backend.is_live() {
            self.report(&Error::msg("short read"));
        }
        Ok(n)
    }

    pub fn write(&mut self, addr: u64, buf: &[u8]) -> Result<usize> {
        if !self.backend.is_live() {
            return Err(Error::unsupported(
                "kvm_write not implemented for dead kernels",
            ));
        }
        if self.flags & libc::O_ACCMODE == libc::O_RDONLY {
            return Err(Error::sys(
                "kvm_write",
                std::io::Error::from_raw_os_error(libc::EBADF),
            ));
        }
        if buf.is_empty() {
            return Ok(0);
        }
        self.backend.write(addr, buf)
    }

    /// Loads the symbol index on first use: execfile if given, else the image's own symbols.
    fn ensure_symbols(&mut self) -> Result<()> {
        if self.symbols_tried {
            return Ok(());
        }
        self.symbols_tried = true;
        if let Some(exec) = self.execfile.clone() {
            let mut idx = symbols::load_file(&exec)?;
            idx.displacement = self.backend.symbol_displacement(&idx)?;
            self.symbols = Some(idx);
        } else {
            self.symbols = self.backend.own_symbols()?;
        }
        Ok(())
    }

    /// kvm_nlist2: looks up each name; returns one result per name (None = not found).
    /// Names are taken as given and, failing that, without one leading underscore.
    pub fn nlist(&mut self, names: &[&[u8]]) -> Result<Vec<Option<Symbol>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        if self.resolver.is_none() {
            if let Err(e) = self.ensure_symbols() {
                self.symbols_tried = false;
                return Err(e);
            }
            if self.symbols.is_none() {
                return Err(Error::msg(format!(
                    "kvm_nlist: no kernel symbols available for {} (give a System.map, vmlinux or kernel ELF as execfile)",
                    self.backend.describe()
                )));
            }
        }
        let mut lookup = Lookup {
            resolver: self.resolver.as_mut(),
            index: self.symbols.as_ref(),
        };
        let mut out: Vec<Option<Symbol>> = names.iter().map(|n| lookup.find(n)).collect();
        let mut missing = out.iter().filter(|s| s.is_none()).count();
        // FreeBSD's _kvm_nlist on a dump: names still missing are tried again, first as
        // virtualized network stack symbols, "vnet_entry_" + the name without its leading
        // underscore; a value inside the set_vnet range is reported relocated into the vnet
        // FreeBSD selects (proc0's on a crash dump), value + vnet_data_base. The selection is
        // made at the first miss and kept once it succeeds; when it fails (not a VIMAGE
        // kernel, no types, unreadable structures) this retry does not happen, and a failure
        // past the symbol lookup is left in the error buffer, as FreeBSD does.
        if missing > 0 && !self.backend.is_live() && self.vnet_init() {
            let t = self.vnet.unwrap_or_default();
            let mut lookup = Lookup {
                resolver: self.resolver.as_mut(),
                index: self.symbols.as_ref(),
            };
            // _kvm_vnet_validaddr.
            missing -= retry_prefixed(&mut lookup, names, &mut out, b"vnet_entry_", |v| {
                if v >= t.start && v < t.stop {
                    t.base.wrapping_add(v) & t.mask
                } else {
                    v
                }
            });
        }
        // Then, as dynamic per-CPU symbols, "pcpu_entry_" + the name without its leading
        // underscore; a value inside the set_pcpu range is reported relocated to the CPU
        // chosen with kvm_dpcpu_setcpu (CPU 0 by default). This needs the DPCPU table;
        // without it (not a FreeBSD kernel, or symbols missing) nothing is retried.
        if missing > 0 && !self.backend.is_live() && matches!(self.dpcpu_init(), Ok(true)) {
            let table = self.dpcpu.clone().unwrap_or_default();
            let curoff = self.dpcpu_curoff;
            let mut lookup = Lookup {
                resolver: self.resolver.as_mut(),
                index: self.symbols.as_ref(),
            };
            missing -= retry_prefixed(&mut lookup, names, &mut out, b"pcpu_entry_", |v| {
                if v >= table.start && v < table.stop {
                    v.wrapping_add(curoff)
                } else {
                    v
                }
            });
        }
        if missing > 0 && self.backend.is_live() {
            self.report(&Error::sys(
                "kvm_nlist",
                std::io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        Ok(out)
    }

    fn with_lookup<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Backend, &mut dyn SymbolLookup) -> Result<T>,
    ) -> Result<T> {
        // The live system answers processes and statistics from /proc and /sys without kernel
        // symbols: loading /proc/kallsyms here would cost ps ~70 ms and ~10 MB per run.
        if self.resolver.is_none() && !self.backend.is_live() && self.ensure_symbols().is_err() {
            self.symbols = None;
        }
        let mut lookup = Lookup {
            resolver: self.resolver.as_mut(),
            index: self.symbols.as_ref(),
        };
        f(self.backend.as_mut(), &mut lookup)
    }

    /// kvm_getprocs: the previous array is released first; the new one lives until the next
    /// call or kvm_close.
    pub fn getprocs(&mut self, op: i32, arg: i32) -> Result<&mut [KinfoProc]> {
        self.procs = Vec::new();
        let procs = self.with_lookup(|b, l| b.getprocs(l, op, arg))?;
        self.procs = procs;
        Ok(&mut self.procs)
    }

    /// kvm_getargv / kvm_getenvv: `nchr` bytes at most including NULs (0 or negative: no limit);
    /// the string that overflows is truncated. `Ok(None)`: no vector (e.g. a kernel thread).
    pub fn getargv(
        &mut self,
        kp: &KinfoProc,
        kind: ArgvKind,
        nchr: i32,
    ) -> Result<Option<&StringVector>> {
        let limit = if nchr > 0 { nchr as usize } else { usize::MAX };
        let raw = self.with_lookup(|b, l| b.getargv(l, kp, kind, limit))?;
        let Some(mut raw) = raw else { return Ok(None) };
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() >= limit {
            raw.truncate(limit);
            if let Some(last) = raw.last_mut() {
                *last = 0;
            }
        } else if raw.last() != Some(&0) {
            raw.push(0);
        }
        let store = match kind {
            ArgvKind::Args => &mut self.argv,
            ArgvKind::Env => &mut self.envv,
        };
        store.buf = raw;
        store.ptrs.clear();
        let base = store.buf.as_ptr() as usize;
        let mut start = 0;
        for (i, &b) in store.buf.iter().enumerate() {
            if b == 0 {
                store.ptrs.push(base + start);
                start = i + 1;
            }
        }
        store.ptrs.push(0);
        Ok(Some(store))
    }

    pub fn loadavg(&mut self) -> Result<[f64; 3]> {
        self.with_lookup(|b, l| b.loadavg(l))
    }

    /// kvm_getswapinfo: up to maxswap-1 device rows, then the total row over all devices.
    pub fn swapinfo(&mut self, maxswap: usize, flags: i32) -> Result<Vec<KvmSwap>> {
        let devices = self.with_lookup(|b, l| b.swapinfo(l, flags))?;
        let mut total = KvmSwap::default();
        for d in &devices {
            total.ksw_used = total.ksw_used.wrapping_add(d.ksw_used);
            total.ksw_total = total.ksw_total.wrapping_add(d.ksw_total);
        }
        let mut out: Vec<KvmSwap> = devices
            .into_iter()
            .take(maxswap.saturating_sub(1))
            .collect();
        out.push(total);
        Ok(out)
    }

    pub fn cptime(&mut self) -> Result<[i64; CPUSTATES]> {
        self.with_lookup(|b, l| b.cptime(l))
    }

    pub fn ncpus(&mut self) -> Result<i32> {
        self.with_lookup(|b, l| b.ncpus(l))
    }

    pub fn maxcpu(&mut self) -> Result<i32> {
        self.with_lookup(|b, l| b.maxcpu(l))
    }

    pub fn getpcpu(&mut self, cpu: i32) -> Result<Option<Vec<u8>>> {
        if cpu < 0 {
            return Ok(None);
        }
        self.with_lookup(|b, l| b.getpcpu(l, cpu))
    }

    /// FreeBSD's _kvm_vnet_initialized(kd, 1): selects the vnet unless already done; a failure
    /// is not kept (the next miss tries again, as in FreeBSD) and its message, if any, goes
    /// where FreeBSD's _kvm_err(kd, kd->program, ...) puts it.
    fn vnet_init(&mut self) -> bool {
        if self.vnet.is_some() {
            return true;
        }
        match self.with_lookup(|b, l| b.vnet_table(l)) {
            Ok(Some(t)) => {
                self.vnet = Some(t);
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.report(&e);
                false
            }
        }
    }

    /// Reads the DPCPU table once (FreeBSD's _kvm_dpcpu_init, then CPU 0 selected silently).
    /// Ok(false): the backend has no DPCPU table (not a FreeBSD kernel).
    fn dpcpu_init(&mut self) -> Result<bool> {
        if self.dpcpu.is_some() {
            return Ok(true);
        }
        let Some(table) = self.with_lookup(|b, l| b.dpcpu_table(l))? else {
            return Ok(false);
        };
        if let Some(&off) = table.off.first().filter(|&&o| o != 0) {
            self.dpcpu_cpu = 0;
            self.dpcpu_curoff = off;
        }
        self.dpcpu = Some(table);
        Ok(true)
    }

    pub fn dpcpu_setcpu(&mut self, cpu: u32) -> Result<()> {
        match self.dpcpu_init() {
            Ok(true) => {
                let slot = self
                    .dpcpu
                    .as_ref()
                    .and_then(|t| t.off.get(cpu as usize).copied());
                let Some(off) = slot else {
                    return Err(Error::msg(format!(
                        "_kvm_dpcpu_setcpu: CPU {} too big",
                        cpu
                    )));
                };
                if off == 0 {
                    return Err(Error::msg(format!(
                        "_kvm_dpcpu_setcpu: CPU {} not found",
                        cpu
                    )));
                }
                self.dpcpu_cpu = cpu;
                self.dpcpu_curoff = off;
                return Ok(());
            }
            Ok(false) => {}
            Err(e) => return Err(Error::msg(format!("kvm_dpcpu_setcpu: init failed ({})", e))),
        }
        match self.with_lookup(|b, l| b.percpu_offset(l, cpu))? {
            Some(_) => {
                self.dpcpu_cpu = cpu;
                Ok(())
            }
            None => Err(Error::msg(format!(
                "_kvm_dpcpu_setcpu: CPU {} not found",
                cpu
            ))),
        }
    }

    /// kvm_read_zpcpu: reads `buf.len()` bytes of CPU `cpu`'s copy of the per-CPU object at `base`.
    pub fn read_zpcpu(&mut self, base: u64, buf: &mut [u8], cpu: i32) -> Result<usize> {
        if cpu < 0 {
            return Err(Error::msg(format!("kvm_read_zpcpu: invalid CPU {}", cpu)));
        }
        let off = self
            .with_lookup(|b, l| b.zpcpu_offset(l, cpu as u32))?
            .ok_or_else(|| Error::msg(format!("kvm_read_zpcpu: CPU {} not found", cpu)))?;
        self.read(base.wrapping_add(off), buf)
    }

    /// kvm_walk_pages: collects the pages under the lock, so the callback may call back into
    /// the descriptor. Returns (pages, completed).
    pub fn walk_pages_collect(&mut self) -> Result<(Vec<KvmPage>, bool)> {
        let mut pages = Vec::new();
        let done = self.backend.walk_pages(&mut |p| {
            pages.push(*p);
            true
        })?;
        Ok((pages, done))
    }
}

/// FreeBSD's kvm_fdnlist_prefix: each name still missing is looked up as `prefix` + the name
/// without its leading underscore; a non-zero value goes through `relocate`. Returns how many
/// were found.
fn retry_prefixed(
    lookup: &mut Lookup<'_>,
    names: &[&[u8]],
    out: &mut [Option<Symbol>],
    prefix: &[u8],
    relocate: impl Fn(u64) -> u64,
) -> usize {
    let mut found = 0;
    for (name, slot) in names.iter().zip(out.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let bare = name.strip_prefix(b"_").unwrap_or(name);
        let mut prefixed = prefix.to_vec();
        prefixed.extend_from_slice(bare);
        if let Some(mut sym) = lookup.find(&prefixed) {
            if sym.value != 0 {
                sym.value = relocate(sym.value);
            }
            *slot = Some(sym);
            found += 1;
        }
    }
    found
}
