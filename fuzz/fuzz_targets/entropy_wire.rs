#![no_main]
//! Arbitrary bytes as every anti-entropy peer message (shard lists, digest requests and
//! answers, leaf requests, leaves, cells, set reconciliation's tables and exchanges): refused or accepted, never a panic; what is accepted
//! encodes back to what decodes the same.
libfuzzer_sys::fuzz_target!(|data: &[u8]| shardkeeper::fuzzing::entropy_wire(data));
