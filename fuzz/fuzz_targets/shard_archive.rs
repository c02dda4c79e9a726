#![no_main]
//! Arbitrary bytes as a shard restore body: unpacking refuses or accepts, never panics.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::shard_archive(data));
