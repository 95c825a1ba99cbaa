#![no_main]
//! See `natter_core::fuzzing::wire`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| natter_core::fuzzing::wire(data));
