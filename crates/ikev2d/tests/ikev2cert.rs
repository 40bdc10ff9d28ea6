//! `ikev2cert` (the real binary) managing a certificate store. Uses the test PKI of crates/ike/tests/certs
//! (DER certificates and PKCS#8 keys).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

mod certtool;

use certtool::{ok, pki};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(tag: &str) -> Dir {
    let d = std::env::temp_dir().join(format!("ikev2cert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Dir(d)
}

/// A copy of a test key with `mode`.
fn key_copy(dir: &Path, name: &str, mode: u32) -> String {
    let p = dir.join(format!("{name}.{mode:o}"));
    std::fs::copy(pki(name), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

/// Runs ikev2cert on `store`: (exit code, stdout, stderr).
fn cert(store: &Path, args: &[&str]) -> (i32, String, String) {
    let o = certtool::run(store, args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn fails(store: &Path, args: &[&str], code: i32, what: &str) {
    let (c, out, err) = cert(store, args);
    assert_eq!(c, code, "ikev2cert {args:?}: {out}{err}");
    assert!(err.contains(what), "ikev2cert {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn import_list_and_delete_certificates_anchors_and_keys() {
    let dir = tmp("cli");
    let store = dir.0.join("store");
    let root = ipsec_sys::geteuid() == 0;

    let out = ok(
        &store,
        &[
            "import",
            &format!("infile={}", pki("rsa-root.crt")),
            "objtype=anchor",
            "label=root",
        ],
    );
    assert!(
        out.starts_with("imported trust anchor (label root)\n"),
        "{out}"
    );
    assert!(
        out.contains("  subject:     C=XX, O=Ironswan Test, CN=RSA Root\n"),
        "{out}"
    );
    assert!(out.contains("  key type:    RSA-2048\n"), "{out}");
    ok(
        &store,
        &["import", &format!("infile={}", pki("rsa-int.crt"))],
    );

    // Keys: only from a 0600 root-owned file, only with their certificate, never shown.
    let loose = key_copy(&dir.0, "alice-rsa.key", 0o644);
    let alice = format!("infile={}", pki("alice-rsa.crt"));
    fails(
        &store,
        &["import", &alice, &format!("keyfile={loose}")],
        1,
        "mode 0644: a private key must be in a file of mode 0600",
    );
    let tight = key_copy(&dir.0, "alice-rsa.key", 0o600);
    if root {
        fails(
            &store,
            &[
                "import",
                &format!("infile={}", pki("bob-rsa.crt")),
                &format!("keyfile={tight}"),
            ],
            1,
            "the private key belongs to none of the certificates imported with it",
        );
        let out = ok(
            &store,
            &["import", &alice, &format!("keyfile={tight}"), "label=alice"],
        );
        assert!(
            out.contains("imported certificate with private key (label alice)"),
            "{out}"
        );
        assert!(out.contains("imported private key (label alice)"), "{out}");
        let key = std::fs::read(pki("alice-rsa.key")).unwrap();
        let mode = std::fs::read_dir(store.join("keys"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().permissions().mode() & 0o7777)
            .collect::<Vec<_>>();
        assert_eq!(mode, vec![0o600]);
        // The key's bytes appear nowhere in the output.
        let hexkey: String = key[key.len() - 16..]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!out.to_lowercase().replace(':', "").contains(&hexkey));
    }

    // A trust anchor never takes a key.
    fails(
        &store,
        &[
            "import",
            &format!("infile={}", pki("ec-root.crt")),
            "objtype=anchor",
            &format!("keyfile={tight}"),
        ],
        2,
        "a trust anchor takes no keyfile",
    );

    let list = ok(&store, &["list"]);
    assert!(list.starts_with("trust anchor (label root)\n"), "{list}");
    assert!(
        list.contains("certificate\n  subject:     C=XX, O=Ironswan Test, CN=RSA Intermediate"),
        "{list}"
    );
    assert!(list.contains("  validity:    20"), "{list}");
    assert!(list.contains(" UTC to 20"), "{list}");
    let fp_line = list
        .lines()
        .find(|l| l.starts_with("  SHA-256:"))
        .unwrap()
        .to_string();
    assert_eq!(
        fp_line.len(),
        "  SHA-256:     ".len() + 32 * 3 - 1,
        "{fp_line}"
    );
    let anchors = ok(&store, &["list", "objtype=anchor"]);
    assert_eq!(anchors.matches("\n  subject:").count(), 1, "{anchors}");

    // Remove by fingerprint (of the intermediate) and by label.
    let int_fp: String = list
        .split("subject:     C=XX, O=Ironswan Test, CN=RSA Intermediate")
        .nth(1)
        .and_then(|r| r.lines().find(|l| l.starts_with("  SHA-256:")))
        .unwrap()
        .trim_start_matches("  SHA-256:")
        .trim()
        .to_string();
    let out = ok(&store, &["delete", &format!("fingerprint={int_fp}")]);
    assert!(out.starts_with("deleted certificate\n"), "{out}");
    fails(
        &store,
        &["delete", &format!("fingerprint={int_fp}")],
        1,
        "no object with fingerprint",
    );
    if root {
        let out = ok(&store, &["delete", "label=alice"]);
        assert_eq!(out.matches("deleted ").count(), 2, "{out}");
        assert_eq!(ok(&store, &["list", "objtype=key"]), "no objects\n");
    }
    fails(
        &store,
        &["delete", "label=alice"],
        1,
        "no object with label \"alice\"",
    );
    let list = ok(&store, &["list"]);
    assert_eq!(list.matches("\n  subject:").count(), 1, "{list}");

    // Usage errors: exit 2, with the usage.
    fails(&store, &[], 2, "no subcommand");
    fails(&store, &["frob"], 2, "unknown subcommand \"frob\"");
    fails(&store, &["import"], 2, "import needs infile=FILE");
    fails(
        &store,
        &["list", "color=red"],
        2,
        "unknown keyword \"color\"",
    );
    fails(&store, &["import", "infile"], 2, "expected keyword=value");
    fails(
        &store,
        &["delete"],
        2,
        "delete needs label=LABEL or fingerprint=HEX",
    );
    // Bad input files: named, no panic.
    let junk = dir.0.join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    fails(
        &store,
        &["import", &format!("infile={}", junk.display())],
        1,
        "junk.pem:1: CERTIFICATE: invalid base64 body",
    );
    let der_junk = dir.0.join("junk.der");
    std::fs::write(&der_junk, [0x30, 0x03, 0x02, 0x01, 0x00]).unwrap();
    fails(
        &store,
        &["import", &format!("infile={}", der_junk.display())],
        1,
        "junk.der: not a DER certificate or private key",
    );
    if root {
        // A DER private key given as infile must be 0600 too.
        let loose_in = format!("infile={loose}");
        fails(
            &store,
            &["import", &loose_in],
            1,
            "a private key must be in a file of mode 0600",
        );
    }
    fails(
        &store,
        &["import", "infile=/nonexistent/x.pem"],
        1,
        "/nonexistent/x.pem: No such file",
    );
}

/// Runs ikev2cert, killing it if it has not ended after 20 s (a read that blocks):
/// (exit code, stderr), `None` if it had to be killed.
fn cert_bounded(store: &Path, args: &[&str]) -> Option<(i32, String)> {
    use std::io::Read as _;
    let mut child = std::process::Command::new(certtool::IKEV2CERT)
        .arg("-d")
        .arg(store)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((st.code().unwrap_or(-1), err));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Key and input files are opened once without following a link, checked on that
/// descriptor (type, mode, owner) and read from it: a FIFO is refused before any read,
/// a key reached through a symbolic link is refused, a certificate through one is not.
#[test]
fn input_files_are_checked_on_the_descriptor_read() {
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipping: keys must be owned by root");
        return;
    }
    let dir = tmp("nofollow");
    let store = dir.0.join("store");
    // A FIFO as infile: refused as not a regular file (reading it would block).
    let fifo = dir.0.join("in.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (code, err) = cert_bounded(&store, &["import", &format!("infile={}", fifo.display())])
        .expect("ikev2cert blocked reading a FIFO");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{}: not a regular file", fifo.display())),
        "{err}"
    );
    // A keyfile that is a link to a good 0600 key: refused; the key itself: accepted.
    let key = key_copy(&dir.0, "alice-rsa.key", 0o600);
    let link = dir.0.join("key.link");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    let alice = format!("infile={}", pki("alice-rsa.crt"));
    fails(
        &store,
        &["import", &alice, &format!("keyfile={}", link.display())],
        1,
        &format!("{}: a symbolic link: refused", link.display()),
    );
    // infile holding a key, through a link: refused.
    let in_link = dir.0.join("in.link");
    std::os::unix::fs::symlink(&key, &in_link).unwrap();
    fails(
        &store,
        &["import", &format!("infile={}", in_link.display())],
        1,
        &format!(
            "{}: a symbolic link: a private key file must be named itself",
            in_link.display()
        ),
    );
    // A link to the FIFO: refused the same way, without blocking.
    let fifo_link = dir.0.join("fifo.link");
    std::os::unix::fs::symlink(&fifo, &fifo_link).unwrap();
    let (code, err) = cert_bounded(
        &store,
        &["import", &format!("infile={}", fifo_link.display())],
    )
    .expect("ikev2cert blocked reading a FIFO through a link");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("fifo.link: not a regular file"), "{err}");
    // A certificate through a link (as in /etc/ssl/certs) is fine.
    let cert_link = dir.0.join("root.link");
    std::os::unix::fs::symlink(pki("rsa-root.crt"), &cert_link).unwrap();
    ok(
        &store,
        &[
            "import",
            &format!("infile={}", cert_link.display()),
            "objtype=anchor",
        ],
    );
    ok(&store, &["import", &alice, &format!("keyfile={key}")]);
}
