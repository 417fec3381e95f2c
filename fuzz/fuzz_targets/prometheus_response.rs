//! The Prometheus API response parser and the template renderer never panic.
#![no_main]

#[path = "../../tests/support/fuzz_checks.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::check_prometheus_response(data));
