//! A `--notify` document or an outbox line never panics the parsers; what
//! parses keeps its invariants (no secret in Debug, unique channels, bounds).
#![no_main]

#[path = "../../tests/support/notify_fuzz.rs"]
mod notify_fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| notify_fuzz::check_notify_config(data));
