//! The VMM core.
//!
//! [`Vm`] owns guest memory, the MMIO bus, the interrupt controller and the PSCI state, and
//! drives a [`Hypervisor`] back-end. The back-end's fault loop hands it one [`Event`] at a
//! time and gets back a [`Reply`] saying what to do with the vCPU.
#![no_std]

extern crate alloc;

mod irqchip;

pub use irqchip::InterruptController;
