#![no_main]
//! cargo-fuzz target `rtcp`: see `vqprobe::fuzz_targets::rtcp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::rtcp(data));
