//! FreeBSD CTF (`.SUNW_ctf`) read into a `Btf`: a FreeBSD-like type list written by the test
//! CTF writer (v2 and v3, compressed or not, both byte orders, inside ELF kernels or bare)
//! answers the same member/size/pointer/array/enum queries; corrupt blobs give errors.

mod common {
    pub mod ctfwriter;
    pub mod elfwriter;
    pub mod typemodel;
}

use common::ctfwriter::*;
use common::elfwriter::{strtab, Sym, SEC_DATA, STB_GLOBAL, STT_OBJECT};
use common::typemodel::{Member, Ty};
use kvm::btf::{self, Btf};
use kvm::ctf;

fn int(name: &str, bits: u32, signed: bool) -> Ty {
    Ty::Int {
        name: name.into(),
        bits,
        signed,
    }
}

fn st(name: &str, size: u32, members: Vec<Member>) -> Ty {
    Ty::Struct {
        name: name.into(),
        size,
        members,
    }
}

fn bitf(name: &str, ty: u32, bit_offset: u32, bits: u32) -> Member {
    Member {
        name: name.into(),
        ty,
        bit_offset,
        bitfield_bits: bits,
    }
}

// Type ids of the fixture.
const INT: u32 = 1;
const CHAR: u32 = 2;
const LONG: u32 = 3;
const UINT: u32 = 4;
const PID_T: u32 = 6;
const COMM: u32 = 7;
const PARGS_P: u32 = 10;
const UCRED_FWD: u32 = 11;
const UCRED_P: u32 = 12;
const PROC: u32 = 20;
const LONG3: u32 = 24;
const PROC_P: u32 = 25;
const UNION: u32 = 16;

/// A type list resembling a FreeBSD kernel's: struct proc with nested and anonymous members,
/// pointers to struct pargs/ucred, char p_comm[20], pid_t -> __pid_t -> int, a union, an enum,
/// a bitfield, forward declarations, structs past the large-member thresholds of both versions.
fn freebsd_types() -> Vec<Ty> {
    vec![
        /* 1 */ int("int", 32, true),
        /* 2 */ int("char", 8, true),
        /* 3 */ int("long", 64, true),
        /* 4 */ int("unsigned int", 32, false),
        /* 5 */
        Ty::Typedef {
            name: "__pid_t".into(),
            to: INT,
        },
        /* 6 */
        Ty::Typedef {
            name: "pid_t".into(),
            to: 5,
        },
        /* 7 */
        Ty::Array {
            elem: CHAR,
            index: LONG,
            n: 20,
        },
        /* 8 */
        st(
            "pargs",
            12,
            vec![
                Member::at("ar_ref", UINT, 0),
                Member::at("ar_length", UINT, 4),
                Member::at("ar_args", 9, 8),
            ],
        ),
        /* 9 */
        Ty::Array {
            elem: CHAR,
            index: LONG,
            n: 1,
        },
        /* 10 */ Ty::Ptr { to: 8 },
        /* 11 */
        Ty::Fwd {
            name: "ucred".into(),
            union: false,
        },
        /* 12 */ Ty::Ptr { to: UCRED_FWD },
        /* 13 */
        st(
            "ucred",
            16,
            vec![
                Member::at("cr_ref", UINT, 0),
                Member::at("cr_uid", UINT, 4),
                Member::at("cr_ruid", UINT, 8),
            ],
        ),
        /* 14 */
        Ty::Enum {
            name: "p_states".into(),
            size: 4,
            values: vec![
                ("PRS_NEW".into(), 0),
                ("PRS_NORMAL".into(), 1),
                ("PRS_ZOMBIE".into(), 2),
                ("PRS_NEGATIVE".into(), -7),
            ],
        },
        /* 15 */
        st(
            "rusage_ext",
            16,
            vec![
                Member::at("rux_runtime", LONG, 0),
                Member::at("rux_uticks", LONG, 8),
            ],
        ),
        /* 16 */
        Ty::Union {
            name: String::new(),
            size: 8,
            members: vec![Member::at("p_ul", LONG, 0), Member::at("p_ui", INT, 0)],
        },
        /* 17 */ Ty::Volatile { to: INT },
        /* 18 */ Ty::Const { to: CHAR },
        /* 19 */ Ty::Ptr { to: 18 },
        /* 20 */
        st(
            "proc",
            96,
            vec![
                Member::at("p_ucred", UCRED_P, 0),
                Member::at("p_args", PARGS_P, 8),
                Member::at("p_pid", PID_T, 16),
                Member::at("p_state", 14, 20),
                Member::at("p_rux", 15, 24),
                Member::at("", UNION, 40),
                Member::at("p_comm", COMM, 48),
                bitf("p_flag", UINT, 68 * 8, 3),
                bitf("p_traced", UINT, 68 * 8 + 3, 1),
                Member::at("p_vol", 17, 72),
                Member::at("p_name", 19, 80),
                Member::at("p_pptr", PROC_P, 88),
            ],
        ),
        /* 21 */
        st(
            "vmspace",
            10000,
            vec![
                Member::at("vm_map", LONG, 0),
                Member::at("vm_ssize", INT, 9000),
                Member::at("vm_arr", LONG3, 9960),
                Member::at("vm_tail", LONG, 9992),
            ],
        ),
        /* 22 */
        st(
            "huge",
            1 << 29,
            vec![
                Member::at("h_first", LONG, 0),
                Member::at("h_far", INT, 0x1000_0000),
            ],
        ),
        /* 23 */
        st(
            "maxsize",
            0xffff_ffff,
            vec![
                Member::at("m_first", LONG, 0),
                Member::at("m_mid", LONG, 0x1000_0000),
            ],
        ),
        /* 24 */
        Ty::Array {
            elem: LONG,
            index: LONG,
            n: 3,
        },
        /* 25 */ Ty::Ptr { to: PROC },
        /* 26 */
        Ty::Fwd {
            name: "knlist".into(),
            union: true,
        },
    ]
}

/// Every query the process walker would make, against the fixture.
fn check(btf: &Btf, ptr: u64, label: &str) {
    assert_eq!(
        btf.type_count(),
        26 + 2,
        "{}: 26 types + 2 bitfield ints",
        label
    );
    assert_eq!(btf.pointer_size(), ptr, "{}", label);
    let f = |s: &str, m: &str| {
        btf.field(s, m)
            .unwrap_or_else(|e| panic!("{}: {}.{}: {}", label, s, m, e))
    };
    assert_eq!(btf.struct_size("proc").unwrap(), 96, "{}", label);
    assert_eq!(btf.struct_size("vmspace").unwrap(), 10000, "{}", label);
    assert_eq!(btf.struct_size("huge").unwrap(), 1 << 29, "{}", label);
    assert_eq!(
        btf.struct_size("maxsize").unwrap(),
        0xffff_ffff,
        "{}",
        label
    );
    assert_eq!(btf.struct_size("ucred").unwrap(), 16, "{}", label);

    let pid = f("proc", "p_pid");
    assert_eq!(pid.offset(), 16, "{}", label);
    assert_eq!(pid.type_id, PID_T, "{}", label);
    assert_eq!(btf.name(pid.type_id), Some("pid_t"), "{}", label);
    assert_eq!(btf.size_of(pid.type_id), Some(4), "{}", label);
    assert_eq!(btf.resolve(pid.type_id), Some(INT), "{}", label);
    assert_eq!(btf.kind(5), Some(btf::KIND_TYPEDEF), "{}", label);

    // Pointers: to a forward declaration, to a complete struct, to the struct itself.
    let cred = f("proc", "p_ucred");
    assert_eq!(btf.pointee(cred.type_id), Some(UCRED_FWD), "{}", label);
    assert_eq!(btf.kind(UCRED_FWD), Some(btf::KIND_FWD), "{}", label);
    assert_eq!(btf.name(UCRED_FWD), Some("ucred"), "{}", label);
    assert_eq!(btf.find_aggregate("ucred"), Some(13), "{}", label);
    assert_eq!(btf.size_of(cred.type_id), Some(ptr), "{}", label);
    let args = f("proc", "p_args");
    assert_eq!(args.offset(), 8);
    let pargs = btf.pointee(args.type_id).unwrap();
    assert_eq!(btf.name(pargs), Some("pargs"), "{}", label);
    assert_eq!(btf.member(pargs, "ar_length").unwrap().offset(), 4);
    let ar_args = btf.member(pargs, "ar_args").unwrap();
    assert_eq!(btf.array(ar_args.type_id), Some((CHAR, 1)), "{}", label);
    assert_eq!(
        btf.pointee(f("proc", "p_pptr").type_id),
        Some(PROC),
        "{}",
        label
    );
    let name = f("proc", "p_name");
    let cchar = btf.pointee(name.type_id).unwrap();
    assert_eq!(btf.kind(cchar), Some(btf::KIND_CONST), "{}", label);
    assert_eq!(btf.resolve(cchar), Some(CHAR), "{}", label);
    assert_eq!(
        btf.kind(f("proc", "p_vol").type_id),
        Some(btf::KIND_VOLATILE)
    );

    // Arrays.
    let comm = f("proc", "p_comm");
    assert_eq!(comm.offset(), 48, "{}", label);
    assert_eq!(btf.array(comm.type_id), Some((CHAR, 20)), "{}", label);
    assert_eq!(btf.size_of(comm.type_id), Some(20), "{}", label);
    let arr = f("vmspace", "vm_arr");
    assert_eq!(arr.offset(), 9960, "{}", label);
    assert_eq!(btf.array(arr.type_id), Some((LONG, 3)), "{}", label);
    assert_eq!(btf.size_of(arr.type_id), Some(24), "{}", label);

    // Nested and anonymous members, large offsets.
    assert_eq!(f("proc", "p_rux.rux_uticks").offset(), 32, "{}", label);
    assert_eq!(f("proc", "p_ui").offset(), 40, "{}", label);
    assert_eq!(f("proc", "p_ul").offset(), 40, "{}", label);
    assert_eq!(btf.kind(UNION), Some(btf::KIND_UNION), "{}", label);
    assert_eq!(f("vmspace", "vm_ssize").offset(), 9000, "{}", label);
    assert_eq!(f("vmspace", "vm_tail").offset(), 9992, "{}", label);
    assert_eq!(f("huge", "h_far").offset(), 0x1000_0000, "{}", label);
    assert_eq!(f("maxsize", "m_mid").offset(), 0x1000_0000, "{}", label);

    // Bitfields: ctfconvert's narrowed "unsigned int" copies.
    let flag = f("proc", "p_flag");
    assert_eq!(
        (flag.bit_offset, flag.bitfield_size),
        (68 * 8, 3),
        "{}",
        label
    );
    assert_eq!(btf.name(flag.type_id), Some("unsigned int"), "{}", label);
    assert_ne!(flag.type_id, UINT, "{}", label);
    let traced = f("proc", "p_traced");
    assert_eq!(
        (traced.bit_offset, traced.bitfield_size),
        (68 * 8 + 3, 1),
        "{}",
        label
    );
    assert_eq!(f("proc", "p_pid").bitfield_size, 0);

    // Enums and forward unions.
    assert_eq!(btf.enum_value("PRS_ZOMBIE"), Some(2), "{}", label);
    assert_eq!(btf.enum_value("PRS_NEGATIVE"), Some(-7), "{}", label);
    assert_eq!(btf.enum_value("PRS_NOPE"), None);
    assert_eq!(btf.size_of(f("proc", "p_state").type_id), Some(4));
    assert_eq!(btf.kind(26), Some(btf::KIND_FWD));
    assert_eq!(btf.size_of(26), None);

    // Misses are errors naming CTF.
    let e = btf.field("proc", "p_nope").unwrap_err().to_string();
    assert!(
        e.contains("CTF") && e.contains("p_nope"),
        "{}: {}",
        label,
        e
    );
    let e = btf.struct_size("thread").unwrap_err().to_string();
    assert!(
        e.contains("CTF") && e.contains("thread"),
        "{}: {}",
        label,
        e
    );
}

fn opts(version: u8, compress: bool, big_endian: bool) -> CtfOpts {
    let mut o = CtfOpts::new(version, compress);
    o.big_endian = big_endian;
    o
}

#[test]
fn roundtrip_v2_v3_compressed_or_not_both_byte_orders() {
    let types = freebsd_types();
    for version in [2, 3] {
        for compress in [false, true] {
            for be in [false, true] {
                let label = format!("v{} compress={} be={}", version, compress, be);
                let blob = write_ctf(&types, &opts(version, compress, be));
                let h = ctf::Header::parse(&blob).unwrap();
                assert_eq!(
                    (h.version, h.compressed(), h.big_endian),
                    (version, compress, be)
                );
                let btf = ctf::parse(&blob).unwrap_or_else(|e| panic!("{}: {}", label, e));
                // Seeds for the fuzz target (fuzz/fuzz_targets/ctf.rs) when asked for.
                if let Some(dir) = std::env::var_os("KVM_CTF_CORPUS") {
                    let dir = std::path::PathBuf::from(dir);
                    std::fs::create_dir_all(&dir).unwrap();
                    let name = format!("v{}-z{}-be{}", version, compress as u8, be as u8);
                    std::fs::write(dir.join(&name), &blob).unwrap();
                    let img = ctf_elf(&blob, true, !be, &[]);
                    std::fs::write(dir.join(name + ".elf"), img).unwrap();
                }
                // `long` is 8 bytes here, so pointers are too.
                check(&btf, 8, &label);
            }
        }
    }
}

#[test]
fn compression_shrinks_and_headers_differ_by_version() {
    let types = freebsd_types();
    let v2 = write_ctf(&types, &opts(2, false, false));
    let v3 = write_ctf(&types, &opts(3, false, false));
    let z = write_ctf(&types, &opts(3, true, false));
    assert!(v3.len() > v2.len(), "v3 records are wider");
    assert!(z.len() < v3.len() * 2 / 3, "{} vs {}", z.len(), v3.len());
}

#[test]
fn from_elf_64_and_32_bit_with_external_names() {
    let types = freebsd_types();
    let syms: Vec<Sym> = ["allproc", "proc", "p_pid", "zombproc", "unsigned int"]
        .iter()
        .enumerate()
        .map(|(i, n)| Sym {
            name: n.to_string(),
            value: 0xffff_ffff_8200_0000 + i as u64 * 8,
            bind: STB_GLOBAL,
            typ: STT_OBJECT,
            shndx: SEC_DATA,
        })
        .collect();
    for (is64, le, version) in [(true, true, 3), (false, false, 2), (false, true, 3)] {
        let label = format!("elf64={} le={} v{}", is64, le, version);
        let mut o = opts(version, true, !le);
        o.external = Some(strtab(&syms));
        let blob = write_ctf(&types, &o);
        // Bare, the external names cannot be resolved.
        let e = ctf::parse(&blob).unwrap_err().to_string();
        assert!(
            e.contains("ELF string table") && e.contains("from_elf"),
            "{}",
            e
        );
        let img = ctf_elf(&blob, is64, le, &syms);
        let btf = ctf::from_elf(&img).unwrap_or_else(|e| panic!("{}: {}", label, e));
        let ptr = if is64 { 8 } else { 4 };
        check(&btf, ptr, &label);
        // Also through a file, reading only the sections needed.
        let path = std::env::temp_dir().join(format!(
            "kvm-ctf-{}-{}-{}-{}",
            std::process::id(),
            is64,
            le,
            version
        ));
        std::fs::write(&path, &img).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let btf = ctf::from_file(&file, "kernel").unwrap();
        std::fs::remove_file(&path).unwrap();
        check(&btf, ptr, &label);
    }
}

#[test]
fn pointer_size_follows_long_in_bare_blobs() {
    let mut types = freebsd_types();
    types[LONG as usize - 1] = int("long", 32, true);
    let btf = ctf::parse(&write_ctf(&types, &opts(2, false, false))).unwrap();
    assert_eq!(btf.pointer_size(), 4);
    assert_eq!(btf.size_of(PROC_P), Some(4));
}

#[test]
fn elf_without_ctf_says_so() {
    let img = common::elfwriter::write_elf(true, true, common::elfwriter::EM_X86_64, 9, &[]);
    let e = ctf::from_elf(&img).unwrap_err().to_string();
    assert!(e.contains(".SUNW_ctf") && e.contains("WITH_CTF"), "{}", e);
    let e = ctf::from_elf(b"not an elf at all, just bytes").unwrap_err();
    assert!(!e.to_string().is_empty());
    // A .SUNW_ctf section that runs past the end of the file.
    let blob = write_ctf(&freebsd_types(), &opts(3, false, false));
    let img = ctf_elf(&blob, true, true, &[]);
    for cut in [img.len() - 1, img.len() / 2, 100] {
        assert!(ctf::from_elf(&img[..cut]).is_err(), "cut {}", cut);
    }
}

#[test]
fn other_kinds_function_float_restrict_unknown() {
    let types = freebsd_types();
    for version in [2, 3] {
        let mut o = opts(version, version == 3, false);
        o.extra = vec![
            Extra::Func {
                ret: INT,
                args: vec![PROC_P, CHAR, 0],
            },
            Extra::Float {
                name: "double".into(),
                size: 8,
            },
            Extra::Restrict { to: PROC_P },
            Extra::Unknown,
            Extra::Func {
                ret: 0,
                args: vec![INT, LONG],
            },
        ];
        let btf = ctf::parse(&write_ctf(&types, &o)).unwrap();
        // The bitfield integers come after the extras: 26 + 5 + 2.
        assert_eq!(btf.type_count(), 33);
        assert_eq!(btf.kind(27), Some(btf::KIND_FUNC_PROTO));
        assert_eq!(btf.kind(28), Some(btf::KIND_FLOAT));
        assert_eq!(btf.size_of(28), Some(8));
        assert_eq!(btf.name(28), Some("double"));
        assert_eq!(btf.kind(29), Some(btf::KIND_RESTRICT));
        assert_eq!(btf.resolve(29), Some(PROC_P));
        assert_eq!(btf.pointee(29), Some(PROC));
        assert_eq!(btf.size_of(30), None);
        assert_eq!(btf.kind(31), Some(btf::KIND_FUNC_PROTO));
        let flag = btf.field("proc", "p_flag").unwrap();
        assert_eq!(flag.type_id, 32);
        assert_eq!(flag.bitfield_size, 3);
        assert_eq!(btf.field("proc", "p_traced").unwrap().type_id, 33);
    }
}

#[test]
fn root_definitions_win_name_lookups() {
    let mut types = freebsd_types();
    // A non-root "struct proc" (e.g. a conflicting definition ctfmerge kept) before the real one.
    types.push(st("proc", 4, vec![Member::at("junk", INT, 0)])); // 27
    let mut o = opts(3, false, false);
    o.non_root = vec![27];
    let btf = ctf::parse(&write_ctf(&types, &o)).unwrap();
    assert_eq!(btf.find_aggregate("proc"), Some(PROC));
    // Only a non-root one: still found (more lenient than CTF's lookup).
    let types = vec![
        int("int", 32, true),
        st("lonely", 4, vec![Member::at("x", 1, 0)]),
    ];
    let mut o = opts(2, false, false);
    o.non_root = vec![2];
    let btf = ctf::parse(&write_ctf(&types, &o)).unwrap();
    assert_eq!(btf.struct_size("lonely").unwrap(), 4);
}

fn err(blob: &[u8]) -> String {
    match ctf::parse(blob) {
        Ok(_) => panic!("corrupt blob accepted"),
        Err(e) => e.to_string(),
    }
}

/// Overwrites a header word (index 0 = cth_parlabel ... 7 = cth_strlen), little-endian.
fn set_word(blob: &mut [u8], i: usize, v: u32) {
    blob[4 + 4 * i..8 + 4 * i].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn corrupt_headers() {
    let blob = write_ctf(&freebsd_types(), &opts(3, false, false));
    for cut in 0..36 {
        let e = err(&blob[..cut]);
        assert!(e.starts_with("CTF:"), "{}", e);
    }
    assert!(err(&blob[..20]).contains("truncated header"));
    let mut b = blob.clone();
    b[0] = 0x7f;
    assert!(err(&b).contains("bad magic"));
    let mut b = blob.clone();
    b[..2].copy_from_slice(&0xdff2u16.to_le_bytes());
    assert!(err(&b).contains("GNU"));
    for v in [0u8, 1, 4, 255] {
        let mut b = blob.clone();
        b[2] = v;
        let e = err(&b);
        assert!(e.contains("version"), "{}", e);
    }
    // Sections out of order.
    let mut b = blob.clone();
    let stroff = u32::from_le_bytes(b[28..32].try_into().unwrap());
    set_word(&mut b, 5, stroff + 4);
    assert!(err(&b).contains("type section"));
    // Data shorter than stroff + strlen.
    let mut b = blob.clone();
    set_word(&mut b, 7, 1_000_000);
    assert!(err(&b).contains("truncated"));
    let mut b = blob.clone();
    set_word(&mut b, 7, u32::MAX);
    assert!(err(&b).contains("MiB"));
    // Child container.
    let mut o = opts(2, false, false);
    o.parent = Some("kernel".into());
    let e = err(&write_ctf(&freebsd_types(), &o));
    assert!(
        e.contains("child container") && e.contains("\"kernel\""),
        "{}",
        e
    );
}

#[test]
fn every_truncation_and_every_byte_is_safe() {
    let types = freebsd_types();
    for version in [2, 3] {
        for compress in [false, true] {
            let blob = write_ctf(&types, &opts(version, compress, false));
            for cut in 0..blob.len() {
                assert!(
                    ctf::parse(&blob[..cut]).is_err(),
                    "v{} cut {}",
                    version,
                    cut
                );
            }
            if compress {
                continue;
            }
            for i in 0..blob.len() {
                for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                    let mut b = blob.clone();
                    b[i] = v;
                    if let Ok(btf) = ctf::parse(&b) {
                        let _ = btf.field("proc", "p_rux.rux_uticks");
                        let _ = btf.enum_value("PRS_ZOMBIE");
                        for id in 0..40 {
                            let _ = btf.size_of(id);
                            let _ = btf.array(id);
                            let _ = btf.pointee(id);
                            let _ = btf.member(id, "p_pid");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn type_section_past_the_end_and_bad_records() {
    let types = freebsd_types();
    let (blob, p) = write_ctf_placed(&types, &opts(2, false, false));
    // A string section that starts inside the type section: the last record is cut.
    let mut b = blob.clone();
    let stroff = (p.stroff - 36) as u32;
    set_word(&mut b, 6, stroff - 3);
    set_word(&mut b, 7, p.strlen as u32 + 3);
    let e = err(&b);
    assert!(e.contains("runs past the end of the section"), "{}", e);
    // A struct whose member count runs past the section.
    let mut b = blob.clone();
    // Type 1 is "int": make it a struct with 1023 members (v2 info: kind << 11 | vlen).
    let info = (6u16 << 11 | 1 << 10 | 0x3ff).to_le_bytes();
    b[p.typeoff + 4..p.typeoff + 6].copy_from_slice(&info);
    let e = err(&b);
    assert!(e.contains("type id 1") && e.contains("1023"), "{}", e);
    // Unknown kind.
    let mut o = opts(3, false, false);
    o.extra = vec![Extra::RawKind { kind: 40 }];
    let e = err(&write_ctf(&types, &o));
    assert!(
        e.contains("unknown kind 40") && e.contains("type id 27"),
        "{}",
        e
    );
}

#[test]
fn string_offsets_past_the_end() {
    let types = freebsd_types();
    for version in [2, 3] {
        let (blob, p) = write_ctf_placed(&types, &opts(version, false, false));
        // Type 1's name.
        let mut b = blob.clone();
        b[p.typeoff..p.typeoff + 4].copy_from_slice(&(p.strlen as u32 + 10).to_le_bytes());
        let e = err(&b);
        assert!(
            e.contains("type id 1") && e.contains("past the end of the"),
            "{}",
            e
        );
        // A string table without its final NUL: the last name is unterminated.
        let mut b = blob.clone();
        let last = b.len() - 1;
        b[last] = b'x';
        assert!(err(&b).contains("unterminated"));
        // A string table that does not start with the empty string.
        let mut b = blob.clone();
        b[p.stroff] = b'x';
        assert!(err(&b).contains("empty string"));
        // External name without an ELF string table; external past its end.
        let mut b = blob.clone();
        b[p.typeoff..p.typeoff + 4].copy_from_slice(&0x8000_0005u32.to_le_bytes());
        assert!(err(&b).contains("ELF string table"));
        let e = ctf::parse_with(&b, Some(b"\0ab\0"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("past the end of the 4-byte ELF string table"),
            "{}",
            e
        );
    }
}

#[test]
fn decompression_bombs_and_wrong_lengths() {
    let blob = write_ctf(&freebsd_types(), &opts(3, true, false));
    let h = ctf::Header::parse(&blob).unwrap();
    // The header claims more than the stream holds.
    let mut b = blob.clone();
    set_word(&mut b, 7, h.strlen + 1);
    assert!(err(&b).contains("expands to"));
    // ... or less.
    let mut b = blob.clone();
    set_word(&mut b, 7, h.strlen - 1);
    assert!(err(&b).contains("expands to more than"));
    // More than zlib could produce from this many bytes.
    let mut b = blob.clone();
    set_word(&mut b, 7, 200 << 20);
    assert!(err(&b).contains("more than zlib can produce"));
    // A real bomb: 64 MiB of zeros in about 64 KiB, header claiming 1 KiB.
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &vec![0u8; 64 << 20]).unwrap();
    let bomb = z.finish().unwrap();
    let mut b = blob[..36].to_vec();
    for i in 2..7 {
        set_word(&mut b, i, 0);
    }
    set_word(&mut b, 7, 1024);
    b.extend_from_slice(&bomb);
    assert!(err(&b).contains("expands to more than"));
    // Not zlib at all.
    let mut b = blob[..36].to_vec();
    b.extend_from_slice(&[0x55; 200]);
    assert!(err(&b).contains("zlib"));
}

#[test]
fn member_type_out_of_range_and_typedef_loops() {
    let mut types = freebsd_types();
    if let Ty::Struct { members, .. } = &mut types[PROC as usize - 1] {
        members.push(Member::at("p_bad", 999, 92));
    }
    let e = err(&write_ctf(&types, &opts(3, false, false)));
    assert!(
        e.contains("type id 20") && e.contains("999") && e.contains("member 12"),
        "{}",
        e
    );
    // typedef a -> typedef b -> const -> typedef a.
    let types = vec![
        int("int", 32, true),
        Ty::Typedef {
            name: "a".into(),
            to: 3,
        },
        Ty::Typedef {
            name: "b".into(),
            to: 4,
        },
        Ty::Const { to: 2 },
        st("s", 4, vec![Member::at("x", 2, 0)]),
    ];
    for version in [2, 3] {
        let e = err(&write_ctf(&types, &opts(version, false, false)));
        assert!(e.contains("loop"), "{}", e);
    }
    // A typedef to itself, an array of itself.
    let e = err(&write_ctf(
        &[Ty::Typedef {
            name: "t".into(),
            to: 1,
        }],
        &opts(2, false, false),
    ));
    assert!(e.contains("loop"), "{}", e);
    let e = err(&write_ctf(
        &[
            int("int", 32, true),
            Ty::Array {
                elem: 2,
                index: 1,
                n: 4,
            },
        ],
        &opts(3, true, false),
    ));
    assert!(e.contains("loop"), "{}", e);
    // Pointer and array references out of range.
    let e = err(&write_ctf(&[Ty::Ptr { to: 7 }], &opts(2, false, false)));
    assert!(e.contains("type id 7"), "{}", e);
    let e = err(&write_ctf(
        &[
            int("int", 32, true),
            Ty::Array {
                elem: 1,
                index: 0x8001,
                n: 1,
            },
        ],
        &opts(2, false, false),
    ));
    assert!(e.contains("parent container"), "{}", e);
}

#[test]
fn bitfields_in_structs_too_large_for_btf_bitfield_offsets() {
    // BTF's bitfield encoding has 24 bits of offset: a 4 MiB struct keeps its offsets.
    let types = vec![
        int("unsigned int", 32, false),
        st(
            "big_bits",
            4 << 20,
            vec![
                bitf("b_low", 1, 5, 2),
                bitf("b_high", 1, (3 << 20) * 8 + 1, 4),
            ],
        ),
        st("small_bits", 4, vec![bitf("s_bit", 1, 7, 1)]),
    ];
    for version in [2, 3] {
        let btf = ctf::parse(&write_ctf(&types, &opts(version, true, false))).unwrap();
        let hi = btf.field("big_bits", "b_high").unwrap();
        assert_eq!((hi.bit_offset, hi.bitfield_size), ((3 << 20) * 8 + 1, 0));
        assert_eq!(btf.field("big_bits", "b_low").unwrap().bit_offset, 5);
        let s = btf.field("small_bits", "s_bit").unwrap();
        assert_eq!((s.bit_offset, s.bitfield_size), (7, 1));
    }
}

#[test]
fn a_kernel_sized_container() {
    // About the size of a GENERIC kernel's CTF: 60000 types, 20000 structs of 10 members.
    let mut types = vec![int("int", 32, true), int("long", 64, true)];
    for i in 0..20000u32 {
        let base = types.len() as u32;
        let members = (0..10)
            .map(|m| Member::at(&format!("m{}", m), if m % 2 == 0 { 1 } else { 2 }, m * 8))
            .collect();
        types.push(st(&format!("s{}", i), 80, members));
        types.push(Ty::Ptr { to: base + 1 });
        types.push(Ty::Typedef {
            name: format!("s{}_t", i),
            to: base + 1,
        });
    }
    let blob = write_ctf(&types, &opts(3, true, false));
    let t = std::time::Instant::now();
    let btf = ctf::parse(&blob).unwrap();
    let took = t.elapsed();
    assert_eq!(btf.type_count(), types.len());
    assert_eq!(btf.field("s19999", "m9").unwrap().offset(), 72);
    assert_eq!(btf.struct_size("s12345").unwrap(), 80);
    println!(
        "{} bytes of CTF, {} types: {:?}",
        blob.len(),
        types.len(),
        took
    );
}
