//! `in-ikev2d -c`: checks the configuration and the pre-shared keys file and exits,
//! naming the file, line and column of the first error, and refusing a keys file that
//! others may read; certificate rules are checked against the store `ikev2cert` fills.
//! Runs the real binaries.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certtool;

use certtool::pki;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const IKEV2D: &str = env!("CARGO_BIN_EXE_in-ikev2d");

const CONFIG: &str = "ikesa_xform { encr_alg aes-gcm prf sha256 dh_group 19 }\n\
{\n  label \"a-b\"\n  auth_method preshared\n  local_addr 192.0.2.1\n  remote_addr 192.0.2.2\n}\n";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

fn check(config: &str, psk: &str) -> (bool, String, String) {
    let o = Command::new(IKEV2D)
        .args(["-c", "-f", config, "--preshared", psk])
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn dash_c_checks_the_configuration_and_the_keys() {
    let dir = Dir(std::env::temp_dir().join(format!("ikev2d-check-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let psk = write(
        &dir.0,
        "psk",
        "{ label \"a-b\" key \"secret words\" }\n",
        0o600,
    );
    let good = write(&dir.0, "good.config", CONFIG, 0o644);

    let root = ipsec_sys::geteuid() == 0;
    if root {
        let (ok, out, err) = check(&good, &psk);
        assert!(ok, "{err}");
        assert!(
            out.ends_with("good.config: 1 rule(s), 1 pre-shared key(s): OK\n"),
            "{out}"
        );
    }

    // A syntax error: file, line, column, what was expected; exit status 1.
    let bad = write(
        &dir.0,
        "bad.config",
        &CONFIG.replace("remote_addr 192.0.2.2", "remote_addr 192.0.2"),
        0o644,
    );
    let (ok, _, err) = check(&bad, &psk);
    assert!(!ok);
    assert!(
        err.contains(
            "bad.config:6:15: expected an IP address or ADDRESS/PREFIX, found \"192.0.2\""
        ),
        "{err}"
    );

    // A keys file others can read is refused, and its contents are never printed.
    let open = write(
        &dir.0,
        "open.psk",
        "{ label \"a-b\" key \"secret words\" }\n",
        0o644,
    );
    let (ok, _, err) = check(&good, &open);
    assert!(!ok);
    assert!(
        err.contains("mode 0644: pre-shared keys must be in a file of mode 0600"),
        "{err}"
    );
    assert!(!err.contains("secret"), "{err}");

    // A rule without a key.
    if root {
        let other = write(&dir.0, "other.psk", "{ label \"x\" key 0x0102 }\n", 0o600);
        let (ok, _, err) = check(&good, &other);
        assert!(!ok);
        assert!(
            err.contains("good.config:2: rule \"a-b\" has no key in"),
            "{err}"
        );
    }
}

const CERT_RULE: &str = "{\n  label \"gw\"\n  auth_method AUTH\n  local_addr 192.0.2.1\n  remote_addr 192.0.2.2\n  local_id LOCAL\n  remote_id fqdn bob.example\n}\n";

/// `in-ikev2d -c` finds each certificate rule's certificate and key in the store, by
/// DN or subjectAltName, and names what is missing.
#[test]
fn dash_c_checks_certificate_rules_against_the_store() {
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipping: keys must be owned by root");
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("ikev2d-check-cert-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let store = dir.0.join("store");
    let config = |auth: &str, local: &str| {
        let text = format!(
            "cert_store \"{}\"\n{}",
            store.display(),
            CERT_RULE.replace("AUTH", auth).replace("LOCAL", local)
        );
        write(&dir.0, "ikev2.config", &text, 0o644)
    };
    // Certificate rules need no pre-shared keys file.
    let check = |config: String| check(&config, "/nonexistent/ikev2.preshared");
    let cfg = config("rsa_sig", "fqdn alice.example");
    let (ok_, _, err) = check(cfg.clone());
    assert!(!ok_);
    assert!(
        err.contains("no such directory (fill it with ikev2cert)"),
        "{err}"
    );

    let key = dir.0.join("alice.key");
    std::fs::copy(pki("alice-rsa.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let key = key.display().to_string();
    certtool::ok(
        &store,
        &[
            "import",
            &format!("infile={}", pki("alice-rsa.crt")),
            &format!("keyfile={key}"),
        ],
    );
    let (ok_, _, err) = check(cfg.clone());
    assert!(!ok_);
    assert!(err.contains("no trust anchor"), "{err}");
    certtool::ok(
        &store,
        &[
            "import",
            &format!("infile={}", pki("rsa-root.crt")),
            "objtype=anchor",
        ],
    );
    certtool::ok(
        &store,
        &["import", &format!("infile={}", pki("rsa-int.crt"))],
    );

    let (ok_, out, err) = check(cfg.clone());
    assert!(ok_, "{err}");
    assert!(
        out.contains("1 rule(s), 0 pre-shared key(s), 1 certificate rule(s) with credentials in"),
        "{out}"
    );
    // By DN, written with other spacing and case than the certificate's.
    let (ok_, _, err) = check(config("cert", "dn \"c=XX,o=ironswan test,  CN=alice\""));
    assert!(ok_, "{err}");
    // The wrong key type for the method, an identity without a certificate.
    let (ok_, _, err) = check(config("ecdsa_sha256", "fqdn alice.example"));
    assert!(!ok_);
    assert!(
        err.contains("rule \"gw\" (line 2): auth_method needs an ECDSA key, the certificate for alice.example has RSA-2048"),
        "{err}"
    );
    // The hash of ecdsa_shaN must be the one we sign with: the curve's.
    let ec = dir.0.join("alice-ec.key");
    std::fs::copy(pki("alice-ec.key"), &ec).unwrap();
    std::fs::set_permissions(&ec, std::fs::Permissions::from_mode(0o600)).unwrap();
    certtool::ok(
        &store,
        &[
            "import",
            &format!("infile={}", pki("alice-ec.crt")),
            &format!("keyfile={}", ec.display()),
        ],
    );
    certtool::ok(
        &store,
        &[
            "import",
            &format!("infile={}", pki("ec-root.crt")),
            "objtype=anchor",
        ],
    );
    let ec_dn = "dn \"C=XX, O=Ironswan Test, CN=alice.example\"";
    let (ok_, _, err) = check(config("ecdsa_sha256", ec_dn));
    assert!(ok_, "{err}");
    let (ok_, _, err) = check(config("ecdsa_sha384", ec_dn));
    assert!(!ok_);
    assert!(
        err.contains("auth_method needs an ECDSA P-384 key"),
        "{err}"
    );
    let (ok_, _, err) = check(config("cert", "fqdn carol.example"));
    assert!(!ok_);
    assert!(
        err.contains("local_id carol.example: ")
            && err.contains("no certificate with a private key for this identity"),
        "{err}"
    );
    // A syntax error in a DN: file, line, column.
    let (ok_, _, err) = check(config("cert", "dn \"CN=alice, Q=1\""));
    assert!(!ok_);
    assert!(
        err.contains("ikev2.config:7:15: expected a DN such as"),
        "{err}"
    );
}

/// `in-ikev2d -c` opens the certificate store read-only (creating and chmodding
/// nothing) and refuses one that others could change, naming the path and the fault.
#[test]
fn dash_c_refuses_a_store_others_could_change() {
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipping: the store must be owned by root");
        return;
    }
    let dir = Dir(std::env::temp_dir().join(format!("ikev2d-check-perm-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let store = dir.0.join("store");
    let key = dir.0.join("alice.key");
    std::fs::copy(pki("alice-rsa.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    for args in [
        vec![
            format!("infile={}", pki("alice-rsa.crt")),
            format!("keyfile={}", key.display()),
        ],
        vec![format!("infile={}", pki("rsa-int.crt"))],
        vec![
            format!("infile={}", pki("rsa-root.crt")),
            "objtype=anchor".into(),
        ],
    ] {
        let mut a = vec!["import"];
        a.extend(args.iter().map(String::as_str));
        certtool::ok(&store, &a);
    }
    let text = format!(
        "cert_store \"{}\"\n{}",
        store.display(),
        CERT_RULE
            .replace("AUTH", "rsa_sig")
            .replace("LOCAL", "fqdn alice.example")
    );
    let cfg = write(&dir.0, "ikev2.config", &text, 0o644);
    let check = || check(&cfg, "/nonexistent/ikev2.preshared");
    let chmod = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    let (ok_, _, err) = check();
    assert!(ok_, "{err}");

    // Read-only: keys/ keeps the mode it has, a missing certs/ is not created.
    chmod(&store.join("keys"), 0o750);
    let (ok_, _, err) = check();
    assert!(ok_, "{err}");
    assert_eq!(
        std::fs::metadata(store.join("keys"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o750
    );
    chmod(&store.join("keys"), 0o700);
    std::fs::rename(store.join("certs"), dir.0.join("certs.away")).unwrap();
    let (ok_, _, err) = check();
    assert!(!ok_);
    assert!(
        err.contains(&format!("{}: ", store.join("certs").display())),
        "{err}"
    );
    assert!(!store.join("certs").exists());
    std::fs::rename(dir.0.join("certs.away"), store.join("certs")).unwrap();

    // Anybody could add a trust anchor: refused.
    chmod(&store.join("anchors"), 0o777);
    let (ok_, _, err) = check();
    assert!(!ok_);
    assert!(
        err.contains(&format!(
            "certificate store refused: {}: mode 0777: writable by group or others",
            store.join("anchors").display()
        )),
        "{err}"
    );
    chmod(&store.join("anchors"), 0o755);
    // A store directory owned by somebody else.
    std::os::unix::fs::chown(&store, Some(65534), None).unwrap();
    let (ok_, _, err) = check();
    assert!(!ok_);
    assert!(
        err.contains("owned by uid 65534: a certificate store directory must be owned by root"),
        "{err}"
    );
    std::os::unix::fs::chown(&store, Some(0), None).unwrap();
    // A private key others can read.
    let k = std::fs::read_dir(store.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    chmod(&k, 0o644);
    let (ok_, _, err) = check();
    assert!(!ok_);
    assert!(
        err.contains(&format!(
            "{}: mode 0644: a private key must be in a file of mode 0600",
            k.display()
        )),
        "{err}"
    );
    chmod(&k, 0o600);
    let (ok_, _, err) = check();
    assert!(ok_, "{err}");
}
