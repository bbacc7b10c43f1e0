//! libFuzzer entry for the `pci_ecam` target (see vmm-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_vm(vmm_fuzz::Focus::PciEcam, data));
