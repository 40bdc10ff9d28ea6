//! Property tests of the message codec: random messages with every payload type survive
//! emit -> parse -> emit unchanged, and random corruptions of valid messages never panic
//! the parser and, when they parse, re-emit to something that parses to the same value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ike::fuzz_support::{ike_message, seed_messages};
use ike::wire::{
    Attribute, Auth, CertData, Cp, CpAttribute, Delete, Eap, Encrypted, EncryptedFragment, Header,
    Id, Message, Notify, Payload, Proposal, TrafficSelector, Transform,
};
use proptest::prelude::*;

/// An attribute: type and TV value or TLV bytes.
type AttrSpec = (u16, Result<u16, Vec<u8>>);
/// A transform: type, ID, attributes.
type TransformSpec = (u8, u16, Vec<AttrSpec>);
/// A proposal: number, protocol, SPI, transforms.
type ProposalSpec = (u8, u8, Vec<u8>, Vec<TransformSpec>);
/// A selector: protocol, ports, IPv4 range or else the IPv6 range.
type SelectorSpec = (u8, u16, u16, Option<([u8; 4], [u8; 4])>, [u8; 16], [u8; 16]);

/// An owned description of a payload; `payload()` borrows from it.
#[derive(Clone, Debug)]
enum Spec {
    Sa(Vec<ProposalSpec>),
    Ke(u16, Vec<u8>),
    Id(bool, u8, Vec<u8>),
    Cert(bool, u8, Vec<u8>),
    Auth(u8, Vec<u8>),
    Nonce(Vec<u8>),
    Notify(u8, Vec<u8>, u16, Vec<u8>),
    Delete(u8, u8, Vec<u8>),
    Vendor(Vec<u8>),
    Ts(bool, Vec<SelectorSpec>),
    Cp(u8, Vec<(u16, Vec<u8>)>),
    Eap(u8, u8, Vec<u8>),
    Unknown(u8, Vec<u8>),
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn spec() -> impl Strategy<Value = Spec> {
    let attr = (
        0u16..0x8000,
        prop_oneof![any::<u16>().prop_map(Ok), bytes(6).prop_map(Err)],
    );
    let transform = (1u8..6, any::<u16>(), prop::collection::vec(attr, 0..3));
    let proposal = (
        any::<u8>(),
        1u8..4,
        prop_oneof![Just(vec![]), Just(vec![1, 2, 3, 4]), bytes(9)],
        prop::collection::vec(transform, 1..5),
    );
    let sel = (
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        prop::option::of(any::<([u8; 4], [u8; 4])>()),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
    );
    prop_oneof![
        prop::collection::vec(proposal, 1..4).prop_map(Spec::Sa),
        (any::<u16>(), bytes(300)).prop_map(|(g, d)| Spec::Ke(g, d)),
        (any::<bool>(), any::<u8>(), bytes(40)).prop_map(|(r, t, d)| Spec::Id(r, t, d)),
        (any::<bool>(), any::<u8>(), bytes(40)).prop_map(|(r, t, d)| Spec::Cert(r, t, d)),
        (any::<u8>(), bytes(64)).prop_map(|(m, d)| Spec::Auth(m, d)),
        bytes(64).prop_map(Spec::Nonce),
        (any::<u8>(), bytes(9), any::<u16>(), bytes(20))
            .prop_map(|(p, s, t, d)| Spec::Notify(p, s, t, d)),
        (
            any::<u8>(),
            prop_oneof![Just(0u8), Just(4), Just(8)],
            0usize..5
        )
            .prop_map(|(p, size, n)| Spec::Delete(
                p,
                size,
                vec![0x5c; usize::from(size) * n]
            )),
        bytes(30).prop_map(Spec::Vendor),
        (any::<bool>(), prop::collection::vec(sel, 1..4)).prop_map(|(r, v)| Spec::Ts(r, v)),
        (
            any::<u8>(),
            prop::collection::vec((0u16..0x8000, bytes(8)), 0..4)
        )
            .prop_map(|(t, a)| Spec::Cp(t, a)),
        (1u8..5, any::<u8>(), bytes(20)).prop_map(|(c, i, mut d)| {
            if c <= 2 && d.is_empty() {
                d.push(1);
            }
            if c > 2 {
                d.clear();
            }
            Spec::Eap(c, i, d)
        }),
        (prop_oneof![1u8..33, 49u8..53, 54u8..=255], bytes(20))
            .prop_map(|(t, d)| Spec::Unknown(t, d)),
    ]
}

fn payload(s: &Spec) -> Payload<'_> {
    match s {
        Spec::Sa(props) => Payload::Sa(
            props
                .iter()
                .map(|(num, protocol, spi, ts)| Proposal {
                    num: *num,
                    protocol: *protocol,
                    spi,
                    transforms: ts
                        .iter()
                        .map(|(ty, id, attrs)| Transform {
                            ty: *ty,
                            id: *id,
                            attributes: attrs
                                .iter()
                                .map(|(t, v)| match v {
                                    Ok(value) => Attribute::Tv {
                                        ty: *t,
                                        value: *value,
                                    },
                                    Err(value) => Attribute::Tlv { ty: *t, value },
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
        ),
        Spec::Ke(group, data) => Payload::Ke {
            group: *group,
            data,
        },
        Spec::Id(r, t, d) => {
            let id = Id {
                id_type: *t,
                data: d,
            };
            if *r {
                Payload::IdR(id)
            } else {
                Payload::IdI(id)
            }
        }
        Spec::Cert(r, e, d) => {
            let c = CertData {
                encoding: *e,
                data: d,
            };
            if *r {
                Payload::CertReq(c)
            } else {
                Payload::Cert(c)
            }
        }
        Spec::Auth(m, d) => Payload::Auth(Auth {
            method: *m,
            data: d,
        }),
        Spec::Nonce(d) => Payload::Nonce(d),
        Spec::Notify(p, s, t, d) => Payload::Notify(Notify {
            protocol: *p,
            spi: s,
            ty: *t,
            data: d,
        }),
        Spec::Delete(p, size, spis) => Payload::Delete(Delete {
            protocol: *p,
            spi_size: *size,
            spis,
        }),
        Spec::Vendor(d) => Payload::VendorId(d),
        Spec::Ts(r, v) => {
            let sel: Vec<TrafficSelector> = v
                .iter()
                .map(|(proto, sp, ep, v4, a6, b6)| {
                    let (start, end) = match v4 {
                        Some((a, b)) => (
                            IpAddr::V4(Ipv4Addr::from(*a)),
                            IpAddr::V4(Ipv4Addr::from(*b)),
                        ),
                        None => (
                            IpAddr::V6(Ipv6Addr::from(*a6)),
                            IpAddr::V6(Ipv6Addr::from(*b6)),
                        ),
                    };
                    TrafficSelector {
                        ip_protocol: *proto,
                        start_port: *sp,
                        end_port: *ep,
                        start,
                        end,
                    }
                })
                .collect();
            if *r {
                Payload::TsR(sel)
            } else {
                Payload::TsI(sel)
            }
        }
        Spec::Cp(t, attrs) => Payload::Cp(Cp {
            cfg_type: *t,
            attributes: attrs
                .iter()
                .map(|(ty, value)| CpAttribute { ty: *ty, value })
                .collect(),
        }),
        Spec::Eap(code, identifier, data) => Payload::Eap(Eap {
            code: *code,
            identifier: *identifier,
            data,
        }),
        Spec::Unknown(ty, body) => Payload::Unknown { ty: *ty, body },
    }
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<[u8; 8]>(),
        any::<[u8; 8]>(),
        0u8..16,
        any::<u8>(),
        any::<u8>(),
        any::<u32>(),
    )
        .prop_map(
            |(spi_i, spi_r, minor, exchange, flags, message_id)| Header {
                spi_i,
                spi_r,
                minor,
                exchange,
                flags,
                message_id,
            },
        )
}

/// What ends the chain: nothing, an SK payload or an SKF payload.
fn tail() -> impl Strategy<Value = Option<(bool, u8, u16, u16, Vec<u8>)>> {
    prop::option::of((any::<bool>(), any::<u8>(), 1u16..10, 0u16..10, bytes(60)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn emit_parse_emit(h in header(), specs in prop::collection::vec(spec(), 0..8), end in tail()) {
        let mut payloads: Vec<Payload<'_>> = specs.iter().map(payload).collect();
        if let Some((frag, first, number, extra, body)) = &end {
            payloads.push(if *frag {
                let total = number + extra;
                Payload::Skf(EncryptedFragment {
                    first: if *number == 1 { *first } else { 0 },
                    number: *number,
                    total,
                    body,
                })
            } else {
                Payload::Sk(Encrypted { first: *first, body })
            });
        }
        let m = Message { header: h, payloads };
        let b = m.emit().unwrap();
        let p = Message::parse(&b).unwrap();
        prop_assert_eq!(&p, &m);
        prop_assert_eq!(p.emit().unwrap(), b);
    }

    #[test]
    fn corrupted_seeds_never_panic(seed in 0usize..14, edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6), cut in any::<prop::sample::Index>()) {
        let seeds = seed_messages().unwrap();
        let mut b = seeds[seed % seeds.len()].1.clone();
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        ike_message(&b).map_err(TestCaseError::fail)?;
        let n = cut.index(b.len() + 1);
        ike_message(&b[..n]).map_err(TestCaseError::fail)?;
    }
}
