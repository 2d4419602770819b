#![no_main]
//! cargo-fuzz target `sip`: see `vqprobe::fuzz_targets::sip`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::sip(data));
