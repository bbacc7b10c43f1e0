//! Trapped system-register accesses.

use crate::GpReg;
use core::fmt;

/// A system register by its encoding (op0, op1, CRn, CRm, op2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SysReg {
    /// op0.
    pub op0: u8,
    /// op1.
    pub op1: u8,
    /// CRn.
    pub crn: u8,
    /// CRm.
    pub crm: u8,
    /// op2.
    pub op2: u8,
}

impl SysReg {
    /// `S<op0>_<op1>_C<crn>_C<crm>_<op2>`.
    pub const fn new(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> Self {
        Self {
            op0,
            op1,
            crn,
            crm,
            op2,
        }
    }

    /// ICC_SGI1R_EL1: generate a Group 1 SGI (the write Linux uses for IPIs).
    pub const ICC_SGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 5);
    /// ICC_ASGI1R_EL1: generate an SGI for the other Security state's Group 1.
    pub const ICC_ASGI1R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 6);
    /// ICC_SGI0R_EL1: generate a Group 0 SGI.
    pub const ICC_SGI0R_EL1: SysReg = SysReg::new(3, 0, 12, 11, 7);
    /// CNTPCT_EL0, the physical counter.
    pub const CNTPCT_EL0: SysReg = SysReg::new(3, 3, 14, 0, 1);
}

impl fmt::Debug for SysReg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}_{}_C{}_C{}_{}",
            self.op0, self.op1, self.crn, self.crm, self.op2
        )
    }
}

/// A trapped MSR (write) or MRS (read).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SysRegAccess {
    /// Which register.
    pub reg: SysReg,
    /// The general-purpose register read (MSR) or written (MRS).
    pub rt: GpReg,
    /// MRS (true) or MSR (false).
    pub read: bool,
}
