//! One test kit for the VMM (vm-virtio's `mock.rs` and Firecracker's `test_utils` are the
//! models): every test, benchmark and fuzz target runs the production machine and drives it
//! the way a guest does.
//!
//! * [`TestHyp`]: the configurable hypervisor double (from `hypervisor`'s `test-utils`).
//! * [`esr`]: syndromes of the exits seL4 reports (data aborts, SMC, HVC, `msr ICC_SGI1R_EL1`).
//! * [`driver`]: the guest's PCI enumeration and virtio-pci driver over any [`driver::MmioPort`].
//! * [`queue`]: the driver's side of a split virtqueue.
//! * [`machine`]: `vm-builder`'s machine of a platform table over [`TestHyp`], with a
//!   Linux-like bring-up driven by the table.

// Test infrastructure: a failed set-up is a failed test.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]
#![forbid(unsafe_code)]

pub mod driver;
pub mod machine;
pub mod queue;

pub use arm_fault::syndrome as esr;
pub use hypervisor::testing::{HypEvent, LrEntry, TestHyp, Violation};
pub use machine::TestMachine;
