//! flagd documents and their targeting: loading never panics and never
//! hangs (nesting and `$ref` expansion are bounded at load); a loaded
//! document evaluates every flag to one of its variants.
#![no_main]

#[path = "../../tests/support/flagd_fuzz.rs"]
mod flagd_fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| flagd_fuzz::check_flagd(data));
