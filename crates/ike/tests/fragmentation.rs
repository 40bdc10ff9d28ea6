//! IKE fragmentation (RFC 7383) used by the exchanges: our initiator against our
//! responder with a tiny fragment size, fragments reordered, duplicated, lost and
//! corrupted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ike::consts::payload as pt;
use ike::dh::Group;
use ike::sa::{respond_sa_init, Event, ExpectSaInitResp, IkeConfig, IkeError};
use ike::wire::Header;
use proptest::prelude::*;

const LIMIT: usize = 100;

fn frag_configs(i: Option<usize>, r: Option<usize>) -> (IkeConfig, IkeConfig) {
    let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    ci.fragment_len = i;
    cr.fragment_len = r;
    (ci, cr)
}

fn is_skf(d: &[u8]) -> bool {
    d[16] == pt::SKF
}

/// (fragment number, total) of an Encrypted Fragment message.
fn numbers(d: &[u8]) -> (u16, u16) {
    let (h, _, _) = Header::parse_any_version(d).unwrap();
    assert_eq!(h.exchange, d[18]);
    (
        u16::from_be_bytes([d[32], d[33]]),
        u16::from_be_bytes([d[34], d[35]]),
    )
}

#[test]
fn auth_is_fragmented_reordered_duplicated_and_lost_fragments_recovered() {
    let (ci, cr) = frag_configs(Some(LIMIT), Some(LIMIT));
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(11), TestRng(12));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, m2) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (mut i2, m3) = next(i1.handle(&m2, now, &mut ri));
    assert!(i2.fragmentation());
    let m3 = m3.unwrap();
    let frags = i2.datagrams(&m3, &mut ri);
    assert!(frags.len() >= 4, "{} fragments", frags.len());
    for (k, f) in frags.iter().enumerate() {
        assert!(f.len() <= LIMIT && is_skf(f));
        assert_eq!(numbers(f), (k as u16 + 1, frags.len() as u16));
    }
    // Retransmissions carry the same fragments.
    assert_eq!(i2.datagrams(&m3, &mut ri), frags);

    // Reversed, with duplicates, the responder waits and then completes once.
    let mut r = r1;
    let mut done = None;
    let order: Vec<usize> = (0..frags.len()).rev().chain([0, 2]).collect();
    for (n, k) in order.iter().enumerate() {
        match r.handle(&frags[*k], &mut rr) {
            ike::sa::Step::Stay {
                state,
                reply,
                dropped,
            } => {
                assert!(reply.is_none() && dropped.is_none());
                assert!(n < frags.len() - 1, "not complete after every fragment");
                r = state;
            }
            ike::sa::Step::Next { state, reply } => {
                assert_eq!(n, frags.len() - 1);
                done = Some((state, reply.unwrap()));
                break;
            }
            ike::sa::Step::Failed { error, .. } => panic!("{error}"),
        }
    }
    let (mut resp, m4) = done.unwrap();
    assert!(resp.fragmentation());
    let rfrags = resp.datagrams(&m4, &mut rr);
    assert!(rfrags.len() >= 2 && rfrags.iter().all(|f| f.len() <= LIMIT && is_skf(f)));

    // The response's last fragment is lost: the initiator keeps waiting.
    let mut i = i2;
    for f in &rfrags[..rfrags.len() - 1] {
        i = stayed(i.handle(f)).0;
    }
    // It retransmits: the same fragments; the responder answers fragment 1 (only) of the
    // request it already answered with the whole cached response, in the same fragments.
    let again = i
        .handle_timeout(now + Duration::from_secs(1))
        .unwrap()
        .unwrap()
        .to_vec();
    assert_eq!(i.datagrams(&again, &mut ri), frags);
    for f in &frags[1..] {
        let out = resp.handle(f, &mut rr).unwrap();
        assert!(out.reply.is_none() && out.event.is_none());
    }
    let out = resp.handle(&frags[0], &mut rr).unwrap();
    let cached = out.reply.unwrap();
    assert_eq!(resp.datagrams(&cached, &mut rr), rfrags);
    let (init, none) = next(i.handle(rfrags.last().unwrap()));
    assert!(none.is_none());
    let run = Run { init, resp };
    assert_match(&run);
}

#[test]
fn no_fragmentation_unless_both_announce() {
    for (a, b) in [(Some(LIMIT), None), (None, Some(LIMIT)), (None, None)] {
        let (ci, cr) = frag_configs(a, b);
        let now = Instant::now();
        let (mut ri, mut rr) = (TestRng(3), TestRng(4));
        let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
        let (r1, m2) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
        let (mut i2, m3) = next(i1.handle(&m2, now, &mut ri));
        assert!(!i2.fragmentation());
        let m3 = m3.unwrap();
        assert_eq!(i2.datagrams(&m3, &mut ri), vec![m3.clone()]);
        let (mut resp, m4) = next(r1.handle(&m3, &mut rr));
        assert!(!resp.fragmentation());
        let m4 = m4.unwrap();
        assert_eq!(resp.datagrams(&m4, &mut rr), vec![m4.clone()]);
    }
}

/// Runs the handshake with fragmentation on both sides and returns both ends.
fn fragmented_handshake(seed: u64) -> (Run, TestRng, TestRng) {
    let (run, ri, rr, _, _) = fragmented_handshake_with(seed);
    (run, ri, rr)
}

/// [`fragmented_handshake`], also returning the IKE_AUTH request's and response's
/// fragments.
#[allow(clippy::type_complexity)]
fn fragmented_handshake_with(seed: u64) -> (Run, TestRng, TestRng, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (ci, cr) = frag_configs(Some(LIMIT), Some(LIMIT));
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(seed), TestRng(seed + 1));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, m2) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (mut i2, m3) = next(i1.handle(&m2, now, &mut ri));
    let frags = i2.datagrams(&m3.unwrap(), &mut ri);
    let mut r = r1;
    let mut resp = None;
    for f in &frags {
        match r.handle(f, &mut rr) {
            ike::sa::Step::Stay { state, .. } => r = state,
            ike::sa::Step::Next { state, reply } => {
                resp = Some((state, reply.unwrap()));
                break;
            }
            ike::sa::Step::Failed { error, .. } => panic!("{error}"),
        }
    }
    let (mut resp, m4) = resp.unwrap();
    let mut i = i2;
    let mut init = None;
    let rfrags = resp.datagrams(&m4, &mut rr);
    for f in &rfrags {
        match i.handle(f) {
            ike::sa::Step::Stay { state, .. } => i = state,
            ike::sa::Step::Next { state, .. } => {
                init = Some(state);
                break;
            }
            ike::sa::Step::Failed { error, .. } => panic!("{error}"),
        }
    }
    let run = Run {
        init: init.unwrap(),
        resp,
    };
    assert_match(&run);
    (run, ri, rr, frags, rfrags)
}

#[test]
fn corrupted_fragment_is_dropped_counted_and_the_rest_completes() {
    let (mut run, mut ri, mut rr) = fragmented_handshake(21);
    let now = Instant::now();
    // A CREATE_CHILD_SA request is larger than the limit.
    let req = run.init.create_child(None, now, &mut ri).unwrap();
    let frags = run.init.datagrams(&req, &mut ri);
    assert!(frags.len() >= 3);
    let mut bad = frags[1].clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(
        run.resp.handle(&bad, &mut rr),
        Err(IkeError::Crypto(_))
    ));
    assert_eq!(run.resp.bad_fragments(), 1);
    let mut reply = None;
    for f in &frags {
        let out = run.resp.handle(f, &mut rr).unwrap();
        if out.reply.is_some() {
            assert!(matches!(out.event, Some(Event::ChildCreated { .. })));
            reply = out.reply;
        }
    }
    let reply = reply.expect("the request was reassembled and answered");
    let mut event = None;
    for f in run.resp.datagrams(&reply, &mut rr) {
        let out = run.init.handle(&f, &mut ri).unwrap();
        event = event.or(out.event);
    }
    assert!(matches!(event, Some(Event::ChildCreated { .. })));
    assert_eq!(run.init.children().count(), 2);
    assert_eq!(run.resp.children().count(), 2);
}

#[test]
fn incomplete_reassembly_expires() {
    let (mut run, mut ri, mut rr) = fragmented_handshake(31);
    let now = Instant::now();
    let req = run.init.create_child(None, now, &mut ri).unwrap();
    let frags = run.init.datagrams(&req, &mut ri);
    assert!(run.resp.handle(&frags[0], &mut rr).unwrap().reply.is_none());
    let due = run.resp.expire_fragments(now).unwrap();
    assert_eq!(due, now + ike::sa::REASSEMBLY_TIMEOUT);
    assert_eq!(run.resp.expire_fragments(due), None);
    // The first fragment was forgotten: the others alone do not complete the message.
    for f in &frags[1..] {
        assert!(run.resp.handle(f, &mut rr).unwrap().reply.is_none());
    }
    // The retransmission (same fragments) does.
    let out = run.resp.handle(&frags[0], &mut rr).unwrap();
    assert!(out.reply.is_some());
}

#[test]
fn fragments_refused_when_not_announced() {
    let (mut run, mut ri, mut rr) = fragmented_handshake(41);
    let (ci, cr) = frag_configs(None, None);
    let plain = handshake(ci, cr, 41);
    // A fragment sent to an SA that announced nothing is dropped.
    let now = Instant::now();
    let req = run.init.create_child(None, now, &mut ri).unwrap();
    let frags = run.init.datagrams(&req, &mut ri);
    let mut resp = plain.resp;
    assert!(resp.handle(&frags[0], &mut rr).is_err());
    let _ = &mut run;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any order of the fragments, with duplicates and losses, ends in the same SA: lost
    /// fragments come back with retransmissions (which are the same fragments).
    #[test]
    fn any_fragment_order_establishes(
        seed in 1u64..u64::MAX,
        perm in proptest::collection::vec(0usize..64, 1..40),
        lose in proptest::collection::vec(0u8..4, 40),
    ) {
        let (ci, cr) = frag_configs(Some(LIMIT), Some(LIMIT));
        let now = Instant::now();
        let (mut ri, mut rr) = (TestRng(seed), TestRng(seed ^ 5));
        let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
        let (r1, m2) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
        let (mut i, m3) = next(i1.handle(&m2, now, &mut ri));
        let m3 = m3.unwrap();
        let frags = i.datagrams(&m3, &mut ri);
        let mut r = Some(r1);
        let mut resp = None;
        let mut lost = lose.iter().cycle();
        let mut t = now;
        // Each round sends the drawn order (some lost), then everything in order (some
        // lost): a retransmission.
        for _round in 0..20 {
            let order: Vec<usize> = perm.iter().map(|k| k % frags.len())
                .chain(0..frags.len()).collect();
            for k in order {
                if *lost.next().unwrap() == 0 {
                    continue;
                }
                if let Some(st) = r.take() {
                    match st.handle(&frags[k], &mut rr) {
                        ike::sa::Step::Stay { state, .. } => r = Some(state),
                        ike::sa::Step::Next { state, reply } => {
                            resp = Some((state, reply.unwrap()));
                        }
                        ike::sa::Step::Failed { error, .. } => panic!("{error}"),
                    }
                } else if let Some((st, _)) = &mut resp {
                    let _ = st.handle(&frags[k], &mut rr).unwrap();
                }
            }
            if resp.is_some() {
                break;
            }
            t += Duration::from_secs(64);
            let _ = i.handle_timeout(t);
        }
        let (mut rs, m4) = resp.expect("the request was reassembled");
        let rfrags = rs.datagrams(&m4, &mut rr);
        let mut init = None;
        let mut i = Some(i);
        for _round in 0..20 {
            let order: Vec<usize> = perm.iter().rev().map(|k| k % rfrags.len())
                .chain(0..rfrags.len()).collect();
            for k in order {
                if *lost.next().unwrap() == 0 {
                    continue;
                }
                match i.take().unwrap().handle(&rfrags[k]) {
                    ike::sa::Step::Stay { state, .. } => i = Some(state),
                    ike::sa::Step::Next { state, .. } => {
                        init = Some(state);
                        break;
                    }
                    ike::sa::Step::Failed { error, .. } => panic!("{error}"),
                }
            }
            if init.is_some() {
                break;
            }
            // A lost response fragment: the retransmitted first request fragment brings
            // the whole cached response again, in the same fragments.
            let out = rs.handle(&frags[0], &mut rr).unwrap();
            prop_assert_eq!(rs.datagrams(&out.reply.unwrap(), &mut rr), rfrags.clone());
        }
        let run = Run { init: init.expect("the response was reassembled"), resp: rs };
        assert_match(&run);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The `ike_fragments` fuzz body on random inputs (the fuzz target runs the same).
    #[test]
    fn fragment_fuzz_body_holds(data in proptest::collection::vec(any::<u8>(), 0..1200)) {
        prop_assert_eq!(ike::fuzz_support::ike_fragments(&data), Ok(()));
    }
}

/// The responder's last response keeps its fragments while requests of its own go out
/// fragmented: a retransmitted first fragment of the IKE_AUTH request still brings the
/// same fragments back.
#[test]
fn cached_response_fragments_survive_own_requests() {
    let (run, mut ri, mut rr, frags, rfrags) = fragmented_handshake_with(61);
    let Run { mut init, mut resp } = run;
    let now = Instant::now();
    // Two fragmented CREATE_CHILD_SA requests of the responder's.
    for _ in 0..2 {
        let req = resp.create_child(None, now, &mut rr).unwrap();
        let qf = resp.datagrams(&req, &mut rr);
        assert!(qf.len() > 1);
        let mut reply = None;
        for f in &qf {
            reply = reply.or(init.handle(f, &mut ri).unwrap().reply);
        }
        for f in init.datagrams(&reply.unwrap(), &mut ri) {
            let _ = resp.handle(&f, &mut rr).unwrap();
        }
    }
    assert_eq!(resp.children().count(), 3);
    let out = resp.handle(&frags[0], &mut rr).unwrap();
    assert_eq!(resp.datagrams(&out.reply.unwrap(), &mut rr), rfrags);
}

/// The Child SA a fragmented request asks for is seen (`child_request`, which changes
/// nothing) on the fragment that completes it, not before: IKE_AUTH at the half-open
/// responder, CREATE_CHILD_SA on the established SA.
#[test]
fn child_request_seen_on_the_completing_fragment() {
    let (ci, cr) = frag_configs(Some(LIMIT), Some(LIMIT));
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(71), TestRng(72));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, m2) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (mut i2, m3) = next(i1.handle(&m2, now, &mut ri));
    let frags = i2.datagrams(&m3.unwrap(), &mut ri);
    let (last, rest) = frags.split_last().unwrap();
    let mut r = r1;
    for f in rest {
        assert!(r.child_request(f).is_none());
        r = stayed(r.handle(f, &mut rr)).0;
    }
    let req = r
        .child_request(last)
        .expect("the completing fragment shows the request");
    assert_eq!(req.ts_remote, ts([10, 1, 0, 0], [10, 1, 255, 255]));
    assert!(req.rekey.is_none());
    // Peeking changed nothing: the same fragment completes the exchange.
    let (mut resp, m4) = next(r.handle(last, &mut rr));
    let mut i = i2;
    let mut init = None;
    for f in resp.datagrams(&m4.unwrap(), &mut rr) {
        match i.handle(&f) {
            ike::sa::Step::Stay { state, .. } => i = state,
            ike::sa::Step::Next { state, .. } => {
                init = Some(state);
                break;
            }
            ike::sa::Step::Failed { error, .. } => panic!("{error}"),
        }
    }
    let mut init = init.unwrap();
    // A fragmented CREATE_CHILD_SA rekey on the established SA.
    let c = init.child().unwrap().clone();
    let q = init.create_child(Some(c.spi_i), now, &mut ri).unwrap();
    let qf = init.datagrams(&q, &mut ri);
    let (last, rest) = qf.split_last().unwrap();
    for f in rest {
        assert!(resp.child_request(f).is_none());
        let out = resp.handle(f, &mut rr).unwrap();
        assert!(out.reply.is_none() && out.event.is_none());
    }
    let req = resp.child_request(last).expect("completing fragment");
    assert_eq!(req.rekey, Some(c.spi_r));
    let out = resp.handle(last, &mut rr).unwrap();
    assert!(matches!(out.event, Some(Event::ChildRekeyed { .. })));
}

/// An authenticated request that arrives in fragments and, reassembled, holds an unknown
/// payload with the critical bit is answered with UNSUPPORTED_CRITICAL_PAYLOAD naming the
/// type (RFC 7296 §2.5), as an unfragmented one is; the SA goes on working.
#[test]
fn unknown_critical_payload_in_a_reassembled_request_is_answered() {
    let (run, mut ri, mut rr) = fragmented_handshake(0x5c);
    let (mut init, mut resp) = (run.init, run.resp);
    let k = init.ike_keys();
    let to_r = ike::sk::SkCipher::new(GCM, &k.sk_ei, &k.sk_ai).unwrap();
    let to_i = ike::sk::SkCipher::new(GCM, &k.sk_er, &k.sk_ar).unwrap();
    // The header of a genuine request of ours (an INFORMATIONAL liveness check) at the
    // next message ID; its content replaced by one unknown critical payload of type 200,
    // sent as two fragments.
    let genuine = init.check_liveness(Instant::now(), &mut ri).unwrap();
    let (h, _, _) = Header::parse(&genuine).unwrap();
    let content = [0u8, 0x80, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8];
    let iv = vec![7u8; to_r.iv_len()];
    let f1 = to_r
        .seal_fragment_content(&h, 200, (1, 2), &content[..6], &iv)
        .unwrap();
    let f2 = to_r
        .seal_fragment_content(&h, 0, (2, 2), &content[6..], &iv)
        .unwrap();
    let out = resp.handle(&f1, &mut rr).unwrap();
    assert!(out.reply.is_none(), "the first fragment waits");
    let reply = resp.handle(&f2, &mut rr).unwrap().reply.expect("an answer");
    let mut plain = zeroize::Zeroizing::new(Vec::new());
    let (rh, inner) = to_i.open(&reply, &mut plain).unwrap();
    assert_eq!(rh.message_id, h.message_id);
    assert!(
        inner
            .iter()
            .any(|p| matches!(p, ike::wire::Payload::Notify(n)
            if n.ty == ike::consts::notify::UNSUPPORTED_CRITICAL_PAYLOAD
                && n.data == [200])),
        "{inner:?}"
    );
    // The initiator takes that answer as the response to its liveness check (same
    // message ID); the SA goes on: the responder's own liveness check is answered.
    drop(plain);
    let _ = init.handle(&reply, &mut ri);
    let again = resp.check_liveness(Instant::now(), &mut rr).unwrap();
    let out = init.handle(&again, &mut ri).unwrap();
    assert!(
        out.reply.is_some(),
        "the SA still answers the peer's requests"
    );
}
