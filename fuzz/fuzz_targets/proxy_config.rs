#![no_main]
//! Arbitrary bytes as the proxy's config (proxy.json and its TOML form): a config or an error, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::proxy_config(data));
