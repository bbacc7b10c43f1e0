//! The SIGSEGV handler that turns a faulting x86-64 load or store into an MMIO access.
//!
//! Emulated instructions: `mov` (register, immediate), `movzx`, `movsx`/`movsxd`,
//! `movd`/`movq` to or from an XMM register, and `test`/`cmp` against memory (optimised code
//! folds a volatile load that is only compared into them), at 1, 2, 4 and 8 bytes. Anything else in a trapped
//! window aborts the test process with the instruction's bytes, rather than guess.

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use mmio_bus::AccessSize;
use std::sync::Once;

/// Where a trapped access goes: `Some(value)` for a load, `None` for a store; returns the
/// loaded value, or `None` when the address is not in a trapped window.
pub(crate) type Handler = fn(addr: usize, size: AccessSize, store: Option<u64>) -> Option<u64>;

static mut HANDLER: Option<Handler> = None;

fn die(msg: &str, rip: u64, bytes: &[u8]) -> ! {
    // Straight to fd 2: the test harness captures a test thread's eprintln! and the abort
    // below would lose it.
    let line = format!("virtio-test-harness trap: {msg} at rip {rip:#x}, bytes {bytes:02x?}\n");
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    std::process::abort();
}

/// Installs the handler (once per process); `handler` routes the accesses.
pub(crate) fn install(handler: Handler) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: written once, before the signal handler can run (it is installed below).
        unsafe { HANDLER = Some(handler) };
        // SAFETY: a zeroed sigaction with our handler and SA_SIGINFO is a valid argument.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_segv as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()) != 0 {
                panic!("sigaction failed");
            }
        }
    });
}

fn gpr_index(r: Register) -> Option<usize> {
    let i = match r.full_register() {
        Register::RAX => libc::REG_RAX,
        Register::RBX => libc::REG_RBX,
        Register::RCX => libc::REG_RCX,
        Register::RDX => libc::REG_RDX,
        Register::RSI => libc::REG_RSI,
        Register::RDI => libc::REG_RDI,
        Register::RBP => libc::REG_RBP,
        Register::RSP => libc::REG_RSP,
        Register::R8 => libc::REG_R8,
        Register::R9 => libc::REG_R9,
        Register::R10 => libc::REG_R10,
        Register::R11 => libc::REG_R11,
        Register::R12 => libc::REG_R12,
        Register::R13 => libc::REG_R13,
        Register::R14 => libc::REG_R14,
        Register::R15 => libc::REG_R15,
        _ => return None,
    };
    Some(i as usize)
}

fn is_high8(r: Register) -> bool {
    matches!(r, Register::AH | Register::BH | Register::CH | Register::DH)
}

struct Regs<'a> {
    uc: &'a mut libc::ucontext_t,
}

impl Regs<'_> {
    fn get(&self, r: Register) -> Option<u64> {
        if r.is_xmm() {
            let i = (r as u32 - Register::XMM0 as u32) as usize;
            // SAFETY: the kernel's signal frame always carries the FP state on x86-64.
            let fp = unsafe { &*self.uc.uc_mcontext.fpregs };
            let e = fp._xmm.get(i)?.element;
            return Some(u64::from(e[0]) | (u64::from(e[1]) << 32));
        }
        let v = *self.uc.uc_mcontext.gregs.get(gpr_index(r)?)? as u64;
        Some(if is_high8(r) { v >> 8 } else { v })
    }

    /// Writes `value` (already extended to the destination's width) as the CPU would.
    fn set(&mut self, r: Register, value: u64) -> Option<()> {
        if r.is_xmm() {
            let i = (r as u32 - Register::XMM0 as u32) as usize;
            // SAFETY: as in `get`.
            let fp = unsafe { &mut *self.uc.uc_mcontext.fpregs };
            // movd/movq to XMM zero the rest of the register.
            fp._xmm.get_mut(i)?.element = [value as u32, (value >> 32) as u32, 0, 0];
            return Some(());
        }
        let slot = self.uc.uc_mcontext.gregs.get_mut(gpr_index(r)?)?;
        let old = *slot as u64;
        let new = match r.size() {
            8 => value,
            4 => value & 0xffff_ffff,
            2 => (old & !0xffff) | (value & 0xffff),
            1 if is_high8(r) => (old & !0xff00) | ((value & 0xff) << 8),
            _ => (old & !0xff) | (value & 0xff),
        };
        *slot = new as i64;
        Some(())
    }
}

fn sign_extend(v: u64, bytes: usize) -> u64 {
    let shift = 64 - 8 * bytes as u32;
    (((v << shift) as i64) >> shift) as u64
}

fn size_of_access(bytes: usize) -> Option<AccessSize> {
    AccessSize::from_bytes(bytes as u64)
}

fn operand(regs: &Regs<'_>, i: &Instruction, n: u32, loaded: u64) -> Option<u64> {
    match i.op_kind(n) {
        OpKind::Memory => Some(loaded),
        OpKind::Register => regs.get(i.op_register(n)),
        OpKind::Immediate8
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate32to64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64 => Some(i.immediate(n)),
        _ => None,
    }
}

/// `test` and `cmp` against memory (what optimised code makes of a volatile load that is
/// only compared): one load, then the flags the CPU would have set.
fn emulate_flags(
    regs: &mut Regs<'_>,
    i: &Instruction,
    addr: usize,
    handler: Handler,
) -> Option<()> {
    let bytes = i.memory_size().size();
    let size = size_of_access(bytes)?;
    let loaded = handler(addr, size, None)?;
    let mask = if bytes == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * bytes)) - 1
    };
    let sign = 1u64 << (8 * bytes - 1);
    let a = operand(regs, i, 0, loaded)? & mask;
    let b = operand(regs, i, 1, loaded)? & mask;
    let (r, cf, of, af) = if i.mnemonic() == Mnemonic::Test {
        (a & b, false, false, false)
    } else {
        let r = a.wrapping_sub(b) & mask;
        let of = (a ^ b) & sign != 0 && (a ^ r) & sign != 0;
        (r, a < b, of, (a ^ b ^ r) & 0x10 != 0)
    };
    let pf = (r as u8).count_ones().is_multiple_of(2);
    let flags: [(bool, u32); 6] = [
        (cf, 0),
        (pf, 2),
        (af, 4),
        (r == 0, 6),
        (r & sign != 0, 7),
        (of, 11),
    ];
    let efl = regs.uc.uc_mcontext.gregs.get_mut(libc::REG_EFL as usize)?;
    let mut v = *efl as u64;
    for (set, bit) in flags {
        v = (v & !(1 << bit)) | (u64::from(set) << bit);
    }
    *efl = v as i64;
    Some(())
}

fn emulate(regs: &mut Regs<'_>, i: &Instruction, addr: usize, handler: Handler) -> Option<()> {
    if matches!(i.mnemonic(), Mnemonic::Test | Mnemonic::Cmp) {
        return emulate_flags(regs, i, addr, handler);
    }
    let mem_bytes = i.memory_size().size();
    let size = size_of_access(mem_bytes)?;
    let store = i.op0_kind() == OpKind::Memory;
    if store {
        let value = match i.op1_kind() {
            OpKind::Register => regs.get(i.op1_register())?,
            OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate32to64
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64 => i.immediate(1),
            _ => return None,
        };
        match i.mnemonic() {
            Mnemonic::Mov | Mnemonic::Movd | Mnemonic::Movq => {}
            _ => return None,
        }
        handler(addr, size, Some(value))?;
        return Some(());
    }
    if i.op1_kind() != OpKind::Memory {
        return None;
    }
    let dst = i.op0_register();
    let loaded = handler(addr, size, None)?;
    let value = match i.mnemonic() {
        Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movd | Mnemonic::Movq => loaded,
        Mnemonic::Movsx | Mnemonic::Movsxd => sign_extend(loaded, mem_bytes),
        _ => return None,
    };
    regs.set(dst, value)
}

extern "C" fn on_segv(_sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: SA_SIGINFO handlers get a valid siginfo and ucontext from the kernel.
    let (addr, uc) = unsafe {
        (
            (*info).si_addr() as usize,
            &mut *(uctx as *mut libc::ucontext_t),
        )
    };
    // SAFETY: set before the handler was installed, never changed after.
    let Some(handler) = (unsafe { HANDLER }) else {
        std::process::abort();
    };
    let rip = uc.uc_mcontext.gregs[libc::REG_RIP as usize] as u64;
    // SAFETY: RIP points into this process's code; an instruction is at most 15 bytes and the
    // text mapping extends past any instruction that faulted.
    let bytes = unsafe { std::slice::from_raw_parts(rip as *const u8, 15) };
    let mut decoder = Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.code() == Code::INVALID {
        die("undecodable instruction", rip, bytes);
    }
    // An address outside every trapped window is a real crash: say so and abort.
    if !crate::machine::is_trapped(addr) {
        die(&format!("segmentation fault at {addr:#x}"), rip, bytes);
    }
    let mut regs = Regs { uc };
    if emulate(&mut regs, &instr, addr, handler).is_none() {
        die(
            &format!("cannot emulate {:?} at {addr:#x}", instr.code()),
            rip,
            bytes,
        );
    }
    regs.uc.uc_mcontext.gregs[libc::REG_RIP as usize] = (rip + instr.len() as u64) as i64;
}
