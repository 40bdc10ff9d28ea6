//! `in-ikev2d -c`: checks the configuration and the pre-shared keys file and exits,
//! naming the file, line and column of the first error, and refusing a keys file that
//! others may read. Runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
