//! IKE_SA_INIT + IKE_AUTH between our initiator and our responder, in memory: both ends
//! derive the same IKE SA and Child SA keys for every supported group and suite; lost
//! messages are retransmitted bit for bit with exponential back-off; the responder
//! answers retransmitted requests from its cache; bad PSKs, identities, proposals, groups,
//! tampered messages and missing payloads never give an established SA.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ike::consts::{exchange, flags, id, notify};
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{
    respond_sa_init, Backoff, ChildSuite, CookieJar, ExpectAuthReq, ExpectAuthResp,
    ExpectSaInitResp, Identity, IkeConfig, IkeError, InitContext, InitRejected, Path, Step,
};
use ike::sk::SkSuite;
use ike::wire::{Message, Payload, TrafficSelector};
use zeroize::Zeroizing;

mod common;
use common::*;

#[test]
fn every_group_and_suite_establishes_with_matching_child_keys() {
    let suites = [
        GCM,
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
    let children = [
        gcm_child(),
        ChildSuite {
            encr: 12,
            key_bits: 256,
            integ: Some(12),
            transport: false,
            pfs: false,
        },
        ChildSuite {
            encr: 28,
            key_bits: 256,
            integ: None,
            transport: false,
            pfs: false,
        },
    ];
    let mut n = 0;
    for (k, group) in [
        Group::Curve25519,
        Group::Ecp256,
        Group::Ecp384,
        Group::Modp2048,
    ]
    .into_iter()
    .enumerate()
    {
        for (j, suite) in suites.into_iter().enumerate() {
            let child = children[(j + k) % children.len()];
            let (ci, cr) = configs(suite, group, child);
            let r = handshake(ci, cr, 7 + n);
            assert_match(&r);
            let sizes = match child.integ {
                Some(_) => (child.key_bits as usize / 8, 32),
                None => (child.key_bits as usize / 8 + 4, 0),
            };
            assert_eq!(r.init.child().unwrap().keys.encr_i.len(), sizes.0);
            assert_eq!(r.init.child().unwrap().keys.integ_r.len(), sizes.1);
            n += 1;
        }
    }
    for prf in [PrfAlg::HmacSha384, PrfAlg::HmacSha512] {
        let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
        ci.prf = prf;
        cr.prf = prf;
        let r = handshake(ci, cr, 99);
        assert_match(&r);
        assert_eq!(r.init.ike_keys().sk_d.len(), prf.output_len());
    }
}

#[test]
fn initiator_retransmits_bit_identical_with_exponential_backoff() {
    let (mut ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.backoff = Backoff {
        first: Duration::from_secs(1),
        max_sends: 4,
    };
    let t0 = Instant::now();
    let mut ri = TestRng(1);
    let mut rr = TestRng(2);
    let mut i1 = ExpectSaInitResp::start(ci, i_path(), t0, &mut ri).unwrap();
    let first = i1.request().to_vec();
    // Spurious or early timeouts send nothing.
    assert_eq!(i1.handle_timeout(t0).unwrap(), None);
    assert_eq!(
        i1.handle_timeout(t0 + Duration::from_millis(999)).unwrap(),
        None
    );
    let mut sent_at = Vec::new();
    let mut now = t0;
    for _ in 0..3 {
        now = i1.poll_timeout();
        let again = i1.handle_timeout(now).unwrap().unwrap();
        assert_eq!(again, &first[..], "retransmission is bit-identical");
        sent_at.push(now - t0);
    }
    assert_eq!(
        sent_at,
        [1, 3, 7].map(Duration::from_secs),
        "waits double: 1 s, 2 s, 4 s"
    );
    assert_eq!(i1.poll_timeout() - t0, Duration::from_secs(15));
    // The 4th send was the last: the next timeout ends the attempt.
    assert_eq!(i1.handle_timeout(i1.poll_timeout()), Err(IkeError::Timeout));

    // The responder answers the retransmitted request from its cache, bit for bit.
    let (r1, resp1) = respond_sa_init(&cr, &first, &ctx(), &mut rr).unwrap();
    let (r1, again, dropped) = stayed(r1.handle(&first, &mut rr));
    assert_eq!(again.unwrap(), resp1);
    assert!(dropped.is_none());

    // IKE_AUTH: the request is retransmitted, the responder answers both copies with
    // the same bytes, and a duplicate response is ignored by the established initiator.
    let (mut i2, req) = next(i1.handle(&resp1, now, &mut ri));
    let req = req.unwrap();
    let t = i2.poll_timeout();
    assert_eq!(i2.handle_timeout(t).unwrap().unwrap(), &req[..]);
    let (mut resp, reply1) = next(r1.handle(&req, &mut rr));
    let out = resp.handle(&req, &mut rr).unwrap();
    assert_eq!(
        reply1, out.reply,
        "cached IKE_AUTH response resent bit for bit"
    );
    assert_eq!(out.event, None);
    // Something else arriving at the responder gets no response (it never retransmits
    // on its own).
    assert!(resp.handle(b"not a retransmission", &mut rr).is_err());
    let (init, _) = next(i2.handle(&reply1.unwrap()));
    assert_match(&Run { init, resp });
}

#[test]
fn window_of_one_and_wrong_messages_are_dropped() {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(3), TestRng(4));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    // The initiator ignores its own request echoed back and garbage.
    let req = i1.request().to_vec();
    let (i1, _, d) = stayed(i1.handle(&req, now, &mut ri));
    assert!(matches!(d, Some(IkeError::Unexpected(_))));
    let (i1, _, d) = stayed(i1.handle(&[0u8; 10], now, &mut ri));
    assert!(matches!(d, Some(IkeError::Parse(_))));
    let (r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, auth_req) = next(i1.handle(&resp1, now, &mut ri));
    let auth_req = auth_req.unwrap();
    // A request with another message ID (the window is 1: only ID 1 is accepted).
    let mut m = auth_req.clone();
    m[20..24].copy_from_slice(&2u32.to_be_bytes());
    let (r1, reply, d) = stayed(r1.handle(&m, &mut rr));
    assert!(reply.is_none());
    assert!(d.is_some(), "message ID 2 dropped");
    // A tampered IKE_AUTH response is dropped and the genuine one still accepted.
    let (resp, auth_resp) = next(r1.handle(&auth_req, &mut rr));
    let auth_resp = auth_resp.unwrap();
    let mut bad = auth_resp.clone();
    let n = bad.len();
    bad[n - 20] ^= 1;
    let (i2, _, d) = stayed(i2.handle(&bad));
    assert_eq!(d, Some(IkeError::Crypto(ike::CryptoError::IntegrityFailed)));
    let (init, _) = next(i2.handle(&auth_resp));
    assert_match(&Run { init, resp });
}

fn auth_fails(ci: IkeConfig, cr: IkeConfig) -> (IkeError, Option<u16>) {
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(5), TestRng(6));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&resp1, now, &mut ri));
    match r1.handle(&req.unwrap(), &mut rr) {
        Step::Failed { error, reply } => {
            // The responder's protected error notify makes the initiator fail too.
            let (e2, _) = failed(i2.handle(&reply.unwrap()));
            let IkeError::PeerNotify(n) = e2 else {
                panic!("{e2}")
            };
            (error, Some(n))
        }
        Step::Next { reply, .. } => {
            let (e, _) = failed(i2.handle(&reply.unwrap()));
            (e, None)
        }
        Step::Stay { dropped, .. } => panic!("stayed {dropped:?}"),
    }
}

#[test]
fn authentication_failures_never_establish() {
    // Wrong PSK at the initiator: the responder rejects the AUTH.
    let (mut ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.psk = Zeroizing::new(b"wrong".to_vec());
    assert_eq!(
        auth_fails(ci, cr),
        (
            IkeError::AuthenticationFailed,
            Some(notify::AUTHENTICATION_FAILED)
        )
    );
    // The responder claims an identity the initiator does not expect: the initiator
    // refuses the established SA even though the AUTH value is right.
    let (mut ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.remote_id = Some(Identity {
        id_type: id::FQDN,
        data: b"mallory.example".to_vec(),
    });
    assert_eq!(auth_fails(ci, cr), (IkeError::AuthenticationFailed, None));
    // The initiator is not who the responder expects.
    let (ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    cr.remote_id = Some(Identity {
        id_type: id::FQDN,
        data: b"carol.example".to_vec(),
    });
    assert_eq!(
        auth_fails(ci, cr),
        (
            IkeError::AuthenticationFailed,
            Some(notify::AUTHENTICATION_FAILED)
        )
    );
}

/// A Child SA the responder cannot make in IKE_AUTH (transforms or selectors it does not
/// accept) leaves the authenticated IKE SA up on both sides with no Child SA (RFC 7296
/// §1.2, §2.21.2): the response has IDr, AUTH and the error notification, no SA or TS
/// payloads, and the IKE SA then carries exchanges.
#[test]
fn child_sa_refused_in_ike_auth_keeps_the_ike_sa() {
    let no_proposal = |c: &mut IkeConfig| c.child.key_bits = 256;
    let narrow = |c: &mut IkeConfig| c.ts_local = ts([10, 9, 0, 0], [10, 9, 0, 255]);
    type Change<'a> = &'a dyn Fn(&mut IkeConfig);
    let cases: [(Change<'_>, IkeError, u16); 2] = [
        (
            &no_proposal,
            IkeError::NoProposalChosen,
            notify::NO_PROPOSAL_CHOSEN,
        ),
        (&narrow, IkeError::TsUnacceptable, notify::TS_UNACCEPTABLE),
    ];
    for (change, err, n) in cases {
        let (ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
        change(&mut cr);
        let now = Instant::now();
        let (mut ri, mut rr) = (TestRng(5), TestRng(6));
        let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
        let (r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
        let (i2, req) = next(i1.handle(&resp1, now, &mut ri));
        let (mut resp, reply) = next(r1.handle(&req.unwrap(), &mut rr));
        let reply = reply.unwrap();
        let mut plain = Zeroizing::new(Vec::new());
        let k = resp.ike_keys();
        let c = ike::sk::SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
        let (_, inner) = c.open(&reply, &mut plain).unwrap();
        let types: Vec<u8> = inner.iter().map(Payload::ty).collect();
        assert_eq!(types, [36, 39, 41], "IDr, AUTH, N only");
        assert!(matches!(&inner[2], Payload::Notify(x) if x.ty == n));
        let (mut init, none) = next(i2.handle(&reply));
        assert!(none.is_none());
        assert_eq!(resp.ike_auth_child_error(), Some(err));
        assert_eq!(init.ike_auth_child_error(), Some(IkeError::PeerNotify(n)));
        assert_eq!(init.children().count() + resp.children().count(), 0);
        assert!(init.unused_spi().is_some() && resp.unused_spi().is_none());
        assert_eq!(init.spis(), resp.spis());
        // The IKE SA works: a liveness check both ways.
        let q = init.check_liveness(now, &mut ri).unwrap();
        let a = resp.handle(&q, &mut rr).unwrap().reply.unwrap();
        assert_eq!(
            init.handle(&a, &mut ri).unwrap().event,
            Some(ike::sa::Event::Alive)
        );
        let q = resp.check_liveness(now, &mut rr).unwrap();
        let a = init.handle(&q, &mut ri).unwrap().reply.unwrap();
        assert_eq!(
            resp.handle(&a, &mut rr).unwrap().event,
            Some(ike::sa::Event::Alive)
        );
    }
}

/// An error notification about the Child SA in an IKE_AUTH response without AUTH is not
/// an established SA: the initiator fails.
#[test]
fn child_error_without_auth_fails() {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(7), TestRng(8));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, _) = next(i1.handle(&resp1, now, &mut ri));
    let (spi_i, spi_r) = r1.spis();
    let k = r1.ike_keys();
    let c = ike::sk::SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
    let h = ike::wire::Header {
        spi_i,
        spi_r,
        minor: 0,
        exchange: exchange::IKE_AUTH,
        flags: flags::RESPONSE,
        message_id: 1,
    };
    let n = Payload::Notify(ike::wire::Notify {
        protocol: 0,
        spi: &[],
        ty: notify::NO_PROPOSAL_CHOSEN,
        data: &[],
    });
    let forged = c.seal(&h, &[n], &[9; 8]).unwrap();
    let (e, _) = failed(i2.handle(&forged));
    assert_eq!(e, IkeError::PeerNotify(notify::NO_PROPOSAL_CHOSEN));
}

fn notify_in(reply: &[u8]) -> (u16, Vec<u8>) {
    let m = Message::parse(reply).unwrap();
    assert_eq!(m.header.exchange, exchange::IKE_SA_INIT);
    assert_eq!(m.header.flags, flags::RESPONSE);
    match &m.payloads[..] {
        [Payload::Notify(n)] => (n.ty, n.data.to_vec()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn responder_rejects_sa_init_with_the_rfc_notify_or_silence() {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let mut ri = TestRng(8);
    let mut rr = TestRng(9);

    // Another group: INVALID_KE_PAYLOAD naming ours; the initiator gives up on it. The
    // initiator uses group 19; its proposal is rewritten to offer 31 (the responder's) so
    // that the proposal matches and only the KE payload is of the wrong group.
    let (c19, _) = configs(GCM, Group::Ecp256, gcm_child());
    let cr19 = cr.clone();
    let i = ExpectSaInitResp::start(c19, i_path(), now, &mut ri).unwrap();
    let mut m = Message::parse(i.request()).unwrap();
    if let Payload::Sa(props) = &mut m.payloads[0] {
        for t in &mut props[0].transforms {
            if t.ty == ike::consts::transform::DH {
                t.id = 31;
            }
        }
    }
    let bytes = m.emit().unwrap();
    let Err(InitRejected::Reply(e, reply)) = respond_sa_init(&cr19, &bytes, &ctx(), &mut rr) else {
        panic!("no INVALID_KE_PAYLOAD")
    };
    assert_eq!(e, IkeError::InvalidKePayload(31));
    assert_eq!(notify_in(&reply), (notify::INVALID_KE_PAYLOAD, vec![0, 31]));
    let (e, _) = failed(i.handle(&reply, now, &mut ri));
    assert_eq!(e, IkeError::PeerNotify(notify::INVALID_KE_PAYLOAD));

    // Nothing acceptable: NO_PROPOSAL_CHOSEN.
    let mut other = ci.clone();
    other.suite.key_bits = 128;
    let i = ExpectSaInitResp::start(other, i_path(), now, &mut ri).unwrap();
    let Err(InitRejected::Reply(e, reply)) = respond_sa_init(&cr, i.request(), &ctx(), &mut rr)
    else {
        panic!("no NO_PROPOSAL_CHOSEN")
    };
    assert_eq!(e, IkeError::NoProposalChosen);
    assert_eq!(notify_in(&reply).0, notify::NO_PROPOSAL_CHOSEN);

    let i = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let good = i.request().to_vec();
    // A degenerate KE value (RFC 6989): refused before any state is kept.
    let mut m = Message::parse(&good).unwrap();
    m.payloads[1] = Payload::Ke {
        group: 31,
        data: &[0; 32],
    };
    let bytes = m.emit().unwrap();
    let Err(InitRejected::Reply(e, _)) = respond_sa_init(&cr, &bytes, &ctx(), &mut rr) else {
        panic!("zero X25519 value accepted")
    };
    assert!(matches!(
        e,
        IkeError::Crypto(ike::CryptoError::InvalidPublicValue(_))
    ));

    // Missing, duplicated payloads: silent drop.
    for drop_at in 0..3 {
        let mut m = Message::parse(&good).unwrap();
        m.payloads.remove(drop_at);
        let b = m.emit().unwrap();
        assert!(matches!(
            respond_sa_init(&cr, &b, &ctx(), &mut rr),
            Err(InitRejected::Drop(IkeError::MissingPayload(_)))
        ));
        let mut m = Message::parse(&good).unwrap();
        let dup = m.payloads[drop_at].clone();
        m.payloads.insert(drop_at, dup);
        let b = m.emit().unwrap();
        assert!(matches!(
            respond_sa_init(&cr, &b, &ctx(), &mut rr),
            Err(InitRejected::Drop(IkeError::MissingPayload(_)))
        ));
    }

    // IKEv1: dropped, never answered.
    let mut v1 = good.clone();
    v1[17] = 0x10;
    assert!(matches!(
        respond_sa_init(&cr, &v1, &ctx(), &mut rr),
        Err(InitRejected::Drop(IkeError::Parse(ike::ParseError::IkeV1)))
    ));
    // Major version 3: INVALID_MAJOR_VERSION.
    let mut v3 = good.clone();
    v3[17] = 0x30;
    let Err(InitRejected::Reply(_, reply)) = respond_sa_init(&cr, &v3, &ctx(), &mut rr) else {
        panic!("no INVALID_MAJOR_VERSION")
    };
    assert_eq!(notify_in(&reply).0, notify::INVALID_MAJOR_VERSION);
    // An unknown critical payload: UNSUPPORTED_CRITICAL_PAYLOAD.
    let mut m = Message::parse(&good).unwrap();
    m.payloads.push(Payload::Unknown {
        ty: 222,
        body: b"x",
    });
    let mut crit = m.emit().unwrap();
    let at = crit.len() - 5;
    crit[at + 1] = 0x80;
    let Err(InitRejected::Reply(_, reply)) = respond_sa_init(&cr, &crit, &ctx(), &mut rr) else {
        panic!("no UNSUPPORTED_CRITICAL_PAYLOAD")
    };
    assert_eq!(notify_in(&reply).0, notify::UNSUPPORTED_CRITICAL_PAYLOAD);
    // ... and the same payload without the critical bit is skipped.
    crit[at + 1] = 0;
    assert!(respond_sa_init(&cr, &crit, &ctx(), &mut rr).is_ok());
    // A response is not a request.
    let (_, resp) = respond_sa_init(&cr, &good, &ctx(), &mut rr).unwrap();
    assert!(matches!(
        respond_sa_init(&cr, &resp, &ctx(), &mut rr),
        Err(InitRejected::Drop(_))
    ));
}

/// Decrypts an IKE_AUTH request with the initiator's keys and re-seals it with some
/// payloads removed or duplicated: the responder must not establish.
#[test]
fn ike_auth_with_missing_or_duplicated_payloads_never_establishes() {
    use ike::keys::IkeKeys;
    use ike::sk::SkCipher;
    for (op, at) in [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 0),
        (1, 1),
        (1, 3),
    ] {
        let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
        let now = Instant::now();
        let (mut ri, mut rr) = (TestRng(10), TestRng(11));
        let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
        let (r1, resp1): (ExpectAuthReq, _) =
            respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
        let (i2, req): (ExpectAuthResp, _) = next(i1.handle(&resp1, now, &mut ri));
        let keys: &IkeKeys = i2.ike_keys();
        let sk_in = SkCipher::new(GCM, &keys.sk_ei, &keys.sk_ai).unwrap();
        let mut plain = Zeroizing::new(Vec::new());
        let (h, mut inner) = sk_in.open(&req.unwrap(), &mut plain).unwrap();
        assert_eq!(inner.len(), 5);
        if op == 0 {
            inner.remove(at);
        } else {
            let d = inner[at].clone();
            inner.insert(at, d);
        }
        let forged = sk_in.seal(&h, &inner, &[1; 8]).unwrap();
        match r1.handle(&forged, &mut rr) {
            Step::Failed { error, reply } => {
                assert!(
                    matches!(error, IkeError::MissingPayload(_)),
                    "{op} {at}: {error}"
                );
                assert!(reply.is_some(), "INVALID_SYNTAX sent");
            }
            Step::Next { .. } => panic!("{op} {at}: established"),
            Step::Stay { dropped, .. } => panic!("{op} {at}: stayed {dropped:?}"),
        }
    }
}

#[test]
fn keys_never_printed() {
    let (ci, _) = configs(GCM, Group::Curve25519, gcm_child());
    let d = format!("{ci:?}");
    assert!(!d.contains("horse"), "{d}");
    let r = handshake(
        ci.clone(),
        configs(GCM, Group::Curve25519, gcm_child()).1,
        12,
    );
    let d = format!("{:?}", r.init);
    let key = format!("{:?}", &r.init.child().unwrap().keys.encr_i[..]);
    assert!(!d.contains(&key[1..key.len() - 1]), "{d}");
}

#[test]
fn cookies_under_load() {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(20), TestRng(21));
    let mut jar = CookieJar::new(&[0x33; 32]);
    let path = Path {
        local: i_path().remote,
        remote: "198.51.100.7:500".parse().unwrap(),
    };
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let first = i1.request().to_vec();

    // Under load: only a COOKIE notification, smaller than the request, and no state.
    let loaded = InitContext {
        path,
        cookies: &jar,
        require_cookie: true,
    };
    let Err(InitRejected::Reply(IkeError::CookieRequired, cookie_reply)) =
        respond_sa_init(&cr, &first, &loaded, &mut rr)
    else {
        panic!("no COOKIE")
    };
    assert!(cookie_reply.len() < first.len());
    let (ty, cookie) = notify_in(&cookie_reply);
    assert_eq!(ty, notify::COOKIE);
    assert_eq!(cookie.len(), 33);
    // The same request again gets the same cookie (stateless).
    let Err(InitRejected::Reply(_, again)) = respond_sa_init(&cr, &first, &loaded, &mut rr) else {
        panic!()
    };
    assert_eq!(again, cookie_reply);

    // The initiator sends the request again with the cookie first, other payloads
    // unchanged, and its retransmission schedule starts over.
    let (i1, retry, dropped) = stayed(i1.handle(&cookie_reply, now, &mut ri));
    assert!(dropped.is_none());
    let retry = retry.unwrap();
    assert_eq!(retry, i1.request());
    let m = Message::parse(&retry).unwrap();
    let orig = Message::parse(&first).unwrap();
    assert!(
        matches!(&m.payloads[0], Payload::Notify(n) if n.ty == notify::COOKIE && n.data == cookie)
    );
    assert_eq!(m.payloads[1..], orig.payloads[..]);
    assert_eq!(m.header, orig.header);

    // The cookie is bound to the address, the SPI and the nonce.
    let other_peer = InitContext {
        path: Path {
            remote: "198.51.100.8:500".parse().unwrap(),
            ..path
        },
        ..loaded
    };
    assert!(matches!(
        respond_sa_init(&cr, &retry, &other_peer, &mut rr),
        Err(InitRejected::Reply(IkeError::CookieRequired, _))
    ));
    let mut other_spi = retry.clone();
    other_spi[0] ^= 1;
    assert!(matches!(
        respond_sa_init(&cr, &other_spi, &loaded, &mut rr),
        Err(InitRejected::Reply(IkeError::CookieRequired, _))
    ));
    // A cookie that is not the first payload does not count.
    let mut moved = Message::parse(&retry).unwrap();
    let c = moved.payloads.remove(0);
    moved.payloads.push(c);
    let moved = moved.emit().unwrap();
    assert!(matches!(
        respond_sa_init(&cr, &moved, &loaded, &mut rr),
        Err(InitRejected::Reply(IkeError::CookieRequired, _))
    ));

    // With the cookie the exchange completes; AUTH covers the request with the cookie.
    let (r1, resp1) = respond_sa_init(&cr, &retry, &loaded, &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&resp1, now, &mut ri));
    let (resp, reply) = next(r1.handle(&req.unwrap(), &mut rr));
    let (init, _) = next(i2.handle(&reply.unwrap()));
    assert_match(&Run { init, resp });

    // After one rotation the cookie is still good, after two it is not.
    jar.rotate(&[0x44; 32]);
    let rotated = InitContext {
        path,
        cookies: &jar,
        require_cookie: true,
    };
    assert!(respond_sa_init(&cr, &retry, &rotated, &mut rr).is_ok());
    jar.rotate(&[0x55; 32]);
    let rotated = InitContext {
        path,
        cookies: &jar,
        require_cookie: true,
    };
    assert!(matches!(
        respond_sa_init(&cr, &retry, &rotated, &mut rr),
        Err(InitRejected::Reply(IkeError::CookieRequired, _))
    ));
}

#[test]
fn initiator_follows_at_most_two_cookies() {
    let (ci, _) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let mut ri = TestRng(30);
    let mut i = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let jar = CookieJar::new(&[1; 32]);
    for round in 0..3 {
        let req = Message::parse(i.request()).unwrap();
        let cookie = jar.make(
            &[round; 32],
            &IpAddr::V4(Ipv4Addr::LOCALHOST),
            &req.header.spi_i,
        );
        let reply = Message {
            header: ike::wire::Header {
                flags: flags::RESPONSE,
                ..req.header
            },
            payloads: vec![Payload::Notify(ike::wire::Notify {
                protocol: 0,
                spi: &[],
                ty: notify::COOKIE,
                data: &cookie,
            })],
        }
        .emit()
        .unwrap();
        match i.handle(&reply, now, &mut ri) {
            Step::Stay { state, reply, .. } if round < 2 => {
                assert!(reply.is_some());
                i = state;
            }
            Step::Failed { error, .. } if round == 2 => {
                assert_eq!(error, IkeError::CookieRequired);
                return;
            }
            _ => panic!("round {round}"),
        }
    }
    panic!("never gave up");
}

/// Runs the exchanges with the initiator on `ip` and the responder seeing `seen`.
fn handshake_via(ip: Path, seen: Path) -> Run {
    let (ci, cr) = configs(GCM, Group::Curve25519, gcm_child());
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(40), TestRng(41));
    let jar = CookieJar::new(&[2; 32]);
    let ctx = InitContext {
        path: seen,
        cookies: &jar,
        require_cookie: false,
    };
    let i1 = ExpectSaInitResp::start(ci, ip, now, &mut ri).unwrap();
    let (r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx, &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&resp1, now, &mut ri));
    let i_nat = i2.nat();
    let (resp, reply) = next(r1.handle(&req.unwrap(), &mut rr));
    let (init, _) = next(i2.handle(&reply.unwrap()));
    assert_eq!(init.nat(), i_nat);
    Run { init, resp }
}

#[test]
fn nat_detection() {
    use ike::sa::NatStatus;
    let addr = |s: &str| s.parse().unwrap();
    // No NAT: each side sees the other's addresses as they are.
    let r = handshake_via(i_path(), i_path().reversed());
    let clear = NatStatus {
        local_behind_nat: false,
        peer_behind_nat: false,
    };
    assert_eq!(r.init.nat(), Some(clear));
    assert_eq!(r.resp.nat(), Some(clear));
    assert!(!clear.any());

    // The initiator is behind a NAT that maps 10.0.0.2:500 to 198.51.100.1:40001.
    let ip = Path {
        local: addr("10.0.0.2:500"),
        remote: addr("203.0.113.5:500"),
    };
    let seen = Path {
        local: addr("203.0.113.5:500"),
        remote: addr("198.51.100.1:40001"),
    };
    let r = handshake_via(ip, seen);
    assert_eq!(
        r.init.nat(),
        Some(NatStatus {
            local_behind_nat: true,
            peer_behind_nat: false
        })
    );
    assert_eq!(
        r.resp.nat(),
        Some(NatStatus {
            local_behind_nat: false,
            peer_behind_nat: true
        })
    );
    assert_match(&r);

    // A port change alone is a NAT too (the hash covers the port).
    let seen = Path {
        remote: addr("192.0.2.1:4500"),
        ..i_path().reversed()
    };
    let r = handshake_via(i_path(), seen);
    assert_eq!(r.resp.nat().map(|n| n.peer_behind_nat), Some(true));
    assert_eq!(r.init.nat().map(|n| n.local_behind_nat), Some(true));
}

#[test]
fn nat_hash_is_sha1_of_spis_address_and_port() {
    // SHA-1 over 8 + 8 + 4 + 2 bytes; the value comes from Python's hashlib:
    // hashlib.sha1(bytes(range(1, 9)) + bytes(8) + bytes([192, 0, 2, 1]) + b"\x01\xf4")
    let h = ike::sa::nat_hash(
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &[0; 8],
        "192.0.2.1:500".parse().unwrap(),
    );
    assert_eq!(hex_of(&h), NAT_HASH_KAT);
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const NAT_HASH_KAT: &str = "644b4575455bd6fcc1efe2be8162a9218e448e5f";

#[test]
fn responder_narrows_traffic_selectors() {
    // The initiator asks for everything; the responder's policy covers one subnet pair
    // and TCP to port 443 of another host: the answer is the intersection.
    let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.ts_local = ts([0, 0, 0, 0], [255, 255, 255, 255]);
    ci.ts_remote = ts([0, 0, 0, 0], [255, 255, 255, 255]);
    let web = TrafficSelector {
        ip_protocol: 6,
        start_port: 443,
        end_port: 443,
        start: IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)),
        end: IpAddr::V4(Ipv4Addr::new(10, 3, 0, 1)),
    };
    cr.ts_local.push(web);
    let r = handshake(ci, cr.clone(), 50);
    let c = r.init.child().unwrap();
    assert_eq!(c, r.resp.child().unwrap());
    assert_eq!(c.ts_i, cr.ts_remote);
    assert_eq!(c.ts_r, cr.ts_local);
    assert_eq!(c.ts_r.len(), 2);
}

#[test]
fn transport_mode_and_initial_contact() {
    let transport = ChildSuite {
        transport: true,
        pfs: false,
        ..gcm_child()
    };
    let (mut ci, cr) = configs(GCM, Group::Curve25519, transport);
    ci.initial_contact = true;
    let r = handshake(ci, cr, 60);
    assert!(r.init.child().unwrap().transport && r.resp.child().unwrap().transport);
    assert!(r.resp.peer_initial_contact());
    assert_match(&r);

    let r = handshake(
        configs(GCM, Group::Curve25519, gcm_child()).0,
        configs(GCM, Group::Curve25519, gcm_child()).1,
        61,
    );
    assert!(!r.init.child().unwrap().transport && !r.resp.child().unwrap().transport);
    assert!(!r.resp.peer_initial_contact());

    // The initiator's policy wants transport mode, the responder's only allows tunnel
    // mode: the responder answers tunnel mode and the initiator refuses it.
    let (ci, _) = configs(GCM, Group::Curve25519, transport);
    let (_, cr) = configs(GCM, Group::Curve25519, gcm_child());
    assert_eq!(auth_fails(ci, cr), (IkeError::NoProposalChosen, None));
}
