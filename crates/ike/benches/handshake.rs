//! New IKE SAs per second, our initiator against our responder in memory: one full
//! IKE_SA_INIT + IKE_AUTH exchange with PSK authentication (both ends' work on one core),
//! against the bare key-exchange work it contains (two key shares made and two shared
//! secrets computed) as the baseline measured in the same run.
//!
//! The `cert_handshake` rows run the same exchange with certificate authentication
//! (RFC 7427 signatures, chain validation, identity binding) with the test PKI of
//! `tests/certs`, against the PSK handshake in the same run.
//!
//! `cargo bench -p ike --bench handshake`

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use ike::consts::id;
use ike::dh::{Group, KeyShare};
use ike::prf::PrfAlg;
use ike::sa::{
    respond_sa_init, Backoff, ChildSuite, CookieJar, ExpectSaInitResp, Identity, IkeConfig,
    InitContext, Path, Random, Step,
};
use ike::sk::SkSuite;
use ike::wire::TrafficSelector;
use zeroize::Zeroizing;

/// Benchmark-only randomness (xorshift64*): not for keys that matter.
struct BenchRng(u64);

impl Random for BenchRng {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            *b = (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8;
        }
    }
}

static JAR: std::sync::LazyLock<CookieJar> = std::sync::LazyLock::new(|| CookieJar::new(&[7; 32]));

/// The initiator's path: 192.0.2.1:500 to 192.0.2.2:500 (no NAT).
fn i_path() -> Path {
    Path {
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 500),
        remote: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 500),
    }
}

/// The responder's side of [`i_path`], while no cookie is required.
fn ctx() -> InitContext<'static> {
    InitContext {
        path: i_path().reversed(),
        cookies: &JAR,
        require_cookie: false,
    }
}

fn configs(group: Group) -> (IkeConfig, IkeConfig) {
    let sel = |n: u8| {
        vec![TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: IpAddr::V4(Ipv4Addr::new(10, n, 0, 0)),
            end: IpAddr::V4(Ipv4Addr::new(10, n, 255, 255)),
        }]
    };
    let a = Identity {
        id_type: id::FQDN,
        data: b"a.example".to_vec(),
    };
    let b = Identity {
        id_type: id::FQDN,
        data: b"b.example".to_vec(),
    };
    let ci = IkeConfig {
        suite: SkSuite {
            encr: 20,
            key_bits: 256,
            integ: None,
        },
        prf: PrfAlg::HmacSha256,
        group,
        child: ChildSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
            transport: false,
            pfs: false,
        },
        local_id: a.clone(),
        remote_id: Some(b.clone()),
        psk: Zeroizing::new(b"benchmark psk".to_vec()),
        ts_local: sel(1),
        ts_remote: sel(2),
        backoff: Backoff::default(),
        child_policy_required: false,
        max_child_sas: ike::sa::DEFAULT_MAX_CHILD_SAS,
        initial_contact: false,
        more_proposals: Vec::new(),
        child_more: Vec::new(),
        cert: None,
        fragment_len: None,
    };
    let cr = IkeConfig {
        local_id: b,
        remote_id: Some(a),
        ts_local: sel(2),
        ts_remote: sel(1),
        ..ci.clone()
    };
    (ci, cr)
}

/// One handshake; returns whether both ends established.
fn handshake(ci: &IkeConfig, cr: &IkeConfig, rng: &mut BenchRng) -> bool {
    let now = Instant::now();
    let Ok(i1) = ExpectSaInitResp::start(ci.clone(), i_path(), now, rng) else {
        return false;
    };
    let Ok((r1, resp1)) = respond_sa_init(cr, i1.request(), &ctx(), rng) else {
        return false;
    };
    let Step::Next {
        state: i2,
        reply: Some(req2),
    } = i1.handle(&resp1, now, rng)
    else {
        return false;
    };
    let Step::Next {
        state: r2,
        reply: Some(resp2),
    } = r1.handle(&req2, rng)
    else {
        return false;
    };
    let Step::Next { state: i3, .. } = i2.handle(&resp2) else {
        return false;
    };
    black_box((&i3, &r2));
    true
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ike_sa");
    for (name, group) in [
        ("curve25519", Group::Curve25519),
        ("modp2048", Group::Modp2048),
    ] {
        let (ci, cr) = configs(group);
        let mut rng = BenchRng(0x1234_5678_9abc_def1);
        assert!(handshake(&ci, &cr, &mut rng), "handshake fails");
        g.bench_function(BenchmarkId::new("psk_handshake", name), |b| {
            b.iter(|| handshake(&ci, &cr, &mut rng))
        });
        g.bench_function(BenchmarkId::new("dh_only", name), |b| {
            b.iter(|| {
                let mut ra = vec![0u8; group.random_len()];
                let mut rb = vec![0u8; group.random_len()];
                rng.fill(&mut ra);
                rng.fill(&mut rb);
                let ok = match (KeyShare::new(group, &ra), KeyShare::new(group, &rb)) {
                    (Ok(a), Ok(b)) => a.agree(b.public()).is_ok() && b.agree(a.public()).is_ok(),
                    _ => false,
                };
                black_box(ok)
            })
        });
    }
    // Certificates: Curve25519, both roles sign and validate a chain.
    let (psk_i, psk_r) = configs(Group::Curve25519);
    for (name, alice, bob) in [
        (
            "rsa2048_rsa3072",
            &["alice-rsa", "rsa-int"][..],
            &["bob-rsa"][..],
        ),
        ("p256_p384", &["alice-ec"][..], &["bob-ec"][..]),
    ] {
        let (mut ci, mut cr) = (psk_i.clone(), psk_r.clone());
        ci.cert = creds(alice);
        cr.cert = creds(bob);
        assert!(
            ci.cert.is_some() && cr.cert.is_some(),
            "test PKI (tests/certs)"
        );
        ci.remote_id = None;
        cr.remote_id = None;
        ci.local_id = Identity {
            id_type: id::FQDN,
            data: b"alice.example".to_vec(),
        };
        cr.local_id = Identity {
            id_type: id::IPV4_ADDR,
            data: vec![192, 0, 2, 2],
        };
        let mut rng = BenchRng(0x1234_5678_9abc_def1);
        assert!(handshake(&ci, &cr, &mut rng), "certificate handshake fails");
        g.bench_function(BenchmarkId::new("cert_handshake", name), |b| {
            b.iter(|| handshake(&ci, &cr, &mut rng))
        });
    }
    g.finish();
}

/// Credentials from the test PKI: `chain[0]`'s key, both roots trusted.
fn creds(chain: &[&str]) -> Option<ike::cert::CertAuth> {
    use ike::cert::{CertAuth, Certificate, PrivateKey};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certs");
    let read = |f: String| std::fs::read(dir.join(f)).ok();
    let cert = |n: &str| Certificate::from_der(&read(format!("{n}.crt"))?).ok();
    let root = cert("rsa-root")?;
    let now = root.not_before + 30 * 86_400;
    CertAuth::new(
        PrivateKey::from_der(&read(format!("{}.key", chain[0]))?).ok()?,
        chain.iter().map(|n| cert(n)).collect::<Option<_>>()?,
        vec![root, cert("ec-root")?],
        now,
    )
    .ok()
}

criterion_group!(benches, bench);
criterion_main!(benches);
