#![no_main]
//! Arbitrary write bodies split by measurement for two circles: never a panic, every accepted line in one group per circle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::proxy_lines(data));
