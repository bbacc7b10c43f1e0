//! libFuzzer entry for the `virtio_blk_valid` target (see vmm-fuzz): a well-behaved driver's
//! requests only; liveness: none may reset the device.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_vm(
    vmm_fuzz::Focus::VirtioBlkValid,
    data
));
