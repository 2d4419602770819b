#![no_main]
//! cargo-fuzz target `engine`: see `vqprobe::fuzz_targets::engine`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::engine(data));
