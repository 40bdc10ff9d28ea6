//! Certificate authentication with strongSwan: a CA made with `openssl` at test time,
//! our credentials imported with `ikev2cert` into the store ikev2.config names,
//! strongSwan's in its swanctl directory (x509, x509ca, private).
//!
//! ```text
//!   S 192.0.2.1/24 ──va──vb── O 192.0.2.2/24
//!   charon + kernel-libipsec    ipsecd + in-ikev2d (auth_method rsa_sig / ecdsa_sha256)
//! ```
//!
//! Both roles, with RSA-2048 certificates under an intermediate CA and DN identities
//! (each IKE_AUTH carries two certificates, ~2.5 KB: sent as IKE fragments both ways, RFC
//! 7383, which both sides announce), and with ECDSA P-256 certificates and FQDN identities;
//! pings flow both ways, only ESP on the wire. And a certificate of a CA we do not
//! trust is refused: no Child SA is installed.
//! Needs root, strongSwan and openssl; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certtool;
mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::charon::{self, available, negotiate_and_check, Starter, O, S};
use common::Ike;
use netns::*;

const ORG: &str = "Ironswan Interop";

#[derive(Clone, Copy)]
enum Alg {
    Rsa,
    Ec,
}

impl Alg {
    fn genpkey(self) -> &'static [&'static str] {
        match self {
            Self::Rsa => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Self::Ec => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A private key `name.key` (PKCS#8 PEM, mode 0600) in `dir`.
fn key(dir: &Path, name: &str, alg: Alg) {
    let out = format!("{name}.key");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(alg.genpkey());
    args.extend(["-out", &out]);
    openssl(dir, &args);
    std::fs::set_permissions(dir.join(&out), std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A self-signed CA `name.pem` with key `name.key`.
fn ca(dir: &Path, name: &str, alg: Alg) {
    key(dir, name, alg);
    std::fs::write(
        dir.join("ca.cnf"),
        "[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    )
    .unwrap();
    let subj = format!("/C=XX/O={ORG}/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &subj,
            "-days",
            "2",
            "-sha256",
            "-config",
            "ca.cnf",
            "-extensions",
            "v3",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// An end-entity certificate `name.pem` (CN=name, subjectAltNames `san`) issued by
/// CA `by`, with key `name.key`.
fn issue(dir: &Path, name: &str, alg: Alg, san: &str, by: &str) {
    let ext = format!(
        "basicConstraints=CA:false\nkeyUsage=critical,digitalSignature\nsubjectAltName={san}\n"
    );
    issue_ext(dir, name, alg, &ext, by);
}

/// A certificate `name.pem` (CN=name, extensions `ext`) issued by CA `by`, with key
/// `name.key`.
fn issue_ext(dir: &Path, name: &str, alg: Alg, ext: &str, by: &str) {
    key(dir, name, alg);
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let subj = format!("/C=XX/O={ORG}/CN={name}");
    let csr = format!("{name}.csr");
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &subj,
            "-config",
            "ca.cnf",
            "-out",
            &csr,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{by}.pem"),
            "-CAkey",
            &format!("{by}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn dn(name: &str) -> String {
    format!("C=XX, O={ORG}, CN={name}")
}

/// One interop setup: the PKI, both sides' credentials, the identities.
struct Setup {
    alg: Alg,
    /// Our auth_method.
    method: &'static str,
    /// Identities (ikev2.config form, swanctl form) of O and S.
    o_id: (String, String),
    s_id: (String, String),
    /// strongSwan's certificate comes from a CA we do not trust.
    rogue: bool,
    /// The end entities are issued by an intermediate CA, which each side sends.
    intermediate: bool,
}

impl Setup {
    fn rsa_dn() -> Self {
        Self {
            alg: Alg::Rsa,
            method: "rsa_sig",
            o_id: (format!("dn \"{}\"", dn("o")), format!("\"{}\"", dn("o"))),
            s_id: (format!("dn \"{}\"", dn("s")), format!("\"{}\"", dn("s"))),
            rogue: false,
            intermediate: true,
        }
    }

    fn ec_fqdn() -> Self {
        Self {
            alg: Alg::Ec,
            method: "ecdsa_sha256",
            o_id: ("fqdn o.example".into(), "o.example".into()),
            s_id: ("fqdn s.example".into(), "s.example".into()),
            rogue: false,
            intermediate: false,
        }
    }

    /// Makes the PKI in the lab, fills our store with ikev2cert and strongSwan's swanctl
    /// directory; returns (our store, the swanctl directory).
    fn credentials(&self, lab: &Lab) -> (PathBuf, PathBuf) {
        let pki = lab.dir.join("pki");
        std::fs::create_dir_all(&pki).unwrap();
        ca(&pki, "ca", self.alg);
        let issuer = if self.intermediate {
            let ext = "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n";
            issue_ext(&pki, "int", self.alg, ext, "ca");
            "int"
        } else {
            "ca"
        };
        issue(
            &pki,
            "o",
            self.alg,
            &format!("DNS:o.example,IP:{O}"),
            issuer,
        );
        let s_ca = if self.rogue {
            ca(&pki, "rogue", self.alg);
            "rogue"
        } else {
            issuer
        };
        issue(&pki, "s", self.alg, &format!("DNS:s.example,IP:{S}"), s_ca);

        let store = lab.dir.join("store");
        let out = certtool::ok(
            &store,
            &[
                "import",
                &format!("infile={}", pki.join("ca.pem").display()),
                "objtype=anchor",
                "label=ca",
            ],
        );
        assert!(out.contains("imported trust anchor (label ca)"), "{out}");
        if self.intermediate {
            let int = format!("infile={}", pki.join("int.pem").display());
            certtool::ok(&store, &["import", &int, "label=int"]);
        }
        let out = certtool::ok(
            &store,
            &[
                "import",
                &format!("infile={}", pki.join("o.pem").display()),
                &format!("keyfile={}", pki.join("o.key").display()),
                "label=o",
            ],
        );
        assert!(
            out.contains("certificate with private key (label o)"),
            "{out}"
        );

        let sw = lab.dir.join("swanctl");
        let mut files = vec![
            ("x509", "s.pem"),
            ("x509ca", "ca.pem"),
            ("private", "s.key"),
        ];
        if self.intermediate {
            files.push(("x509ca", "int.pem"));
        }
        for (sub, file) in files {
            std::fs::create_dir_all(sw.join(sub)).unwrap();
            std::fs::copy(pki.join(file), sw.join(sub).join(file)).unwrap();
        }
        (store, sw)
    }

    fn charon(&self, lab: &Lab, s: &Ns, sw: &Path) -> charon::Charon {
        let conf = format!(
            "connections {{\n  ironswan {{\n    version = 2\n    local_addrs = {S}\n    remote_addrs = {O}\n    proposals = aes128gcm16-prfsha256-x25519\n    send_cert = always\n    \
             local {{\n      auth = pubkey\n      certs = s.pem\n      id = {}\n    }}\n    remote {{\n      auth = pubkey\n      id = {}\n    }}\n    \
             children {{\n      c {{\n        mode = tunnel\n        esp_proposals = aes128gcm16\n        local_ts = {S}/32\n        remote_ts = {O}/32\n      }}\n    }}\n  }}\n}}\n",
            self.s_id.1, self.o_id.1
        );
        charon::Charon::start_conf(lab, s, &conf, Some(sw))
    }

    fn ours(&self, lab: &Lab, o: &Ns, store: &Path) -> (Daemon, Ike) {
        let policy = format!(
            "{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr {S}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
        );
        let d = Daemon::start(lab, o, "o", "", &policy);
        let cfg = format!(
            "cert_store \"{}\"\nikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method {}\n  local_addr {O}\n  remote_addr {S}\n  local_id {}\n  remote_id {}\n  childsa_mode tunnel\n  childsa_xform {{ encr_alg aes-gcm(128) }}\n}}\n",
            store.display(),
            self.method,
            self.o_id.0,
            self.s_id.0
        );
        let control = d.control.display().to_string();
        let ike = Ike::start(lab, o, "o", &d, &cfg, &["--control-socket", &control]);
        (d, ike)
    }
}

impl Setup {
    /// strongSwan verified our signature under our identity, with our certificate.
    fn check_charon_log(&self, charon: &charon::Charon) {
        let log = charon.log_text();
        let ours = self.o_id.1.trim_matches('"');
        let kind = match self.alg {
            Alg::Rsa => "RSA",
            Alg::Ec => "ECDSA",
        };
        let line = log
            .lines()
            .find(|l| l.contains(&format!("authentication of '{ours}' with")))
            .unwrap_or_else(|| panic!("strongSwan did not authenticate {ours}:\n{log}"));
        assert!(
            line.contains(kind) && line.ends_with("successful"),
            "{line}"
        );
        assert!(
            log.contains(&format!("using trusted ca certificate \"{}\"", dn("ca"))),
            "{log}"
        );
        if self.intermediate {
            // Our chain came with the intermediate, strongSwan's with its own: IKE_AUTH
            // messages longer than 1280 bytes both ways, sent as IKE fragments (RFC 7383)
            // since both sides announce IKE fragmentation.
            assert!(
                log.contains(&format!(
                    "using trusted intermediate ca certificate \"{}\"",
                    dn("int")
                )),
                "{log}"
            );
            assert!(
                log.contains("splitting IKE message")
                    && log.contains("reassembled fragmented IKE message"),
                "{log}"
            );
            let ours_init: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("parsed IKE_SA_INIT"))
                .collect();
            assert!(!ours_init.is_empty(), "{log}");
            assert!(
                ours_init.iter().all(|l| l.contains("FRAG_SUP")),
                "{ours_init:?}"
            );
        }
    }
}

fn lab(test: &str) -> Option<(Lab, Ns, Ns)> {
    if !available() {
        return None;
    }
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("skipping: no openssl");
        return None;
    }
    let lab = Lab::new(test)?;
    let (s, o) = common::two_namespaces(&lab, S, O);
    Some((lab, s, o))
}

/// `starter` starts the IKE SA, both sides authenticate with `setup`'s certificates;
/// traffic then flows both ways inside ESP.
fn run(test: &str, setup: &Setup, starter: Starter) {
    let Some((lab, s, o)) = lab(test) else {
        return;
    };
    let (store, sw) = setup.credentials(&lab);
    let charon = setup.charon(&lab, &s, &sw);
    let (d, ike) = setup.ours(&lab, &o, &store);
    negotiate_and_check(&lab, (&s, &o), &d, &ike, &charon, starter);
    setup.check_charon_log(&charon);
}

#[test]
fn we_initiate_to_strongswan_rsa_certificates_dn_identities() {
    run(
        "we_initiate_to_strongswan_rsa_certificates_dn_identities",
        &Setup::rsa_dn(),
        Starter::Us,
    );
}

#[test]
fn strongswan_initiates_rsa_certificates_dn_identities() {
    run(
        "strongswan_initiates_rsa_certificates_dn_identities",
        &Setup::rsa_dn(),
        Starter::StrongSwan,
    );
}

#[test]
fn we_initiate_to_strongswan_ecdsa_p256_certificates_fqdn_identities() {
    run(
        "we_initiate_to_strongswan_ecdsa_p256_certificates_fqdn_identities",
        &Setup::ec_fqdn(),
        Starter::Us,
    );
}

#[test]
fn strongswan_initiates_ecdsa_p256_certificates_fqdn_identities() {
    run(
        "strongswan_initiates_ecdsa_p256_certificates_fqdn_identities",
        &Setup::ec_fqdn(),
        Starter::StrongSwan,
    );
}

/// strongSwan's certificate is issued by a CA our store does not trust: we refuse its
/// IKE_AUTH, no Child SA is installed on either side and no ping gets through.
#[test]
fn certificate_of_an_untrusted_ca_is_refused() {
    let Some((lab, s, o)) = lab("certificate_of_an_untrusted_ca_is_refused") else {
        return;
    };
    let setup = Setup {
        rogue: true,
        ..Setup::rsa_dn()
    };
    let (store, sw) = setup.credentials(&lab);
    let charon = setup.charon(&lab, &s, &sw);
    let (d, ike) = setup.ours(&lab, &o, &store);
    let r = charon.swanctl(&["--initiate", "--child", "c", "--timeout", "10"]);
    assert!(
        !r.status.success(),
        "swanctl --initiate succeeded: {}",
        String::from_utf8_lossy(&r.stdout)
    );
    ike.wait_log(
        "does not chain to a trust anchor",
        1,
        Duration::from_secs(5),
    );
    let log = ike.log();
    assert!(!log.contains("installed"), "{log}");
    assert!(!log.contains("established"), "{log}");
    let sas = charon.swanctl(&["--list-sas"]);
    let sas = String::from_utf8_lossy(&sas.stdout);
    assert!(!sas.contains("INSTALLED"), "{sas}");
    assert!(!o.ping(S, 1).status.success());
    let c = d.counters();
    assert_eq!(c.get("in_accepted"), 0, "{c:#?}");
    assert_eq!(c.get("out_protected"), 0, "{c:#?}");
}
