#![no_main]
//! cargo-fuzz target `decode`: see `vqprobe::fuzz_targets::decode_frame`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| vqprobe::fuzz_targets::decode_frame(data));
