#![no_main]
//! Arbitrary queries through the proxy's whitelist and routing: never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::proxy_influxql(data));
