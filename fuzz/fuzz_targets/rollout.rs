//! Plan, state, duration and timestamp parsers never panic; what parses round-trips.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::check_rollout_text(data));
