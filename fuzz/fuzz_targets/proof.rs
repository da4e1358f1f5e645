//! Fuzz target `proof`: the body is `ledger::fuzzing::proof` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ledger::fuzzing::proof(data));
