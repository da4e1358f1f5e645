//! Fuzz target `proposal`: the body is `devnet::fuzzing::proposal` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| devnet::fuzzing::proposal(data));
