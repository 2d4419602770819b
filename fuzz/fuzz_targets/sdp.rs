#![no_main]
//! cargo-fuzz target `sdp`: see `vqprobe::fuzz_targets::sdp`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::sdp(data));
