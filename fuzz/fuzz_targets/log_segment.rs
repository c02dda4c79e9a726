#![no_main]
//! Arbitrary bytes as a log segment: recovery, verify, read and append never panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::log_segment(data));
