//! libFuzzer entry for the `vgic` target (see vmm-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_vm(vmm_fuzz::Focus::Vgic, data));
