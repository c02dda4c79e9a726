#![no_main]
//! Arbitrary bytes as InfluxQL: a parse error or a statement, never a panic or a hang.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::influxql(data));
