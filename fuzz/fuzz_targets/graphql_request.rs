//! Fuzz target `graphql_request`: the body is `api::fuzzing::graphql_request` (see there for
//! what it checks).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| api::fuzzing::graphql_request(data));
