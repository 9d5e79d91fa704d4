//! Where a FreeBSD kernel's type information comes from: the kernel ELF given as execfile.
//! Real kernels carry CTF (`.SUNW_ctf`, GENERIC is built WITH_CTF), which `crate::ctf`
//! converts into the same [`Btf`] type the Linux walker uses; a `.BTF` section is accepted too.
//! Every FreeBSD dump backend loads its types through [`kernel_types`] only.

use std::path::Path;

use crate::btf::Btf;
use crate::error::{Error, Result};

/// The kernel's type information from its ELF image at `path`.
pub fn kernel_types(path: &Path) -> Result<Btf> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::sys(shown.clone(), e))?;
    crate::ctf::kernel_types_of_file(&file, &shown)?.ok_or_else(|| {
        Error::format(format!(
            "{}: the kernel has no type information (no .SUNW_ctf CTF section, no .BTF section): \
             it must be built WITH_CTF, as GENERIC is",
            shown
        ))
    })
}
