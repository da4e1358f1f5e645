//! Fuzz target `fabric_block_file`: the body is `fabric::fuzzing::block_file` (see there for
//! what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fabric::fuzzing::block_file(data));
