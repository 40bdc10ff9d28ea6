//! The systemd units in `systemd/` pass `systemd-analyze verify`: each is copied to a
//! temporary directory with the install path of the binaries (`/usr/local/sbin/`) replaced
//! by the freshly built ones (verify insists that every `Exec*` command exists), and
//! verify must neither fail nor say anything about them (it only warns, exit status 0,
//! about unknown settings or values, so its messages are checked too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/daemon.rs"]
mod daemon;

use std::path::Path;
use std::process::Command;

const IPSECADM: &str = env!("CARGO_BIN_EXE_ipsecadm");

const UNITS: [&str; 4] = [
    "ipsecd.service",
    "ironswan-policy.service",
    "ironswan-manual-key.service",
    "ironswan-logger.service",
];

#[test]
fn units_pass_systemd_analyze_verify() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd");
    let bin = Path::new(IPSECADM).parent().unwrap();
    // ipsecd and the other tools are built next to ipsecadm (scripts/test.sh builds them all).
    daemon::ipsecd_path(IPSECADM);
    for tool in ["ipsecconf", "ipseckey", "ipsecadm"] {
        assert!(bin.join(tool).exists(), "{tool} is not built");
    }
    let dir = daemon::scratch_dir("systemd-units");
    for u in UNITS {
        let text = std::fs::read_to_string(src.join(u)).unwrap();
        assert!(
            text.contains("/usr/local/sbin/"),
            "{u}: binaries are installed in /usr/local/sbin"
        );
        let text = text.replace("/usr/local/sbin/", &format!("{}/", bin.display()));
        std::fs::write(dir.join(u), text).unwrap();
    }
    let o = match Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(UNITS.iter().map(|u| dir.join(u)))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            panic!("systemd-analyze: {e} (install the Debian package systemd, as .ci/run does)")
        }
    };
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| {
            l.contains("ipsecd") || l.contains("ironswan") || l.contains(dir.to_str().unwrap())
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "systemd-analyze verify failed:\n{err}");
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warns:\n{}",
        ours.join("\n")
    );
    // The hardening keeps what the data plane needs.
    let d = std::fs::read_to_string(src.join("ipsecd.service")).unwrap();
    for want in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
        "DeviceAllow=/dev/net/tun rw",
        "AF_NETLINK",
    ] {
        assert!(d.contains(want), "ipsecd.service lacks {want}");
    }
}
