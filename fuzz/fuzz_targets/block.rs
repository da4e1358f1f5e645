//! Fuzz target `block`: the body is `ledger::fuzzing::block` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger::fuzzing::block(data));
