//! Helpers shared by the exchange tests: deterministic randomness, two matching
//! configurations, the paths, and unwrapping of [`Step`]s.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use ike::consts::id;
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{
    respond_sa_init, Backoff, ChildSuite, CookieJar, Established, ExpectSaInitResp, Identity,
    IkeConfig, IkeError, InitContext, Path, Random, Step,
};
use ike::sk::SkSuite;
use ike::wire::TrafficSelector;
use zeroize::Zeroizing;

/// Deterministic "randomness" for reproducible tests (xorshift64*).
pub struct TestRng(pub u64);

impl Random for TestRng {
    fn fill(&mut self, out: &mut [u8]) {
        if self.0 == 0 {
            // xorshift stays at zero forever: start from another state.
            self.0 = 0x9e37_79b9_7f4a_7c15;
        }
        for b in out {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }
}

pub fn ts(a: [u8; 4], b: [u8; 4]) -> Vec<TrafficSelector> {
    vec![TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: IpAddr::V4(Ipv4Addr::from(a)),
        end: IpAddr::V4(Ipv4Addr::from(b)),
    }]
}

pub const GCM: SkSuite = SkSuite {
    encr: 20,
    key_bits: 256,
    integ: None,
};

pub static JAR: std::sync::LazyLock<CookieJar> =
    std::sync::LazyLock::new(|| CookieJar::new(&[7; 32]));

/// The initiator's path: 192.0.2.1:500 to 192.0.2.2:500 (no NAT).
pub fn i_path() -> Path {
    Path {
        local: "192.0.2.1:500".parse().unwrap(),
        remote: "192.0.2.2:500".parse().unwrap(),
    }
}

/// The responder's side of [`i_path`], while no cookie is required.
pub fn ctx() -> InitContext<'static> {
    InitContext {
        path: i_path().reversed(),
        cookies: &JAR,
        require_cookie: false,
    }
}

pub fn configs(suite: SkSuite, group: Group, child: ChildSuite) -> (IkeConfig, IkeConfig) {
    let alice = Identity {
        id_type: id::FQDN,
        data: b"alice.example".to_vec(),
    };
    let bob = Identity {
        id_type: id::IPV4_ADDR,
        data: vec![192, 0, 2, 2],
    };
    let net_a = ts([10, 1, 0, 0], [10, 1, 255, 255]);
    let net_b = ts([10, 2, 0, 0], [10, 2, 255, 255]);
    let base = IkeConfig {
        suite,
        prf: PrfAlg::HmacSha256,
        group,
        child,
        local_id: alice.clone(),
        remote_id: Some(bob.clone()),
        psk: Zeroizing::new(b"correct horse battery staple".to_vec()),
        ts_local: net_a.clone(),
        ts_remote: net_b.clone(),
        backoff: Backoff::default(),
        child_policy_required: false,
        max_child_sas: ike::sa::DEFAULT_MAX_CHILD_SAS,
        initial_contact: false,
        more_proposals: Vec::new(),
        child_more: Vec::new(),
        cert: None,
        fragment_len: None,
    };
    let resp = IkeConfig {
        local_id: bob,
        remote_id: Some(alice),
        ts_local: net_b,
        ts_remote: net_a,
        ..base.clone()
    };
    (base, resp)
}

pub fn gcm_child() -> ChildSuite {
    ChildSuite {
        encr: 20,
        key_bits: 128,
        integ: None,
        transport: false,
        pfs: false,
    }
}

pub fn next<S: std::fmt::Debug, N>(s: Step<S, N>) -> (N, Option<Vec<u8>>) {
    match s {
        Step::Next { state, reply } => (state, reply),
        Step::Stay { dropped, .. } => panic!("stayed: {dropped:?}"),
        Step::Failed { error, .. } => panic!("failed: {error}"),
    }
}

pub fn failed<S, N>(s: Step<S, N>) -> (IkeError, Option<Vec<u8>>) {
    match s {
        Step::Failed { error, reply } => (error, reply),
        Step::Stay { dropped, .. } => panic!("stayed: {dropped:?}"),
        Step::Next { .. } => panic!("moved on"),
    }
}

pub fn stayed<S, N>(s: Step<S, N>) -> (S, Option<Vec<u8>>, Option<IkeError>) {
    match s {
        Step::Stay {
            state,
            reply,
            dropped,
        } => (state, reply, dropped),
        Step::Next { .. } => panic!("moved on"),
        Step::Failed { error, .. } => panic!("failed: {error}"),
    }
}

pub struct Run {
    pub init: Established,
    pub resp: Established,
}

/// Runs the two exchanges and returns both ends.
pub fn handshake(ci: IkeConfig, cr: IkeConfig, seed: u64) -> Run {
    let now = Instant::now();
    let mut ri = TestRng(seed);
    let mut rr = TestRng(seed ^ 0xffff_0000_ffff);
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let (r1, init_resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, auth_req) = next(i1.handle(&init_resp, now, &mut ri));
    let auth_req = auth_req.unwrap();
    let (resp, auth_resp) = next(r1.handle(&auth_req, &mut rr));
    let (init, none) = next(i2.handle(&auth_resp.unwrap()));
    assert!(none.is_none());
    Run { init, resp }
}

pub fn assert_match(r: &Run) {
    assert!(r.init.is_initiator() && !r.resp.is_initiator());
    assert_eq!(r.init.spis(), r.resp.spis());
    assert_eq!(r.init.ike_keys(), r.resp.ike_keys());
    let (a, b) = (r.init.child().unwrap(), r.resp.child().unwrap());
    assert_eq!(a, b);
    assert_ne!(a.spi_i, a.spi_r);
    assert_ne!(a.keys.encr_i, a.keys.encr_r);
    assert_eq!(a.ts_i, ts([10, 1, 0, 0], [10, 1, 255, 255]));
}
