//! strongSwan's charon (kernel-libipsec: user-space ESP over its own TUN device) in a
//! namespace, with a private /run, its own strongswan.conf, vici socket and log, and a
//! swanctl.conf the test writes whole (connections and secrets).
//!
//! Include it with `#[path = "common/charon.rs"] mod charon;` next to `netns`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::netns::{Lab, Ns, Proc};

/// The charon binary.
pub const CHARON: &str = "/usr/lib/ipsec/charon";

/// Whether charon with kernel-libipsec is installed (says so when not).
pub fn available() -> bool {
    let ok = Path::new(CHARON).exists()
        && Path::new("/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so").exists();
    if !ok {
        eprintln!("skipping: strongSwan's charon with kernel-libipsec is not installed");
    }
    ok
}

/// A running charon.
pub struct Charon {
    proc: Proc,
    vici: String,
    log: PathBuf,
    ns: Ns,
}

/// The plugins of a kernel-libipsec charon that needs no kernel xfrm.
const PLUGINS: &str = "random drbg nonce openssl aes sha1 sha2 md5 hmac gcm ctr ccm chapoly kdf pem pkcs1 pkcs8 x509 pubkey curve25519 gmp kernel-libipsec kernel-netlink socket-default vici";

impl Charon {
    /// Starts charon in `ns` (files under `lab.dir/tag`) and loads `swanctl` (the text of a
    /// swanctl.conf). Its IKE packets carry fwmark 0x42, which its routes into the TUN
    /// device leave out.
    pub fn start(lab: &Lab, ns: &Ns, tag: &str, swanctl: &str) -> Self {
        let dir = lab.dir.join(tag);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let vici = format!("unix://{}/charon.vici", dir.display());
        let log = dir.join("charon.log");
        let sconf = dir.join("strongswan.conf");
        // One setting per line: strongswan.conf values run to the end of theirs.
        std::fs::write(
            &sconf,
            format!(
                "charon {{\nload_modular = no\nload = {PLUGINS}\nplugins {{\n\
                 vici {{\nsocket = {vici}\n}}\n\
                 kernel-libipsec {{\nallow_peer_ts = yes\n}}\n\
                 kernel-netlink {{\nfwmark = !0x42\n}}\n\
                 socket-default {{\nfwmark = 0x42\n}}\n}}\n\
                 filelog {{\nf {{\npath = {}\nflush_line = yes\ndefault = 1\n\
                 ike = 2\ncfg = 2\nchd = 2\nesp = 2\n}}\n}}\n}}\n",
                log.display()
            ),
        )
        .unwrap();
        let conf = dir.join("swanctl.conf");
        std::fs::write(&conf, swanctl).unwrap();
        let script = format!(
            "mount --bind {} /run && exec env STRONGSWAN_CONF={} setsid {CHARON}",
            dir.join("run").display(),
            sconf.display()
        );
        let c = Self {
            proc: ns.spawn(&["sh", "-c", &script]),
            vici,
            log,
            ns: ns.clone(),
        };
        let t0 = Instant::now();
        loop {
            let o = c.swanctl(&["--load-all", "--file", &conf.display().to_string()]);
            if o.status.success() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "charon did not come up: {}\n{}\n{}",
                String::from_utf8_lossy(&o.stderr),
                c.log_text(),
                c.proc.stderr().join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// Runs `swanctl COMMAND --uri VICI OPTIONS...` (`args[0]` is the command).
    pub fn swanctl(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["swanctl", args[0], "--uri", &self.vici];
        all.extend_from_slice(&args[1..]);
        self.ns.run(&all)
    }

    /// `swanctl --initiate --child CHILD`, asserting success (`context` is shown if not).
    pub fn initiate(&self, child: &str, context: &dyn Fn() -> String) {
        let r = self.swanctl(&["--initiate", "--child", child, "--timeout", "15"]);
        assert!(
            r.status.success(),
            "swanctl --initiate: {}\n{}\n{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr),
            context()
        );
    }

    /// `swanctl --list-sas`.
    pub fn list_sas(&self) -> String {
        String::from_utf8_lossy(&self.swanctl(&["--list-sas"]).stdout).into_owned()
    }

    /// Its log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- charon log ----\n{}---- end ----", self.log_text());
        }
    }
}
