//! libFuzzer entry for the `virtio_net` target (see vmm-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_vm(vmm_fuzz::Focus::VirtioNet, data));
