//! Times two helpers on the writer's per-event path, the hex of an event's hash and the `recorded_at` clock,
//! in the hand-written forms `writer/row.rs` once had against the library calls that replaced them.
//!
//! `cargo run --release --example hot_path -p cairn-events`
//!
//! Each round times a few million calls of each form, alternating which form goes first, so that a machine
//! that slows down or speeds up meanwhile weighs on both; the medians of the rounds are compared.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Utc};

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

/// The field-by-field formatting `writer/row.rs` had before it used chrono's RFC 3339 writer.
fn rfc3339_by_hand(now: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        (now.nanosecond() / 1000).min(999_999)
    )
}

/// chrono's own RFC 3339 writer, which `cairn_events::writer::now_rfc3339` now uses.
fn rfc3339_by_chrono(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
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
    let instants = [
        "2026-12-01T09:40:18.123456Z",
        "2026-01-09T00:00:00.000000Z",
        "1999-12-31T23:59:59.999999Z",
        "2000-02-29T12:05:07.000001Z",
    ]
    .map(|t| DateTime::parse_from_rfc3339(t).expect("RFC 3339").to_utc());
    let now = Utc::now();
    let nanos = (0..1000).map(|n| now + chrono::Duration::nanoseconds(n * 7_919_993));
    for t in instants.into_iter().chain(nanos) {
        let (by_hand, by_chrono) = (rfc3339_by_hand(t), rfc3339_by_chrono(t));
        assert_eq!(by_hand, by_chrono);
        assert_eq!(by_chrono.len(), 27, "{by_chrono}");
    }
    let live = cairn_events::writer::now_rfc3339();
    assert_eq!(live.len(), 27, "{live}");
    assert_eq!(
        rfc3339_by_hand(DateTime::parse_from_rfc3339(&live).expect("RFC 3339").to_utc()),
        live
    );
    println!("formats agree byte for byte, e.g. {}", rfc3339_by_chrono(instants[0]));
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
        |_| drop(black_box(rfc3339_by_hand(Utc::now()))),
        |_| drop(black_box(rfc3339_by_chrono(Utc::now()))),
    );
}
