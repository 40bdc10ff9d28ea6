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
