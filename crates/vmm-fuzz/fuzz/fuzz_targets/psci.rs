//! libFuzzer entry for the `psci` target (see vmm-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_vm(vmm_fuzz::Focus::Psci, data));
