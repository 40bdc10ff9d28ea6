//! More than one IKE proposal per configuration and INVALID_KE_PAYLOAD (RFC 7296 §1.2,
//! §2.7): the responder takes the first acceptable proposal in the initiator's order and
//! names its group when the KE payload guessed another; the initiator sends IKE_SA_INIT
//! again once, in that group, keeping its SPI, nonce and cookie.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Instant;

use common::*;
use ike::consts::notify;
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{
    respond_sa_init, ExpectSaInitResp, IkeConfig, IkeError, IkeProposal, InitContext, InitRejected,
};
use ike::sk::SkSuite;
use ike::wire::{Message, Payload};

const CBC: SkSuite = SkSuite {
    encr: 12,
    key_bits: 128,
    integ: Some(12),
};

fn prop(suite: SkSuite, prf: PrfAlg, group: Group) -> IkeProposal {
    IkeProposal { suite, prf, group }
}

/// Sets a configuration's proposals: the first becomes its own suite/PRF/group.
fn set(cfg: &mut IkeConfig, props: &[IkeProposal]) {
    cfg.suite = props[0].suite;
    cfg.prf = props[0].prf;
    cfg.group = props[0].group;
    cfg.more_proposals = props[1..].to_vec();
}

/// An SA payload as (proposal number, (transform type, ID)...) lists.
type SaSummary = Vec<(u8, Vec<(u8, u16)>)>;

fn sa_of(packet: &[u8]) -> SaSummary {
    let m = Message::parse(packet).unwrap();
    m.payloads
        .iter()
        .find_map(|p| match p {
            Payload::Sa(ps) => Some(
                ps.iter()
                    .map(|p| (p.num, p.transforms.iter().map(|t| (t.ty, t.id)).collect()))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap()
}

fn ke_group(packet: &[u8]) -> u16 {
    let m = Message::parse(packet).unwrap();
    m.payloads
        .iter()
        .find_map(|p| match p {
            Payload::Ke { group, .. } => Some(*group),
            _ => None,
        })
        .unwrap()
}

/// Runs the whole handshake, following INVALID_KE_PAYLOAD and COOKIE answers; returns
/// the two ends, the IKE_SA_INIT requests sent and the responder's chosen SA payload.
fn run(ci: IkeConfig, cr: IkeConfig, ctx: &InitContext<'_>) -> (Run, Vec<Vec<u8>>, SaSummary) {
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(21), TestRng(22));
    let mut i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let mut sent = vec![i1.request().to_vec()];
    let (r1, resp1) = loop {
        match respond_sa_init(&cr, i1.request(), ctx, &mut rr) {
            Ok(x) => break x,
            Err(InitRejected::Reply(_, reply)) => {
                let (s, again, _) = stayed(i1.handle(&reply, now, &mut ri));
                i1 = s;
                assert_eq!(again.as_deref(), Some(i1.request()));
                sent.push(i1.request().to_vec());
                assert!(sent.len() <= 4, "too many IKE_SA_INIT requests");
            }
            Err(InitRejected::Drop(e)) => panic!("dropped: {e}"),
        }
    };
    let chosen = sa_of(&resp1);
    let (i2, auth_req) = next(i1.handle(&resp1, now, &mut ri));
    let (resp, auth_resp) = next(r1.handle(&auth_req.unwrap(), &mut rr));
    let (init, _) = next(i2.handle(&auth_resp.unwrap()));
    (Run { init, resp }, sent, chosen)
}

#[test]
fn responder_names_its_group_and_the_initiator_retries_once() {
    let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    set(
        &mut ci,
        &[
            prop(GCM, PrfAlg::HmacSha256, Group::Curve25519),
            prop(CBC, PrfAlg::HmacSha384, Group::Ecp256),
        ],
    );
    set(&mut cr, &[prop(CBC, PrfAlg::HmacSha384, Group::Ecp256)]);
    let (r, sent, chosen) = run(ci, cr, &ctx());
    assert_match(&r);
    assert_eq!(sent.len(), 2);
    assert_eq!((ke_group(&sent[0]), ke_group(&sent[1])), (31, 19));
    // Same SPI and nonce; only the KE payload changed.
    let (a, b) = (
        Message::parse(&sent[0]).unwrap(),
        Message::parse(&sent[1]).unwrap(),
    );
    assert_eq!(a.header.spi_i, b.header.spi_i);
    let nonce = |m: &Message<'_>| {
        m.payloads.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.to_vec()),
            _ => None,
        })
    };
    assert_eq!(nonce(&a), nonce(&b));
    assert_eq!(sa_of(&sent[0]).len(), 2);
    // Proposal 2, the CBC one, was chosen: its keys are AES-128 + HMAC-SHA2-256-128
    // with PRF SHA-384 (SK_d of 48 bytes).
    assert_eq!(chosen[0].0, 2);
    assert_eq!(r.init.ike_keys().sk_d.len(), 48);
    assert_eq!(r.init.ike_keys().sk_ei.len(), 16);
    assert_eq!(r.init.ike_keys().sk_ai.len(), 32);
}

#[test]
fn responder_takes_the_first_acceptable_in_the_initiators_order() {
    let a = prop(CBC, PrfAlg::HmacSha256, Group::Ecp256);
    let b = prop(GCM, PrfAlg::HmacSha512, Group::Ecp256);
    let c = prop(GCM, PrfAlg::HmacSha256, Group::Modp2048);
    let (mut ci, mut cr) = configs(GCM, Group::Ecp256, gcm_child());
    // The initiator prefers b, then a; the responder prefers a but accepts b.
    set(&mut ci, &[b, a]);
    set(&mut cr, &[c, a, b]);
    let (r, sent, chosen) = run(ci.clone(), cr.clone(), &ctx());
    assert_match(&r);
    assert_eq!(sent.len(), 1, "the KE guess fits: one round trip");
    assert_eq!(chosen.len(), 1);
    assert_eq!(chosen[0].0, 1);
    assert_eq!(
        r.init.ike_keys().sk_d.len(),
        64,
        "PRF SHA-512 of proposal b"
    );
    // Nothing in common: NO_PROPOSAL_CHOSEN.
    set(&mut ci, &[prop(GCM, PrfAlg::HmacSha384, Group::Ecp256)]);
    let mut rng = TestRng(1);
    let i1 = ExpectSaInitResp::start(ci, i_path(), Instant::now(), &mut rng).unwrap();
    match respond_sa_init(&cr, i1.request(), &ctx(), &mut TestRng(2)) {
        Err(InitRejected::Reply(IkeError::NoProposalChosen, _)) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
}

#[test]
fn invalid_ke_after_a_cookie_keeps_the_cookie() {
    let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    set(
        &mut ci,
        &[
            prop(GCM, PrfAlg::HmacSha256, Group::Curve25519),
            prop(GCM, PrfAlg::HmacSha256, Group::Modp2048),
        ],
    );
    set(&mut cr, &[prop(GCM, PrfAlg::HmacSha256, Group::Modp2048)]);
    let loaded = InitContext {
        require_cookie: true,
        ..ctx()
    };
    let (r, sent, _) = run(ci, cr, &loaded);
    assert_match(&r);
    // First try, with the cookie, then with the cookie in group 14.
    assert_eq!(sent.len(), 3);
    let first_is_cookie = |p: &[u8]| {
        matches!(Message::parse(p).unwrap().payloads.first(),
            Some(Payload::Notify(n)) if n.ty == notify::COOKIE)
    };
    assert!(!first_is_cookie(&sent[0]) && first_is_cookie(&sent[1]) && first_is_cookie(&sent[2]));
    assert_eq!(ke_group(&sent[2]), 14);
}

/// An unprotected INVALID_KE_PAYLOAD from `spi_r` naming `group`.
fn invalid_ke(request: &[u8], group: u16) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let data = group.to_be_bytes();
    Message {
        header: ike::wire::Header {
            flags: ike::consts::flags::RESPONSE,
            ..req.header
        },
        payloads: vec![Payload::Notify(ike::wire::Notify {
            protocol: 0,
            spi: &[],
            ty: notify::INVALID_KE_PAYLOAD,
            data: &data,
        })],
    }
    .emit()
    .unwrap()
}

#[test]
fn initiator_follows_only_one_invalid_ke_to_a_group_it_offered() {
    let (mut ci, _) = configs(GCM, Group::Curve25519, gcm_child());
    set(
        &mut ci,
        &[
            prop(GCM, PrfAlg::HmacSha256, Group::Curve25519),
            prop(GCM, PrfAlg::HmacSha256, Group::Ecp256),
        ],
    );
    let now = Instant::now();
    let start = || ExpectSaInitResp::start(ci.clone(), i_path(), now, &mut TestRng(5)).unwrap();
    // A group we did not offer.
    let i1 = start();
    let n = invalid_ke(i1.request(), 14);
    let (e, _) = failed(i1.handle(&n, now, &mut TestRng(6)));
    assert_eq!(e, IkeError::PeerNotify(notify::INVALID_KE_PAYLOAD));
    // The group we already used.
    let i1 = start();
    let n = invalid_ke(i1.request(), 31);
    let (e, _) = failed(i1.handle(&n, now, &mut TestRng(6)));
    assert_eq!(e, IkeError::InvalidKePayload(31));
    // A second INVALID_KE_PAYLOAD after the retry ends the exchange.
    let i1 = start();
    let n = invalid_ke(i1.request(), 19);
    let (i1, again, _) = stayed(i1.handle(&n, now, &mut TestRng(6)));
    assert_eq!(ke_group(&again.unwrap()), 19);
    let n = invalid_ke(i1.request(), 31);
    let (e, _) = failed(i1.handle(&n, now, &mut TestRng(6)));
    assert_eq!(e, IkeError::InvalidKePayload(31));
}
