//! `ikev2cert import` input (PEM blocks or one DER certificate or key): see
//! `ike::fuzz_support::ike_import`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_import(data) {
        panic!("ike import invariant broken: {what}");
    }
});
