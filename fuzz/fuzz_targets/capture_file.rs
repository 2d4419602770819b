#![no_main]
//! cargo-fuzz target `capture_file`: see `vqprobe::fuzz_targets::capture_file`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::capture_file(data));
