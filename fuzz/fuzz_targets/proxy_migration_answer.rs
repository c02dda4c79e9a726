#![no_main]
//! Arbitrary bytes as a backend's /query answer to a migration's questions (policies, field keys, edges, counts, a window's rows): read or refused, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::proxy_migration_answer(data));
