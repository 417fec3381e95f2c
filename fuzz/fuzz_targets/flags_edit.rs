//! Setting a rollout's percentage in arbitrary text never panics; on a valid
//! config the result parses to that percentage and only the number changed.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::check_flags_edit(data));
