//! The bodies of the `ike_message`, `ike_payload` and `ike_responder` fuzz targets
//! (`fuzz/fuzz_targets/`) and their seeds, kept in the library so that an ordinary test
//! replays the committed fuzz inputs through the same code.
//!
//! [`ike_message`], [`ike_payload`] and [`ike_responder`] return `Err` with a description when an invariant is broken (the fuzz
//! target then panics); any panic inside is a bug too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

mod cert_text;
pub use cert_text::{dn_seeds, ike_dn, ike_import, pem};

use zeroize::Zeroizing;

use crate::consts::{exchange, flags, notify, payload as pt, protocol, transform};
use crate::dh::Group;
use crate::prf::PrfAlg;
use crate::sa::{
    respond_sa_init, Backoff, ChildSuite, CookieJar, ExpectSaInitResp, Identity, IkeConfig,
    InitContext, InitRejected, Path, Step,
};
use crate::sk::{Reassembly, ReassemblyLimits, SkCipher, SkSuite};
use crate::wire::{
    parse_chain, Attribute, Auth, CertData, Cp, CpAttribute, Delete, Eap, Encrypted,
    EncryptedFragment, Header, Id, Message, Notify, Payload, Proposal, TrafficSelector, Transform,
};

/// The suites the fuzz body tries to open every input with (fixed keys).
pub const FUZZ_SUITES: [SkSuite; 3] = [
    SkSuite {
        encr: 20,
        key_bits: 128,
        integ: None,
    },
    SkSuite {
        encr: 12,
        key_bits: 128,
        integ: Some(12),
    },
    SkSuite {
        encr: 28,
        key_bits: 256,
        integ: None,
    },
];

/// The fixed-key cipher the fuzz body and the SK seeds use for `suite`.
///
/// # Errors
/// Only for a suite [`SkCipher`] does not support.
pub fn fuzz_cipher(suite: SkSuite) -> Result<SkCipher, crate::CryptoError> {
    let k = suite.key_sizes()?;
    SkCipher::new(suite, &vec![0x5a; k.encr], &vec![0xa5; k.integ])
}

/// Parses `data` as an IKE message; a message that parses must emit and re-parse to the
/// same value. Any SK body is also tried as a plaintext payload chain, and the whole input
/// is opened with fixed keys for each suite of [`FUZZ_SUITES`] (a successful open must
/// yield inner payloads that re-emit).
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_message(data: &[u8]) -> Result<(), String> {
    if let Ok(m) = Message::parse(data) {
        let bytes = m
            .emit()
            .map_err(|e| format!("parsed message does not emit: {e}"))?;
        let again =
            Message::parse(&bytes).map_err(|e| format!("emitted message does not parse: {e}"))?;
        if again != m {
            return Err(format!("re-parse differs:\n{m:?}\n{again:?}"));
        }
        for p in &m.payloads {
            if let Payload::Sk(sk) = p {
                let _ = parse_chain(sk.first, sk.body, 0);
            }
        }
    }
    for suite in FUZZ_SUITES {
        let c = fuzz_cipher(suite).map_err(|e| format!("fixed cipher: {e}"))?;
        let mut plain = Zeroizing::new(Vec::new());
        if let Ok((_, inner)) = c.open(data, &mut plain) {
            let mut out = Vec::new();
            crate::wire::emit_chain(&inner, &mut out)
                .map_err(|e| format!("decrypted payloads do not emit: {e}"))?;
        }
        if let Ok((h, frag)) = c.open_fragment(data, &mut plain) {
            let mut r = Reassembly::new(h.message_id, ReassemblyLimits::default());
            let done = r.add(&h, frag, &plain);
            if frag.total == 1 && frag.first != pt::NONE {
                let Ok(Some((first, bytes))) = done else {
                    return Err(format!("single fragment not reassembled: {done:?}"));
                };
                let _ = parse_chain(first, &bytes, 0);
            }
        }
    }
    Ok(())
}

/// One payload body: the first input byte is the payload type, the rest its body. The
/// body goes through the payload parser alone (a one-payload chain); a body that parses
/// must emit and re-parse to the same value.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_payload(data: &[u8]) -> Result<(), String> {
    let Some((&ty, body)) = data.split_first() else {
        return Ok(());
    };
    let Ok(len) = u16::try_from(body.len() + 4) else {
        return Ok(());
    };
    let mut chain = vec![0, 0];
    chain.extend_from_slice(&len.to_be_bytes());
    chain.extend_from_slice(body);
    if let Ok(payloads) = parse_chain(ty, &chain, 0) {
        let mut out = Vec::new();
        let first = crate::wire::emit_chain(&payloads, &mut out)
            .map_err(|e| format!("parsed payload does not emit: {e}"))?;
        let again = parse_chain(first, &out, 0)
            .map_err(|e| format!("emitted payload does not parse: {e}"))?;
        if again != payloads {
            return Err(format!("re-parse differs:\n{payloads:?}\n{again:?}"));
        }
    }
    Ok(())
}

/// The committed seeds of the `ike_payload` target: each payload of [`every_payload`],
/// an SK and an SKF payload, as its type byte followed by its body.
///
/// # Errors
/// Only if a built-in payload cannot be encoded (a bug).
pub fn payload_seeds() -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut v = Vec::new();
    let mut all = every_payload();
    all.push(Payload::Sk(Encrypted {
        first: pt::IDI,
        body: &[0x2b; 24],
    }));
    all.push(Payload::Skf(EncryptedFragment {
        first: pt::IDI,
        number: 1,
        total: 3,
        body: &[0x2c; 24],
    }));
    for (i, p) in all.iter().enumerate() {
        let mut out = Vec::new();
        crate::wire::emit_chain(std::slice::from_ref(p), &mut out).map_err(|e| e.to_string())?;
        let mut seed = vec![p.ty()];
        seed.extend_from_slice(out.get(4..).unwrap_or(&[]));
        v.push((format!("{i:02}_type{}", p.ty()), seed));
    }
    Ok(v)
}

/// A fixed configuration for the stateful targets: AES-GCM, Curve25519, PSK.
#[must_use]
pub fn fuzz_config() -> IkeConfig {
    let any = vec![TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        end: IpAddr::V4(Ipv4Addr::BROADCAST),
    }];
    let id = Identity {
        id_type: crate::consts::id::FQDN,
        data: b"fuzz.example".to_vec(),
    };
    IkeConfig {
        suite: FUZZ_SUITES[0],
        prf: PrfAlg::HmacSha256,
        group: Group::Curve25519,
        child: ChildSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
            transport: false,
            pfs: false,
        },
        local_id: id.clone(),
        remote_id: Some(id),
        psk: Zeroizing::new(b"fuzz".to_vec()),
        ts_local: any.clone(),
        ts_remote: any,
        backoff: Backoff::default(),
        child_policy_required: false,
        max_child_sas: crate::sa::DEFAULT_MAX_CHILD_SAS,
        initial_contact: false,
        more_proposals: Vec::new(),
        child_more: Vec::new(),
        cert: None,
        fragment_len: None,
    }
}

/// The path the stateful targets' requests arrive on.
#[must_use]
pub fn fuzz_path() -> Path {
    Path {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 500),
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500),
    }
}

/// Largest reply to an IKE_SA_INIT request that must carry a cookie: header, one Notify
/// with 33 bytes of cookie. Anything larger would amplify spoofed traffic.
const MAX_COOKIE_REPLY: usize = 28 + 8 + 33;

/// An IKE_SA_INIT request (or anything else) at our responder. The first byte says
/// whether a cookie is required (bit 0); the rest is the datagram. Checks: a request that
/// opens a half-open SA gets an IKE_SA_INIT response for its SPI, and the same datagram
/// again gets the same bytes from the half-open SA's cache; an error reply is one
/// unprotected notification; under load no reply exceeds a COOKIE notification and no
/// request without a valid cookie opens an SA.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_responder(data: &[u8]) -> Result<(), String> {
    let Some((&mode, datagram)) = data.split_first() else {
        return Ok(());
    };
    let cfg = fuzz_config();
    let jar = CookieJar::new(&[0x2a; 32]);
    let ctx = InitContext {
        path: fuzz_path(),
        cookies: &jar,
        require_cookie: mode & 1 == 1,
    };
    let mut rng = SeedIvs(mode);
    match respond_sa_init(&cfg, datagram, &ctx, &mut rng) {
        Ok((half, reply)) => {
            let m = Message::parse(&reply).map_err(|e| format!("our response: {e}"))?;
            let req = Message::parse(datagram).map_err(|e| format!("accepted request: {e}"))?;
            if m.header.spi_i != req.header.spi_i || !m.header.is_response() {
                return Err("response not addressed to the request".into());
            }
            if ctx.require_cookie {
                let first = req.payloads.first();
                let ok = matches!(first, Some(Payload::Notify(n)) if n.ty == notify::COOKIE);
                if !ok {
                    return Err("an SA opened without a cookie under load".into());
                }
            }
            match half.handle(datagram, &mut rng) {
                Step::Stay {
                    reply: Some(again), ..
                } if again == reply => {}
                _ => return Err("retransmitted request not answered from the cache".into()),
            }
        }
        Err(InitRejected::Reply(_, reply)) => {
            let m = Message::parse(&reply).map_err(|e| format!("our error reply: {e}"))?;
            if !matches!(m.payloads.as_slice(), [Payload::Notify(_)]) {
                return Err("error reply is not one notification".into());
            }
            if ctx.require_cookie && reply.len() > MAX_COOKIE_REPLY {
                return Err(format!("{}-byte reply under load", reply.len()));
            }
        }
        Err(InitRejected::Drop(_)) => {}
    }
    Ok(())
}

/// The committed seeds of the `ike_responder` target: a genuine IKE_SA_INIT request
/// without and with a required cookie, and the request carrying its cookie.
///
/// # Errors
/// Only if a built-in exchange fails (a bug).
pub fn responder_seeds() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let now = std::time::Instant::now();
    let start =
        ExpectSaInitResp::start(fuzz_config(), fuzz_path().reversed(), now, &mut SeedIvs(7))
            .map_err(|x| e(&x))?;
    let req = start.request().to_vec();
    let jar = CookieJar::new(&[0x2a; 32]);
    let ctx = InitContext {
        path: fuzz_path(),
        cookies: &jar,
        require_cookie: true,
    };
    let Err(InitRejected::Reply(_, cookie_reply)) =
        respond_sa_init(&fuzz_config(), &req, &ctx, &mut SeedIvs(1))
    else {
        return Err("no cookie reply".into());
    };
    let Step::Stay {
        reply: Some(with_cookie),
        ..
    } = start.handle(&cookie_reply, now, &mut SeedIvs(3))
    else {
        return Err("no retry with the cookie".into());
    };
    Ok(vec![
        ("sa_init_plain", [&[0u8][..], &req].concat()),
        ("sa_init_needs_cookie", [&[1u8][..], &req].concat()),
        ("sa_init_with_cookie", [&[1u8][..], &with_cookie].concat()),
    ])
}

/// Deterministic IVs for the seeds (a counter): seeds must be reproducible.
struct SeedIvs(u8);

impl crate::Random for SeedIvs {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_add(1);
            *b = self.0;
        }
    }
}

fn header(exchange: u8, flags: u8, message_id: u32) -> Header {
    Header {
        spi_i: *b"\x11\x22\x33\x44\x55\x66\x77\x88",
        spi_r: if exchange == self::exchange::IKE_SA_INIT && flags & self::flags::RESPONSE == 0 {
            [0; 8]
        } else {
            *b"\x99\xaa\xbb\xcc\xdd\xee\xff\x01"
        },
        minor: 0,
        exchange,
        flags,
        message_id,
    }
}

const KE_X25519: [u8; 32] = [0x42; 32];
const NONCE: [u8; 32] = [0x4e; 32];

fn ike_proposal() -> Proposal<'static> {
    Proposal {
        num: 1,
        protocol: protocol::IKE,
        spi: &[],
        transforms: vec![
            Transform {
                ty: transform::ENCR,
                id: 20,
                attributes: vec![Attribute::Tv {
                    ty: transform::ATTR_KEY_LENGTH,
                    value: 256,
                }],
            },
            Transform {
                ty: transform::PRF,
                id: 5,
                attributes: vec![],
            },
            Transform {
                ty: transform::DH,
                id: 31,
                attributes: vec![],
            },
        ],
    }
}

/// One payload of every type this codec knows (plus a non-critical unknown one), in an
/// order that is a valid chain; the SK payload is left out (it must be last).
#[must_use]
pub fn every_payload() -> Vec<Payload<'static>> {
    vec![
        Payload::Sa(vec![
            ike_proposal(),
            Proposal {
                num: 2,
                protocol: protocol::ESP,
                spi: &[1, 2, 3, 4],
                transforms: vec![
                    Transform {
                        ty: transform::ENCR,
                        id: 12,
                        attributes: vec![
                            Attribute::Tv {
                                ty: transform::ATTR_KEY_LENGTH,
                                value: 128,
                            },
                            Attribute::Tlv {
                                ty: 99,
                                value: b"tlv",
                            },
                        ],
                    },
                    Transform {
                        ty: transform::INTEG,
                        id: 12,
                        attributes: vec![],
                    },
                    Transform {
                        ty: transform::ESN,
                        id: 0,
                        attributes: vec![],
                    },
                ],
            },
        ]),
        Payload::Ke {
            group: 31,
            data: &KE_X25519,
        },
        Payload::IdI(Id {
            id_type: crate::consts::id::FQDN,
            data: b"alice.example",
        }),
        Payload::IdR(Id {
            id_type: crate::consts::id::IPV4_ADDR,
            data: &[192, 0, 2, 1],
        }),
        Payload::Cert(CertData {
            encoding: 4,
            data: b"\x30\x03\x02\x01\x00",
        }),
        Payload::CertReq(CertData {
            encoding: 4,
            data: &[0xab; 20],
        }),
        Payload::Auth(Auth {
            method: crate::consts::auth::SHARED_KEY_MIC,
            data: &[0xcd; 32],
        }),
        Payload::Nonce(&NONCE),
        Payload::Notify(Notify {
            protocol: protocol::ESP,
            spi: &[9, 9, 9, 9],
            ty: notify::USE_TRANSPORT_MODE,
            data: &[],
        }),
        Payload::Delete(Delete {
            protocol: protocol::ESP,
            spi_size: 4,
            spis: &[0, 0, 1, 0, 0, 0, 2, 0],
        }),
        Payload::Delete(Delete {
            protocol: protocol::IKE,
            spi_size: 0,
            spis: &[],
        }),
        Payload::VendorId(b"Ironswan"),
        Payload::TsI(vec![TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)),
            end: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255)),
        }]),
        Payload::TsR(vec![
            TrafficSelector {
                ip_protocol: 6,
                start_port: 443,
                end_port: 443,
                start: IpAddr::V6(Ipv6Addr::LOCALHOST),
                end: IpAddr::V6(Ipv6Addr::LOCALHOST),
            },
            TrafficSelector {
                ip_protocol: 17,
                start_port: 500,
                end_port: 500,
                start: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                end: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            },
        ]),
        Payload::Cp(Cp {
            cfg_type: 1,
            attributes: vec![
                CpAttribute { ty: 1, value: &[] },
                CpAttribute {
                    ty: 3,
                    value: &[192, 0, 2, 53],
                },
            ],
        }),
        Payload::Eap(Eap {
            code: 1,
            identifier: 7,
            data: &[1],
        }),
        Payload::Eap(Eap {
            code: 3,
            identifier: 7,
            data: &[],
        }),
        Payload::Unknown {
            ty: 200,
            body: b"skip me",
        },
    ]
}

/// The committed seeds of the `ike_message` target: (file stem, bytes).
///
/// # Errors
/// Only if a built-in message cannot be built (a bug).
pub fn seed_messages() -> Result<Vec<(&'static str, Vec<u8>)>, String> {
    let e = |x: &dyn std::fmt::Display| x.to_string();
    let mut v = Vec::new();
    let init = Message {
        header: header(exchange::IKE_SA_INIT, flags::INITIATOR, 0),
        payloads: vec![
            Payload::Sa(vec![ike_proposal()]),
            Payload::Ke {
                group: 31,
                data: &KE_X25519,
            },
            Payload::Nonce(&NONCE),
            Payload::Notify(Notify {
                protocol: 0,
                spi: &[],
                ty: notify::IKEV2_FRAGMENTATION_SUPPORTED,
                data: &[],
            }),
        ],
    };
    v.push(("ike_sa_init_request", init.emit().map_err(|x| e(&x))?));
    let all = Message {
        header: header(exchange::INFORMATIONAL, flags::RESPONSE, 1),
        payloads: every_payload(),
    };
    v.push(("every_payload_clear", all.emit().map_err(|x| e(&x))?));
    for (i, suite) in FUZZ_SUITES.into_iter().enumerate() {
        let c = fuzz_cipher(suite).map_err(|x| e(&x))?;
        let iv = vec![0x17; c.iv_len()];
        let inner = every_payload();
        let m = c
            .seal(
                &header(exchange::IKE_AUTH, flags::INITIATOR, 1),
                &inner,
                &iv,
            )
            .map_err(|x| e(&x))?;
        v.push((["sk_gcm", "sk_cbc_sha256", "sk_chacha20"][i], m));
    }
    for (i, suite) in FUZZ_SUITES.into_iter().enumerate() {
        let c = fuzz_cipher(suite).map_err(|x| e(&x))?;
        let frags = c
            .seal_fragments(
                &header(exchange::IKE_AUTH, flags::INITIATOR, 1),
                &every_payload(),
                if i == 0 { 1200 } else { 240 },
                &mut SeedIvs(0),
            )
            .map_err(|x| e(&x))?;
        let names = [
            ["skf_gcm_1_of_1", "", ""],
            ["skf_cbc_1", "skf_cbc_2", "skf_cbc_3"],
            ["skf_chacha20_1", "skf_chacha20_2", "skf_chacha20_3"],
        ];
        for (name, f) in names[i].iter().zip(frags) {
            if !name.is_empty() {
                v.push((*name, f));
            }
        }
    }
    let frag = Message {
        header: header(exchange::IKE_AUTH, flags::INITIATOR, 1),
        payloads: vec![Payload::Skf(EncryptedFragment {
            first: pt::IDI,
            number: 1,
            total: 2,
            body: &[0x33; 48],
        })],
    };
    v.push(("skf_first_of_two", frag.emit().map_err(|x| e(&x))?));
    let sk_plain = Message {
        header: header(exchange::INFORMATIONAL, 0, 2),
        payloads: vec![Payload::Sk(Encrypted {
            first: pt::NONE,
            body: &[0; 40],
        })],
    };
    v.push(("sk_empty_inner", sk_plain.emit().map_err(|x| e(&x))?));
    Ok(v)
}

/// The body of the `ike_cert` fuzz target: the input as a DER X.509 certificate (the
/// content of a CERT payload), as an RFC 7427 AlgorithmIdentifier and as a private key.
/// A certificate that parses must keep its bytes, its key must survive a signature
/// check of itself and an AUTH check over the input, and an AlgorithmIdentifier that
/// parses must re-encode to one that parses to the same algorithm.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_cert(data: &[u8]) -> Result<(), String> {
    use crate::cert::{verify_auth, Certificate, PrivateKey, SigAlg};
    if let Ok(c) = Certificate::from_der(data) {
        if c.der() != data {
            return Err("a parsed certificate is not its input".into());
        }
        if c.tbs().first() != Some(&0x30) || c.tbs().len() >= data.len() {
            return Err("tbsCertificate is not a SEQUENCE inside the certificate".into());
        }
        let _ = (
            Certificate::name_to_string(&c.subject),
            Certificate::name_to_string(&c.issuer),
            c.spki_sha1(),
            c.is_ca(),
            c.may_sign_auth(),
        );
        if let Some(k) = &c.key {
            let _ = (k.describe(), c.is_signed_by(k));
            for method in [1, 9, 10, 14] {
                if verify_auth(k, method, data, data).is_ok() {
                    return Err(format!(
                        "method {method}: the input verified as its own AUTH"
                    ));
                }
            }
        }
    }
    if let Ok(a) = SigAlg::from_algorithm_identifier(data) {
        let again = SigAlg::from_algorithm_identifier(&a.algorithm_identifier())
            .map_err(|e| format!("{a:?} re-encoded does not parse: {e}"))?;
        if again != a {
            return Err(format!("{a:?} re-encoded parses as {again:?}"));
        }
    }
    let _ = PrivateKey::from_der(data);
    Ok(())
}

/// Generated seeds of `ike_cert`: every AlgorithmIdentifier we emit (the example adds
/// the test PKI's certificates, `crates/ike/tests/certs/*.crt`).
#[must_use]
pub fn cert_seeds() -> Vec<(String, Vec<u8>)> {
    use crate::cert::{Hash, SigAlg};
    Hash::ALL
        .iter()
        .flat_map(|&h| [SigAlg::RsaPkcs1(h), SigAlg::RsaPss(h), SigAlg::Ecdsa(h)])
        .map(|a| {
            (
                format!("alg_{a:?}").to_lowercase().replace(['(', ')'], "_"),
                a.algorithm_identifier(),
            )
        })
        .collect()
}

/// IKE fragmentation round trip (RFC 7383), the body of the `ike_fragments` target. The
/// first input byte sets the fragment size limit (84..=1104 bytes), the second seeds the
/// delivery order; the rest is the data of a notification sealed into fragments with
/// each suite of [`FUZZ_SUITES`]. The fragments are delivered in a drawn order with
/// duplicates, each opened and added to a [`Reassembly`]: no fragment may exceed the
/// limit, the message must complete exactly when the last missing fragment arrives (not
/// before, duplicates refused) and come back equal; then the raw input is also fed as
/// (number, total, first, content) records into a small reassembly, which must never
/// keep more than its limits.
///
/// # Errors
/// A description of the broken invariant.
pub fn ike_fragments(data: &[u8]) -> Result<(), String> {
    let [size, order, body @ ..] = data else {
        return Ok(());
    };
    let body = &body[..body.len().min(4000)];
    let max_len = 84 + usize::from(*size) * 4;
    let h = header(exchange::IKE_AUTH, flags::INITIATOR, 1);
    let inner = [Payload::Notify(Notify {
        protocol: 0,
        spi: &[],
        ty: notify::INITIAL_CONTACT,
        data: body,
    })];
    let mut draw = u32::from(*order) | 1;
    for suite in FUZZ_SUITES {
        let c = fuzz_cipher(suite).map_err(|e| format!("fixed cipher: {e}"))?;
        let frags = c
            .seal_fragments(&h, &inner, max_len, &mut SeedIvs(*order))
            .map_err(|e| format!("seal_fragments({max_len}): {e}"))?;
        if let Some(f) = frags.iter().find(|f| f.len() > max_len) {
            return Err(format!("fragment of {} bytes over {max_len}", f.len()));
        }
        let mut r = Reassembly::new(1, ReassemblyLimits::default());
        if frags.len() > usize::from(ReassemblyLimits::default().max_fragments) {
            // Beyond the receiver's bound: every fragment is refused, nothing is kept.
            let mut plain = Zeroizing::new(Vec::new());
            let (fh, frag) = c
                .open_fragment(&frags[0], &mut plain)
                .map_err(|e| format!("own fragment does not open: {e}"))?;
            match r.add(&fh, frag, &plain) {
                Err(crate::sk::FragmentError::TooManyFragments) => continue,
                other => return Err(format!("{} fragments: {other:?}", frags.len())),
            }
        }
        let mut seen = vec![false; frags.len()];
        let mut done = None;
        for _ in 0..frags.len() * 4 {
            draw = draw.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let k = (draw >> 8) as usize % frags.len();
            let mut plain = Zeroizing::new(Vec::new());
            let (fh, frag) = c
                .open_fragment(&frags[k], &mut plain)
                .map_err(|e| format!("own fragment does not open: {e}"))?;
            let got = r.add(&fh, frag, &plain);
            let fresh = !seen[k];
            seen[k] = true;
            match got {
                Ok(Some(whole)) if fresh && seen.iter().all(|s| *s) => done = Some(whole),
                Ok(None) if fresh && !seen.iter().all(|s| *s) => {}
                Err(crate::sk::FragmentError::Duplicate) if !fresh => {}
                other => return Err(format!("fragment {k} (fresh {fresh}): {other:?}")),
            }
            if done.is_some() {
                break;
            }
        }
        if let Some((first, bytes)) = done {
            let back = parse_chain(first, &bytes, 0).map_err(|e| e.to_string())?;
            if back.as_slice() != inner.as_slice() {
                return Err(format!("reassembled {back:?}"));
            }
        }
    }
    // Raw records: 2+2+1+1 header bytes then content of the given length.
    let limits = ReassemblyLimits {
        max_fragments: 8,
        max_bytes: 512,
    };
    let mut r = Reassembly::new(1, limits);
    let mut rest = data;
    while let [n0, n1, t0, t1, first, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let frag = crate::sk::Fragment {
            number: u16::from_be_bytes([*n0, *n1]),
            total: u16::from_be_bytes([*t0, *t1]),
            first: *first,
        };
        if let Ok(Some((_, all))) = r.add(&h, frag, &tail[..len]) {
            if all.len() > limits.max_bytes {
                return Err(format!("{} bytes reassembled", all.len()));
            }
            r = Reassembly::new(1, limits);
        }
        rest = &tail[len..];
    }
    Ok(())
}

/// Seeds of the `ike_fragments` target: small and large messages, small and large limits.
#[must_use]
pub fn fragment_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let text = |n: usize| (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>();
    vec![
        ("tiny_limit_small", [&[0u8, 3][..], &text(40)].concat()),
        ("tiny_limit_large", [&[0u8, 7][..], &text(1500)].concat()),
        ("mid_limit", [&[60u8, 9][..], &text(900)].concat()),
        ("one_fragment", [&[255u8, 1][..], &text(100)].concat()),
        ("empty", vec![10, 2]),
    ]
}
