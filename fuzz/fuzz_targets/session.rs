#![no_main]
//! See `natter_core::fuzzing::session`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| natter_core::fuzzing::session(data));
