//! Fuzz target `property_id`: the body is `devnet::fuzzing::property_id` (see there for what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| devnet::fuzzing::property_id(data));
