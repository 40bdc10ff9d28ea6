//! Certificate authentication (RFC 7427 digital signatures, RFC 7296 §3.6–§3.8): full
//! in-memory handshakes with RSA and ECDSA certificates from the test PKI of
//! `tests/certs/gen.sh` (openssl-made), the failures that must end in
//! AUTHENTICATION_FAILED, and the signed octets checked by the openssl CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use common::*;
use ike::cert::{self, CertAuth, CertError, Certificate, Hash, PrivateKey, SigAlg};
use ike::consts::{auth, id, notify};
use ike::dh::Group;
use ike::sa::{
    respond_sa_init, ExpectAuthReq, ExpectAuthResp, ExpectSaInitResp, Identity, IkeConfig, IkeError,
};
use ike::sk::SkCipher;
use ike::wire::{Message, Payload};
use zeroize::Zeroizing;

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/certs")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cert(name: &str) -> Certificate {
    Certificate::from_der(&fixture(&format!("{name}.crt"))).unwrap()
}

/// The time every test checks certificates at: 30 days into the test PKI's life.
fn now() -> i64 {
    cert("rsa-root").not_before + 30 * 86_400
}

/// Credentials: `chain[0]`'s key, `chain` sent, `anchors` trusted.
fn creds(chain: &[&str], anchors: &[&str]) -> CertAuth {
    let key = PrivateKey::from_der(&fixture(&format!("{}.key", chain[0]))).unwrap();
    CertAuth::new(
        key,
        chain.iter().map(|n| cert(n)).collect(),
        anchors.iter().map(|n| cert(n)).collect(),
        now(),
    )
    .unwrap()
}

const ANCHORS: &[&str] = &["rsa-root", "ec-root"];

/// Alice (initiator, FQDN alice.example) and Bob (responder, IPv4 192.0.2.2) with
/// certificates instead of the PSK (which is made different, so it cannot be what
/// authenticates).
fn cert_configs(alice: &[&str], bob: &[&str]) -> (IkeConfig, IkeConfig) {
    let (mut ci, mut cr) = configs(GCM, Group::Ecp256, gcm_child());
    ci.cert = Some(creds(alice, ANCHORS));
    cr.cert = Some(creds(bob, ANCHORS));
    ci.psk = Zeroizing::new(b"one".to_vec());
    cr.psk = Zeroizing::new(b"two".to_vec());
    (ci, cr)
}

#[test]
fn rsa_ecdsa_and_mixed_certificates_establish_with_matching_child_keys() {
    let cases: &[(&[&str], &[&str], bool)] = &[
        (&["alice-rsa", "rsa-int"], &["bob-rsa"], false),
        (&["alice-rsa", "rsa-int"], &["bob-rsa"], true),
        (&["alice-ec"], &["bob-ec"], false),
        (&["alice-rsa", "rsa-int"], &["bob-ec"], false),
        (&["alice-ec"], &["bob-rsa"], true),
    ];
    for (n, (alice, bob, pss)) in cases.iter().enumerate() {
        let (mut ci, mut cr) = cert_configs(alice, bob);
        for c in [&mut ci, &mut cr] {
            c.cert.as_mut().unwrap().rsa_pss = *pss;
        }
        let run = handshake(ci, cr, 40 + n as u64);
        assert_match(&run);
    }
}

#[test]
fn distinguished_name_identity_and_each_hash() {
    // IDi is the DER subject of Alice's certificate (ID_DER_ASN1_DN).
    let (mut ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    let dn = Identity {
        id_type: id::DER_ASN1_DN,
        data: cert("alice-ec").subject.clone(),
    };
    ci.local_id = dn.clone();
    cr.remote_id = Some(dn);
    assert_match(&handshake(ci, cr, 50));
    // The RSA signer uses the first of its hashes the peer announced.
    for (h, pss) in [(Hash::Sha384, false), (Hash::Sha512, true)] {
        let (mut ci, mut cr) = cert_configs(&["alice-rsa", "rsa-int"], &["bob-rsa"]);
        ci.cert.as_mut().unwrap().rsa_pss = pss;
        ci.cert.as_mut().unwrap().hashes = vec![h];
        cr.cert.as_mut().unwrap().hashes = vec![h];
        let (_, auth_data) = intercept_auth(ci.clone(), cr.clone());
        let alg_len = usize::from(auth_data[0]);
        let alg = SigAlg::from_algorithm_identifier(&auth_data[1..=alg_len]).unwrap();
        let want = if pss {
            SigAlg::RsaPss(h)
        } else {
            SigAlg::RsaPkcs1(h)
        };
        assert_eq!(alg, want);
        assert_match(&handshake(ci, cr, 51));
    }
}

/// A remote DN written as configuration text matches the certificate's subject RDN by
/// RDN (other ASCII case, UTF8String for PrintableString); another DN is refused.
#[test]
fn configured_distinguished_name_matches_by_attributes() {
    let subject = Certificate::name_to_string(&cert("alice-ec").subject);
    let written = ike::cert::parse_dn(&subject.to_uppercase()).unwrap();
    assert_ne!(written, cert("alice-ec").subject);
    let (mut ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    ci.local_id = Identity {
        id_type: id::DER_ASN1_DN,
        data: cert("alice-ec").subject.clone(),
    };
    cr.remote_id = Some(Identity {
        id_type: id::DER_ASN1_DN,
        data: written,
    });
    assert_match(&handshake(ci.clone(), cr.clone(), 52));
    cr.remote_id = Some(Identity {
        id_type: id::DER_ASN1_DN,
        data: ike::cert::parse_dn(&format!("{subject}, OU=other")).unwrap(),
    });
    assert_eq!(refused(ci, cr), IkeError::AuthenticationFailed);
}

/// Both sides after IKE_SA_INIT: the responder waiting for IKE_AUTH, the initiator
/// with its IKE_AUTH request, and the initiator's outbound SK cipher to open it.
struct AtAuth {
    r1: ExpectAuthReq,
    i2: ExpectAuthResp,
    rr: TestRng,
    sk: SkCipher,
    req: Vec<u8>,
    init_req: Vec<u8>,
    init_resp: Vec<u8>,
}

fn at_auth(ci: IkeConfig, cr: IkeConfig, seed: u64) -> AtAuth {
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(seed), TestRng(seed + 1));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let init_req = i1.request().to_vec();
    let (r1, init_resp) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let (i2, req) = next(i1.handle(&init_resp, now, &mut ri));
    let keys = i2.ike_keys();
    let sk = SkCipher::new(GCM, &keys.sk_ei, &keys.sk_ai).unwrap();
    AtAuth {
        r1,
        i2,
        rr,
        sk,
        req: req.unwrap(),
        init_req,
        init_resp,
    }
}

/// Runs IKE_SA_INIT and returns the AUTH payload (method, data) of the initiator's
/// IKE_AUTH request.
fn intercept_auth(ci: IkeConfig, cr: IkeConfig) -> (u8, Vec<u8>) {
    let a = at_auth(ci, cr, 3);
    let mut plain = Zeroizing::new(Vec::new());
    let (_, inner) = a.sk.open(&a.req, &mut plain).unwrap();
    inner
        .iter()
        .find_map(|p| match p {
            Payload::Auth(a) => Some((a.method, a.data.to_vec())),
            _ => None,
        })
        .unwrap()
}

/// Runs the handshake to the responder's IKE_AUTH verdict, with `tamper` applied to the
/// IKE_AUTH request's inner payloads (re-sealed with the real keys). Returns the
/// responder's error and the notify the initiator then received.
fn responder_refuses(
    ci: IkeConfig,
    cr: IkeConfig,
    tamper: impl FnOnce(&mut Vec<Payload<'_>>),
) -> (IkeError, IkeError) {
    let AtAuth {
        r1,
        i2,
        mut rr,
        sk,
        req,
        ..
    } = at_auth(ci, cr, 7);
    let mut plain = Zeroizing::new(Vec::new());
    let (h, mut inner) = sk.open(&req, &mut plain).unwrap();
    tamper(&mut inner);
    let req = sk.seal(&h, &inner, &[9; 8]).unwrap();
    let (error, reply) = failed(r1.handle(&req, &mut rr));
    let (peer, _) = failed(i2.handle(&reply.expect("AUTHENTICATION_FAILED sent")));
    (error, peer)
}

fn refused(ci: IkeConfig, cr: IkeConfig) -> IkeError {
    let (e, peer) = responder_refuses(ci, cr, |_| {});
    assert_eq!(
        peer,
        IkeError::PeerNotify(notify::AUTHENTICATION_FAILED),
        "{e}"
    );
    e
}

#[test]
fn bad_certificates_end_in_authentication_failed() {
    let c = |e| IkeError::Certificate(e);
    // Signed by a CA of the same name that is not a trust anchor.
    let (ci, cr) = cert_configs(&["alice-rogue"], &["bob-ec"]);
    assert_eq!(refused(ci, cr), c(CertError::Untrusted));
    // Chain incomplete: the intermediate is not sent and is no anchor.
    let (ci, cr) = cert_configs(&["alice-rsa"], &["bob-ec"]);
    assert_eq!(refused(ci, cr), c(CertError::Untrusted));
    // Trusted anchors of the other kind only.
    let (ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    cr.cert = Some(creds(&["bob-rsa"], &["rsa-root"]));
    assert_eq!(refused(ci, cr), c(CertError::Untrusted));
    // Expired (valid one day, checked after 30).
    let (ci, cr) = cert_configs(&["alice-expired"], &["bob-rsa"]);
    assert_eq!(refused(ci, cr), c(CertError::OutsideValidity));
    // Not yet valid: the responder's clock is before the certificates.
    let (ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    cr.cert.as_mut().unwrap().now = cert("alice-ec").not_before - 1;
    assert_eq!(refused(ci, cr), c(CertError::OutsideValidity));
    // Key usage without digitalSignature.
    let (ci, cr) = cert_configs(&["alice-nosig"], &["bob-rsa"]);
    assert_eq!(refused(ci, cr), c(CertError::KeyUsage));
    // IDi not in the certificate (the responder accepts any identity).
    for ident in [
        Identity {
            id_type: id::FQDN,
            data: b"mallory.example".to_vec(),
        },
        Identity {
            id_type: id::IPV4_ADDR,
            data: vec![192, 0, 2, 1],
        },
        Identity {
            id_type: id::DER_ASN1_DN,
            data: cert("bob-ec").subject.clone(),
        },
    ] {
        let (mut ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
        ci.local_id = ident;
        cr.remote_id = None;
        assert_eq!(refused(ci, cr), c(CertError::IdentityMismatch));
    }
    // The RFC 822 address in the SAN is a valid identity.
    let (mut ci, mut cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    let mail = Identity {
        id_type: id::RFC822_ADDR,
        data: b"alice@example.org".to_vec(),
    };
    ci.local_id = mail.clone();
    cr.remote_id = Some(mail);
    assert_match(&handshake(ci, cr, 60));
    // The initiator authenticates with its PSK where a signature is required.
    let (mut ci, cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    ci.cert = None;
    ci.psk = cr.psk.clone();
    assert_eq!(refused(ci, cr), c(CertError::NoCertificate));
}

#[test]
fn tampered_signature_or_certificate_is_refused() {
    for (alice, bob) in [
        (&["alice-ec"][..], &["bob-rsa"][..]),
        (&["alice-rsa", "rsa-int"], &["bob-ec"]),
    ] {
        // One bit of the signature flipped.
        let (ci, cr) = cert_configs(alice, bob);
        let mut sig = None;
        let (e, peer) = responder_refuses(ci, cr, |inner| {
            for p in inner.iter_mut() {
                if let Payload::Auth(a) = p {
                    let mut d = a.data.to_vec();
                    *d.last_mut().unwrap() ^= 1;
                    sig = Some(d);
                }
            }
            let d: &'static [u8] = Box::leak(sig.take().unwrap().into_boxed_slice());
            for p in inner.iter_mut() {
                if let Payload::Auth(a) = p {
                    a.data = d;
                }
            }
        });
        assert_eq!(e, IkeError::Certificate(CertError::BadSignature));
        assert_eq!(peer, IkeError::PeerNotify(notify::AUTHENTICATION_FAILED));
        // A byte of the end-entity certificate changed (its CA signature breaks).
        let (ci, cr) = cert_configs(alice, bob);
        let (e, _) = responder_refuses(ci, cr, |inner| {
            let Some(Payload::Cert(c)) = inner.iter_mut().find(|p| matches!(p, Payload::Cert(_)))
            else {
                panic!("no CERT")
            };
            let mut d = c.data.to_vec();
            let n = d.len();
            d[n - 40] ^= 0x10; // inside the CA signature
            c.data = Box::leak(d.into_boxed_slice());
        });
        assert_eq!(e, IkeError::Certificate(CertError::Untrusted));
    }
    // Nine intermediates more than the chain needs: refused before any signature check.
    let (ci, cr) = cert_configs(&["alice-rsa", "rsa-int"], &["bob-ec"]);
    let (e, _) = responder_refuses(ci, cr, |inner| {
        let int = inner
            .iter()
            .filter(|p| matches!(p, Payload::Cert(_)))
            .nth(1)
            .unwrap()
            .clone();
        let at = inner
            .iter()
            .position(|p| matches!(p, Payload::Auth(_)))
            .unwrap();
        for _ in 0..8 {
            inner.insert(at, int.clone());
        }
    });
    assert_eq!(e, IkeError::Certificate(CertError::TooManyCertificates));
}

#[test]
fn initiator_refuses_an_untrusted_responder() {
    let (mut ci, cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    ci.cert = Some(creds(&["alice-ec"], &["ec-root"]));
    let mut a = at_auth(ci, cr, 1);
    let (_resp, reply) = next(a.r1.handle(&a.req, &mut a.rr));
    let (e, _) = failed(a.i2.handle(&reply.unwrap()));
    assert_eq!(e, IkeError::Certificate(CertError::Untrusted));
}

#[test]
fn sa_init_carries_hash_algorithms_and_certreq() {
    let (ci, cr) = cert_configs(&["alice-ec"], &["bob-rsa"]);
    let now = Instant::now();
    let (mut ri, mut rr) = (TestRng(1), TestRng(2));
    let i1 = ExpectSaInitResp::start(ci, i_path(), now, &mut ri).unwrap();
    let hashes = |m: &Message<'_>| {
        m.payloads.iter().find_map(|p| match p {
            Payload::Notify(n) if n.ty == notify::SIGNATURE_HASH_ALGORITHMS => {
                Some(n.data.to_vec())
            }
            _ => None,
        })
    };
    let req = Message::parse(i1.request()).unwrap();
    assert_eq!(hashes(&req), Some(vec![0, 2, 0, 3, 0, 4]));
    let (_r1, resp1) = respond_sa_init(&cr, i1.request(), &ctx(), &mut rr).unwrap();
    let resp = Message::parse(&resp1).unwrap();
    assert_eq!(hashes(&resp), Some(vec![0, 2, 0, 3, 0, 4]));
    let certreq = resp
        .payloads
        .iter()
        .find_map(|p| match p {
            Payload::CertReq(c) => Some((c.encoding, c.data.to_vec())),
            _ => None,
        })
        .unwrap();
    // SHA-1 of each anchor's SubjectPublicKeyInfo, computed by openssl.
    let mut want = Vec::new();
    for a in ANCHORS {
        let spki = openssl(
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                &cert_path(a),
                "-pubkey",
                "-noout",
            ],
            None,
        );
        let der = openssl(&["pkey", "-pubin", "-outform", "DER"], Some(&spki));
        want.extend(openssl(&["dgst", "-sha1", "-binary"], Some(&der)));
    }
    assert_eq!(certreq, (4, want));
}

#[test]
fn classic_ecdsa_methods_without_hash_notification() {
    let octets = b"RealMessage | Nonce | prf(SK_p, ID')";
    for (name, method) in [("alice-ec", 9), ("bob-ec", 10)] {
        let c = creds(&[name], ANCHORS);
        let (m, data) = c.sign_auth(&[], octets).unwrap();
        assert_eq!(m, method);
        let key = cert(name).key.unwrap();
        cert::verify_auth(&key, m, &data, octets).unwrap();
        assert_eq!(
            cert::verify_auth(&key, m, &data, b"other"),
            Err(CertError::BadSignature)
        );
        // Method 14 when the peer announced SHA2-256/384.
        let (m, _) = c.sign_auth(&[2, 3], octets).unwrap();
        assert_eq!(m, auth::DIGITAL_SIGNATURE);
    }
    // RSA has no classic method we can sign with (method 1 is SHA-1).
    let c = creds(&["bob-rsa"], ANCHORS);
    assert_eq!(
        c.sign_auth(&[], octets).unwrap_err(),
        CertError::NoCommonHash
    );
    assert_eq!(
        c.sign_auth(&[1, 5], octets).unwrap_err(),
        CertError::NoCommonHash
    );
}

#[test]
fn algorithm_identifiers_are_those_of_rfc_7427_appendix_a() {
    let cases = [
        (
            SigAlg::RsaPkcs1(Hash::Sha256),
            "300d06092a864886f70d01010b0500",
        ),
        (
            SigAlg::RsaPkcs1(Hash::Sha384),
            "300d06092a864886f70d01010c0500",
        ),
        (
            SigAlg::RsaPkcs1(Hash::Sha512),
            "300d06092a864886f70d01010d0500",
        ),
        (SigAlg::Ecdsa(Hash::Sha256), "300a06082a8648ce3d040302"),
        (SigAlg::Ecdsa(Hash::Sha384), "300a06082a8648ce3d040303"),
        (SigAlg::Ecdsa(Hash::Sha512), "300a06082a8648ce3d040304"),
        (
            SigAlg::RsaPss(Hash::Sha256),
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500\
             a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120",
        ),
    ];
    for (alg, hex_) in cases {
        let der = hex::decode(hex_).unwrap();
        assert_eq!(hex::encode(alg.algorithm_identifier()), hex_, "{alg:?}");
        assert_eq!(SigAlg::from_algorithm_identifier(&der).unwrap(), alg);
    }
    // sha256WithRSAEncryption without the NULL parameter is accepted; SHA-1 is not.
    let no_null = hex::decode("300b06092a864886f70d01010b").unwrap();
    assert_eq!(
        SigAlg::from_algorithm_identifier(&no_null),
        Ok(SigAlg::RsaPkcs1(Hash::Sha256))
    );
    let sha1 = hex::decode("300d06092a864886f70d0101050500").unwrap();
    assert_eq!(
        SigAlg::from_algorithm_identifier(&sha1),
        Err(CertError::Unsupported)
    );
}

#[test]
fn certificates_parse_as_openssl_shows_them() {
    let a = cert("alice-ec");
    assert_eq!(
        Certificate::name_to_string(&a.subject),
        "C=XX, O=Ironswan Test, CN=alice.example"
    );
    assert_eq!(
        Certificate::name_to_string(&a.issuer),
        "C=XX, O=Ironswan Test, CN=EC Root"
    );
    assert_eq!(
        a.alt_names,
        vec![
            cert::AltName::Dns("alice.example".into()),
            cert::AltName::Email("alice@example.org".into())
        ]
    );
    assert_eq!(
        cert("bob-ec").alt_names,
        vec![cert::AltName::Ip(vec![192, 0, 2, 2])]
    );
    assert_eq!(a.key.as_ref().unwrap().describe(), "ECDSA-P256");
    assert_eq!(cert("bob-rsa").key.as_ref().unwrap().describe(), "RSA-3072");
    assert!(cert("rsa-root").is_ca() && cert("rsa-int").is_ca() && !a.is_ca());
    assert_eq!(cert("rsa-int").ca, Some((true, Some(0))));
    assert!(!cert("alice-nosig").may_sign_auth());
    // Validity and fingerprint against openssl's own reading.
    let fp = x509_text("alice-ec", &["-fingerprint", "-sha256"]);
    let fp_hex: String = fp
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase();
    assert_eq!(hex::encode(a.sha256_fingerprint()), fp_hex);
    let end = x509_text("alice-ec", &["-enddate", "-dateopt", "iso_8601"]);
    // notAfter=2036-11-24 13:24:48Z
    let end = end.trim().trim_start_matches("notAfter=").to_string();
    let secs = Command::new("date")
        .args(["-u", "-d", &end, "+%s"])
        .output()
        .unwrap()
        .stdout;
    let secs: i64 = String::from_utf8(secs).unwrap().trim().parse().unwrap();
    assert_eq!(a.not_after, secs);
    // Truncated or padded DER is refused, never a panic.
    let der = fixture("alice-ec.crt");
    for n in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(Certificate::from_der(&der[..n]).is_err());
    }
    let mut padded = der.clone();
    padded.push(0);
    assert_eq!(Certificate::from_der(&padded), Err(CertError::Malformed));
}

/// What `openssl x509 -noout OPTS` prints about a fixture certificate.
fn x509_text(name: &str, opts: &[&str]) -> String {
    let path = cert_path(name);
    let mut args = vec!["x509", "-inform", "DER", "-in", &path, "-noout"];
    args.extend_from_slice(opts);
    String::from_utf8(openssl(&args, None)).unwrap()
}

fn cert_path(name: &str) -> String {
    format!("{}/tests/certs/{name}.crt", env!("CARGO_MANIFEST_DIR"))
}

/// Runs the openssl CLI (an independent implementation) with `stdin`, returns stdout.
fn openssl(args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl CLI (apt package openssl)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.unwrap_or(&[]))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

/// The IKE_AUTH request's signature checked by openssl over octets the test builds
/// itself: RealMessage1 | Nr | HMAC-SHA-256(SK_pi, IDi') (RFC 7296 §2.15), with the
/// HMAC made by openssl too.
#[test]
fn openssl_verifies_our_auth_signatures() {
    let dir = std::env::temp_dir().join(format!("ike-cert-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&[&str], bool, &str, &[&str])] = &[
        (&["alice-rsa", "rsa-int"], false, "sha256", &[]),
        (
            &["alice-rsa", "rsa-int"],
            true,
            "sha256",
            &[
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:-1",
            ],
        ),
        (&["alice-ec"], false, "sha256", &[]),
    ];
    for (chain, pss, dgst, opts) in cases {
        let (mut ci, cr) = cert_configs(chain, &["bob-rsa"]);
        ci.cert.as_mut().unwrap().rsa_pss = *pss;
        let a = at_auth(ci, cr, 3);
        let real_message1 = &a.init_req;
        let nr = Message::parse(&a.init_resp)
            .unwrap()
            .payloads
            .iter()
            .find_map(|p| match p {
                Payload::Nonce(n) => Some(n.to_vec()),
                _ => None,
            })
            .unwrap();
        let keys = a.i2.ike_keys();
        let mut plain = Zeroizing::new(Vec::new());
        let (_, inner) = a.sk.open(&a.req, &mut plain).unwrap();
        let (idi, auth_data) = (
            inner
                .iter()
                .find_map(|p| match p {
                    Payload::IdI(i) => Some(*i),
                    _ => None,
                })
                .unwrap(),
            inner
                .iter()
                .find_map(|p| match p {
                    Payload::Auth(a) => Some(a.data.to_vec()),
                    _ => None,
                })
                .unwrap(),
        );
        let id_body = [&[idi.id_type, 0, 0, 0][..], idi.data].concat();
        let mac = openssl(
            &[
                "dgst",
                "-sha256",
                "-binary",
                "-mac",
                "HMAC",
                "-macopt",
                &format!("hexkey:{}", hex::encode(&*keys.sk_pi)),
            ],
            Some(&id_body),
        );
        let octets = [&real_message1[..], &nr, &mac].concat();
        let n = usize::from(auth_data[0]);
        let sig = &auth_data[1 + n..];
        let pubkey = openssl(
            &[
                "x509",
                "-inform",
                "DER",
                "-in",
                &cert_path(chain[0]),
                "-pubkey",
                "-noout",
            ],
            None,
        );
        let (kf, sf, of) = (dir.join("pub.pem"), dir.join("sig"), dir.join("octets"));
        std::fs::write(&kf, pubkey).unwrap();
        std::fs::write(&sf, sig).unwrap();
        std::fs::write(&of, &octets).unwrap();
        let mut args = vec![
            "dgst",
            "-verify",
            kf.to_str().unwrap(),
            "-signature",
            sf.to_str().unwrap(),
        ];
        let d = format!("-{dgst}");
        args.push(&d);
        args.extend_from_slice(opts);
        args.push(of.to_str().unwrap());
        let ok = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            ok.status.success(),
            "{chain:?} pss={pss}: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
        // And a wrong octet is refused by openssl too (the check can fail).
        let mut bad = octets.clone();
        bad[0] ^= 1;
        std::fs::write(&of, &bad).unwrap();
        assert!(!Command::new("openssl")
            .args(&args)
            .output()
            .unwrap()
            .status
            .success());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
    /// Any corruption of a certificate is parsed to an error or to a certificate that
    /// does not validate (never a panic, never trusted), and so is any corruption of an
    /// AUTH value.
    #[test]
    fn corrupted_certificates_and_signatures_never_validate(
        at in 0usize..2000, xor in 1u8..=255, cut in 0usize..2000, which in 0usize..3,
    ) {
        let name = ["alice-ec", "bob-rsa", "alice-rsa"][which];
        let mut der = fixture(&format!("{name}.crt"));
        let at = at % der.len();
        der[at] ^= xor;
        let c = creds(&["bob-ec"], ANCHORS);
        let chain: Vec<&[u8]> = if name == "alice-rsa" {
            vec![&der, &[]]
        } else {
            vec![&der]
        };
        proptest::prop_assert!(c.verify_chain(&chain).is_err());
        let good = fixture(&format!("{name}.crt"));
        let _ = Certificate::from_der(&good[..cut % good.len()]);
        let octets = b"octets";
        let (m, mut data) = c.sign_auth(&[2, 3, 4], octets).unwrap();
        let i = at % data.len();
        data[i] ^= xor;
        let key = cert("bob-ec").key.unwrap();
        proptest::prop_assert!(cert::verify_auth(&key, m, &data, octets).is_err());
    }
}

/// The configured method binds the peer: `rsa_pss` accepts only RSASSA-PSS, `rsa_sig`
/// only PKCS#1 v1.5, `ecdsa_shaN` only ECDSA with that hash, each only from the fitting
/// key type; `cert` anything. Both the responder and the initiator check it.
#[test]
fn configured_method_constrains_the_peer() {
    use cert::PeerAuth;
    let not_allowed = IkeError::Certificate(CertError::MethodNotAllowed);
    // (alice's chain, alice signs PSS, what bob allows, accepted)
    let cases: &[(&[&str], bool, PeerAuth, bool)] = &[
        (&["alice-rsa", "rsa-int"], false, PeerAuth::RsaPss, false),
        (&["alice-rsa", "rsa-int"], true, PeerAuth::RsaPss, true),
        (&["alice-rsa", "rsa-int"], true, PeerAuth::RsaPkcs1, false),
        (&["alice-rsa", "rsa-int"], false, PeerAuth::RsaPkcs1, true),
        (
            &["alice-rsa", "rsa-int"],
            false,
            PeerAuth::Ecdsa(None),
            false,
        ),
        (&["alice-rsa", "rsa-int"], true, PeerAuth::Any, true),
        (&["alice-ec"], false, PeerAuth::RsaPss, false),
        (&["alice-ec"], false, PeerAuth::RsaPkcs1, false),
        (
            &["alice-ec"],
            false,
            PeerAuth::Ecdsa(Some(Hash::Sha384)),
            false,
        ),
        (
            &["alice-ec"],
            false,
            PeerAuth::Ecdsa(Some(Hash::Sha512)),
            false,
        ),
        (
            &["alice-ec"],
            false,
            PeerAuth::Ecdsa(Some(Hash::Sha256)),
            true,
        ),
        (&["alice-ec"], false, PeerAuth::Ecdsa(None), true),
        (&["alice-ec"], false, PeerAuth::Any, true),
    ];
    for (n, (alice, pss, allow, accepted)) in cases.iter().enumerate() {
        let (mut ci, mut cr) = cert_configs(alice, &["bob-ec"]);
        ci.cert.as_mut().unwrap().rsa_pss = *pss;
        cr.cert.as_mut().unwrap().peer = *allow;
        if *accepted {
            assert_match(&handshake(ci, cr, 90 + n as u64));
        } else {
            assert_eq!(refused(ci, cr), not_allowed, "case {n}");
        }
    }
    // The initiator: bob signs ECDSA P-384 with SHA-384; alice asks for SHA-256.
    let (mut ci, cr) = cert_configs(&["alice-ec"], &["bob-ec"]);
    ci.cert.as_mut().unwrap().peer = PeerAuth::Ecdsa(Some(Hash::Sha256));
    let mut a = at_auth(ci, cr, 1);
    let (_resp, reply) = next(a.r1.handle(&a.req, &mut a.rr));
    let (e, _) = failed(a.i2.handle(&reply.unwrap()));
    assert_eq!(e, not_allowed);
    // ... and with SHA-384 allowed, it completes.
    let (mut ci, cr) = cert_configs(&["alice-ec"], &["bob-ec"]);
    ci.cert.as_mut().unwrap().peer = PeerAuth::Ecdsa(Some(Hash::Sha384));
    assert_match(&handshake(ci, cr, 120));
}

/// The classic methods (RFC 4754 ECDSA 9/10/11, RSA digital signature 1) against each
/// constraint, and the key type checked whatever the method claims.
#[test]
fn peer_auth_classic_methods_and_key_types() {
    use cert::PeerAuth::{self, Any, Ecdsa, RsaPkcs1, RsaPss};
    let p256 = cert("alice-ec").key.unwrap();
    let p384 = cert("bob-ec").key.unwrap();
    let rsa = cert("bob-rsa").key.unwrap();
    let sha = |h| Ecdsa(Some(h));
    let ok = |p: PeerAuth, k, m: u8| p.permits(k, m, b"sig").is_ok();
    assert!(ok(sha(Hash::Sha256), &p256, 9) && ok(Ecdsa(None), &p256, 9));
    assert!(!ok(sha(Hash::Sha384), &p256, 9));
    assert!(ok(sha(Hash::Sha384), &p384, 10) && !ok(sha(Hash::Sha256), &p384, 10));
    assert!(ok(sha(Hash::Sha512), &p384, 11) && !ok(sha(Hash::Sha384), &p384, 11));
    assert!(!ok(Ecdsa(None), &rsa, 9), "ECDSA method with an RSA key");
    assert!(ok(RsaPkcs1, &rsa, auth::RSA_SIG));
    assert!(!ok(RsaPss, &rsa, auth::RSA_SIG));
    assert!(
        !ok(RsaPkcs1, &p256, auth::RSA_SIG),
        "RSA method with an EC key"
    );
    assert!(!ok(Ecdsa(None), &p256, auth::SHARED_KEY_MIC));
    assert!(ok(Any, &p256, auth::RSA_SIG), "left to the signature check");
    // RFC 7427: the AlgorithmIdentifier decides; a PSS identifier under an EC key or an
    // ECDSA one under an RSA key is refused.
    let ds = |a: SigAlg| {
        let id = a.algorithm_identifier();
        [&[id.len() as u8][..], &id, b"sig"].concat()
    };
    let permits = |p: PeerAuth, k, a| p.permits(k, auth::DIGITAL_SIGNATURE, &ds(a)).is_ok();
    for h in Hash::ALL {
        assert!(permits(RsaPss, &rsa, SigAlg::RsaPss(h)));
        assert!(!permits(RsaPss, &rsa, SigAlg::RsaPkcs1(h)));
        assert!(permits(RsaPkcs1, &rsa, SigAlg::RsaPkcs1(h)));
        assert!(!permits(RsaPkcs1, &rsa, SigAlg::RsaPss(h)));
        assert!(!permits(RsaPss, &p256, SigAlg::RsaPss(h)));
        assert!(permits(sha(h), &p384, SigAlg::Ecdsa(h)));
        assert!(!permits(sha(h), &rsa, SigAlg::Ecdsa(h)));
        for other in Hash::ALL.into_iter().filter(|&o| o != h) {
            assert!(!permits(sha(h), &p384, SigAlg::Ecdsa(other)));
        }
    }
    assert_eq!(
        RsaPss.permits(&rsa, auth::DIGITAL_SIGNATURE, &[9, 1]),
        Err(CertError::Malformed)
    );
}
