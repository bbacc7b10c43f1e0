//! Syndromes built from real instruction encodings.
//!
//! The instruction words below were assembled with binutils' `aarch64-linux-gnu-as` (2.40,
//! Debian bookworm) and read back with `aarch64-linux-gnu-objdump -d`. For each one the test
//! builds the ESR_EL2 that a data abort or trap of that instruction reports, following the
//! Arm ARM's rules for the syndrome (D17.2.37: ISV/SAS/SSE/SRT/SF/AR for loads and stores,
//! C6.2 for the load/store encodings; Op0..Op2/CRn/CRm/Rt/Direction for MSR/MRS), then checks
//! that `decode` recovers exactly what the instruction does.

use super::*;
extern crate std;
use std::vec::Vec;

const IPA: GuestPhysAddr = GuestPhysAddr(0x0900_0018);
const EC_DABT_LOW: u64 = 0b10_0100;
const IL: u64 = 1 << 25;

/// What the instruction does, read from its encoding (Arm ARM C4.1.94 "Load/store register
/// (unsigned immediate)" and "(register offset)", C4.1.92 "Load/store ordered").
#[derive(Debug)]
struct Expected {
    size: AccessSize,
    write: bool,
    rt: u8,
    sign_extend: bool,
    sixty_four: bool,
    acquire_release: bool,
}

fn expected_from_insn(insn: u32) -> Option<Expected> {
    let size = AccessSize::from_sas((insn >> 30) as u8);
    let rt = (insn & 31) as u8;
    // Load/store ordered: size 001000 o2 L o1 Rs o0 Rt2 Rn Rt, with o2=1 o1=0 o0=1 (LDAR/STLR).
    if (insn >> 24) & 0x3f == 0b00_1000 && (insn >> 23) & 1 == 1 {
        let load = (insn >> 22) & 1 == 1;
        return Some(Expected {
            size,
            write: !load,
            rt,
            sign_extend: false,
            sixty_four: size == AccessSize::Double,
            acquire_release: true,
        });
    }
    // Single register, integer: size 111 0 0x opc ...; bits 29..27 = 111, bit 26 (V) = 0.
    if (insn >> 27) & 7 != 0b111 || (insn >> 26) & 1 != 0 || (insn >> 25) & 1 != 0 {
        return None; // not a single-register integer load/store: no ISV in the syndrome
    }
    // Pairs are `101 0` at 29..26 with bits 25..24 naming the mode; rejected above by bit 27.
    let opc = (insn >> 22) & 3;
    let (write, sign_extend, sixty_four) = match (opc, size) {
        (0b00, s) => (true, false, s == AccessSize::Double),
        (0b01, s) => (false, false, s == AccessSize::Double),
        (0b10, _) => (false, true, true), // LDRSB/LDRSH/LDRSW Xt
        (_, _) => (false, true, false),   // LDRSB/LDRSH Wt
    };
    Some(Expected {
        size,
        write,
        rt,
        sign_extend,
        sixty_four,
        acquire_release: false,
    })
}

/// The ESR a stage-2 data abort of that load/store reports (ISV=1, DFSC = translation fault L3).
fn esr_for(e: &Expected) -> u64 {
    let sas = e.size.bytes().trailing_zeros() as u64;
    let iss = (1 << 24)
        | (sas << 22)
        | (u64::from(e.sign_extend) << 21)
        | (u64::from(e.rt) << 16)
        | (u64::from(e.sixty_four) << 15)
        | (u64::from(e.acquire_release) << 14)
        | (u64::from(e.write) << 6)
        | 0b00_0111;
    (EC_DABT_LOW << 26) | IL | iss
}

/// (objdump word, assembly) for every integer load/store width and sign-extension case.
const LOADS_STORES: &[(u32, &str)] = &[
    (0x3940_0020, "ldrb w0, [x1]"),
    (0x7940_0062, "ldrh w2, [x3]"),
    (0xb940_00a4, "ldr w4, [x5]"),
    (0xf940_00e6, "ldr x6, [x7]"),
    (0x39c0_0128, "ldrsb w8, [x9]"),
    (0x79c0_016a, "ldrsh w10, [x11]"),
    (0x3980_01ac, "ldrsb x12, [x13]"),
    (0x7980_01ee, "ldrsh x14, [x15]"),
    (0xb980_0230, "ldrsw x16, [x17]"),
    (0x3900_0272, "strb w18, [x19]"),
    (0x7900_02b4, "strh w20, [x21]"),
    (0xb900_02f6, "str w22, [x23]"),
    (0xf900_0338, "str x24, [x25]"),
    (0xf900_035f, "str xzr, [x26]"),
    (0xb900_077f, "str wzr, [x27, #4]"),
    (0xf940_041e, "ldr x30, [x0, #8]"),
    (0x88df_fc41, "ldar w1, [x2]"),
    (0xc89f_fc83, "stlr x3, [x4]"),
    (0xb867_68c5, "ldr w5, [x6, x7]"),
];

#[test]
fn every_load_store_form_decodes_to_what_the_instruction_does() {
    for &(insn, asm) in LOADS_STORES {
        let e = expected_from_insn(insn).unwrap_or_else(|| panic!("{asm}: oracle"));
        let exit = decode(Esr(esr_for(&e)), IPA).unwrap();
        let Exit::DataAbort { ipa, access } = exit else {
            panic!("{asm}: {exit:?}")
        };
        assert_eq!(ipa, IPA, "{asm}");
        assert_eq!(access.size(), e.size, "{asm}");
        assert_eq!(access.write(), e.write, "{asm}");
        assert_eq!(access.reg(), GpReg::new(e.rt), "{asm}");
        assert_eq!(access.sign_extend(), e.sign_extend, "{asm}");
        assert_eq!(access.sixty_four(), e.sixty_four, "{asm}");
        assert_eq!(access.acquire_release(), e.acquire_release, "{asm}");
    }
}

#[test]
fn load_pair_has_no_syndrome_and_is_refused() {
    // a9400440  ldp x0, x1, [x2]: the hardware reports ISV=0.
    assert!(expected_from_insn(0xa940_0440).is_none());
    let esr = (EC_DABT_LOW << 26) | IL | 0b00_0111;
    assert_eq!(
        decode(Esr(esr), IPA),
        Err(DecodeError::NoSyndrome {
            ipa: IPA,
            esr: Esr(esr)
        })
    );
}

#[test]
fn external_aborts_and_walk_faults_are_not_mmio() {
    let ea = (EC_DABT_LOW << 26) | IL | (1 << 24) | (1 << 9) | 0x10;
    assert!(matches!(
        decode(Esr(ea), IPA),
        Err(DecodeError::NotEmulable { .. })
    ));
    let s1ptw = (EC_DABT_LOW << 26) | IL | (1 << 24) | (1 << 7) | 0x07;
    assert!(matches!(
        decode(Esr(s1ptw), IPA),
        Err(DecodeError::NotEmulable { .. })
    ));
}

#[test]
fn cache_maintenance_is_stepped_over() {
    // DC CIVAC reports CM=1 and WnR=1.
    let esr = (EC_DABT_LOW << 26) | IL | (1 << 8) | (1 << 6) | 0x07;
    assert_eq!(
        decode(Esr(esr), IPA),
        Ok(Exit::CacheMaintenance { ipa: IPA })
    );
}

#[test]
fn load_results_extend_as_the_architecture_does() {
    let ld = |insn| {
        let e = expected_from_insn(insn).unwrap();
        let Ok(Exit::DataAbort { access, .. }) = decode(Esr(esr_for(&e)), IPA) else {
            panic!()
        };
        access
    };
    // ldrb w0: zero-extends, upper half of X cleared.
    assert_eq!(ld(0x3940_0020).load_result(0xffff_ff80), 0x80);
    // ldrsb w8: sign-extends to 32 bits only.
    assert_eq!(ld(0x39c0_0128).load_result(0x80), 0xffff_ff80);
    // ldrsb x12: sign-extends to 64 bits.
    assert_eq!(ld(0x3980_01ac).load_result(0x80), 0xffff_ffff_ffff_ff80);
    // ldrsh w10 / x14.
    assert_eq!(ld(0x79c0_016a).load_result(0x8001), 0xffff_8001);
    assert_eq!(ld(0x7980_01ee).load_result(0x7fff), 0x7fff);
    assert_eq!(ld(0x7980_01ee).load_result(0x8000), 0xffff_ffff_ffff_8000);
    // ldrsw x16.
    assert_eq!(
        ld(0xb980_0230).load_result(0x8000_0000),
        0xffff_ffff_8000_0000
    );
    // ldr w4 drops bus bits above 32; ldr x6 keeps all.
    assert_eq!(ld(0xb940_00a4).load_result(0x1_2345_6789), 0x2345_6789);
    assert_eq!(ld(0xf940_00e6).load_result(u64::MAX), u64::MAX);
    // strh w20 puts only 16 bits on the bus.
    assert_eq!(ld(0x7900_02b4).store_value(0xdead_beef), 0xbeef);
    assert_eq!(ld(0xf900_035f).reg(), GpReg::ZR);
}

/// ISS of MSR/MRS from the instruction (C5.2 "System instruction class encoding"):
/// 1101010100 L 1 op0[0] op1 CRn CRm op2 Rt, with op0 = 2 + op0[0].
fn esr_for_sysreg(insn: u32) -> u64 {
    let l = u64::from((insn >> 21) & 1);
    let op0 = u64::from(2 + ((insn >> 19) & 1));
    let op1 = u64::from((insn >> 16) & 7);
    let crn = u64::from((insn >> 12) & 15);
    let crm = u64::from((insn >> 8) & 15);
    let op2 = u64::from((insn >> 5) & 7);
    let rt = u64::from(insn & 31);
    let iss = (op0 << 20) | (op2 << 17) | (op1 << 14) | (crn << 10) | (rt << 5) | (crm << 1) | l;
    (0b01_1000 << 26) | IL | iss
}

#[test]
fn msr_mrs_traps_decode_register_and_direction() {
    let cases: &[(u32, &str, SysReg, u8, bool)] = &[
        (
            0xd518_cba1,
            "msr icc_sgi1r_el1, x1",
            SysReg::ICC_SGI1R_EL1,
            1,
            false,
        ),
        (
            0xd518_cbc2,
            "msr icc_asgi1r_el1, x2",
            SysReg::ICC_ASGI1R_EL1,
            2,
            false,
        ),
        (
            0xd53b_e023,
            "mrs x3, cntpct_el0",
            SysReg::CNTPCT_EL0,
            3,
            true,
        ),
        (
            0xd538_cc04,
            "mrs x4, icc_iar1_el1",
            SysReg::new(3, 0, 12, 12, 0),
            4,
            true,
        ),
        (
            0xd51b_e225,
            "msr cntp_ctl_el0, x5",
            SysReg::new(3, 3, 14, 2, 1),
            5,
            false,
        ),
    ];
    for &(insn, asm, reg, rt, read) in cases {
        let exit = decode(Esr(esr_for_sysreg(insn)), GuestPhysAddr(0)).unwrap();
        assert_eq!(
            exit,
            Exit::SysReg(SysRegAccess {
                reg,
                rt: GpReg::new(rt),
                read
            }),
            "{asm}"
        );
    }
}

#[test]
fn wfx_hvc_smc() {
    // d503207f wfi (TI=00), d503205f wfe (TI=01), d4000002 hvc #0, d4024683 smc #0x1234.
    let z = GuestPhysAddr(0);
    assert_eq!(decode(Esr((0b00_0001 << 26) | IL), z), Ok(Exit::Wfi));
    assert_eq!(decode(Esr((0b00_0001 << 26) | IL | 1), z), Ok(Exit::Wfe));
    assert_eq!(
        decode(Esr((0b01_0110 << 26) | IL), z),
        Ok(Exit::Hvc { imm: 0 })
    );
    assert_eq!(
        decode(Esr((0b01_0111 << 26) | IL | 0x1234), z),
        Ok(Exit::Smc { imm: 0x1234 })
    );
    assert_eq!(
        decode(Esr((0b10_0000 << 26) | IL | 0x0f), GuestPhysAddr(0x10)),
        Ok(Exit::InstructionAbort {
            ipa: GuestPhysAddr(0x10),
            ifsc: 0x0f
        })
    );
    // Pointer-authentication trap (EC 0x09): not handled, reported as Other.
    assert_eq!(
        decode(Esr((0x09 << 26) | IL), z),
        Ok(Exit::Other { ec: 0x09, iss: 0 })
    );
    assert_eq!(Esr(IL).instruction_len(), 4);
    assert_eq!(Esr(0).instruction_len(), 2);
}

#[test]
fn ipa_from_hpfar_and_far() {
    // HPFAR holds IPA[47:12] at [39:4].
    assert_eq!(ipa_from_hpfar(0x0900_0000 >> 8, 0xffff_0000_0000_0018), IPA);
}

#[test]
fn every_class_decodes_to_a_defined_result() {
    // Every EC with the ISS bits that select behaviour: no panic, and a class the VMM does not
    // act on comes back as `Other` with its EC and ISS intact.
    let handled = [
        0b10_0100u64,
        0b10_0000,
        0b00_0001,
        0b01_0110,
        0b01_0111,
        0b01_1000,
    ];
    for ec in 0..64u64 {
        for iss in [
            0u64,
            1,
            0x1ff_ffff,
            1 << 24,
            (1 << 24) | (3 << 22) | (31 << 16) | 0x3f,
        ] {
            let r = decode(Esr((ec << 26) | IL | iss), IPA);
            if !handled.contains(&ec) {
                assert_eq!(
                    r,
                    Ok(Exit::Other {
                        ec: ec as u8,
                        iss: iss as u32
                    })
                );
            } else {
                assert!(
                    !matches!(r, Ok(Exit::Other { .. })),
                    "ec {ec:#x} iss {iss:#x}"
                );
            }
        }
    }
}

#[test]
fn mmio_fast_path_agrees_with_decode() {
    // The event loop takes `Esr::mmio_access` first and falls back to `decode`: both must say
    // the same of every syndrome. Real load/store encodings, then every combination of the
    // flag bits that change the verdict (ISV, EA, CM, S1PTW, WnR, SSE, SF, AR), every width and
    // a few registers, for every exception class and both instruction lengths.
    let mut esrs: Vec<u64> = LOADS_STORES
        .iter()
        .map(|&(insn, _)| esr_for(&expected_from_insn(insn).unwrap()))
        .collect();
    let flags = [24u32, 9, 8, 7, 6, 21, 15, 14];
    for ec in 0..64u64 {
        for il in [0, IL] {
            for bits in 0..(1u32 << flags.len()) {
                let mut iss = 0u64;
                for (k, f) in flags.iter().enumerate() {
                    if bits & (1 << k) != 0 {
                        iss |= 1 << f;
                    }
                }
                for (sas, srt) in [(0u64, 0u64), (1, 7), (2, 30), (3, 31)] {
                    esrs.push((ec << 26) | il | iss | (sas << 22) | (srt << 16) | 0x10);
                }
            }
        }
    }
    let mut fast = 0;
    for esr in esrs {
        let by_decode = match decode(Esr(esr), IPA) {
            Ok(Exit::DataAbort { ipa, access }) => {
                assert_eq!(ipa, IPA);
                Some(access)
            }
            _ => None,
        };
        assert_eq!(Esr(esr).mmio_access(), by_decode, "ESR {esr:#x}");
        fast += usize::from(by_decode.is_some());
    }
    // Only EC 0x24 with ISV=1 and EA=CM=S1PTW=0 takes the fast path: 2 lengths x 2^4 free
    // flags x 4 widths, plus the real encodings.
    assert_eq!(fast, 2 * 16 * 4 + LOADS_STORES.len());
}

#[test]
fn access_sizes() {
    let all = [
        (AccessSize::Byte, 1, 0xff),
        (AccessSize::Half, 2, 0xffff),
        (AccessSize::Word, 4, 0xffff_ffff),
        (AccessSize::Double, 8, u64::MAX),
    ];
    for (sas, (size, bytes, mask)) in all.into_iter().enumerate() {
        assert_eq!(size.bytes(), bytes);
        assert_eq!(size.bits() as u64, bytes * 8);
        assert_eq!(size.mask(), mask);
        assert_eq!(AccessSize::from_sas(sas as u8), size);
        assert_eq!(AccessSize::from_sas(sas as u8 | 4), size, "SAS is two bits");
        assert_eq!(AccessSize::from_bytes(bytes), Some(size));
        // MmioAccess keeps the fields it is built from.
        for bits in 0..16u32 {
            let b = |k: u32| bits & (1 << k) != 0;
            let a = MmioAccess::new(size, b(0), GpReg::new(sas as u8 * 9), b(1), b(2), b(3));
            assert_eq!(
                (
                    a.size(),
                    a.write(),
                    a.reg(),
                    a.sign_extend(),
                    a.sixty_four(),
                    a.acquire_release()
                ),
                (size, b(0), GpReg::new(sas as u8 * 9), b(1), b(2), b(3))
            );
        }
    }
    assert_eq!(AccessSize::from_bytes(3), None);
}

#[test]
fn syndromes_the_stand_ins_write_decode_to_what_they_say() {
    for size in [
        AccessSize::Byte,
        AccessSize::Half,
        AccessSize::Word,
        AccessSize::Double,
    ] {
        for write in [false, true] {
            let a = syndrome::data_abort(size, 7, write).mmio_access().unwrap();
            assert_eq!((a.size(), a.reg(), a.write()), (size, GpReg::new(7), write));
        }
    }
    assert_eq!(
        decode(syndrome::smc(), GuestPhysAddr(0)),
        Ok(Exit::Smc { imm: 0 })
    );
    assert_eq!(
        decode(syndrome::hvc(), GuestPhysAddr(0)),
        Ok(Exit::Hvc { imm: 0 })
    );
    assert_eq!(
        decode(syndrome::msr_sgi1r(3), GuestPhysAddr(0)),
        Ok(Exit::SysReg(SysRegAccess {
            reg: SysReg::ICC_SGI1R_EL1,
            rt: GpReg::new(3),
            read: false
        }))
    );
}
