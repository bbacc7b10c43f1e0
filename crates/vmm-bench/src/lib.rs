//! The machine `vmm-bench` measures: a real `vmm::Vm` with the real vGIC and MMIO bus (PL011,
//! virtio-pci with console, block and net) over guest RAM in a `Vec`. The benchmarks
//! themselves are the `vmm-bench` binary.

pub mod machine;
