//! strongSwan's charon (kernel-libipsec: user-space ESP over its own TUN device) in a
//! namespace, with a private /run, its own strongswan.conf, vici socket and log, loaded
//! with a swanctl.conf (the interop tests of e2e_strongswan*.rs).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::Ike;
use crate::netns::{signal, Capture, Daemon, Lab, Ns, Pcap, Proc};

/// strongSwan's address (namespace S).
pub const S: &str = "192.0.2.1";
/// Ours (namespace O).
pub const O: &str = "192.0.2.2";

/// The daemon.
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

/// One charon.
pub struct Charon {
    pub proc: Proc,
    pub vici: String,
    pub log: PathBuf,
    pub conf: PathBuf,
    pub ns: Ns,
}

impl Charon {
    /// Starts charon in `ns` and loads `swanctl_conf` (written into `swanctl_dir`, else
    /// into the lab) with `swanctl --load-all`, so credentials come from `swanctl_dir`'s
    /// x509, x509ca, private... subdirectories.
    pub fn start_conf(lab: &Lab, ns: &Ns, swanctl_conf: &str, swanctl_dir: Option<&Path>) -> Self {
        Self::start_conf_with(lab, ns, swanctl_conf, swanctl_dir, "")
    }

    /// [`start_conf`](Self::start_conf) with more options in strongswan.conf's `charon`
    /// section (`charon_extra`, such as `fragment_size = 200`).
    pub fn start_conf_with(
        lab: &Lab,
        ns: &Ns,
        swanctl_conf: &str,
        swanctl_dir: Option<&Path>,
        charon_extra: &str,
    ) -> Self {
        let dir = lab.dir.join("charon");
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let vici = format!("unix://{}/charon.vici", dir.display());
        let log = dir.join("charon.log");
        let sconf = lab.file(
            "strongswan.conf",
            &format!(
                "charon {{\n  {charon_extra}\n  load_modular = no\n  load = random drbg nonce openssl aes sha1 sha2 md5 hmac gcm ctr ccm chapoly kdf pem pkcs1 pkcs8 x509 pubkey mgf1 curve25519 gmp kernel-libipsec kernel-netlink socket-default vici\n  \
                 plugins {{\n    vici {{\n      socket = {vici}\n    }}\n    \
                 kernel-libipsec {{\n      allow_peer_ts = yes\n    }}\n    \
                 kernel-netlink {{\n      fwmark = !0x42\n    }}\n    \
                 socket-default {{\n      fwmark = 0x42\n    }}\n  }}\n  \
                 filelog {{\n    f {{\n      path = {}\n      flush_line = yes\n      default = 1\n      ike = 2\n      cfg = 2\n      chd = 2\n      esp = 2\n    }}\n  }}\n}}\n",
                log.display()
            ),
        );
        // swanctl reads credentials from the directory of the file it loads.
        let conf = match swanctl_dir {
            Some(d) => {
                let p = d.join("swanctl.conf");
                std::fs::write(&p, swanctl_conf).unwrap();
                p
            }
            None => lab.file("swanctl.conf", swanctl_conf),
        };
        let script = format!(
            "mount --bind {} /run && exec env STRONGSWAN_CONF={} setsid {CHARON}",
            dir.join("run").display(),
            sconf.display()
        );
        let proc = ns.spawn(&["sh", "-c", &script]);
        let c = Self {
            proc,
            vici,
            log,
            conf,
            ns: ns.clone(),
        };
        let t0 = Instant::now();
        loop {
            let o = c.swanctl(&["--load-all", "--file", &c.conf.display().to_string()]);
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

    /// Runs swanctl against this charon.
    pub fn swanctl(&self, args: &[&str]) -> std::process::Output {
        // The command comes first, its options after it.
        let mut all = vec!["swanctl", args[0], "--uri", &self.vici];
        all.extend_from_slice(&args[1..]);
        self.ns.run(&all)
    }

    /// What charon logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills charon with SIGKILL (its pid file is in its private /run) and waits until
    /// it is gone.
    pub fn kill9(&mut self, lab: &Lab) {
        let pidfile = lab.dir.join("charon/run/charon.pid");
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let pid: u32 = pid.trim().parse().unwrap();
        signal(pid, "KILL");
        let _ = self.proc.wait_exit(Duration::from_secs(5));
        let t0 = Instant::now();
        while Path::new(&format!("/proc/{pid}")).exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "charon {pid} did not die"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(pidfile);
    }
}

impl Drop for Charon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- charon log ----\n{}---- end ----", self.log_text());
        }
    }
}

/// No cleartext ICMP on the wire, and some ESP in UDP.
pub fn no_clear_icmp(pcap: &Pcap) {
    let leaks: Vec<String> = pcap
        .ip()
        .filter(|p| matches!(p.proto, 1 | 58) && !p.is_nd_or_mld())
        .map(|p| format!("{p:?}"))
        .collect();
    assert!(leaks.is_empty(), "cleartext ICMP on the wire: {leaks:?}");
    let esp_in_udp = pcap
        .ip()
        .filter(|p| p.proto == 17 && p.payload.get(8..12).is_some_and(|m| m != [0, 0, 0, 0]))
        .count();
    assert!(esp_in_udp > 0, "no ESP in UDP captured");
}

/// Pings both ways, all answered; strongSwan lists its IKE SA and Child SA.
pub fn pings_and_sas(s: &Ns, o: &Ns, charon: &Charon) {
    o.ping_ok(S, 5);
    s.ping_ok(O, 5);
    let sas = charon.swanctl(&["--list-sas"]);
    let sas = String::from_utf8_lossy(&sas.stdout);
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
}

/// Pings both ways, all answered; strongSwan lists the SAs; ipsecd counted ESP both ways.
pub fn both_ways(s: &Ns, o: &Ns, d: &Daemon, charon: &Charon) {
    pings_and_sas(s, o, charon);
    let c = d.counters();
    assert!(
        c.get("out_protected") >= 10 && c.get("in_accepted") >= 10,
        "{c:#?}"
    );
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}

/// Which side starts the IKE SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Starter {
    /// We do: a ping from O makes ipsecd ACQUIRE.
    Us,
    /// strongSwan does (`swanctl --initiate`).
    StrongSwan,
}

/// Starts the IKE SA between `charon` (in `s`) and our `ike` (with ipsecd `d`, in `o`),
/// waits for our Child SA, checks our role, then [`both_ways`] and, on a capture of the
/// whole exchange, [`no_clear_icmp`]. Returns the capture file.
pub fn negotiate_and_check(
    lab: &Lab,
    (s, o): (&Ns, &Ns),
    d: &Daemon,
    ike: &Ike,
    charon: &Charon,
    starter: Starter,
) -> PathBuf {
    let cap = Capture::start(lab, o, "vb", "wire");
    let role = match starter {
        Starter::Us => {
            let _ = o.ping(S, 2);
            "established (initiator"
        }
        Starter::StrongSwan => {
            let r = charon.swanctl(&["--initiate", "--child", "c", "--timeout", "15"]);
            assert!(
                r.status.success(),
                "swanctl --initiate: {}\n{}\n{}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr),
                ike.log()
            );
            "established (responder"
        }
    };
    ike.wait_log("installed", 1, Duration::from_secs(15));
    assert!(ike.log().contains(role), "{}", ike.log());
    both_ways(s, o, d, charon);
    let file = cap.file.clone();
    no_clear_icmp(&cap.stop());
    file
}
