//! Policy decisions on the packet path allocate nothing: building keys from packet bytes, the
//! outbound decision, the cleartext and protected inbound checks (on an established latch), the
//! reply decision and loopback. The engine is also `Send + Sync` (shared by data-plane threads).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use ipsec_core::engine::MAX_BUNDLE;
use ipsec_core::spd::{
    Action, AlgSpec, CompiledSpd, Dir, Family, PacketKey, PolicyDir, PolicySet, Prefix, Protection,
    Rule, Selector, SocketId, SocketInfo, Spd,
};
use ipsec_core::{InboundOk, KeyMaterial, Proto, SaConfig, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn shareable<T: Send + Sync>() {}

// One test only: the counting allocator sees every thread, and the harness runs tests in
// parallel.
#[test]
fn decisions_do_not_allocate() {
    shareable::<Spd>();
    shareable::<CompiledSpd>();
    let mut rules = Vec::new();
    for i in 0..200u32 {
        rules.push(Rule::new(
            Selector {
                raddr: Some(Prefix {
                    addr: IpAddr::V4((0x0a00_0000 + (i << 8)).into()),
                    len: 24,
                }),
                ..Selector::any()
            },
            PolicyDir::Both,
            if i % 3 == 0 {
                Action::Drop
            } else {
                Action::ipsec(Protection::esp(AlgSpec::of(EncrAlg::AesCbc)))
            },
        ));
    }
    let mut spd = Spd::with_policy(PolicySet::from_rules(rules)).unwrap();
    let sid = SocketId(1);
    spd.socket_open(
        sid,
        SocketInfo {
            family: Family::V4,
            proto: 17,
            privileged: false,
        },
    )
    .unwrap();
    spd.socket_connected(
        sid,
        SocketAddr::new(a("192.0.2.1"), 5000),
        SocketAddr::new(a("10.0.1.9"), 53),
    )
    .unwrap();
    let mut db = Sadb::new();
    let mut c = SaConfig::new(Proto::Esp, 0x1000, Some(a("10.0.1.9")), a("192.0.2.1"));
    c.encr_alg = Some(EncrAlg::AesCbc);
    c.encr_key = KeyMaterial::new(&[1u8; 16]);
    c.auth_alg = Some(AuthAlg::HmacSha256);
    c.auth_key = KeyMaterial::new(&[1u8; 32]);
    let id = db.add(c, 0).unwrap();
    let mut sas = [None; MAX_BUNDLE];
    sas[0] = Some(id);
    let ok = InboundOk {
        sas,
        natt: false,
        tunnel: false,
    };
    // A UDP packet 192.0.2.1:5000 -> 10.0.1.9:53.
    let mut pkt = vec![
        0x45u8, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 10, 0, 1, 9,
    ];
    pkt.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
    let in_key = PacketKey::udp(Dir::In, a("10.0.1.9"), a("192.0.2.1"), 53, 5000).with_socket(sid);
    // Warm up: the first protected packet latches the connection's identities.
    let first = spd.inbound_protected(&in_key, &ok, &db);
    assert_eq!(first.verdict, ipsec_core::spd::Inbound::Accept);

    let reg = Region::new(GLOBAL);
    for i in 0..2000u32 {
        let k = PacketKey::from_ip_packet(&pkt, Dir::Out).unwrap();
        black_box(spd.outbound(&k));
        black_box(spd.outbound(&k.with_socket(sid)));
        let other = PacketKey::tcp(
            Dir::In,
            IpAddr::V4((0x0a00_0000 + ((i % 256) << 8) + 7).into()),
            a("192.0.2.1"),
            80,
            40000,
        );
        black_box(spd.inbound_clear(&other));
        let d = spd.inbound_protected(&in_key, &ok, &db);
        black_box(spd.reply_outbound(&in_key.reply(), &d.protection));
        black_box(spd.loopback(&k, None));
    }
    let stats = reg.change();
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
