use super::*;
use proptest::prelude::*;

// ---------- helpers ----------

/// Encodes, appends junk, decodes; checks values and bytes consumed.
macro_rules! roundtrip {
    ($enc:ident, $dec:ident, $v:expr, $eq:expr) => {{
        let v = $v;
        let mut buf = vec![0xEEu8; 3]; // prefix: encoders must append
        $enc(&v, &mut buf);
        let len = buf.len() - 3;
        buf.extend_from_slice(&[0xAB, 0xCD, 0x01]); // trailing junk
        let mut out = Vec::new();
        let used = $dec(&buf[3..], &mut out).expect("decode");
        prop_assert_eq!(used, len);
        prop_assert_eq!(out.len(), v.len());
        for (a, b) in out.iter().zip(v.iter()) {
            prop_assert!($eq(a, b), "mismatch {:?} vs {:?}", a, b);
        }
        // every strict prefix must fail cleanly, never panic
        for cut in 0..len {
            let mut o = Vec::new();
            let r = $dec(&buf[3..3 + cut], &mut o);
            prop_assert!(r.is_err(), "prefix {} of {} decoded", cut, len);
            prop_assert!(o.is_empty());
        }
        len
    }};
}

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 11
}

fn unit(seed: &mut u64) -> f64 {
    (lcg(seed) as f64) / ((1u64 << 53) as f64)
}

fn edge_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => any::<i64>(),
        2 => -100i64..100,
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(0i64),
    ]
}

fn edge_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => 0u64..200,
        1 => Just(u64::MAX),
        1 => Just(1u64 << 60),
        1 => Just((1u64 << 60) - 1),
    ]
}

fn edge_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<u64>().prop_map(f64::from_bits), // includes NaN payloads
        2 => (-100_000i64..100_000).prop_map(|n| n as f64 / 100.0),
        1 => Just(-0.0f64),
        1 => Just(0.0f64),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::MIN_POSITIVE / 2.0),
        1 => any::<f64>(),
    ]
}

/// Mostly regular sorted series with jitter, gaps and occasional wild values.
fn ts_series() -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i64>(),
        prop_oneof![
            Just(1i64),
            Just(1_000_000_000),
            Just(10_000_000_000),
            1i64..1_000_000
        ],
        prop::collection::vec(
            prop_oneof![8 => Just(0i64), 2 => -3i64..3, 1 => any::<i64>()],
            0..400,
        ),
    )
        .prop_map(|(start, step, jit)| {
            let mut t = start;
            jit.iter()
                .map(|&j| {
                    t = t.wrapping_add(step.wrapping_add(j.wrapping_mul(if j.abs() < 3 {
                        step
                    } else {
                        1
                    })));
                    t
                })
                .collect()
        })
}

fn same_f64(a: &f64, b: &f64) -> bool {
    a.to_bits() == b.to_bits()
}

fn same<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
}

// ---------- round trips ----------

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn rt_timestamps_any(v in prop::collection::vec(edge_i64(), 0..200)) {
        roundtrip!(encode_timestamps, decode_timestamps, v, same);
    }

    #[test]
    fn rt_timestamps_series(v in ts_series()) {
        roundtrip!(encode_timestamps, decode_timestamps, v, same);
    }

    #[test]
    fn rt_timestamps_sorted(mut v in prop::collection::vec(edge_i64(), 0..200)) {
        v.sort();
        roundtrip!(encode_timestamps, decode_timestamps, v, same);
    }

    #[test]
    fn rt_integers(v in prop::collection::vec(edge_i64(), 0..300)) {
        roundtrip!(encode_integers, decode_integers, v, same);
    }

    #[test]
    fn rt_integers_constant_delta(a in edge_i64(), d in edge_i64(), n in 0usize..50) {
        let v: Vec<i64> = (0..n as i64).map(|i| a.wrapping_add(d.wrapping_mul(i))).collect();
        roundtrip!(encode_integers, decode_integers, v, same);
    }

    #[test]
    fn rt_integers_small_walk(start in edge_i64(), steps in prop::collection::vec(-50i64..50, 0..600)) {
        let mut x = start;
        let v: Vec<i64> = steps.iter().map(|s| { x = x.wrapping_add(*s); x }).collect();
        roundtrip!(encode_integers, decode_integers, v, same);
    }

    #[test]
    fn rt_unsigned(v in prop::collection::vec(edge_u64(), 0..300)) {
        roundtrip!(encode_unsigned, decode_unsigned, v, same);
    }

    #[test]
    fn rt_floats(v in prop::collection::vec(edge_f64(), 0..300)) {
        roundtrip!(encode_floats, decode_floats, v, same_f64);
    }

    #[test]
    fn rt_floats_decimal(v in prop::collection::vec((-1_000_000i64..1_000_000, 0usize..6), 0..300)) {
        let v: Vec<f64> = v.iter().map(|&(n, e)| n as f64 / 10f64.powi(e as i32)).collect();
        roundtrip!(encode_floats, decode_floats, v, same_f64);
    }

    #[test]
    fn rt_booleans(v in prop::collection::vec(any::<bool>(), 0..300)) {
        roundtrip!(encode_booleans, decode_booleans, v, same);
    }

    #[test]
    fn rt_strings(v in prop::collection::vec(".{0,40}", 0..60)) {
        roundtrip!(encode_strings, decode_strings, v, same);
    }

    #[test]
    fn rt_strings_repetitive(v in prop::collection::vec(prop_oneof![
            Just("host=server01,region=us-west".to_string()),
            Just("".to_string()),
            "[a-c]{0,5}"], 0..300)) {
        roundtrip!(encode_strings, decode_strings, v, same);
    }
}

// ---------- hostile input ----------

fn decode_all(buf: &[u8]) {
    let _ = decode_timestamps(buf, &mut Vec::new());
    let _ = decode_floats(buf, &mut Vec::new());
    let _ = decode_integers(buf, &mut Vec::new());
    let _ = decode_unsigned(buf, &mut Vec::new());
    let _ = decode_booleans(buf, &mut Vec::new());
    let _ = decode_strings(buf, &mut Vec::new());
}

fn valid_streams(seed: u64) -> Vec<Vec<u8>> {
    let mut s = seed;
    let mut out = Vec::new();
    let n = (lcg(&mut s) % 300) as usize;
    let ints: Vec<i64> = (0..n).map(|_| (lcg(&mut s) % 100) as i64 - 50).collect();
    let mut b = Vec::new();
    encode_integers(&ints, &mut b);
    out.push(b);
    let mut b = Vec::new();
    let ts: Vec<i64> = (0..n as i64)
        .map(|i| i * 1000 + (lcg(&mut s) % 3) as i64)
        .collect();
    encode_timestamps(&ts, &mut b);
    out.push(b);
    let mut b = Vec::new();
    let fl: Vec<f64> = (0..n).map(|_| unit(&mut s)).collect();
    encode_floats(&fl, &mut b);
    out.push(b);
    let mut b = Vec::new();
    let fl: Vec<f64> = (0..n)
        .map(|_| (lcg(&mut s) % 1000) as f64 / 100.0)
        .collect();
    encode_floats(&fl, &mut b);
    out.push(b);
    let mut b = Vec::new();
    let st: Vec<String> = (0..n).map(|i| format!("value-{}", i % 7)).collect();
    encode_strings(&st, &mut b);
    out.push(b);
    let mut b = Vec::new();
    let bo: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
    encode_booleans(&bo, &mut b);
    out.push(b);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_all(&buf);
    }

    #[test]
    fn arbitrary_bytes_with_valid_tag_never_panic(
        tag in prop::sample::select(vec![0x10u8, 0x11, 0x12, 0x20, 0x21, 0x30, 0x31, 0x32, 0x33,
                                         0x40, 0x41, 0x42, 0x43, 0x50, 0x60, 0x61]),
        count in prop_oneof![0u64..20, 0u64..2000, any::<u64>()],
        rest in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = vec![tag];
        let mut c = count;
        while c >= 0x80 { buf.push(c as u8 | 0x80); c >>= 7; }
        buf.push(c as u8);
        buf.extend_from_slice(&rest);
        decode_all(&buf);
    }

    #[test]
    fn mutated_streams_never_panic(seed in any::<u64>(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        for mut b in valid_streams(seed) {
            for &(i, x) in &flips {
                if !b.is_empty() {
                    let k = i % b.len();
                    b[k] ^= x;
                }
            }
            decode_all(&b);
        }
    }
}

#[test]
fn forged_counts_are_refused_or_bounded() {
    // count = 2^62 -> refused
    let buf = [
        0x30, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0,
    ];
    assert!(matches!(
        decode_integers(&buf, &mut Vec::new()),
        Err(DecodeError::CountTooLarge(_))
    ));
    // count = 1M varint deltas in 3 bytes -> EOF, no big allocation
    let buf = [0x30, 0xc0, 0x84, 0x3d, 0x00, 0x00];
    let mut out = Vec::new();
    assert_eq!(
        decode_integers(&buf, &mut out),
        Err(DecodeError::UnexpectedEof)
    );
    assert!(out.capacity() < 100);
    // gorilla with huge count
    let buf = [0x20, 0xc0, 0x84, 0x3d, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    let mut out = Vec::new();
    assert!(decode_floats(&buf, &mut out).is_err());
    assert!(out.capacity() < 100);
    // overlong varint
    let buf = [
        0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ];
    assert_eq!(
        decode_integers(&buf, &mut Vec::new()),
        Err(DecodeError::VarintOverflow)
    );
    // wrong type
    let mut b = Vec::new();
    encode_integers(&[1, 2, 4], &mut b);
    assert!(
        matches!(decode_floats(&b, &mut Vec::new()), Err(DecodeError::UnknownTag(t)) if t & 0xf0 == 0x30)
    );
}

fn zstd_stream(declared: u64, raw: &[u8], count: u64) -> Vec<u8> {
    let z = zstd::bulk::compress(raw, 3).unwrap();
    let mut buf = vec![0x61];
    for v in [count, declared, z.len() as u64] {
        let mut c = v;
        while c >= 0x80 {
            buf.push(c as u8 | 0x80);
            c >>= 7;
        }
        buf.push(c as u8);
    }
    buf.extend_from_slice(&z);
    buf
}

#[test]
fn zip_bomb_is_refused() {
    let bomb = vec![0u8; 100 << 20]; // 100 MiB of zeros -> a few KiB of zstd
                                     // declared small, actual huge: stops after body_len + 1 bytes
    let buf = zstd_stream(1000, &bomb, 10);
    assert!(buf.len() < 64 << 10);
    assert_eq!(
        decode_strings(&buf, &mut Vec::new()),
        Err(DecodeError::Invalid("decompressed length mismatch"))
    );
    // declared over the limit: refused before decompressing
    let buf = zstd_stream(100 << 20, &bomb, 10);
    assert!(matches!(
        decode_strings(&buf, &mut Vec::new()),
        Err(DecodeError::DecompressedTooLarge(_))
    ));
    // invalid UTF-8 in body
    let mut body = vec![2u8];
    body.extend_from_slice(&[0xff, 0xfe]);
    let buf = zstd_stream(3, &body, 1);
    assert_eq!(
        decode_strings(&buf, &mut Vec::new()),
        Err(DecodeError::InvalidUtf8)
    );
}

#[test]
fn large_string_block_round_trips() {
    // ~6 MiB body, compressible: goes through zstd and the bounded decoder
    let v: Vec<String> = (0..200_000)
        .map(|i| format!("cpu{}-host-{}-us-west-2a", i % 1000, i % 37))
        .collect();
    let mut b = Vec::new();
    encode_strings(&v, &mut b);
    assert_eq!(b[0], 0x61);
    let mut out = Vec::new();
    assert_eq!(decode_strings(&b, &mut out), Ok(b.len()));
    assert_eq!(out, v);
    println!(
        "FIGURE strings repetitive: {:.3} B/value",
        b.len() as f64 / v.len() as f64
    );
}

#[test]
fn block_limit() {
    let v: Vec<i64> = (0..MAX_BLOCK_VALUES as i64).collect();
    let mut b = Vec::new();
    encode_integers(&v, &mut b);
    let mut out = Vec::new();
    assert_eq!(decode_integers(&b, &mut out), Ok(b.len()));
    assert_eq!(out.len(), MAX_BLOCK_VALUES);
    let v: Vec<i64> = (0..MAX_BLOCK_VALUES as i64 + 1).collect();
    let mut b = Vec::new();
    encode_integers(&v, &mut b);
    assert!(matches!(
        decode_integers(&b, &mut Vec::new()),
        Err(DecodeError::CountTooLarge(_))
    ));
}

// ---------- compression figures ----------

#[test]
fn regular_timestamps_are_tiny() {
    let start = 1_700_000_000_000_000_000i64;
    let ts: Vec<i64> = (0..10_000).map(|i| start + i * 10_000_000_000).collect();
    let mut b = Vec::new();
    encode_timestamps(&ts, &mut b);
    println!(
        "FIGURE regular ts: 10000 values -> {} bytes ({:.4} B/value)",
        b.len(),
        b.len() as f64 / 1e4
    );
    assert!(b.len() < 32);
    let mut out = Vec::new();
    assert_eq!(decode_timestamps(&b, &mut out), Ok(b.len()));
    assert_eq!(out, ts);

    // same series with 1% of points jittered by +-1 ms, at ns precision
    let mut s = 7;
    let jit: Vec<i64> = ts
        .iter()
        .map(|&t| {
            if lcg(&mut s).is_multiple_of(100) {
                t + 1_000_000 * ((lcg(&mut s) % 3) as i64 - 1)
            } else {
                t
            }
        })
        .collect();
    let mut b = Vec::new();
    encode_timestamps(&jit, &mut b);
    println!(
        "FIGURE jittered ts (1% +-1ms): {:.4} B/value",
        b.len() as f64 / 1e4
    );
    let mut out = Vec::new();
    decode_timestamps(&b, &mut out).unwrap();
    assert_eq!(out, jit);
}

fn tsbs_walk(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut s = seed;
    let mut walk = 0.0f64;
    (0..n)
        .map(|_| {
            walk += unit(&mut s) * 2.0 - 1.0;
            walk = walk.clamp(-50.0, 50.0);
            ((50.0 + walk) * scale).round() / 100.0
        })
        .collect()
}

#[test]
fn tsbs_floats_compress() {
    for (name, scale) in [
        ("(50+walk).round()/100", 1.0),
        ("((50+walk)*100).round()/100", 100.0),
    ] {
        let v = tsbs_walk(10_000, 42, scale);
        let mut total = 0;
        let mut gorilla = 0;
        for block in v.chunks(1000) {
            let mut b = Vec::new();
            encode_floats(block, &mut b);
            total += b.len();
            let mut out = Vec::new();
            assert_eq!(decode_floats(&b, &mut out), Ok(b.len()));
            assert!(out
                .iter()
                .zip(block)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let mut g = Vec::new();
            super::floats::encode_gorilla_for_test(block, &mut g);
            gorilla += g.len();
        }
        let bpv = total as f64 / v.len() as f64;
        println!(
            "FIGURE tsbs floats {name}: {bpv:.3} B/value (pure gorilla {:.3} B/value)",
            gorilla as f64 / v.len() as f64
        );
        assert!(bpv < 4.0);
    }
    // random floats in [0,1): gorilla worst-ish case
    let mut s = 9;
    let v: Vec<f64> = (0..1000).map(|_| unit(&mut s)).collect();
    let mut b = Vec::new();
    encode_floats(&v, &mut b);
    println!(
        "FIGURE random floats [0,1): {:.3} B/value",
        b.len() as f64 / 1000.0
    );
}

#[test]
fn integer_figures() {
    let mut s = 3;
    let cases: Vec<(&str, Vec<i64>)> = vec![
        (
            "random full-range i64",
            (0..1000)
                .map(|_| lcg(&mut s) as i64 ^ ((lcg(&mut s) as i64) << 53))
                .collect(),
        ),
        (
            "random 0..1000",
            (0..1000).map(|_| (lcg(&mut s) % 1000) as i64).collect(),
        ),
        ("random walk +-10", {
            let mut x = 0i64;
            (0..1000)
                .map(|_| {
                    x += (lcg(&mut s) % 21) as i64 - 10;
                    x
                })
                .collect()
        }),
        ("counter +1", (0..1000).collect()),
    ];
    for (name, v) in cases {
        let mut b = Vec::new();
        encode_integers(&v, &mut b);
        let mut out = Vec::new();
        assert_eq!(decode_integers(&b, &mut out), Ok(b.len()));
        assert_eq!(out, v);
        println!(
            "FIGURE integers {name}: {:.3} B/value",
            b.len() as f64 / 1000.0
        );
    }
}

/// Long fuzz run: `cargo test --release -- --ignored deep_fuzz`.
#[test]
#[ignore]
fn deep_fuzz() {
    let mut s = 12345u64;
    for round in 0..200_000u64 {
        for mut b in valid_streams(round) {
            let flips = 1 + lcg(&mut s) % 4;
            for _ in 0..flips {
                if b.is_empty() {
                    break;
                }
                let k = (lcg(&mut s) as usize) % b.len();
                b[k] ^= 1 << (lcg(&mut s) % 8);
            }
            if lcg(&mut s).is_multiple_of(4) {
                let cut = (lcg(&mut s) as usize) % (b.len() + 1);
                b.truncate(cut);
            }
            decode_all(&b);
        }
    }
}
