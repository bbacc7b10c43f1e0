//! libFuzzer entry for the `guest_dtb` target (see vmm-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vmm_fuzz::fuzz_guest_dtb(data));
