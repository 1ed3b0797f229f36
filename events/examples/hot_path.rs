//! Times two helpers on the writer's per-event path against the library calls that could replace them: the hex
//! of an event's hash (`writer/row.rs`) and the `recorded_at` clock (`now_rfc3339`).
//!
//! `cargo run --release --example hot_path -p cairn-events`
//!
//! Each round times a few million calls of each form, alternating which form goes first, so that a machine
//! that slows down or speeds up meanwhile weighs on both; the medians of the rounds are compared.

use std::hint::black_box;
use std::time::Instant;

/// Rounds per comparison; only their medians are reported.
const ROUNDS: usize = 15;
/// Calls per round of the hex forms (tens of nanoseconds each).
const HEX_CALLS: u32 = 4_000_000;
/// Calls per round of the clock forms (a clock read and an allocation each).
const CLOCK_CALLS: u32 = 1_000_000;

/// The hand-written hex `writer/row.rs` had before it used the `hex` crate.
fn hex_by_hand<'b>(hash: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in hash.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(byte >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(byte & 15)];
    }
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

/// The same through the `hex` crate.
fn hex_by_crate<'b>(hash: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    hex::encode_to_slice(hash, buf).expect("64 bytes hold the hex of 32");
    std::str::from_utf8(buf).expect("hex digits are ASCII")
}

/// The clock through chrono's own RFC 3339 writer.
fn clock_by_chrono() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Nanoseconds per call of `f`, over `calls` calls.
fn per_call(calls: u32, mut f: impl FnMut(u32)) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Runs both forms `ROUNDS` times, interleaved, and prints their medians and the ratio library / hand-written.
fn compare(name: &str, calls: u32, mut by_hand: impl FnMut(u32), mut by_library: impl FnMut(u32)) {
    let (mut hand, mut library) = (Vec::with_capacity(ROUNDS), Vec::with_capacity(ROUNDS));
    for round in 0..ROUNDS {
        if round % 2 == 0 {
            hand.push(per_call(calls, &mut by_hand));
            library.push(per_call(calls, &mut by_library));
        } else {
            library.push(per_call(calls, &mut by_library));
            hand.push(per_call(calls, &mut by_hand));
        }
    }
    let (hand, library) = (median(hand), median(library));
    println!(
        "{name:<12} hand-written {hand:>7.2} ns/call   library {library:>7.2} ns/call   library/hand {:.3}",
        library / hand
    );
}

fn main() {
    // The forms must agree before their speed means anything.
    let mut hash = [0u8; 32];
    for seed in 0..=255u8 {
        for (i, byte) in hash.iter_mut().enumerate() {
            *byte = seed.wrapping_mul(31).wrapping_add(i as u8 * 7);
        }
        assert_eq!(hex_by_hand(&hash, &mut [0; 64]), hex_by_crate(&hash, &mut [0; 64]));
    }
    let ours = cairn_events::writer::now_rfc3339();
    let theirs = clock_by_chrono();
    for t in [&ours, &theirs] {
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.ends_with('Z'), "{t}");
        let parsed = chrono::DateTime::parse_from_rfc3339(t).expect("RFC 3339");
        assert_eq!(&parsed.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), t);
    }
    println!("formats agree: {ours} (hand-written), {theirs} (chrono)");
    println!("{ROUNDS} interleaved rounds, medians:");

    // Each form gets its own hash, a different one every call, and its own buffer, as the writer has.
    let (mut hand_hash, mut crate_hash) = (hash, hash);
    let (mut hand_buf, mut crate_buf) = ([0u8; 64], [0u8; 64]);
    compare(
        "hex_hash",
        HEX_CALLS,
        |i| {
            hand_hash[..4].copy_from_slice(&i.to_le_bytes());
            black_box(hex_by_hand(black_box(&hand_hash), &mut hand_buf).len());
        },
        |i| {
            crate_hash[..4].copy_from_slice(&i.to_le_bytes());
            black_box(hex_by_crate(black_box(&crate_hash), &mut crate_buf).len());
        },
    );
    compare(
        "now_rfc3339",
        CLOCK_CALLS,
        |_| drop(black_box(cairn_events::writer::now_rfc3339())),
        |_| drop(black_box(clock_by_chrono())),
    );
}
