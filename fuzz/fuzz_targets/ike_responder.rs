//! IKE_SA_INIT requests at the responder, with and without a required cookie: see
//! `ike::fuzz_support::ike_responder`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_responder(data) {
        panic!("ike responder invariant broken: {what}");
    }
});
