#![no_main]
//! Arbitrary request bodies through the line-protocol parser: never a panic, and the fast
//! paths agree with the reference parse.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::line_protocol(data));
