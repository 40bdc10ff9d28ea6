//! Certificate authentication against a real peer, both roles: our sans-IO initiator,
//! driven over a UDP socket by this test, authenticates with RSA (via an intermediate)
//! or ECDSA certificates to strongSwan's charon responding with an ECDSA P-384 or
//! RSA-3072 certificate; then charon initiates to our responder. Each side validates the
//! other's chain against the test PKI (`tests/certs`). Runs inside a private network namespace (root, charon from
//! strongswan-charon / libcharon-extra-plugins; see .ci/run); the test binary runs
//! itself again inside the namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use ike::cert::{CertAuth, Certificate, PrivateKey};
use ike::consts::id;
use ike::dh::Group;
use ike::sa::{ExpectSaInitResp, Identity, IkeError, Step};
use ike::wire::TrafficSelector;

const CHARON: &str = "/usr/lib/ipsec/charon";
const INNER: &str = "IKE_CERT_INTEROP_INNER";

fn certs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

/// The namespace, deleted when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn ip(args: &[&str]) {
    let s = Command::new("ip").args(args).status().unwrap();
    assert!(s.success(), "ip {args:?}");
}

#[test]
fn strongswan_accepts_our_certificates_and_we_accept_its() {
    in_namespace(
        "strongswan_accepts_our_certificates_and_we_accept_its",
        inner,
    );
}

#[test]
fn strongswan_initiates_and_our_responder_authenticates_with_certificates() {
    in_namespace(
        "strongswan_initiates_and_our_responder_authenticates_with_certificates",
        inner_responder,
    );
}

/// Runs `body` in this test binary run again inside a fresh namespace (192.0.2.1 and
/// 192.0.2.2 on its loopback), which is deleted afterwards.
fn in_namespace(test: &str, body: fn()) {
    if std::env::var_os(INNER).is_some() {
        return body();
    }
    assert!(
        Path::new(CHARON).exists(),
        "{CHARON} missing (apt strongswan-charon)"
    );
    let ns = Netns(format!("ikecert{}-{}", std::process::id(), test.len()));
    ip(&["netns", "add", &ns.0]);
    ip(&["-n", &ns.0, "link", "set", "lo", "up"]);
    for a in ["192.0.2.1/32", "192.0.2.2/32"] {
        ip(&["-n", &ns.0, "addr", "add", a, "dev", "lo"]);
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(&me)
        .args(["--exact", test, "--nocapture"])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
}

/// charon with its own configuration, /run, vici socket and log; killed when dropped.
struct Charon {
    child: Child,
    dir: PathBuf,
}

impl Charon {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    fn vici(&self) -> String {
        format!("unix://{}/charon.vici", self.dir.display())
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- charon log ----\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_charon(bob: &str, alice_root: &str, case: usize) -> Charon {
    start_charon_on(bob, alice_root, case, "")
}

/// `extra`: more settings of the `charon` section (ports).
fn start_charon_on(bob: &str, alice_root: &str, case: usize, extra: &str) -> Charon {
    let dir = std::env::temp_dir().join(format!("ikecert-charon-{}-{case}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let c = certs_dir();
    let sconf = dir.join("strongswan.conf");
    std::fs::write(
        &sconf,
        format!(
            "charon {{\n {extra}\n load_modular = no\n load = random drbg nonce openssl aes sha1 sha2 hmac gcm kdf pem pkcs1 pkcs8 x509 pubkey curve25519 gmp kernel-libipsec kernel-netlink socket-default vici\n \
             plugins {{\n  vici {{\n   socket = unix://{d}/charon.vici\n  }}\n  \
             kernel-libipsec {{\n   allow_peer_ts = yes\n  }}\n  kernel-netlink {{\n   fwmark = !0x42\n  }}\n  \
             socket-default {{\n   fwmark = 0x42\n  }}\n }}\n \
             filelog {{\n  f {{\n   path = {d}/charon.log\n   flush_line = yes\n   default = 1\n   ike = 2\n   cfg = 2\n   lib = 2\n  }}\n }}\n}}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("swanctl.conf"),
        format!(
            "connections {{\n ironswan {{\n  version = 2\n  local_addrs = 192.0.2.2\n  remote_addrs = 192.0.2.1\n  \
             proposals = aes256gcm16-prfsha256-x25519\n  \
             local {{\n   auth = pubkey\n   certs = {c}/{bob}.crt\n   id = 192.0.2.2\n  }}\n  \
             remote {{\n   auth = pubkey\n   id = alice.example\n   cacerts = {c}/{alice_root}.crt\n  }}\n  \
             children {{\n   c {{\n    mode = tunnel\n    esp_proposals = aes128gcm16\n    local_ts = 192.0.2.2/32\n    remote_ts = 192.0.2.1/32\n   }}\n  }}\n }}\n}}\n\
",
            c = c.display()
        ),
    )
    .unwrap();
    // swanctl loads private keys from SWANCTL_DIR/pkcs8 (PKCS#8, DER or PEM).
    std::fs::create_dir_all(dir.join("pkcs8")).unwrap();
    std::fs::copy(c.join(format!("{bob}.key")), dir.join("pkcs8/bob.der")).unwrap();
    let script = format!(
        "mount --bind {}/run /run && exec env STRONGSWAN_CONF={} {CHARON}",
        dir.display(),
        sconf.display()
    );
    // Its own mount namespace, so that /run is private to this daemon.
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .spawn()
        .unwrap();
    let charon = Charon { child, dir };
    let t0 = Instant::now();
    loop {
        let o = Command::new("swanctl")
            .args(["--load-all", "--uri", &charon.vici(), "--file"])
            .arg(charon.dir.join("swanctl.conf"))
            .env("SWANCTL_DIR", &charon.dir)
            .output()
            .unwrap();
        if o.status.success() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "swanctl --load-all: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    charon
}

fn creds(chain: &[&str], anchor: &str, now: i64) -> CertAuth {
    let read = |f: String| std::fs::read(certs_dir().join(f)).unwrap();
    CertAuth::new(
        PrivateKey::from_der(&read(format!("{}.key", chain[0]))).unwrap(),
        chain
            .iter()
            .map(|n| Certificate::from_der(&read(format!("{n}.crt"))).unwrap())
            .collect(),
        vec![Certificate::from_der(&read(format!("{anchor}.crt"))).unwrap()],
        now,
    )
    .unwrap()
}

/// One exchange with charon over UDP, retransmitting as the state says; the Child SA's
/// responder selectors, or why it failed.
fn run_initiator(
    alice: &[&str],
    bob_root: &str,
    pss: bool,
) -> Result<Vec<TrafficSelector>, IkeError> {
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (mut ci, _) = configs(GCM, Group::Curve25519, gcm_child());
    let mut c = creds(alice, bob_root, now_unix);
    c.rsa_pss = pss;
    ci.cert = Some(c);
    ci.local_id = Identity {
        id_type: id::FQDN,
        data: b"alice.example".to_vec(),
    };
    // Host-to-host selectors (charon's kernel-libipsec routes by the endpoints).
    ci.ts_local = ts([192, 0, 2, 1], [192, 0, 2, 1]);
    ci.ts_remote = ts([192, 0, 2, 2], [192, 0, 2, 2]);
    let sock = UdpSocket::bind("192.0.2.1:5000").unwrap();
    sock.connect("192.0.2.2:500").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let path = ike::sa::Path {
        local: "192.0.2.1:5000".parse().unwrap(),
        remote: "192.0.2.2:500".parse().unwrap(),
    };
    let mut rng = TestRng(now_unix as u64);
    let mut buf = vec![0u8; 65536];
    let mut i1 = ExpectSaInitResp::start(ci, path, Instant::now(), &mut rng).unwrap();
    sock.send(i1.request()).unwrap();
    let i2 = loop {
        match sock.recv(&mut buf) {
            Ok(n) => match i1.handle(&buf[..n], Instant::now(), &mut rng) {
                Step::Next { state, reply } => {
                    sock.send(&reply.unwrap()).unwrap();
                    break state;
                }
                Step::Stay { state, reply, .. } => {
                    if let Some(r) = reply {
                        sock.send(&r).unwrap();
                    }
                    i1 = state;
                }
                Step::Failed { error, .. } => return Err(error),
            },
            Err(_) => {
                if let Some(p) = i1.handle_timeout(Instant::now()).unwrap() {
                    sock.send(p).unwrap();
                }
            }
        }
    };
    let mut i2 = i2;
    let est = loop {
        match sock.recv(&mut buf) {
            Ok(n) => match i2.handle(&buf[..n]) {
                Step::Next { state, .. } => break state,
                Step::Stay { state, .. } => i2 = state,
                Step::Failed { error, .. } => return Err(error),
            },
            Err(_) => {
                if let Some(p) = i2.handle_timeout(Instant::now()).unwrap() {
                    sock.send(p).unwrap();
                }
            }
        }
    };
    Ok(est.child().unwrap().ts_r.clone())
}

/// One interoperability case: our certificate chain and the CA charon trusts, charon's
/// certificate and the CA we trust, RSA-PSS or not, and the signature schemes charon's
/// log must name (what it verified of ours, what it signed with).
struct Case {
    alice: &'static [&'static str],
    alice_root: &'static str,
    bob: &'static str,
    bob_root: &'static str,
    pss: bool,
    schemes: [&'static str; 2],
}

fn inner() {
    // Alice RSA-2048 through the RSA intermediate (PKCS#1 v1.5, then PSS); Bob (charon)
    // ECDSA P-384. Then Alice ECDSA P-256 against Bob RSA-3072. charon names the
    // scheme it verified and the one it signed with.
    let cases = [
        Case {
            alice: &["alice-rsa", "rsa-int"],
            alice_root: "rsa-root",
            bob: "bob-ec",
            bob_root: "ec-root",
            pss: false,
            schemes: ["RSA_EMSA_PKCS1_SHA2_256", "ECDSA_WITH_SHA384_DER"],
        },
        Case {
            alice: &["alice-rsa", "rsa-int"],
            alice_root: "rsa-root",
            bob: "bob-ec",
            bob_root: "ec-root",
            pss: true,
            schemes: ["RSA_EMSA_PSS_SHA2_256_SALT_32", "ECDSA_WITH_SHA384_DER"],
        },
        Case {
            alice: &["alice-ec"],
            alice_root: "ec-root",
            bob: "bob-rsa",
            bob_root: "rsa-root",
            pss: false,
            schemes: ["ECDSA_WITH_SHA256_DER", "RSA_EMSA_PKCS1_SHA2_256"],
        },
    ];
    for (case, c) in cases.into_iter().enumerate() {
        let (alice, alice_root, bob, bob_root, pss) =
            (c.alice, c.alice_root, c.bob, c.bob_root, c.pss);
        let [theirs, mine] = c.schemes;
        let charon = start_charon(bob, alice_root, case);
        let ts_r =
            run_initiator(alice, bob_root, pss).unwrap_or_else(|e| panic!("case {case}: {e}"));
        assert_eq!(ts_r, ts([192, 0, 2, 2], [192, 0, 2, 2]));
        let log = charon.log();
        for l in log.lines().filter(|l| l.contains("authentication of")) {
            println!("case {case}: {l}");
        }
        assert!(
            log.contains(&format!(
                "authentication of 'alice.example' with {theirs} successful"
            )),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "authentication of '192.0.2.2' (myself) with {mine} successful"
            )),
            "{log}"
        );
        assert!(log.contains("CHILD_SA c{1} established"), "{log}");
    }
    // charon does not trust Alice's CA: it answers AUTHENTICATION_FAILED.
    let charon = start_charon("bob-ec", "ec-root", 3);
    let e = run_initiator(&["alice-rsa", "rsa-int"], "ec-root", false).unwrap_err();
    assert_eq!(
        e,
        IkeError::PeerNotify(ike::consts::notify::AUTHENTICATION_FAILED)
    );
    drop(charon);
    // We do not trust charon's CA: our initiator refuses its IKE_AUTH response.
    let charon = start_charon("bob-ec", "rsa-root", 4);
    let e = run_initiator(&["alice-rsa", "rsa-int"], "rsa-root", false).unwrap_err();
    assert_eq!(e, IkeError::Certificate(ike::cert::CertError::Untrusted));
    assert!(charon.log().contains("IKE_SA ironswan[1] established"));
}

/// charon (Bob, ECDSA P-384, on ports 5500/5501) initiates to our responder (Alice, RSA
/// through the intermediate) on 192.0.2.1 ports 500 and 4500 (charon's kernel-libipsec
/// fakes a NAT, so IKE_AUTH comes to 4500 behind the non-ESP marker).
fn inner_responder() {
    let charon = start_charon_on("bob-ec", "rsa-root", 10, "port = 5500\n port_nat_t = 5501");
    let now_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (_, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    cr.cert = Some(creds(&["alice-rsa", "rsa-int"], "ec-root", now_unix));
    cr.local_id = Identity {
        id_type: id::FQDN,
        data: b"alice.example".to_vec(),
    };
    cr.remote_id = Some(Identity {
        id_type: id::IPV4_ADDR,
        data: vec![192, 0, 2, 2],
    });
    cr.ts_local = ts([192, 0, 2, 1], [192, 0, 2, 1]);
    cr.ts_remote = ts([192, 0, 2, 2], [192, 0, 2, 2]);
    let s500 = UdpSocket::bind("192.0.2.1:500").unwrap();
    let s4500 = UdpSocket::bind("192.0.2.1:4500").unwrap();
    for s in [&s500, &s4500] {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    let initiate = Command::new("swanctl")
        .args([
            "--initiate",
            "--child",
            "c",
            "--timeout",
            "10",
            "--uri",
            &charon.vici(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let jar = ike::sa::CookieJar::new(&[9; 32]);
    let mut rng = TestRng(now_unix as u64 ^ 0x55);
    let mut half = None;
    let mut buf = vec![0u8; 65536];
    let t0 = Instant::now();
    let est = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no IKE SA with charon"
        );
        if let Ok((n, from)) = s500.recv_from(&mut buf) {
            let ctx = ike::sa::InitContext {
                path: ike::sa::Path {
                    local: "192.0.2.1:500".parse().unwrap(),
                    remote: from,
                },
                cookies: &jar,
                require_cookie: false,
            };
            match ike::sa::respond_sa_init(&cr, &buf[..n], &ctx, &mut rng) {
                Ok((state, reply)) => {
                    s500.send_to(&reply, from).unwrap();
                    half = Some(state);
                }
                Err(e) => panic!("IKE_SA_INIT refused: {e:?}"),
            }
        }
        if let Ok((n, from)) = s4500.recv_from(&mut buf) {
            // RFC 3948 §2.2: IKE on port 4500 starts with four zero octets.
            assert_eq!(&buf[..4], &[0; 4], "non-ESP marker");
            let state = half.take().expect("IKE_AUTH before IKE_SA_INIT");
            match state.handle(&buf[4..n], &mut rng) {
                Step::Next { state, reply } => {
                    let mut out = vec![0u8; 4];
                    out.extend_from_slice(&reply.unwrap());
                    s4500.send_to(&out, from).unwrap();
                    break state;
                }
                Step::Stay { state, .. } => half = Some(state),
                Step::Failed { error, .. } => panic!("IKE_AUTH: {error}"),
            }
        }
    };
    let out = initiate.wait_with_output().unwrap();
    let log = charon.log();
    for l in log.lines().filter(|l| l.contains("authentication of")) {
        println!("responder: {l}");
    }
    assert!(
        out.status.success(),
        "swanctl --initiate: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        log.contains("authentication of 'alice.example' with RSA_EMSA_PKCS1_SHA2_256 successful"),
        "{log}"
    );
    assert!(
        log.contains(
            "authentication of '192.0.2.2' (myself) with ECDSA_WITH_SHA384_DER successful"
        ),
        "{log}"
    );
    assert!(!est.is_initiator());
    assert_eq!(
        est.child().unwrap().ts_i,
        ts([192, 0, 2, 2], [192, 0, 2, 2])
    );
}
