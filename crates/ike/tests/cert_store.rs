//! The certificate store (`ike::cert::store`): import of PEM and DER certificates and
//! keys (keys mode 0600), listing against openssl's reading, removal by fingerprint,
//! input errors naming file and line, and credentials from the store completing a
//! handshake.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ike::cert::store::{CertStore, Kind};
use ike::cert::Certificate;
use ike::consts::id;
use ike::dh::Group;
use ike::wire::Id;

/// A scratch directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("ike-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/certs")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap()
}

/// openssl's PEM form of a fixture (an independent encoder).
fn pem(args: &[&str], name: &str) -> Vec<u8> {
    let p = fixture_path(name);
    let mut a: Vec<&str> = args.to_vec();
    a.extend([
        "-inform",
        "DER",
        "-in",
        p.to_str().unwrap(),
        "-outform",
        "PEM",
    ]);
    let out = Command::new("openssl")
        .args(&a)
        .output()
        .expect("openssl CLI");
    assert!(out.status.success(), "openssl {a:?}");
    out.stdout
}

fn openssl_fingerprint(name: &str) -> String {
    let p = fixture_path(name);
    let out = Command::new("openssl")
        .args([
            "x509",
            "-inform",
            "DER",
            "-in",
            p.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha256",
        ])
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    s.trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "")
        .to_lowercase()
}

fn now() -> i64 {
    Certificate::from_der(&fixture("rsa-root.crt"))
        .unwrap()
        .not_before
        + 30 * 86_400
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Alice's and Bob's stores, filled the way an administrator would: anchors, own
/// certificate bundle, own key.
fn filled(dir: &Path, who: &str) -> CertStore {
    let s = CertStore::open(dir).unwrap();
    let src = Path::new("input");
    for root in ["rsa-root", "ec-root"] {
        s.import(src, &pem(&["x509"], &format!("{root}.crt")), true)
            .unwrap();
    }
    if who == "alice" {
        let bundle = [
            pem(&["x509"], "alice-rsa.crt"),
            pem(&["x509"], "rsa-int.crt"),
        ]
        .concat();
        assert_eq!(s.import(src, &bundle, false).unwrap().len(), 2);
        // PKCS#1 "RSA PRIVATE KEY" PEM.
        s.import(src, &pem(&["rsa", "-traditional"], "alice-rsa.key"), false)
            .unwrap();
    } else {
        // DER certificate and DER PKCS#8 key.
        s.import(src, &fixture("bob-ec.crt"), false).unwrap();
        s.import(src, &fixture("bob-ec.key"), false).unwrap();
    }
    s
}

#[test]
fn import_list_and_key_modes() {
    let t = TempDir::new("list");
    let s = filled(&t.0, "alice");
    assert_eq!(mode(&t.0.join("keys")), 0o700);
    let keys: Vec<_> = std::fs::read_dir(t.0.join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(mode(&keys[0]), 0o600);
    let list = s.list().unwrap();
    assert_eq!(list.len(), 5, "{list:#?}");
    let find = |fp: &str| list.iter().find(|e| e.fingerprint == fp).unwrap();
    let root = find(&openssl_fingerprint("rsa-root.crt"));
    assert_eq!(root.key_type, "RSA-2048");
    let Kind::Certificate {
        subject,
        issuer,
        trusted,
        has_key,
        not_after,
        ..
    } = &root.kind
    else {
        panic!()
    };
    assert_eq!(subject, "C=XX, O=Ironswan Test, CN=RSA Root");
    assert_eq!(subject, issuer);
    assert!(*trusted && !*has_key);
    assert!(*not_after > now());
    let alice = find(&openssl_fingerprint("alice-rsa.crt"));
    assert!(matches!(
        &alice.kind,
        Kind::Certificate { trusted: false, has_key: true, issuer, .. } if issuer == "C=XX, O=Ironswan Test, CN=RSA Intermediate"
    ));
    assert_eq!(
        find(&openssl_fingerprint("ec-root.crt")).key_type,
        "ECDSA-P384"
    );
    assert!(list
        .iter()
        .any(|e| e.kind == Kind::PrivateKey && e.key_type == "RSA-2048"));
    // Importing again changes nothing; re-importing an anchor as untrusted moves it.
    filled(&t.0, "alice");
    assert_eq!(s.list().unwrap(), list);
    s.import(Path::new("x"), &fixture("ec-root.crt"), false)
        .unwrap();
    let l2 = s.list().unwrap();
    assert_eq!(l2.len(), 5);
    assert!(matches!(
        find_in(&l2, &openssl_fingerprint("ec-root.crt")),
        Kind::Certificate { trusted: false, .. }
    ));
}

fn find_in(l: &[ike::cert::store::Entry], fp: &str) -> Kind {
    l.iter().find(|e| e.fingerprint == fp).unwrap().kind.clone()
}

#[test]
fn remove_by_fingerprint_prefix() {
    let t = TempDir::new("remove");
    let s = filled(&t.0, "bob");
    let fp = openssl_fingerprint("ec-root.crt");
    assert!(s
        .remove("abc")
        .unwrap_err()
        .to_string()
        .contains("at least 8 hex digits"));
    assert!(s
        .remove("00000000")
        .unwrap_err()
        .to_string()
        .contains("no object"));
    let gone = s.remove(&fp[..12]).unwrap();
    assert_eq!(gone.fingerprint, fp);
    assert_eq!(s.list().unwrap().len(), 3);
    // The key, by its fingerprint from the listing.
    let key = s
        .list()
        .unwrap()
        .into_iter()
        .find(|e| e.kind == Kind::PrivateKey)
        .unwrap();
    s.remove(&key.fingerprint).unwrap();
    assert!(s.list().unwrap().iter().all(|e| e.kind != Kind::PrivateKey));
    assert!(std::fs::read_dir(t.0.join("keys"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn bad_input_is_refused_with_file_and_line() {
    let t = TempDir::new("bad");
    let s = CertStore::open(&t.0).unwrap();
    let src = Path::new("/etc/inet/ike/in.pem");
    let cert = String::from_utf8(pem(&["x509"], "alice-ec.crt")).unwrap();
    let end_line = format!("in.pem:{}:", cert.lines().count());
    let cases = [
        (
            cert.replace("-----END CERTIFICATE-----", "-----END PRIVATE KEY-----"),
            end_line.as_str(),
            "expected END CERTIFICATE",
        ),
        (
            cert.replace("-----END CERTIFICATE-----\n", ""),
            "in.pem:1:",
            "no END line",
        ),
        (
            format!("junk\n{}", cert.replacen('M', "*", 1)),
            "in.pem:2:",
            "invalid base64",
        ),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                .to_string(),
            "in.pem:1:",
            "encrypted private keys are not supported",
        ),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_string(),
            "in.pem:1:",
            "CERTIFICATE: malformed",
        ),
        (
            "hello\n".to_string(),
            "in.pem:",
            "not a DER certificate or private key",
        ),
    ];
    for (input, place, what) in cases {
        let e = s
            .import(src, input.as_bytes(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/inet/ike/") && e.contains(place) && e.contains(what),
            "{e}"
        );
    }
    assert!(s.list().unwrap().is_empty());
}

#[test]
fn credentials_from_stores_complete_a_handshake() {
    let (ta, tb) = (TempDir::new("alice"), TempDir::new("bob"));
    let (sa, sb) = (filled(&ta.0, "alice"), filled(&tb.0, "bob"));
    let (mut ci, mut cr) = configs(GCM, Group::Curve25519, gcm_child());
    let alice_id = Id {
        id_type: id::FQDN,
        data: b"alice.example",
    };
    let bob_id = Id {
        id_type: id::IPV4_ADDR,
        data: &[192, 0, 2, 2],
    };
    let ca = sa.credentials(&alice_id, now()).unwrap();
    // The chain found: Alice's certificate, then the intermediate.
    let chain: Vec<&[u8]> = ca.chain_der().collect();
    assert_eq!(
        chain,
        [&fixture("alice-rsa.crt")[..], &fixture("rsa-int.crt")[..]]
    );
    ci.cert = Some(ca);
    cr.cert = Some(sb.credentials(&bob_id, now()).unwrap());
    cr.psk = zeroize::Zeroizing::new(b"not the same".to_vec());
    assert_match(&handshake(ci, cr, 77));
    // No certificate for another identity.
    let e = sa.credentials(&bob_id, now()).unwrap_err().to_string();
    assert!(e.contains("no certificate with a private key"), "{e}");
}

/// The one file in `dir`.
fn only_file(dir: &Path) -> PathBuf {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// `check` on the store in `dir` opened read-only: `Err` text for a refusal.
fn open_and_read(dir: &Path) -> Result<(), String> {
    let s = CertStore::open_existing(dir).map_err(|e| e.to_string())?;
    s.list().map(drop).map_err(|e| e.to_string())
}

/// Applies `spoil`, expects the read-only open (or the reads) to fail naming `path` and
/// saying `what`, then `mend`s and expects success again.
fn refused(dir: &Path, path: &Path, what: &str, spoil: impl Fn(), mend: impl Fn()) {
    spoil();
    let e = open_and_read(dir).expect_err(what);
    assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
    assert!(e.contains(what), "{e}");
    mend();
    open_and_read(dir).unwrap();
}

/// A store (or its certs/, anchors/, keys/) anybody but root could change is refused;
/// keys are regular files of mode 0600 owned by root, never reached through a symbolic
/// link; certificates and anchors root-owned and not group/other-writable. Opening an
/// existing store creates and chmods nothing.
#[test]
fn a_store_others_could_change_is_refused() {
    use std::os::unix::fs::{chown, symlink};
    let t = TempDir::new("perms");
    let s = filled(&t.0, "alice");
    drop(s);
    let chmod = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    let owner = |p: &Path, uid: u32| chown(p, Some(uid), None).unwrap();
    open_and_read(&t.0).unwrap();

    // Read-only: a missing subdirectory is not created, keys/ is not chmodded.
    chmod(&t.0.join("keys"), 0o750);
    open_and_read(&t.0).unwrap();
    assert_eq!(mode(&t.0.join("keys")), 0o750);
    chmod(&t.0.join("keys"), 0o700);
    std::fs::rename(t.0.join("certs"), t.0.join("certs.away")).unwrap();
    let e = open_and_read(&t.0).unwrap_err();
    assert!(
        e.starts_with(&format!("{}: ", t.0.join("certs").display())),
        "{e}"
    );
    assert!(!t.0.join("certs").exists());
    std::fs::rename(t.0.join("certs.away"), t.0.join("certs")).unwrap();

    let dot = t.0.join(".");
    for (dir, shown) in [
        (t.0.clone(), dot.clone()),
        (t.0.join("anchors"), t.0.join("anchors")),
        (t.0.join("keys"), t.0.join("keys")),
        (t.0.join("certs"), t.0.join("certs")),
    ] {
        let m = mode(&dir);
        for bad in [0o775, 0o757] {
            refused(
                &t.0,
                &shown,
                &format!("mode {bad:04o}: writable by group or others"),
                || chmod(&dir, bad),
                || chmod(&dir, m),
            );
        }
        refused(
            &t.0,
            &shown,
            "owned by uid 65534: a certificate store directory must be owned by root",
            || owner(&dir, 65534),
            || owner(&dir, 0),
        );
    }
    // anchors/ replaced by a link to a good directory.
    let real = t.0.join("anchors.real");
    refused(
        &t.0,
        &t.0.join("anchors"),
        "not a directory (a symbolic link is refused)",
        || {
            std::fs::rename(t.0.join("anchors"), &real).unwrap();
            symlink(&real, t.0.join("anchors")).unwrap();
        },
        || {
            std::fs::remove_file(t.0.join("anchors")).unwrap();
            std::fs::rename(&real, t.0.join("anchors")).unwrap();
        },
    );

    let key = only_file(&t.0.join("keys"));
    for bad in [0o640, 0o604, 0o400, 0o4600] {
        refused(
            &t.0,
            &key,
            &format!("mode {bad:04o}: a private key must be in a file of mode 0600"),
            || chmod(&key, bad),
            || chmod(&key, 0o600),
        );
    }
    refused(
        &t.0,
        &key,
        "owned by uid 65534: a private key must be in a file owned by root",
        || owner(&key, 65534),
        || owner(&key, 0),
    );
    // A link to a perfectly good key file elsewhere is still refused.
    let elsewhere = t.0.join("key.elsewhere");
    refused(
        &t.0,
        &key,
        "a symbolic link: refused",
        || {
            std::fs::rename(&key, &elsewhere).unwrap();
            symlink(&elsewhere, &key).unwrap();
        },
        || {
            std::fs::remove_file(&key).unwrap();
            std::fs::rename(&elsewhere, &key).unwrap();
        },
    );
    let anchor =
        t.0.join("anchors")
            .join(format!("{}.der", openssl_fingerprint("rsa-root.crt")));
    refused(
        &t.0,
        &anchor,
        "mode 0666: writable by group or others, a certificate must not be",
        || chmod(&anchor, 0o666),
        || chmod(&anchor, 0o644),
    );
    refused(
        &t.0,
        &anchor,
        "owned by uid 65534: a certificate must be in a file owned by root",
        || owner(&anchor, 65534),
        || owner(&anchor, 0),
    );
    // A directory where a key file should be is not a regular file.
    let fake = t.0.join("keys").join(format!("{}.der", "0".repeat(64)));
    refused(
        &t.0,
        &fake,
        "not a regular file",
        || std::fs::create_dir(&fake).unwrap(),
        || std::fs::remove_dir(&fake).unwrap(),
    );
}
