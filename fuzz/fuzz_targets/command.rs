#![no_main]
//! See `natter_core::fuzzing::command`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| natter_core::fuzzing::command(data));
