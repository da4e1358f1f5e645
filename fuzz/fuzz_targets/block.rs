//! Fuzz target `block`: the body is `devnet::fuzzing::block` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| devnet::fuzzing::block(data));
