#![no_main]
//! cargo-fuzz target `rtp`: see `vqprobe::fuzz_targets::rtp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::rtp(data));
