//! One IKEv2 payload body through its parser, emitter and parser again: see
//! `ike::fuzz_support::ike_payload`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_payload(data) {
        panic!("ike payload invariant broken: {what}");
    }
});
