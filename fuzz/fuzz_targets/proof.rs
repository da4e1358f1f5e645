//! Fuzz target `proof`: the body is `devnet::fuzzing::proof` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| devnet::fuzzing::proof(data));
