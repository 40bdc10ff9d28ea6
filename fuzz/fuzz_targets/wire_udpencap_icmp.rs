//! UDP-encapsulation classification, UDP, ICMP, ICMPv6: see `ipsec_wire::fuzz_support::wire_udpencap_icmp`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ipsec_wire::fuzz_support::wire_udpencap_icmp(data) {
        panic!("ipsec-wire invariant broken: {what}");
    }
});
